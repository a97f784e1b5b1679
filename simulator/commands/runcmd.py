"""The ``croupier run`` and ``croupier scenarios`` commands: options, progress, reports, exit codes.

Exit codes: 0 pass (no finding of a failing severity: ``--fail-on``, default ``contract``, so
money and contract findings fail and notes never do); 1 fail; 2 error — bad usage, a bad
scenario file, or a run that could not test anything (unreachable wallet, nobody seated,
nothing judged), with the likely cause in every report; 130 interrupted (SIGINT or SIGTERM):
play stops, what is in doubt is settled within a bound (a second signal skips it), and every
report asked for is written, marked ``interrupted``, with the verdict so far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from rich.console import Console

from ..drive import evidence
from ..judge import journal
from ..judge.ledger import Ledger
from ..judge.stats import RunStats
from ..metrics.exposition import WorkerPool, listen
from ..metrics.families import Metrics
from ..play import scenario as scenarios
from ..protocol.findings import Severity
from ..report import model, series
from ..report.html import render
from ..report.summary import print_summary
from ..run.accounts import RunError, read_accounts
from ..run.interruption import INTERRUPT_RECONCILE_S, INTERRUPT_ROUNDS_S, INTERRUPT_SETTLE_S
from ..run.result import RunOptions, RunResult, result_json
from ..run.runner import Runner
from . import flags
from .interrupt import EXIT_INTERRUPTED, Interrupts
from .progress import LiveProgress


def add_run_parser(sub: Any) -> None:
    from loadtests.verdict import FailOnAction  # --fail-on SEVERITY|THRESHOLD, read as croupier load reads it

    p = sub.add_parser("run", help="play realistic, faulty provider traffic at a wallet and reconcile",
                       description="Play a scenario's players, games and faults at a wallet as signed protocol "
                                   "calls, judge every answer, settle and reconcile at the end, print the verdict.")
    p.add_argument("scenario", help="a built-in scenario name (see `croupier scenarios`) or a .toml file")
    p.add_argument("--wallet", default="http://127.0.0.1:8080/wallet", help="the wallet's protocol base URL")
    flags.wire_and_credentials(p)
    flags.client_tls_args(p)
    p.add_argument("--players", dest="players_file",
                   help="CSV of test accounts: player_id,token,currency, optionally session_token,session_ref "
                        "(sessions the operator made; a second session id); each plays in its own currency")
    p.add_argument("--player-count", type=int, help="players (default: the scenario's [run] players)")
    p.add_argument("--seed", type=int, default=1, help="one seed reproduces every player's sequence of calls")
    p.add_argument("--run-id", help="prefix of player and transaction ids (default: random, so runs never collide)")
    p.add_argument("--duration", type=float, help="seconds of play (default: the scenario's [run] duration_s)")
    p.add_argument("--rounds", type=int, help="rounds per player (default: the scenario's [run] rounds)")
    p.add_argument("--settle-timeout", type=float, help="seconds the end-of-run settlement may take "
                   "(overrides the scenario's [run] settle_timeout_s, default 60)")
    p.add_argument("--workers", type=int, default=1, help="processes to shard players across")
    p.add_argument("--concurrency", type=int, default=256, help="rounds in flight at once per process")
    p.add_argument("--fail-on", dest="fail_on", default="contract", action=FailOnAction, metavar="SEVERITY|THRESHOLD",
                   help="the least severe finding that fails the run: money, contract (default: money or "
                        "contract findings fail) or note (any finding, choices the protocol allows included); "
                        "or, as for `croupier load`, a threshold such as 'p99(bet)>250ms' or 'error_rate>0.1%%' "
                        "(repeatable)")
    p.add_argument("--json", dest="json_path", metavar="PATH",
                   help="write the report as JSON to PATH (findings, coverage, per-second series)")
    p.add_argument("--junit", dest="junit_path", metavar="PATH", help="JUnit XML: a test case per kind of finding (notes as properties)")
    p.add_argument("--html", dest="html_path", metavar="PATH", help="write an HTML report to PATH")
    p.add_argument("--transactions", dest="transactions_path", metavar="PATH",
                   help="write every money transaction croupier sent, with what the wallet made of it, as JSON "
                        "lines (to compare with the wallet's own export)")
    p.add_argument("--evidence", dest="evidence_path", metavar="PATH",
                   help="write the transactions of closed rounds, with every exchange of theirs, as JSON lines to "
                        "PATH once they leave memory (default: beside the --json, --html or --junit report, "
                        "NAME.evidence.jsonl; without a report they are not written; a PATH ending in .gz is "
                        "gzip-compressed as it is written)")
    p.add_argument("--keep-all-evidence", action="store_true",
                   help="keep every transaction in memory for the whole run, as before (memory grows with the "
                        "calls; implied by --transactions)")
    p.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    p.add_argument("--metrics-listen", type=flags.address, metavar="HOST:PORT",
                   help="serve Prometheus metrics at http://HOST:PORT/metrics while the run plays: calls, latency, "
                        "errors, findings, faults injected, rounds, players, calls in doubt; every worker's added "
                        "up (docs/metrics.md; default: off)")
    p.add_argument("--metrics-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shard", help=argparse.SUPPRESS)
    p.add_argument("--partial", help=argparse.SUPPRESS)

    s = sub.add_parser("scenarios", help="list the built-in scenarios",
                       description="The built-in scenarios, each with its players, duration and description.")
    s.add_argument("--json", action="store_true",
                   help="print them as JSON: description, duration_s, rounds, players, model, arrival_rate")


def _event_loop_run(main: Coroutine[Any, Any, RunResult]) -> RunResult:
    """On uvloop where it is installed: bench/runner.py measured ~10 % less CPU per call than asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional on other platforms
        return asyncio.run(main)
    return uvloop.run(main)


