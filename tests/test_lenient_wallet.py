"""The lenient wallet (tests/lenient_wallet.py) over real HTTP: its choices, the protocol's rules, and each planted bug.

Every call is built and signed here (simulator.protocol.signing), so these tests say what the lenient wallet does on
the wire, independently of croupier's own client and checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulator.protocol import signing
from tests.lenient_wallet import LENIENT_PLANTED, LRU_SIZE, make_lenient_app
from tests.planted_wallets import CHECK_SKIPS, PLANTED, make_planted_app
from tests.support import ADMIN_TOKEN, SECRET, FakeClock, free_port

INT64_MAX = 2**63 - 1
Json = dict[str, Any]


class Lenient:
    """A served lenient wallet and signed calls to it."""

    def __init__(self, base: str, http: aiohttp.ClientSession, clock: FakeClock) -> None:
        self.base, self.http, self.clock = base, http, clock
        self.n = 0

    def tx(self) -> str:
        self.n += 1
        return f"tx-{self.n}-{uuid.uuid4().hex[:6]}"

    async def raw(self, op: str, body: bytes, *, sign: str | None = "ok", t: int | None = None,
                  secret: str = SECRET) -> tuple[int, Json]:
        headers = {"Content-Type": "application/json"}
        when = int(self.clock.now) if t is None else t
        if sign == "ok":
            headers[signing.HEADER] = signing.sign(secret, body, when)
        async with self.http.post(f"{self.base}/wallet/{op}", data=body, headers=headers) as resp:
            text = await resp.read()
            assert resp.content_type == "application/json", text
            return resp.status, json.loads(text, parse_int=lambda digits: int(Decimal(digits)))

    async def call(self, op: str, body: Json, **kw: Any) -> tuple[int, Json]:
        return await self.raw(op, json.dumps(body).encode(), **kw)

    async def admin(self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN,
                    params: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.base}{path}", params=params,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
            raw = await resp.read()
            try:
                return resp.status, json.loads(raw, parse_int=lambda digits: int(Decimal(digits)))
            except ValueError:
                return resp.status, raw.decode()

    # -- shortcuts ---------------------------------------------------------------------------------
    async def player(self, pid: str, currency: str = "EUR", balance: int = 1000) -> str:
        status, body = await self.admin("POST", "/admin/players", {"player_id": pid, "currency": currency,
                                                                    "balance": balance})
        assert status == 201, body
        return pid

    async def login(self, pid: str, ttl: int | None = None) -> str:
        req: Json = {"player_id": pid} if ttl is None else {"player_id": pid, "ttl_s": ttl}
        status, body = await self.admin("POST", "/admin/tokens", req)
        assert status == 201, body
        status, auth = await self.call("authenticate", {"token": body["token"], "game_id": "g1"})
        assert status == 200, auth
        return str(auth["session_token"])

    async def balance(self, pid: str) -> int:
        status, body = await self.admin("GET", f"/admin/players/{pid}")
        assert status == 200, body
        return int(body["balance"])

    async def log(self, pid: str | None = None) -> list[Json]:
        params = {"format": "jsonl", **({"player_id": pid} if pid else {})}
        async with self.http.get(f"{self.base}/admin/transactions", params=params,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
            assert resp.status == 200
            return [json.loads(line, parse_int=lambda digits: int(Decimal(digits)))
                    for line in (await resp.read()).splitlines() if line]

    async def bet(self, pid: str, sess: str, amount: int, tx: str | None = None, round_id: str = "r1",
                  currency: str = "EUR", **extra: Any) -> tuple[int, Json]:
        return await self.call("bet", {"tx_id": tx or self.tx(), "player_id": pid, "session_token": sess,
                                       "game_id": "g1", "round_id": round_id, "currency": currency,
                                       "amount": amount, **extra})

    async def win(self, pid: str, amount: int, tx: str | None = None, round_id: str = "r1", reason: str = "regular",
                  closed: bool = False, sess: str = "whatever", currency: str = "EUR", **extra: Any) -> tuple[int, Json]:
        return await self.call("win", {"tx_id": tx or self.tx(), "player_id": pid, "session_token": sess,
                                       "game_id": "g1", "round_id": round_id, "currency": currency,
                                       "amount": amount, "reason": reason, "round_closed": closed, **extra})

    async def rollback(self, pid: str, ref: str, tx: str | None = None, round_id: str = "r1",
                       sess: str = "whatever", game_id: str = "g1", **extra: Any) -> tuple[int, Json]:
        return await self.call("rollback", {"tx_id": tx or self.tx(), "ref_tx_id": ref, "player_id": pid,
                                            "session_token": sess, "game_id": game_id, "round_id": round_id,
                                            **extra})

    async def ready(self, pid: str = "p1", balance: int = 1000, currency: str = "EUR") -> str:
        """A player with a live session."""
        await self.player(pid, currency, balance)
        return await self.login(pid)


@contextlib.asynccontextmanager
async def serve(*bugs: str, session_ttl: int = 3600) -> AsyncIterator[Lenient]:
    clock = FakeClock()
    app = make_lenient_app(SECRET, ADMIN_TOKEN, frozenset(bugs), session_ttl=session_ttl, clock=clock)
    async with serve_app(app, clock) as lenient:
        yield lenient


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, clock: FakeClock) -> AsyncIterator[Lenient]:
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Lenient(f"http://127.0.0.1:{server.port}", http, clock)
    finally:
        await server.close()


@pytest.fixture
async def w() -> AsyncIterator[Lenient]:
    async with serve() as lenient:
        yield lenient


def code(answer: tuple[int, Json]) -> tuple[int, str]:
    status, body = answer
    return status, str(body.get("code", body.get("status")))


OK = (200, "ok")


# -- the catalogue --------------------------------------------------------------------------------


def test_catalogue_names_every_planted_bug_with_its_rule() -> None:
    assert "win_past_64_bits" not in PLANTED and "win_past_64_bits" not in LENIENT_PLANTED
    assert set(LENIENT_PLANTED) == set(PLANTED)
    for name, bug in LENIENT_PLANTED.items():
        assert bug.rule == PLANTED[name].rule, name
    assert set(CHECK_SKIPS) <= set(PLANTED)
    assert LENIENT_PLANTED["wraps_at_64_bits"].rule == "idempotency-7-never-negative"
    assert LENIENT_PLANTED["rollback_of_other_players_bet"].rule == "rollback-finds-bet-by-player"
    with pytest.raises(ValueError, match="unknown lenient bug"):
        make_lenient_app(SECRET, ADMIN_TOKEN, frozenset({"no_such_bug"}))


# -- its choices ----------------------------------------------------------------------------------------


async def test_sessions_are_ignored_on_win_rollback_and_balance(w: Lenient) -> None:
    sess = await w.ready("p1")
    await w.player("p2")
    other = await w.login("p2")
    expired = await w.login("p1", ttl=0)
    status, bet = await w.bet("p1", sess, 100, tx="b1")
    assert status == 200 and bet["balance"] == 900
    for token in ("", "never-issued", other, expired):
        assert code(await w.win("p1", 1, sess=token, reason="promo")) == OK
        assert code(await w.call("balance", {"player_id": "p1", "session_token": token})) == OK
    assert code(await w.rollback("p1", "b1", sess=other)) == OK
    assert await w.balance("p1") == 1004
    # but the listed field must be there, and a string
    assert code(await w.call("balance", {"player_id": "p1"})) == (400, "BAD_REQUEST")
    assert code(await w.call("balance", {"player_id": "p1", "session_token": 5})) == (400, "BAD_REQUEST")


async def test_a_bet_needs_a_live_session_of_its_own_player(w: Lenient) -> None:
    await w.player("p1")
    await w.player("p2")
    other = await w.login("p2")
    expired = await w.login("p1", ttl=0)
    log = await w.log()
    assert code(await w.bet("p1", "never-issued", 10)) == (401, "INVALID_TOKEN")
    assert code(await w.bet("p1", other, 10)) == (401, "INVALID_TOKEN")
    assert code(await w.bet("p1", expired, 10)) == (401, "SESSION_EXPIRED")
    assert await w.balance("p1") == 1000 and await w.log() == log
    live = await w.login("p1", ttl=60)
    assert code(await w.bet("p1", live, 10)) == OK
    w.clock.advance(61)
    assert code(await w.bet("p1", live, 10)) == (401, "SESSION_EXPIRED")
    assert await w.balance("p1") == 990


async def test_a_rollback_naming_another_round_or_game_refunds_the_bet(w: Lenient) -> None:
    sess = await w.ready("p1")
    assert code(await w.bet("p1", sess, 100, tx="b1", round_id="r1")) == OK
    status, body = await w.rollback("p1", "b1", round_id="r-other", game_id="g-other")
    assert status == 200 and body["balance"] == 1000
    # refunded once: the bet's own round now gets 200 and no change
    status, body = await w.rollback("p1", "b1", round_id="r1")
    assert status == 200 and body["balance"] == 1000


async def test_a_regular_win_after_the_rounds_only_bet_was_rolled_back_is_accepted(w: Lenient) -> None:
    sess = await w.ready("p1")
    assert code(await w.bet("p1", sess, 100, tx="b1")) == OK
    assert code(await w.rollback("p1", "b1")) == OK
    status, body = await w.win("p1", 30, reason="regular")
    assert status == 200 and body["balance"] == 1030
    assert code(await w.win("p1", 30, reason="regular", round_id="never-bet")) == (404, "ROUND_NOT_FOUND")


async def test_authenticate_again_gives_a_new_session_and_a_blocked_player_may_authenticate(w: Lenient) -> None:
    await w.player("p1", "JPY", 500)
    _, tok = await w.admin("POST", "/admin/tokens", {"player_id": "p1", "ttl_s": 60})
    s1, a1 = await w.call("authenticate", {"token": tok["token"], "game_id": "g1"})
    s2, a2 = await w.call("authenticate", {"token": tok["token"], "game_id": "g1"})
    assert s1 == s2 == 200 and a1["session_token"] != a2["session_token"]
    assert a1["player_id"] == "p1" and a1["currency"] == "JPY" and a1["balance"] == 500
    assert code(await w.bet("p1", a1["session_token"], 1, currency="JPY")) == OK
    assert code(await w.bet("p1", a2["session_token"], 1, currency="JPY")) == OK
    w.clock.advance(60)  # the launch token's lifetime is counted once, from its first exchange
    assert code(await w.bet("p1", a2["session_token"], 1, currency="JPY")) == (401, "SESSION_EXPIRED")
    assert code(await w.call("authenticate", {"token": tok["token"], "game_id": "g1"})) == (401, "SESSION_EXPIRED")
    assert code(await w.call("authenticate", {"token": "nope", "game_id": "g1"})) == (401, "INVALID_TOKEN")
    assert (await w.admin("POST", "/admin/players/p1/block", {}))[0] == 200
    sess = await w.login("p1")
    assert code(await w.bet("p1", sess, 1, currency="JPY")) == (403, "PLAYER_BLOCKED")


async def test_an_unknown_player_is_player_not_found_first(w: Lenient) -> None:
    sess = await w.ready("p1")
    assert code(await w.bet("p1", sess, 10, tx="t1")) == OK
    before = await w.log()
    assert code(await w.bet("ghost", sess, 10, tx="t1")) == (404, "PLAYER_NOT_FOUND")  # a reused tx_id
    assert code(await w.bet("ghost", sess, -5, tx="t1")) == (404, "PLAYER_NOT_FOUND")  # and a bad amount
    assert code(await w.rollback("ghost", "t1", tx="t1")) == (404, "PLAYER_NOT_FOUND")
    assert code(await w.call("balance", {"player_id": "ghost", "session_token": sess})) == (404, "PLAYER_NOT_FOUND")
    assert await w.log() == before


async def test_wallet_tx_ids_are_uuids_and_balances_have_no_64_bit_limit(w: Lenient) -> None:
    await w.player("rich", "EUR", INT64_MAX)
    status, body = await w.win("rich", 1, reason="jackpot")
    assert status == 200 and body["balance"] == 2**63
    uuid.UUID(body["wallet_tx_id"])
    status, body = await w.win("rich", 2**70, reason="jackpot")
    assert status == 200 and body["balance"] == 2**63 + 2**70
    assert await w.balance("rich") == 2**63 + 2**70
    huge = 10**5000  # past Python's default int-to-text limit, both ways
    body_text = json.dumps({"tx_id": "huge", "player_id": "rich", "session_token": "s", "game_id": "g",
                            "round_id": "r", "currency": "EUR", "amount": 0, "reason": "bonus", "round_closed": False})
    status, body = await w.raw("win", body_text.replace('"amount": 0', '"amount": 1' + "0" * 5000).encode())
    assert status == 200 and body["balance"] == 2**63 + 2**70 + huge
    assert (await w.log("rich"))[-1]["balance_after"] == 2**63 + 2**70 + huge


# -- the protocol's rules -----------------------------------------------------------------------------


async def test_a_replay_is_answered_as_one_whatever_else(w: Lenient) -> None:
    await w.player("p1")
    sess = await w.login("p1", ttl=60)
    _, bet = await w.bet("p1", sess, 100, tx="b1")
    _, win = await w.win("p1", 10, tx="w1", closed=True)
    _, rb = await w.rollback("p1", "never", tx="rb1", round_id="r2")
    w.clock.advance(61)  # the session expires,
    await w.admin("POST", "/admin/players/p1/block", {})  # the player is blocked, and round r1 is closed
    log = await w.log()
    for again, first in [
        (await w.bet("p1", "another-token", 100, tx="b1", game_id="g9"), bet),
        (await w.win("p1", 10, tx="w1", closed=False, reason="promo", sess="x"), win),
        (await w.rollback("p1", "never", tx="rb1", round_id="r2", game_id="g7"), rb),
    ]:
        status, body = again
        assert status == 200 and body["wallet_tx_id"] == first["wallet_tx_id"] and body["balance"] == 910
    assert await w.log() == log


async def test_a_reused_tx_id_with_other_fields_is_a_mismatch(w: Lenient) -> None:
    sess = await w.ready("p1")
    await w.player("p2")
    await w.player("p3", "USD")
    sess2 = await w.login("p2")
    await w.bet("p1", sess, 100, tx="b1")
    await w.rollback("p1", "b1", tx="rb1")
    log = await w.log()
    mismatch = (409, "DUPLICATE_MISMATCH")
    assert code(await w.bet("p1", sess, 101, tx="b1")) == mismatch
    assert code(await w.bet("p1", sess, 100, tx="b1", round_id="r2")) == mismatch
    assert code(await w.bet("p2", sess2, 100, tx="b1")) == mismatch
    assert code(await w.win("p1", 100, tx="b1")) == mismatch
    assert code(await w.rollback("p1", "b2", tx="rb1")) == mismatch
    assert code(await w.rollback("p1", "b1", tx="rb1", round_id="r9")) == mismatch
    assert code(await w.bet("p3", sess2, 100, tx="b1", currency="USD")) == mismatch
    # a code of another rule the call breaks is as good (currency first, here)
    assert code(await w.bet("p1", sess, 100, tx="b1", currency="USD")) == (422, "CURRENCY_MISMATCH")
    assert await w.log() == log


async def test_a_rejected_call_is_judged_again(w: Lenient) -> None:
    sess = await w.ready("p1", balance=50)
    assert code(await w.bet("p1", sess, 100, tx="b1")) == (402, "INSUFFICIENT_FUNDS")
    await w.admin("POST", "/admin/players/p1/deposit", {"amount": 50})
    status, body = await w.bet("p1", sess, 100, tx="b1")
    assert status == 200 and body["balance"] == 0


async def test_a_rollback_refunds_its_bet_once(w: Lenient) -> None:
    sess = await w.ready("p1")
    await w.bet("p1", sess, 100, tx="b1")
    assert (await w.rollback("p1", "b1"))[1]["balance"] == 1000
    for _ in range(2):
        status, body = await w.rollback("p1", "b1")
        assert status == 200 and body["balance"] == 1000
    assert await w.balance("p1") == 1000


async def test_a_rollback_of_an_unseen_bet_leaves_a_tombstone(w: Lenient) -> None:
    sess = await w.ready("p1")
    status, body = await w.rollback("p1", "b-late")
    assert status == 200 and body["balance"] == 1000
    assert code(await w.rollback("p1", "b-late")) == OK  # a second one: no change
    assert code(await w.bet("p1", sess, 100, tx="b-late")) == (409, "TX_ROLLED_BACK")
    assert code(await w.bet("p1", sess, 100, tx="b-late")) == (409, "TX_ROLLED_BACK")
    assert await w.balance("p1") == 1000


async def test_only_a_bet_can_be_rolled_back(w: Lenient) -> None:
    sess = await w.ready("p1")
    await w.bet("p1", sess, 100, tx="b1")
    await w.win("p1", 40, tx="w1")
    await w.rollback("p1", "b1", tx="rb1")
    assert code(await w.rollback("p1", "w1")) == (409, "ROLLBACK_NOT_ALLOWED")
    assert code(await w.rollback("p1", "rb1")) == (409, "ROLLBACK_NOT_ALLOWED")
    assert await w.balance("p1") == 1040


async def test_another_players_transaction_is_a_bet_this_player_never_had(w: Lenient) -> None:
    sess1 = await w.ready("p1")
    sess2 = await w.ready("p2")
    await w.bet("p1", sess1, 100, tx="b1")
    await w.win("p1", 5, tx="w1", reason="promo", round_id="r5")
    for ref in ("b1", "w1"):
        status, body = await w.rollback("p2", ref)
        assert status == 200 and body["balance"] == 1000
    assert await w.balance("p1") == 905  # never refunded to anybody
    assert (await w.rollback("p1", "b1"))[1]["balance"] == 1005  # still the owner's to roll back
    assert code(await w.bet("p2", sess2, 1, tx="b-of-p2")) == OK


async def test_a_closed_round_takes_no_more_calls_except_replays(w: Lenient) -> None:
    sess = await w.ready("p1")
    sess2 = await w.ready("p2")
    await w.bet("p1", sess, 100, tx="b1")
    await w.bet("p1", sess, 50, tx="b2")
    await w.rollback("p1", "b2", tx="rb2")
    _, closing = await w.win("p1", 0, tx="w1", closed=True)
    closed = (409, "ROUND_CLOSED")
    assert code(await w.bet("p1", sess, 10)) == closed
    assert code(await w.win("p1", 10, reason="promo")) == closed
    assert code(await w.rollback("p1", "b1")) == closed
    assert code(await w.rollback("p1", "b1", round_id="r-open")) == closed  # its bet's round is closed
    assert code(await w.rollback("p1", "b2")) == closed  # a second rollback on a closed round: not a replay
    assert code(await w.rollback("p1", "unseen")) == closed
    assert (await w.win("p1", 0, tx="w1", closed=True))[1]["wallet_tx_id"] == closing["wallet_tx_id"]
    assert code(await w.rollback("p1", "b2", tx="rb2")) == OK
    assert await w.balance("p1") == 900
    assert code(await w.bet("p2", sess2, 10, round_id="r1")) == OK  # rounds are per player


async def test_blocked_players_bets_are_refused_wins_and_rollbacks_paid(w: Lenient) -> None:
    sess = await w.ready("p1")
    await w.bet("p1", sess, 100, tx="b1")
    assert (await w.admin("POST", "/admin/players/p1/block", {}))[1]["blocked"] is True
    assert code(await w.bet("p1", sess, 10)) == (403, "PLAYER_BLOCKED")
    assert code(await w.win("p1", 10)) == OK
    assert code(await w.rollback("p1", "b1")) == OK
    assert await w.balance("p1") == 1010


async def test_unknown_fields_are_ignored(w: Lenient) -> None:
    await w.player("p1")
    _, tok = await w.admin("POST", "/admin/tokens", {"player_id": "p1"})
    status, auth = await w.call("authenticate", {"token": tok["token"], "game_id": "g", "device": "mobile"})
    assert status == 200
    sess = auth["session_token"]
    extra: dict[str, Any] = {"bonus_id": 7, "meta": {"a": [1, 2]}, "amount_decimal": "1.00"}
    assert code(await w.call("balance", {"player_id": "p1", "session_token": sess, **extra})) == OK
    assert code(await w.bet("p1", sess, 10, tx="b1", **extra)) == OK
    assert code(await w.win("p1", 10, **extra)) == OK
    assert code(await w.rollback("p1", "b1", **extra)) == OK
    assert await w.balance("p1") == 1010


async def test_bad_input_is_a_4xx_and_changes_nothing(w: Lenient) -> None:
    sess = await w.ready("p1")
    good: Json = {"tx_id": "t", "player_id": "p1", "session_token": sess, "game_id": "g", "round_id": "r",
                  "currency": "EUR", "amount": 10, "reason": "promo", "round_closed": False}
    bad = (400, "BAD_REQUEST")
    cases: list[tuple[str, bytes, tuple[int, str]]] = [
        ("win", json.dumps({**good, "amount": 10.5}).encode(), bad),
        ("win", json.dumps({**good, "amount": 10.0}).encode(), bad),
        ("win", json.dumps({**good, "amount": "10"}).encode(), bad),
        ("win", json.dumps({**good, "amount": True}).encode(), bad),
        ("win", json.dumps({**good, "amount": -1}).encode(), bad),
        ("win", json.dumps({**good, "amount": None}).encode(), bad),
        ("win", json.dumps({**good, "amount": 1}).replace('"amount": 1', '"amount": NaN').encode(), bad),
        ("win", json.dumps({**good, "round_closed": "false"}).encode(), bad),
        ("win", json.dumps({**good, "round_closed": 0}).encode(), bad),
        ("win", json.dumps({**good, "reason": "gift"}).encode(), bad),
        ("win", json.dumps({k: v for k, v in good.items() if k != "reason"}).encode(), bad),
        ("win", json.dumps({**good, "tx_id": 12}).encode(), bad),
        ("win", json.dumps({**good, "currency": 978}).encode(), bad),
        ("win", json.dumps({**good, "currency": "XTS"}).encode(), (422, "CURRENCY_MISMATCH")),
        ("win", json.dumps({**good, "currency": "USD"}).encode(), (422, "CURRENCY_MISMATCH")),
        ("bet", json.dumps({k: v for k, v in good.items() if k != "session_token"}).encode(), bad),
        ("rollback", json.dumps({**good, "ref_tx_id": ["x"]}).encode(), bad),
        ("bet", json.dumps([good]).encode(), bad),
        ("bet", b"null", bad),
        ("bet", b"\"bet\"", bad),
        ("bet", b"{not json", bad),
        ("bet", b"", bad),
        ("bet", b"\xff\xfe{}", bad),
        ("bet", b"[" * 60000, bad),
        ("bet", b" " * (64 * 1024 + 1), bad),
        ("authenticate", b"{}", bad),
        ("authenticate", b'{"token": 1, "game_id": "g"}', bad),
        ("balance", b'{"player_id": null, "session_token": "s"}', bad),
    ]
    log = await w.log()
    for op, body, want in cases:
        assert code(await w.raw(op, body)) == want, (op, body[:120])
    body = json.dumps(good).encode()
    sig = (401, "INVALID_SIGNATURE")
    now = int(w.clock.now)
    assert code(await w.raw("win", body, sign=None)) == sig
    assert code(await w.raw("win", body, secret="wrong")) == sig
    assert code(await w.raw("win", body, t=now - 301)) == sig
    assert code(await w.raw("win", body, t=now + 301)) == sig
    assert code(await w.raw("win", body, t=now - 300)) == OK
    assert len(await w.log()) == len(log) + 1


async def test_the_admin_api_is_the_protocols_table(w: Lenient) -> None:
    assert (await w.admin("GET", "/admin/players/p1", token="wrong"))[0] == 401
    assert (await w.admin("POST", "/admin/players", {"player_id": "p1", "currency": "EUR"}, token=""))[0] == 401
    status, body = await w.admin("POST", "/admin/players", {"player_id": "a/../b'", "currency": "BTC",
                                                             "balance": 5})
    assert status == 201 and body == {"player_id": "a/../b'", "currency": "BTC", "balance": 5, "blocked": False}
    assert (await w.admin("POST", "/admin/players", {"player_id": "a/../b'", "currency": "EUR"}))[0] == 409
    assert (await w.admin("POST", "/admin/players", {"player_id": "x", "currency": "XTS"}))[0] == 400
    assert (await w.admin("POST", "/admin/players", {"player_id": "x", "currency": "EUR", "balance": -1}))[0] == 400
    assert (await w.admin("GET", "/admin/players/a%2F..%2Fb'"))[1]["balance"] == 5
    assert (await w.admin("GET", "/admin/players/nobody"))[0] == 404
    status, body = await w.admin("POST", "/admin/players/a%2F..%2Fb'/deposit", {"amount": 7})
    assert status == 200 and body["balance"] == 12
    assert (await w.admin("POST", "/admin/players/a%2F..%2Fb'/deposit", {"amount": 0}))[0] == 400
    assert (await w.admin("POST", "/admin/players/nobody/deposit", {"amount": 1}))[0] == 404
    assert (await w.admin("POST", "/admin/players/a%2F..%2Fb'/block", {}))[1]["blocked"] is True
    status, body = await w.admin("POST", "/admin/tokens", {"player_id": "a/../b'"})
    assert status == 201 and body["token"]
    assert (await w.admin("POST", "/admin/tokens", {"player_id": "nobody"}))[0] == 404
    assert (await w.admin("POST", "/admin/tokens", {"player_id": "a/../b'", "ttl_s": -1}))[0] == 400
    # not the reference wallet's extras
    assert (await w.admin("POST", "/admin/players/a%2F..%2Fb'/unblock", {}))[0] in (404, 405)
    assert (await w.admin("GET", "/admin/players"))[0] in (404, 405)
    assert (await w.admin("GET", "/admin/reports/ggr"))[0] == 404
    async with w.http.get(f"{w.base}/healthz") as resp:
        assert resp.status == 200


async def test_the_transaction_log_in_jsonl_and_csv(w: Lenient) -> None:
    sess = await w.ready("p1")
    await w.ready("p2")
    await w.bet("p1", sess, 100, tx="b1")
    w.clock.advance(100)
    await w.win("p1", 30, tx="w1")
    rows = await w.log("p1")
    assert [(r["op"], r["tx_id"], r["delta"], r["balance_after"]) for r in rows] == [
        ("deposit", None, 1000, 1000), ("bet", "b1", -100, 900), ("win", "w1", 30, 930)]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    since = str(int(w.clock.now) - 10)
    async with w.http.get(f"{w.base}/admin/transactions", params={"player_id": "p1", "since": since,
                                                                 "format": "csv"}, headers=headers) as resp:
        assert resp.status == 200
        table = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["tx_id"] for r in table] == ["w1"]
    async with w.http.get(f"{w.base}/admin/transactions", params={"format": "xml"}, headers=headers) as resp:
        assert resp.status == 400
    async with w.http.get(f"{w.base}/admin/transactions", params={"since": "yesterday"}, headers=headers) as resp:
        assert resp.status == 400
    assert len(await w.log()) == 4  # both players' opening deposits, the bet, the win


async def test_concurrent_calls_are_serialized(w: Lenient) -> None:
    sess = await w.ready("p1", balance=10_000)
    answers = await asyncio.gather(*(w.bet("p1", sess, 10, tx=f"b{i}") for i in range(50)),
                                   *(w.bet("p1", sess, 7, tx="same") for _ in range(10)))
    assert all(s == 200 for s, _ in answers)
    assert len({b["wallet_tx_id"] for _, b in answers[50:]}) == 1
    assert await w.balance("p1") == 10_000 - 500 - 7
    answers = await asyncio.gather(*(w.rollback("p1", "b0") for _ in range(10)))
    assert all(s == 200 for s, _ in answers)
    assert await w.balance("p1") == 10_000 - 490 - 7


# -- each planted bug is really there ------------------------------------------------------------------


async def test_bug_double_applied_replay() -> None:
    async with serve("double_applied_replay") as w:
        sess = await w.ready()
        await w.bet("p1", sess, 100, tx="b1")
        assert (await w.bet("p1", sess, 100, tx="b1"))[1]["balance"] == 800


async def test_bug_replay_new_wallet_tx_id() -> None:
    async with serve("replay_new_wallet_tx_id") as w:
        sess = await w.ready()
        _, first = await w.bet("p1", sess, 100, tx="b1")
        _, again = await w.bet("p1", sess, 100, tx="b1")
        assert again["balance"] == 900 and again["wallet_tx_id"] != first["wallet_tx_id"]


async def test_bug_mismatch_accepted() -> None:
    async with serve("mismatch_accepted") as w:
        sess = await w.ready()
        await w.bet("p1", sess, 100, tx="b1")
        assert code(await w.bet("p1", sess, 500, tx="b1")) == OK
        assert await w.balance("p1") == 900


async def test_bug_rejection_recorded() -> None:
    async with serve("rejection_recorded") as w:
        sess = await w.ready(balance=50)
        assert code(await w.bet("p1", sess, 100, tx="b1")) == (402, "INSUFFICIENT_FUNDS")
        await w.admin("POST", "/admin/players/p1/deposit", {"amount": 50})
        assert code(await w.bet("p1", sess, 100, tx="b1")) == (402, "INSUFFICIENT_FUNDS")


@pytest.mark.parametrize("bug", ["second_rollback_refunds", "second_rollback_new_tx_refunds"])
async def test_bug_second_rollback_refunds(bug: str) -> None:
    async with serve(bug) as w:
        sess = await w.ready()
        await w.bet("p1", sess, 100, tx="b1")
        await w.rollback("p1", "b1")
        assert (await w.rollback("p1", "b1"))[1]["balance"] == 1100


async def test_bug_concurrent_rollbacks_refund_twice() -> None:
    async with serve("concurrent_rollbacks_refund_twice") as w:
        sess = await w.ready()
        await w.bet("p1", sess, 100, tx="b1")
        await asyncio.gather(w.rollback("p1", "b1"), w.rollback("p1", "b1"))
        assert await w.balance("p1") == 1100
        # one at a time it is right, and copies of one rollback are still one
        await w.bet("p1", sess, 100, tx="b2")
        await asyncio.gather(*(w.rollback("p1", "b2", tx="rb-b2") for _ in range(3)))
        await w.rollback("p1", "b2")
        assert await w.balance("p1") == 1100


async def test_bug_no_tombstone() -> None:
    async with serve("no_tombstone") as w:
        sess = await w.ready()
        await w.rollback("p1", "late")
        assert code(await w.bet("p1", sess, 100, tx="late")) == OK


async def test_bug_rollback_of_win_allowed() -> None:
    async with serve("rollback_of_win_allowed") as w:
        await w.ready()
        await w.win("p1", 40, tx="w1", reason="promo")
        status, body = await w.rollback("p1", "w1")
        assert status == 200 and body["balance"] == 1000


async def test_bug_lost_update() -> None:
    async with serve("lost_update") as w:
        sess = await w.ready()
        await asyncio.gather(w.bet("p1", sess, 100), w.bet("p1", sess, 200))
        assert await w.balance("p1") in (900, 800)


async def test_bug_concurrent_duplicates_applied() -> None:
    async with serve("concurrent_duplicates_applied") as w:
        sess = await w.ready()
        await asyncio.gather(*(w.bet("p1", sess, 100, tx="b1") for _ in range(3)))
        assert await w.balance("p1") == 700
        await w.bet("p1", sess, 100, tx="b1")  # one at a time: a replay
        assert await w.balance("p1") == 700


async def test_bug_overdraft_allowed() -> None:
    async with serve("overdraft_allowed") as w:
        sess = await w.ready(balance=10)
        status, body = await w.bet("p1", sess, 100)
        assert status == 200 and body["balance"] == -90


async def test_bug_win_refused_on_expired_session() -> None:
    async with serve("win_refused_on_expired_session") as w:
        await w.player("p1")
        expired = await w.login("p1", ttl=0)
        assert code(await w.win("p1", 10, reason="promo", sess=expired)) == (401, "SESSION_EXPIRED")
        assert code(await w.win("p1", 10, reason="promo", sess="not-a-session")) == OK


async def test_bug_bet_on_expired_session() -> None:
    async with serve("bet_on_expired_session") as w:
        await w.player("p1")
        expired = await w.login("p1", ttl=0)
        assert code(await w.bet("p1", expired, 10)) == OK
        assert code(await w.bet("p1", "never-issued", 10)) == (401, "INVALID_TOKEN")


async def test_bug_bet_with_other_players_session() -> None:
    async with serve("bet_with_other_players_session") as w:
        await w.ready("p1")
        other = await w.ready("p2")
        assert code(await w.bet("p1", other, 10)) == OK
        assert await w.balance("p1") == 990


async def test_bug_signature_not_checked() -> None:
    async with serve("signature_not_checked") as w:
        await w.player("p1")
        assert code(await w.call("balance", {"player_id": "p1", "session_token": "s"}, sign=None)) == OK
        assert code(await w.call("balance", {"player_id": "p1", "session_token": "s"}, secret="x")) == OK


async def test_bug_refuses_unknown_fields() -> None:
    async with serve("refuses_unknown_fields") as w:
        sess = await w.ready()
        assert code(await w.bet("p1", sess, 10)) == OK
        assert code(await w.win("p1", 10, reason="promo", campaign="x")) == (400, "BAD_REQUEST")


async def test_bug_wrong_currency_accepted() -> None:
    async with serve("wrong_currency_accepted") as w:
        sess = await w.ready()
        status, body = await w.bet("p1", sess, 100, currency="JPY")
        assert status == 200 and body["balance"] == 900 and body["currency"] == "EUR"


async def test_bug_closed_round_ignored() -> None:
    async with serve("closed_round_ignored") as w:
        sess = await w.ready()
        await w.win("p1", 0, reason="promo", closed=True)
        assert code(await w.bet("p1", sess, 10)) == OK


async def test_bug_regular_win_without_bet() -> None:
    async with serve("regular_win_without_bet") as w:
        await w.ready()
        assert code(await w.win("p1", 10, reason="regular", round_id="no-bet")) == OK


async def test_bug_wraps_at_64_bits() -> None:
    async with serve("wraps_at_64_bits") as w:
        await w.player("p1", balance=INT64_MAX)
        status, body = await w.win("p1", 1, reason="jackpot")
        assert status == 200 and body["balance"] == -(2**63)


async def test_bug_float_amounts_accepted() -> None:
    async with serve("float_amounts_accepted") as w:
        sess = await w.ready()
        status, body = await w.bet("p1", sess, 10.9)  # type: ignore[arg-type]
        assert status == 200 and body["balance"] == 990
        assert code(await w.bet("p1", sess, -2.5)) == (400, "BAD_REQUEST")  # type: ignore[arg-type]


async def test_bug_crashes_on_quotes() -> None:
    async with serve("crashes_on_quotes") as w:
        sess = await w.ready("o'brien")
        assert code(await w.bet("o'brien", sess, 10)) == (500, "INTERNAL")
        assert code(await w.call("balance", {"player_id": "o'brien", "session_token": sess})) == (500, "INTERNAL")
        assert await w.balance("o'brien") == 1000


async def test_bug_tx_id_reused_across_players() -> None:
    async with serve("tx_id_reused_across_players") as w:
        sess1 = await w.ready("p1")
        sess2 = await w.ready("p2")
        await w.bet("p1", sess1, 100, tx="b1")
        status, body = await w.bet("p2", sess2, 100, tx="b1")
        assert status == 200 and body["balance"] == 1000
        assert await w.balance("p2") == 1000


async def test_bug_rollback_of_other_players_bet() -> None:
    async with serve("rollback_of_other_players_bet") as w:
        sess1 = await w.ready("p1")
        await w.ready("p2")
        await w.bet("p1", sess1, 100, tx="b1")
        status, body = await w.rollback("p2", "b1")
        assert status == 200 and body["balance"] == 1100
        assert await w.balance("p1") == 900


async def test_bug_forgets_old_tx_ids() -> None:
    async with serve("forgets_old_tx_ids") as w:
        sess = await w.ready(balance=100_000)
        await w.bet("p1", sess, 100, tx="b-old")
        assert (await w.bet("p1", sess, 100, tx="b-old"))[1]["balance"] == 99_900  # still remembered
        for i in range(LRU_SIZE):
            await w.win("p1", 1, reason="promo", tx=f"w{i}")
        assert (await w.bet("p1", sess, 100, tx="b-old"))[1]["balance"] == 99_900 + LRU_SIZE - 100


# -- the new bugs on the reference base (tests/planted_wallets.py) ---------------------------------------


@contextlib.asynccontextmanager
async def reference(bug: str) -> AsyncIterator[Lenient]:
    """The reference wallet with ``bug``, spoken to with the same signed calls (its clock is the real one)."""
    clock = FakeClock()
    clock.now = time.time()
    async with serve_app(make_planted_app(bug), clock) as wallet:
        yield wallet


async def test_reference_bug_second_rollback_new_tx_refunds() -> None:
    async with reference("second_rollback_new_tx_refunds") as w:
        sess = await w.ready()
        await w.bet("p1", sess, 100, tx="b1")
        await w.rollback("p1", "b1", sess=sess)
        assert code(await w.rollback("p1", "b1", sess=sess)) == OK
        assert await w.balance("p1") == 1100


async def test_reference_bug_concurrent_rollbacks_refund_twice() -> None:
    async with reference("concurrent_rollbacks_refund_twice") as w:
        sess = await w.ready()
        await w.bet("p1", sess, 100, tx="b1")
        await asyncio.gather(w.rollback("p1", "b1", sess=sess), w.rollback("p1", "b1", sess=sess))
        assert await w.balance("p1") == 1100
        await w.bet("p1", sess, 100, tx="b2", round_id="r2")
        await asyncio.gather(*(w.rollback("p1", "b2", tx="rb-b2", sess=sess, round_id="r2") for _ in range(3)))
        await w.rollback("p1", "b2", sess=sess, round_id="r2")
        assert await w.balance("p1") == 1100


async def test_reference_bug_tx_id_reused_across_players() -> None:
    async with reference("tx_id_reused_across_players") as w:
        sess1 = await w.ready("p1")
        sess2 = await w.ready("p2")
        await w.bet("p1", sess1, 100, tx="b1")
        status, body = await w.bet("p2", sess2, 100, tx="b1")
        assert status == 200 and body["balance"] == 1000 and await w.balance("p2") == 1000


async def test_reference_bug_bet_with_other_players_session() -> None:
    async with reference("bet_with_other_players_session") as w:
        await w.ready("p1")
        other = await w.ready("p2")
        assert code(await w.bet("p1", other, 10)) == OK
        assert code(await w.bet("p1", "never-issued", 10)) == (401, "INVALID_TOKEN")
        assert await w.balance("p1") == 990


async def test_reference_bug_rollback_of_other_players_bet() -> None:
    async with reference("rollback_of_other_players_bet") as w:
        sess1 = await w.ready("p1")
        sess2 = await w.ready("p2")
        await w.bet("p1", sess1, 100, tx="b1")
        status, body = await w.rollback("p2", "b1", sess=sess2)
        assert status == 200 and body["balance"] == 1100 and await w.balance("p1") == 900


async def test_reference_bug_forgets_old_tx_ids() -> None:
    async with reference("forgets_old_tx_ids") as w:
        sess = await w.ready(balance=100_000)
        await w.bet("p1", sess, 100, tx="b-old")
        assert (await w.bet("p1", sess, 100, tx="b-old"))[1]["balance"] == 99_900
        for i in range(LRU_SIZE):
            await w.win("p1", 1, reason="promo", tx=f"w{i}", sess=sess)
        assert (await w.bet("p1", sess, 100, tx="b-old"))[1]["balance"] == 99_900 + LRU_SIZE - 100


async def test_reference_bug_refuses_unknown_fields() -> None:
    async with reference("refuses_unknown_fields") as w:
        sess = await w.ready()
        assert code(await w.bet("p1", sess, 10)) == OK
        assert code(await w.bet("p1", sess, 10, campaign="x")) == (400, "BAD_REQUEST")


async def test_reference_bug_wraps_at_64_bits() -> None:
    async with reference("wraps_at_64_bits") as w:
        await w.player("p1", balance=INT64_MAX)
        sess = await w.login("p1")
        status, body = await w.win("p1", 1, reason="jackpot", sess=sess)
        assert status == 200 and body["balance"] == -(2**63)
