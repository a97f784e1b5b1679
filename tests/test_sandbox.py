"""``croupier sandbox``: the lobby's API over real HTTP on 127.0.0.1, and the pages in headless Chromium.

The HTTP tests start the whole sandbox (reference wallet on SQLite, mock
provider, lobby) on free ports and check what a browser would call: players
through the wallet's admin API, the launch flow, rounds of each game, refusals
with their codes, the live panel (JSON and server-sent events) and its replay /
duplicate / timeout actions — with the wallet's own balance as the referee and
the provider's ledger expected to find nothing wrong with the reference wallet.

The browser test drives Debian's ``chromium`` through Playwright (never
Playwright's own browser downloads) and skips, saying why, where either is
missing.  It saves a screenshot of the game page under ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from simulator.drive.client import AdminClient
from simulator.protocol import dialects
from simulator.protocol.calls import Rejected
from simulator.sandbox.server import ConfigError, RunningSandbox, SandboxOptions, start
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryStore
from simulator.wallet.service import make_app as make_wallet
from simulator.wallet.sqlite import SQLiteStore
from tests.support import chromium_or_skip

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    sb = await start(SandboxOptions(port=0, seed=7))
    try:
        yield sb
    finally:
        await sb.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None,
               raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    async with http.request(method, url, data=data, headers={"Content-Type": "application/json"}) as resp:
        text = await resp.read()
        assert resp.content_type == "application/json", (resp.status, text[:200])
        return resp.status, orjson.loads(text)


async def wallet_balance(sb: RunningSandbox, http: aiohttp.ClientSession, player_id: str) -> int:
    assert sb.admin_url is not None and sb.admin_token is not None
    return int((await AdminClient(sb.admin_url, sb.admin_token, http).player(player_id))["balance"])


async def launched(sb: RunningSandbox, http: aiohttp.ClientSession, game_id: str, balance: str = "100",
                   currency: str = "EUR", player_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"currency": currency, "balance": balance}
    if player_id:
        body["player_id"] = player_id
    status, player = await call(http, "POST", f"{sb.lobby_url}/api/players", body)
    assert status == 201, player
    status, launch = await call(http, "POST", f"{sb.lobby_url}/api/launch",
                                {"player_id": player["player_id"], "game_id": game_id})
    assert status == 200, launch
    assert launch["play_url"] == f"/play/{launch['session_id']}"
    return launch


# -- the lobby ----------------------------------------------------------------------------
async def test_pages_config_and_static_files(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.lobby_url}/") as resp:
        page = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/html"
        assert 'id="create-player"' in page and "<label" in page
    for name, kind in (("game.js", "javascript"), ("sandbox.css", "text/css"), ("common.js", "javascript")):
        async with http.get(f"{sandbox.lobby_url}/static/{name}") as resp:
            assert resp.status == 200 and kind in resp.content_type
    status, config = await call(http, "GET", f"{sandbox.lobby_url}/api/config")
    assert status == 200 and config["embedded"] is True and config["wallet_url"] == sandbox.wallet_url
    kinds = {g["kind"] for g in config["games"]}
    assert {"slot", "roulette", "crash"} <= kinds
    assert {"code": "JPY", "exponent": 0, "stakes": [10, 20, 50, 100, 200, 500]} in config["currencies"]
    status, err = await call(http, "GET", f"{sandbox.lobby_url}/play/nope")
    assert status == 404 and err["code"] == "SESSION_NOT_FOUND"
    status, err = await call(http, "GET", f"{sandbox.lobby_url}/no/such/route")
    assert status == 404 and err["status"] == "error"


async def test_players_are_made_in_the_wallet_with_exact_minor_units(sandbox: RunningSandbox,
                                                                     http: aiohttp.ClientSession) -> None:
    url = f"{sandbox.lobby_url}/api/players"
    status, p = await call(http, "POST", url, {"player_id": "ann", "currency": "EUR", "balance": "25.50"})
    assert status == 201 and p["balance"] == 2550 and p["exponent"] == 2
    assert await wallet_balance(sandbox, http, "ann") == 2550
    status, p = await call(http, "POST", url, {"player_id": "ken", "currency": "JPY", "balance": "1000"})
    assert status == 201 and p["balance"] == 1000
    status, p = await call(http, "POST", url, {"currency": "KWD", "balance_minor": 12345})
    assert status == 201 and p["balance"] == 12345 and p["player_id"].startswith("player-")
    status, listed = await call(http, "GET", url)
    assert [x["player_id"] for x in listed["players"]][:2] == ["ann", "ken"]
    status, dup = await call(http, "POST", url, {"player_id": "ann", "currency": "EUR", "balance": "1"})
    assert status == 409 and dup["status"] == "error"
    status, found = await call(http, "GET", f"{url}/ann")
    assert status == 200 and found["balance"] == 2550
    status, missing = await call(http, "GET", f"{url}/nobody")
    assert status == 404 and missing["code"] == "PLAYER_NOT_FOUND"
    status, dep = await call(http, "POST", f"{url}/ann/deposit", {"amount": "4.50"})
    assert status == 200 and dep["balance"] == 3000 and await wallet_balance(sandbox, http, "ann") == 3000
    bad: list[tuple[Any, str]] = [
        ({"currency": "EUR", "balance": "1.234"}, "BAD_REQUEST"),  # more decimals than EUR has
        ({"currency": "EUR", "balance": 1.5}, "BAD_REQUEST"),  # a float is not money
        ({"currency": "EUR", "balance": "-1"}, "BAD_REQUEST"),
        ({"currency": "EUR", "balance": "1e3"}, "BAD_REQUEST"),
        ({"currency": "XXX", "balance": "1"}, "BAD_REQUEST"),
        ({"currency": "EUR", "balance_minor": True}, "BAD_REQUEST"),
        ({"currency": "EUR", "player_id": "has space"}, "BAD_REQUEST"),
        ({"currency": "EUR", "surprise": 1}, "BAD_REQUEST"),
    ]
    for body, code in bad:
        status, err = await call(http, "POST", url, body)
        assert (status, err["code"]) == (400, code), body
    for raw in (b"not json", b"[1]", b"{" + b" " * 20_000 + b"}"):
        status, err = await call(http, "POST", url, raw=raw)
        assert status == 400 and err["code"] == "BAD_REQUEST", raw[:20]
    status, err = await call(http, "POST", f"{url}/ann/deposit", {"amount": "0"})
    assert status == 400
    # What a cross-site form or a rebinding DNS name would send is refused before anything happens.
    async with http.post(url, data="currency=EUR", headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
        assert r.status == 415 and (await r.json())["code"] == "UNSUPPORTED_MEDIA_TYPE"
    async with http.get(f"{sandbox.lobby_url}/api/players", headers={"Host": "evil.example:8000"}) as r:
        assert r.status == 403 and (await r.json())["code"] == "FORBIDDEN_HOST"
    async with http.get(f"{sandbox.lobby_url}/api/players", headers={"Host": "localhost:8000"}) as r:
        assert r.status == 200


async def test_launch_refusals(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    url = f"{sandbox.lobby_url}/api/launch"
    status, err = await call(http, "POST", url, {"player_id": "ghost", "game_id": "roulette-eu"})
    assert status == 404 and err["code"] == "PLAYER_NOT_FOUND"
    await call(http, "POST", f"{sandbox.lobby_url}/api/players", {"player_id": "bo", "currency": "USD"})
    status, err = await call(http, "POST", url, {"player_id": "bo", "game_id": "poker"})
    assert status == 404 and err["code"] == "GAME_NOT_FOUND"
    status, err = await call(http, "POST", url, {"player_id": "bo"})
    assert status == 404 and err["code"] == "GAME_NOT_FOUND"


# -- the games ------------------------------------------------------------------------------
async def test_slot_rounds_follow_the_wallet(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    launch = await launched(sandbox, http, "croupier-stars", "20")
    sid, player = launch["session_id"], launch["player_id"]
    status, info = await call(http, "GET", f"{sandbox.lobby_url}/api/sessions/{sid}")
    assert status == 200 and info["game"]["kind"] == "slot" and info["balance"] == 2000
    assert info["stakes"] == [10, 20, 50, 100, 200, 500] and len(info["game"]["slot"]["screen"]) == 3
    won = 0
    for _ in range(40):
        status, answer = await call(http, "POST", f"{sandbox.lobby_url}/api/sessions/{sid}/play", {"stake": 20})
        if status == 402:
            break
        assert status == 200, answer
        r = answer["round"]
        assert r["status"] == "settled" and r["staked"] == 20
        assert len(r["slot"]["screen"]) == 3 and all(len(row) == 5 for row in r["slot"]["screen"])
        assert r["paid"] == sum(p["amount"] for p in r["payouts"])
        assert sum(p["amount"] for p in r["payouts"] if p["reason"] == "free_spin") == r["slot"]["free_spin_win"]
        assert len(r["slot"]["free"]) == r["slot"]["free_spins"]
        assert r["calls"][0]["op"] == "bet"
        for w in r["slot"]["line_wins"]:  # the cells the page highlights show the line's symbol (or wilds)
            assert all(r["slot"]["screen"][row][reel] in (w["symbol"], "WILD") for row, reel in w["cells"])
        won += r["paid"] > 0
        assert answer["balance"] == await wallet_balance(sandbox, http, player)
    assert won
    status, err = await call(http, "POST", f"{sandbox.lobby_url}/api/sessions/{sid}/play", {"stake": 5})
    assert status == 400 and err["code"] == "BAD_REQUEST"  # less than a minor unit per line
    for body in ({"stake": "20"}, {"stake": 2.5}, {"stake": True}, {}):
        status, err = await call(http, "POST", f"{sandbox.lobby_url}/api/sessions/{sid}/play", body)
        assert status == 400 and err["code"] == "BAD_REQUEST", body
    status, err = await call(http, "POST", f"{sandbox.lobby_url}/api/sessions/nope/play", {"stake": 20})
    assert status == 404 and err["code"] == "SESSION_NOT_FOUND"


async def test_insufficient_funds_is_the_wallets_refusal(sandbox: RunningSandbox,
                                                         http: aiohttp.ClientSession) -> None:
    launch = await launched(sandbox, http, "roulette-eu", "0.15")
    sid, player = launch["session_id"], launch["player_id"]
    status, err = await call(http, "POST", f"{sandbox.lobby_url}/api/sessions/{sid}/play", {"stake": 20})
    assert status == 402 and err["code"] == "INSUFFICIENT_FUNDS"
    assert err["round"]["status"] == "refused" and err["round"]["staked"] == 0
    assert err["balance"] == 15 == await wallet_balance(sandbox, http, player)


async def test_roulette_plays_the_chosen_bet(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    launch = await launched(sandbox, http, "roulette-eu", "50")
    url = f"{sandbox.lobby_url}/api/sessions/{launch['session_id']}/play"
    for _ in range(12):
        status, answer = await call(http, "POST", url, {"stake": 50, "bet": {"type": "red_black", "selection": "red"}})
        assert status == 200, answer
        r = answer["round"]
        assert r["roulette"]["bets"] == ["red_black red"]
        assert r["paid"] == (100 if r["roulette"]["color"] == "red" else 0)
    status, answer = await call(http, "POST", url, {"stake": 10, "bet": {"type": "straight", "selection": 17}})
    assert status == 200 and answer["round"]["paid"] in (0, 360)
    assert (answer["round"]["paid"] == 360) == (answer["round"]["roulette"]["number"] == 17)
    for bet in ({"type": "straight", "selection": 37}, {"type": "red_black", "selection": "green"},
                {"type": "corner", "selection": 1}, {"type": "straight", "selection": True}, "red"):
        status, err = await call(http, "POST", url, {"stake": 10, "bet": bet})
        assert status == 400 and err["code"] == "BAD_REQUEST", bet
    assert answer["balance"] == await wallet_balance(sandbox, http, launch["player_id"])


async def test_live_table_round_shows_its_number(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    launch = await launched(sandbox, http, "live-roulette", "50")
    status, answer = await call(http, "POST", f"{sandbox.lobby_url}/api/sessions/{launch['session_id']}/play",
                                {"stake": 100})
    assert status == 200, answer
    r = answer["round"]
    assert 0 <= r["roulette"]["number"] <= 36 and r["staked"] == 100
    assert answer["balance"] == await wallet_balance(sandbox, http, launch["player_id"])


async def test_crash_cashes_out_at_the_target(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    launch = await launched(sandbox, http, "crash-x", "50")
    url = f"{sandbox.lobby_url}/api/sessions/{launch['session_id']}/play"
    for _ in range(10):
        status, answer = await call(http, "POST", url, {"stake": 100, "target": "1.5"})
        assert status == 200, answer
        c = answer["round"]["crash"]
        assert c["targets"] == ["1.50"]
        whole, frac = c["crash_point"].split(".")
        assert c["cashed_out"] == (int(whole) * 100 + int(frac) >= 150)
        assert answer["round"]["paid"] == (150 if c["cashed_out"] else 0)
    for target in ("1.00", "abc", "1.234", 2, "-3"):
        status, err = await call(http, "POST", url, {"stake": 100, "target": target})
        assert status == 400 and err["code"] == "BAD_REQUEST", target


# -- the live panel ----------------------------------------------------------------------------
async def test_panel_actions_show_what_the_wallet_does(sandbox: RunningSandbox,
                                                       http: aiohttp.ClientSession) -> None:
    launch = await launched(sandbox, http, "croupier-stars", "10")
    sid, player = launch["session_id"], launch["player_id"]
    status, _ = await call(http, "POST", f"{sandbox.lobby_url}/api/sessions/{sid}/play", {"stake": 100})
    assert status == 200
    status, listed = await call(http, "GET", f"{sandbox.lobby_url}/api/sessions/{sid}/calls")
    calls = listed["calls"]
    assert [c["op"] for c in calls][:2] == ["authenticate", "bet"]
    bet = calls[1]
    win = calls[-1]
    assert win["op"] == "win" and win["round_closed"] is True
    assert bet["request"]["url"] == f"{sandbox.wallet_url}/bet" and "X-Signature" in bet["request"]["headers"]
    assert orjson.loads(bet["response"]["body"])["wallet_tx_id"] == bet["wallet_tx_id"]
    before = await wallet_balance(sandbox, http, player)

    for action in ("duplicate", "replay"):
        status, done = await call(http, "POST", f"{sandbox.lobby_url}/api/calls/{bet['id']}/{action}")
        assert status == 200, done
        [again] = done["calls"]
        assert again["origin"] == action and again["of"] == bet["id"] and again["tx_id"] == bet["tx_id"]
        assert again["outcome"] == "ok" and again["wallet_tx_id"] == bet["wallet_tx_id"]
        assert any(n.startswith("replay answer") for n in again["notes"])
        assert await wallet_balance(sandbox, http, player) == before
    # The replay is the recorded bytes, signature header and all.
    assert again["request"]["headers"] == bet["request"]["headers"] and again["request"]["body"] == bet["request"]["body"]

    status, done = await call(http, "POST", f"{sandbox.lobby_url}/api/calls/{win['id']}/timeout")
    assert status == 200
    assert [(c["op"], c["tx_id"], c["outcome"]) for c in done["calls"]] == [("win", win["tx_id"], "ok")] * 2
    assert "answer dropped" in done["calls"][0]["notes"][0]
    status, done = await call(http, "POST", f"{sandbox.lobby_url}/api/calls/{bet['id']}/timeout")
    assert [(c["op"], c["outcome"]) for c in done["calls"]] == [("bet", "ok"), ("rollback", "ROUND_CLOSED")]
    assert done["calls"][1]["ref_tx_id"] == bet["tx_id"]
    assert await wallet_balance(sandbox, http, player) == before

    status, err = await call(http, "POST", f"{sandbox.lobby_url}/api/calls/{calls[0]['id']}/timeout")
    assert status == 400 and err["code"] == "BAD_REQUEST"  # authenticate: nothing to recover
    status, err = await call(http, "POST", f"{sandbox.lobby_url}/api/calls/999999/duplicate")
    assert status == 404 and err["code"] == "CALL_NOT_FOUND"
    status, err = await call(http, "POST", f"{sandbox.lobby_url}/api/calls/{bet['id']}/explode")
    assert status == 400
    status, err = await call(http, "POST", f"{sandbox.lobby_url}/api/calls/x1/replay")
    assert status == 400
    # The reference wallet did everything right: the provider's ledger agrees.
    async with http.get(f"{sandbox.provider_url}/reports/anomalies",
                        headers={"Authorization": f"Bearer {sandbox.api_key}"}) as resp:
        assert (await resp.json())["total"] == 0


async def test_events_stream_the_calls_as_they_happen(sandbox: RunningSandbox,
                                                      http: aiohttp.ClientSession) -> None:
    launch = await launched(sandbox, http, "crash-x", "10")
    sid = launch["session_id"]

    async def next_event(resp: aiohttp.ClientResponse) -> dict[str, Any]:
        data = b""
        while True:
            line = await asyncio.wait_for(resp.content.readline(), 5)
            if line.startswith(b"data: "):
                data = line[6:]
            elif line == b"\n" and data:
                return orjson.loads(data)  # type: ignore[no-any-return]

    async with http.get(f"{sandbox.lobby_url}/api/sessions/{sid}/events") as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        first = await next_event(resp)
        assert first["op"] == "authenticate" and first["player_id"] == launch["player_id"]
        status, _ = await call(http, "POST", f"{sandbox.lobby_url}/api/sessions/{sid}/play",
                               {"stake": 10, "target": "2.00"})
        assert status == 200
        ops = [(await next_event(resp))["op"] for _ in range(2)]
        assert ops == ["bet", "win"]


@pytest.mark.parametrize("dialect", [d for d in dialects.names() if d != "canonical"])
async def test_embedded_wallet_in_every_builtin_dialect(dialect: str, http: aiohttp.ClientSession) -> None:
    """`croupier sandbox --dialect NAME`: the provider speaks NAME to the reference wallet's /wallet/NAME/."""
    sb = await start(SandboxOptions(port=0, seed=3, dialect=dialect))
    try:
        assert sb.wallet_url.endswith(f"/wallet/{dialect}")
        launch = await launched(sb, http, "croupier-stars", "50")
        sid, player = launch["session_id"], launch["player_id"]
        for _ in range(3):
            status, answer = await call(http, "POST", f"{sb.lobby_url}/api/sessions/{sid}/play", {"stake": 100})
            assert status == 200, answer
            assert answer["balance"] == await wallet_balance(sb, http, player)
        status, listed = await call(http, "GET", f"{sb.lobby_url}/api/sessions/{sid}/calls")
        bet = next(c for c in listed["calls"] if c["op"] == "bet")
        assert bet["request"]["url"].startswith(f"{sb.wallet_url}/")
        before = await wallet_balance(sb, http, player)
        status, done = await call(http, "POST", f"{sb.lobby_url}/api/calls/{bet['id']}/duplicate")
        assert status == 200, done
        # A dialect that batches sent the slot round's bet and win in one request: the duplicate is
        # that whole request again, one entry per action.
        batched = dialects.batching(dialects.get(dialect, "x")) is not None
        assert (bet["batch"] is not None) == batched, bet
        assert [c["tx_id"] for c in done["calls"]] == (bet["batch"] if batched else [bet["tx_id"]])
        again = done["calls"][0]
        assert again["tx_id"] == bet["tx_id"] and all(c["outcome"] == "ok" for c in done["calls"])  # not money
        assert again["wallet_tx_id"] == bet["wallet_tx_id"]
        assert await wallet_balance(sb, http, player) == before
        async with http.get(f"{sb.provider_url}/reports/anomalies",
                            headers={"Authorization": f"Bearer {sb.api_key}"}) as resp:
            assert (await resp.json())["total"] == 0
    finally:
        await sb.stop()