def list_scenarios(as_json: bool) -> int:
    """``croupier scenarios``: :func:`simulator.play.scenario.listing` (whole descriptions, duration, players)."""
    import shutil

    text, data = scenarios.listing(shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100)
    print(orjson.dumps(data).decode() if as_json else text, end="\n" if as_json else "")
    return 0


def _options(args: argparse.Namespace) -> RunOptions:
    scenario = scenarios.load(args.scenario)
    overrides: dict[str, Any] = {}
    if args.duration is not None:
        if args.duration <= 0:
            raise scenarios.ScenarioError("--duration must be positive")
        overrides["duration_s"] = args.duration
    if args.rounds is not None:
        if args.rounds < 1:
            raise scenarios.ScenarioError("--rounds must be at least 1")
        overrides["rounds"] = args.rounds
        if args.duration is None:
            overrides["duration_s"] = None
    if args.settle_timeout is not None:
        if args.settle_timeout <= 0:
            raise scenarios.ScenarioError("--settle-timeout must be positive")
        overrides["settle_timeout_s"] = args.settle_timeout
    if args.player_count is not None:
        if args.player_count < 0:
            raise scenarios.ScenarioError("--player-count must be >= 0")
        overrides["players"] = args.player_count
    if overrides:
        import dataclasses

        scenario = dataclasses.replace(scenario, **overrides)
    accounts = read_accounts(args.players_file) if args.players_file else None
    admin_url = args.admin_url
    if admin_url is None and accounts is None:
        parts = urlsplit(args.wallet)
        admin_url = f"{parts.scheme}://{parts.netloc}"
    shard = (0, 1)
    if args.shard:
        k, n = args.shard.split("/")
        shard = (int(k), int(n))
    return RunOptions(
        scenario=scenario, wallet_url=args.wallet,
        secret=flags.secret(args),
        dialect=args.dialect, admin_url=admin_url,
        admin_token=flags.admin_token(args),
        accounts=accounts, seed=args.seed, run_id=args.run_id or secrets.token_hex(3), shard=shard,
        concurrency=args.concurrency, fail_on=Severity(args.fail_on), players_file=args.players_file,
        tls=flags.client_tls(args, warn=not args.partial),  # workers: their parent said it
        evidence_path=_evidence_path(args), keep_all_evidence=args.keep_all_evidence or bool(args.transactions_path),
    )


