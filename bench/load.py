"""Wallet calls per second from Locust (one process, then two workers) and from the asyncio runner,
against the same wallet in the same run, with p50/p99 and ratios.

    .venv/bin/python bench/load.py [--duration 10] [--players 64] [--runs 1] [--json PATH]

On 127.0.0.1 only.  ONE reference wallet with the in-memory store (``python -m simulator wallet
serve --memory``, no access log) in its own subprocess serves every target; the load generators
and the wallet share this machine's cores, so every figure is a pair's figure.

One scenario file (written to a temp folder) is played by all three: ``--players`` players,
zero think time, no faults, the default game mix — the same file means the same thing to both
engines.  Targets, in alternating order between runs:

* *locust-1*: ``croupier load SCENARIO --users P --spawn-rate P --run-time D`` (one Locust process);
* *locust-2w*: the same with ``--workers 2`` (a master and two worker processes);
* *runner*: ``croupier run SCENARIO --duration D`` (one asyncio process, concurrency P).

Calls per second are wallet-protocol calls (authenticate, bet, win, rollback, balance; not the
admin API) over each engine's own elapsed time; p50/p99 are of ``bet``, as each engine measures
it (Locust rounds latencies under 100 ms to whole milliseconds; the runner keeps 2% buckets).
Ratios are against the runner of the same run.  Exit codes: 0 measured, 2 something did not start.
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
import time
from pathlib import Path
from typing import Any

from harness import ROOT, Server, StartError, memory_wallet

SECRET = "bench-load-secret"
ADMIN_TOKEN = "bench-load-admin"
TARGETS = ("locust-1", "locust-2w", "runner")


def scenario_file(folder: Path, players: int, duration: float) -> Path:
    path = folder / "bench-load.toml"
    path.write_text(
        "# bench-load: no think time, no faults; played by croupier run and croupier load alike.\n"
        f'name = "bench-load"\n\n[run]\nduration_s = {duration}\nplayers = {players}\n\n'
        "[players]\nthink_time_ms = [0, 0]\n", encoding="utf-8")
    return path


def croupier(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", *argv], check=False, cwd=ROOT, text=True, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=timeout)


def measure(target: str, wallet: Server, scenario: Path, players: int, duration: float, tmp: Path) -> dict[str, Any]:
    common = ["--wallet", f"{wallet.base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN]
    out = tmp / f"{target}-{time.monotonic_ns()}"
    started = time.monotonic()
    if target == "runner":
        proc = croupier("run", str(scenario), *common, "--duration", str(duration), "--concurrency", str(players),
                        "--quiet", "--json", str(out.with_suffix(".json")), timeout=duration * 10 + 120)
        path = out.with_suffix(".json")
    else:
        workers = ["--workers", "2"] if target == "locust-2w" else []
        proc = croupier("load", str(scenario), *common, "--users", str(players), "--spawn-rate", str(players),
                        "--run-time", f"{int(duration)}s", "--report-dir", str(out), "--quiet", *workers,
                        timeout=duration * 10 + 120)
        path = out / "summary.json"
    wall = time.monotonic() - started
    if not path.is_file():
        raise StartError(f"{target} wrote no report (exit {proc.returncode}): {proc.stderr[-2000:]}")
    rep = json.loads(path.read_text(encoding="utf-8"))
    calls = sum(rep["calls"].values())
    bet = rep["latency_ms"].get("bet", {})
    return {
        "target": target, "exit": proc.returncode, "verdict": rep["verdict"], "calls": calls,
        "elapsed_s": rep["elapsed_s"], "wall_s": round(wall, 2), "calls_per_s": round(calls / rep["elapsed_s"], 1),
        "bet_p50_ms": bet.get("p50"), "bet_p99_ms": bet.get("p99"), "players": rep["players"],
        "broke": rep["rounds"].get("player_broke", 0),
        "anomalies": sum(rep["anomalies"].values()),
    }


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per target (default: %(default)s)")
    p.add_argument("--players", type=int, default=64, help="players = Locust users = runner concurrency")
    p.add_argument("--runs", type=int, default=1, help="with more than one, medians are reported")
    p.add_argument("--json", dest="json_path")
    args = p.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    runs: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="croupier-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        scenario = scenario_file(tmp, args.players, args.duration)
        try:
            with memory_wallet(SECRET, ADMIN_TOKEN, tmp / "wallet.log") as wallet:
                for n in range(args.runs):
                    order = TARGETS if n % 2 == 0 else tuple(reversed(TARGETS))
                    row = []
                    for target in order:
                        console.print(f"run {n + 1}/{args.runs}: {target} …", style="dim")
                        row.append(measure(target, wallet, scenario, args.players, args.duration, tmp))
                    runs.append(sorted(row, key=lambda r: TARGETS.index(r["target"])))
        except StartError as exc:
            console.print(f"[red]bench:[/] {exc}")
            return 2

    def med(target: str, key: str) -> float:
        values = [r[key] for run in runs for r in run if r["target"] == target and r[key] is not None]
        return float(statistics.median(values)) if values else float("nan")

    runner_rate = med("runner", "calls_per_s")
    t = Table(title=f"wallet calls/s, {args.players} players, no think time, {args.duration:g} s per target "
                    f"({args.runs} run{'s' if args.runs > 1 else ''}{', medians' if args.runs > 1 else ''})",
              title_justify="left")
    for col in ("engine", "calls/s", "× runner", "bet p50 ms", "bet p99 ms", "calls", "wall s", "verdict"):
        t.add_column(col, justify="left" if col in ("engine", "verdict") else "right", no_wrap=True)
    summary = {}
    for target in TARGETS:
        rate = med(target, "calls_per_s")
        summary[target] = {"calls_per_s": rate, "ratio_to_runner": round(rate / runner_rate, 3),
                           "bet_p50_ms": med(target, "bet_p50_ms"), "bet_p99_ms": med(target, "bet_p99_ms")}
        last = [r for run in runs for r in run if r["target"] == target][-1]
        t.add_row(target, f"{rate:,.0f}", f"{rate / runner_rate:.2f}", f"{med(target, 'bet_p50_ms'):.2f}",
                  f"{med(target, 'bet_p99_ms'):.2f}", f"{med(target, 'calls'):,.0f}", f"{med(target, 'wall_s'):.1f}",
                  f"{last['verdict']}" + (f" ({last['anomalies']} anomalies)" if last["anomalies"] else ""))
    console.print(t)
    console.print("Locust's latencies are whole milliseconds under 100 ms; the runner's are 2% buckets. "
                  "The wallet shares the machine's cores with the load generators.")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"machine": machine(), "args": vars(args), "runs": runs,
                                                    "summary": summary}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
