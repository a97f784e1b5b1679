"""Live Prometheus metrics (docs/metrics.md): every component started for real on 127.0.0.1, scraped while it
works, its counters checked against what was done — and against each other, where one call passes through
several components — and the dashboard (docs/grafana/croupier.json) checked to query only what they expose.

The scrapes are taken once per module (two fixtures) and shared by the tests that read them, so the file
costs a few processes' start-up and a few seconds of play, not one set-up per assertion.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simulator.metrics.families import FAMILIES, Metrics, component_names
from simulator.proxy.faults import ProxyFaults
from simulator.proxy.server import final_report
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryStore
from simulator.wallet.service import make_app as wallet_app
from tests.planted_wallets import DoubleAppliedReplay
from tests.support import (
    ADMIN_TOKEN,
    PG_DSN,
    ROOT,
    SECRET,
    WalletProcess,
    child_processes,
    free_port,
    serve_wallet,
    skip_without_pg,
    until,
)
from tests.test_proxy import serve_line

DASHBOARD = ROOT / "docs" / "grafana" / "croupier.json"


@dataclass(frozen=True)
class Scrape:
    """One ``/metrics`` answer, parsed by prometheus_client's own parser."""

    samples: list[tuple[str, dict[str, str], float]]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        return cls([(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples])

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        return sum(v for n, lab, v in self.samples if n == name and labels.items() <= lab.items())

    @property
    def names(self) -> set[str]:
        return {n for n, _, _ in self.samples}


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        return Scrape.parse(resp.read().decode())


async def ascrape(http: aiohttp.ClientSession, url: str) -> Scrape:
    async with http.get(url) as resp:
        assert resp.status == 200
        return Scrape.parse(await resp.text())


# -- wallet ← proxy ← provider, in this process: the README's three commands ------------------------------
@dataclass(frozen=True)
class Line:
    before: dict[str, Scrape]
    """wallet, provider, proxy: after clean rounds."""
    after: dict[str, Scrape]
    """The same after rounds with the proxy's duplicate fault switched on."""
    report: dict[str, Any]
    rounds: int


async def _play_line() -> Line:
    """Rounds through the provider, then the proxy's ``duplicate`` fault switched on at run time (PUT /faults)
    and more rounds, at a wallet that applies a replayed bet again (tests/planted_wallets.py)."""
    metrics = Metrics("wallet")
    wallet = wallet_app(DoubleAppliedReplay(), WalletConfig(SECRET, ADMIN_TOKEN), metrics=metrics)
    async with serve_line(wallet=wallet, faults=ProxyFaults(), provider_metrics=Metrics("provider")) as line:
        urls = {"wallet": f"{line.wallet_base}/metrics", "provider": f"{line.api.base}/metrics",
                "proxy": f"{line.control}/metrics"}
        http = line.api.http
        await line.rounds("p-clean", 4)
        before = {name: await ascrape(http, url) for name, url in urls.items()}
        status, _ = await line.control_call("PUT", "/faults", {"duplicate": 1.0})
        assert status == 200
        await line.rounds("p-duplicated", 4)
        after = {name: await ascrape(http, url) for name, url in urls.items()}
        report = await final_report(line.proxy)
    return Line(before, after, report, 8)


@pytest.fixture(scope="module")
def line() -> Line:
    return asyncio.run(_play_line())


def test_wallet_provider_and_proxy_count_the_same_calls_and_the_fault_shows_in_metrics_and_report(line: Line) -> None:
    wallet, provider, proxy = (line.after[c] for c in ("wallet", "provider", "proxy"))
    sent = provider.value("croupier_calls_total", component="provider", op="bet")
    assert sent >= line.rounds
    assert proxy.value("croupier_calls_total", component="proxy", op="bet", outcome="ok") >= sent
    duplicated = proxy.value("croupier_faults_injected_total", component="proxy", fault="duplicate", op="bet")
    assert duplicated >= 1
    assert line.before["proxy"].value("croupier_faults_injected_total") == 0  # none before it was switched on
    # Each call the provider sent reached the wallet once, each duplicated one once more.
    assert wallet.value("croupier_calls_total", component="wallet", op="bet") == sent + duplicated
    assert wallet.value("croupier_call_latency_seconds_count", component="wallet", op="bet") == sent + duplicated
    assert provider.value("croupier_rounds_total", component="provider") >= line.rounds
    # The fault and what it found, in the final report as in the metrics.
    assert line.report["faults_injected"]["duplicate"] == proxy.value("croupier_faults_injected_total",
                                                                      fault="duplicate")
    assert line.report["anomalies"].get("double_apply", 0) >= 1
    assert proxy.value("croupier_anomalies_total", component="proxy", kind="double_apply", severity="money") \
        == line.report["anomalies"]["double_apply"]
    # The provider's own ledger saw the balance the double-applied replays left.
    assert provider.value("croupier_anomalies_total", component="provider", severity="money") >= 1
    assert provider.value("croupier_players", component="provider") == 2


def test_refusals_count_as_errors_by_code() -> None:
    """A refused bet is a rejected call and an error with its protocol code; a wallet without metrics has no
    ``/metrics`` route (and pays nothing for them)."""

    async def go() -> tuple[Scrape, int]:
        metrics = Metrics("wallet")
        async with serve_wallet(MemoryStore()) as bare, bare.session.get(f"{bare.base}/metrics") as resp:
            unmetered = resp.status
        wallet = wallet_app(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN), metrics=metrics)
        async with serve_line(wallet=wallet) as line:
            token = await line.player("p-poor", 10)
            launched = await line.api.launch("p-poor", token)
            status, _ = await line.api.play(launched["session_id"], 500)
            assert status >= 400
            return await ascrape(line.api.http, f"{line.wallet_base}/metrics"), unmetered

    got, unmetered = asyncio.run(go())
    assert unmetered == 404
    assert got.value("croupier_calls_total", op="bet", outcome="rejected") == 1
    assert got.value("croupier_errors_total", op="bet", code="INSUFFICIENT_FUNDS") == 1
    assert got.value("croupier_calls_total", op="authenticate", outcome="ok") == 1