def _evidence_path(args: argparse.Namespace) -> str | None:
    """``--evidence``, else beside the first report asked for (a worker is given its own by its parent)."""
    if args.evidence_path:
        return str(args.evidence_path)
    report = args.json_path or args.html_path or args.junit_path
    return evidence.beside(report) if report else None


def _progress(console: Console, duration: float | None, enabled: bool) -> tuple[LiveProgress, Any]:
    progress = LiveProgress("croupier run", duration, console, enabled=enabled)

    def tick(stats: RunStats, ledger: Ledger, elapsed: float) -> None:
        calls = sum(stats.calls.values())
        line = (f"{calls} calls  {calls / elapsed if elapsed else 0:,.0f}/s  rounds {sum(stats.rounds.values())}  "
                f"findings {ledger.anomaly_count}")
        progress.update(elapsed, line, stats.phase)

    return progress, tick


WIND_DOWN_S = INTERRUPT_ROUNDS_S + INTERRUPT_SETTLE_S + INTERRUPT_RECONCILE_S
"""The most an interrupted run takes to stop (rounds in flight, settlement, final reads), reports aside."""
WORKER_GRACE_S = WIND_DOWN_S + 5.0
"""How long ``--workers`` waits for its interrupted workers (their wind-down, their partial reports)
before it kills them: no worker outlives the command."""


async def run_interruptible(options: RunOptions, interrupts: Interrupts, console: Console | None = None,
                            parent: int | None = None) -> RunResult:
    """The run, with the command's SIGINT/SIGTERM turned into :meth:`Runner.interrupt` calls on this loop
    (the runner never sees a signal); ``console``: where to say what an interruption does now;
    ``parent``: a ``--workers`` parent's pid — should it die without passing a signal on (SIGKILL),
    this worker stops as if it got a SIGTERM rather than play on alone for the rest of the run."""
    runner = Runner(options)
    loop = asyncio.get_running_loop()

    def tell(name: str, count: int) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over, the signal noted
            loop.call_soon_threadsafe(_interrupted, runner, name, count, console)

    stop_listening = interrupts.listen(tell)
    orphaned = asyncio.create_task(_watch_parent(parent, runner)) if parent is not None else None
    try:
        return await runner.run()
    finally:
        stop_listening()
        if orphaned is not None:
            orphaned.cancel()


async def _watch_parent(parent: int, runner: Runner) -> None:
    """Once the parent is gone (this process re-parented), stop the run as a SIGTERM would."""
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    runner.interrupt("SIGTERM")


def _interrupted(runner: Runner, name: str, count: int, console: Console | None) -> None:
    if count == 1:
        runner.interrupt(name)
        if console is not None:
            console.print(f"[yellow]croupier:[/] {name}: stopping — no new round; the calls in flight finish and "
                          f"what is in doubt is settled (at most {WIND_DOWN_S:g} s); Ctrl-C or SIGTERM again skips "
                          "the settlement", soft_wrap=True)
    elif count == 2:
        in_doubt = len(runner.ledger.in_doubt())
        runner.interrupt(name)
        if console is not None:
            console.print(f"[yellow]croupier:[/] {name} again: settlement skipped, {in_doubt} call"
                          f"{'' if in_doubt == 1 else 's'} in doubt left unsettled; writing the reports",
                          soft_wrap=True)


def run_command(args: argparse.Namespace) -> int:
    """``croupier run``: SIGINT and SIGTERM are handled from here on (see :func:`run_interruptible`)."""
    with Interrupts() as interrupts:
        return _run_command(args, interrupts)


def _serve_metrics(args: argparse.Namespace, options: RunOptions, pool: WorkerPool | None = None) -> Callable[[], None]:
    """``--metrics-listen``: this process's metrics (or, with ``pool``, its workers') served until the returned
    function is called; a ``--workers`` worker counts into its parent's directory (``--metrics-worker``) and
    serves nothing.  ``OSError`` when the address cannot be had, before anything is sent."""
    if args.metrics_worker or (args.metrics_listen and pool is None):
        options.metrics = Metrics("run")
    if not args.metrics_listen:
        return lambda: None
    host, port = args.metrics_listen
    return listen(host, port, pool.registry() if pool is not None else options.metrics.registry)  # type: ignore[union-attr]


