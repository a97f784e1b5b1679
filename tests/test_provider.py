"""The mock provider against the reference wallet, both served on 127.0.0.1 in the test's loop.

Why end to end: the provider's promises are about what the operator sees — the
balance it shows equals the wallet's, its transaction log reconciles with the
wallet's report row by row, a refusal reaches the game client as the right
4xx, and a correct wallet earns an empty anomalies report.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from simulator.commands.cli import main
from simulator.protocol.money import Money
from simulator.provider import ProviderConfig, make_app
from tests.support import ROOT, SECRET, Served, free_port, make_store, serve_wallet

API_KEY = "test-provider-key"
MONEY_OPS = {"bet", "win", "rollback"}


@dataclass
class Api:
    """The provider's HTTP API as an operator (or a game client) calls it."""

    base: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: Any = None, *, auth: str | None = API_KEY,
                   raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        h = dict(headers or {})
        if auth is not None:
            h["Authorization"] = f"Bearer {auth}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        async with self.http.request(method, f"{self.base}{path}", data=data, headers=h,
                                     allow_redirects=False) as resp:
            text = await resp.read()
            if resp.content_type == "application/json":
                return resp.status, orjson.loads(text)
            return resp.status, text.decode()

    async def launch(self, player_id: str, token: str, game_id: str = "roulette-eu",
                     currency: str = "EUR") -> dict[str, Any]:
        status, data = await self.call("POST", "/launch", {"player_id": player_id, "currency": currency,
                                                           "language": "en", "token": token, "game_id": game_id})
        assert status == 200, data
        return data  # type: ignore[no-any-return]

    async def play(self, session_id: str, stake: int, **extra: Any) -> tuple[int, Any]:
        return await self.call("POST", "/play", {"session_id": session_id, "stake": stake, **extra}, auth=None)


