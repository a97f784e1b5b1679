"""``croupier run`` end to end, over real HTTP on 127.0.0.1.

* Every built-in scenario, shortened, against the reference wallet (memory and SQLite
  stores): zero anomalies, nothing left in doubt, and every fault the scenario names
  actually injected.
* Wallets with one deliberate bug each (:mod:`tests.broken_wallets`): the run fails
  with the anomaly that bug is.
* The CLI: exit codes 0/1/2, the --json/--junit/--html reports, --workers merging.
* Determinism: one seed and --rounds replay the same calls per player.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator.judge.ledger import Anomaly
from simulator.play import scenario as scenarios
from simulator.play.faults import FaultRates
from simulator.play.players import make_players
from simulator.play.scenario import Scenario
from simulator.protocol.calls import Op, Outcome, WalletCall
from simulator.protocol.findings import Severity
from simulator.run.runner import RunOptions, RunResult, run
from simulator.wallet.memory import MemoryStore
from tests.broken_wallets import BROKEN, make_broken_app, serve_app, serve_in_thread
from tests.support import ADMIN_TOKEN, ROOT, SECRET, WalletProcess, make_store, serve_wallet

BUILTIN = sorted(scenarios.builtin())
SQLITE_TOO = {"chaos", "duplicates", "timeouts", "live-settlement-burst"}
"""Scenarios also played against the SQLite store (concurrency and group commit)."""
RARE_FLOOR = 0.1
"""Rates below this are raised to it, so a 1.5 s run still injects every fault the scenario names (also on a
busy machine — two test workers on two cores — where it plays fewer rounds: at 0.05 a chaos run once had
no reorder at all)."""
LATE_WIN_FLOOR = 0.1
"""Late-win rounds last 1.2 s; more of them, so a short run on a busy machine still has some."""


# -- helpers ------------------------------------------------------------------------------


def shrink(sc: Scenario, duration_s: float = 1.5, players: int = 8) -> Scenario:
    """``sc`` cut to a ~1.5 s run: fewer players and live seats, short think times, rare faults
    made common; with late wins, 1 s sessions and 1.2 s late wins so they land on expired sessions."""
    rates = sc.faults.rates
    floored = {n: max(getattr(rates, n), LATE_WIN_FLOOR if n == "late_win" else RARE_FLOOR)
               for n in FaultRates.names() if getattr(rates, n) > 0}
    faults = dataclasses.replace(sc.faults, rates=dataclasses.replace(rates, **floored))
    changes: dict[str, Any] = {
        "duration_s": duration_s, "rounds": None, "players": min(sc.players, players),
        "live": dataclasses.replace(sc.live, tables=min(sc.live.tables, 2), seats=min(sc.live.seats, 5)),
        "think_time_ms": sc.think_time_ms if sc.think_time_ms and sc.think_time_ms[1] <= 50 else (0, 20),
        "faults": faults,
    }
    if rates.late_win > 0:
        changes["session_ttl_s"] = 1
        changes["faults"] = dataclasses.replace(faults, late_win_delay_s=1.2)
    return dataclasses.replace(sc, **changes)


def warm_players(sc: Scenario, seed: int) -> None:
    """Build the Faker generators the run's players need before the run's clock starts.

    The runner makes its players inside ``duration_s`` (synchronously, on the event loop):
    ~20 ms per new locale, a second on a loaded machine, enough to eat a 1.5 s run whole
    (see test_duration_is_play_time_not_setup_time).  The generators are cached per process."""
    make_players(seed, sc.players + sc.live.tables * sc.live.seats, currencies=sc.currencies, id_prefix="warm")


def options(sc: Scenario, base: str, *, seed: int = 7, run_id: str = "t") -> RunOptions:
    return RunOptions(sc, f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN, seed=seed,
                      run_id=run_id)


def seen(result: RunResult) -> dict[str, int]:
    """The anomaly kinds a run reported, with their counts."""
    return {str(k): n for k, n in result.ledger.counts.items() if n}


def explain(result: RunResult) -> str:
    """What to print when a run is not what the test expected."""
    findings = [f"{f.kind} {f.player_id}: {f.message}" for f in result.ledger.findings[:5]]
    return f"anomalies={seen(result)} findings={findings} errors={result.provision_errors[:5]}"


def injected(result: RunResult, rate: str) -> int:
    """How many times the fault named by a scenario rate was injected."""
    faults = result.stats.faults
    if rate == "invalid":
        return sum(n for k, n in faults.items() if k.startswith("invalid:"))
    return faults[rate]


def late_wins(log: list[dict[str, Any]], delay_s: float) -> int:
    """Wins in the wallet's transaction log recorded at least ``delay_s`` after their round's first bet."""
    first_bet: dict[tuple[str, str], float] = {}
    for row in log:
        if row["op"] == "bet":
            key = (row["player_id"], row["round_id"])
            first_bet[key] = min(first_bet.get(key, row["created_at"]), row["created_at"])
    return sum(1 for row in log if row["op"] == "win" and (row["player_id"], row["round_id"]) in first_bet
               and row["created_at"] - first_bet[(row["player_id"], row["round_id"])] >= delay_s - 0.01)


def croupier(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``python -m simulator run ARGS`` from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    for name in ("CROUPIER_SECRET", "CROUPIER_ADMIN_TOKEN", "CROUPIER_SCENARIOS"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "simulator", "run", *args], check=False, cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def one_line(text: str) -> str:
    """Rich wraps long messages; join them back to one line."""
    return re.sub(r"\s+", " ", text)


def secrets_args(base: str) -> list[str]:
    return ["--wallet", f"{base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN]


# -- 1. every built-in scenario against the reference wallet --------------------------------


def test_builtin_scenarios_are_found() -> None:
    """The parametrization below is not silently empty."""
    assert {"smoke", "chaos", "duplicates", "reorder", "timeouts"} <= set(BUILTIN), BUILTIN


SLOW_SCENARIOS = {"chaos"}
"""Late wins keep rounds open 1.2 s past the end: ~2.5 s runs."""
SCENARIO_CASES = [
    pytest.param(n, "memory", id=f"{n}-memory", marks=[pytest.mark.slow] if n in SLOW_SCENARIOS else [])
    for n in BUILTIN
] + [pytest.param(n, "sqlite", id=f"{n}-sqlite", marks=pytest.mark.slow) for n in BUILTIN if n in SQLITE_TOO]


@pytest.mark.parametrize(("name", "store"), SCENARIO_CASES)
async def test_builtin_scenario_is_clean_against_the_reference_wallet(name: str, store: str, tmp_path: Path) -> None:
    """The reference wallet passes every built-in scenario: no anomaly, nothing in doubt, every fault used."""
    sc = shrink(scenarios.load(name))
    warm_players(sc, seed=7)
    async with serve_wallet(make_store(store, tmp_path)) as served:
        result = await run(options(sc, served.base, run_id=f"{name}-{store}"))
        held = {pid: (await served.admin.player(pid))["balance"] for pid in result.ledger.books}
        log = await served.admin.transactions() if sc.faults.rates.late_win > 0 else []

    assert result.verdict == "pass", explain(result)
    assert result.ledger.anomaly_count == 0 and not any(result.ledger.counts.values())  # not even a note
    assert result.unsettled == 0 and not result.ledger.in_doubt() and result.error is None
    assert not result.provision_errors, result.provision_errors[:5]
    assert result.players == sc.players + sc.live.tables * sc.live.seats
    stats = result.stats
    assert stats.results["bet:ok"] > 0 and stats.results["win:ok"] > 0, stats.results
    assert stats.calls["balance"] >= result.players  # the final, solo balance reads
    for rate in FaultRates.names():
        if getattr(sc.faults.rates, rate) > 0:
            assert injected(result, rate) > 0, (rate, dict(stats.faults))
    if sc.live.tables:
        assert stats.rounds["live_rounds"] > 0, stats.rounds
    if sc.faults.rates.late_win > 0:
        # A late win comes 1.2 s after its bet, on a session (opened before the bet) that lasts 1 s:
        # the wallet's own log shows such wins accepted, and no win was refused.
        assert stats.faults["late_win"] > 0 and stats.results["win:SESSION_EXPIRED"] == 0
        assert late_wins(log, sc.faults.late_win_delay_s) > 0
    # The oracle's balances are what the wallet holds, read through the admin API.
    assert {pid: book.expected for pid, book in result.ledger.books.items()} == held


# -- 2. broken wallets over HTTP --------------------------------------------------------------


def _broken_scenario(base: str, *, rounds: int = 15, players: int = 4, **changes: Any) -> Scenario:
    """A rounds-bound run of ``base`` (deterministic in size, fast); ``changes`` may set fault rates."""
    sc = scenarios.load(base)
    rates = {k: changes.pop(k) for k in list(changes) if k in FaultRates.names()}
    faults = dataclasses.replace(sc.faults, rates=dataclasses.replace(sc.faults.rates, **rates))
    for name in ("late_win_delay_s", "late_duplicate_min_delay_s"):
        if name in changes:
            faults = dataclasses.replace(faults, **{name: changes.pop(name)})
    return dataclasses.replace(sc, duration_s=None, rounds=rounds, players=players, think_time_ms=(0, 5),
                               faults=faults, **changes)


BROKEN_CASES: dict[str, Scenario] = {
    # (a) replays applied again
    "forgets_tx_ids": _broken_scenario("duplicates"),
    # (b) rollback before its bet, then the bet accepted
    "ignores_tombstones": _broken_scenario("reorder"),
    # (c) two rounds of one player at once against a read-await-write balance
    "racy_balance": _broken_scenario("smoke", rounds=25, concurrent_rounds=0.5),
    # (d) lost answers make the provider roll bets back, and now and then roll back twice
    "second_rollback_refunds": _broken_scenario("timeouts", rounds=25, duplicate=0.3, lost_response=0.3),
    # (e) wins held back 1.2 s on 1 s sessions
    "refuses_late_wins": _broken_scenario("smoke", rounds=3, late_win=0.5, late_win_delay_s=1.2, session_ttl_s=1),
    # (f) float balances in bet and win answers
    "float_money": _broken_scenario("smoke", rounds=5),
    # (g) replayed wins (tests/test_batches.py: the same bug through replayed bet+win batches)
    "repays_replayed_wins": _broken_scenario("duplicates", invalid=0.0),
    # (h) rollbacks answered with bytes that are not JSON: in doubt for ever, so the settlement's deadline ends it
    "garbles_rollbacks": _broken_scenario("timeouts", rounds=5, settle_timeout_s=1.0),
}


def test_every_broken_wallet_has_a_case() -> None:
    assert set(BROKEN_CASES) == set(BROKEN)


@pytest.mark.parametrize("bug", [
    pytest.param(b, marks=[pytest.mark.slow] if b == "refuses_late_wins" else []) for b in sorted(BROKEN_CASES)
])
async def test_broken_wallet_is_caught_as_its_anomaly(bug: str) -> None:
    """Each one-bug wallet fails the run with the anomaly that bug is, with evidence."""
    async with serve_app(make_broken_app(bug)) as base:
        result = await run(options(BROKEN_CASES[bug], base, run_id=bug))
    expected = {str(k) for k in BROKEN[bug].anomalies}
    assert result.verdict == "fail", explain(result)
    assert expected & set(seen(result)), explain(result)
    assert result.players == BROKEN_CASES[bug].players and result.unseated == 0 and result.error is None, explain(result)
    first = next(f for f in result.ledger.findings if str(f.kind) in expected)
    assert first.evidence and first.player_id.startswith(bug)
    assert first.rule == BROKEN_RULES.get(bug, first.kind.rule), (first.rule, first.message)


BROKEN_RULES = {
    "refuses_late_wins": "sessions-money-owed-is-paid",
    "float_money": "money-minor-units",
    "garbles_rollbacks": "operations-success-shape",
}
"""The rule a broken wallet's finding names where it is not its kind's default rule."""


async def test_bet_accepted_after_rollback_is_not_also_a_balance_mismatch() -> None:
    """A wallet that ignores tombstones is reported as accepted_after_rollback only: its refund is right.

    Regression: the ledger kept the amount-less placeholder the early rollback left (delta 0), so
    the provider's compensating rollback was credited as 0 and the wallet's correct refund was
    flagged balance_mismatch too (fixed in Ledger._debit_credit)."""
    async with serve_app(make_broken_app("ignores_tombstones")) as base:
        result = await run(options(_broken_scenario("reorder", rounds=8), base, run_id="tomb"))
    assert seen(result).keys() == {"accepted_after_rollback"}, explain(result)


async def test_duration_is_play_time_not_setup_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of ``duration_s`` plays for that long, however long making its players took."""
    def slow_make_players(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.6)  # what building Faker generators costs on a busy machine: the loop is blocked
        return make_players(*args, **kwargs)

    monkeypatch.setattr("simulator.run.runner.make_players", slow_make_players)
    sc = dataclasses.replace(scenarios.load("smoke"), duration_s=0.5, players=2, think_time_ms=(0, 5))
    async with serve_wallet(MemoryStore()) as served:
        result = await run(options(sc, served.base, run_id="setup"))
    assert result.stats.results["bet:ok"] > 0, (result.verdict, dict(result.stats.calls))