def _run_command(args: argparse.Namespace, interrupts: Interrupts) -> int:
    console = Console(stderr=True)
    try:
        options = _options(args)
    except (scenarios.ScenarioError, RunError, ValueError) as exc:
        console.print(f"[red]croupier:[/] {exc}")
        return 2
    if args.workers < 1:
        console.print("[red]croupier:[/] --workers must be at least 1")
        return 2
    if args.concurrency < 1:
        console.print("[red]croupier:[/] --concurrency must be at least 1")
        return 2
    if args.workers > 1 and not args.shard:
        pool = WorkerPool() if args.metrics_listen else None
        try:
            stop = _serve_metrics(args, options, pool)
        except OSError as exc:
            return _no_listen(args, exc, console)
        try:
            return _run_workers(args, options, console, interrupts, pool)
        finally:
            stop()
            if pool is not None:
                pool.close()
    show = not args.quiet and not args.partial
    progress, tick = _progress(console, options.scenario.duration_s, show)
    if show:
        options.on_tick = tick
    try:
        stop = _serve_metrics(args, options)
    except OSError as exc:
        return _no_listen(args, exc, console)
    try:
        with progress:
            result = _event_loop_run(run_interruptible(options, interrupts, console if show else None,
                                                       os.getppid() if args.partial else None))
    except RunError as exc:
        console.print(f"[red]croupier:[/] {exc}")
        return 2
    finally:
        stop()
    report = result_json(result)
    if args.transactions_path:
        _write_transactions(Path(args.transactions_path), [journal.records(result.ledger)])
    if args.partial:
        Path(args.partial).write_bytes(orjson.dumps({"report": report, "stats": result.stats.to_json()}))
        return EXIT_INTERRUPTED if result.interruption is not None else 0
    return _finish(args, report, result.stats, console)


def _no_listen(args: argparse.Namespace, exc: OSError, console: Console) -> int:
    host, port = args.metrics_listen
    console.print(f"[red]croupier:[/] cannot serve metrics on {host}:{port} ({exc.strerror or exc}): check "
                  "--metrics-listen")
    return 2


def _finish(args: argparse.Namespace, report: dict[str, Any], stats: RunStats, console: Console) -> int:
    from loadtests.verdict import check_run  # --fail-on THRESHOLD: load's language (pure: no Locust, no gevent)

    from .loadcmd import junit, threshold_table

    check_run(report, stats, getattr(args, "thresholds", None) or [])
    if args.json_path:
        Path(args.json_path).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if args.junit_path:
        Path(args.junit_path).write_bytes(junit(report, suite="croupier"))
    if args.html_path:
        Path(args.html_path).write_text(render(report), encoding="utf-8")
    if not args.quiet:
        if report.get("thresholds"):
            Console().print(threshold_table(report["thresholds"]))  # before the summary: the verdict stays last
        print_summary(report, Console())
    if report.get("error"):
        console.print(f"[red]croupier:[/] {report['error']}")
    if report.get("interrupted"):
        return EXIT_INTERRUPTED
    return model.exit_code(report["verdict"])


def _write_transactions(path: Path, parts: list[Any]) -> None:
    """JSON lines, one transaction each (:func:`simulator.judge.journal.records`)."""
    with path.open("wb") as f:
        for part in parts:
            for record in part:
                f.write(orjson.dumps(record) + b"\n")


