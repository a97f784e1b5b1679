"""``croupier load``: Locust users that are players, against real wallets in subprocesses.

The pure parts (thresholds, shapes, the scenario's ``[load]`` table, merging snapshots) are
tested here directly; Locust itself only ever runs in child processes (gevent must never
patch the test process).  The runs are short and marked slow: a headless run, a distributed
run with two workers, a broken wallet, a threshold that cannot be met.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from loadtests import curves, report, settings, verdict
from simulator.commands import loadcmd
from simulator.play.scenario import ScenarioError
from simulator.protocol.findings import KINDS, Severity
from tests.support import ADMIN_TOKEN, ROOT, SECRET, WalletProcess, free_port, wait_serving


# -- pure parts -------------------------------------------------------------------------
def _stats() -> dict[str, Any]:
    return {"duration_s": 10.0, "entries": [
        verdict.entry("wallet", "bet", 100, 1, {1: 50, 2: 40, 300: 10}, 3190.0, 301.0, 0.5),
        verdict.entry("wallet", "win", 100, 0, {1: 100}, 100.0, 1.4, 0.4),
        verdict.entry("admin", "token", 10, 0, {3: 10}, 30.0, 3.0, 3.0),
        verdict.entry("ANOMALY", "double_apply", 2, 2, {0: 2}, 0.0, 0.0, 0.0),
    ]}


def test_thresholds_parse_units_and_reject_nonsense() -> None:
    assert verdict.parse("p99(bet)>250ms").limit == 250
    assert verdict.parse("p99.9 > 0.5s").limit == 500
    assert verdict.parse("error_rate>0.1%").limit == pytest.approx(0.001)
    assert verdict.parse("avg(wallet win)>=20").selector == "wallet win"
    for bad in ("p99(bet)>>2", "p100>1ms", "error_rate>5ms", "requests>3ms", "speed>1", "p99(bet)"):
        with pytest.raises(verdict.ThresholdError):
            verdict.parse(bad)


def test_thresholds_measure_rows_merge_and_exclude_anomaly_rows() -> None:
    stats, anomalies = _stats(), {"double_apply": 2}
    got = {r.threshold.text: r for r in verdict.evaluate(verdict.parse_all([
        "p99(bet)>250ms", "p50(bet)>5ms", "p99>1000ms", "error_rate>0.1%", "error_rate(win)>0", "rps<100",
        "requests(token)<10", "anomalies>0", "anomalies(lost_update)>0", "p99(roulette)>1ms", "unsettled>0",
    ]), stats, anomalies)}
    assert not got["p99(bet)>250ms"].passed and got["p99(bet)>250ms"].measured == 300
    assert got["p50(bet)>5ms"].passed
    assert got["p99>1000ms"].passed  # every row but the anomaly rows
    assert not got["error_rate>0.1%"].passed and got["error_rate>0.1%"].measured == pytest.approx(1 / 210)
    assert got["error_rate(win)>0"].passed
    assert got["rps<100"].measured == pytest.approx(21.0) and not got["rps<100"].passed
    assert got["requests(token)<10"].passed
    assert not got["anomalies>0"].passed and got["anomalies(lost_update)>0"].passed
    assert not got["p99(roulette)>1ms"].passed and "not measured" in got["p99(roulette)>1ms"].message
    assert got["unsettled>0"].passed


def test_shapes_follow_their_curves_and_end() -> None:
    assert tuple(curves.SHAPES) == loadcmd.SHAPES
    d, peak = 100.0, 50
    assert [curves.users_at("step", t, d, peak) for t in (0, 25, 45, 65, 85, 99)] == [10, 20, 30, 40, 50, 50]
    assert curves.users_at("spike", 10, d, peak) == 10 and curves.users_at("spike", 45, d, peak) == 50
    assert curves.users_at("spike", 60, d, peak) == 10
    ramp = [curves.users_at("ramp", t, d, peak) for t in range(0, 100, 5)]
    assert ramp == sorted(ramp) and ramp[0] == 1 and ramp[-1] == peak
    assert curves.users_at("soak", 5, d, peak) == 25 and curves.users_at("soak", 50, d, peak) == peak
    evening = [curves.users_at("evening-peak", t, d, peak) for t in range(100)]
    assert max(evening) == peak and evening.index(peak) in range(55, 70) and min(evening) >= 1
    assert curves.users_at("ramp", d, d, peak) is None
    with pytest.raises(ValueError):
        curves.check("sawtooth")


def test_a_scenario_load_table_is_validated_and_the_rest_is_the_core_scenario(tmp_path: Path) -> None:
    good = tmp_path / "gated.toml"
    good.write_text('name = "gated"\n[run]\nduration_s = 3\nplayers = 4\n'
                    '[load]\nfail_on = ["p99(bet)>250ms"]\nshape = "spike"\nusers = 20\n', encoding="utf-8")
    sc, load = settings.load_scenario(str(good))
    assert sc.name == "gated" and sc.players == 4
    assert load.fail_on == ("p99(bet)>250ms",) and load.shape == "spike" and load.users == 20
    for body, words in (('[load]\nfail_on = ["p99>>1"]\n', "fail_on"), ('[load]\nshape = "zigzag"\n', "shape"),
                        ('[load]\nramp = 1\n', "load.ramp"), ('[run]\nplayerz = 1\n', "run.playerz")):
        bad = tmp_path / "bad.toml"
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(ScenarioError, match=words):
            settings.load_scenario(str(bad))


def test_snapshots_merge_and_the_report_names_its_reasons() -> None:
    a = {"node": "w0", "final": True, "players": 2, "calls": {"bet": 5}, "results": {"bet:ok": 5},
         "anomalies": {"double_apply": 1},
         "findings": [{"kind": "double_apply", "player_id": "p", "message": "m", "evidence": []}], "unsettled": 0}
    b = {"node": "w1", "final": True, "players": 3, "calls": {"bet": 7}, "anomalies": {}, "unsettled": 2}
    merged = report.merge_snapshots([a, b])
    assert merged["players"] == 5 and merged["calls"] == {"bet": 12} and merged["unsettled"] == 2
    built = report.build(_stats(), merged, verdict.parse_all(["p99(bet)>250ms"]), scenario="s", target="t",
                         seed=1, run_id="r", workers=2, topology="wallet")
    assert built["verdict"] == "fail" and built["error"] is None
    assert built["reasons"] == ["1 money findings", "2 calls still in doubt", "1 of 1 thresholds"]
    assert built["findings_by_severity"]["money"] == {"double_apply": 1}
    assert built["calls"] == {"bet": 100, "win": 100} and built["latency_ms"]["bet"]["p99"] == 300
    xml = ET.fromstring(loadcmd.junit(built))
    failed = {c.get("name") for c in xml.iter("testcase") if c.find("failure") is not None}
    assert failed == {"double_apply", "p99(bet)>250ms"}
    # Notes never fail a run (unless --fail-on note); a run that seated nobody is an error, never a pass.
    noted = report.merge_snapshots([{"node": "w0", "players": 1, "calls": {"bet": 3}, "results": {"bet:ok": 3},
                                     "anomalies": {"wallet_choice": 2}}])
    assert report.build(_stats(), noted, [], scenario="s", target="t", seed=1, run_id="r", workers=0,
                        topology="wallet")["verdict"] == "pass"
    assert report.build(_stats(), noted, [], scenario="s", target="t", seed=1, run_id="r", workers=0,
                        topology="wallet", fail_on=Severity.NOTE)["verdict"] == "fail"
    nobody = report.merge_snapshots([{"node": "w0", "players": 0, "causes": {"admin API answered 401: check "
                                                                           "--admin-token": 4}}])
    built = report.build(_stats(), nobody, [], scenario="s", target="t", seed=1, run_id="r", workers=0,
                         topology="wallet")
    assert built["verdict"] == "error" and "--admin-token" in built["error"]
    assert ET.fromstring(loadcmd.junit(built)).find(".//error") is not None


def test_a_worker_lost_before_its_final_report_never_lets_the_run_pass() -> None:
    """Killed before it settled: its players' last calls were never judged, so a clean-looking run is an error,
    and one with findings still fails, naming the lost worker among its reasons."""
    done = {"node": "w0", "final": True, "players": 2, "calls": {"bet": 5}, "results": {"bet:ok": 5}, "anomalies": {}}
    cut = {"node": "w1", "final": False, "players": 2, "calls": {"bet": 4}, "results": {"bet:ok": 4}, "anomalies": {}}
    kw: dict[str, Any] = {"scenario": "s", "target": "t", "seed": 1, "run_id": "r", "workers": 2, "topology": "wallet"}
    assert report.build(_stats(), report.merge_snapshots([done, cut]), [], **kw)["verdict"] == "pass"
    built = report.build(_stats(), report.merge_snapshots([done, cut]), [], **kw, lost=["w1"])
    assert built["verdict"] == "error" and "w1" in built["error"] and built["lost_workers"] == ["w1"]
    assert ET.fromstring(loadcmd.junit(built)).find(".//error") is not None
    bad = {**cut, "anomalies": {"double_apply": 1}}
    built = report.build(_stats(), report.merge_snapshots([done, bad]), [], **kw, lost=["w1"])
    assert built["verdict"] == "fail" and any("w1" in r for r in built["reasons"])


def test_percentiles_never_exceed_the_slowest_call() -> None:
    """Locust rounds a latency to whole ms below 100 ms: 55.855 ms is kept as 56, whose nearest-rank p99
    would say 56.0 beside a max of 55.855 (seen in a real run); croupier clamps to the row's [min, max]."""
    row = verdict.entry("wallet", "authenticate", 100, 0, {2: 1, 10: 90, 56: 9}, 1500.0, 55.855, 1.6)
    lat = verdict.latency_summary(row)
    assert lat["p99"] == lat["max"] == 55.855 and lat["p50"] == 10
    assert verdict.row_percentile(row, 0.5) == 2.0  # above the fastest (1.6): the bucket is right there
    low = verdict.entry("wallet", "bet", 3, 0, {0: 3}, 0.9, 0.4, 0.2)
    assert verdict.row_percentile(low, 50) == 0.2  # never below the fastest call either
    measured = verdict.evaluate([verdict.parse("p99(authenticate)>55.9ms")], {"entries": [row]}, {})
    assert measured[0].passed and measured[0].measured == 55.855


