"""``croupier certify``: the go-live checklist, judged from the phases' own reports.

1. The checklist alone (:mod:`simulator.certify.checklist`, pure): a protocol item fails only through a
   finding of one of its rules, and quotes it; a note (a choice PROTOCOL.md allows) never fails anything;
   an item nobody exercised is "not tested"; the SLA item reads the ramp second by second (Hypothesis).
2. The probes: an OpenAPI document that names every operation (the reference wallet's) passes, one that
   misses one fails; money calls over plain HTTP: a sandbox on loopback is not tested, a remote wallet
   fails, a TLS wallet whose plain address answers the protocol fails, one that redirects passes.
3. The command against real servers: the reference wallet passes every item it tests (exit 0) and the
   report reads in a browser; a planted double refund fails "Rollback support" with the rule's quote and
   the calls that show it (exit 1).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from simulator.certify import checklist, export, probes
from simulator.certify.checklist import Phase, Phases, Status
from simulator.certify.report import junit_xml, render, summary_lines
from simulator.protocol import dialects
from simulator.protocol.findings import RULES, Severity
from simulator.wallet import openapi
from tests.broken_wallets import serve_app
from tests.lenient_wallet import lenient_servers
from tests.planted_wallets import planted_servers
from tests.support import ADMIN_TOKEN, ROOT, SECRET, chromium_or_skip, until, valid_junit

CANONICAL = dialects.get("canonical", SECRET)


def _cov(rule: str, calls: int = 10) -> dict[str, Any]:
    return {"rule": rule, "title": RULES[rule].title, "calls": calls, "findings": {}, "result": "pass"}


def _finding(rule: str, kind: str = "double_apply", severity: str = "money") -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "rule": rule, "quote": RULES[rule].text, "section": RULES[rule].section,
            "message": f"{kind} seen", "evidence": [{"call": "rollback r2 of b1", "outcome": "Ok"}]}


def _run(coverage: list[dict[str, Any]], findings: list[dict[str, Any]] | None = None, **extra: Any) -> Phase:
    report = {"verdict": "pass", "coverage": coverage, "findings": findings or [], "players": 3, "unsettled": 0,
              "calls": {"bet": 10}, "results": {"bet:ok": 10}, **extra}
    return Phase("run chaos", "croupier run chaos --wallet W", report)


ALL_RULES = [r for r in RULES if not r.startswith("dialect-")]


def _items(phases: Phases, sla: float = 500.0) -> dict[str, checklist.Item]:
    return {i.id: i for i in checklist.assess(phases, sla_p99_ms=sla)}


# -- 1. the checklist -----------------------------------------------------------------------------------------
def test_a_finding_fails_the_items_of_its_rule_and_quotes_it() -> None:
    run = _run([_cov(r) for r in ALL_RULES], [_finding("idempotency-4-rollback-once", "rollback_applied_twice")])
    items = _items(Phases(scenarios=[run]))
    assert items["rollbacks"].status is Status.FAIL
    broken = items["rollbacks"].evidence[0]
    assert broken["quote"] == RULES["idempotency-4-rollback-once"].text and broken["evidence"]
    assert "croupier run chaos" in items["rollbacks"].commands[0]
    failed = {i for i, item in items.items() if item.status is Status.FAIL}
    assert failed == {"rollbacks"}, failed


def test_a_note_never_fails_an_item() -> None:
    """A choice PROTOCOL.md allows is a note: every item it touches still passes."""
    run = _run([_cov(r) for r in ALL_RULES], [_finding("choice-codes", "wallet_choice", "note")])
    items = _items(Phases(scenarios=[run]))
    assert not [i for i in items.values() if i.status is Status.FAIL]
    assert items["error-handling"].status is Status.PASS


def test_an_item_nobody_exercised_is_not_tested_and_says_why() -> None:
    run = _run([_cov("operations-effect")])
    items = _items(Phases(scenarios=[run]))
    assert items["rollbacks"].status is Status.NOT_TESTED and "no call exercised" in items["rollbacks"].why
    assert items["money"].status is Status.PASS
    assert items["documentation"].status is Status.NOT_TESTED and items["encryption"].status is Status.NOT_TESTED
    assert items["uptime"].status is Status.OPERATOR and items["sandbox"].status is Status.OPERATOR
    assert checklist.verdict(items.values()) == "pass"


def test_check_failures_count_as_the_run_findings_do() -> None:
    check = Phase("check", "croupier check --wallet W", {
        "coverage": [{"rule": "transport-signature", "exercised": 5, "result": "fail"}],
        "failures": [{"rule": "transport-signature", "severity": "contract", "kind": "accepted_invalid_call",
                      "message": "a bad signature was accepted", "protocol": RULES["transport-signature"].text,
                      "calls": [{"n": 1}]}]})
    items = _items(Phases(check=check))
    assert items["authentication"].status is Status.FAIL
    assert items["authentication"].evidence[0]["quote"] == RULES["transport-signature"].text


@given(st.lists(st.sampled_from(ALL_RULES), unique=True), st.sampled_from(ALL_RULES))
def test_exactly_the_items_naming_a_broken_rule_fail(exercised: list[str], broken: str) -> None:
    run = _run([_cov(r) for r in exercised], [_finding(broken)])
    items = _items(Phases(scenarios=[run]))
    naming = {i for i, (_, _, patterns) in checklist.RULE_ITEMS.items() if checklist._matches(broken, patterns)}
    failed = {i for i, item in items.items() if item.status is Status.FAIL and i in checklist.RULE_ITEMS}
    assert failed == naming


def _ramp(p99s: list[float | None], users: list[int]) -> Phase:
    n = len(p99s)
    series = {"t0": "2026-12-04T10:00:00Z", "seconds": list(range(n)), "settling_from": None,
              "calls": {"bet": [100 * (i + 1) for i in range(n)]},
              "latency_ms": {"bet": {"p50": [1.0] * n, "p99": p99s}}, "refusals": {}, "anomalies": {}, "faults": {}}
    return Phase("load", "croupier load steady --shape ramp", {
        "verdict": "pass", "findings": [], "calls": {"bet": 1000}, "series": series, "users_by_second": users,
        "peak_users": max(users), "coverage": [], "results": {}})


@given(st.lists(st.one_of(st.none(), st.floats(1, 2000)), min_size=1, max_size=60), st.floats(10, 1500))
def test_the_sla_breaks_at_the_first_of_three_seconds_in_a_row_over_it(p99s: list[float | None], sla: float) -> None:
    users = [i + 1 for i in range(len(p99s))]
    ramp = _ramp(p99s, users)
    item = _items(Phases(load=ramp), sla)["scalability"]
    measured = [(i, v) for i, v in enumerate(p99s) if v is not None]
    runs = [measured[j][0] for j in range(len(measured) - 2) if all(v > sla for _, v in measured[j:j + 3])]
    broke = runs[0] if runs else None
    within = [i for i, v in measured if v <= sla and (broke is None or i < broke)]
    cap = checklist.capacity(ramp.report or {}, sla)
    assert (cap["broke_at"] or {}).get("second") == broke
    if broke is not None or not within:
        assert item.status is Status.FAIL
    else:
        assert item.status is Status.PASS and f"{100 * (within[-1] + 1):,} calls/s" in item.why
    spikes = {p["second"] for p in cap["spikes"]}
    assert spikes == {i for i, v in measured if v > sla and (broke is None or i < broke)}


def test_a_long_ramps_wider_buckets_are_rates_and_in_a_row_spans_three_seconds() -> None:
    """Past an hour the series coarsens (buckets of 2, 4 … s): a bucket's calls are over its width, and two
    2-second buckets over the SLA already span the three seconds that make a break."""
    ramp = _ramp([100.0, 900.0, 100.0, 900.0, 900.0, 100.0], [1, 2, 3, 4, 5, 6])
    assert ramp.report is not None
    report = {**ramp.report, "series": {**ramp.report["series"], "width": 2, "seconds": [0, 2, 4, 6, 8, 10]}}
    cap = checklist.capacity(report, 500.0)
    assert [p["calls_per_s"] for p in cap["points"]] == [50, 100, 150, 200, 250, 300]
    assert cap["broke_at"]["second"] == 6 and cap["best"]["second"] == 4
    assert [p["second"] for p in cap["spikes"]] == [2]


def test_one_slow_second_is_said_not_judged() -> None:
    item = _items(Phases(load=_ramp([5.0, 900.0, 6.0, 7.0], [1, 2, 3, 4])))["scalability"]
    assert item.status is Status.PASS and "1 single second(s) over it" in item.why


def test_the_error_budget_fails_a_ramp_with_too_many_failed_requests() -> None:
    ramp = _ramp([5.0, 6.0], [1, 2])
    assert ramp.report is not None
    for failures, expected in ((9, Status.PASS), (11, Status.FAIL)):
        phase = Phase(ramp.name, ramp.command, {**ramp.report, "locust": {"requests": 1000, "failures": failures}})
        item = checklist.load_testing(phase, Severity.CONTRACT, error_budget_pct=1.0)
        assert item.status is expected, item
    assert "1.10 % of 1,000 requests failed" in item.why


def test_the_page_prints_to_pdf_with_chromium(tmp_path: Path) -> None:
    from simulator.commands.certifycmd import print_pdf

    chromium_or_skip()
    page = tmp_path / "p.html"
    page.write_text("<!doctype html><html><body><h1>certify</h1></body></html>")
    assert print_pdf(page, tmp_path / "p.pdf") is None
    assert (tmp_path / "p.pdf").read_bytes()[:4] == b"%PDF"


def test_the_report_has_a_summary_junit_and_a_page_that_needs_no_network() -> None:
    run = _run([_cov(r) for r in ALL_RULES], [_finding("idempotency-4-rollback-once")])
    phases = Phases(scenarios=[run], load=_ramp([5.0, 9.0, 700.0], [1, 2, 3]))
    items = checklist.assess(phases, sla_p99_ms=500.0)
    report = {"verdict": checklist.verdict(items), "wallet": "http://w", "dialect": "canonical",
              "croupier_version": "0", "started": "2026-12-04T10:00:00Z", "command": "croupier certify",
              "elapsed_s": 12.0, "budget_s": 600.0, "sla": {"p99_ms": 500.0}, "counts": checklist.counts(items),
              "items": [i.to_json() for i in items], "phases": [{"name": "run chaos", "command": "c", "elapsed_s": 1}],
              "severities": {"run chaos": {"money": 1, "contract": 0, "note": 0}},
              "capacity": checklist.capacity(phases.load.report or {}, 500.0),  # type: ignore[union-attr]
              "load_series": (phases.load.report or {})["series"]}  # type: ignore[union-attr]
    lines = summary_lines(report)
    assert lines[0].startswith("FAIL certification of http://w") and any("Rollback support" in x for x in lines)
    assert any("200 calls/s at 2 users" in x for x in lines)
    root = valid_junit(junit_xml(report))
    assert sum(int(ts.get("failures", 0)) for ts in root) == report["counts"]["fail"]
    page = render(report)
    assert "<script src" not in page and 'id="item-rollbacks"' in page and "Items failed" in page
    assert "@media print" in page


# -- the export ----------------------------------------------------------------------------------------------------
def _tx(tx_id: str, op: str = "bet", amount: int | None = 100, state: str = "applied", player: str = "p1") -> dict[str, Any]:
    return {"tx_id": tx_id, "player_id": player, "op": op, "amount": amount, "currency": "EUR", "state": state}


def test_an_export_is_compared_transaction_by_transaction() -> None:
    sent = [_tx("a"), _tx("b", "win", 50), _tx("c", state="refused"), _tx("d", state="doubt"), _tx("e"),
            _tx("f", state="tombstoned")]
    rows = [{"tx_id": "a", "player_id": "p1", "op": "bet", "amount": 100, "currency": "EUR"},
            {"tx_id": "b", "player_id": "p1", "op": "win", "amount": 51, "currency": "EUR"},
            {"tx_id": "c", "player_id": "p1", "op": "bet", "amount": 100, "currency": "EUR"},
            {"tx_id": "d", "player_id": "p1", "op": "bet", "amount": 100, "currency": "EUR"},
            {"tx_id": "f", "player_id": "p1", "op": "bet", "amount": 100, "currency": "EUR", "rolled_back": False},
            {"tx_id": "zz", "player_id": "p1", "op": "win", "amount": 5, "currency": "EUR"},
            {"tx_id": "other", "player_id": "someone-else", "op": "bet", "amount": 5, "currency": "EUR"}]
    found = export.compare(sent, rows, "x")
    kinds = sorted(p["problem"] for p in found["problems"])
    assert kinds == ["different", "missing", "refused but recorded", "tombstoned bet recorded", "unexpected"], kinds
    refused = next(p for p in found["problems"] if p["problem"] == "refused but recorded")
    assert refused["quote"] == RULES["idempotency-3-rejected-not-recorded"].text
    assert found["matched"] == 1 and found["missing"] == 1 and found["unexpected"] == 1
    item = checklist.reporting(Phase("export", "c", found))
    assert item.status is Status.FAIL and "differ" in item.why


@given(st.lists(st.tuples(st.sampled_from(["bet", "win", "rollback"]), st.integers(0, 10**15),
                          st.sampled_from(["applied", "refused", "doubt", "rolled_back"])), max_size=40),
       st.sampled_from(["jsonl", "csv"]))
def test_an_export_of_exactly_what_was_accepted_agrees(txs: list[tuple[str, int, str]], fmt: str) -> None:
    sent = [_tx(f"t{i}", op, amount, state) for i, (op, amount, state) in enumerate(txs)]
    kept = [{"tx_id": t["tx_id"], "player_id": t["player_id"], "op": t["op"], "amount": t["amount"],
             "currency": "EUR", "rolled_back": t["state"] == "rolled_back"}
            for t in sent if t["state"] in ("applied", "rolled_back")]
    if fmt == "jsonl":
        data = b"".join(orjson.dumps(r) + b"\n" for r in kept)
    else:
        data = ("tx_id,player_id,op,amount,currency,rolled_back\r\n" + "".join(
            f"{r['tx_id']},{r['player_id']},{r['op']},{r['amount']},EUR,{r['rolled_back']}\r\n" for r in kept)).encode()
    found = export.compare(sent, export.parse(data), fmt)
    assert found["problems"] == [] and found["matched"] == sum(1 for t in sent if t["state"] == "applied")


def test_an_unreadable_export_is_said_so() -> None:
    with pytest.raises(export.ExportError):
        export.parse(b"{not json")
    with pytest.raises(export.ExportError):
        export.parse(b"a,b\n1,2\n")


# -- 2. the probes ------------------------------------------------------------------------------------------------
def test_the_reference_wallets_document_names_every_operation_and_a_short_one_fails() -> None:
    doc = orjson.dumps(openapi.document())
    found = probes.judge_document(doc, "openapi.json", CANONICAL)
    assert found["missing"] == [] and set(found["operations"]) == {"authenticate", "balance", "bet", "win", "rollback"}
    short = openapi.document() | {"paths": {k: v for k, v in openapi.document()["paths"].items()
                                           if not k.endswith("/rollback")}}
    assert probes.judge_document(orjson.dumps(short), "x", CANONICAL)["missing"] == ["rollback"]
    assert "error" in probes.judge_document(b"<html>not a spec</html>", "x", CANONICAL)
    yaml_doc = b"openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n" + b"".join(
        f"  /w/{op}: {{}}\n".encode() for op in ("authenticate", "balance", "bet", "win", "rollback"))
    assert probes.judge_document(yaml_doc, "x.yaml", CANONICAL)["missing"] == []


async def test_plain_http_on_loopback_is_not_tested_and_elsewhere_fails() -> None:
    async with aiohttp.ClientSession() as s:
        local = await probes.encryption("http://127.0.0.1:8080/wallet", None, CANONICAL, s)
        remote = await probes.encryption("http://wallet.example/wallet", None, CANONICAL, s)
    assert local["status"] == "not tested" and remote["status"] == "fail"


async def _plain(handler: Any) -> Any:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return serve_app(app)


async def test_a_plain_address_that_speaks_the_protocol_fails_and_one_that_redirects_passes() -> None:
    async def speaks(request: web.Request) -> web.Response:
        return web.json_response({"status": "error", "code": "PLAYER_NOT_FOUND", "message": "no"}, status=404)

    async def redirects(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(f"https://wallet.example{request.path}")

    async def refuses(request: web.Request) -> web.Response:
        return web.Response(status=403, text="HTTPS required")

    seen = {}
    for name, handler in (("speaks", speaks), ("redirects", redirects), ("refuses", refuses)):
        async with await _plain(handler) as base, aiohttp.ClientSession() as s:
            seen[name] = await probes.encryption("https://wallet.example/wallet", f"{base}/wallet", CANONICAL, s)
    assert seen["speaks"]["status"] == "fail" and "answers the protocol" in seen["speaks"]["why"]
    assert seen["redirects"]["status"] == "pass" and seen["refuses"]["status"] == "pass"


# -- 3. the command -------------------------------------------------------------------------------------------------
def _certify(base: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    """``croupier certify`` started (not awaited): the fixture runs its certifications side by side, as most of
    a certification's time is its phases' fixed durations (a load ramp, timed scenarios), not CPU."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    for name in ("CROUPIER_SECRET", "CROUPIER_ADMIN_TOKEN"):
        env.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", "simulator", "certify", "--wallet", f"{base}/wallet", "--secret",
                             SECRET, "--admin-token", ADMIN_TOKEN, "--admin-url", base, "--out", str(out), *extra],
                            cwd=out.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(proc: subprocess.Popen[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="session")
def certified(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with planted_servers(["reference", "second_rollback_refunds", "crashes_on_quotes"]) as bases, \
            lenient_servers(["lenient"]) as lenient:
        bases = {**bases, **lenient}
        started: dict[str, tuple[subprocess.Popen[str], Path]] = {}
        for name, phases in (("reference", "all"), ("second_rollback_refunds", "docs,check,scenarios,encryption"),
                             ("crashes_on_quotes", "security"), ("lenient", "check,scenarios,security")):
            folder = tmp_path_factory.mktemp(name) / "report"
            started[name] = (_certify(bases[name], folder, "--budget", "30", "--users", "8", "--phases", phases,
                                      "--export", f"{bases[name]}/admin/transactions?format=jsonl",
                                      "--json", str(folder.parent / "c.json"), "--junit", str(folder.parent / "c.xml"),
                                      "--html", str(folder.parent / "c.html")), folder)
        for name, (popen, folder) in started.items():
            proc = _finished(popen)
            out[name] = {"proc": proc, "folder": folder, "report": orjson.loads((folder.parent / "c.json").read_bytes())
                         if (folder.parent / "c.json").exists() else None}
    return out


@pytest.mark.slow
def test_the_reference_wallet_passes_every_item_it_tests(certified: dict[str, Any]) -> None:
    got = certified["reference"]
    proc, report = got["proc"], got["report"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    items = {i["id"]: i for i in report["items"]}
    assert not [i for i in items.values() if i["status"] == "fail"], [i for i in items.values() if i["status"] == "fail"]
    for tested in ("documentation", "authentication", "rollbacks", "idempotency", "money", "reconciliation",
                   "error-handling", "load-testing", "scalability", "reporting", "access-control", "fraud-prevention"):
        assert items[tested]["status"] == "pass", items[tested]
    assert items["encryption"]["status"] == "not tested" and "loopback" in items["encryption"]["why"]
    assert "PASS certification of" in proc.stdout
    assert {p["name"] for p in report["phases"]} >= {"docs", "check", "run chaos", "run timeouts", "load"}
    for p in report["phases"]:
        assert p["command"].startswith("croupier ") and "--quiet" not in p["command"]
    assert (got["folder"] / "report.html").exists() and (got["folder"] / "check.json").exists()
    assert report["capacity"]["points"] and report["elapsed_s"] < 120
    valid_junit((got["folder"].parent / "c.xml").read_bytes())


@pytest.mark.slow
def test_a_wallet_that_chose_differently_passes_too(certified: dict[str, Any]) -> None:
    """The lenient wallet (tests/lenient_wallet.py, written apart from the reference one) makes the other
    choice wherever PROTOCOL.md allows one: every item it is tested on passes, its export included."""
    got = certified["lenient"]
    proc, report = got["proc"], got["report"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    items = {i["id"]: i for i in report["items"]}
    assert not [i for i in items.values() if i["status"] == "fail"], [i for i in items.values() if i["status"] == "fail"]
    for tested in ("authentication", "rollbacks", "idempotency", "money", "reconciliation", "error-handling",
                   "reporting", "access-control", "fraud-prevention"):
        assert items[tested]["status"] == "pass", items[tested]


@pytest.mark.slow
def test_a_planted_double_refund_fails_rollback_support_with_its_evidence(certified: dict[str, Any]) -> None:
    got = certified["second_rollback_refunds"]
    proc, report = got["proc"], got["report"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    items = {i["id"]: i for i in report["items"]}
    rollback = items["rollbacks"]
    assert rollback["status"] == "fail"
    quotes = {e.get("quote") for e in rollback["evidence"]}
    assert RULES["idempotency-4-rollback-once"].text in quotes, rollback["evidence"][:2]
    assert all(e.get("evidence") for e in rollback["evidence"])
    for fine in ("authentication", "documentation", "error-handling"):
        assert items[fine]["status"] != "fail", items[fine]
    assert items["load-testing"]["status"] == "not tested"
    assert "FAIL  Rollback support" in " ".join(proc.stdout.split()) or "fail  Rollback support" in proc.stdout


@pytest.mark.slow
def test_a_wallet_that_breaks_on_quotes_fails_fraud_prevention_and_only_that(certified: dict[str, Any]) -> None:
    got = certified["crashes_on_quotes"]
    proc, report = got["proc"], got["report"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    items = {i["id"]: i for i in report["items"]}
    assert items["fraud-prevention"]["status"] == "fail" and items["access-control"]["status"] == "pass"
    failed = items["fraud-prevention"]["evidence"]
    assert failed and all(a["group"] == "ids" and a.get("quote") for a in failed), failed[:2]
    assert [i for i in items.values() if i["status"] == "fail"] == [items["fraud-prevention"]]
    assert (got["folder"] / "security.json").exists()


@pytest.mark.slow
def test_an_interrupted_certification_reports_what_it_did_and_exits_130(tmp_path: Path) -> None:
    with planted_servers(["reference"]) as bases:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = tmp_path / "report"
        proc = subprocess.Popen([sys.executable, "-m", "simulator", "certify", "--wallet", f"{bases['reference']}/wallet",
                                 "--secret", SECRET, "--admin-token", ADMIN_TOKEN, "--budget", "60", "--out", str(out)],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        until("the report folder", out.exists, proc, timeout=60)
        time.sleep(5)  # into the check phase
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout[-2000:] + stderr[-2000:]
    report = orjson.loads((out / "certify.json").read_bytes())
    assert report["interrupted"]["signal"] == "SIGINT" and "INTERRUPTED" in stdout
    items = {i["id"]: i for i in report["items"]}
    assert items["load-testing"]["status"] == "not tested" and "interrupted" in items["load-testing"]["why"]
    assert (out / "report.html").exists() and "Interrupted" in (out / "report.html").read_text()


@pytest.mark.slow
async def test_the_certification_page_renders_in_a_browser(certified: dict[str, Any]) -> None:
    chromium = chromium_or_skip()
    from playwright.async_api import async_playwright

    page_path = certified["reference"]["folder"] / "report.html"
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True,
                                           args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(page_path.as_uri())
            await page.wait_for_function("document.documentElement.getAttribute('data-certify-charts') !== null")
            verdict = await page.locator("#verdict").inner_text()
            made = await page.evaluate("Number(document.documentElement.getAttribute('data-certify-charts'))")
            capacity = " ".join(await page.locator("#chart-capacity svg text").all_text_contents())
            rows = await page.locator("table.checklist tr").count()
            pdf = await page.pdf()
        finally:
            await browser.close()
    assert errors == [] and verdict == "PASS" and made >= 1
    assert "users" in capacity and "SLA p99" in capacity
    assert rows >= 17 and pdf[:4] == b"%PDF"