def test_a_batching_dialect_is_counted_call_by_call_on_both_sides() -> None:
    """actions-hmac sends an instant round's bet and win in one request: the wallet counts each call it
    applied under the dialect's name, as many as the provider counts having sent."""

    async def go() -> tuple[Scrape, Scrape]:
        wallet = wallet_app(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN), metrics=Metrics("wallet"))
        async with serve_line(dialect="actions-hmac", wallet=wallet, provider_metrics=Metrics("provider")) as line:
            await line.rounds("p-batch", 4)
            http = line.api.http
            return (await ascrape(http, f"{line.wallet_base}/metrics"),
                    await ascrape(http, f"{line.api.base}/metrics"))

    wallet, provider = asyncio.run(go())
    for op in ("bet", "win"):
        sent = provider.value("croupier_calls_total", component="provider", dialect="actions-hmac", op=op)
        assert sent >= 4
        assert wallet.value("croupier_calls_total", component="wallet", dialect="actions-hmac", op=op,
                            outcome="ok") == sent


# -- croupier wallet serve --metrics and croupier run --metrics-listen --workers 2, as commands ---------------
@dataclass(frozen=True)
class Run:
    live: Scrape
    """The run's /metrics while it played."""
    wallet: Scrape
    """The wallet's after the run."""
    report: dict[str, Any]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("run")
    port = free_port()
    with WalletProcess(tmp / "wallet.db", "--metrics") as wallet:
        proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "run", "smoke", "--wallet", f"{wallet.base}/wallet", "--duration", "2",
             "--player-count", "4", "--workers", "2", "--metrics-listen", f"127.0.0.1:{port}", "--quiet",
             "--secret", SECRET, "--admin-token", ADMIN_TOKEN, "--json", str(tmp / "run.json")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        seen: list[Scrape] = []

        def playing() -> bool:
            try:
                got = scrape(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                return False
            seen.append(got)
            return got.value("croupier_rounds_total") > 0 and got.value("croupier_players") == 4

        until("rounds in the run's metrics", playing, proc, timeout=30)
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err.decode()[-2000:]
        yield Run(seen[-1], scrape(f"{wallet.base}/metrics"), orjson.loads((tmp / "run.json").read_bytes()))


def test_a_run_with_two_workers_is_scraped_live_and_the_wallet_counts_what_it_sent(run: Run) -> None:
    live = run.live
    # Both workers' players (2 + 2) in one gauge: the parent adds its workers up.
    assert live.value("croupier_players", component="run") == 4
    assert 0 <= live.value("croupier_sessions_playing", component="run") <= 4
    assert live.value("croupier_calls_total", component="run", op="bet", outcome="ok") > 0
    assert live.value("croupier_call_latency_seconds_count", component="run", op="bet") > 0
    assert live.value("croupier_calls_total") <= sum(run.report["calls"].values())  # a scrape during the run
    # What the run reports having sent is what the wallet counts having answered.
    assert run.wallet.value("croupier_calls_total", component="wallet", op="bet") == run.report["calls"]["bet"]
    assert run.wallet.value("croupier_calls_total", component="wallet", op="win") == run.report["calls"]["win"]


def test_a_run_in_one_process_ends_with_its_metrics_equal_to_its_report() -> None:
    """One process: the run's own registry, served from prometheus_client's thread while the loop plays; the
    last update after the settlement leaves the scrape equal to the run's statistics."""
    import dataclasses

    from simulator.metrics.exposition import listen
    from simulator.play import scenario as scenarios
    from simulator.run.runner import RunOptions, run

    async def go() -> tuple[Any, Scrape]:
        metrics = Metrics("run")
        port = free_port()
        stop = listen("127.0.0.1", port, metrics.registry)
        try:
            async with serve_wallet(MemoryStore()) as served:
                smoke = dataclasses.replace(scenarios.load("smoke"), duration_s=1.0, players=3)
                result = await run(RunOptions(smoke, f"{served.base}/wallet", SECRET, admin_url=served.base,
                                              admin_token=ADMIN_TOKEN, metrics=metrics))
            return result, await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")
        finally:
            stop()

    result, got = asyncio.run(go())
    stats = result.stats
    assert stats.calls["bet"] > 0
    for op, n in stats.calls.items():
        assert got.value("croupier_calls_total", component="run", op=op) == n, op
    assert got.value("croupier_errors_total") == sum(n for k, n in stats.results.items() if not k.endswith(":ok"))
    assert got.value("croupier_rounds_total") == sum(stats.rounds.values())
    assert got.value("croupier_players") == 3
    assert got.value("croupier_sessions_playing") == 0 and got.value("croupier_in_doubt") == 0


def test_a_metrics_address_that_cannot_be_had_is_one_sentence_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from simulator.commands.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["run", "smoke", "--wallet", "http://127.0.0.1:1/wallet", "--metrics-listen", f"127.0.0.1:{port}",
                     "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in err and "--metrics-listen" in err


def test_wallet_workers_on_postgres_add_up_in_every_scrape(tmp_path: Path) -> None:
    """``--workers 2``: whichever worker the kernel hands a scrape answers for both."""
    skip_without_pg()
    schema = f"croupier_t_{uuid.uuid4().hex[:16]}"
    calls = 40

    async def bets(base: str) -> None:
        from simulator.drive.client import AdminClient, WalletClient
        from simulator.protocol.calls import Ok, WalletCall
        from simulator.protocol.dialects.canonical import CanonicalDialect
        from simulator.protocol.money import Money

        # A connection per call: the kernel spreads connections, not requests, over the workers.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            admin = AdminClient(base, ADMIN_TOKEN, http)
            await admin.create_player("p-pool", "EUR", 10_000)
            wallet = WalletClient(f"{base}/wallet", CanonicalDialect(SECRET), http)
            opened = await wallet.send(WalletCall.authenticate(await admin.token("p-pool"), "slot"))
            assert isinstance(opened, Ok) and opened.session_token
            for i in range(calls):
                await wallet.send(WalletCall.bet(f"tx-{i}", "p-pool", opened.session_token, "slot", f"r-{i}",
                                                 Money.of(1, "EUR")))

    try:
        with WalletProcess(tmp_path / "unused.db", "--dsn", PG_DSN, "--pg-schema", schema, "--workers", "2",
                           "--metrics") as pool:
            asyncio.run(bets(pool.base))
            assert pool.proc is not None
            workers = child_processes(pool.proc.pid)
            assert len(workers) == 2
            folder = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
            assert all(any(folder.glob(f"*_{w.pid}.db")) for w in workers), "a worker served no call"
            for _ in range(6):  # several connections: each worker answers some scrapes
                got = scrape(f"{pool.base}/metrics")
                assert got.value("croupier_calls_total", op="bet", outcome="ok") == calls
                assert got.value("croupier_call_latency_seconds_count", op="bet") == calls
            assert pool.terminate() == 0  # SIGTERM, passed on to the workers
        assert not folder.exists(), "the pool's metrics folder outlived it"
    finally:
        asyncio.run(_drop(schema))


async def _drop(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


# -- the dashboard -----------------------------------------------------------------------------------------
def queried(dashboard: dict[str, Any]) -> set[str]:
    """Every metric name the dashboard's PromQL expressions (panels and variables) name."""
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return {m for e in exprs for m in re.findall(r"\b(croupier_[a-z_]+)\b", e)}


def test_the_dashboard_queries_only_metrics_the_components_expose(line: Line, run: Run) -> None:
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    names = queried(dashboard)
    exposed = set().union(*(s.names for s in line.after.values()), run.live.names, run.wallet.names)
    assert names and names <= exposed, f"queried but exposed by no component: {sorted(names - exposed)}"
    assert {n for n in exposed if not n.endswith("_created")} <= component_names()
    # Every family of the vocabulary is on the dashboard.
    assert {f.exposed[0] for f in FAMILIES} <= names
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"component", "job", "dialect"}