def test_provisioning_is_counted_apart_and_merged_exactly() -> None:
    from loadtests import provisioning

    a, b = provisioning.Provisioning(), provisioning.Provisioning()
    for ms in (2.0, 3.0, 700.0):
        a.fire(request_type="admin", name="create player", response_time=ms, response_length=0, exception=None,
               context={})
    b.fire(request_type="admin", name="token", response_time=4.0, exception=RuntimeError("401"))
    got = provisioning.summary(provisioning.merge([a.to_json(), None, b.to_json()]))
    assert got["calls"] == 4 and got["failures"] == 1 and got["time_s"] == pytest.approx(0.709)
    assert got["by_name"]["create player"]["count"] == 3 and got["by_name"]["token"]["failures"] == 1
    assert got["latency_ms"]["p99"] == got["latency_ms"]["max"] == 700.0
    line = loadcmd.describe_provisioning(got)
    assert "4 calls, 1 failed (3 create player, 1 token)" in line and "0.709 s" in line
    assert loadcmd.describe_provisioning({}) == ""


def test_an_interrupted_load_run_says_so_in_its_junit() -> None:
    merged = report.merge_snapshots([{"node": "local", "players": 2, "calls": {"bet": 4}, "results": {"bet:ok": 4}}])
    built = report.build(_stats(), merged, [], scenario="s", target="t", seed=1, run_id="r", workers=0,
                         topology="wallet")
    stop = loadcmd.Interrupt(signal="SIGINT", at=12.5, count=2, hurried_at=13.0)
    built["left_in_doubt"] = 3
    built["settlement_skipped"] = True  # what the Locust processes report when a second signal cut it short
    built["interrupted"] = loadcmd.interrupted(built, stop, started=10.0)
    assert built["interrupted"]["signal"] == "SIGINT" and built["interrupted"]["after_s"] == 2.5
    assert not built["interrupted"]["settled"] and built["interrupted"]["unsettled"] == 3
    assert "second interrupt" in built["interrupted"]["note"] and "3 calls left in doubt" in built["interrupted"]["note"]
    xml = ET.fromstring(loadcmd.junit(built))
    cases = [c for c in xml.iter("testcase") if c.get("name") == "run completed"]
    assert len(cases) == 1 and cases[0].find("error") is not None
    assert any(p.get("name") == "interrupted" for p in xml.iter("property"))
    for suite in xml.iter("testsuite"):  # the headers count what is there
        assert int(suite.get("tests", "0")) == len(suite.findall("testcase"))
        assert int(suite.get("errors", "0")) == sum(1 for c in suite.findall("testcase") if c.find("error") is not None)


