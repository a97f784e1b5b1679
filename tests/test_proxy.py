"""``croupier proxy`` between the mock provider and a wallet: judged live, faults on purpose, recorded, replayed.

The provider plays real rounds through the proxy, as an operator's staging would; the proxy knows no
opening balance and judges only what the traffic shows.  Wallets: the reference wallet (clean traffic
gives no anomaly), an independent correct wallet that chooses differently (tests/lenient_wallet.py),
and planted-bug wallets the proxy must catch.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulator.protocol.calls import Op, WalletCall
from simulator.protocol.dialects import names as dialect_names
from simulator.provider import ProviderConfig
from simulator.provider import make_app as provider_app
from simulator.proxy import faults as proxy_faults
from simulator.proxy import recording
from simulator.proxy.faults import ProxyFault, ProxyFaults, Rule
from simulator.proxy.server import final_report
from simulator.proxy.service import Proxy, ProxyConfig, make_apps
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryStore
from simulator.wallet.service import make_app as wallet_app
from tests.support import ADMIN_TOKEN, SECRET, free_port, serve_wallet, wait_serving
from tests.test_provider import API_KEY, Api

SIGNED = "actions-hmac"  # a signed (HMAC) non-canonical dialect that batches a bet and its win


@dataclass
class Line:
    """wallet ← proxy ← provider, all on 127.0.0.1 in the test's loop."""

    wallet_base: str
    proxy: Proxy
    proxy_url: str
    control: str
    api: Api
    admin: Any

    async def player(self, player_id: str, balance: int, currency: str = "EUR") -> str:
        await self.admin.create_player(player_id, currency, balance)
        return str(await self.admin.token(player_id))

    async def rounds(self, player_id: str, n: int, balance: int = 100_00, stakes: tuple[int, ...] = (10, 50, 100),
                     ok: tuple[str, ...] = ("settled",)) -> list[dict[str, Any]]:
        token = await self.player(player_id, balance)
        launched = await self.api.launch(player_id, token)
        out = []
        for i in range(n):
            status, data = await self.api.play(launched["session_id"], stakes[i % len(stakes)])
            out.append(data)
            if ok:
                assert status in (200, 502, 503, 504), data
        return out

    async def control_call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.api.http.request(method, f"{self.control}{path}",
                                         data=None if body is None else orjson.dumps(body)) as resp:
            raw = await resp.read()
            return resp.status, (orjson.loads(raw) if resp.content_type == "application/json" else raw.decode())


def wallet_path(dialect: str) -> str:
    return "/wallet" + ("" if dialect == "canonical" else f"/{dialect}")


@contextlib.asynccontextmanager
async def serve_line(*, dialect: str = "canonical", store: Any = None, faults: ProxyFaults | None = None,
                     record: Path | None = None, provider_timeout_s: float = 5.0,
                     wallet: web.Application | None = None, provider_metrics: Any = None) -> AsyncIterator[Line]:
    async with serve_wallet(store or MemoryStore()) if wallet is None else _served(wallet) as served:
        config = ProxyConfig(upstream=f"{served.base}{wallet_path(dialect)}", secret=SECRET, dialect=dialect,
                             faults=faults or ProxyFaults(), record=record)
        traffic, control, proxy = make_apps(config)
        tserver, cserver = TestServer(traffic, host="127.0.0.1"), TestServer(control, host="127.0.0.1")
        await tserver.start_server()
        await cserver.start_server()
        port = free_port()
        pconfig = ProviderConfig(wallet_url=f"http://127.0.0.1:{tserver.port}", secret=SECRET, api_key=API_KEY,
                                 seed=7, public_url=f"http://127.0.0.1:{port}", dialect=dialect,
                                 timeout_s=provider_timeout_s)
        pserver = TestServer(provider_app(pconfig, provider_metrics), host="127.0.0.1", port=port)
        await pserver.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield Line(served.base, proxy, f"http://127.0.0.1:{tserver.port}", f"http://127.0.0.1:{cserver.port}", Api(f"http://127.0.0.1:{port}", http),
                           served.admin)
        finally:
            await pserver.close()
            await cserver.close()
            await tserver.close()


@contextlib.asynccontextmanager
async def _served(app: web.Application) -> AsyncIterator[Any]:
    from simulator.drive.client import AdminClient

    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as session:
            yield _Served(base, AdminClient(base, ADMIN_TOKEN, session))
    finally:
        await server.close()


@dataclass
class _Served:
    base: str
    admin: Any


def failing(report: dict[str, Any]) -> dict[str, int]:
    return report["findings_by_severity"]["money"] | report["findings_by_severity"]["contract"]


def coverage(report: dict[str, Any], rule: str) -> int:
    return next((int(row["calls"]) for row in report["coverage"] if row["rule"] == rule), 0)


# -- clean traffic ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", dialect_names())
async def test_clean_traffic_gives_no_anomaly(dialect: str) -> None:
    async with serve_line(dialect=dialect) as line:
        await line.rounds("p-clean", 12)
        report = await final_report(line.proxy)
    assert report["verdict"] == "pass", failing(report)
    assert report["calls"]["money"] >= 24 and report["calls"]["undecoded"] == 0
    player = report["players"][0]
    assert player["sides_agree"] and player["balance_agrees"] is True
    assert player["balance_at_end"]["balance"] == player["last_balance"]


async def test_a_wallet_that_chooses_differently_passes_too() -> None:
    """tests/lenient_wallet.py: PROTOCOL.md followed, every free choice made the other way; faults included."""
    from tests.lenient_wallet import make_lenient_app

    plan = ProxyFaults(rules=[Rule(ProxyFault.LOST_RESPONSE, op=Op.BET, every=3),
                              Rule(ProxyFault.DUPLICATE, op=Op.WIN, every=2)])
    async with serve_line(wallet=make_lenient_app(SECRET, ADMIN_TOKEN), faults=plan) as line:
        await line.rounds("p-lenient", 12)
        report = await final_report(line.proxy)
    assert report["faults_injected"]["lost_response"] >= 3
    assert report["verdict"] == "pass", failing(report)


