"""The ``croupier load`` command: Locust (gevent) as a subprocess, croupier's verdict on top.

``croupier load SCENARIO --wallet URL --users N --spawn-rate R --run-time T`` runs
``python -m locust -f loadtests/locustfile.py`` headless, with Locust's CSV and HTML reports
in ``--report-dir``; ``--workers N`` runs Locust's distributed mode on this machine (one
master, N worker processes on 127.0.0.1); ``--web`` opens Locust's UI instead of running
headless.  Locust runs in child processes only, so gevent never patches this process.  At
the end the master writes croupier's report (anomalies with evidence, thresholds), which is
printed here and, with ``--junit``, written as one test case per threshold and per kind of finding.

Findings have the severities of ``croupier run`` (money, contract, note); ``--fail-on
note|contract|money`` says which fail the run (default contract: money and contract findings),
and any other ``--fail-on`` is a threshold.

Exit codes: 0 pass; 1 a failing finding, calls left in doubt or a threshold failed; 2 bad usage, an
unreachable wallet, a run that tested nothing (no player seated, no call judged: the verdict
``error``, with the likely cause), or Locust did not finish.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from rich.console import Console
from rich.table import Table

from .findings import Severity
from .report import model
from .report.html import render
from .report.junit import junit_xml, recount
from .report.summary import print_summary
from .scenario import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
LOADTESTS = ROOT / "loadtests"
LOCUSTFILE = LOADTESTS / "locustfile.py"
SHAPES = ("ramp", "step", "spike", "soak", "evening-peak")
SEVERITIES = tuple(s.value for s in Severity)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def seconds(text: str) -> int:
    """Locust's duration syntax (``90``, ``90s``, ``5m``, ``1h30m``) in whole seconds, at least 1."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    total = round(h * 3600 + mins * 60 + s)
    if total < 1:
        raise argparse.ArgumentTypeError("must be at least 1s")
    return total


def add_load_parser(sub: Any) -> None:
    p = sub.add_parser(
        "load", help="measure concurrency and capacity with Locust: players as Locust users, shapes, thresholds",
        description="Run a scenario's players as Locust users against a wallet (or through the mock provider), "
                    "headless by default, with Locust's CSV/HTML reports and croupier's anomaly summary. "
                    "See loadtests/README.md for runs across machines and on Kubernetes.")
    p.add_argument("scenario", help="a built-in scenario name (see `croupier scenarios`) or a .toml file")
    p.add_argument("--wallet", default="http://127.0.0.1:8080/wallet", help="the wallet's protocol base URL")
    p.add_argument("--provider", help="play through the mock provider at this base URL (player → provider → wallet)")
    p.add_argument("--provider-key", help="the provider's operator API key (default: env CROUPIER_PROVIDER_KEY, "
                                          "else the development key)")
    p.add_argument("--users", type=_positive_int,
                   help="Locust users (default: the scenario's [load] users, else its players + live tables); "
                        "the peak for a --shape")
    p.add_argument("--spawn-rate", type=_positive_float, help="users started per second (default: all within ~1 s)")
    p.add_argument("--run-time", type=seconds, help="e.g. 30s, 5m, 1h30m (default: the scenario's duration)")
    p.add_argument("--workers", type=int, default=0,
                   help="Locust's distributed mode on this machine: one master and N worker processes "
                        "(default: 0, one process)")
    p.add_argument("--expect-workers", type=int, default=0, metavar="N",
                   help="also wait for N workers started on other machines (see --master-bind-host; default: 0)")
    p.add_argument("--master-bind-host", default="127.0.0.1",
                   help="where the master listens for workers (0.0.0.0 for workers on other machines)")
    p.add_argument("--master-bind-port", type=int, default=0,
                   help="where the master listens for workers (default: 0, a free port; 5557 is Locust's usual)")
    p.add_argument("--web", action="store_true", help="open Locust's web UI instead of running headless")
    p.add_argument("--web-host", default="127.0.0.1", help="where Locust's web UI listens, with --web")
    p.add_argument("--web-port", type=int, default=8089, help="the port of Locust's web UI, with --web")
    p.add_argument("--shape", choices=SHAPES, help="a load shape (default: the scenario's [load] shape, else constant)")
    p.add_argument("--fail-on", action="append", default=[], metavar="THRESHOLD|SEVERITY",
                   help="fail the run when this holds, e.g. 'p99(bet)>250ms' or 'error_rate>0.1%%' (repeatable; "
                        "added to the scenario's [load] fail_on); or the least severe finding that fails the "
                        "run: money, contract (default: money and contract findings fail) or note")
    p.add_argument("--junit", dest="junit_path", metavar="PATH",
                   help="JUnit XML: one case per threshold and per kind of finding (notes as properties)")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="croupier's report as JSON (also in the report folder)")
    p.add_argument("--html", dest="html_path", metavar="PATH",
                   help="croupier's HTML report (charts over time, findings with evidence); also report.html "
                        "in the report folder")
    p.add_argument("--report-dir", default="load-report",
                   help="Locust's CSV and HTML reports and croupier's summary.json (default: %(default)s)")
    p.add_argument("--dialect", default="canonical",
                   help="the wallet's wire dialect: a built-in name (`croupier dialect list`) or a .toml file")
    p.add_argument("--secret", help="shared HMAC secret (default: env CROUPIER_SECRET, else the development secret)")
    p.add_argument("--admin-url", help="reference-wallet admin API to provision players (default: the wallet's host)")
    p.add_argument("--admin-token", help="admin bearer token (default: env CROUPIER_ADMIN_TOKEN, else the "
                                         "development token)")
    p.add_argument("--seed", type=int, default=1, help="one seed reproduces every player's sequence of rounds")
    p.add_argument("--run-id", help="prefix of player ids (default: random, so runs never collide)")
    p.add_argument("--locust-arg", action="append", default=[], metavar="ARG",
                   help="pass ARG to the Locust master as is, e.g. --locust-arg=--csv-full-history")
    p.add_argument("--quiet", action="store_true", help="Locust's output to the report folder; no summary")
    p.add_argument("--verbose", action="store_true", help="Locust's INFO log lines (default: warnings only)")


