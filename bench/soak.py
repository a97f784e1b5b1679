"""Soak: does one ``croupier run`` process stay in constant memory at full rate?

A ``croupier run`` (the ``soak`` scenario's faults, think time 0: as many calls as one process
sends) against the reference wallet (memory store, another process, 127.0.0.1), its RSS sampled
from outside (psutil) every few seconds.  Twice in one bench, one after the other against the same
wallet: as it runs by default (closed rounds leave memory for the evidence file), and the same run
with ``--keep-all-evidence`` (every transaction kept, as before) as the baseline that shows the
growth.  Each gets a least-squares slope of RSS per minute after the warm-up and a verdict:
``flat`` below ``--flat-mib-per-min``.

``--idle`` measures instead what one seated, idle player costs when ``--players`` of them sit in a
think pause (RSS and tracemalloc per player, and where the live bytes are), with
:func:`bench/runner.py <runner.memory_child>`'s measurement.

    .venv/bin/python bench/soak.py                   # 10 minutes each (the issue's row), then the table
    .venv/bin/python bench/soak.py --minutes 1       # quick mode
    .venv/bin/python bench/soak.py --players 10000 --idle
    .venv/bin/python bench/soak.py --minutes 2 --series-points 30   # a short soak that shows the series' bound
    .venv/bin/python bench/soak.py --stats-hours 8   # the statistics alone, 8 simulated hours: bounded vs not

``--series-points N`` runs ``croupier run`` with :data:`simulator.judge.stats.MAX_POINTS` lowered to N
(3,600 by default: a run shorter than an hour never coarsens, so a quick soak would not show it).
``--stats-hours H`` needs no wallet: it feeds :class:`~simulator.judge.stats.RunStats` H simulated
hours of calls in this process and prints its live bytes (tracemalloc) hour by hour, bounded and not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from harness import ROOT, StartError, busy_s, memory_wallet

SECRET = "bench-runner-secret"
ADMIN_TOKEN = "bench-runner-admin"
"""bench/runner.py's, whose idle-player measurement ``--idle`` reuses."""
FLAT_MIB_PER_MIN = 2.0
"""The verdict's threshold: at ~2,000 calls/s a ledger keeping ~300 bytes per call grows ~35 MiB a
minute; allocator noise and the per-second series stay well under 2."""

SCENARIO = """\
# the soak scenario at full rate: its faults, think time 0 (written by bench/soak.py)
name = "soak-full-rate"

[run]
duration_s = {duration}
players = {players}
settle_timeout_s = 30

[players]
think_time_ms = [0, 0]

[faults]
duplicate = 0.01
concurrent_duplicate = 0.005
timeout = 0.005
lost_response = 0.005
reorder = 0.005
invalid = 0.005
late_duplicate = 0.005
late_duplicate_min_delay_s = 2
late_duplicate_min_calls = 500
"""


@dataclass
class Soak:
    mode: str
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    """(seconds since start, RSS MiB, CPU seconds of the run process)."""
    report: dict[str, Any] = field(default_factory=dict)
    evidence_bytes: int = 0
    machine_busy: float = 0.0

    def slope(self, warmup_s: float) -> float | None:
        """MiB per minute after the warm-up (least squares)."""
        late = [(t, r) for t, r, _ in self.samples if t >= warmup_s]
        if len(late) < 3:
            return None
        fit = statistics.linear_regression([t for t, _ in late], [r for _, r in late])
        return fit.slope * 60


WITH_POINTS = ("import runpy, sys; import simulator.judge.stats as s; s.MAX_POINTS = int(sys.argv.pop(1)); "
               "runpy.run_module('simulator', run_name='__main__')")
"""``python -m simulator`` with the series' bound lowered (``--series-points``)."""