# -- faults on purpose --------------------------------------------------------------------------------
FAULTS = [
    pytest.param(ProxyFaults(rules=[Rule(ProxyFault.LOST_RESPONSE, op=Op.BET, every=2)]), "lost_response",
                 id="lost_response"),
    pytest.param(ProxyFaults(rules=[Rule(ProxyFault.SERVER_ERROR, op=Op.BET, every=2)]), "server_error",
                 id="server_error"),
    pytest.param(ProxyFaults(rates={ProxyFault.DUPLICATE: 0.5}, seed=3), "duplicate", id="duplicate"),
    pytest.param(ProxyFaults(rates={ProxyFault.CONCURRENT_DUPLICATE: 0.5}, seed=3), "concurrent_duplicate",
                 id="concurrent_duplicate"),
    pytest.param(ProxyFaults(rates={ProxyFault.DELAY: 0.5}, delay_ms=20, seed=3), "delay", id="delay"),
    pytest.param(ProxyFaults(rules=[Rule(ProxyFault.REORDER, op=Op.BET, times=2)], hold_ms=3000), "reorder",
                 id="reorder"),
]


@pytest.mark.parametrize(("plan", "fault"), FAULTS)
async def test_each_fault_shows_in_the_report_and_the_metrics_and_a_correct_wallet_passes(
        plan: ProxyFaults, fault: str) -> None:
    async with serve_line(faults=plan, provider_timeout_s=0.4) as line:
        await line.rounds("p-fault", 8)
        report = await final_report(line.proxy)
        status, metrics = await line.control_call("GET", "/metrics")
    assert report["faults_injected"].get(fault, 0) >= 1, report["faults_injected"]
    assert report["verdict"] == "pass", failing(report)
    assert status == 200
    assert f'croupier_faults_injected_total{{component="proxy",fault="{fault}",op="bet"}}' in metrics or \
        f'croupier_faults_injected_total{{component="proxy",fault="{fault}",op="win"}}' in metrics
    if fault in ("lost_response", "server_error", "reorder"):
        # the provider rolled the bet back; the wallet either took it (and refunded it) or never had it
        assert coverage(report, "idempotency-4-rollback-once") + coverage(report, "idempotency-5-tombstone") >= 1
    if fault == "lost_response":
        player = report["players"][0]
        assert player["answers_not_read"]  # the wallet took bets the provider never heard of ...
        assert player["sides_agree"] and player["balance_agrees"]  # ... and the provider's rollbacks settled them


async def test_signed_dialect_faults_keep_signatures_valid() -> None:
    """The proxy forwards the provider's bytes: a duplicate of a signed request is accepted as a replay."""
    plan = ProxyFaults(rates={ProxyFault.DUPLICATE: 0.5, ProxyFault.LOST_RESPONSE: 0.2}, seed=5)
    async with serve_line(dialect=SIGNED, faults=plan) as line:
        await line.rounds("p-signed", 10)
        report = await final_report(line.proxy)
    assert report["faults_injected"]["duplicate"] >= 1
    assert report["verdict"] == "pass", failing(report)
    assert not report["findings_by_severity"]["contract"].get("refused_valid_call")


async def test_changing_the_fault_plan_needs_the_control_token_when_there_is_one() -> None:
    traffic, control, proxy = make_apps(ProxyConfig(upstream="http://127.0.0.1:1/wallet", secret=SECRET,
                                                    control_token="tok"))
    del traffic
    server = TestServer(control, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.port}/faults"
            async with http.put(url, data=b'{"duplicate": 1}') as resp:
                assert resp.status == 401 and (await resp.json())["code"] == "UNAUTHORIZED"
            async with http.delete(url, headers={"Authorization": "Bearer nope"}) as resp:
                assert resp.status == 401
            async with http.put(url, data=b'{"duplicate": 1}', headers={"Authorization": "Bearer tok"}) as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{server.port}/metrics") as resp:
                assert resp.status == 200  # reading stays open: Prometheus scrapes it
    finally:
        await server.close()
    assert proxy.faults.rates == {ProxyFault.DUPLICATE: 1.0}


async def test_faults_switch_at_run_time_from_the_control_api() -> None:
    async with serve_line() as line:
        await line.rounds("p-switch-1", 3)
        status, body = await line.control_call("PUT", "/faults", {"lost_response": 1.0})
        assert status == 200 and body["faults"]["lost_response"] == 1.0
        token = await line.player("p-switch-2", 100_00)
        launched = await line.api.launch("p-switch-2", token)
        status, data = await line.api.play(launched["session_id"], 10)
        assert status >= 500 or data.get("status") != "settled"
        status, body = await line.control_call("DELETE", "/faults")
        assert status == 200 and "lost_response" not in body["faults"]
        assert body["injected"]["lost_response"] >= 1
        status, bad = await line.control_call("PUT", "/faults", {"lost_response": 2})
        assert status == 400 and "rate from 0 to 1" in bad["message"]
        status, bad = await line.control_call("POST", "/faults", {"nonsense": 0.1})
        assert status == 400 and "unknown fault 'nonsense'" in bad["message"]
        status, bad = await line.control_call("PATCH", "/faults", [1, 2])
        assert status == 400 and "must be a table" in bad["message"]
        async with line.api.http.put(f"{line.control}/faults", data=b"{not json") as resp:
            assert resp.status == 400 and (await resp.json())["code"] == "BAD_REQUEST"
        status, body = await line.control_call("PATCH", "/faults", {"rules": [{"fault": "5xx", "op": "win",
                                                                                "times": 1}], "status": 500})
        assert status == 200 and body["faults"]["rules"] == [{"fault": "server_error", "every": 1, "op": "win",
                                                              "times": 1}] and body["faults"]["status"] == 500
        status, body = await line.control_call("DELETE", "/faults")
        assert status == 200 and body["faults"]["rules"] == []
        await line.rounds("p-switch-3", 3)
        report = await final_report(line.proxy)
    assert report["verdict"] == "pass", failing(report)


