"""The reports of ``croupier run`` and ``croupier load`` as a reader gets them.

A real run (``croupier run chaos`` against ``croupier wallet serve``) and a real short load test
(``croupier load smoke``) write their JSON, JUnit and HTML; the HTML is opened in Debian's chromium
through Playwright (never a browser Playwright downloads): the charts must render with labelled
axes, time labels and a legend entry per operation, without a console error and without a single
request leaving the file (the charting library is inlined).  The JUnit files are validated against
a JUnit schema (tests/data/junit.xsd) and their header counts against their test cases.  Evidence
of findings (a planted bug) is shown grouped by kind, as JSON with the HTTP status, with the count
of what was left out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator.report import series
from simulator.report.html import render
from simulator.report.junit import junit_xml
from simulator.run.runner import result_json
from tests.planted_wallets import make_planted_app
from tests.support import ADMIN_TOKEN, ROOT, SECRET, WalletProcess, chromium_or_skip, valid_junit
from tests.test_load import _croupier as load_cli
from tests.test_run_verdicts import _late, _run_at
from tests.test_runner import croupier, secrets_args

MAX_PAGE_BYTES = 1_500_000


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalletProcess]:
    with WalletProcess(tmp_path_factory.mktemp("wallet") / "unused.db", "--memory") as proc:
        yield proc


@pytest.fixture(scope="module")
def run_reports(wallet: WalletProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``croupier run chaos`` for 3 s: every fault croupier knows, so every chart has something to draw."""
    out = tmp_path_factory.mktemp("run")
    paths = {"json": out / "run.json", "xml": out / "run.xml", "html": out / "run.html"}
    proc = croupier("chaos", *secrets_args(wallet.base), "--duration", "3", "--player-count", "12",
                    "--json", str(paths["json"]), "--junit", str(paths["xml"]), "--html", str(paths["html"]), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return paths


@pytest.fixture(scope="module")
def load_reports(wallet: WalletProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``croupier load smoke`` for 5 s: report.html in the report folder and at --html."""
    out = tmp_path_factory.mktemp("load")
    proc = load_cli(out, "smoke", "--wallet", f"{wallet.base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
                    "--users", "6", "--run-time", "5s", "--report-dir", str(out / "report"),
                    "--junit", str(out / "load.xml"), "--html", str(out / "load.html"), "--quiet")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "report" / "report.html").read_bytes() == (out / "load.html").read_bytes()
    return {"json": out / "report" / "summary.json", "xml": out / "load.xml", "html": out / "load.html"}


# -- the JSON's series -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("which", ["run", "load"])
def test_the_json_carries_a_series_that_adds_up_to_the_report(which: str, request: pytest.FixtureRequest) -> None:
    paths = request.getfixturevalue(f"{which}_reports")
    report = orjson.loads(paths["json"].read_bytes())
    s = report["series"]
    assert series.valid(s) and list(s) == list(series.KEYS)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["t0"])
    assert series.totals(s, "calls") == {op: n for op, n in report["calls"].items() if n}
    assert s["settling_from"] is not None and 0 < s["settling_from"] <= s["seconds"][-1] + 1
    if which == "run":  # the faults injected and the refusals, second by second, add up too
        assert series.totals(s, "faults") == report["faults"] and s["faults"]
        refused: dict[str, int] = {}
        for key, n in report["results"].items():
            code = key.split(":", 1)[1]
            if code not in ("ok", "unknown"):
                refused[code] = refused.get(code, 0) + n
        assert series.totals(s, "refusals") == refused and refused
        assert report["dialect"] == "canonical" and report["croupier_version"]


# -- JUnit ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("which", ["run", "load"])
def test_junit_files_are_valid_and_their_counts_are_their_cases(which: str, request: pytest.FixtureRequest) -> None:
    paths = request.getfixturevalue(f"{which}_reports")
    root = valid_junit(paths["xml"].read_bytes())
    assert int(root.get("tests", 0)) > 10 and root.get("failures") == "0"


def test_junit_with_failures_an_error_and_an_interruption_is_valid_and_counted() -> None:
    report = _minimal_report()
    report.update(anomalies={"double_apply": 3, "wallet_choice": 2}, verdict="fail", error="nobody seated",
                  interrupted={"signal": "SIGINT", "after_s": 2.5, "settled": False, "unsettled": 4,
                               "note": "stopped after 2.5 s; 4 calls left unsettled"})
    root = valid_junit(junit_xml(report))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("errors") == "2"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["interrupted"] == "SIGINT"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "run completed")
    err = case.find("error")
    assert err is not None and "4 calls left unsettled" in str(err.get("message"))


def _minimal_report() -> dict[str, Any]:
    return {"verdict": "pass", "error": None, "fail_on": "contract", "scenario": "smoke", "wallet": "http://w",
            "seed": 1, "run_id": "r", "elapsed_s": 1.0, "players": 1, "calls": {}, "results": {}, "rounds": {},
            "faults": {}, "latency_ms": {}, "anomalies": {}, "findings": [], "coverage": [], "unsettled": 0,
            "skipped": [], "errors": []}


# -- the page, without a browser ---------------------------------------------------------------------------
def test_evidence_is_grouped_by_kind_as_json_with_status_and_what_was_left_out() -> None:
    import asyncio

    result = asyncio.run(_run_at(make_planted_app("forgets_old_tx_ids"), _late()))
    report = result_json(result)
    assert report["anomalies"]["double_apply"] > 0
    page = render(report)
    assert 'id="kind-double_apply"' in page
    for kind, count in ((k, n) for k, n in report["anomalies"].items() if n):
        head = page.split(f'id="kind-{kind}"', 1)[1].split("</section>", 1)[0]
        shown = head.count("<details>")
        kept = sum(1 for f in report["findings"] if f["kind"] == kind)
        assert shown == min(10, kept), kind
        assert (f"showing {shown} of {count:,}" if count > shown else f"all {count:,} shown") in head, kind
    assert report["anomalies"]["replay_contradicts_original"] > 10  # so the count of what was left out is said
    section = page.split('id="kind-double_apply"', 1)[1].split("</section>", 1)[0]
    assert "HTTP 200" in section and "&quot;tx_id&quot;:" in section  # the call as JSON
    assert "&quot;balance&quot;:" in section  # the wallet's answer as JSON
    shown_text = page.split("<script", 1)[0]  # the page's own text, not the charting library
    for repr_ in ("WalletCall(", "Rejected(", "Ok(", "ErrorCode."):
        assert repr_ not in shown_text


def test_an_interrupted_run_has_a_banner_and_a_page_is_small() -> None:
    report = _minimal_report() | {"interrupted": {"signal": "SIGTERM", "after_s": 4.0, "settled": True, "unsettled": 0,
                                                  "note": "stopped after 4 s; everything settled"}}
    page = render(report)
    assert 'id="interrupted"' in page and "INTERRUPTED" in page and "SIGTERM" in page
    assert "everything settled" in page and len(page.encode()) < MAX_PAGE_BYTES
    assert "<script src" not in page and "http://" not in page.split("<script>", 1)[0].replace("http://w", "")


# -- in a browser ------------------------------------------------------------------------------------------
async def _open(path: Path) -> dict[str, Any]:
    """Open the page offline and read what a reader sees: every chart's text, the console, the requests."""
    chromium = chromium_or_skip()
    from playwright.async_api import Route, async_playwright
    errors: list[str] = []
    outside: list[str] = []

    async def only_the_file(route: Route) -> None:
        if route.request.url.startswith("file://"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True,
                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 1000})
            await context.route("**/*", only_the_file)
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(path.as_uri())
            await page.wait_for_function("document.documentElement.getAttribute('data-charts') !== null")
            charts = {}
            for cid in ("chart-calls", "chart-latency", "chart-refusals", "chart-faults", "chart-anomalies"):
                el = page.locator(f"#{cid}")
                charts[cid] = {"empty": await el.get_attribute("data-empty") == "true",
                               "svg": await el.locator("svg").count(),
                               "text": await el.locator("svg text").all_text_contents()}
            env = await page.locator("#environment").inner_text()
            made = await page.evaluate("Number(document.documentElement.getAttribute('data-charts'))")
        finally:
            await browser.close()
    return {"charts": charts, "errors": errors, "outside": outside, "env": env, "made": made}


def _assert_charts(seen: dict[str, Any], report: dict[str, Any]) -> None:
    assert seen["errors"] == [] and seen["outside"] == []
    charts = seen["charts"]
    drawn = [c for c in charts.values() if not c["empty"]]
    assert seen["made"] == len(drawn) >= 2
    for cid, c in charts.items():
        assert c["svg"] == (0 if c["empty"] else 1), cid
    s = report["series"]
    calls, latency = " ".join(charts["chart-calls"]["text"]), charts["chart-latency"]["text"]
    assert "calls per second" in calls and "time since start (s)" in calls and s["t0"].replace("T", " ")[:16] in calls
    assert "latency (ms)" in " ".join(latency) and re.search(r"\b\d+ ms\b", " ".join(latency))
    assert re.search(r"\b[1-9]\d* s\b", calls), calls  # time ticks in seconds
    assert "settlement" in calls  # the shaded band is labelled
    for op in (op for op, n in report["calls"].items() if n):
        assert op in charts["chart-calls"]["text"], op  # one legend entry per operation
        assert f"{op} p50" in latency and f"{op} p99" in latency, op
    for code in s["refusals"]:
        assert code in charts["chart-refusals"]["text"]
    for kind in s["faults"]:
        assert kind in charts["chart-faults"]["text"]
    assert report["run_id"] in seen["env"] and str(report["seed"]) in seen["env"] and "UTC" in seen["env"]


@pytest.mark.slow
async def test_a_runs_html_renders_its_charts_offline(run_reports: dict[str, Path]) -> None:
    assert run_reports["html"].stat().st_size < MAX_PAGE_BYTES
    report = orjson.loads(run_reports["json"].read_bytes())
    seen = await _open(run_reports["html"])
    _assert_charts(seen, report)
    assert not seen["charts"]["chart-faults"]["empty"] and not seen["charts"]["chart-refusals"]["empty"]
    assert "canonical" in seen["env"] and "croupier run" in seen["env"]


@pytest.mark.slow
async def test_a_load_tests_html_renders_its_charts_offline(load_reports: dict[str, Path]) -> None:
    assert load_reports["html"].stat().st_size < MAX_PAGE_BYTES
    report = orjson.loads(load_reports["json"].read_bytes())
    seen = await _open(load_reports["html"])
    _assert_charts(seen, report)
    assert "croupier load" in seen["env"]


@pytest.mark.slow
def test_demo_writes_the_same_report_with_the_wallets_ggr(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "simulator", "demo", "--duration", "2", "--html", str(tmp_path / "d.html"),
                           "--json", str(tmp_path / "d.json")], check=False, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    page = (tmp_path / "d.html").read_text(encoding="utf-8")
    report = orjson.loads((tmp_path / "d.json").read_bytes())
    assert series.valid(report["series"]) and series.totals(report["series"], "calls")["bet"] == report["calls"]["bet"]
    assert "GGR (the wallet's own report)" in page and ">EUR<" in page and 'id="chart-faults"' in page
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("PASS") and "GGR" not in lines[-1]  # the verdict is the last line, after the GGR
    assert any(ln.startswith("reference wallet on http") and ln.endswith("playing chaos for 2 s") for ln in lines)


async def test_an_hour_long_run_stays_small_and_draws(tmp_path: Path) -> None:
    from simulator.judge.stats import RunStats

    stats = RunStats(t0=1_796_000_000.0, settling_from=3590)
    for second in range(3600):
        for op in ("authenticate", "bet", "win", "rollback", "balance"):
            stats.record(op, "ok", 2.0 + second % 7, second)
        stats.record("bet", "INSUFFICIENT_FUNDS", 3.0, second)
        stats.fault("timeout", second=second)
        stats.anomaly("wallet_choice", second=second)
    report = _minimal_report() | {"series": series.build(stats), "calls": dict(stats.calls), "run_id": "hour",
                                  "seed": 7, "elapsed_s": 3600.0}
    path = tmp_path / "hour.html"
    path.write_text(render(report), encoding="utf-8")
    assert path.stat().st_size < MAX_PAGE_BYTES
    assert "3,600 seconds are drawn as 900 points of 4 s each" in path.read_text(encoding="utf-8")
    seen = await _open(path)
    _assert_charts(seen, report)
    assert "3,600 s" in " ".join(seen["charts"]["chart-calls"]["text"]) or \
        "3600 s" in " ".join(seen["charts"]["chart-calls"]["text"])
