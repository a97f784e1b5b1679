"""How fast ``croupier check`` finds each planted bug, and how fast it runs against a correct wallet.

    .venv/bin/python bench/check.py [--bugs a,b,...] [--seed 1] [--budget 60] [--shrink 30]
                                    [--reference-s 20] [--json PATH]

On 127.0.0.1 only:

* one server subprocess (``python -m tests.planted_wallets --many``) serves the reference wallet and
  every wallet of :data:`tests.planted_wallets.PLANTED` (the reference wallet with one bug each,
  memory store), each on a port of its own; so the wallets use the second core, as a real one would;
* for each planted bug, ``croupier check`` runs with its default options (budget 60 s, shrinking up
  to 30 s after the first counterexample, no example database so nothing is remembered between
  bugs) and a fixed ``--seed``; we print the seconds and examples to the first counterexample for
  the bug's rule, the length of the minimal sequence it shrank to (protocol calls), the whole run's
  time, and any other rule reported (there must be none: each wallet has one bug);
* then the reference wallet (memory store, in the same server process) and ``croupier wallet serve``
  on a fresh SQLite file are checked for ``--reference-s`` seconds each: examples per second, and the
  verdict (must be pass).

Exit code: 0 every bug found as its rule and the reference wallet passed, 1 otherwise, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.check import CheckOptions, Target, check
from tests.planted_wallets import PLANTED, planted_servers
from tests.support import ADMIN_TOKEN, SECRET, WalletProcess


def target(base: str) -> Target:
    return Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)


def bench_bug(name: str, base: str, args: argparse.Namespace) -> dict[str, Any]:
    rule = PLANTED[name].rule
    result = check(target(base), CheckOptions(budget_s=args.budget, shrink_s=args.shrink, seed=args.seed, db_dir=None))
    mine = [f for f in result.failures if f.rule.id == rule]
    f = mine[0] if mine else None
    return {
        "bug": name, "rule": rule, "found": f is not None,
        "first_s": round(f.found_after_s, 2) if f and f.found_after_s is not None else None,
        "first_examples": f.found_after_examples if f else None,
        "length": f.length if f else None, "flaky": f.flaky if f else None,
        "run_s": round(result.elapsed_s, 1), "examples": result.examples,
        "other_rules": [x.rule.id for x in result.failures if x.rule.id != rule], "errors": result.errors,
    }


def bench_reference(label: str, t: Target, seconds: float, seed: int) -> dict[str, Any]:
    result = check(t, CheckOptions(budget_s=seconds, max_examples=10**9, seed=seed, db_dir=None))
    return {"wallet": label, "verdict": result.verdict, "examples": result.examples,
            "seconds": round(result.elapsed_s, 1), "examples_per_s": round(result.examples_per_s, 1),
            "failures": [f.rule.id for f in result.failures], "errors": result.errors}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--bugs", help="comma-separated names (default: every planted bug)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--budget", type=float, default=60.0)
    p.add_argument("--shrink", type=float, default=30.0)
    p.add_argument("--reference-s", type=float, default=20.0)
    p.add_argument("--json", dest="json_path")
    args = p.parse_args()
    bugs = args.bugs.split(",") if args.bugs else list(PLANTED)
    unknown = [b for b in bugs if b not in PLANTED]
    if unknown:
        print(f"unknown bugs: {', '.join(unknown)}", file=sys.stderr)
        return 2
    print(f"# croupier check bench: python {platform.python_version()}, {os.cpu_count()} cores, seed {args.seed}, "
          f"budget {args.budget:.0f} s, shrink {args.shrink:.0f} s", flush=True)
    rows: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    with planted_servers(["reference", *bugs]) as ports:
        head = f"{'bug':<32} {'rule':<38} {'first s':>8} {'examples':>8} {'calls':>5} {'run s':>6}  other"
        print(head)
        print("-" * len(head), flush=True)
        for name in bugs:
            r = bench_bug(name, ports[name], args)
            rows.append(r)
            first = f"{r['first_s']:.2f}" if r["found"] else "MISSED"
            print(f"{name:<32} {r['rule']:<38} {first:>8} {r['first_examples'] or '-':>8} "
                  f"{r['length'] or '-':>5} {r['run_s']:>6.1f}  "
                  f"{', '.join(r['other_rules'] + r['errors'][:1]) or '-'}", flush=True)
        print()
        refs.append(bench_reference("reference (memory)", target(ports["reference"]), args.reference_s, args.seed))
        with tempfile.TemporaryDirectory() as tmp, WalletProcess(Path(tmp) / "wallet.db") as wp:
            refs.append(bench_reference("reference (SQLite, croupier wallet serve)", target(wp.base),
                                        args.reference_s, args.seed))
        for r in refs:
            print(f"{r['wallet']:<44} {r['verdict']:<5} {r['examples']:>6} examples in {r['seconds']:>5.1f} s = "
                  f"{r['examples_per_s']:>6.1f} examples/s  {', '.join(r['failures'] + r['errors']) or ''}")
    found = [r for r in rows if r["found"]]
    if found:
        print(f"\nfound {len(found)}/{len(rows)}; slowest first counterexample "
              f"{max(r['first_s'] for r in found):.2f} s; longest minimal sequence {max(r['length'] for r in found)} "
              "calls")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"bugs": rows, "reference": refs}, indent=2))
    ok = all(r["found"] for r in rows) and all(r["verdict"] == "pass" for r in refs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