# -- planted bugs ---------------------------------------------------------------------------------------
async def test_a_wallet_that_double_applies_replays_is_caught_through_the_proxy() -> None:
    from tests.planted_wallets import DoubleAppliedReplay

    async with serve_line(store=DoubleAppliedReplay(),
                          faults=ProxyFaults(rules=[Rule(ProxyFault.DUPLICATE, op=Op.BET)])) as line:
        await line.rounds("p-double", 4)
        report = await final_report(line.proxy)
        _, metrics = await line.control_call("GET", "/metrics")
    assert report["verdict"] == "fail"
    assert report["anomalies"]["double_apply"] >= 1
    finding = next(f for f in report["findings"] if f["kind"] == "double_apply")
    assert finding["rule"] == "idempotency-1-no-change" and "replay" in finding["quote"].lower()
    assert 'croupier_anomalies_total{component="proxy",kind="double_apply",severity="money"}' in metrics


def _planted(name: str) -> Any:
    import tests.broken_wallets as broken
    import tests.planted_wallets as planted

    return getattr(planted, name, None) or getattr(broken, name)


PLANTED_BY_FAULT = [
    # (the store, the fault that brings the bug out, the kinds the proxy must report: any of them)
    pytest.param("IgnoresTombstones", ProxyFaults(rules=[Rule(ProxyFault.REORDER, op=Op.BET, times=2)], hold_ms=3000),
                 {"accepted_after_rollback"}, id="no_tombstone-by-reorder"),
    pytest.param("ReplayNewWalletTxId", ProxyFaults(rules=[Rule(ProxyFault.DUPLICATE, op=Op.WIN)]),
                 {"replay_contradicts_original"}, id="replay_new_wallet_tx_id-by-duplicate"),
    pytest.param("RepaysReplayedWins", ProxyFaults(rules=[Rule(ProxyFault.LOST_RESPONSE, op=Op.WIN, times=3)]),
                 {"double_apply", "balance_mismatch"}, id="repays_replayed_wins-by-lost_response"),
    pytest.param("ConcurrentDuplicatesApplied",
                 ProxyFaults(rules=[Rule(ProxyFault.CONCURRENT_DUPLICATE, op=Op.BET)]),
                 {"double_apply", "balance_mismatch", "lost_update", "replay_contradicts_original"},
                 id="concurrent_duplicates_applied-by-concurrent_duplicate"),
]


@pytest.mark.parametrize(("store", "plan", "kinds"), PLANTED_BY_FAULT)
async def test_a_planted_bug_is_brought_out_by_a_fault_and_caught(store: str, plan: ProxyFaults,
                                                                   kinds: set[str]) -> None:
    async with serve_line(store=_planted(store)(), faults=plan, provider_timeout_s=0.4) as line:
        await line.rounds("p-planted", 6)
        report = await final_report(line.proxy)
    assert report["verdict"] == "fail", report["faults_injected"]
    found = {k for k, n in report["anomalies"].items() if n}
    assert found & kinds, found
    assert all(f["quote"] for f in report["findings"])  # each finding quotes the rule of PROTOCOL.md it breaks


async def test_second_rollback_refunds_is_caught_on_a_providers_own_traffic() -> None:
    """Any provider's traffic is judged: here a client that rolls one bet back twice (two tx_ids), which
    PROTOCOL.md rule 4 says must refund once."""
    from simulator.drive.client import WalletClient
    from simulator.protocol.dialects.canonical import CanonicalDialect
    from simulator.protocol.money import Money
    from tests.broken_wallets import SecondRollbackRefunds

    async with serve_line(store=SecondRollbackRefunds()) as line:
        token = await line.player("p-rb", 100_00)
        client = WalletClient(line.proxy_url, CanonicalDialect(SECRET), line.api.http)
        auth = await client.send(WalletCall.authenticate(token, "g"))
        session = auth.session_token  # type: ignore[union-attr]
        assert session
        await client.send(WalletCall.bet("t1", "p-rb", session, "g", "r1", Money.of(500, "EUR")))
        await client.send(WalletCall.rollback("rb1", "t1", "p-rb", session, "g", "r1"))
        await client.send(WalletCall.rollback("rb2", "t1", "p-rb", session, "g", "r1"))
        report = await final_report(line.proxy)
    assert report["verdict"] == "fail"
    assert report["anomalies"]["rollback_applied_twice"] == 1
    assert next(f for f in report["findings"] if f["kind"] == "rollback_applied_twice")["rule"] == \
        "idempotency-4-rollback-once"


# -- bad input --------------------------------------------------------------------------------------------
async def test_bad_input_is_never_a_500_from_the_proxy() -> None:
    async with serve_line() as line:
        for body in (b"", b"garbage", b"{}", b'{"amount": 1.5}', b"\xff\xfe", b"[" * 5000):
            async with line.api.http.post(f"{line.proxy_url}/bet", data=body) as resp:
                assert resp.status == 401 or resp.status == 400, (body[:20], resp.status)  # the wallet's answer
        async with line.api.http.post(f"{line.proxy_url}/bet", data=b"x" * (2 * 1024 * 1024)) as resp:
            assert resp.status == 413
        async with line.api.http.get(f"{line.proxy_url}/nowhere/at/all?x=1") as resp:
            assert resp.status < 500
        report = await final_report(line.proxy)
    assert report["calls"]["undecoded"] >= 6 and report["verdict"] == "pass"


