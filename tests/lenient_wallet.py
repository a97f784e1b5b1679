"""A second, independent wallet for the test suite: PROTOCOL.md followed, every free choice made the other way.

Written from PROTOCOL.md alone (it shares no code with the reference wallet in ``simulator/wallet/``:
only the HMAC check of :mod:`simulator.protocol.signing`, the currency table of :mod:`simulator.protocol.money` and the
error codes of :mod:`simulator.protocol.codes`), so that ``croupier check`` can be shown not to fail a correct
wallet that chose differently where "Where a wallet may choose" lets it.  Its choices:

* **Order of the checks.** Signature, then the player (an unknown player is ``PLAYER_NOT_FOUND``, even
  for a reused ``tx_id``), then the other fields (``BAD_REQUEST``), then the currency, then the
  ``tx_id`` record (replay / ``DUPLICATE_MISMATCH``), then tombstone, closed round, block, session,
  funds.  A replay is always answered as one, whatever its session, block or round.
* **Sessions.** ``session_token`` is ignored on ``win``, ``rollback`` and ``balance`` (any string);
  a ``bet`` needs a live session issued to its own player.
* **Rollback.** The bet is found by ``ref_tx_id`` and the player only: a rollback naming another round or
  game refunds it all the same.  Another player's transaction is a bet this player never had: 200, no
  change, a tombstone.  A closed round (the one the rollback names, or its bet's) is ``ROUND_CLOSED``
  for every rollback that is not a replay, a second rollback of a refunded bet included.
* **A regular win after the round's only bet was rolled back** is accepted.
* **authenticate.** A launch token's session lifetime starts at its first exchange; exchanging it again
  before then gives a *new* session token (expiring with the first), after then ``SESSION_EXPIRED``.
  A blocked player may authenticate.
* **Money.** ``wallet_tx_id`` is a UUID; balances are Python ints, with no 64-bit limit.
* **Input.** Unknown fields are ignored; a missing or mistyped listed field is ``BAD_REQUEST``; ids are
  any JSON strings.

The admin API is exactly PROTOCOL.md's table (no unblock, no player list, no GGR report).

:data:`LENIENT_PLANTED` names the bugs that can be switched on (``bugs=``), each breaking one rule of
PROTOCOL.md on this base.  Serve one by hand::

    python -m tests.lenient_wallet [bug] --port 8098
    croupier check --wallet http://127.0.0.1:8098/wallet --secret test-secret --admin-token test-admin
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hmac
import io
import json
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from aiohttp import web

from simulator.protocol import signing
from simulator.protocol.codes import ErrorCode, http_status
from simulator.protocol.money import CURRENCIES
from tests.child_servers import serve_from_child, wallet_main

SECRET: Final = "test-secret"
ADMIN_TOKEN: Final = "test-admin"
MAX_BODY: Final = 64 * 1024
REASONS: Final = frozenset({"regular", "free_spin", "bonus", "jackpot", "promo", "tournament", "cashback"})
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "authenticate": ("token", "game_id"),
    "balance": ("player_id", "session_token"),
    "bet": ("tx_id", "player_id", "session_token", "game_id", "round_id", "currency", "amount"),
    "win": ("tx_id", "player_id", "session_token", "game_id", "round_id", "currency", "amount", "reason",
            "round_closed"),
    "rollback": ("tx_id", "ref_tx_id", "player_id", "session_token", "game_id", "round_id"),
}
MONEY_OPS: Final = ("bet", "win", "rollback")
LRU_SIZE: Final = 200
"""How many tx_ids ``forgets_old_tx_ids`` remembers."""
RACE_S: Final = 0.002
"""The await the racy bugs take outside the lock."""


# -- the catalogue of planted bugs ---------------------------------------------------------------


@dataclass(frozen=True)
class LenientBug:
    """One bug of the lenient wallet: the rule of PROTOCOL.md the checker must report, and what it does."""

    rule: str
    doc: str


LENIENT_PLANTED: Final[dict[str, LenientBug]] = {
    "double_applied_replay": LenientBug(
        "idempotency-1-no-change", "a replayed bet or win is applied again"),
    "replay_new_wallet_tx_id": LenientBug(
        "idempotency-1-original-id", "a replay is answered with a new wallet_tx_id"),
    "mismatch_accepted": LenientBug(
        "idempotency-2-mismatch", "a reused tx_id with other fields is answered as a replay"),
    "rejection_recorded": LenientBug(
        "idempotency-3-rejected-not-recorded", "a refused call gets its first refusal back when sent again"),
    "second_rollback_refunds": LenientBug(
        "idempotency-4-rollback-once", "a refunded bet is never marked: every later rollback refunds it again"),
    "second_rollback_new_tx_refunds": LenientBug(
        "idempotency-4-rollback-once",
        "a refund is remembered under the rollback's tx_id, not the bet: a second rollback under a new tx_id "
        "refunds again"),
    "concurrent_rollbacks_refund_twice": LenientBug(
        "idempotency-4-rollback-once",
        "checks 'already rolled back', then awaits outside the lock before refunding: rollbacks of one bet at "
        "once refund it more than once"),
    "no_tombstone": LenientBug(
        "idempotency-5-tombstone", "a bet whose tx_id was rolled back before it arrived is accepted"),
    "rollback_of_win_allowed": LenientBug(
        "idempotency-6-rollback-only-bets", "a rollback naming a win takes the win back"),
    "lost_update": LenientBug(
        "idempotency-7-serialized", "reads the balance, awaits outside the lock, writes what it computed"),
    "concurrent_duplicates_applied": LenientBug(
        "idempotency-7-concurrent-duplicates",
        "looks the tx_id up, awaits outside the lock, then applies: copies in flight together all apply"),
    "overdraft_allowed": LenientBug(
        "idempotency-7-never-negative", "a bet larger than the balance is accepted"),
    "win_refused_on_expired_session": LenientBug(
        "sessions-money-owed-is-paid", "a win whose (own) session expired is SESSION_EXPIRED"),
    "bet_on_expired_session": LenientBug(
        "sessions-bet-needs-live-session", "a bet on its player's expired session is accepted"),
    "bet_with_other_players_session": LenientBug(
        "sessions-bet-needs-live-session", "a bet is accepted with any live session, even another player's"),
    "signature_not_checked": LenientBug(
        "transport-signature", "X-Signature is never verified"),
    "refuses_unknown_fields": LenientBug(
        "transport-unknown-fields", "a request with a field it does not know is BAD_REQUEST"),
    "wrong_currency_accepted": LenientBug(
        "money-currency", "a bet or win in any currency is taken as if in the player's"),
    "closed_round_ignored": LenientBug(
        "operations-round-closed", "round_closed: true is never enforced"),
    "regular_win_without_bet": LenientBug(
        "operations-regular-win-needs-bet", "a regular win is paid in a round without a bet"),
    "wraps_at_64_bits": LenientBug(
        "idempotency-7-never-negative", "balances are signed 64-bit: a credit past 2^63-1 wraps to a negative number"),
    "float_amounts_accepted": LenientBug(
        "money-minor-units", "a float amount is truncated instead of refused"),
    "crashes_on_quotes": LenientBug(
        "errors-definitive", "an id with a quote makes it fail (HTTP 500)"),
    "tx_id_reused_across_players": LenientBug(
        "idempotency-2-mismatch",
        "idempotency keyed by (player_id, tx_id): another player's tx_id is answered 200 as if a replay, "
        "nothing applied"),
    "rollback_of_other_players_bet": LenientBug(
        "rollback-finds-bet-by-player", "a rollback finds its bet by ref_tx_id alone and refunds another "
        "player's bet to the caller"),
    "forgets_old_tx_ids": LenientBug(
        "idempotency-1-no-change", f"remembers only the last {LRU_SIZE} tx_ids: an older one sent again is "
        "applied again"),
}


# -- state -----------------------------------------------------------------------------------------


@dataclass
class Player:
    player_id: str
    currency: str
    balance: int
    blocked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "currency": self.currency, "balance": self.balance,
                "blocked": self.blocked}


@dataclass
class Launch:
    player_id: str
    ttl_s: int
    expires_at: float | None = None
    """Set at the first exchange: every session made from this token ends then."""


@dataclass
class Session:
    player_id: str
    expires_at: float


@dataclass
class Tx:
    """An accepted call (or an admin deposit: ``tx_id`` None), as the transaction log shows it."""

    wallet_tx_id: str
    tx_id: str | None
    op: str
    player_id: str
    game_id: str | None
    round_id: str | None
    currency: str | None
    amount: int | None
    ref_tx_id: str | None
    reason: str | None
    round_closed: bool | None
    delta: int
    balance_after: int
    created_at: float
    rolled_back: bool = False

    def key(self) -> tuple[Any, ...]:
        return (self.op, self.player_id, self.round_id, self.amount, self.currency, self.ref_tx_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "wallet_tx_id": self.wallet_tx_id, "tx_id": self.tx_id, "op": self.op, "player_id": self.player_id,
            "game_id": self.game_id, "round_id": self.round_id, "currency": self.currency, "amount": self.amount,
            "ref_tx_id": self.ref_tx_id, "reason": self.reason, "round_closed": self.round_closed,
            "delta": self.delta, "balance_after": self.balance_after, "rolled_back": self.rolled_back,
            "created_at": self.created_at,
        }


TX_COLUMNS: Final = ("wallet_tx_id", "tx_id", "op", "player_id", "game_id", "round_id", "currency", "amount",
                     "ref_tx_id", "reason", "round_closed", "delta", "balance_after", "rolled_back", "created_at")


@dataclass
class Round:
    closed: bool = False
    had_bet: bool = False
    """An accepted bet of this player in this round, rolled back or not (a regular win may follow)."""


@dataclass
class Call:
    op: str
    player_id: str
    tx_id: str = ""
    session_token: str = ""
    game_id: str = ""
    round_id: str = ""
    currency: str | None = None
    amount: int | None = None
    reason: str | None = None
    round_closed: bool | None = None
    ref_tx_id: str | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.op, self.player_id, self.round_id, self.amount, self.currency, self.ref_tx_id)


class Refusal(Exception):
    """A definitive rejection: a 4xx with a code, and nothing changed."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _wrap64(value: int) -> int:
    return (value + 2**63) % 2**64 - 2**63