async def test_panel_actions_on_a_batched_round(http: aiohttp.ClientSession) -> None:
    """actions-hmac batches a slot round's bet and win: the panel shows one entry per action with the
    shared request, and replay / duplicate / timeout act on that whole request, as a provider would."""
    sb = await start(SandboxOptions(port=0, seed=3, dialect="actions-hmac"))
    try:
        launch = await launched(sb, http, "croupier-stars", "50")
        sid, player = launch["session_id"], launch["player_id"]
        status, answer = await call(http, "POST", f"{sb.lobby_url}/api/sessions/{sid}/play", {"stake": 100})
        assert status == 200 and answer["round"]["status"] == "settled", answer
        status, listed = await call(http, "GET", f"{sb.lobby_url}/api/sessions/{sid}/calls")
        bet, win = listed["calls"][-2:]
        assert (bet["op"], win["op"]) == ("bet", "win") and win["round_closed"] is True
        assert bet["batch"] == win["batch"] == [bet["tx_id"], win["tx_id"]]
        assert bet["request"] == win["request"] and bet["response"] == win["response"]  # one request, one answer
        assert any("sent in one request with win" in n for n in bet["notes"])
        assert bet["outcome"] == win["outcome"] == "ok"
        before = await wallet_balance(sb, http, player)
        assert answer["balance"] == before

        for entry in (bet, win):
            for action in ("replay", "duplicate"):
                status, done = await call(http, "POST", f"{sb.lobby_url}/api/calls/{entry['id']}/{action}")
                assert status == 200, done
                made = done["calls"]
                assert [(c["op"], c["tx_id"], c["outcome"]) for c in made] == [
                    ("bet", bet["tx_id"], "ok"), ("win", win["tx_id"], "ok")], (action, made)
                assert all(c["origin"] == action and c["of"] == entry["id"] for c in made)
                assert made[-1]["wallet_tx_id"] == win["wallet_tx_id"]
                assert any(n.startswith("replay answer") for n in made[-1]["notes"]), made[-1]
                assert not any("applied twice" in n or "flagged" in n for c in made for n in c["notes"])
                assert await wallet_balance(sb, http, player) == before
                if action == "replay":  # the recorded bytes, signature and all
                    assert made[0]["request"] == bet["request"]

        # A timeout drops the batch's answer, then sends the same batch until answered (never a rollback:
        # the win may have closed the round).
        status, done = await call(http, "POST", f"{sb.lobby_url}/api/calls/{bet['id']}/timeout")
        assert status == 200, done
        assert [(c["op"], c["tx_id"], c["outcome"]) for c in done["calls"]] == [
            ("bet", bet["tx_id"], "ok"), ("win", win["tx_id"], "ok")] * 2
        assert all(any("answer dropped" in n for n in c["notes"]) for c in done["calls"][:2])
        assert await wallet_balance(sb, http, player) == before

        async with http.get(f"{sb.provider_url}/reports/anomalies",
                            headers={"Authorization": f"Bearer {sb.api_key}"}) as resp:
            report = await resp.json()
            assert report["total"] == 0 and report["in_doubt"] == 0, report
    finally:
        await sb.stop()