async def test_an_unreachable_wallet_is_a_502_not_a_500() -> None:
    config = ProxyConfig(upstream=f"http://127.0.0.1:{free_port()}/wallet", secret=SECRET)
    traffic, _, proxy = make_apps(config)
    server = TestServer(traffic, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, http.post(f"http://127.0.0.1:{server.port}/balance",
                                                              data=b"{}") as resp:
            assert resp.status == 502
            assert (await resp.json())["status"] == "error"
    finally:
        await server.close()
    assert proxy.forwarded == 1


# -- pure parts -------------------------------------------------------------------------------------------
def test_fault_rules_fire_every_nth_matching_call_at_most_n_times() -> None:
    plan = ProxyFaults(rules=[Rule(ProxyFault.DUPLICATE, op=Op.WIN, every=2, times=2)])
    rng = random.Random(1)
    win = WalletCall(Op.WIN, player_id="p", tx_id="w")
    bet = WalletCall(Op.BET, player_id="p", tx_id="b")
    got = [plan.decide([c], rng) for c in [bet, win, win, bet, win, win, win, win]]
    assert got == [None, None, "duplicate", None, None, "duplicate", None, None]


def test_fault_tables_are_validated_with_the_key_at_fault() -> None:
    plan = proxy_faults.parse({"5xx": 0.1, "timeout": 0.2, "delay_ms": 50,
                               "rules": [{"fault": "reorder", "op": "bet", "every": 3}]})
    assert plan.rates == {ProxyFault.SERVER_ERROR: 0.1, ProxyFault.DELAY: 0.2} and plan.delay_ms == 50
    assert plan.rules == [Rule(ProxyFault.REORDER, Op.BET, None, 3)]
    for bad, message in [({"duplicate": 0.7, "delay": 0.7}, "add up to more than 1"),
                         ({"rules": [{"fault": "reorder", "op": "spin"}]}, "unknown operation 'spin'"),
                         ({"rules": [{"op": "bet"}]}, "needs a fault"), ({"delay_ms": -1}, "delay_ms must be"),
                         ({"status": 404}, "status must be an integer 500..599")]:
        with pytest.raises(proxy_faults.FaultConfigError, match=message):
            proxy_faults.parse(bad)


def test_recorded_calls_and_outcomes_read_back_as_they_were() -> None:
    from simulator.protocol.calls import Ok, Rejected, Unknown
    from simulator.protocol.codes import ErrorCode
    from simulator.protocol.money import Money

    calls = [WalletCall.bet("t", "p", "s", "g", "r", Money.of(1234, "BTC")),
             WalletCall.win("w", "p", "s", "g", "r", Money.of(0, "BTC"), round_closed=True)]
    outcomes = [Ok(Money.of(5, "BTC"), "wt"), Rejected(ErrorCode.ROUND_CLOSED, "closed")]
    raw = recording.line(seq=2, at=1.5, method="POST", path="play", request_headers={"X": "y"},
                         request_body=b"\xff", status=409, response_headers={}, response_body=b"{}", latency_ms=1.0,
                         fault=None, copy=0, forwarded=True, visible=True, calls=calls, outcomes=outcomes)
    again = recording.line(seq=1, at=1.6, method="POST", path="balance", request_headers={}, request_body=b"",
                           status=None, response_headers=None, response_body=None, latency_ms=None,
                           fault="server_error", copy=0, forwarded=False, visible=False, calls=[],
                           outcomes=[Unknown("x", 503)])
    got = recording.read([raw, b"\n", again])
    assert [r.seq for r in got] == [1, 2]
    assert got[1].calls == tuple(calls) and got[1].outcomes == tuple(outcomes)
    assert orjson.loads(raw)["request"]["body_b64"] == "/w=="
    with pytest.raises(recording.RecordingError, match="line 1"):
        recording.read([b'{"nope": 1}'])


# -- recording and replay ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["canonical", SIGNED])
async def test_a_recording_replays_call_by_call_against_a_fresh_reference_wallet(dialect: str, tmp_path: Path) -> None:
    from simulator.protocol.dialects import get
    from simulator.proxy.replayer import replay

    record = tmp_path / "traffic.jsonl"
    plan = ProxyFaults(rules=[Rule(ProxyFault.LOST_RESPONSE, op=Op.BET, every=4),
                              Rule(ProxyFault.SERVER_ERROR, op=Op.BET, every=5),
                              Rule(ProxyFault.DUPLICATE, op=Op.WIN, every=3)])
    async with serve_line(dialect=dialect, faults=plan, record=record) as line:
        await line.rounds("p-rec-1", 8)
        await line.rounds("p-rec-2", 6, balance=50_00)
        report = await final_report(line.proxy)
    assert report["verdict"] == "pass", failing(report)
    records = recording.read(record.read_bytes().splitlines())
    assert any(not r.forwarded for r in records) and any(r.fault == "duplicate" for r in records)
    async with serve_wallet(MemoryStore()) as fresh:
        for prefix in ("run1-", "run2-"):  # twice against one wallet: the prefixes keep them apart
            result = await replay(records, f"{fresh.base}{wallet_path(dialect)}", get(dialect, SECRET), fresh.base,
                                  ADMIN_TOKEN, prefix)
            doc = result.to_json()
            assert doc["verdict"] == "match", doc
            assert doc["different"] == 0 and doc["same"] >= 20 and doc["skipped"]["answered by the proxy"] >= 1
            assert set(doc["players"]) == {"p-rec-1", "p-rec-2"}
            assert doc["players"]["p-rec-1"]["opening"] == 100_00
        assert (await fresh.admin.player("run2-p-rec-1"))["balance"] == report["players"][0]["balance_at_end"][
            "balance"]


async def test_the_cashier_between_rounds_is_no_finding_and_a_replay_puts_the_money_back(tmp_path: Path) -> None:
    """The operator's cashier moves money outside the traffic the proxy sees: not a finding (the next round's
    first answer is the new opening); a replay deposits what moved, so its answers match the recorded ones."""
    from simulator.protocol.dialects import get
    from simulator.proxy.replayer import replay

    record = tmp_path / "traffic.jsonl"
    async with serve_line(record=record) as line:
        token = await line.player("p-cash", 10_00)
        launched = await line.api.launch("p-cash", token)
        for stake in (100, 200, 100):
            status, data = await line.api.play(launched["session_id"], stake)
            assert status == 200, data
            await line.admin.deposit("p-cash", 25_00)  # the cashier, between rounds
        report = await final_report(line.proxy)
    assert report["verdict"] == "pass", failing(report)
    assert report["players"][0]["balance_agrees"] is None or report["players"][0]["balance_at_end"]
    async with serve_wallet(MemoryStore()) as fresh:
        result = await replay(recording.read(record.read_bytes().splitlines()), f"{fresh.base}/wallet",
                              get("canonical", SECRET), fresh.base, ADMIN_TOKEN, "c-")
    doc = result.to_json()
    assert doc["verdict"] == "match", doc
    assert doc["players"]["p-cash"]["deposited"] == 2 * 25_00  # the third deposit came after the last round


@pytest.mark.parametrize("shared", [False, True])
def test_money_moved_by_another_provider_within_a_round(shared: bool) -> None:
    """Within a round the proxy judges balances exactly (the mock provider's assumption: money moves outside
    the traffic only between rounds); with --shared-players another game may move it at any time, so a
    balance is never held against the wallet — a contradicting replay still is."""
    from simulator.protocol.calls import Ok
    from simulator.protocol.dialects import get
    from simulator.protocol.money import Money
    from simulator.proxy.watch import Watch

    watch = Watch(get("canonical", SECRET), shared_players=shared)

    def send(call: WalletCall, outcome: Any) -> None:
        watch.end(watch.begin([call]), [call], [outcome], visible=True, latency_ms=1.0, status=200, response=b"{}")

    send(WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(100, "EUR")), Ok(Money.of(900, "EUR"), "w1"))
    # another provider's game took 50 in between
    send(WalletCall.win("t2", "p", "s", "g", "r1", Money.of(30, "EUR")), Ok(Money.of(880, "EUR"), "w2"))
    found = {k for k, n in watch.summary()["anomalies"].items() if n}
    assert found == (set() if shared else {"balance_mismatch"})
    send(WalletCall.win("t2", "p", "s", "g", "r1", Money.of(30, "EUR")), Ok(Money.of(880, "EUR"), "w9"))
    assert watch.summary()["anomalies"]["replay_contradicts_original"] == 1