def test_durations_in_locust_syntax() -> None:
    assert [loadcmd.seconds(t) for t in ("90", "90s", "5m", "1h30m", "2m30s")] == [90, 90, 300, 5400, 150]
    for bad in ("", "soon", "0s", "5x"):
        with pytest.raises(argparse.ArgumentTypeError):
            loadcmd.seconds(bad)


def test_the_croupier_process_never_imports_gevent() -> None:
    code = ("import sys; import simulator.commands.cli, simulator.commands.loadcmd; "
            "simulator.commands.loadcmd._import_loadtests(); "
            "import loadtests.report, loadtests.curves; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust')], 'gevent imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_an_unreachable_wallet_is_exit_2_before_locust_starts(tmp_path: Path) -> None:
    proc = _croupier(tmp_path, "smoke", "--wallet", f"http://127.0.0.1:{free_port()}/wallet")
    assert proc.returncode == 2 and "unreachable" in proc.stderr


# -- real runs (Locust in subprocesses) ------------------------------------------------
def _croupier(cwd: Path, *argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "simulator", "load", *argv], check=False, cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def _load(base: str, cwd: Path, scenario: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = _croupier(cwd, scenario, "--wallet", f"{base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
                     "--report-dir", str(cwd / "report"), *extra)
    summary = cwd / "report" / "summary.json"
    assert summary.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, orjson.loads(summary.read_bytes())


def _rows(cwd: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(cwd / "report" / "locust_stats.csv", newline="", encoding="utf-8") as f:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalletProcess]:
    with WalletProcess(tmp_path_factory.mktemp("wallet") / "unused.db", "--memory") as proc:
        yield proc


@pytest.mark.slow
def test_a_short_headless_run_has_rows_per_operation_and_no_anomaly(wallet: WalletProcess, tmp_path: Path) -> None:
    proc, rep = _load(wallet.base, tmp_path, "smoke", "--users", "8", "--run-time", "8s",
                      "--fail-on", "p99(bet)>5s", "--junit", str(tmp_path / "junit.xml"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert rep["verdict"] == "pass" and not any(rep["anomalies"].values()) and rep["unsettled"] == 0
    # 8 users; a user whose player goes broke seats a fresh one (counted as a player_broke round)
    assert rep["players"] == 8 + rep["rounds"].get("player_broke", 0) and rep["thresholds"][0]["passed"]
    rows = _rows(tmp_path)
    for op in ("authenticate", "bet", "win", "balance"):
        assert int(rows[("wallet", op)]["Request Count"]) > 0, op
        assert int(rows[("wallet", op)]["Failure Count"]) == 0, op
    assert not [k for k in rows if k[0] == "ANOMALY"]
    assert int(rows[("wallet", "bet")]["Request Count"]) == rep["calls"]["bet"]
    assert (tmp_path / "report" / "locust.html").stat().st_size > 10_000
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    failing_kinds = [k for k in KINDS.values() if k.severity is not Severity.NOTE]
    assert not list(junit.iter("failure")) and len(list(junit.iter("testcase"))) == len(failing_kinds) + 1 + 1
    assert {r["rule"]: r for r in rep["coverage"]}["operations-effect"]["result"] == "pass"
    assert "verdict: PASS" in proc.stdout
    # The real target, not a placeholder, in Locust's report (and so its web UI, which shows the same host).
    html = (tmp_path / "report" / "locust.html").read_text(encoding="utf-8")
    assert f"{wallet.base}/wallet" in html and "croupier.invalid" not in html
    # Provisioning is not the protocol: no admin row, and the Aggregated row is the protocol calls alone.
    assert not [k for k in rows if k[0] == "admin" or k[1] in ("create player", "token", "player")]
    protocol = sum(int(r["Request Count"]) for k, r in rows.items() if k[0] == "wallet")
    assert int(rows[("", "Aggregated")]["Request Count"]) == protocol == sum(rep["calls"].values())
    prov = rep["provisioning"]
    assert prov["by_name"]["create player"]["count"] == prov["by_name"]["token"]["count"] == rep["players"]
    assert prov["calls"] == 2 * rep["players"] and prov["failures"] == 0 and prov["time_s"] > 0
    assert f"provisioning (admin API, kept out of the protocol statistics): {prov['calls']} calls" in proc.stdout
    # No percentile above the slowest call it summarises.
    for op, lat in [*rep["latency_ms"].items(), ("provisioning", prov["latency_ms"])]:
        assert lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], (op, lat)
    for row in rep["locust"]["rows"]:
        assert row["p50"] <= row["p99"] <= round(row["max_ms"], 3), row
    # Live progress in a pipe: a plain line every few seconds (here 8 s: at least two), no bar.
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("croupier load") and " calls " in ln]
    assert len(lines) >= 2 and all("users" in ln and "findings" in ln for ln in lines), proc.stderr
    assert "\r" not in proc.stderr


@pytest.mark.slow
def test_a_batching_dialect_sends_instant_rounds_as_batches(wallet: WalletProcess, tmp_path: Path) -> None:
    """As in ``croupier run``: an instant round's bet and closing win go in one ``play``, a ``batch`` row."""
    proc = _croupier(tmp_path, "smoke", "--dialect", "actions-hmac", "--wallet", f"{wallet.base}/wallet/actions-hmac",
                     "--secret", SECRET, "--admin-token", ADMIN_TOKEN, "--report-dir", str(tmp_path / "report"),
                     "--users", "4", "--run-time", "4s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rep = orjson.loads((tmp_path / "report" / "summary.json").read_bytes())
    assert rep["verdict"] == "pass" and not any(rep["anomalies"].values()) and rep["unsettled"] == 0
    rows = _rows(tmp_path)
    assert not [k for k in rows if k[0] == "ANOMALY"]
    batch = rows[("wallet", "batch")]
    assert int(batch["Request Count"]) == rep["calls"]["batch"] == rep["batched"] > 0  # as croupier run's JSON
    assert int(batch["Failure Count"]) == 0


@pytest.mark.slow
def test_two_workers_each_play_and_the_master_counts_the_calls_of_both(wallet: WalletProcess, tmp_path: Path) -> None:
    proc, rep = _load(wallet.base, tmp_path, "chaos", "--users", "6", "--run-time", "5s", "--workers", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    nodes = rep["nodes"]
    assert rep["workers"] == 2 and sorted(nodes) == ["w0", "w1"] and all(n["final"] for n in nodes.values())
    assert all(n["calls"].get("bet", 0) > 0 for n in nodes.values())
    rows = _rows(tmp_path)
    for op in ("bet", "win", "authenticate"):
        assert int(rows[("wallet", op)]["Request Count"]) == sum(n["calls"].get(op, 0) for n in nodes.values()), op
    assert rep["players"] == sum(n["players"] for n in nodes.values()) >= 6
    assert not any(rep["anomalies"].values()) and rep["unsettled"] == 0
    # closed rounds left each worker's ledger for its own evidence file beside the report, named in it
    files = {n: tmp_path / "report" / f"summary.evidence.{n}.jsonl" for n in ("w0", "w1")}
    assert rep["evidence"] == sorted(str(f) for f in files.values())
    assert all(nodes[n]["evidence"] == str(f) and f.stat().st_size > 0 for n, f in files.items())


@pytest.mark.slow
def test_a_wallet_that_double_applies_replays_fails_the_run(tmp_path: Path) -> None:
    port = free_port()
    broken = subprocess.Popen([sys.executable, "-m", "tests.broken_wallets", "forgets_tx_ids", "--port", str(port)],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(base, broken, "the broken wallet")
        proc, rep = _load(base, tmp_path, "duplicates", "--users", "5", "--run-time", "4s",
                          "--junit", str(tmp_path / "junit.xml"))
    finally:
        broken.terminate()
        broken.wait(10)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert rep["verdict"] == "fail" and rep["anomalies"]["double_apply"] > 0
    assert any(f["kind"] == "double_apply" and f["evidence"] for f in rep["findings"])
    # The ledger let go of closed rounds (to the evidence file the report names), and every finding still
    # cites its calls: the original exchange and the replay the wallet applied again.
    (path,) = rep["evidence"]
    assert path == str(tmp_path / "report" / "summary.evidence.local.jsonl")
    records = [orjson.loads(line) for line in Path(path).read_bytes().splitlines()]
    assert records and all(r["evidence"] and r["evidence"][0]["call"]["tx_id"] == r["tx_id"] for r in records)
    for f in (f for f in rep["findings"] if f["kind"] == "double_apply"):
        assert len(f["evidence"]) >= 2 and len({e["call"]["tx_id"] for e in f["evidence"][:2]}) == 1, f
    rows = _rows(tmp_path)
    assert int(rows[("ANOMALY", "double_apply")]["Failure Count"]) == rep["anomalies"]["double_apply"]
    # A finding is not a request: the Aggregated row counts the protocol's calls (and their failures) only.
    wallet_rows = [r for k, r in rows.items() if k[0] == "wallet"]
    aggregated = rows[("", "Aggregated")]
    assert int(aggregated["Request Count"]) == sum(int(r["Request Count"]) for r in wallet_rows)
    assert int(aggregated["Failure Count"]) == sum(int(r["Failure Count"]) for r in wallet_rows) > 0
    failed = {c.get("name") for c in ET.parse(tmp_path / "junit.xml").iter("testcase") if c.find("failure") is not None}
    assert "double_apply" in failed
    assert "verdict: FAIL" in proc.stdout


@pytest.mark.slow
def test_a_threshold_that_cannot_be_met_fails_the_run_and_is_named(wallet: WalletProcess, tmp_path: Path) -> None:
    proc, rep = _load(wallet.base, tmp_path, "smoke", "--users", "3", "--run-time", "3s",
                      "--fail-on", "rps<1000000", "--fail-on", "p99(bet)>10s")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert rep["reasons"] == ["1 of 2 thresholds"] and not any(rep["anomalies"].values())
    by = {r["threshold"]: r for r in rep["thresholds"]}
    assert not by["rps<1000000"]["passed"] and by["p99(bet)>10s"]["passed"]
    assert "rps<1000000" in proc.stdout and "FAIL" in proc.stdout


# -- croupier run --fail-on: the same language --------------------------------------------------
def test_run_statistics_read_as_the_run_summary_does() -> None:
    from simulator.judge.stats import RunStats

    stats = RunStats()
    for ms in (0.8, 1.1, 1.3, 2.0, 55.855):
        stats.record("bet", "ok", ms, 0)
    stats.record("bet", "unknown", 3000.0, 1)
    stats.record("win", "INSUFFICIENT_FUNDS", 1.0, 1)
    rows = {r["name"]: r for r in verdict.run_statistics(stats, 2.0)["entries"]}
    assert rows["bet"]["requests"] == 6 and rows["bet"]["failures"] == 1 and rows["win"]["failures"] == 0
    summary = stats.latency["bet"].summary()
    for pct in (50, 95, 99):
        assert verdict.row_percentile(rows["bet"], pct) == summary[f"p{pct}"], pct
    got = {r.threshold.text: r for r in verdict.evaluate(verdict.parse_all(
        ["error_rate(bet)>10%", "max(bet)>2s", "rps<3", "anomalies>0"]), verdict.run_statistics(stats, 2.0), {})}
    assert got["error_rate(bet)>10%"].measured == pytest.approx(1 / 6) and not got["error_rate(bet)>10%"].passed
    assert not got["max(bet)>2s"].passed and got["rps<3"].measured == 3.5 and got["anomalies>0"].passed


def test_run_fail_on_takes_a_severity_or_thresholds_as_load_does() -> None:
    p = argparse.ArgumentParser(exit_on_error=False)
    p.add_argument("--fail-on", dest="fail_on", default="contract", action=verdict.FailOnAction)
    args = p.parse_args(["--fail-on", "p99(bet)>250ms", "--fail-on", "note", "--fail-on", "error_rate>0.1%"])
    assert args.fail_on == "note" and args.thresholds == ["p99(bet)>250ms", "error_rate>0.1%"]
    assert p.parse_args([]).fail_on == "contract" and not getattr(p.parse_args([]), "thresholds", None)
    for bad in (["--fail-on", "p99(bet)>>1"], ["--fail-on", "money", "--fail-on", "note"]):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(bad)
        assert exc.value.code == 2


@pytest.mark.slow
def test_croupier_run_fails_on_a_threshold(wallet: WalletProcess, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "run", "smoke", "--wallet", f"{wallet.base}/wallet", "--secret", SECRET,
         "--admin-token", ADMIN_TOKEN, "--duration", "1", "--fail-on", "p99(bet)>0.001ms", "--fail-on", "rps<1",
         "--json", str(tmp_path / "run.json"), "--junit", str(tmp_path / "junit.xml")],
        check=False, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    rep = orjson.loads((tmp_path / "run.json").read_bytes())
    by = {r["threshold"]: r for r in rep["thresholds"]}
    assert not by["p99(bet)>0.001ms"]["passed"] and by["rps<1"]["passed"] and not any(rep["anomalies"].values())
    assert by["p99(bet)>0.001ms"]["measured"] == rep["latency_ms"]["bet"]["p99"]  # the summary's own figure
    assert rep["verdict"] == "fail" and rep["reasons"] == ["1 of 2 thresholds"]
    failed = {c.get("name") for c in ET.parse(tmp_path / "junit.xml").iter("testcase") if c.find("failure") is not None}
    assert failed == {"p99(bet)>0.001ms"}
    assert proc.stdout.strip().splitlines()[-1].startswith("FAIL")  # the verdict is still the last line