async def test_lobby_lists_the_players_of_an_earlier_session(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """With ``--db FILE`` the lobby lists the wallet's players, those of an earlier run included, a page at a time."""
    db = tmp_path / "kept.db"
    store = SQLiteStore(db)
    await store.open()
    try:
        ids = [f"old-{i:03d}" for i in range(104)]
        for i, pid in enumerate(ids):
            assert not isinstance(await store.create_player(pid, "JPY" if i % 2 else "EUR", i, 0.0), Rejected)
        await store.set_blocked("old-007", True)
    finally:
        await store.close()
    sb = await start(SandboxOptions(port=0, db=str(db)))
    try:
        url = f"{sb.lobby_url}/api/players"
        status, _ = await call(http, "POST", url, {"player_id": "new-one", "currency": "USD", "balance": "1"})
        assert status == 201
        status, page = await call(http, "GET", url)
        assert status == 200 and len(page["players"]) == 100 and page["next"] == "old-098"
        assert page["players"][0] == {"player_id": "new-one", "currency": "USD", "balance": 100, "blocked": False,
                                      "exponent": 2}
        assert page["players"][1] == {"player_id": "old-000", "currency": "EUR", "balance": 0, "blocked": False,
                                      "exponent": 2}
        assert page["players"][8] == {"player_id": "old-007", "currency": "JPY", "balance": 7, "blocked": True,
                                      "exponent": 0}
        status, rest = await call(http, "GET", f"{url}?after={page['next']}")
        assert status == 200 and rest["next"] is None
        assert [p["player_id"] for p in rest["players"]] == ids[99:]
        status, err = await call(http, "GET", f"{url}?after=")
        assert status == 400 and err["code"] == "BAD_REQUEST"
    finally:
        await sb.stop()


# -- your own wallet, and the command -------------------------------------------------------------
async def test_against_your_own_wallet(http: aiohttp.ClientSession) -> None:
    secret, admin_token = "s3cret-of-the-user", "adm"
    runner = web.AppRunner(make_wallet(MemoryStore(), WalletConfig(secret, admin_token)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    sb = await start(SandboxOptions(port=0, wallet=f"{base}/wallet", secret=secret))
    try:
        admin = AdminClient(base, admin_token, http)
        await admin.create_player("theirs", "BRL", 5_000)
        token = await admin.token("theirs")
        status, config = await call(http, "GET", f"{sb.lobby_url}/api/config")
        assert config["embedded"] is False and config["wallet_url"] == f"{base}/wallet"
        status, err = await call(http, "POST", f"{sb.lobby_url}/api/players", {"currency": "BRL"})
        assert status == 409 and err["code"] == "NO_ADMIN_API"
        status, err = await call(http, "POST", f"{sb.lobby_url}/api/launch",
                                 {"player_id": "theirs", "currency": "BRL", "token": "forged", "game_id": "crash-x"})
        assert status == 401 and err["code"] == "INVALID_TOKEN"
        status, launch = await call(http, "POST", f"{sb.lobby_url}/api/launch",
                                    {"player_id": "theirs", "currency": "BRL", "token": token, "game_id": "crash-x"})
        assert status == 200, launch
        # no admin API on your wallet: the lobby lists the players it has launched, as before
        status, listed = await call(http, "GET", f"{sb.lobby_url}/api/players")
        assert status == 200 and listed == {"players": [{"player_id": "theirs", "currency": "BRL", "balance": None,
                                                         "exponent": 2}], "next": None}
        status, answer = await call(http, "POST", f"{sb.lobby_url}/api/sessions/{launch['session_id']}/play",
                                    {"stake": 100, "target": "3"})
        assert status == 200 and answer["balance"] == (await admin.player("theirs"))["balance"]
    finally:
        await sb.stop()
        await runner.cleanup()


async def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        await start(SandboxOptions(host="0.0.0.0", port=0))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ConfigError, match="cannot listen"):
            await start(SandboxOptions(port=busy.getsockname()[1]))
    with pytest.raises(ConfigError):
        await start(SandboxOptions(port=0, wallet="ftp://nowhere"))
    with pytest.raises(ConfigError, match="dialect"):
        await start(SandboxOptions(port=0, dialect="not-a-dialect"))
    with pytest.raises(ConfigError, match="--wallet"):  # a dialect file describes the user's wallet, not ours
        await start(SandboxOptions(port=0, dialect="dialects/form-md5.toml"))
    with pytest.raises(ConfigError):
        await start(SandboxOptions(port=0, wallet="http://127.0.0.1:9/wallet", dialect="not-a-dialect"))


def test_command_starts_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("croupier sandbox: open http://127.0.0.1:"), first + (proc.stderr.read() if
                                                                                      proc.poll() is not None else "")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopping" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- in a browser ----------------------------------------------------------------------------------
async def test_browser_lobby_slot_win_and_duplicate(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    chromium = chromium_or_skip()
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True,
                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = await browser.new_context(reduced_motion="reduce", viewport={"width": 1280, "height": 1000})
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{sandbox.lobby_url}/")

            # Create a player: labelled controls, found by their labels.
            form = page.get_by_role("group", name="Create a player in the reference wallet")
            await form.get_by_label("Player id").fill("browser-1")
            await form.get_by_label("Currency").select_option("EUR")
            await form.get_by_label("Starting balance").fill("50")
            await form.get_by_role("button", name="Create player").click()
            await expect(page.get_by_role("status")).to_contain_text("Created browser-1 with 50.00 EUR")
            await expect(page.locator("#players tbody")).to_contain_text("browser-1")

            # Launch the slot: the provider's launch flow, then the sandbox's game page.
            await page.get_by_role("button", name="Launch Croupier Stars", exact=True).click()
            await page.wait_for_url("**/play/*")
            await expect(page.locator("h1")).to_contain_text("Croupier Stars")
            await expect(page.locator("#balance")).to_have_text("50.00 EUR")
            await page.get_by_label("Stake").select_option("100")

            spin = page.get_by_role("button", name="Spin")
            for _ in range(60):
                await spin.click()
                await expect(spin).to_be_enabled()
                await expect(page.locator("#result")).not_to_have_text("Spinning…")
                if int(await page.locator("#result").get_attribute("data-paid") or 0) > 0:
                    break
            else:
                pytest.fail("no win in 60 spins")
            await expect(page.locator("#result")).to_contain_text("Win ")
            assert errors == []

            shown = await page.locator("#balance").get_attribute("data-minor")
            assert int(shown or -1) == await wallet_balance(sandbox, http, "browser-1")

            # The panel: the latest bet, duplicated; the wallet's replay answer appears.
            bet = page.locator("#calls li[data-op=bet][data-origin=game]").first
            await expect(bet).to_be_visible()
            await bet.get_by_role("button", name="Send a duplicate").click()
            dup = page.locator("#calls li[data-origin=duplicate]").first
            await expect(dup).to_contain_text("replay answer: the original wallet_tx_id")
            await expect(dup).to_contain_text("→ ok · HTTP 200")
            assert int(shown or -1) == await wallet_balance(sandbox, http, "browser-1")

            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "sandbox-slot.png"), full_page=True)

            # Keyboard only: the spin button is reachable and works with Enter.
            await spin.focus()
            await page.keyboard.press("Enter")
            await expect(spin).to_be_enabled()
            assert errors == []
        finally:
            await browser.close()


async def test_browser_roulette_refusal_and_crash(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    """The other pages: a refused bet shown as a game shows it, a roulette spin, a crash round."""
    chromium = chromium_or_skip()
    from playwright.async_api import async_playwright, expect
    await call(http, "POST", f"{sandbox.lobby_url}/api/players",
               {"player_id": "browser-2", "currency": "EUR", "balance": "0.15"})

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True,
                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = await (await browser.new_context(reduced_motion="reduce")).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(f"{sandbox.lobby_url}/")
            await expect(page.locator("#players tbody")).to_contain_text("browser-2")
            await page.get_by_label("Play as").select_option("browser-2")
            await page.get_by_role("button", name="Launch European Roulette").click()
            await page.wait_for_url("**/play/*")
            await page.get_by_label("Bet", exact=True).select_option("red_black")
            await page.get_by_label("On").select_option("black")
            await page.get_by_label("Stake").select_option("20")
            wheel = page.get_by_role("button", name="Spin the wheel")
            await wheel.click()
            await expect(page.get_by_role("alert")).to_contain_text(
                "Not enough funds: your balance is 0.15 EUR and the stake is 0.20 EUR")
            await page.get_by_label("Stake").select_option("10")
            await wheel.click()
            await expect(page.get_by_role("alert")).to_be_hidden()
            await expect(page.locator("#result")).to_contain_text("Your bet on black")
            shown = await page.locator("#balance").get_attribute("data-minor")
            assert int(shown or -1) == await wallet_balance(sandbox, http, "browser-2")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "sandbox-roulette.png"), full_page=True)

            await page.get_by_role("link", name="← Lobby").click()
            await page.get_by_role("button", name="Deposit").first.wait_for()
            await page.get_by_label("Deposit amount for browser-2").fill("5")
            await page.get_by_role("button", name="Deposit").click()
            await expect(page.locator("#player-status")).to_contain_text("Deposited into browser-2")
            await page.get_by_label("Play as").select_option("browser-2")
            await page.get_by_role("button", name="Launch Crash X").click()
            await page.wait_for_url("**/play/*")
            await page.get_by_label("Auto cash-out at (×)").fill("1.50")
            await page.get_by_role("button", name="Bet", exact=True).click()
            await expect(page.locator("#result")).to_contain_text("1.50×")
            await expect(page.locator("#multiplier")).to_have_class(re.compile(r"cashed|crashed"))
            shown = await page.locator("#balance").get_attribute("data-minor")
            assert int(shown or -1) == await wallet_balance(sandbox, http, "browser-2")
            await page.screenshot(path=str(ARTIFACTS / "sandbox-crash.png"), full_page=True)

            await page.get_by_role("link", name="← Lobby").click()
            await page.get_by_label("Play as").select_option("browser-2")
            await page.get_by_role("button", name="Launch Live Roulette").click()
            await page.wait_for_url("**/play/*")
            await page.get_by_role("button", name="Place bet").click()
            await expect(page.locator("#result")).to_contain_text("Your bet on")
            assert errors == []
        finally:
            await browser.close()