@pytest.mark.parametrize("live", [False, True])
def test_a_win_refused_for_its_session_is_judged_by_the_dialects_semantics(live: bool) -> None:
    """PROTOCOL.md: money owed is never refused for a stale token; a dialect whose wins need a live session
    may refuse it SESSION_EXPIRED (the proxy cannot know when the session ended, so it allows it)."""
    import dataclasses

    from simulator.protocol.calls import Ok, Rejected
    from simulator.protocol.codes import ErrorCode
    from simulator.protocol.dialects import get
    from simulator.protocol.money import Money
    from simulator.proxy.watch import Watch

    watch = Watch(get("canonical", SECRET))
    watch.ledger.semantics = dataclasses.replace(watch.ledger.semantics, wins_need_live_session=live)
    bet = WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(100, "EUR"))
    win = WalletCall.win("t2", "p", "s", "g", "r1", Money.of(30, "EUR"), round_closed=True)
    watch.end(watch.begin([bet]), [bet], [Ok(Money.of(900, "EUR"), "w1")], visible=True, latency_ms=1.0,
              status=200, response=b"{}")
    watch.end(watch.begin([win]), [win], [Rejected(ErrorCode.SESSION_EXPIRED, "")], visible=True, latency_ms=1.0,
              status=401, response=b"{}")
    found = {k for k, n in watch.summary()["anomalies"].items() if n}
    assert found == (set() if live else {"refused_valid_call"})


def test_a_zero_bet_where_bets_are_above_zero_may_be_refused_with_any_code() -> None:
    import dataclasses

    from simulator.protocol.calls import Ok, Rejected
    from simulator.protocol.codes import ErrorCode
    from simulator.protocol.dialects import get
    from simulator.protocol.money import Money
    from simulator.proxy.watch import Watch

    def play(outcome: Any, zero_bet: bool = False) -> set[str]:
        watch = Watch(get("canonical", SECRET))
        watch.ledger.semantics = dataclasses.replace(watch.ledger.semantics, zero_bet=zero_bet)
        bet = WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(0, "EUR"))
        watch.end(watch.begin([bet]), [bet], [outcome], visible=True, latency_ms=1.0, status=400, response=b"{}")
        return {k for k, n in watch.summary()["anomalies"].items() if n}

    assert play(Rejected(ErrorCode.BAD_REQUEST, "")) == set()
    assert play(Rejected(ErrorCode.LIMIT_EXCEEDED, "")) == {"wallet_choice"}  # a note: another code, allowed
    assert play(Ok(Money.of(500, "EUR"), "w")) == {"accepted_invalid_call"}
    assert play(Rejected(ErrorCode.BAD_REQUEST, ""), zero_bet=True) == {"refused_valid_call"}  # PROTOCOL.md: ≥ 0


def test_a_rollback_of_a_bet_from_before_the_proxy_started_is_no_finding() -> None:
    """The proxy started between a bet and its rollback: what the rollback refunds cannot be known."""
    from simulator.protocol.calls import Ok
    from simulator.protocol.dialects import get
    from simulator.protocol.money import Money
    from simulator.proxy.watch import Watch

    watch = Watch(get("canonical", SECRET))

    def send(call: WalletCall, outcome: Any) -> None:
        watch.end(watch.begin([call]), [call], [outcome], visible=True, latency_ms=1.0, status=200, response=b"{}")

    send(WalletCall.win("t2", "p", "s", "g", "r1", Money.of(0, "EUR")), Ok(Money.of(900, "EUR"), "w2"))
    send(WalletCall.rollback("t3", "t1", "p", "s", "g", "r1"), Ok(Money.of(1000, "EUR"), "w3"))  # t1: before us
    send(WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(100, "EUR")), Ok(Money.of(1000, "EUR"), "w1"))  # again
    send(WalletCall.rollback("t3", "t1", "p", "s", "g", "r1"), Ok(Money.of(1000, "EUR"), "w3"))
    assert {k for k, n in watch.summary()["anomalies"].items() if n} == set()
    send(WalletCall.bet("t4", "p", "s", "g", "r1", Money.of(50, "EUR")), Ok(Money.of(950, "EUR"), "w4"))
    send(WalletCall.rollback("t5", "t4", "p", "s", "g", "r1"), Ok(Money.of(950, "EUR"), "w5"))  # seen: judged
    assert watch.summary()["anomalies"]["rollback_not_applied"] == 1


