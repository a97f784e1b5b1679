"""``croupier certify``: every phase croupier has, in order, judged as one go-live checklist.

The phases are croupier's own commands, run in this process with the arguments a person would type (so
each phase's report is exactly what that command writes, and each item's "reproduce" line is a command
that works): the documentation probe, ``check`` (the conformance state machine), ``run`` with the fault
scenarios, ``load`` with a ramp to the peak users, the security pass, the encryption probe.  The budget
(``--budget``, 10 minutes by default) is shared out between them; the checklist
(:mod:`simulator.certify.checklist`) is judged from their reports.

Exit codes: 0 when every item passes, is not tested or is for the operator; 1 when one fails; 2 for bad
usage or an unreachable wallet; 130 when interrupted (the phases done so far are reported, marked so).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from rich.console import Console

from .. import __version__
from ..certify import checklist, export, probes
from ..certify import report as certify_report
from ..certify.checklist import Phase, Phases, Status
from ..drive.tls import TLSError
from ..protocol import dialects
from ..protocol.findings import Severity
from ..report import model
from ..run.accounts import RunError, TLSProblem, preflight
from . import flags
from .interrupt import EXIT_INTERRUPTED, Interrupts
from .progress import LiveProgress

PHASES = ("docs", "check", "scenarios", "load", "security", "encryption")
SCENARIOS = ("chaos", "timeouts", "reorder", "late-duplicates")
"""The fault scenarios: every delivery fault, then timeouts, reordering and late duplicates on their own."""
SHARES = {"check": 0.2, "scenarios": 0.24, "load": 0.25}
"""What part of the budget each long phase gets; the rest covers start-up, settlement and the short phases
(a run's settlement and final reads, Locust's start and stop, the security pass, the probes)."""
MIN_BUDGET_S = 30.0


def duration(text: str) -> float:
    """``10m``, ``90s``, ``1h``, ``1m30s`` or plain seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text.strip()):
        return float(text)
    parts = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*", text)
    if not parts or not any(parts.groups()):
        raise argparse.ArgumentTypeError("a duration such as 10m, 90s or 1m30s")
    h, m, s = (int(g or 0) for g in parts.groups())
    return float(h * 3600 + m * 60 + s)


def sla(text: str) -> float:
    """``p99=500ms`` (or ``p99=0.5s``): the p99 latency in milliseconds the ramp is judged by."""
    found = re.fullmatch(r"\s*p99\s*=\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", text)
    if not found:
        raise argparse.ArgumentTypeError("an SLA such as p99=500ms (p99 is the one measured)")
    value = float(found.group(1)) * (1000 if found.group(2) == "s" else 1)
    if value <= 0:
        raise argparse.ArgumentTypeError("the SLA must be above 0 ms")
    return value