def _run_workers(args: argparse.Namespace, options: RunOptions, console: Console, interrupts: Interrupts,
                 pool: WorkerPool | None = None) -> int:
    """Shard players over processes (one seed, one run id), then merge their reports exactly.

    The workers are in a process group of their own, so a terminal's Ctrl-C reaches them once, from
    here: every SIGINT/SIGTERM this process gets is passed on to each worker (a second one too, which
    skips their settlement), as SIGTERM: a worker still starting up then ends quietly, where a SIGINT
    would be a KeyboardInterrupt in the middle of its imports.  Interrupted, each writes its partial report marked ``interrupted`` and
    the merged report stays so; a worker still running :data:`WORKER_GRACE_S` after the first signal
    is killed, and none outlives this command whatever ends it."""
    n = args.workers
    procs: list[subprocess.Popen[bytes]] = []

    def forward(name: str, count: int) -> None:
        for p in procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        if count == 1 and not args.quiet:
            console.print(f"[yellow]croupier:[/] {name}: stopping the {n} workers (at most {WORKER_GRACE_S:g} s); "
                          "Ctrl-C or SIGTERM again skips their settlement", soft_wrap=True)

    with tempfile.TemporaryDirectory(prefix="croupier-") as tmp:
        stop_listening = interrupts.listen(forward)
        try:
            for k in range(n):
                if interrupts.received:  # interrupted while starting them: start no more
                    break
                argv = [sys.executable, "-m", "simulator", *_passthrough(args), "--run-id", options.run_id,
                        "--shard", f"{k}/{n}", "--partial", str(Path(tmp) / f"{k}.json"), "--quiet",
                        "--workers", "1"]
                if args.transactions_path:
                    argv += ["--transactions", str(Path(tmp) / f"{k}.tx.jsonl")]
                if args.keep_all_evidence:
                    argv.append("--keep-all-evidence")
                if options.evidence_path and not options.keep_all_evidence:
                    argv += ["--evidence", evidence.shard_path(options.evidence_path, (k, n))]
                if pool is not None:
                    argv.append("--metrics-worker")
                procs.append(subprocess.Popen(argv, process_group=0, env=pool.env() if pool is not None else None))
            codes = _wait_workers(procs, interrupts)
            if pool is not None:
                for p in procs:
                    pool.ended(p.pid)
        finally:
            stop_listening()
            for p in procs:  # whatever happened here, no worker is left behind
                if p.poll() is None:
                    p.kill()
                    p.wait()
        interrupted = interrupts.first
        # A worker interrupted on its own (a signal sent to it alone) reported what it had: merged, still 130.
        if interrupted is None and any(c not in (0, EXIT_INTERRUPTED) for c in codes):
            console.print(f"[red]croupier:[/] a worker failed (exit codes {codes})")
            return 2
        paths = [Path(tmp) / f"{k}.json" for k in range(len(procs))]
        parts = [orjson.loads(p.read_bytes()) for p in paths if p.exists()]
        if args.transactions_path:  # the workers' records, one file
            tx_files = [Path(tmp) / f"{k}.tx.jsonl" for k in range(len(procs))]
            Path(args.transactions_path).write_bytes(b"".join(f.read_bytes() for f in tx_files if f.exists()))
    missing = n - len(parts)
    if interrupted is None and missing:
        console.print(f"[red]croupier:[/] {missing} of {n} workers left no report (exit codes {codes})")
        return 2
    stats = RunStats()
    for part in parts:
        stats.merge(RunStats.from_json(part["stats"]))
    reports = [p["report"] for p in parts] or [_empty_report(options)]
    merged = merge_reports(reports, stats, Severity(args.fail_on))
    if interrupted is not None:
        marks = [r["interrupted"] for r in reports if r.get("interrupted")]
        mark: dict[str, Any] = merge_interrupted(marks, interrupted, skipped=len(interrupts.received) > 1) if marks else {
            "signal": interrupted, "after_s": 0.0, "settled": False, "unsettled": 0,
            "note": f"{interrupted} before play started: nothing was sent"}
        if missing:
            mark["note"] += f"; {missing} of {n} workers left no report (stopped before they could write one)"
        merged["interrupted"] = mark
    return _finish(args, merged, stats, console)


def _wait_workers(procs: list[subprocess.Popen[bytes]], interrupts: Interrupts) -> list[int]:
    """Every worker's exit code; once interrupted, a worker still running after :data:`WORKER_GRACE_S`
    is killed (its partial report is then missing, and said so)."""
    while any(p.poll() is None for p in procs):
        if interrupts.first_at is not None and time.monotonic() > interrupts.first_at + WORKER_GRACE_S:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        time.sleep(0.05)
    return [p.wait() for p in procs]


def _empty_report(options: RunOptions) -> dict[str, Any]:
    """The report of a run none of whose workers reported (interrupted as they started)."""
    result = RunResult(options.scenario, options, RunStats(), Ledger(), 0.0, 0, 0,
                       error="interrupted before any worker reported: nothing was checked")
    return result_json(result)