# -- JSON that holds any integer -------------------------------------------------------------------


def _parse_int(text: str) -> int:
    # Python refuses int(str) past 4,300 digits; Decimal does not (a 64 KiB body bounds the size).
    return int(text) if len(text) < 4000 else int(Decimal(text))


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_int=_parse_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Refusal(ErrorCode.BAD_REQUEST, f"body is not valid UTF-8 JSON: {type(exc).__name__}") from None


def _dumps(value: Any) -> str:
    """JSON of flat values; integers of any size written exactly."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) < 10**18 else str(Decimal(value))
    return json.dumps(value)


def _response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=_dumps(body).encode(), content_type="application/json")


def _error(code: ErrorCode, message: str) -> web.Response:
    return _response({"status": "error", "code": str(code), "message": message}, http_status(code))


# -- the wallet ------------------------------------------------------------------------------------


@dataclass
class LenientWallet:
    """The whole wallet: state, rules and the bugs switched on."""

    secret: str
    admin_token: str
    bugs: frozenset[str] = frozenset()
    session_ttl: int = 3600
    clock: Callable[[], float] = time.time
    players: dict[str, Player] = field(default_factory=dict)
    launches: dict[str, Launch] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    log: list[Tx] = field(default_factory=list)
    by_tx_id: dict[str, Tx] = field(default_factory=dict)
    tombstones: dict[str, set[str]] = field(default_factory=dict)
    """ref_tx_id → the players whose rollback of it came before (or without) a bet of theirs."""
    rounds: dict[tuple[str, str], Round] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    refused: dict[str, Refusal] = field(default_factory=dict)
    """rejection_recorded: the first refusal of each tx_id."""
    remembered: OrderedDict[str, None] = field(default_factory=OrderedDict)
    """forgets_old_tx_ids: the tx_ids its idempotency memory still holds, oldest first."""
    refunded_by: dict[str, str] = field(default_factory=dict)
    """second_rollback_new_tx_refunds: bet tx_id → the rollback tx_id that refunded it."""

    def __post_init__(self) -> None:
        unknown = set(self.bugs) - set(LENIENT_PLANTED)
        if unknown:
            raise ValueError(f"unknown lenient bug(s): {', '.join(sorted(unknown))}")

    def bug(self, name: str) -> bool:
        return name in self.bugs

    # -- small state helpers ---------------------------------------------------------------------
    def _set_balance(self, player: Player, value: int) -> None:
        player.balance = _wrap64(value) if self.bug("wraps_at_64_bits") else value

    def _round(self, player_id: str, round_id: str) -> Round:
        return self.rounds.setdefault((player_id, round_id), Round())

    def _closed(self, player_id: str, round_id: str) -> bool:
        if self.bug("closed_round_ignored"):
            return False
        r = self.rounds.get((player_id, round_id))
        return r is not None and r.closed

    def _recorded(self, tx_id: str) -> Tx | None:
        """The transaction the idempotency memory holds under ``tx_id``."""
        tx = self.by_tx_id.get(tx_id)
        if tx is not None and self.bug("forgets_old_tx_ids"):
            if tx_id not in self.remembered:
                return None
            self.remembered.move_to_end(tx_id)
        return tx

    def _record(self, call: Call, player: Player, delta: int, now: float) -> Tx:
        tx = Tx(str(uuid.uuid4()), call.tx_id, call.op, call.player_id, call.game_id, call.round_id, call.currency,
                call.amount, call.ref_tx_id, call.reason, call.round_closed, delta, player.balance, now)
        self.log.append(tx)
        self.by_tx_id[call.tx_id] = tx
        if self.bug("forgets_old_tx_ids"):
            self.remembered[call.tx_id] = None
            self.remembered.move_to_end(call.tx_id)
            while len(self.remembered) > LRU_SIZE:
                self.remembered.popitem(last=False)
        return tx

    def _deposit_row(self, player: Player, amount: int, now: float) -> None:
        self.log.append(Tx(str(uuid.uuid4()), None, "deposit", player.player_id, None, None, player.currency,
                           amount, None, None, None, amount, player.balance, now))

    @staticmethod
    def _ok(player: Player, wallet_tx_id: str) -> dict[str, Any]:
        return {"status": "ok", "balance": player.balance, "currency": player.currency, "wallet_tx_id": wallet_tx_id}

    # -- decoding ----------------------------------------------------------------------------------
    def _object(self, op: str, raw: bytes) -> dict[str, Any]:
        data = _loads(raw)
        if not isinstance(data, dict):
            raise Refusal(ErrorCode.BAD_REQUEST, "body must be a JSON object")
        if self.bug("refuses_unknown_fields"):
            unknown = sorted(set(data) - set(FIELDS[op]))
            if unknown:
                raise Refusal(ErrorCode.BAD_REQUEST, f"unknown field(s): {', '.join(k[:64] for k in unknown)}")
        return data

    @staticmethod
    def _str(data: dict[str, Any], name: str) -> str:
        if name not in data:
            raise Refusal(ErrorCode.BAD_REQUEST, f"missing field {name}")
        value = data[name]
        if not isinstance(value, str):
            raise Refusal(ErrorCode.BAD_REQUEST, f"{name} must be a string")
        return value

    def _amount(self, data: dict[str, Any]) -> int:
        if "amount" not in data:
            raise Refusal(ErrorCode.BAD_REQUEST, "missing field amount")
        value = data["amount"]
        if self.bug("float_amounts_accepted") and isinstance(value, float) and math.isfinite(value):
            value = int(value)
        if type(value) is not int:
            raise Refusal(ErrorCode.BAD_REQUEST, "amount must be a JSON integer of minor units")
        if value < 0:
            raise Refusal(ErrorCode.BAD_REQUEST, "amount must not be negative")
        return value

    def _player_first(self, data: dict[str, Any]) -> Player:
        player = self.players.get(self._str(data, "player_id"))
        if player is None:
            raise Refusal(ErrorCode.PLAYER_NOT_FOUND, "no such player")
        return player

    def _money_call(self, op: str, data: dict[str, Any]) -> tuple[Call, Player]:
        """Player first, then the other fields, then the currency."""
        player = self._player_first(data)
        call = Call(op, player.player_id, tx_id=self._str(data, "tx_id"),
                    session_token=self._str(data, "session_token"), game_id=self._str(data, "game_id"),
                    round_id=self._str(data, "round_id"))
        if op == "rollback":
            call.ref_tx_id = self._str(data, "ref_tx_id")
        else:
            call.currency = self._str(data, "currency")
            call.amount = self._amount(data)
        if op == "win":
            reason = data.get("reason")
            if "reason" not in data or not isinstance(reason, str) or reason not in REASONS:
                raise Refusal(ErrorCode.BAD_REQUEST, f"reason must be one of {', '.join(sorted(REASONS))}")
            if not isinstance(data.get("round_closed"), bool):
                raise Refusal(ErrorCode.BAD_REQUEST, "round_closed must be true or false")
            call.reason, call.round_closed = reason, data["round_closed"]
        if self.bug("crashes_on_quotes"):
            for value in (call.tx_id, call.round_id, call.player_id, call.ref_tx_id):
                if value and "'" in value:
                    raise RuntimeError(f"syntax error at or near {value!r}")
        if call.currency is not None and call.currency != player.currency and not self.bug("wrong_currency_accepted"):
            raise Refusal(ErrorCode.CURRENCY_MISMATCH, f"the player's currency is {player.currency}")
        return call, player

    # -- the protocol --------------------------------------------------------------------------------
    async def authenticate(self, raw: bytes, now: float) -> dict[str, Any]:
        data = self._object("authenticate", raw)
        token, _game = self._str(data, "token"), self._str(data, "game_id")
        async with self.lock:
            launch = self.launches.get(token)
            if launch is None:
                raise Refusal(ErrorCode.INVALID_TOKEN, "unknown launch token")
            if launch.expires_at is None:
                launch.expires_at = now + launch.ttl_s
            elif now >= launch.expires_at:
                raise Refusal(ErrorCode.SESSION_EXPIRED, "the session lifetime of this launch token is over")
            session_token = uuid.uuid4().hex
            self.sessions[session_token] = Session(launch.player_id, launch.expires_at)
            player = self.players[launch.player_id]
            return {"status": "ok", "player_id": player.player_id, "currency": player.currency,
                    "balance": player.balance, "session_token": session_token}

    async def balance(self, raw: bytes, now: float) -> dict[str, Any]:
        data = self._object("balance", raw)
        player = self._player_first(data)
        self._str(data, "session_token")  # a listed field: present and a string, otherwise ignored
        if self.bug("crashes_on_quotes") and "'" in player.player_id:
            raise RuntimeError(f"syntax error at or near {player.player_id!r}")
        return {"status": "ok", "balance": player.balance, "currency": player.currency}

    async def money(self, op: str, raw: bytes, now: float) -> dict[str, Any]:
        data = self._object(op, raw)
        call, player = self._money_call(op, data)
        if self.bug("rejection_recorded") and call.tx_id in self.refused:
            raise self.refused[call.tx_id]
        try:
            return await self._money(call, player, now)
        except Refusal as refusal:
            if self.bug("rejection_recorded"):
                self.refused.setdefault(call.tx_id, refusal)
            raise

    async def _money(self, call: Call, player: Player, now: float) -> dict[str, Any]:
        fresh = False
        if self.bug("concurrent_duplicates_applied") and self._recorded(call.tx_id) is None:
            await asyncio.sleep(RACE_S)  # looked up, then awaits outside the lock: copies all see "new"
            fresh = True
        stale: int | None = None
        if self.bug("lost_update"):
            stale = player.balance
            await asyncio.sleep(RACE_S)  # read, await outside the lock, then write what was computed
        force_refund = False
        if self.bug("concurrent_rollbacks_refund_twice") and call.op == "rollback":
            bet = self.by_tx_id.get(call.ref_tx_id or "")
            if (bet is not None and bet.op == "bet" and bet.player_id == call.player_id and not bet.rolled_back
                    and self._recorded(call.tx_id) is None):
                await asyncio.sleep(RACE_S)  # "not rolled back yet" was checked; the refund follows later
                force_refund = True
        async with self.lock:
            return self._decide(call, player, now, fresh=fresh, stale=stale, force_refund=force_refund)

    def _decide(self, call: Call, player: Player, now: float, *, fresh: bool, stale: int | None,
                force_refund: bool) -> dict[str, Any]:
        """Judge and apply one money call; runs without an await, under the lock."""
        seen = None if fresh else self._recorded(call.tx_id)
        if seen is not None:
            if self.bug("tx_id_reused_across_players") and seen.player_id != call.player_id:
                return self._ok(player, str(uuid.uuid4()))  # "a replay" of another player's record
            if seen.key() == call.key():
                if self.bug("double_applied_replay") and call.op in ("bet", "win"):
                    seen = None
                elif self.bug("replay_new_wallet_tx_id"):
                    return self._ok(player, str(uuid.uuid4()))
                else:
                    return self._ok(player, seen.wallet_tx_id)
            elif self.bug("mismatch_accepted"):
                return self._ok(player, seen.wallet_tx_id)
            else:
                raise Refusal(ErrorCode.DUPLICATE_MISMATCH, "tx_id was already used with other fields")
        balance = player.balance if stale is None else stale
        if call.op == "bet":
            return self._bet(call, player, balance, now)
        if call.op == "win":
            return self._win(call, player, balance, now)
        return self._rollback(call, player, balance, now, force_refund)

    def _bet(self, call: Call, player: Player, balance: int, now: float) -> dict[str, Any]:
        assert call.amount is not None
        if call.tx_id in self.tombstones and not self.bug("no_tombstone"):
            raise Refusal(ErrorCode.TX_ROLLED_BACK, "this bet was rolled back before it arrived")
        if self._closed(player.player_id, call.round_id):
            raise Refusal(ErrorCode.ROUND_CLOSED, "the round is closed")
        if player.blocked:
            raise Refusal(ErrorCode.PLAYER_BLOCKED, "the player is blocked: bets are refused")
        session = self.sessions.get(call.session_token)
        if session is None or (session.player_id != player.player_id and not self.bug("bet_with_other_players_session")):
            raise Refusal(ErrorCode.INVALID_TOKEN, "not a session of this player")
        if now >= session.expires_at and not self.bug("bet_on_expired_session"):
            raise Refusal(ErrorCode.SESSION_EXPIRED, "the session has expired: bets need a live session")
        if call.amount > balance and not self.bug("overdraft_allowed"):
            raise Refusal(ErrorCode.INSUFFICIENT_FUNDS, "the balance is lower than the bet")
        self._set_balance(player, balance - call.amount)
        self._round(player.player_id, call.round_id).had_bet = True
        return self._ok(player, self._record(call, player, -call.amount, now).wallet_tx_id)

    def _win(self, call: Call, player: Player, balance: int, now: float) -> dict[str, Any]:
        assert call.amount is not None
        if self._closed(player.player_id, call.round_id):
            raise Refusal(ErrorCode.ROUND_CLOSED, "the round is closed")
        rnd = self.rounds.get((player.player_id, call.round_id))
        if call.reason == "regular" and (rnd is None or not rnd.had_bet) and not self.bug("regular_win_without_bet"):
            raise Refusal(ErrorCode.ROUND_NOT_FOUND, "a regular win needs a bet of this player in its round")
        if self.bug("win_refused_on_expired_session"):
            session = self.sessions.get(call.session_token)
            if session is not None and session.player_id == player.player_id and now >= session.expires_at:
                raise Refusal(ErrorCode.SESSION_EXPIRED, "the session has expired")
        self._set_balance(player, balance + call.amount)
        if call.round_closed:
            self._round(player.player_id, call.round_id).closed = True
        return self._ok(player, self._record(call, player, call.amount, now).wallet_tx_id)

    def _rollback(self, call: Call, player: Player, balance: int, now: float, force_refund: bool) -> dict[str, Any]:
        ref_id = call.ref_tx_id
        assert ref_id is not None
        ref = self.by_tx_id.get(ref_id)
        if (ref is not None and ref.player_id != player.player_id
                and not (self.bug("rollback_of_other_players_bet") and ref.op == "bet")):
            ref = None  # another player's transaction: a bet this player never had
        if ref is not None and ref.op != "bet" and not (self.bug("rollback_of_win_allowed") and ref.op == "win"):
            raise Refusal(ErrorCode.ROLLBACK_NOT_ALLOWED, "only a bet can be rolled back")
        if self._closed(player.player_id, call.round_id) or (
                ref is not None and ref.round_id is not None and self._closed(ref.player_id, ref.round_id)):
            raise Refusal(ErrorCode.ROUND_CLOSED, "the round is closed")
        if ref is None:
            self.tombstones.setdefault(ref_id, set()).add(player.player_id)
            return self._ok(player, self._record(call, player, 0, now).wallet_tx_id)
        assert ref.amount is not None
        if ref.op == "win":  # rollback_of_win_allowed
            if ref.rolled_back:
                return self._ok(player, self._record(call, player, 0, now).wallet_tx_id)
            if ref.amount > balance:
                raise Refusal(ErrorCode.ROLLBACK_NOT_ALLOWED, "only a bet can be rolled back")
            ref.rolled_back = True
            self._set_balance(player, balance - ref.amount)
            return self._ok(player, self._record(call, player, -ref.amount, now).wallet_tx_id)
        if self.bug("second_rollback_new_tx_refunds"):
            done = self.refunded_by.get(ref.tx_id or "") == call.tx_id
        else:
            done = ref.rolled_back and not force_refund
        if done:
            return self._ok(player, self._record(call, player, 0, now).wallet_tx_id)
        if not self.bug("second_rollback_refunds"):
            ref.rolled_back = True
        if ref.tx_id is not None:
            self.refunded_by[ref.tx_id] = call.tx_id
        self._set_balance(player, balance + ref.amount)
        return self._ok(player, self._record(call, player, ref.amount, now).wallet_tx_id)

    # -- admin -------------------------------------------------------------------------------------
    async def create_player(self, data: dict[str, Any], now: float) -> Player:
        player_id = data.get("player_id")
        if not isinstance(player_id, str) or not player_id:
            raise Refusal(ErrorCode.BAD_REQUEST, "player_id must be a non-empty string")
        code = data.get("currency")
        if not isinstance(code, str) or code not in CURRENCIES:
            raise Refusal(ErrorCode.BAD_REQUEST, f"currency must be one of {', '.join(CURRENCIES)}")
        balance = data.get("balance", 0)
        if type(balance) is not int or balance < 0:
            raise Refusal(ErrorCode.BAD_REQUEST, "balance must be an integer >= 0")
        async with self.lock:
            if player_id in self.players:
                raise Refusal(ErrorCode.PLAYER_EXISTS, "a player with this id exists")
            player = Player(player_id, code, 0)
            self._set_balance(player, balance)
            self.players[player_id] = player
            if balance:
                self._deposit_row(player, balance, now)
            return player

    def admin_player(self, player_id: str) -> Player:
        player = self.players.get(player_id)
        if player is None:
            raise Refusal(ErrorCode.PLAYER_NOT_FOUND, "no such player")
        return player

    async def deposit(self, player_id: str, data: dict[str, Any], now: float) -> Player:
        amount = data.get("amount")
        if type(amount) is not int or amount < 1:
            raise Refusal(ErrorCode.BAD_REQUEST, "amount must be an integer >= 1")
        async with self.lock:
            player = self.admin_player(player_id)
            self._set_balance(player, player.balance + amount)
            self._deposit_row(player, amount, now)
            return player

    async def block(self, player_id: str) -> Player:
        async with self.lock:
            player = self.admin_player(player_id)
            player.blocked = True
            return player

    async def issue_token(self, data: dict[str, Any]) -> dict[str, Any]:
        player_id = data.get("player_id")
        if not isinstance(player_id, str):
            raise Refusal(ErrorCode.BAD_REQUEST, "player_id must be a string")
        ttl = data.get("ttl_s", self.session_ttl)
        if type(ttl) is not int or ttl < 0:
            raise Refusal(ErrorCode.BAD_REQUEST, "ttl_s must be an integer >= 0")
        async with self.lock:
            self.admin_player(player_id)
            token = uuid.uuid4().hex
            self.launches[token] = Launch(player_id, ttl)
            return {"token": token, "player_id": player_id, "ttl_s": ttl}


# -- HTTP --------------------------------------------------------------------------------------------

WALLET: Final = web.AppKey("lenient_wallet", LenientWallet)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _read(request: web.Request) -> bytes:
    """The body, refused (BAD_REQUEST) past 64 KiB before it is buffered or parsed."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Refusal(ErrorCode.BAD_REQUEST, f"body larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY + 1 - size):
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_BODY:
            raise Refusal(ErrorCode.BAD_REQUEST, f"body larger than {MAX_BODY} bytes")
    return b"".join(chunks)