@pytest.mark.parametrize(("answer", "found"), [
    (900, {"accepted_after_rollback"}),  # taken now: money moved after its rollback, in either world
    (1000, set()),  # a replay of a bet the wallet took before the proxy was there (then refunded): fine
    (None, set()),  # refused TX_ROLLED_BACK: a tombstone, as rule 5 says
])
def test_a_bet_after_a_rollback_the_proxy_saw_first(answer: int | None, found: set[str]) -> None:
    """A rollback of a bet the proxy never saw, then that bet: did the wallet have it before the proxy
    started? Both worlds agree on one thing only — the bet must not move money now — and that is judged."""
    from simulator.protocol.calls import Ok, Rejected
    from simulator.protocol.codes import ErrorCode
    from simulator.protocol.dialects import get
    from simulator.protocol.money import Money
    from simulator.proxy.watch import Watch

    watch = Watch(get("canonical", SECRET))

    def send(call: WalletCall, outcome: Any) -> None:
        watch.saw([call])
        watch.end(watch.begin([call]), [call], [outcome], visible=True, latency_ms=1.0, status=200, response=b"{}")

    send(WalletCall.bet("t0", "p", "s", "g", "r0", Money.of(5, "EUR")), Ok(Money.of(1000, "EUR"), "w0"))
    send(WalletCall.win("t00", "p", "s", "g", "r0", Money.of(5, "EUR")), Ok(Money.of(1005, "EUR"), "w00"))
    send(WalletCall.rollback("rb1", "t1", "p", "s", "g", "r1"), Ok(Money.of(1000, "EUR"), "w1"))
    outcome = Ok(Money.of(answer, "EUR"), "w2") if answer is not None else Rejected(ErrorCode.TX_ROLLED_BACK, "")
    send(WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(100, "EUR")), outcome)
    assert {k for k, n in watch.summary()["anomalies"].items() if n} == found
    if found:
        finding = watch.ledger.findings[0]
        assert finding.rule == "idempotency-5-tombstone" and "1000 → 900" in finding.message


def test_a_withdrawal_outside_the_traffic_shifts_the_comparison() -> None:
    from simulator.protocol.calls import Ok
    from simulator.protocol.money import Money
    from simulator.proxy.matching import Cashier, same

    cashier = Cashier(current={"p": 1000})
    bet = WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(100, "EUR"))
    assert cashier.deposit(bet, "p", Ok(Money.of(600, "EUR"), "w")) == 0  # the recording held 700: 300 withdrawn
    assert cashier.offset["p"] == 300
    assert same(Ok(Money.of(600, "EUR")), Ok(Money.of(900, "EUR")), offset=cashier.offset["p"])
    again = WalletCall.bet("t2", "p", "s", "g", "r1", Money.of(100, "EUR"))  # the same round: no new opening
    assert cashier.deposit(again, "p", Ok(Money.of(500, "EUR"), "w2")) == 0 and cashier.offset["p"] == 300
    deposit_due = WalletCall.bet("t3", "p", "s", "g", "r2", Money.of(100, "EUR"))
    cashier.answered("p", Ok(Money.of(800, "EUR")))
    assert cashier.deposit(deposit_due, "p", Ok(Money.of(1900, "EUR"), "w3")) == 1200  # the recording held 2000
    assert cashier.offset["p"] == 0


async def test_a_recording_never_holds_the_shared_secret(tmp_path: Path) -> None:
    """token-query sends the shared secret itself in the query: the recording redacts it, and still replays."""
    from simulator.protocol.dialects import get
    from simulator.proxy.replayer import replay

    record = tmp_path / "traffic.jsonl"
    async with serve_line(dialect="token-query", record=record) as line:
        await line.rounds("p-secret", 4)
    raw = record.read_bytes()
    assert SECRET.encode() not in raw and b"[redacted]" in raw
    async with serve_wallet(MemoryStore()) as fresh:
        result = await replay(recording.read(raw.splitlines()), f"{fresh.base}/wallet/token-query",
                              get("token-query", SECRET), fresh.base, ADMIN_TOKEN, "t-")
    assert result.to_json()["verdict"] == "match", result.to_json()


async def test_a_replay_shows_where_another_wallet_answers_differently(tmp_path: Path) -> None:
    from simulator.protocol.dialects import get
    from simulator.proxy.replayer import replay
    from tests.planted_wallets import DoubleAppliedReplay

    record = tmp_path / "traffic.jsonl"
    async with serve_line(record=record, faults=ProxyFaults(rules=[Rule(ProxyFault.DUPLICATE, op=Op.BET)])) as line:
        await line.rounds("p-upgrade", 4)
    records = recording.read(record.read_bytes().splitlines())
    async with serve_wallet(DoubleAppliedReplay()) as upgraded:
        result = await replay(records, f"{upgraded.base}/wallet", get("canonical", SECRET), upgraded.base,
                              ADMIN_TOKEN, "up-")
    doc = result.to_json()
    assert doc["verdict"] == "differ" and doc["different"] >= 1
    assert doc["ledger"]["anomalies"]["double_apply"] >= 1
    assert any(d["op"] == "bet" for d in doc["differences"])