@pytest.mark.slow
def test_broken_wallet_through_the_cli_exits_1_with_its_anomalies(tmp_path: Path) -> None:
    """``croupier run`` against a replay-forgetting wallet: exit 1, double_apply in --json and --junit."""
    json_path, junit_path = tmp_path / "r.json", tmp_path / "r.xml"
    with serve_in_thread(make_broken_app("forgets_tx_ids")) as base:
        proc = croupier("duplicates", *secrets_args(base), "--rounds", "10", "--player-count", "4",
                        "--seed", "3", "--json", str(json_path), "--junit", str(junit_path))
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = orjson.loads(json_path.read_bytes())
    assert report["verdict"] == "fail"
    assert report["anomalies"]["double_apply"] > 0, report["anomalies"]
    assert any(f["kind"] == "double_apply" and f["evidence"] for f in report["findings"])
    assert "double_apply" in proc.stdout  # the summary names it
    cases = {c.get("name"): c for c in ET.parse(junit_path).getroot().iter("testcase")}
    assert cases["double_apply"].find("failure") is not None
    assert cases["lost_update"].find("failure") is None


# -- 3. the CLI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wallet_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalletProcess]:
    """``croupier wallet serve`` on SQLite, shared by the CLI tests (each run has its own run id)."""
    with WalletProcess(tmp_path_factory.mktemp("wallet") / "wallet.db") as proc:
        yield proc