def percent(text: str) -> float:
    """``1%`` or ``0.5`` (percent either way)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not found or float(found.group(1)) > 100:
        raise argparse.ArgumentTypeError("a percentage such as 1% or 0.1%")
    return float(found.group(1))


def phase_list(text: str) -> tuple[str, ...]:
    if text.strip() == "all":
        return PHASES
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"phases are a comma list of {', '.join(PHASES)}")
    return names


def add_certify_parser(sub: Any) -> None:
    p = sub.add_parser(
        "certify", help="the go-live checklist an operator signs: check, fault scenarios, a load ramp, a security "
                        "pass, probes; one report",
        description="Run croupier's phases against a wallet within a budget and judge the go-live checklist item "
                    "by item: pass, fail, not tested (and why), for the operator. Exit 0 when nothing fails, 1 "
                    "when an item fails, 2 for bad usage or an unreachable wallet, 130 when interrupted.")
    p.add_argument("--wallet", default="http://127.0.0.1:8080/wallet", help="the wallet's protocol base URL")
    flags.wire_and_credentials(p)
    flags.client_tls_args(p)
    p.add_argument("--players", dest="players_file",
                   help="CSV of test accounts player_id,token,currency, for a wallet without the admin API "
                        "(the load ramp then is not run: it provisions its players)")
    p.add_argument("--sla", type=sla, default="p99=500ms", metavar="p99=500ms",
                   help="the latency the load ramp is judged by (default: %(default)s)")
    p.add_argument("--error-budget", type=percent, default="1%", metavar="1%",
                   help="the share of the load ramp's requests that may fail (default: %(default)s)")
    p.add_argument("--users", type=flags.positive_int, default=50,
                   help="the load ramp's peak users (default: %(default)s)")
    p.add_argument("--budget", type=duration, default="10m", metavar="10m",
                   help=f"time for every phase together, at least {MIN_BUDGET_S:g} s (default: %(default)s)")
    p.add_argument("--openapi", metavar="URL|FILE",
                   help="the wallet's OpenAPI document (default: /openapi.json beside the wallet, if it serves one)")
    p.add_argument("--export", metavar="URL|FILE",
                   help="the wallet's own transaction export, read when play is over (JSON lines or CSV with tx_id, "
                        "player_id, op, amount; the reference wallet's is /admin/transactions), compared with "
                        "what croupier sent (default: none, the item is not tested)")
    p.add_argument("--plain-url", metavar="URL",
                   help="the wallet's plain-HTTP address, for the encryption item (default: the https:// wallet's "
                        "host on port 80)")
    p.add_argument("--phases", type=phase_list, default="all", metavar="LIST",
                   help=f"which phases to run, a comma list of {', '.join(PHASES)} (default: %(default)s)")
    p.add_argument("--fail-on", choices=("money", "contract", "note"), default="contract",
                   help="the mildest severity of finding that fails an item (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="one seed reproduces every phase (default: %(default)s)")
    p.add_argument("--out", default="certify-report", metavar="DIR",
                   help="the folder for every phase's own report (default: %(default)s)")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="the certification report as JSON")
    p.add_argument("--junit", dest="junit_path", metavar="PATH",
                   help="JUnit XML: a test suite per group, a test case per item")
    p.add_argument("--html", dest="html_path", metavar="PATH",
                   help="the certification report as one HTML page (also report.html in --out)")
    p.add_argument("--pdf", dest="pdf_path", metavar="PATH",
                   help="the HTML page printed to PDF by Chromium (Debian's chromium; without it, print the HTML "
                        "from any browser)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (exit code and files only)")


@dataclass
class Plan:
    """How the budget is shared out: seconds for each long phase."""

    check_s: float
    scenario_s: float
    load_s: float

    @classmethod
    def of(cls, budget_s: float, phases: tuple[str, ...]) -> Plan:
        # A phase left out gives its share to the others, in proportion.
        shares = {k: v for k, v in SHARES.items() if k in phases}
        scale = sum(SHARES.values()) / sum(shares.values()) if shares else 1.0
        return cls(check_s=max(5.0, budget_s * SHARES["check"] * scale),
                   scenario_s=max(3.0, budget_s * SHARES["scenarios"] * scale / len(SCENARIOS)),
                   load_s=max(10.0, budget_s * SHARES["load"] * scale))


def _target(args: argparse.Namespace) -> list[str]:
    """The flags that reach this wallet, for every phase's command line."""
    out = ["--wallet", args.wallet, "--dialect", args.dialect, *flags.client_tls(args, warn=False).argv()]
    if args.secret:
        out += ["--secret", args.secret]
    if args.players_file:
        return out + ["--players", args.players_file]
    if args.admin_url:
        out += ["--admin-url", args.admin_url]
    if args.admin_token:
        out += ["--admin-token", args.admin_token]
    return out


def _command(argv: list[str]) -> str:
    return "croupier " + shlex.join([a for a in argv if a != "--quiet"])