# -- the command line, with croupier run as the provider side ------------------------------------------------
@contextlib.contextmanager
def wallet_child(kind: str, tmp_path: Path) -> Any:
    """The reference wallet, tests/lenient_wallet.py (every free choice made the other way) or a planted-bug
    wallet of tests/planted_wallets.py, as a child process."""
    import os
    import sys

    from tests.support import ROOT, WalletProcess

    if kind == "reference":
        with WalletProcess(tmp_path / "w.db", "--memory") as wallet:
            yield wallet.base
        return
    port = free_port()
    argv = ["tests.lenient_wallet", "lenient", "--secret", SECRET, "--admin-token", ADMIN_TOKEN] \
        if kind == "lenient" else ["tests.planted_wallets", kind]  # (planted wallets: the tests' secret and token)
    proc = subprocess.Popen([sys.executable, "-m", *argv, "--port", str(port)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_serving(f"http://127.0.0.1:{port}", proc, f"the {kind} wallet")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["reference", "lenient"])
def test_croupier_run_chaos_through_croupier_proxy_with_faults_is_judged_clean(kind: str, tmp_path: Path) -> None:
    """Everything ``croupier run chaos`` throws (its own invalid calls, duplicates, timeouts...), plus the
    proxy's faults, against the reference wallet and against one that chose differently wherever PROTOCOL.md
    lets it: the proxy knows none of it in advance and flags nothing; on SIGTERM it reads every balance
    through the protocol and writes its report."""
    import os
    import subprocess
    import sys

    from tests.support import ROOT

    (tmp_path / "faults.toml").write_text("[faults]\nseed = 4\nlost_response = 0.03\nduplicate = 0.03\n"
                                          "server_error = 0.02\nreorder = 0.01\nhold_ms = 1000\n"
                                          "[[faults.rules]]\nfault = \"delay\"\nop = \"win\"\nevery = 10\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    listen, control = free_port(), free_port()
    with wallet_child(kind, tmp_path) as base:
        proxy = subprocess.Popen(
            [sys.executable, "-m", "simulator", "proxy", "--upstream", f"{base}/wallet", "--secret", SECRET,
             "--listen", f"127.0.0.1:{listen}", "--control", f"127.0.0.1:{control}", "--faults",
             str(tmp_path / "faults.toml"), "--record", str(tmp_path / "traffic.jsonl"), "--report-json",
             str(tmp_path / "proxy.json"), "--report-junit", str(tmp_path / "proxy.xml"), "--report-html",
             str(tmp_path / "proxy.html"), "--har", str(tmp_path / "traffic.har")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_serving(f"http://127.0.0.1:{control}", proxy, "the proxy")
            run = subprocess.run(
                [sys.executable, "-m", "simulator", "run", "chaos", "--duration", "3", "--seed", "5", "--quiet",
                 "--wallet", f"http://127.0.0.1:{listen}", "--admin-url", base, "--secret", SECRET,
                 "--admin-token", ADMIN_TOKEN, "--json", str(tmp_path / "run.json")],
                check=False, env=env, capture_output=True, text=True, timeout=120)
            assert run.returncode in (0, 1), run.stderr
            live = subprocess.run([sys.executable, "-m", "simulator", "proxy", "report", "--control",
                                   f"127.0.0.1:{control}"], check=False, env=env, capture_output=True,
                                  text=True, timeout=60)
            assert live.returncode == 0 and "verdict: PASS" in live.stdout, live.stdout + live.stderr
            out, err = _terminate(proxy)
        finally:
            _reap(proxy)
    assert proxy.returncode == 0, out + err
    report = orjson.loads((tmp_path / "proxy.json").read_bytes())
    assert report["verdict"] == "pass", failing(report)
    assert report["calls"]["money"] > 200
    assert set(report["faults_injected"]) >= {"lost_response", "duplicate", "server_error", "delay"}
    read = [p for p in report["players"] if p["balance_at_end"] is not None]
    assert read and all(p["balance_agrees"] is not False for p in read)
    assert "verdict: PASS" in out and "faults injected:" in out
    from tests.support import valid_junit

    suite = valid_junit((tmp_path / "proxy.xml").read_bytes())
    assert suite.get("failures") == "0"
    page = (tmp_path / "proxy.html").read_text()
    assert "Reconciliation (per player)" in page and read[0]["player_id"] in page
    har = orjson.loads((tmp_path / "traffic.har").read_bytes())["log"]
    lines = (tmp_path / "traffic.jsonl").read_bytes().splitlines()
    assert har["version"] == "1.2" and len(har["entries"]) == len(lines) > 200
    assert any("fault: lost_response" in e["comment"] for e in har["entries"])
    assert all(e["request"]["url"].startswith(f"{base}/wallet/") for e in har["entries"])


async def test_https_on_both_sides_of_the_proxy(tmp_path: Path) -> None:
    """The proxy serves HTTPS (--tls-cert) and verifies an https:// wallet against a CA bundle (--ca-bundle)."""
    import ssl

    import trustme

    from simulator.drive.client import AdminClient, WalletClient
    from simulator.drive.tls import server_context
    from simulator.protocol.dialects.canonical import CanonicalDialect
    from simulator.protocol.money import Money

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    server.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    served_ctx = server_context(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    wallet_runner = web.AppRunner(wallet_app(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN, 3600)))
    await wallet_runner.setup()
    wallet_port, proxy_port = free_port(), free_port()
    await web.TCPSite(wallet_runner, "127.0.0.1", wallet_port, ssl_context=served_ctx).start()
    traffic, _, proxy = make_apps(ProxyConfig(upstream=f"https://127.0.0.1:{wallet_port}/wallet", secret=SECRET,
                                              upstream_ssl=trusting))
    proxy_runner = web.AppRunner(traffic)
    await proxy_runner.setup()
    await web.TCPSite(proxy_runner, "127.0.0.1", proxy_port, ssl_context=served_ctx).start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as http:
            admin = AdminClient(f"https://127.0.0.1:{wallet_port}", ADMIN_TOKEN, http)
            await admin.create_player("p-tls", "EUR", 10_00)
            token = await admin.token("p-tls")
            client = WalletClient(f"https://127.0.0.1:{proxy_port}", CanonicalDialect(SECRET), http)
            auth = await client.send(WalletCall.authenticate(token, "g"))
            session = auth.session_token  # type: ignore[union-attr]
            assert session
            bet = await client.send(WalletCall.bet("tls-t1", "p-tls", session, "g", "r1", Money.of(100, "EUR")))
            assert bet.balance.minor == 900  # type: ignore[union-attr]
            report = await final_report(proxy)
    finally:
        await proxy_runner.cleanup()
        await wallet_runner.cleanup()
    assert report["verdict"] == "pass" and report["calls"]["money"] == 1
    assert report["players"][0]["balance_at_end"] == {"balance": 900, "currency": "EUR"}


@pytest.mark.parametrize("batched", [False, True])
def test_a_call_the_traffic_shows_invalid_is_judged_by_the_codes_due(batched: bool) -> None:
    """The proxy is not told which calls are invalid on purpose: it works out from PROTOCOL.md that a bet in
    another currency than the player's is due CURRENCY_MISMATCH, alone or in a batch; a wallet that refuses
    it passes, one that takes it is caught."""
    from simulator.protocol.calls import Ok, Rejected
    from simulator.protocol.codes import ErrorCode
    from simulator.protocol.dialects import get
    from simulator.protocol.money import Money
    from simulator.proxy.watch import Watch

    def play(second: Any) -> dict[str, int]:
        watch = Watch(get("actions-hmac" if batched else "canonical", SECRET))
        first = [WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(100, "EUR"))]
        watch.end(watch.begin(first), first, [Ok(Money.of(900, "EUR"), "w1")], visible=True, latency_ms=1.0,
                  status=200, response=b"{}")
        calls = [WalletCall.bet("t2", "p", "s", "g", "r2", Money.of(1, "USD"))]
        if batched:
            calls.append(WalletCall.win("t3", "p", "s", "g", "r2", Money.of(0, "USD"), round_closed=True))
        outcomes = [second] * len(calls)
        watch.end(watch.begin(calls), calls, outcomes, visible=True, latency_ms=1.0, status=200, response=b"{}")
        return {k: n for k, n in watch.summary()["anomalies"].items() if n}

    assert play(Rejected(ErrorCode.CURRENCY_MISMATCH, "not the player's currency")) == {}
    assert play(Rejected(ErrorCode.SESSION_EXPIRED, "")) == {}  # its session may have run out: the proxy cannot know
    assert "wrong_code" in play(Rejected(ErrorCode.ROUND_CLOSED, "no such thing"))
    taken = play(Ok(Money.of(899, "EUR"), "w2"))
    assert taken.keys() & {"accepted_invalid_call", "invalid_call_moved_money"}



@pytest.mark.slow
@pytest.mark.parametrize(("bug", "kind"), [("rollback_of_win_allowed", "refund_not_due"),
                                           ("no_tombstone", "accepted_after_rollback")])
def test_croupier_run_chaos_through_croupier_proxy_catches_a_planted_bug(bug: str, kind: str, tmp_path: Path) -> None:
    """The proxy is not told which calls croupier run made invalid on purpose, nor which rollbacks overtook
    their bets: it works both out from what it saw, and catches the wallet that gets them wrong."""
    import os
    import subprocess
    import sys

    from tests.support import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    listen, control = free_port(), free_port()
    with wallet_child(bug, tmp_path) as base:
        proxy = subprocess.Popen(
            [sys.executable, "-m", "simulator", "proxy", "--upstream", f"{base}/wallet", "--secret", SECRET,
             "--listen", f"127.0.0.1:{listen}", "--control", f"127.0.0.1:{control}", "--report-json",
             str(tmp_path / "proxy.json")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_serving(f"http://127.0.0.1:{control}", proxy, "the proxy")
            subprocess.run([sys.executable, "-m", "simulator", "run", "chaos", "--duration", "3", "--seed", "5",
                            "--quiet", "--wallet", f"http://127.0.0.1:{listen}", "--admin-url", base, "--secret",
                            SECRET, "--admin-token", ADMIN_TOKEN], check=False, env=env, capture_output=True,
                           timeout=120)
            out, err = _terminate(proxy)
        finally:
            _reap(proxy)
    assert proxy.returncode == 1, out + err
    report = orjson.loads((tmp_path / "proxy.json").read_bytes())
    assert report["verdict"] == "fail" and report["anomalies"][kind] >= 1, failing(report)


async def test_croupier_replay_traffic_on_the_command_line(tmp_path: Path) -> None:
    import asyncio
    import os
    import sys

    from tests.support import ROOT, WalletProcess

    record = tmp_path / "traffic.jsonl"
    async with serve_line(record=record, faults=ProxyFaults(rules=[Rule(ProxyFault.LOST_RESPONSE, op=Op.BET,
                                                                        every=3)])) as line:
        await line.rounds("p-cli", 6)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with WalletProcess(tmp_path / "w.db", "--memory") as wallet:
        argv = [sys.executable, "-m", "simulator", "replay-traffic", str(record), "--wallet", f"{wallet.base}/wallet",
                "--secret", SECRET, "--admin-token", ADMIN_TOKEN, "--prefix", "cli-", "--json", str(tmp_path / "r.json")]
        done = await asyncio.to_thread(subprocess.run, argv, check=False, capture_output=True, text=True, env=env,
                                       timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "verdict: MATCH" in done.stdout and "answered as recorded, 0 differently" in done.stdout
        again = await asyncio.to_thread(subprocess.run, argv, check=False, capture_output=True, text=True, env=env,
                                        timeout=120)  # the same prefix again: the ids exist now
    assert again.returncode == 2 and "--prefix" in again.stderr, again.stdout + again.stderr
    doc = orjson.loads((tmp_path / "r.json").read_bytes())
    assert doc["verdict"] == "match" and doc["players"]["p-cli"]["opening"] == 100_00


def _terminate(proxy: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM: the proxy writes its report and exits; what it printed."""
    proxy.send_signal(signal.SIGTERM)
    return proxy.communicate(timeout=60)


def _reap(proxy: subprocess.Popen[str]) -> None:
    """Whatever happened, no proxy outlives its test."""
    if proxy.poll() is None:
        proxy.kill()
        proxy.communicate()
