"""Client CPU per wallet call of croupier's Locust users next to a bare Locust ``FastHttpUser`` sending
pre-signed bets, and of ``croupier run``, all against the same wallet in the same run.

    .venv/bin/python bench/load.py [--duration 10] [--players 64] [--runs 1] [--targets LIST] [--json PATH]

On 127.0.0.1 only.  ONE reference wallet with the in-memory store (``python -m simulator wallet
serve --memory``, no access log) in its own subprocess serves every target.  Targets, in
alternating order between runs:

* *locust-bare*: the baseline, ``locust -f bench/locust_bare.py --headless`` (one process): a bare
  ``FastHttpUser`` per player POSTing canonical bets built and HMAC-signed before the run
  (``harness.write_pool``, the same bodies wrk sends in bench/wallet.py), each once;
* *locust-1*: ``croupier load SCENARIO --users P --spawn-rate P --run-time D`` (one Locust process):
  croupier's ``WalletPlayer`` users playing the scenario's game mix, with the ledger and every rule;
* *locust-2w*: the same with ``--workers 2`` (a master and two worker processes);
* *runner*: ``croupier run SCENARIO --duration D`` (one process, concurrency P).

One scenario file serves the croupier targets: ``--players`` players, zero think time, no faults,
the default game mix, EUR.  Each target runs twice, 3 s and 3 s + ``--duration``, each a process
of its own, and its CPU (with its children's: ``wait4``) is taken at its end.  Every fixed cost —
start-up, imports, provisioning, the end of a run — is paid by both runs alike, so
**client CPU µs per call = ΔCPU ÷ Δcalls** and calls/s = Δcalls ÷ Δseconds played.  Calls are
wallet-protocol calls (croupier: authenticate, bet, win, rollback, balance; not the admin API).
Exit codes: 0 measured, 2 something did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import harness
from harness import ROOT, ChildRun, PerCall, Server, StartError, memory_wallet

SECRET = "bench-load-secret"
ADMIN_TOKEN = "bench-load-admin"
GAME_ID = "bench-slot"
CURRENCY = "EUR"
BALANCE = 10**15
BET_AMOUNT = 100
TARGETS = ("locust-bare", "locust-1", "locust-2w", "runner")
SHORT_S = 3
POOL_RATE = 20_000  # pre-signed bets per second of the long run (a bare Locust process did ~8–9k/s here)
AIM_CPU_RATIO = 1.3
LABELS = {"locust-bare": "bare Locust FastHttpUser, pre-signed bets", "locust-1": "`croupier load`, 1 process",
          "locust-2w": "`croupier load --workers 2` (3 processes)", "runner": "`croupier run`, 1 process"}


def croupier_argv(target: str, wallet: Server, scenario: Path, players: int, seconds: int, out: Path) -> list[str]:
    common = ["--wallet", f"{wallet.base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN]
    if target == "runner":
        return [sys.executable, "-m", "simulator", "run", str(scenario), *common, "--duration", str(seconds),
                "--player-count", str(players), "--concurrency", str(players), "--quiet", "--json", str(out)]
    workers = ["--workers", "2"] if target == "locust-2w" else []
    return [sys.executable, "-m", "simulator", "load", str(scenario), *common, "--users", str(players),
            "--spawn-rate", str(players), "--run-time", f"{seconds}s", "--report-dir", str(out), "--quiet", *workers]


def one(target: str, wallet: Server, scenario: Path, players: list[tuple[str, str]], n_players: int, seconds: int,
        n_pool: int, tmp: Path, code: Path) -> tuple[ChildRun, int, float, dict[str, Any]]:
    """One run of ``target`` for ``seconds``: the child's accounting, calls, seconds played, notes."""
    tag = secrets.token_hex(4)
    log = tmp / f"{target}-{tag}.log"
    if target == "locust-bare":
        pool, out = tmp / f"pool-{tag}.txt", tmp / f"bare-{tag}.json"
        # The same number of bets for both lengths: loading them is a fixed cost that cancels.
        harness.write_pool(pool, tag, 0, n_pool, players, secret=SECRET, game_id=GAME_ID, currency=CURRENCY,
                           amount=BET_AMOUNT)
        child = harness.run_child(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locust_bare.py"), "--headless",
             "-u", str(n_players), "-r", str(n_players), "-t", f"{seconds}s", "--host", wallet.base,
             "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"],
            wallet.pid, log, timeout=seconds * 10 + 120,
            env={"CROUPIER_BENCH_POOL": str(pool), "CROUPIER_BENCH_OUT": str(out)})
        pool.unlink()
        if not out.is_file():
            raise StartError(f"locust-bare wrote nothing (exit {child.rc}): {child.out[-1500:]}")
        got = json.loads(out.read_text(encoding="utf-8"))
        if got["ran_dry"]:
            raise StartError(f"locust-bare ran out of pre-signed bets ({n_pool}): raise POOL_RATE")
        return child, int(got["calls"]), float(got["play_s"]), {"failures": got["failures"]}
    out = tmp / f"{target}-{tag}"
    child = harness.run_child(croupier_argv(target, wallet, scenario, n_players, seconds, out), wallet.pid, log,
                              timeout=seconds * 10 + 120, code=code)
    path = out if target == "runner" else out / "summary.json"
    if not path.is_file():
        raise StartError(f"{target} wrote no report (exit {child.rc}): {child.out[-1500:]}")
    rep = json.loads(path.read_text(encoding="utf-8"))
    if rep["verdict"] != "pass":
        raise StartError(f"{target} ended {rep['verdict']!r}, not pass: {path.read_text()[:1500]}")
    bet = rep["latency_ms"].get("bet", {})
    return child, sum(rep["calls"].values()), float(rep["elapsed_s"]), {
        "verdict": rep["verdict"], "calls": rep["calls"], "bet_p50_ms": bet.get("p50"), "bet_p99_ms": bet.get("p99")}