@contextlib.asynccontextmanager
async def serve_provider(wallet_base: str, seed: int = 7, dialect: str = "canonical") -> AsyncIterator[Api]:
    port = free_port()
    wallet_url = f"{wallet_base}/wallet" + ("" if dialect == "canonical" else f"/{dialect}")
    config = ProviderConfig(wallet_url=wallet_url, secret=SECRET, api_key=API_KEY, seed=seed,
                            public_url=f"http://127.0.0.1:{port}", dialect=dialect)
    server = TestServer(make_app(config), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(f"http://127.0.0.1:{port}", http)
    finally:
        await server.close()


@dataclass
class Env:
    wallet: Served
    api: Api


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with serve_wallet(make_store("memory", tmp_path)) as wallet, serve_provider(wallet.base) as api:
        yield Env(wallet, api)


async def new_player(env: Env, player_id: str, balance: int, currency: str = "EUR") -> str:
    await env.wallet.admin.create_player(player_id, currency, balance)
    return await env.wallet.admin.token(player_id)


def assert_error(status: int, data: Any, code: str | None = None, expect: int | None = None) -> None:
    assert 400 <= status < 500, (status, data)
    assert isinstance(data, dict) and set(data) == {"status", "code", "message"}, data
    assert data["status"] == "error" and isinstance(data["message"], str)
    if code is not None:
        assert data["code"] == code, data
    if expect is not None:
        assert status == expect, (status, data)


async def transactions_report(api: Api, fmt: str = "jsonl", **params: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in {"format": fmt, **params}.items())
    status, text = await api.call("GET", f"/reports/transactions?{query}")
    assert status == 200, text
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [orjson.loads(line) for line in text.splitlines() if line]


# -- the main flow ------------------------------------------------------------------------
@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_thirty_rounds_reconcile_with_the_wallet(store: str, tmp_path: Path) -> None:
    async with serve_wallet(make_store(store, tmp_path)) as wallet, serve_provider(wallet.base) as api:
        env = Env(wallet, api)
        token = await new_player(env, "p-main", 200_00)
        launched = await api.launch("p-main", token)
        sid = launched["session_id"]
        assert launched["balance"] == 200_00 and launched["currency"] == "EUR"
        assert launched["game_url"] == f"{api.base}/game/{sid}"

        plays: list[dict[str, Any]] = []
        choices: list[dict[str, Any]] = [{}, {"kind": "slot"}, {"game_id": "crash-x"}, {"kind": "live"},
                                         {"game_id": "croupier-stars"}]
        balance = launched["balance"]
        for n in range(30):
            status, data = await api.play(sid, (10, 20, 50, 100)[n % 4], **choices[n % len(choices)])
            assert status == 200, data
            assert data["status"] == "settled", data
            assert data["balance"] == balance - data["staked"] + data["paid"], data
            balance = data["balance"]
            ops = [c["op"] for c in data["calls"]]
            assert ops[0] == "bet" and ops[-1] == "win" and all(c["outcome"] == "ok" for c in data["calls"]), data
            plays.append(data)
        assert {p["game_id"] for p in plays} == {"roulette-eu", "croupier-stars-mega", "crash-x", "live-roulette",
                                                    "croupier-stars"}

        assert (await wallet.admin.player("p-main"))["balance"] == balance

        # The provider's log reconciles with the wallet's report, row by row.
        mine = await transactions_report(api)
        theirs = {row["tx_id"]: row for row in await wallet.admin.transactions("p-main") if row["tx_id"]}
        money = [r for r in mine if r["op"] in MONEY_OPS]
        assert money and all(r["outcome"] == "ok" for r in money)
        for r in money:
            assert r["tx_id"] in theirs, r
            assert theirs[r["tx_id"]]["wallet_tx_id"] == r["wallet_tx_id"], (r, theirs[r["tx_id"]])
            assert theirs[r["tx_id"]]["op"] == r["op"] and theirs[r["tx_id"]]["amount"] == r["amount"]
        assert {r["tx_id"] for r in money} == set(theirs)
        assert sum(len(p["calls"]) for p in plays) == len(money)
        assert next(r for r in mine if r["op"] == "authenticate")["player_id"] == "p-main"
        as_csv = await transactions_report(api, "csv")
        assert [r["tx_id"] or None for r in as_csv] == [r["tx_id"] for r in mine]
        assert await transactions_report(api, **{"from": "2999-01-01"}) == []
        assert len(await transactions_report(api, player_id="p-main")) == len(mine)

        # History: most recent first, with the calls.
        status, history = await api.call("GET", f"/sessions/{sid}/rounds")
        assert status == 200
        assert [r["round_id"] for r in history["rounds"]] == [p["round_id"] for p in reversed(plays)]
        assert history["rounds"][0]["calls"] == plays[-1]["calls"]

        status, report = await api.call("GET", "/reports/anomalies")
        assert status == 200
        assert report["total"] == 0 and report["findings"] == [] and report["in_doubt"] == 0, report
        assert set(report["anomalies"].values()) == {0}

        # The game page shows the balance the wallet holds.
        status, page = await api.call("GET", f"/game/{sid}", auth=None)
        assert status == 200 and page.startswith("<!doctype html>")
        assert Money.of(balance, "EUR").to_decimal() in page and 'lang="en"' in page
        assert '<form method="post" action="/play">' in page and f'value="{sid}"' in page


async def test_a_batching_dialect_plays_an_instant_round_in_one_request(tmp_path: Path) -> None:
    """actions-hmac batches: /play of an instant game sends its bet and closing win in one request (the
    same decision as croupier run, gameplay.batched); a live round still goes one action per request."""
    async with serve_wallet(make_store("memory", tmp_path)) as wallet, \
            serve_provider(wallet.base, dialect="actions-hmac") as api:
        env = Env(wallet, api)
        token = await new_player(env, "p-batch", 100_00)
        sid = (await api.launch("p-batch", token, game_id="croupier-stars"))["session_id"]
        status, data = await api.play(sid, 100)
        assert status == 200 and data["status"] == "settled", data
        calls = data["calls"]
        assert [c["op"] for c in calls] == ["bet", "win"] and all(c["outcome"] == "ok" for c in calls), calls
        assert calls[0]["batch"] == calls[1]["batch"] == [calls[0]["tx_id"], calls[1]["tx_id"]]
        assert data["balance"] == 100_00 - data["staked"] + data["paid"]
        assert (await wallet.admin.player("p-batch"))["balance"] == data["balance"]

        status, report = await api.call("GET", "/reports/anomalies")
        assert status == 200
        # One request for the round: a batch, not a bet and a win of their own.
        assert report["calls"] == {"authenticate:ok": 1, "batch:ok": 1}, report["calls"]
        assert report["total"] == 0 and report["findings"] == [] and report["in_doubt"] == 0, report

        balance = data["balance"]
        for extra in ({"kind": "slot"}, {"game_id": "crash-x"}, {"kind": "live"}):
            status, data = await api.play(sid, 50, **extra)
            assert status == 200 and data["status"] == "settled", data
            assert data["balance"] == balance - data["staked"] + data["paid"], data
            balance = data["balance"]
            batched = [c for c in data["calls"] if "batch" in c]
            assert bool(batched) == (extra != {"kind": "live"}), data
        assert (await wallet.admin.player("p-batch"))["balance"] == balance

        # The log reconciles with the wallet's report, batched actions each on their own line.
        mine = [r for r in await transactions_report(api) if r["op"] in MONEY_OPS]
        theirs = {row["tx_id"]: row for row in await wallet.admin.transactions("p-batch") if row["tx_id"]}
        assert {r["tx_id"] for r in mine} == set(theirs)
        assert all(theirs[r["tx_id"]]["wallet_tx_id"] == r["wallet_tx_id"] for r in mine)
        status, report = await api.call("GET", "/reports/anomalies")
        assert report["calls"]["batch:ok"] == 3 and report["total"] == 0 and report["in_doubt"] == 0, report


async def test_the_game_page_plays_without_javascript(env: Env) -> None:
    token = await new_player(env, "p-form", 50_00)
    sid = (await env.api.launch("p-form", token, game_id="croupier-stars"))["session_id"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _ = await env.api.call("POST", "/play", raw=f"session_id={sid}&stake=100".encode(), auth=None,
                                   headers=form)
    assert status == 303
    balance = (await env.wallet.admin.player("p-form"))["balance"]
    status, page = await env.api.call("GET", f"/game/{sid}", auth=None)
    assert status == 200 and Money.of(balance, "EUR").to_decimal() in page and 'role="status"' in page
    # A refusal comes back as the page, with the wallet's status and an alert.
    status, page = await env.api.call("POST", "/play", raw=f"session_id={sid}&stake=999999".encode(), auth=None,
                                      headers=form)
    assert status == 402 and 'role="alert"' in page and "INSUFFICIENT_FUNDS" in page
    status, page = await env.api.call("POST", "/play", raw=f"session_id={sid}&stake=1.5".encode(), auth=None,
                                      headers=form)
    assert status == 400 and 'role="alert"' in page


async def test_json_sent_as_curl_sends_it(env: Env) -> None:
    """`curl -d '{...}'` labels JSON as a form: the provider still reads it as JSON."""
    token = await new_player(env, "p-curl", 10_00)
    sid = (await env.api.launch("p-curl", token))["session_id"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, data = await env.api.call("POST", "/play", {"session_id": sid, "stake": 100}, auth=None, headers=form)
    assert status == 200 and data["status"] == "settled", data


# -- refusals -----------------------------------------------------------------------------
async def test_insufficient_funds_is_a_402(env: Env) -> None:
    token = await new_player(env, "p-poor", 30)
    sid = (await env.api.launch("p-poor", token))["session_id"]
    status, data = await env.api.play(sid, 50)
    assert_error(status, data, "INSUFFICIENT_FUNDS", 402)
    assert (await env.wallet.admin.player("p-poor"))["balance"] == 30
    status, history = await env.api.call("GET", f"/sessions/{sid}/rounds")
    assert history["rounds"][0]["status"] == "refused" and history["rounds"][0]["refusal"] == "INSUFFICIENT_FUNDS"
    status, data = await env.api.play(sid, 30)  # the whole balance is still playable
    assert status == 200 and data["status"] == "settled"
    status, report = await env.api.call("GET", "/reports/anomalies")
    assert report["total"] == 0, report


async def test_bad_inputs_are_4xx_json(env: Env) -> None:
    api = env.api
    token = await new_player(env, "p-bad", 10_00)
    sid = (await api.launch("p-bad", token))["session_id"]
    cases: list[tuple[str, str, Any, str | None, str | None]] = [
        ("POST", "/play", {"session_id": sid}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": 1.5}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": 10.0}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": "10"}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": True}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": 0}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": -5}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": 2**63}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": 5, "kind": "slot"}, None, "BAD_REQUEST"),  # < 10 lines
        ("POST", "/play", {"session_id": sid, "stake": 10, "kind": "poker"}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": 10, "kind": "slot", "game_id": "crash-x"}, None,
         "BAD_REQUEST"),
        ("POST", "/play", {"session_id": sid, "stake": 10, "currency": "USD"}, None, "CURRENCY_MISMATCH"),
        ("POST", "/play", {"session_id": sid, "stake": 10, "extra": 1}, None, "BAD_REQUEST"),
        ("POST", "/play", {"session_id": "nope", "stake": 10}, None, "SESSION_NOT_FOUND"),
        ("POST", "/play", {"session_id": sid, "stake": 10, "game_id": "blackjack"}, None, "GAME_NOT_FOUND"),
        ("POST", "/play", [1, 2], None, "BAD_REQUEST"),
        ("POST", "/launch", {"player_id": "p-bad", "currency": "EUR", "token": token, "game_id": "blackjack"},
         API_KEY, "GAME_NOT_FOUND"),
        ("POST", "/launch", {"player_id": "p-bad", "currency": "XXX", "token": token, "game_id": "crash-x"},
         API_KEY, "BAD_REQUEST"),
        ("POST", "/launch", {"player_id": "p-bad", "currency": "EUR", "token": token, "game_id": "crash-x",
                             "language": "<script>"}, API_KEY, "BAD_REQUEST"),
        ("POST", "/launch", {"player_id": "p-bad", "currency": "EUR", "game_id": "crash-x"}, API_KEY,
         "BAD_REQUEST"),
        ("POST", "/launch", {"player_id": "p-bad", "currency": "EUR", "token": token, "game_id": "crash-x"},
         None, "UNAUTHORIZED"),
        ("POST", "/launch", {"player_id": "p-bad", "currency": "EUR", "token": token, "game_id": "crash-x"},
         "wrong-key", "UNAUTHORIZED"),
        ("GET", "/games", None, None, "UNAUTHORIZED"),
        ("GET", "/reports/transactions", None, None, "UNAUTHORIZED"),
        ("GET", "/reports/anomalies", None, None, "UNAUTHORIZED"),
        ("GET", f"/sessions/{sid}/rounds", None, None, "UNAUTHORIZED"),
        ("GET", "/sessions/nope/rounds", None, API_KEY, "SESSION_NOT_FOUND"),
        ("GET", "/game/nope", None, None, "SESSION_NOT_FOUND"),
        ("GET", "/reports/transactions?format=xml", None, API_KEY, "BAD_REQUEST"),
        ("GET", "/reports/transactions?from=yesterday", None, API_KEY, "BAD_REQUEST"),
        ("GET", "/play", None, None, None),
        ("GET", "/no/such/path", None, None, "NOT_FOUND"),
    ]
    for method, path, body, auth, code in cases:
        status, data = await api.call(method, path, body, auth=auth)
        assert_error(status, data, code)
    status, data = await api.call("POST", "/play", raw=b"{not json", auth=None)
    assert_error(status, data, "BAD_REQUEST", 400)
    status, data = await api.call("POST", "/launch", raw=b"x" * 70_000)
    assert_error(status, data, "BAD_REQUEST", 400)
    assert (await env.wallet.admin.player("p-bad"))["balance"] == 10_00


