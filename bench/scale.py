"""Wallet calls per second as Locust workers are added (1, 2, 3, 4 on this machine), until the wallet saturates,
and which resource saturated: the wallet's CPU, the workers', or the machine's cores.

    .venv/bin/python bench/scale.py [--workers 1,2,3,4] [--duration 15] [--users 64] [--store sqlite|memory]
                                    [--runs 1] [--json PATH]

On 127.0.0.1 only.  ONE reference wallet (``croupier wallet serve``, SQLite with its default flags by default,
``--store memory`` for the in-memory store) serves every point; each point is ``croupier load SCENARIO --workers
N`` (Locust's own master/worker mode: one master, N worker processes, the same processes a multi-host run
starts with ``croupier load-worker``), ``--users`` users in all, no think time, no faults (bench/load.py's
scenario).  calls/s are wallet-protocol calls over Locust's elapsed time, from croupier's report; the verdict is
the report's (the money was still judged right at that rate).

While a point runs, every process's CPU time is read twice a second (psutil, per process tree): the wallet,
the Locust master, the workers, and the machine as a whole (the rest is other work on a shared machine).
Over the steady part of the run (after the ramp, before the settlement) each is a share of a core; a
process at >= 90 % of one core (the wallet is one asyncio process; each worker one gevent process) or a
machine at >= 90 % of its cores is *saturated*: adding workers cannot raise the rate past that resource.
CPU µs per call (wallet, workers) say what a quieter or bigger machine would give: the wallet's ceiling
is about 1e6 / its µs per call.  Exit codes: 0 measured, 2 something did not start.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from harness import ROOT, Server, StartError, busy_s, memory_wallet, scenario_file
from load import ADMIN_TOKEN, SECRET

SATURATED = 0.9
"""A process at this share of one core, or the machine at this share of all its cores, is saturated."""
ROLES = ("wallet", "master", "workers")


def sqlite_wallet(db: Path, log_path: Path) -> Server:
    """``croupier wallet serve --db FILE``: the reference wallet as a user starts it (default flags)."""
    argv = [sys.executable, "-m", "simulator", "wallet", "serve", "--db", str(db), "--host", "127.0.0.1",
            "--port", "{port}", "--secret", SECRET, "--admin-token", ADMIN_TOKEN, "--shutdown-timeout", "2"]
    return Server("wallet", argv, log_path)


def tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds (user + system) of a process and its children so far; 0 for one that has gone."""
    total = 0.0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