class Certify:
    """One certification: the phases in order, each timed, the progress shown, the reports read back."""

    def __init__(self, args: argparse.Namespace, console: Console, interrupts: Interrupts,
                 croupier: Callable[[list[str]], int]) -> None:
        self.args = args
        self.croupier = croupier
        """The ``croupier`` command line's entry point, that runs each phase's command as typed."""
        self.console = console
        self.interrupts = interrupts
        self.out = Path(args.out)
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.plan = Plan.of(args.budget, args.phases)
        self.phases = Phases()
        self.records: list[dict[str, Any]] = []
        self.stopped_by: str | None = None
        self.current = "starting"
        self.dialect = dialects.get(args.dialect, flags.secret(args))

    # -- the phases ----------------------------------------------------------------------------
    def run(self, progress: LiveProgress) -> None:
        ticking = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(progress, ticking), daemon=True)
        ticker.start()
        try:
            steps: list[tuple[str, Callable[[], None]]] = [
                ("docs", self._docs), ("check", self._check), ("scenarios", self._scenarios), ("load", self._load),
                ("security", self._security), ("encryption", self._encryption), ("export", self._export)]
            for name, step in steps:
                if self.stopped_by is None and self.interrupts.first is not None:
                    self.stopped_by = self.interrupts.first
                if name not in self.args.phases and name != "export":
                    continue
                if self.stopped_by is not None:
                    self._not_run(name)
                    continue
                step()
        finally:
            ticking.set()
            ticker.join(timeout=2)

    def _tick(self, progress: LiveProgress, done: threading.Event) -> None:
        while not done.wait(1.0):
            elapsed = time.monotonic() - self.started
            progress.update(elapsed, self.current)

    def _subcommand(self, name: str, argv: list[str], json_path: Path) -> Phase:
        """Run one of croupier's commands here, as typed; its JSON report is the phase's."""
        self.current = f"{name}…"
        began = time.monotonic()
        code = self.croupier(argv)
        elapsed = time.monotonic() - began
        report: dict[str, Any] | None = None
        error = None
        try:
            report = orjson.loads(json_path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            error = f"exit {code}, no report ({type(exc).__name__})"
        if code == EXIT_INTERRUPTED:
            self.stopped_by = self.interrupts.first or "SIGINT"
        phase = Phase(name, _command(argv), report, None, error)
        self.records.append({"name": name, "command": phase.command, "exit_code": code, "elapsed_s": round(elapsed, 1),
                             "report": str(json_path), "error": error,
                             "verdict": report.get("verdict") if report else None})
        return phase

    def _not_run(self, name: str) -> None:
        """A phase the interruption kept from running: its items say so (not "not asked for")."""
        why = f"not run: certify was interrupted ({self.stopped_by}) before this phase"
        command = f"croupier certify --phases {name} --wallet {self.args.wallet}"
        if name in ("load", "security", "encryption", "docs", "check"):
            setattr(self.phases, name, self._skip(name, command, why))
        elif name == "export" and self.args.export:
            self.phases.export = self._skip(name, command, why)

    def _skip(self, name: str, command: str, why: str) -> Phase:
        self.records.append({"name": name, "command": command, "skipped": why, "elapsed_s": 0.0})
        return Phase(name, command, skipped=why)

    def _docs(self) -> None:
        self.current = "documentation…"
        began = time.monotonic()
        command = f"croupier certify --phases docs --wallet {self.args.wallet}" + (
            f" --openapi {self.args.openapi}" if self.args.openapi else "")
        found = asyncio.run(self._with_session(
            lambda s: probes.documentation(self.args.openapi, self.args.wallet, self.dialect, s)))
        if found is None:
            self.phases.docs = self._skip("docs", command, "no OpenAPI document was given (--openapi) nor served at "
                                          "/openapi.json beside the wallet")
            return
        self.phases.docs = Phase("docs", command, found)
        self.records.append({"name": "docs", "command": command, "elapsed_s": round(time.monotonic() - began, 1),
                             "verdict": "error" if found.get("error") else "done"})

    def _check(self) -> None:
        path = self.out / "check.json"
        argv = ["check", *_target(self.args), "--budget", f"{self.plan.check_s:.0f}",
                "--shrink-time", f"{max(5.0, self.plan.check_s / 4):.0f}", "--fail-on", self.args.fail_on,
                "--seed", str(self.args.seed), "--out", str(self.out / "check"), "--json", str(path),
                "--junit", str(self.out / "check.xml"), "--quiet"]
        self.phases.check = self._subcommand("check", argv, path)

    def _scenarios(self) -> None:
        for name in SCENARIOS:
            if self.stopped_by is not None or self.interrupts.first is not None:
                return
            path = self.out / f"run-{name}.json"
            argv = ["run", name, *_target(self.args), "--duration", f"{self.plan.scenario_s:.0f}",
                    "--fail-on", self.args.fail_on, "--seed", str(self.args.seed), "--json", str(path),
                    "--html", str(self.out / f"run-{name}.html"), "--quiet"]
            if name == SCENARIOS[0]:  # its transactions are compared with the wallet's export (--export)
                argv[-1:-1] = ["--transactions", str(self.out / f"run-{name}.tx.jsonl")]
            self.phases.scenarios.append(self._subcommand(f"run {name}", argv, path))

    def _load(self) -> None:
        path = self.out / "load.json"
        seconds = int(self.plan.load_s)
        argv = ["load", "steady", *_target(self.args), "--shape", "ramp", "--users", str(self.args.users),
                "--run-time", f"{seconds}s", "--fail-on", self.args.fail_on, "--seed", str(self.args.seed),
                "--report-dir", str(self.out / "load"), "--json", str(path), "--html", str(self.out / "load.html"),
                "--quiet"]
        if self.args.players_file:
            self.phases.load = self._skip("load", _command(argv), "the load ramp provisions its players through the "
                                          "admin API; with --players it is not run")
            return
        phase = self._subcommand("load", argv, path)
        if phase.report is not None:
            self.phases.load = Phase(phase.name, phase.command, self._with_users(phase.report, seconds),
                                     phase.skipped, phase.error)
        else:
            self.phases.load = phase

    def _with_users(self, report: Mapping[str, Any], seconds: int) -> dict[str, Any]:
        """The ramp's users at each second of the load report's series (the shape is a pure function of time)."""
        from loadtests.curves import users_at

        s = report.get("series") or {}
        users = [users_at("ramp", float(t), float(seconds), self.args.users) for t in s.get("seconds", [])]
        return {**report, "users_by_second": users, "peak_users": self.args.users}

    def _security(self) -> None:
        from ..certify import security

        self.current = "security pass…"
        began = time.monotonic()
        command = f"croupier certify --phases security {' '.join(shlex.quote(a) for a in _target(self.args))}"
        result = security.run_pass(self.args.wallet, self.args.dialect, flags.secret(self.args),
                                   admin_url=self.args.admin_url, admin_token=flags.admin_token(self.args),
                                   players_file=self.args.players_file,
                                   ssl_context=flags.client_tls(self.args, warn=False).context())
        report = result.to_json()
        (self.out / "security.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        self.phases.security = Phase("security", command, report)
        self.records.append({"name": "security", "command": command, "elapsed_s": round(time.monotonic() - began, 1),
                             "report": str(self.out / "security.json"), "verdict": report.get("verdict")})

    def _encryption(self) -> None:
        self.current = "encryption…"
        command = f"croupier certify --phases encryption --wallet {self.args.wallet}" + (
            f" --plain-url {self.args.plain_url}" if self.args.plain_url else "")
        found = asyncio.run(self._with_session(
            lambda s: probes.encryption(self.args.wallet, self.args.plain_url, self.dialect, s)))
        self.phases.encryption = Phase("encryption", command, found)
        self.records.append({"name": "encryption", "command": command, "elapsed_s": 0.0, "verdict": found["status"]})

    def _export(self) -> None:
        """The wallet's export against what the first fault scenario sent (read now, when play is over)."""
        source = self.args.export
        command = f"croupier certify --phases scenarios --export {source}" if source else "croupier certify --export"
        if not source:
            return
        sent_path = self.out / f"run-{SCENARIOS[0]}.tx.jsonl"
        if not sent_path.exists():
            self.phases.export = self._skip("export", command, f"the {SCENARIOS[0]} scenario did not run: nothing to "
                                            "compare the export with")
            return
        self.current = "export…"
        began = time.monotonic()
        try:
            data = asyncio.run(self._with_session(lambda s: self._read_export(source, s)))
            exported = export.parse(data)
        except (OSError, aiohttp.ClientError, TimeoutError, export.ExportError) as exc:
            found: dict[str, Any] = {"source": source, "rows": 0, "problems": [
                {"problem": "unreadable", "why": f"the export could not be read: {type(exc).__name__}: {exc}"}]}
        else:
            sent = [orjson.loads(line) for line in sent_path.read_bytes().splitlines() if line.strip()]
            found = export.compare(sent, exported, source)
        self.phases.export = Phase("export", command, found)
        self.records.append({"name": "export", "command": command, "elapsed_s": round(time.monotonic() - began, 1),
                             "verdict": "fail" if found["problems"] else "pass"})

    async def _read_export(self, source: str, session: aiohttp.ClientSession) -> bytes:
        if not source.startswith(("http://", "https://")):
            return Path(source).read_bytes()
        headers = {}
        admin = self.args.admin_url or self.args.wallet
        if urlsplit(admin).netloc == urlsplit(source).netloc:  # the admin token goes to the admin API only
            headers["Authorization"] = f"Bearer {flags.admin_token(self.args)}"
        async with session.get(source, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                  message=f"HTTP {resp.status} from {source}")
            return await resp.read()

    async def _with_session(self, fn: Callable[[aiohttp.ClientSession], Any]) -> Any:
        """A session that verifies an ``https://`` wallet as the phases do (``--ca-bundle``...)."""
        ctx = flags.client_tls(self.args, warn=False).context()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
            return await fn(session)

    # -- the report ----------------------------------------------------------------------------
    def report(self, argv: list[str]) -> dict[str, Any]:
        fail_on = model.severity_name(self.args.fail_on)
        items = checklist.assess(self.phases, sla_p99_ms=self.args.sla, fail_on=fail_on,
                                 error_budget_pct=self.args.error_budget)
        load = self.phases.load.report if self.phases.load is not None else None
        severities = {p.name: _severities(p.report, fail_on) for p in self.phases.traffic()}
        out: dict[str, Any] = {
            "verdict": checklist.verdict(items), "wallet": self.args.wallet, "dialect": self.args.dialect,
            "croupier_version": __version__, "started": self.started_at, "command": _command(["certify", *argv]),
            "elapsed_s": round(time.monotonic() - self.started, 1), "budget_s": self.args.budget,
            **({"tls": flags.client_tls(self.args, warn=False).describe()}
               if self.args.wallet.startswith("https://") or self.args.insecure else {}),
            "sla": {"p99_ms": self.args.sla, "error_budget_pct": self.args.error_budget}, "fail_on": self.args.fail_on, "counts": checklist.counts(items),
            "items": [i.to_json() for i in items], "phases": self.records, "severities": severities,
            "capacity": checklist.capacity(load, self.args.sla) if load is not None else None,
            "load_series": load.get("series") if load is not None else None,
        }
        if self.stopped_by is not None:
            out["interrupted"] = {"signal": self.stopped_by, "after_s": out["elapsed_s"],
                                  "note": f"{self.stopped_by}: certify stopped; the items of the phases not run are "
                                          "not tested"}
        return out


def _severities(report: Any, fail_on: Severity) -> dict[str, int]:
    out = {"money": 0, "contract": 0, "note": 0}
    for f in list(report.get("findings", [])) + list(report.get("failures", [])) + list(report.get("notes", [])):
        sev = str(f.get("severity"))
        if sev in out:
            out[sev] += 1
    return out


def certify_command(args: argparse.Namespace, argv: list[str], croupier: Callable[[list[str]], int]) -> int:
    """``croupier certify``; ``croupier`` runs another command of the command line (``cli.main``: passed
    in, so that this module never imports the command line that imports it)."""
    console = Console(stderr=False, quiet=args.quiet)
    if args.budget < MIN_BUDGET_S:
        console.print(f"croupier certify: --budget must be at least {MIN_BUDGET_S:g} s", style="red")
        return 2
    try:
        tls = flags.client_tls(args)  # a bad certificate file is exit 2 here, once, not in every phase
        asyncio.run(preflight(args.wallet, tls=tls))
    except TLSProblem as exc:
        print(f"croupier: {exc}")
        return 2
    except (RunError, TLSError) as exc:
        print(f"croupier: {exc}" + ("" if isinstance(exc, TLSError) else
                                    ": is the wallet running, and is --wallet right?"))
        return 2
    Path(args.out).mkdir(parents=True, exist_ok=True)
    with Interrupts() as interrupts:
        job = Certify(args, console, interrupts, croupier)
        if not args.quiet:
            console.print(f"[bold]croupier certify[/] → {args.wallet} ({args.dialect}): phases "
                          f"{', '.join(args.phases)} within {args.budget:g} s; reports in {args.out}/")
        with LiveProgress("croupier certify", args.budget, console, enabled=not args.quiet) as progress:
            job.run(progress)
        report = job.report(argv)
        _write(report, args)
    if not args.quiet:
        for item in report["items"]:
            style = {"pass": "green", "fail": "bold red", "not tested": "dim", "for the operator": "cyan"}[item["status"]]
            console.print(f"  [{style}]{item['status']:>16}[/]  {item['title']}: {item['why']}", highlight=False,
                          soft_wrap=True)
        for line in certify_report.summary_lines(report):
            console.print(line, highlight=False, soft_wrap=True)
    if report.get("interrupted"):
        return EXIT_INTERRUPTED
    return 1 if report["verdict"] == "fail" else 0


def _write(report: dict[str, Any], args: argparse.Namespace) -> None:
    out = Path(args.out)
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2)
    (out / "certify.json").write_bytes(data)
    page = certify_report.render(report)
    (out / "report.html").write_text(page, encoding="utf-8")
    if args.json_path:
        Path(args.json_path).write_bytes(data)
    if args.html_path:
        Path(args.html_path).write_text(page, encoding="utf-8")
    if args.junit_path:
        Path(args.junit_path).write_bytes(certify_report.junit_xml(report))
    if args.pdf_path:
        problem = print_pdf(out / "report.html", Path(args.pdf_path))
        if problem:
            print(f"croupier: no PDF: {problem}", file=sys.stderr)


CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def print_pdf(page: Path, pdf: Path) -> str | None:
    """The page printed to PDF by a headless Chromium (its print stylesheet applies); why not, else None."""
    browser = next((found for name in CHROMIUMS if (found := shutil.which(name))), None)
    if browser is None:
        return "no Chromium found (Debian: apt-get install chromium); the HTML prints to PDF from any browser"
    with tempfile.TemporaryDirectory(prefix="croupier-pdf-") as profile:
        try:
            proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                                   f"--user-data-dir={profile}", f"--print-to-pdf={pdf.resolve()}",
                                   page.resolve().as_uri()], capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{browser} failed: {exc}"
    if proc.returncode != 0 or not pdf.exists():
        return f"{browser} exited {proc.returncode}: {proc.stderr.decode('utf-8', 'replace')[-300:]}"
    return None


__all__ = ["Status", "add_certify_parser", "certify_command"]