def measure(target: str, wallet: Server, scenario: Path, players: list[tuple[str, str]], args: argparse.Namespace,
            tmp: Path) -> tuple[PerCall, dict[str, Any]]:
    n_pool = POOL_RATE * (SHORT_S + int(args.duration))
    (cs, ns, ps, _), (cl, nl, pl, notes) = (
        one(target, wallet, scenario, players, args.players, s, n_pool, tmp,
            Path(args.code).resolve() if args.code else ROOT) for s in (SHORT_S, SHORT_S + int(args.duration)))
    return PerCall.of(cs, ns, ps, cl, nl, pl, os.cpu_count() or 1), notes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10, help="seconds of the long run beyond the short one's 3 "
                                                            "(default: %(default)s)")
    p.add_argument("--players", type=int, default=64, help="players = Locust users = runner concurrency")
    p.add_argument("--runs", type=int, default=1, help="with more than one, medians are reported")
    p.add_argument("--targets", default=",".join(TARGETS), help=f"from {','.join(TARGETS)} (locust-bare is always run)")
    p.add_argument("--code", metavar="DIR",
                   help="measure the croupier targets of another checkout (e.g. `git archive COMMIT | tar -x -C DIR`: "
                        "a before for an after); the wallet and the bare Locust user stay this checkout's")
    p.add_argument("--json", dest="json_path")
    args = p.parse_args(argv)
    targets = ["locust-bare", *[t for t in args.targets.split(",") if t in TARGETS and t != "locust-bare"]]
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="croupier-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        scenario = harness.scenario_file(tmp, args.players, SHORT_S + args.duration, "bench-load")
        try:
            with memory_wallet(SECRET, ADMIN_TOKEN, tmp / "wallet.log") as wallet:
                players = asyncio.run(harness.provision(
                    wallet.base, args.players, f"bare-{secrets.token_hex(3)}", secret=SECRET, admin_token=ADMIN_TOKEN,
                    currency=CURRENCY, balance=BALANCE, game_id=GAME_ID))
                for n in range(args.runs):
                    order = targets if n % 2 == 0 else list(reversed(targets))
                    row: dict[str, Any] = {}
                    for target in order:
                        console.print(f"run {n + 1}/{args.runs}: {target} ({SHORT_S} s and {SHORT_S + args.duration} s) …",
                                      style="dim")
                        per, notes = measure(target, wallet, scenario, players, args, tmp)
                        row[target] = {**asdict(per), "notes": notes}
                        console.print(f"  {per.cpu_us_per_call:.0f} µs of client CPU per call, {per.calls_per_s:,.0f} "
                                      f"calls/s, client {per.client_pct:.0f}%, wallet {per.wallet_pct:.0f}%, "
                                      f"other {per.other_pct:.0f}%", style="dim")
                    runs.append(row)
        except StartError as exc:
            console.print(f"[red]bench:[/] {exc}")
            return 2

    med = statistics.median
    t = Table(title=f"client CPU per wallet call, {args.players} players, no think time, by difference of a {SHORT_S} s "
                    f"and a {SHORT_S + args.duration} s run ({args.runs} run{'s' if args.runs > 1 else ''}"
                    f"{', medians' if args.runs > 1 else ''})", title_justify="left")
    for col in ("client", "client CPU µs/call", "× bare Locust", "calls/s", "client %", "wallet %", "other %",
                "saturated"):
        t.add_column(col, justify="left" if col in ("client", "saturated") else "right", no_wrap=True)
    summary: dict[str, Any] = {}
    for target in targets:
        rs = [r[target] for r in runs]
        row = {k: med(r[k] for r in rs) for k in ("cpu_us_per_call", "calls_per_s", "client_pct", "wallet_pct",
                                                  "other_pct")}
        row["ratio_to_bare"] = round(med(r[target]["cpu_us_per_call"] / r["locust-bare"]["cpu_us_per_call"]
                                         for r in runs), 3)
        row["saturated"] = sorted({r["saturated"] for r in rs})
        summary[target] = row
        t.add_row(LABELS[target], f"{row['cpu_us_per_call']:.0f}", f"{row['ratio_to_bare']:.2f}",
                  f"{row['calls_per_s']:,.0f}", f"{row['client_pct']:.0f}", f"{row['wallet_pct']:.0f}",
                  f"{row['other_pct']:.0f}", ", ".join(row["saturated"]))
    console.print(t)
    if "locust-1" in summary:
        r = summary["locust-1"]["ratio_to_bare"]
        console.print(f"aim (issue 17): croupier's Locust users ≤ {AIM_CPU_RATIO} × the bare FastHttpUser's CPU per "
                      "call — " + ("[green]met[/]" if r <= AIM_CPU_RATIO else "[red]not met[/]") + f" ({r:.2f}×)")
    console.print("On a machine shared with other work, CPU per call holds better than calls/s (see other %).")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
            "args": vars(args), "runs": runs, "summary": summary}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