def _protocol(op: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        wallet = request.app[WALLET]
        raw = await _read(request)
        now = wallet.clock()
        if not wallet.bug("signature_not_checked"):
            try:
                signing.verify(wallet.secret, request.headers.get(signing.HEADER), raw, now)
            except signing.SignatureError as exc:
                raise Refusal(ErrorCode.INVALID_SIGNATURE, str(exc)) from None
        if op == "authenticate":
            return _response(await wallet.authenticate(raw, now))
        if op == "balance":
            return _response(await wallet.balance(raw, now))
        return _response(await wallet.money(op, raw, now))

    return handle


def _admin(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        wallet = request.app[WALLET]
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, f"Bearer {wallet.admin_token}".encode()):
            return _error(ErrorCode.UNAUTHORIZED, "the admin API needs Authorization: Bearer <admin token>")
        return await handler(request)

    return guarded


async def _admin_body(request: web.Request) -> dict[str, Any]:
    raw = await _read(request)
    data = _loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise Refusal(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    return data


@_admin
async def _create_player(request: web.Request) -> web.StreamResponse:
    wallet = request.app[WALLET]
    player = await wallet.create_player(await _admin_body(request), wallet.clock())
    return _response(player.to_json(), 201)


@_admin
async def _get_player(request: web.Request) -> web.StreamResponse:
    return _response(request.app[WALLET].admin_player(request.match_info["player_id"]).to_json())


@_admin
async def _deposit(request: web.Request) -> web.StreamResponse:
    wallet = request.app[WALLET]
    player = await wallet.deposit(request.match_info["player_id"], await _admin_body(request), wallet.clock())
    return _response(player.to_json())


@_admin
async def _block(request: web.Request) -> web.StreamResponse:
    await _admin_body(request)
    return _response((await request.app[WALLET].block(request.match_info["player_id"])).to_json())


@_admin
async def _token(request: web.Request) -> web.StreamResponse:
    return _response(await request.app[WALLET].issue_token(await _admin_body(request)), 201)


def _since(value: str | None) -> float | None:
    """Unix seconds or an ISO-8601 date/time (UTC when it names no offset)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise Refusal(ErrorCode.BAD_REQUEST, "since must be unix seconds or an ISO-8601 date/time") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


@_admin
async def _transactions(request: web.Request) -> web.StreamResponse:
    wallet = request.app[WALLET]
    fmt = request.query.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise Refusal(ErrorCode.BAD_REQUEST, "format must be jsonl or csv")
    player_id = request.query.get("player_id") or None
    since = _since(request.query.get("since"))
    rows = [t.to_json() for t in list(wallet.log)
            if (player_id is None or t.player_id == player_id) and (since is None or t.created_at >= since)]
    if fmt == "jsonl":
        body = "".join(_dumps(r) + "\n" for r in rows)
        return web.Response(body=body.encode(), content_type="application/x-ndjson")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TX_COLUMNS)
    for r in rows:
        writer.writerow(["" if v is None else (str(Decimal(v)) if type(v) is int else v) for v in r.values()])
    return web.Response(body=out.getvalue().encode("utf-8", "replace"), content_type="text/csv", charset="utf-8")


async def _healthz(request: web.Request) -> web.StreamResponse:
    return _response({"status": "ok", "store": "lenient-memory"})


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal is a JSON 4xx; anything else unforeseen is a JSON 500 (outcome unknown)."""
    try:
        return await handler(request)
    except Refusal as r:
        return _error(r.code, r.message)
    except web.HTTPException as exc:
        if exc.status == 404:
            return _error(ErrorCode.NOT_FOUND, f"no route {request.method} {request.path[:200]}")
        if exc.status < 400:
            raise
        resp = _error(ErrorCode.BAD_REQUEST, exc.reason)
        resp.set_status(exc.status)
        return resp
    except Exception as exc:  # noqa: BLE001 - the answer that says "outcome unknown"
        return _error(ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}")


def make_lenient_app(secret: str, admin_token: str, bugs: frozenset[str] = frozenset(), session_ttl: int = 3600,
                     clock: Callable[[], float] = time.time) -> web.Application:
    """The lenient wallet (with the bugs named in ``bugs``, keys of :data:`LENIENT_PLANTED`) as an aiohttp app."""
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    app[WALLET] = LenientWallet(secret, admin_token, frozenset(bugs), session_ttl, clock)
    for op in FIELDS:
        app.router.add_post(f"/wallet/{op}", _protocol(op))
    app.router.add_post("/admin/players", _create_player)
    app.router.add_get("/admin/players/{player_id}", _get_player)
    app.router.add_post("/admin/players/{player_id}/deposit", _deposit)
    app.router.add_post("/admin/players/{player_id}/block", _block)
    app.router.add_post("/admin/tokens", _token)
    app.router.add_get("/admin/transactions", _transactions)
    app.router.add_get("/healthz", _healthz)
    return app


def _bugs_of(name: str) -> frozenset[str]:
    """``"lenient"``: no bug; otherwise one key of :data:`LENIENT_PLANTED`."""
    if name == "lenient":
        return frozenset()
    if name not in LENIENT_PLANTED:
        raise ValueError(f"unknown lenient wallet {name!r}")
    return frozenset({name})


# -- serving -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def lenient_servers(names: list[str]) -> Iterator[dict[str, str]]:
    """Serve the named wallets (``"lenient"`` and/or bugs) from one child process: {name: base URL}."""
    with serve_from_child("tests.lenient_wallet", names) as bases:
        yield bases


def main() -> None:
    """Serve one lenient wallet until interrupted, or several (``--many``: one port each, printed as JSON)."""
    wallet_main(__doc__, ["lenient", *sorted(LENIENT_PLANTED)], 8098, SECRET, ADMIN_TOKEN,
                lambda name, secret, token: make_lenient_app(secret, token, _bugs_of(name)))

if __name__ == "__main__":
    main()
