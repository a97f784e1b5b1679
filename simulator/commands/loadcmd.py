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

Like ``croupier run``: Locust is told the wallet's base URL as its ``--host`` (its report and web UI
name the real target); provisioning (the admin API) is counted apart from the protocol's statistics;
percentiles are never above the slowest call; a progress line shows calls, calls/s, users, failures
and findings while it runs.  Locust's processes run in process groups of their own: a terminal's
Ctrl-C reaches this process only, which ends the run properly (SIGINT or SIGTERM: users stop, rounds in
progress finish, calls in doubt are settled within a bound, every report is written marked
``interrupted``; a second signal skips the settlement; a third kills), and no Locust process outlives
the command.

Exit codes: 0 pass; 1 a failing finding, calls left in doubt or a threshold failed; 2 bad usage, an
unreachable wallet, a run that tested nothing (no player seated, no call judged: the verdict
``error``, with the likely cause), or Locust did not finish; 130 interrupted (the reports say what was
seen until then).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from rich.console import Console
from rich.table import Table

from ..drive.tls import ClientTLS, TLSError, handshake_problem
from ..play.scenario import ScenarioError
from ..protocol.findings import Severity
from ..report import model
from ..report.html import render
from ..report.junit import junit_xml, thresholds_suite, to_bytes
from ..report.summary import print_summary
from . import flags
from .progress import LiveProgress

ROOT = Path(__file__).resolve().parents[2]
LOADTESTS = ROOT / "loadtests"
LOCUSTFILE = LOADTESTS / "locustfile.py"
SHAPES = ("ramp", "step", "spike", "soak", "evening-peak")
SEVERITIES = tuple(s.value for s in Severity)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")




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
    p.add_argument("--users", type=flags.positive_int,
                   help="Locust users (default: the scenario's [load] users, else its players + live tables); "
                        "the peak for a --shape")
    p.add_argument("--spawn-rate", type=flags.positive_float, help="users started per second (default: all within ~1 s)")
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
    flags.wire_and_credentials(p)
    flags.client_tls_args(p)
    p.add_argument("--seed", type=int, default=1, help="one seed reproduces every player's sequence of rounds")
    p.add_argument("--run-id", help="prefix of player ids (default: random, so runs never collide)")
    p.add_argument("--locust-arg", action="append", default=[], metavar="ARG",
                   help="pass ARG to the Locust master as is, e.g. --locust-arg=--csv-full-history")
    p.add_argument("--quiet", action="store_true", help="Locust's output to the report folder; no summary")
    p.add_argument("--verbose", action="store_true", help="Locust's INFO log lines (default: warnings only)")


def add_load_worker_parser(sub: Any) -> None:
    p = sub.add_parser(
        "load-worker", help="a Locust worker for a `croupier load` master on another machine (or container)",
        description="Run one Locust worker process that connects to the master started by `croupier load "
                    "--expect-workers N --master-bind-host 0.0.0.0`. The master sends it every setting (scenario, "
                    "wallet, dialect, secrets, seed, run id) with the first spawn message; the worker plays its share "
                    "of the users, settles and reconciles its players, and sends its ledger's findings to the master, "
                    "which writes the one verdict. Start one per core. See docs/distributed.md.")
    p.add_argument("--master-host", help="the machine (or service name) where `croupier load` listens for workers "
                                         "(default: env CROUPIER_MASTER_HOST, else 127.0.0.1)")
    p.add_argument("--master-port", type=int, help="the master's --master-bind-port (default: env "
                                                   "CROUPIER_MASTER_PORT, else 5557, Locust's usual)")
    p.add_argument("--verbose", action="store_true", help="Locust's INFO log lines (default: warnings only)")


def load_worker_argv(args: argparse.Namespace) -> list[str]:
    """The Locust worker a ``croupier load-worker`` becomes: the same locustfile as the master's."""
    host = args.master_host or os.environ.get("CROUPIER_MASTER_HOST") or "127.0.0.1"
    port = args.master_port or os.environ.get("CROUPIER_MASTER_PORT") or 5557
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", host,
            "--master-port", str(port), "--loglevel", "INFO" if args.verbose else "WARNING"]