def test_free_spins_are_shown_spin_by_spin() -> None:
    """A round that triggers the feature: every free spin's screen and credit, as the page draws them."""
    import random

    from simulator.play.games.slot import CROUPIER_STARS
    from simulator.provider import lobby
    from simulator.provider.state import RoundRecord
    from simulator.sandbox.play import round_view

    rng = random.Random(11)
    result = next(r for r in (CROUPIER_STARS.play(rng, 100) for _ in range(20_000)) if r.detail["free_spins"])
    game = lobby.resolve("croupier-stars")
    assert game is not None
    record = RoundRecord("r1", "s1", game.game_id, "slot", 100, "settled", result.total_staked, result.total_paid,
                         0, "EUR", 0.0)
    view = round_view(record, result, game)["slot"]
    assert view["free_spins"] == len(view["free"]) >= 10 and view["free_spin_multiplier"] == 2
    assert [f["n"] for f in view["free"]] == list(range(1, view["free_spins"] + 1))
    assert sum(f["win"] for f in view["free"]) == view["free_spin_win"]
    assert all(len(f["screen"]) == 3 and all(len(row) == 5 for row in f["screen"]) for f in view["free"])
    assert sum(row.count("STAR") for row in view["screen"]) >= 3  # what triggered it


async def test_browser_draws_a_free_spin_round(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    """The page's free-spin rendering, fed a real feature round (the endpoint answer is substituted:
    a trigger is 1 in 196 spins, too rare to wait for)."""
    import random

    from simulator.play.games.slot import CROUPIER_STARS
    from simulator.provider import lobby
    from simulator.provider.state import RoundRecord
    from simulator.sandbox.play import round_view

    chromium = chromium_or_skip()
    from playwright.async_api import Route, async_playwright, expect
    rng = random.Random(11)
    result = next(r for r in (CROUPIER_STARS.play(rng, 100) for _ in range(20_000)) if r.detail["free_spins"])
    game = lobby.resolve("croupier-stars")
    assert game is not None
    record = RoundRecord("r1", "s1", game.game_id, "slot", 100, "settled", result.total_staked, result.total_paid,
                         12_345, "EUR", 0.0)
    answer = {"status": "ok", "round": round_view(record, result, game), "balance": 12_345}
    launch = await launched(sandbox, http, "croupier-stars", "100")

    async def canned(route: Route) -> None:
        await route.fulfill(status=200, content_type="application/json", body=orjson.dumps(answer))

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True,
                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.route("**/play", canned)
            await page.goto(f"{sandbox.lobby_url}{launch['play_url']}")
            await page.get_by_role("button", name="Spin").click()
            await expect(page.locator(".banner").first).to_contain_text("FREE SPIN")
            n = result.detail["free_spins"]
            await expect(page.locator("#result")).to_contain_text(f"Free spins: {n} played at ×2", timeout=20_000)
            await expect(page.get_by_role("list", name="Free spins").get_by_role("listitem")).to_have_count(n)
            await expect(page.locator("#balance")).to_have_text("123.45 EUR")
            assert errors == []
        finally:
            await browser.close()