async def test_launch_refusals(env: Env) -> None:
    api = env.api
    token = await new_player(env, "p-a", 100)
    await new_player(env, "p-b", 100, "JPY")
    body = {"player_id": "p-a", "currency": "EUR", "token": "not-a-token", "game_id": "crash-x"}
    status, data = await api.call("POST", "/launch", body)
    assert_error(status, data, "INVALID_TOKEN", 401)
    status, data = await api.call("POST", "/launch", {**body, "token": token, "player_id": "p-b"})
    assert_error(status, data, "PLAYER_MISMATCH", 409)
    token = await env.wallet.admin.token("p-a")
    status, data = await api.call("POST", "/launch", {**body, "token": token, "currency": "USD"})
    assert_error(status, data, "CURRENCY_MISMATCH", 422)


async def test_an_unreachable_wallet_is_a_502(tmp_path: Path) -> None:
    async with serve_provider(f"http://127.0.0.1:{free_port()}") as api:
        status, data = await api.call("POST", "/launch", {"player_id": "p", "currency": "EUR", "token": "t",
                                                          "game_id": "crash-x"})
        assert status == 502 and data["code"] == "WALLET_UNAVAILABLE", data


async def test_one_round_at_a_time_per_session(env: Env) -> None:
    token = await new_player(env, "p-busy", 100_00)
    sid = (await env.api.launch("p-busy", token, game_id="croupier-stars"))["session_id"]
    results = await asyncio.gather(*(env.api.play(sid, 100) for _ in range(8)))
    assert all(status == 200 for status, _ in results), results
    status, history = await env.api.call("GET", f"/sessions/{sid}/rounds")
    rounds = list(reversed(history["rounds"]))
    balance = 100_00
    for r in rounds:  # serialized: each round starts from the balance the previous one left
        assert r["balance"] == balance - r["staked"] + r["paid"]
        balance = r["balance"]
    assert (await env.wallet.admin.player("p-busy"))["balance"] == balance
    status, report = await env.api.call("GET", "/reports/anomalies")
    assert status == 200 and report["total"] == 0, report