def load_worker_command(args: argparse.Namespace) -> int:
    """Become the Locust worker (``exec``): its signals, exit code and output are Locust's own, as in a container
    where it is the main process; nothing of croupier's stays between Locust and the operator."""
    console = Console(stderr=True)
    if not LOCUSTFILE.is_file():
        console.print(f"[red]croupier:[/] load-worker needs croupier's loadtests package (looked in {LOADTESTS})")
        return 2
    argv = load_worker_argv(args)
    port = argv[argv.index("--master-port") + 1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        console.print(f"[red]croupier:[/] the master's port must be a TCP port, got {port!r}")
        return 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("CROUPIER_PARENT_PID", None)  # a remote worker belongs to its master, not to a local croupier load
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)


def describe_provisioning(prov: dict[str, Any]) -> str:
    """The provisioning line (see :func:`loadtests.provisioning.describe`), without importing loadtests."""
    if not prov.get("calls"):
        return ""
    lat = prov["latency_ms"]
    failed = f", {prov['failures']:,} failed" if prov.get("failures") else ""
    names = ", ".join(f"{v['count']:,} {k}" for k, v in prov.get("by_name", {}).items())
    return (f"provisioning (admin API, kept out of the protocol statistics): {prov['calls']:,} calls{failed} "
            f"({names}), {prov['time_s']:g} s in all, p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
            f"max {lat['max']:.1f} ms")


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