@dataclass
class Sampler:
    """Every process's CPU time, twice a second, by role: the wallet, Locust's master, its workers."""

    wallet: psutil.Process
    load: psutil.Process
    samples: list[tuple[float, float, dict[str, float], int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def roles(self) -> tuple[dict[str, float], int]:
        cpu = {"wallet": tree_cpu(self.wallet), "master": 0.0, "workers": 0.0}
        workers = 0
        try:
            children = self.load.children()
        except psutil.Error:
            children = []
        try:
            cpu["master"] += sum(self.load.cpu_times()[:2])  # croupier load itself: the progress line
        except psutil.Error:
            pass
        for child in children:
            try:
                worker = "--worker" in child.cmdline()
            except psutil.Error:
                continue
            cpu["workers" if worker else "master"] += tree_cpu(child)
            workers += worker
        return cpu, workers

    def run(self) -> None:
        while not self.stop.wait(0.5):
            cpu, workers = self.roles()
            self.samples.append((time.monotonic(), busy_s(), cpu, workers))

    def steady(self, workers: int, skip_s: float, length_s: float) -> dict[str, float]:
        """Shares of a core over the steady window: from ``skip_s`` after every worker was there, for
        ``length_s`` (the run's own length less its ramp and a margin)."""
        full = [s for s in self.samples if s[3] >= workers]
        if len(full) < 3:
            return {}
        t0 = full[0][0] + skip_s
        window = [s for s in full if t0 <= s[0] <= t0 + length_s]
        if len(window) < 2:
            return {}
        (ta, ba, ca, _), (tb, bb, cb, _) = window[0], window[-1]
        dt = tb - ta
        shares = {role: (cb[role] - ca[role]) / dt for role in ROLES}
        shares["machine"] = (bb - ba) / dt
        shares["others"] = max(0.0, shares["machine"] - sum(shares[r] for r in ROLES))
        shares["window_s"] = dt
        return shares


def measure(wallet: Server, scenario: Path, workers: int, users: int, duration: int, tmp: Path) -> dict[str, Any]:
    out = tmp / f"w{workers}-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "simulator", "load", str(scenario), "--wallet", f"{wallet.base}/wallet",
            "--secret", SECRET, "--admin-token", ADMIN_TOKEN, "--users", str(users), "--spawn-rate", str(users),
            "--run-time", f"{duration}s", "--workers", str(workers), "--report-dir", str(out), "--quiet"]
    proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    sampler = Sampler(psutil.Process(wallet.pid), psutil.Process(proc.pid))
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    try:
        _, err = proc.communicate(timeout=duration * 10 + 120)
    finally:
        sampler.stop.set()
        thread.join(5)
    path = out / "summary.json"
    if not path.is_file():
        raise StartError(f"--workers {workers} wrote no report (exit {proc.returncode}): {err.decode()[-2000:]}")
    rep = json.loads(path.read_text(encoding="utf-8"))
    calls = sum(rep["calls"].values())
    rate = calls / rep["elapsed_s"]
    # The steady part: 2 s after the last worker joined (the users spawn within a second), up to 1.5 s before
    # the run time ends (then the settlement's few calls).
    shares = sampler.steady(workers, skip_s=2.0, length_s=max(1.0, duration - 3.5))
    bet = rep["latency_ms"].get("bet", {})
    return {"workers": workers, "calls": calls, "elapsed_s": rep["elapsed_s"], "calls_per_s": round(rate, 1),
            "bet_p50_ms": bet.get("p50"), "bet_p99_ms": bet.get("p99"), "verdict": rep["verdict"],
            "anomalies": sum(rep["anomalies"].values()), "exit": proc.returncode,
            "cpu": {k: round(v, 3) for k, v in shares.items()},
            "wallet_us_per_call": round(shares["wallet"] / rate * 1e6, 1) if shares and rate else None,
            "workers_us_per_call": round(shares["workers"] / rate * 1e6, 1) if shares and rate else None,
            "saturated": saturated(shares, workers)}


def saturated(shares: dict[str, float], workers: int) -> list[str]:
    """The resources at their limit: the wallet (one process), the workers (each one process), the machine."""
    if not shares:
        return []
    cores = psutil.cpu_count() or 1
    found = []
    if shares["wallet"] >= SATURATED:
        found.append("wallet")
    if shares["workers"] / workers >= SATURATED:
        found.append("workers")
    if shares["machine"] >= SATURATED * cores:
        found.append(f"machine ({cores} cores)")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="1,2,3,4", help="worker counts to measure (default: %(default)s)")
    p.add_argument("--duration", type=int, default=15, help="seconds per point (default: %(default)s)")
    p.add_argument("--users", type=int, default=64, help="Locust users in all, spread over the workers "
                                                         "(default: %(default)s)")
    p.add_argument("--store", choices=("sqlite", "memory"), default="sqlite",
                   help="the reference wallet's store (default: %(default)s, with its default flags)")
    p.add_argument("--runs", type=int, default=1, help="with more than one, medians (default: %(default)s)")
    p.add_argument("--json", dest="json_path", help="write the figures here as JSON")
    args = p.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    if not counts or min(counts) < 1 or args.duration < 5:
        p.error("--workers takes positive counts, --duration at least 5")
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))  # the table's 12 columns, even in a pipe
    points: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="croupier-bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        scenario = scenario_file(tmp, args.users, float(args.duration), "bench-scale")
        wallet = (memory_wallet(SECRET, ADMIN_TOKEN, tmp / "wallet.log") if args.store == "memory"
                  else sqlite_wallet(tmp / "wallet.db", tmp / "wallet.log"))
        try:
            with wallet:
                for run in range(args.runs):
                    for n in counts if run % 2 == 0 else reversed(counts):
                        console.print(f"run {run + 1}/{args.runs}: {n} worker{'s' if n > 1 else ''} …", style="dim")
                        points.append(measure(wallet, scenario, n, args.users, args.duration, tmp))
        except StartError as exc:
            console.print(f"[red]bench:[/] {exc}")
            return 2
    rows = [median_point([pt for pt in points if pt["workers"] == n]) for n in counts]
    cores = psutil.cpu_count()
    t = Table(title=f"croupier load --workers N: wallet calls/s, {args.users} users, no think time, "
                    f"{args.duration} s per point, {args.store} wallet, {cores} cores"
                    + (f" ({args.runs} runs, medians)" if args.runs > 1 else ""), title_justify="left")
    for col in ("workers", "calls/s", "× 1 worker", "bet p50/p99 ms", "wallet", "workers", "master", "others",
                "machine", "wallet µs/call", "saturated", "verdict"):
        t.add_column(col, justify="left" if col in ("saturated", "verdict") else "right", no_wrap=True)
    base = rows[0]["calls_per_s"]
    for r in rows:
        c = r["cpu"]
        t.add_row(str(r["workers"]), f"{r['calls_per_s']:,.0f}", f"{r['calls_per_s'] / base:.2f}",
                  f"{r['bet_p50_ms']:.0f} / {r['bet_p99_ms']:.0f}", f"{c.get('wallet', 0):.2f}",
                  f"{c.get('workers', 0):.2f}", f"{c.get('master', 0):.2f}", f"{c.get('others', 0):.2f}",
                  f"{c.get('machine', 0):.2f} / {cores}", f"{r['wallet_us_per_call'] or 0:,.0f}",
                  ", ".join(r["saturated"]) or "-",
                  r["verdict"] + (f" ({r['anomalies']} anomalies)" if r["anomalies"] else ""))
    console.print(t)
    console.print("wallet, workers, master, others, machine: shares of a core over each point's steady window "
                  "(psutil, per process tree); 'others' is the rest of the machine's busy time (other work on a "
                  "shared machine). Saturated: a process at "
                  f">= {SATURATED:.0%} of one core, or the machine at >= {SATURATED:.0%} of its cores.")
    caps = ceilings(rows, cores or 1)
    if caps:
        console.print(f"CPU per call (medians over the points): wallet {caps['wallet_us_per_call']:.0f} µs, workers "
                      f"{caps['workers_us_per_call']:.0f} µs. So, with nothing else running: the wallet's one core "
                      f"caps it near {caps['wallet']:,.0f} calls/s; this machine's {cores} cores, shared by the "
                      f"wallet and the workers, near {caps['machine']:,.0f} calls/s: "
                      + ("the wallet saturates first." if caps["wallet"] <= caps["machine"] else
                         "the machine's cores run out before the wallet does; more workers need more machines."))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}, "store": args.store, "users": args.users,
                                                    "duration_s": args.duration, "runs": args.runs, "points": rows,
                                                    "ceilings": caps, "all_points": points}, indent=2),
                                        encoding="utf-8")
    return 0 if all(r["verdict"] == "pass" for r in rows) else 1