async def test_a_deposit_between_rounds_is_not_an_anomaly(env: Env) -> None:
    token = await new_player(env, "p-cashier", 10_00)
    sid = (await env.api.launch("p-cashier", token))["session_id"]
    assert (await env.api.play(sid, 100))[0] == 200
    await env.wallet.admin.deposit("p-cashier", 5_00)  # the operator's cashier, not the provider
    status, data = await env.api.play(sid, 100)
    assert status == 200
    assert data["balance"] == (await env.wallet.admin.player("p-cashier"))["balance"]
    status, report = await env.api.call("GET", "/reports/anomalies")
    assert report["total"] == 0, report


async def test_the_catalog(env: Env) -> None:
    status, data = await env.api.call("GET", "/games")
    assert status == 200
    games = {g["game_id"]: g for g in data["games"]}
    assert set(games) == {"croupier-stars", "croupier-stars-mega", "roulette-eu", "live-roulette", "crash-x"}
    assert games["roulette-eu"]["rtp"] == "0.9730" and games["roulette-eu"]["rtp_fraction"] == "36/37"
    assert games["croupier-stars"]["rtp"] == "0.9599" and games["croupier-stars"]["rtp_bp"] == 9599
    assert games["crash-x"]["rtp"] == "0.9900" and games["crash-x"]["kind"] == "crash"
    slot = games["croupier-stars-mega"]
    assert slot["kind"] == "slot" and slot["min_stake"]["EUR"] == 10 and slot["min_stake"]["JPY"] == 10
    assert len(slot["rtp"]) == 6 and slot["rtp_fraction"] is None  # hundreds of digits: rtp and rtp_bp say it
    status, data = await env.api.call("GET", "/healthz", auth=None)
    assert status == 200 and data["status"] == "ok"