def _reachable(url: str, what: str, tls: ClientTLS | None = None) -> str | None:
    """Why ``url`` cannot be reached (nothing listens; for ``https://``, a failed TLS handshake, with the flag
    that fixes it), before Locust starts; None if it can."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--{what} must be an http(s) URL, got {url!r}"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=3):
            pass
    except OSError as exc:
        return (f"{what} unreachable at {parts.hostname}:{port}: {exc.strerror or exc}: "
                f"is the {what} running, and is --{what} right?")
    if parts.scheme == "https":
        tls = tls or ClientTLS()
        return handshake_problem(parts.hostname, port, parts.path, tls, tls.context())
    return None


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
    try:
        tls = flags.client_tls(args)
    except TLSError as exc:
        console.print(f"[red]croupier:[/] {exc}", soft_wrap=True)
        return 2
    for url, what in ((args.wallet, "wallet"), *([(args.provider, "provider")] if args.provider else [])):
        if problem := _reachable(url, what, tls):
            console.print(f"[red]croupier:[/] {problem}")
            return 2

    out = Path(args.report_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.json"
    summary.unlink(missing_ok=True)
    workers = args.workers + args.expect_workers
    port = args.master_bind_port or _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           "CROUPIER_SECRET": flags.secret(args),
           "CROUPIER_ADMIN_TOKEN": flags.admin_token(args),
           "CROUPIER_PROVIDER_KEY": args.provider_key or os.environ.get("CROUPIER_PROVIDER_KEY") or cfg.DEV_PROVIDER_KEY}
    env["CROUPIER_PARENT_PID"] = str(os.getpid())  # Locust's processes end if this one dies unannounced
    env.pop("CROUPIER_SHAPE", None)
    if shape:
        env["CROUPIER_SHAPE"] = shape
    level = "INFO" if args.verbose else "WARNING"
    master = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", level,
              "-u", str(users), "-r", f"{rate:g}",
              "--csv", str(out / "locust"), "--html", str(out / "locust.html"),
              "--croupier-scenario", args.scenario, "--croupier-wallet", args.wallet,
              "--croupier-dialect", args.dialect, "--croupier-seed", str(args.seed),
              "--croupier-summary", str(summary), "--croupier-severity", severity,
              # The target by its real name in Locust's report, CSVs and web UI (every URL croupier requests
              # is absolute; the host only names what is under test).
              "--host", (args.provider or args.wallet).rstrip("/")]
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
    for flag, path in (("--croupier-ca-bundle", tls.ca_bundle), ("--croupier-client-cert", tls.client_cert),
                       ("--croupier-client-key", tls.client_key)):
        if path:  # Locust's processes may start elsewhere: an absolute path means the same file
            master += [flag, os.path.abspath(path)]
    if tls.insecure:
        master += ["--croupier-insecure"]
    if args.web:
        master += ["--web-host", args.web_host, "--web-port", str(args.web_port)]
    else:
        master += ["--headless", "--only-summary"]
    if workers:
        master += ["--master", "--master-bind-host", args.master_bind_host, "--master-bind-port", str(port),
                   "--expect-workers", str(workers), "--expect-workers-max-wait", "120"]
    master += args.locust_arg

    if not args.quiet:
        where = f"{args.provider} → {args.wallet}" if args.provider else args.wallet
        console.print(f"[bold]croupier load[/] {scenario.name} → {where}: {users} users"
                      + (f", shape {shape}" if shape else f" at {rate:g}/s")
                      + (f", {run_time} s" if run_time else "")
                      + (f", {args.workers} local workers" if args.workers else "")
                      + (f", waiting for {args.expect_workers} remote workers on {args.master_bind_host}:{port}"
                         if args.expect_workers else "")
                      + (f"; web UI on http://{args.web_host}:{args.web_port}" if args.web else ""), soft_wrap=True)
    progress_file = out / ".croupier-progress.json"
    progress_file.unlink(missing_ok=True)
    master += ["--croupier-progress", str(progress_file)]
    worker = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1",
              "--master-port", str(port), "--loglevel", level]
    # The run's own bound once interrupted: the rounds in progress, then the settlement, then a margin.
    bound = scenario.settle_timeout_s + max(60.0, scenario.timeout_s * 10) + 30
    started = time.monotonic()
    locust = Locust(out, echo=not args.quiet)
    live = LiveProgress("croupier load", float(run_time) if run_time else None, console, enabled=not args.quiet)
    with locust.signals():  # until every child is gone: a signal while workers wind down is ours too
        try:
            with live:
                locust.start_master(master, env)
                for k in range(args.workers):
                    locust.start_worker(k, worker, env)
                code = locust.wait(live, started, bound)
        finally:
            locust.close()
            progress_file.unlink(missing_ok=True)
            progress_file.with_name(progress_file.name + ".tmp").unlink(missing_ok=True)
    stop = locust.interrupt
    if not summary.is_file():
        if stop.killed:
            console.print(f"[red]croupier:[/] interrupted ({stop.signal}): Locust was killed (a third interrupt, or "
                          f"stuck past its bound) before it wrote croupier's report; its CSVs in {out} hold what "
                          "it had measured", soft_wrap=True)
            return 130
        if stop.signal:
            console.print(f"[red]croupier:[/] interrupted ({stop.signal}) before Locust had started its test: "
                          f"nothing was measured (see {out / 'locust-master.log'})", soft_wrap=True)
            return 130
        console.print(f"[red]croupier:[/] Locust ended (exit code {code}) without croupier's report; "
                      f"see {out / 'locust-master.log'}", soft_wrap=True)
        return 2
    report = orjson.loads(summary.read_bytes())
    report["wall_s"] = round(time.monotonic() - started, 3)
    if tls.insecure or any(u.lower().startswith("https:") for u in (args.wallet, args.provider or "")):
        report["tls"] = tls.describe()  # the environment block says how the target's certificate was checked
    if stop.signal and args.web and report.get("tests_started") and not report.get("quit_while_running"):
        stop = Interrupt()  # Ctrl-C after the web UI's test had ended: the way a web session ends, not an interruption
    if stop.signal:
        report["interrupted"] = interrupted(report, stop, started)
        summary.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
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
    if report["verdict"] == "error" and not stop.signal:
        console.print(f"[red]croupier:[/] {report.get('error') or 'the run tested nothing'}")
        for err in report.get("errors", [])[:3]:
            console.print(f"  {err}")
    return 130 if stop.signal else model.exit_code(report["verdict"])


@dataclass(slots=True)
class Interrupt:
    """What ``croupier load`` was told while Locust ran: the first signal, when, and whether a second one
    (or the bound) cut the settlement short."""

    signal: str | None = None
    at: float = 0.0
    count: int = 0
    hurried_at: float | None = None
    killed: bool = False


def interrupted(report: dict[str, Any], stop: Interrupt, started: float) -> dict[str, Any]:
    """The report's ``interrupted`` entry (the shared contract): which signal, when, whether what was in
    doubt was settled, how much was left, and one sentence saying so."""
    left = int(report.get("left_in_doubt") or 0) + int(report.get("unsettled") or 0)
    # What the Locust processes did, not what was asked: a second signal that came after the settlement
    # had finished skipped nothing.
    settled = not report.get("settlement_skipped") and not stop.killed
    after = round(stop.at - started, 3)
    if not sum((report.get("calls") or {}).values()):
        note = f"{stop.signal} after {after:g} s, before any call was made: nothing to settle"
    elif settled:
        note = (f"{stop.signal} after {after:g} s: the users stopped playing, the rounds in progress finished and "
                "the calls in doubt were settled" + (f"; {left} calls stayed in doubt" if left else
                                                     "; nothing is left unsettled"))
    else:
        why = "a second interrupt" if stop.count > 1 else "the settlement's time bound"
        note = (f"{stop.signal} after {after:g} s: the users stopped playing; {why} skipped the settlement, "
                f"{left} calls left in doubt (not judged: the wallet was not asked again)")
    return {"signal": stop.signal, "after_s": after, "settled": settled, "unsettled": left, "note": note}


class Locust:
    """Locust's master and local workers, each in a session (process group) of its own.

    In its own group, a child never sees the terminal's Ctrl-C (which used to reach the master and the
    workers at once, each dying with a gevent traceback mid-settlement): ``croupier load`` receives
    SIGINT/SIGTERM alone and decides.  The first signal asks the master to end the test properly (SIGTERM:
    Locust's shutdown, which stops users, settles, writes the reports); a second (or the bound) tells every
    Locust process to skip the settlement (SIGUSR1); a third, or a stuck process after that, is killed.
    Whatever happens, no child outlives the command (nothing left listening on the web UI's port)."""

    HURRY_GRACE_S = 20.0
    """After a second interrupt, how long the processes may take to write their report before being killed."""

    def __init__(self, out: Path, *, echo: bool) -> None:
        self.out = out
        self.echo = echo
        self.master: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []
        self.relays: list[threading.Thread] = []
        self.interrupt = Interrupt()
        self._told = False

    # -- starting -------------------------------------------------------------------------
    def start_master(self, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.out / "locust-master.log", "wb")  # noqa: SIM115 - closed in close()
        self.logs.append(log)
        self.master = subprocess.Popen(argv, env=env, cwd=os.getcwd(), stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        assert self.master.stdout is not None and self.master.stderr is not None
        for stream, echo in ((self.master.stdout, sys.stdout), (self.master.stderr, sys.stderr)):
            t = threading.Thread(target=self._relay, args=(stream, log, echo if self.echo else None), daemon=True)
            t.start()
            self.relays.append(t)

    def start_worker(self, k: int, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.out / f"locust-worker-{k}.log", "wb")  # noqa: SIM115 - closed in close()
        self.logs.append(log)
        self.workers.append(subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True))

    @staticmethod
    def _relay(stream: Any, log: Any, echo: Any) -> None:
        """Locust's output to its log file and (unless --quiet) to ours, line by line: printed through
        Python's streams, the live progress bar keeps its place below it."""
        for raw in iter(stream.readline, b""):
            log.write(raw)
            log.flush()
            if echo is not None:
                try:
                    echo.write(raw.decode("utf-8", "replace"))
                    echo.flush()
                except (OSError, ValueError):  # our output was closed (`| head`): keep logging, stop echoing
                    echo = None

    # -- signals ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM handled here while Locust runs (never a KeyboardInterrupt mid-wait)."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        stop = self.interrupt
        stop.count += 1
        if stop.count == 1:
            stop.signal = signal.Signals(signum).name
            stop.at = time.monotonic()
            self._tell_master()
        elif stop.count == 2:
            self.hurry()
        else:
            self.kill()

    def _tell_master(self) -> None:
        """End the test properly: Locust's SIGTERM handler runs its shutdown (our ``quitting`` hook stops
        the users, settles, writes the reports).  Once only; before the master exists, :meth:`wait` does it."""
        if self.master is not None and not self._told:
            self._told = True
            self._send(self.master, signal.SIGTERM)

    def hurry(self) -> None:
        """Skip the settlement: every Locust process (and, through the master, remote workers) is told."""
        if self.interrupt.hurried_at is None:
            self.interrupt.hurried_at = time.monotonic()
            for p in self.processes():
                self._send(p, signal.SIGUSR1)

    def kill(self) -> None:
        self.interrupt.killed = True
        for p in self.processes():
            self._send(p, signal.SIGKILL)

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return ([self.master] if self.master is not None else []) + self.workers

    @staticmethod
    def _send(p: subprocess.Popen[bytes], sig: int) -> None:
        """A signal to the child's whole group (Locust starts no grandchildren here, but if it did…)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, sig)

    # -- waiting ------------------------------------------------------------------------------
    def wait(self, live: LiveProgress, started: float, bound: float) -> int:
        """Wait for the master, showing its progress; once interrupted, within ``bound`` seconds (then
        the settlement is skipped) and :data:`HURRY_GRACE_S` more (then everything is killed)."""
        assert self.master is not None
        progress = self.out / ".croupier-progress.json"
        seen: list[tuple[float, int]] = []
        while True:
            try:
                return self.master.wait(0.25)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            stop = self.interrupt
            if stop.signal:
                self._tell_master()  # (a signal that came while the master was being started)
            if stop.signal and stop.hurried_at is None and now - stop.at > bound:
                self.hurry()
            if stop.hurried_at is not None and now - stop.hurried_at > self.HURRY_GRACE_S:
                self.kill()
            try:
                figures = orjson.loads(progress.read_bytes())
            except (OSError, ValueError):
                continue
            calls = int(figures.get("calls", 0))
            seen = [(t, n) for t, n in seen if now - t <= 5.0] + [(now, calls)]
            if now > seen[0][0]:  # calls/s over the last 5 s: what the wallet does now, not since the start
                rate = (calls - seen[0][1]) / (now - seen[0][0])
            else:
                rate = calls / max(1.0, float(figures.get("t") or 0.0))
            phase = str(figures.get("phase") or "")
            if stop.signal:
                phase = "interrupted: " + ("skipping the settlement…" if stop.hurried_at is not None
                                           else (phase or "stopping…") + " (interrupt again to skip)")
            live.update(now - started, f"{calls:,} calls  {rate:,.0f}/s  users {figures.get('users', 0)}  "
                                       f"failures {figures.get('failures', 0):,}  findings {figures.get('findings', 0):,}",
                        phase)

    def close(self) -> None:
        """The master has ended (or we are leaving): workers are given a moment to quit as the master told
        them (not long once interrupted), then stopped; every child is reaped and no process group of ours
        survives."""
        deadline = time.monotonic() + (3 if self.interrupt.signal else 15)
        for p in self.workers:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._send(p, signal.SIGTERM)
        for p in self.processes():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                self._send(p, signal.SIGKILL)
                p.wait()
            self._send(p, signal.SIGKILL)  # anything left in its group
        for t in self.relays:
            t.join(5)
        for log in self.logs:
            log.close()


def show(report: dict[str, Any], out: Path, console: Console) -> None:
    """croupier's summary, the thresholds, Locust's totals, provisioning apart, and the verdict last.

    An interrupted run's first line and its note are :func:`print_summary`'s (the shared ``interrupted``
    contract); the last line here says INTERRUPTED too, so ``| tail -1`` never shows a partial run as done."""
    stop = report.get("interrupted")
    print_summary(report, console)
    if report["thresholds"]:
        console.print(threshold_table(report["thresholds"]))
    loc = report["locust"]
    console.print(f"locust: {loc['requests']} requests, {loc['failures']} failures"
                  + (f", {report['workers']} workers" if report.get("workers") else "")
                  + f"; reports in {out}/ (report.html, summary.json, locust.html, locust_stats.csv)", soft_wrap=True)
    provisioned = describe_provisioning(report.get("provisioning") or {})
    if provisioned:
        console.print(provisioned, soft_wrap=True, highlight=False)
    colour = "green" if report["verdict"] == "pass" else "red"
    why = f": {', '.join(str(r) for r in report['reasons'])}" if report["reasons"] else ""
    if stop:
        console.print(f"[bold yellow]INTERRUPTED[/] by {stop['signal']} after {float(stop['after_s']):.1f} s — "
                      f"[bold {colour}]verdict so far: {report['verdict'].upper()}[/]{why}", soft_wrap=True)
        return
    console.print(f"[bold {colour}]verdict: {report['verdict'].upper()}[/]{why}", soft_wrap=True)


def threshold_table(results: list[dict[str, Any]]) -> Table:
    """The thresholds' results (``croupier load``'s and ``croupier run --fail-on THRESHOLD``'s)."""
    t = Table(title="thresholds", title_justify="left")
    t.add_column("threshold")
    t.add_column("verdict")
    t.add_column("measured")
    for r in results:
        t.add_row(r["threshold"], "[green]pass[/]" if r["passed"] else "[red]FAIL[/]", r["message"])
    return t


def junit(report: dict[str, Any], suite: str = "croupier.load") -> bytes:
    """croupier's JUnit (one case per anomaly kind, provisioning, settlement) plus, when the report has
    thresholds (a load test always; ``croupier run`` when given), a suite with one case per threshold."""
    root = ET.fromstring(junit_xml(report, suite=suite))
    if "thresholds" in report:
        thresholds_suite(root, suite, report)
    return to_bytes(root)