def merge_interrupted(marks: list[dict[str, Any]], signal_name: str | None = None,
                      skipped: bool | None = None) -> dict[str, Any]:
    """The ``interrupted`` entries of several workers as one: the latest signal time, settled only if
    every worker settled, the calls left in doubt added up, one sentence.  ``signal_name``: the signal
    the parent got (default: the first worker's); ``skipped``: whether a second signal skipped the
    settlement (default: as the workers' notes say)."""
    unsettled = sum(int(m.get("unsettled", 0)) for m in marks)
    calls = f"{unsettled} call{'' if unsettled == 1 else 's'}"
    after = max(float(m.get("after_s", 0.0)) for m in marks)
    signal_name = signal_name or str(marks[0].get("signal", "SIGINT"))
    if skipped is None:
        skipped = any("skipped the settlement" in str(m.get("note", "")) for m in marks)
    settled = all(bool(m.get("settled")) for m in marks)
    text = f"{signal_name} after {after:.1f} s, passed on to {len(marks)} workers: play stopped, no new round started"
    if skipped:
        text += f"; a second signal skipped the settlement and the final balance reads: {calls} left in doubt, not judged"
    elif not settled:
        text += f"; the settlement was cut short: {calls} left in doubt, not judged"
    elif unsettled:
        text += f"; settled, {calls} still without a definitive answer (findings)"
    else:
        text += "; every call in doubt was settled and every balance read again"
    return {"signal": signal_name, "after_s": after, "settled": settled, "unsettled": unsettled, "note": text}


def merge_reports(reports: list[dict[str, Any]], stats: RunStats, fail_on: Severity) -> dict[str, Any]:
    """Several shards' reports as one: counts add up, latencies from the merged histograms, one verdict."""
    merged = dict(reports[0])
    elapsed = max(r["elapsed_s"] for r in reports)
    kinds = {k for r in reports for k in r["anomalies"]}
    anomalies = {k: sum(r["anomalies"].get(k, 0) for r in reports) for k in sorted(kinds)}
    coverage = model.merge_coverage(model.coverage_raw(r.get("coverage", [])) for r in reports)
    errors = [r["error"] for r in reports if r.get("error")]
    merged.update(
        elapsed_s=elapsed, players=sum(r["players"] for r in reports), calls=dict(stats.calls),
        results=dict(stats.results), rounds=dict(stats.rounds), faults=dict(stats.faults),
        calls_per_s=round(sum(stats.calls.values()) / elapsed, 1) if elapsed else 0.0,
        latency_ms={op: h.summary() for op, h in sorted(stats.latency.items())},
        anomalies=anomalies, findings_by_severity=model.by_severity(anomalies),
        findings=[f for r in reports for f in r["findings"]], unsettled=sum(r["unsettled"] for r in reports),
        coverage=model.coverage_rows(coverage, fail_on), error=errors[0] if errors else None,
        errors=[e for r in reports for e in r["errors"]], workers=len(reports),
        unseated=sum(r.get("unseated", 0) for r in reports),
        skipped=sorted({s for r in reports for s in r.get("skipped", [])}), series=series.build(stats),
    )
    files = [f for r in reports for f in r.get("evidence", [])]
    if files:
        merged["evidence"] = files
    merged["verdict"] = model.verdict(anomalies, fail_on, merged["error"])
    marks = [r["interrupted"] for r in reports if r.get("interrupted")]
    if marks:
        merged["interrupted"] = merge_interrupted(marks)
    return merged


def _passthrough(args: argparse.Namespace) -> list[str]:
    argv = ["run", args.scenario, "--wallet", args.wallet, "--dialect", args.dialect, "--seed", str(args.seed),
            "--concurrency", str(args.concurrency), "--fail-on", args.fail_on]
    for flag, value in (("--secret", args.secret), ("--admin-url", args.admin_url), ("--admin-token", args.admin_token),
                        ("--players", args.players_file), ("--player-count", args.player_count),
                        ("--duration", args.duration), ("--rounds", args.rounds),
                        ("--settle-timeout", args.settle_timeout)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + flags.client_tls(args, warn=False).argv()