# -- the command line ---------------------------------------------------------------------
def test_config_errors_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROUPIER_SECRET", raising=False)
    monkeypatch.delenv("CROUPIER_PROVIDER_KEY", raising=False)
    wallet = "http://127.0.0.1:9/wallet"
    assert main(["provider", "serve", "--wallet", wallet, "--host", "0.0.0.0", "--port", "0"]) == 2
    assert main(["provider", "serve", "--wallet", "not a url", "--port", "0"]) == 2
    assert main(["provider", "serve", "--wallet", wallet, "--dialect", "nope", "--port", "0"]) == 2


async def test_croupier_provider_serve(tmp_path: Path) -> None:
    """The command line serves the same app: launch and play one round through a child process."""
    port = free_port()
    async with serve_wallet(make_store("memory", tmp_path)) as wallet:
        env_vars = {**os.environ, "PYTHONPATH": str(ROOT), "CROUPIER_PROVIDER_KEY": API_KEY}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulator", "provider", "serve", "--wallet", f"{wallet.base}/wallet",
            "--secret", SECRET, "--port", str(port), "--seed", "3", "--no-access-log",
            env=env_vars, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with aiohttp.ClientSession() as http:
                api = Api(f"http://127.0.0.1:{port}", http)
                deadline = time.monotonic() + 20
                while True:
                    if proc.returncode is not None:
                        err = await proc.stderr.read() if proc.stderr else b""
                        raise AssertionError(f"provider exited with {proc.returncode}: {err.decode()[-2000:]}")
                    try:
                        if (await api.call("GET", "/healthz", auth=None))[0] == 200:
                            break
                    except aiohttp.ClientError:
                        pass
                    assert time.monotonic() < deadline, "provider did not become ready"
                    await asyncio.sleep(0.05)
                await wallet.admin.create_player("p-cli", "EUR", 10_00)
                launched = await api.launch("p-cli", await wallet.admin.token("p-cli"))
                assert launched["game_url"] == f"http://127.0.0.1:{port}/game/{launched['session_id']}"
                status, data = await api.play(launched["session_id"], 100)
                assert status == 200 and data["balance"] == (await wallet.admin.player("p-cli"))["balance"]
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)


async def test_arbitrary_bodies_never_answer_5xx(env: Env) -> None:
    """Seeded junk into every body field: always a 4xx JSON error or a real answer, never a 500."""
    import random

    rng = random.Random(5)
    token = await new_player(env, "p-fuzz", 1_000_00)
    sid = (await env.api.launch("p-fuzz", token))["session_id"]
    values: list[Any] = [None, True, 0, -1, 1, 10, 2**63, 2**70, 1.5, 1e308, "", "x", "10", "\u0000", "é" * 2000,
                         [], {}, [10], {"a": 1}, sid, token, "EUR", "JPY", "crash-x", "slot", "en", "zz-ZZZZZZZZZ"]
    fields = ["session_id", "stake", "kind", "game_id", "currency", "player_id", "token", "language", "junk"]
    for _ in range(150):
        body = {f: rng.choice(values) for f in rng.sample(fields, rng.randint(0, 5))}
        for path, auth in (("/play", None), ("/launch", API_KEY)):
            status, data = await env.api.call("POST", path, body, auth=auth)
            assert status < 500, (path, body, status, data)
            if status >= 400:
                assert_error(status, data)
    assert (await env.api.call("GET", "/reports/anomalies"))[1]["total"] == 0