def ceilings(rows: list[dict[str, Any]], cores: int) -> dict[str, float]:
    """What the CPU per call says, free of the other work on a shared machine: the wallet's ceiling (one core)
    and the machine's (every core shared by the wallet, the workers and the master)."""
    usable = [r for r in rows if r["wallet_us_per_call"] and r["workers_us_per_call"]]
    if not usable:
        return {}
    wallet = statistics.median(r["wallet_us_per_call"] for r in usable)
    workers = statistics.median(r["workers_us_per_call"] for r in usable)
    master = statistics.median(r["cpu"]["master"] / r["calls_per_s"] * 1e6 for r in usable)
    return {"wallet_us_per_call": round(wallet, 1), "workers_us_per_call": round(workers, 1),
            "master_us_per_call": round(master, 1),
            "wallet": round(1e6 / wallet), "machine": round(cores * 1e6 / (wallet + workers + master))}


def median_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose calls/s is the median of the point's runs (its CPU shares and verdict with it)."""
    ranked = sorted(points, key=lambda pt: pt["calls_per_s"])
    chosen = dict(ranked[len(ranked) // 2])
    chosen["calls_per_s_runs"] = [pt["calls_per_s"] for pt in points]
    chosen["calls_per_s_median"] = statistics.median(chosen["calls_per_s_runs"])
    return chosen


if __name__ == "__main__":
    sys.exit(main())