def soak(mode: str, base: str, minutes: float, players: int, every_s: float, tmp: Path,
         series_points: int | None = None) -> Soak:
    duration = minutes * 60
    scenario = tmp / "soak-full-rate.toml"
    scenario.write_text(SCENARIO.format(duration=duration, players=players))
    report = tmp / f"{mode}.json"
    python = [sys.executable, "-m", "simulator"] if series_points is None else \
        [sys.executable, "-c", WITH_POINTS, str(series_points)]
    argv = [*python, "run", str(scenario), "--wallet", f"{base}/wallet", "--secret", SECRET,
            "--admin-token", ADMIN_TOKEN, "--json", str(report), "--quiet", "--concurrency", str(players)]
    if mode == "keep-all":
        argv.append("--keep-all-evidence")
    out = Soak(mode)
    busy0 = busy_s()
    t0 = time.monotonic()
    with open(tmp / f"{mode}.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log)
    ps = psutil.Process(proc.pid)
    next_at = t0
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now >= next_at:
                try:
                    info, cpu = ps.memory_info(), ps.cpu_times()
                except psutil.NoSuchProcess:
                    break
                out.samples.append((round(now - t0, 1), info.rss / 2**20, cpu.user + cpu.system))
                next_at += every_s
            time.sleep(min(0.2, max(0.0, next_at - time.monotonic())))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    out.machine_busy = (busy_s() - busy0) / max(1e-9, time.monotonic() - t0) / (os.cpu_count() or 1)
    if not report.exists():
        raise StartError(f"croupier run ({mode}) wrote no report: {(tmp / f'{mode}.log').read_text()[-1500:]}")
    out.report = json.loads(report.read_text())
    out.evidence_bytes = sum(Path(p).stat().st_size for p in out.report.get("evidence", []) if Path(p).exists())
    return out


def table(runs: list[Soak], warmup_s: float, minutes: float, flat: float) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    t = Table(title="RSS of the croupier run process (MiB), sampled from outside")
    t.add_column("t (s)", justify="right")
    for s in runs:
        t.add_column(s.mode, justify="right")
    rows = max(len(s.samples) for s in runs)
    step = max(1, rows // 24)
    for i in range(0, rows, step):
        cells = [f"{runs[0].samples[i][0]:.0f}" if i < len(runs[0].samples) else ""]
        cells += [f"{s.samples[i][1]:.1f}" if i < len(s.samples) else "" for s in runs]
        t.add_row(*cells)
    console.print(t)
    verdicts: dict[str, Any] = {}
    v = Table(title=f"verdict: flat when RSS grows < {flat:g} MiB/min after {warmup_s:.0f} s of warm-up")
    for col in ("mode", "calls", "calls/s", "µs CPU/call", "RSS after warm-up → end (MiB)", "MiB/min",
                "evidence file (MiB)", "verdict", "findings", "machine busy"):
        v.add_column(col)
    for s in runs:
        calls = sum(s.report.get("calls", {}).values())
        slope = s.slope(warmup_s)
        after = [r for tt, r, _ in s.samples if tt >= warmup_s]
        cpu = s.samples[-1][2] if s.samples else 0.0
        verdict = "?" if slope is None else ("flat" if slope < flat else "grows")
        verdicts[s.mode] = {"calls": calls, "calls_per_s": s.report.get("calls_per_s"), "slope_mib_per_min": slope,
                            "rss_mib": [round(r, 1) for _, r, _ in s.samples], "t_s": [tt for tt, _, _ in s.samples],
                            "verdict": verdict, "run_verdict": s.report.get("verdict"),
                            "anomalies": sum(s.report.get("anomalies", {}).values()),
                            "evidence_bytes": s.evidence_bytes, "machine_busy": s.machine_busy}
        v.add_row(s.mode, f"{calls:,}", f"{s.report.get('calls_per_s', 0):,.0f}",
                  f"{1e6 * cpu / calls:.0f}" if calls else "-",
                  f"{after[0]:.1f} → {after[-1]:.1f}" if after else "-",
                  "-" if slope is None else f"{slope:+.2f}", f"{s.evidence_bytes / 2**20:.1f}", verdict,
                  f"{s.report.get('verdict')} ({sum(s.report.get('anomalies', {}).values())})",
                  f"{100 * s.machine_busy:.0f} %")
    console.print(v)
    return verdicts


def stats_memory(hours: float, calls_per_s: int) -> dict[str, Any]:
    """Live bytes of a RunStats fed ``hours`` simulated hours of ``calls_per_s`` calls a second (five
    operations, log-normal latencies around 2 ms, a refusal in 50), at each hour: bounded (the default
    :data:`~simulator.judge.stats.MAX_POINTS`) and unbounded (every second kept, as before)."""
    import random
    import tracemalloc

    from simulator.judge.stats import RunStats

    ops = ("bet", "win", "balance", "rollback", "authenticate")
    out: dict[str, Any] = {}
    for mode, points in (("bounded", None), ("unbounded", 10**12)):
        rng = random.Random(17)
        draws = [(ops[rng.randrange(5)], "ok" if rng.random() > 0.02 else "INSUFFICIENT_FUNDS",
                  rng.lognormvariate(0.7, 0.8)) for _ in range(65_536)]
        tracemalloc.start()
        stats = RunStats() if points is None else RunStats(max_points=points)
        base = tracemalloc.get_traced_memory()[0]
        rows, i, cpu0 = [], 0, time.process_time()
        for second in range(int(hours * 3600)):
            for _ in range(calls_per_s):
                op, result, ms = draws[i & 0xFFFF]
                stats.record(op, result, ms, second)
                i += 1
            if (second + 1) % 3600 == 0:
                rows.append({"hour": (second + 1) // 3600, "mib": (tracemalloc.get_traced_memory()[0] - base) / 2**20,
                             "buckets": stats.buckets(), "width_s": stats.width})
        tracemalloc.stop()
        out[mode] = {"rows": rows, "cpu_us_per_call": 1e6 * (time.process_time() - cpu0) / max(1, i)}
        print(f"{mode}: " + ", ".join(f"{r['hour']} h {r['mib']:.1f} MiB ({r['buckets']} × {r['width_s']} s)"
                                      for r in rows) + f"; {out[mode]['cpu_us_per_call']:.2f} µs CPU per call (traced)")
    return out


def idle(players: int, think_s: float, hold_s: float, timeout_s: float, trace: bool, base: str) -> dict[str, Any]:
    """What one seated, idle player costs in this process (bench/runner.py's measurement)."""
    import runner as bench_runner

    think = (int(think_s * 1000), int(think_s * 1000))
    return asyncio.run(bench_runner.memory_child(base, players, think, hold_s, 256, trace, timeout_s))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="play time of each run (default 10)")
    ap.add_argument("--players", type=int, default=None,
                    help="players: concurrent in the soak (default 64), seated in --idle (default 10000)")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds left out of the slope (default: a fifth)")
    ap.add_argument("--flat-mib-per-min", type=float, default=FLAT_MIB_PER_MIN)
    ap.add_argument("--no-baseline", action="store_true", help="skip the --keep-all-evidence run")
    ap.add_argument("--idle", action="store_true", help="measure KiB per idle player instead of a soak")
    ap.add_argument("--tracemalloc", action="store_true", help="--idle: also the live bytes and where they are")
    ap.add_argument("--series-points", type=int, default=None, metavar="N",
                    help="run croupier with the series' bound lowered to N buckets (default: its own, 3,600)")
    ap.add_argument("--stats-hours", type=float, default=None, metavar="H",
                    help="measure the statistics alone over H simulated hours, bounded and not (no wallet)")
    ap.add_argument("--stats-calls-per-s", type=int, default=300, help="--stats-hours: calls a second (default 300)")
    ap.add_argument("--json", dest="json_path", help="write every figure as JSON to PATH")
    args = ap.parse_args()
    if args.stats_hours is not None:
        stats_out = stats_memory(args.stats_hours, args.stats_calls_per_s)
        if args.json_path:
            Path(args.json_path).write_text(json.dumps(stats_out, indent=2))
        return 0
    with tempfile.TemporaryDirectory(prefix="croupier-soak-") as tmpdir:
        tmp = Path(tmpdir)
        wallet = memory_wallet(SECRET, ADMIN_TOKEN, tmp / "wallet.log")
        with wallet:
            if args.idle:
                out: dict[str, Any] = idle(args.players or 10_000, 3600.0, 5.0, 120.0, args.tracemalloc, wallet.base)
                print(json.dumps({k: out[k] for k in ("players", "seated", "rss_before_kib", "rss_seated_kib",
                                                      "kib_per_player", "traced_kib_per_player") if k in out}))
                for line in out.get("top_lines", [])[:12]:
                    print(f"  {line['bytes_per_player']:8.0f} B/player  {line['where']}")
            else:
                players = args.players or 64
                runs = [soak("evict", wallet.base, args.minutes, players, args.every, tmp, args.series_points)]
                if not args.no_baseline:
                    runs.append(soak("keep-all", wallet.base, args.minutes, players, args.every, tmp,
                                     args.series_points))
                warmup = args.warmup if args.warmup is not None else args.minutes * 60 / 5
                out = table(runs, warmup, args.minutes, args.flat_mib_per_min)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StartError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        sys.exit(2)