@pytest.mark.parametrize(("args", "says"), [
    (["no-such-scenario"], "no scenario named 'no-such-scenario'"),
    (["smoke", "--rounds", "0"], "--rounds must be at least 1"),
    (["smoke", "--duration", "-1"], "--duration must be positive"),
    (["smoke", "--workers", "0"], "--workers must be at least 1"),
], ids=["unknown-scenario", "rounds-0", "negative-duration", "workers-0"])
def test_usage_errors_exit_2(args: list[str], says: str) -> None:
    proc = croupier(*args, "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert says in one_line(proc.stderr)


@pytest.mark.parametrize(("toml", "key"), [
    ('name = "typo"\n[run]\nduraton_s = 1\n', "run.duraton_s"),
    ('name = "typo"\n[faults]\nduplicat = 0.1\n', "faults.duplicat"),
    ('name = "typo"\n[fautls]\nduplicate = 0.1\n', "fautls"),
], ids=["run-key", "faults-key", "section"])
def test_misspelt_scenario_key_exits_2_and_names_it(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(toml, encoding="utf-8")
    proc = croupier(str(path), "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert f"unknown key {key}" in one_line(proc.stderr)


def test_reports_are_written(wallet_proc: WalletProcess, tmp_path: Path) -> None:
    """A clean run exits 0 and writes the JSON, JUnit (a testcase per money and contract kind, notes and
    coverage as properties) and HTML reports."""
    paths = {ext: tmp_path / f"report.{ext}" for ext in ("json", "xml", "html")}
    proc = croupier("smoke", *secrets_args(wallet_proc.base), "--rounds", "3", "--player-count", "4",
                    "--json", str(paths["json"]), "--junit", str(paths["xml"]), "--html", str(paths["html"]),
                    "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = orjson.loads(paths["json"].read_bytes())
    assert report["verdict"] == "pass" and report["error"] is None and report["fail_on"] == "contract"
    assert report["players"] == 4 and report["unsettled"] == 0
    assert set(report["anomalies"]) == {str(k) for k in Anomaly} and not any(report["anomalies"].values())
    assert report["findings_by_severity"] == {"money": {}, "contract": {}, "note": {}}
    coverage = {r["rule"]: r for r in report["coverage"]}
    assert coverage["operations-effect"]["calls"] > 0 and coverage["operations-effect"]["result"] == "pass"
    assert coverage["idempotency-2-mismatch"]["result"] == "not exercised"  # smoke sends no invalid call
    suite = ET.parse(paths["xml"]).getroot().find("testsuite")
    assert suite is not None
    failing_kinds = sorted(str(k) for k in Anomaly if k.severity is not Severity.NOTE)
    kinds = [str(c.get("name")) for c in suite.iter("testcase") if c.get("classname") in ("croupier.money",
                                                                                       "croupier.contract")]
    assert sorted(kinds) == failing_kinds
    assert suite.get("tests") == str(len(failing_kinds) + 1)  # + the run itself
    assert suite.get("failures") == "0" and suite.get("errors") == "0" and not list(suite.iter("failure"))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["note.wallet_choice"] == "0" and props["verdict"] == "pass"
    assert props["coverage.operations-effect"].startswith("calls=")
    html = paths["html"].read_text(encoding="utf-8")
    assert 'id="croupier-series"' in html and "smoke" in html and "Coverage" in html and ">PASS<" in html


def _calls(report: dict[str, Any]) -> Counter[str]:
    return Counter(report["calls"])


@pytest.mark.slow
def test_workers_merge_into_one_report(wallet_proc: WalletProcess, tmp_path: Path) -> None:
    """--workers 2 reports the sum of its two shards, and the same calls as one worker with that seed."""
    common = ["smoke", *secrets_args(wallet_proc.base), "--seed", "11", "--rounds", "3", "--player-count", "6",
              "--quiet"]
    merged_path, single_path = tmp_path / "merged.json", tmp_path / "single.json"
    proc = croupier(*common, "--workers", "2", "--run-id", "w2", "--json", str(merged_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = croupier(*common, "--run-id", "w1", "--json", str(single_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    shards = []
    for k in range(2):  # the shards a 2-worker run is made of, run one by one
        part = tmp_path / f"shard{k}.json"
        proc = croupier(*common, "--run-id", "ws", "--shard", f"{k}/2", "--partial", str(part))
        assert proc.returncode == 0, proc.stderr[-2000:]
        shards.append(orjson.loads(part.read_bytes())["report"])
    merged, single = orjson.loads(merged_path.read_bytes()), orjson.loads(single_path.read_bytes())

    assert merged["workers"] == 2 and merged["verdict"] == "pass" and merged["unsettled"] == 0
    assert all(s["players"] == 3 for s in shards), [s["players"] for s in shards]
    assert merged["players"] == sum(s["players"] for s in shards) == single["players"] == 6
    assert _calls(merged) == _calls(shards[0]) + _calls(shards[1]) == _calls(single)
    assert merged["rounds"] == single["rounds"]
    # Latency histograms merge exactly: one sample per call.
    assert {op: h["count"] for op, h in merged["latency_ms"].items()} == dict(_calls(merged))
    # The per-second series of the merged run adds up to its calls too (shards aligned on their starts).
    assert {op: sum(v) for op, v in merged["series"]["calls"].items()} == dict(_calls(merged))


# -- 4. determinism -------------------------------------------------------------------------


class RecordingStore(MemoryStore):
    """The reference store, remembering every call it was asked, per player, in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, list[WalletCall]] = defaultdict(list)

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.player_id is not None:
            self.calls[call.player_id].append(call)
        return await super().execute(call, now)


def _suffix(value: str | None) -> str | None:
    return None if value is None else value.rsplit("-", 1)[-1]


async def _played(seed: int) -> dict[str, list[WalletCall]]:
    """Per player, the calls a fresh wallet received from ``duplicates`` with 5 rounds and ``seed``."""
    sc = dataclasses.replace(scenarios.load("duplicates"), duration_s=None, rounds=5, players=6)
    store = RecordingStore()
    async with serve_wallet(store) as served:
        result = await run(options(sc, served.base, seed=seed, run_id="det"))
    assert result.verdict == "pass", explain(result)
    return {pid: [dataclasses.replace(c, session_token=None) for c in calls] for pid, calls in store.calls.items()}


async def test_same_seed_and_rounds_replay_the_same_calls() -> None:
    """Two fresh wallets, one seed: every player sends the same calls in the same order."""
    first, second = await _played(seed=21), await _played(seed=21)

    def view(calls: dict[str, list[WalletCall]]) -> dict[str, list[tuple[Any, ...]]]:
        return {pid: [(str(c.op), c.amount.minor if c.amount else None, _suffix(c.round_id), _suffix(c.tx_id))
                      for c in cs] for pid, cs in calls.items()}

    assert len(first) == 6 and all(any(c.op is Op.BET for c in cs) for cs in first.values())
    assert view(first) == view(second)
    assert first == second  # every field but the session token, which the wallet draws at random
    # The scenario's duplicates were delivered: some call reached the wallet more than once.
    assert any(max(Counter(c.tx_id for c in cs if c.tx_id).values()) > 1 for cs in first.values())
    assert view(await _played(seed=22)) != view(first)