def _import_loadtests() -> Any:
    if not LOCUSTFILE.is_file():
        raise ScenarioError(f"croupier load needs the repository's loadtests/ folder (looked in {LOADTESTS})")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from loadtests import settings, verdict  # pure: neither gevent nor Locust

    return settings, verdict


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reachable(url: str, what: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--{what} must be an http(s) URL, got {url!r}"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=3):
            return None
    except OSError as exc:
        return (f"{what} unreachable at {parts.hostname}:{port}: {exc.strerror or exc}: "
                f"is the {what} running, and is --{what} right?")


def load_command(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    severities = [t for t in args.fail_on if t.strip() in SEVERITIES]
    if len(set(severities)) > 1:
        console.print(f"[red]croupier:[/] --fail-on names more than one severity: {', '.join(severities)}")
        return 2
    severity = severities[0].strip() if severities else "contract"
    args.fail_on = [t for t in args.fail_on if t.strip() not in SEVERITIES]
    try:
        cfg, verdict = _import_loadtests()
        scenario, section = cfg.load_scenario(args.scenario)
        verdict.parse_all(args.fail_on)
    except (ScenarioError, ValueError) as exc:
        console.print(f"[red]croupier:[/] {exc}")
        return 2
    if args.workers < 0 or args.expect_workers < 0:
        console.print("[red]croupier:[/] --workers and --expect-workers must be >= 0")
        return 2
    run_time = args.run_time or (round(scenario.duration_s) if scenario.duration_s else None)
    if run_time is None and not args.web:
        console.print(f"[red]croupier:[/] scenario {scenario.name} has no duration: pass --run-time")
        return 2
    users = args.users or section.users or max(1, scenario.players + scenario.live.tables)
    rate = args.spawn_rate or section.spawn_rate or float(min(users, 100))
    shape = args.shape or section.shape
    for url, what in ((args.wallet, "wallet"), *([(args.provider, "provider")] if args.provider else [])):
        if problem := _reachable(url, what):
            console.print(f"[red]croupier:[/] {problem}")
            return 2

    out = Path(args.report_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.json"
    summary.unlink(missing_ok=True)
    workers = args.workers + args.expect_workers
    port = args.master_bind_port or _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           "CROUPIER_SECRET": args.secret or os.environ.get("CROUPIER_SECRET") or cfg.DEV_SECRET,
           "CROUPIER_ADMIN_TOKEN": args.admin_token or os.environ.get("CROUPIER_ADMIN_TOKEN") or cfg.DEV_ADMIN,
           "CROUPIER_PROVIDER_KEY": args.provider_key or os.environ.get("CROUPIER_PROVIDER_KEY") or cfg.DEV_PROVIDER_KEY}
    env.pop("CROUPIER_SHAPE", None)
    if shape:
        env["CROUPIER_SHAPE"] = shape
    level = "INFO" if args.verbose else "WARNING"
    master = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", level,
              "-u", str(users), "-r", f"{rate:g}",
              "--csv", str(out / "locust"), "--html", str(out / "locust.html"),
              "--croupier-scenario", args.scenario, "--croupier-wallet", args.wallet,
              "--croupier-dialect", args.dialect, "--croupier-seed", str(args.seed),
              "--croupier-summary", str(summary), "--croupier-severity", severity]
    if run_time:
        master += ["-t", f"{run_time}s"]
    if args.provider:
        master += ["--croupier-provider", args.provider]
    if args.admin_url:
        master += ["--croupier-admin-url", args.admin_url]
    if args.run_id:
        master += ["--croupier-run-id", args.run_id]
    if args.fail_on:
        master += ["--croupier-fail-on", ";".join(args.fail_on)]
    if args.web:
        master += ["--web-host", args.web_host, "--web-port", str(args.web_port)]
    else:
        master += ["--headless", "--only-summary"]
    if workers:
        master += ["--master", "--master-bind-host", args.master_bind_host, "--master-bind-port", str(port),
                   "--expect-workers", str(workers), "--expect-workers-max-wait", "120"]
    master += args.locust_arg

    quiet_log = open(out / "locust-master.log", "wb") if args.quiet else None  # noqa: SIM115
    if not args.quiet:
        where = f"{args.provider} → {args.wallet}" if args.provider else args.wallet
        console.print(f"[bold]croupier load[/] {scenario.name} → {where}: {users} users"
                      + (f", shape {shape}" if shape else f" at {rate:g}/s")
                      + (f", {run_time} s" if run_time else "")
                      + (f", {args.workers} local workers" if args.workers else "")
                      + (f", waiting for {args.expect_workers} remote workers on {args.master_bind_host}:{port}"
                         if args.expect_workers else "")
                      + (f"; web UI on http://{args.web_host}:{args.web_port}" if args.web else ""))
    started = time.monotonic()
    proc = subprocess.Popen(master, env=env, cwd=os.getcwd(), stdout=quiet_log, stderr=quiet_log)
    helpers: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for k in range(args.workers):
            log = open(out / f"locust-worker-{k}.log", "wb")  # noqa: SIM115
            logs.append(log)
            helpers.append(subprocess.Popen(
                [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1",
                 "--master-port", str(port), "--loglevel", level], env=env, stdout=log, stderr=log))
        code = _wait(proc)
    finally:
        _stop(helpers)
        for log in logs:
            log.close()
        if quiet_log:
            quiet_log.close()
    if not summary.is_file():
        console.print(f"[red]croupier:[/] Locust ended (exit code {code}) without croupier's report"
                      + (f"; see {out / 'locust-master.log'}" if args.quiet else ""))
        return 2
    report = orjson.loads(summary.read_bytes())
    report["wall_s"] = round(time.monotonic() - started, 3)
    if args.json_path:
        Path(args.json_path).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if args.junit_path:
        Path(args.junit_path).write_bytes(junit(report))
    page = render(report)  # croupier's own HTML report, beside Locust's locust.html
    (out / "report.html").write_text(page, encoding="utf-8")
    if args.html_path:
        Path(args.html_path).write_text(page, encoding="utf-8")
    if not args.quiet:
        show(report, out, Console())
    if report["verdict"] == "error":
        console.print(f"[red]croupier:[/] {report.get('error') or 'the run tested nothing'}")
        for err in report.get("errors", [])[:3]:
            console.print(f"  {err}")
    return model.exit_code(report["verdict"])


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """Wait for the master; Ctrl+C reaches it too (same process group) and it finishes the run itself."""
    interrupts = 0
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts >= 3:
                proc.kill()


def _stop(helpers: list[subprocess.Popen[bytes]]) -> None:
    """Workers quit when the master tells them; any still alive after a grace period are stopped."""
    deadline = time.monotonic() + 15
    for p in helpers:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
    for p in helpers:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def show(report: dict[str, Any], out: Path, console: Console) -> None:
    print_summary(report, console)
    if report["thresholds"]:
        t = Table(title="thresholds", title_justify="left")
        t.add_column("threshold")
        t.add_column("verdict")
        t.add_column("measured")
        for r in report["thresholds"]:
            t.add_row(r["threshold"], "[green]pass[/]" if r["passed"] else "[red]FAIL[/]", r["message"])
        console.print(t)
    loc = report["locust"]
    console.print(f"locust: {loc['requests']} requests, {loc['failures']} failures"
                  + (f", {report['workers']} workers" if report.get("workers") else "")
                  + f"; reports in {out}/ (report.html, summary.json, locust.html, locust_stats.csv)")
    colour = "green" if report["verdict"] == "pass" else "red"
    why = f": {', '.join(str(r) for r in report['reasons'])}" if report["reasons"] else ""
    console.print(f"[bold {colour}]verdict: {report['verdict'].upper()}[/]{why}")


def junit(report: dict[str, Any]) -> bytes:
    """croupier's JUnit (one case per anomaly kind, provisioning, settlement) plus one case per threshold."""
    root = ET.fromstring(junit_xml(report, suite="croupier.load"))
    results = report["thresholds"]
    ts = ET.SubElement(root, "testsuite", name=f"croupier.load.{report.get('scenario', 'run')}.thresholds",
                       tests=str(len(results)), failures=str(sum(1 for r in results if not r["passed"])),
                       errors="0", time=str(report.get("elapsed_s", 0)))
    for r in results:
        case = ET.SubElement(ts, "testcase", classname="croupier.load.thresholds", name=r["threshold"])
        if not r["passed"]:
            ET.SubElement(case, "failure", type="threshold", message=r["message"])
    recount(root)  # <testsuites> totals include the thresholds' suite
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
