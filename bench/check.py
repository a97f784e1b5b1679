"""How fast ``croupier check`` finds each planted bug on both bases, and how fast it runs against correct wallets.

    .venv/bin/python bench/check.py [--bases reference,lenient] [--bugs a,b,...] [--seed 1] [--budget 60]
                                    [--shrink 30] [--reference-s 20] [--coverage] [--json PATH]

On 127.0.0.1 only:

* two bases, each served with every planted bug from one child process (a port per wallet, so the
  wallets use the second core, as a real one would): ``reference`` is the reference wallet with one bug
  each (:data:`tests.planted_wallets.PLANTED`), ``lenient`` the independent lenient wallet of the suite
  with one bug each (:data:`tests.lenient_wallet.LENIENT_PLANTED`), which makes the other choice at every
  point of PROTOCOL.md's "Where a wallet may choose";
* for each planted bug, ``croupier check`` runs with its default options (search budget 60 s, each
  counterexample shrunk up to 30 s, no example database so nothing is remembered between bugs) and a
  fixed ``--seed``, and stops once the bug's rule has been reported (``CheckOptions.stop_after``); we
  print the seconds and examples to the first counterexample of that rule, when it was reported (after
  shrinking), the length of the minimal sequence (protocol calls), and any other rule reported;
* bugs of :data:`tests.planted_wallets.CHECK_SKIPS` (needing more than a check's short sequences) are
  listed, not run;
* then the correct wallets are checked for ``--reference-s`` seconds each: the reference wallet (memory),
  ``croupier wallet serve`` on a fresh SQLite file, and the lenient wallet: examples per second, the
  verdict (must be pass), and with ``--coverage`` the lenient run's coverage table.

Exit code: 0 every bug found as its rule and every correct wallet passed, 1 otherwise, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.check import CheckOptions, Target, check
from simulator.check.report import coverage_text
from tests.lenient_wallet import LENIENT_PLANTED, lenient_servers
from tests.planted_wallets import CHECK_SKIPS, PLANTED, planted_servers
from tests.support import ADMIN_TOKEN, SECRET, WalletProcess

BASES: dict[str, tuple[dict[str, str], Callable[[list[str]], contextlib.AbstractContextManager[dict[str, str]]], str]] = {
    "reference": ({k: v.rule for k, v in PLANTED.items()}, planted_servers, "reference"),
    "lenient": ({k: v.rule for k, v in LENIENT_PLANTED.items()}, lenient_servers, "lenient"),
}
"""base → (bug → the rule it must be reported as, how to serve the wallets, the name of the correct wallet)"""


def target(base: str) -> Target:
    return Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)


def bench_bug(base_name: str, name: str, rule: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    result = check(target(url), CheckOptions(budget_s=args.budget, shrink_s=args.shrink, seed=args.seed,
                                             db_dir=None, stop_after={rule}))
    mine = [f for f in result.failures if f.rule.id == rule]
    f = mine[0] if mine else None
    return {
        "base": base_name, "bug": name, "rule": rule, "found": f is not None,
        "severity": str(f.severity) if f else None, "kind": f.kind if f else None,
        "first_s": round(f.found_after_s, 2) if f and f.found_after_s is not None else None,
        "first_examples": f.found_after_examples if f else None,
        "reported_s": round(result.elapsed_s, 1) if f else None,
        "length": f.length if f else None, "flaky": f.flaky if f else None,
        "run_s": round(result.elapsed_s, 1), "examples": result.examples, "stopped_by": result.stopped_by,
        "other_rules": [x.rule.id for x in result.failures if x.rule.id != rule], "errors": result.errors,
    }


def bench_correct(label: str, t: Target, seconds: float, seed: int, coverage: bool = False) -> dict[str, Any]:
    result = check(t, CheckOptions(budget_s=seconds, seed=seed, db_dir=None))
    row = {"wallet": label, "verdict": result.verdict, "examples": result.examples,
           "seconds": round(result.elapsed_s, 1), "examples_per_s": round(result.examples_per_s, 1),
           "failures": [f"{f.rule.id} ({f.severity})" for f in result.failures], "errors": result.errors,
           "choices": dict(result.choices)}
    if coverage:
        row["coverage"] = coverage_text(result)
    return row


@contextlib.contextmanager
def sqlite_wallet() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp, WalletProcess(Path(tmp) / "wallet.db") as wp:
        yield wp.base


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--bases", default="reference,lenient", help="comma list of reference, lenient")
    p.add_argument("--bugs", help="comma-separated names (default: every planted bug of each base)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--budget", type=float, default=60.0)
    p.add_argument("--shrink", type=float, default=30.0)
    p.add_argument("--reference-s", type=float, default=20.0)
    p.add_argument("--coverage", action="store_true", help="print the coverage table of the lenient wallet's run")
    p.add_argument("--json", dest="json_path")
    args = p.parse_args()
    bases = [b.strip() for b in args.bases.split(",") if b.strip()]
    if any(b not in BASES for b in bases):
        print(f"unknown base: {args.bases} (reference, lenient)", file=sys.stderr)
        return 2
    wanted = args.bugs.split(",") if args.bugs else None
    if wanted and (unknown := [b for b in wanted if not any(b in BASES[x][0] for x in bases)]):
        print(f"unknown bugs: {', '.join(unknown)}", file=sys.stderr)
        return 2
    print(f"# croupier check bench: python {platform.python_version()}, {os.cpu_count()} cores, seed {args.seed}, "
          f"budget {args.budget:.0f} s, shrink {args.shrink:.0f} s", flush=True)
    rows: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    head = (f"{'base':<9} {'bug':<34} {'rule':<36} {'sev':<8} {'first s':>7} {'ex.':>5} {'reported s':>10} "
            f"{'calls':>5}  other")
    for base_name in bases:
        bugs_of, servers, correct = BASES[base_name]
        bugs = [b for b in (wanted or list(bugs_of)) if b in bugs_of]
        run = [b for b in bugs if b not in CHECK_SKIPS]
        with servers([correct, *run]) as urls:
            print()
            print(head)
            print("-" * len(head), flush=True)
            for name in bugs:
                if name in CHECK_SKIPS:
                    print(f"{base_name:<9} {name:<34} {bugs_of[name]:<36} skipped: {CHECK_SKIPS[name]}", flush=True)
                    continue
                r = bench_bug(base_name, name, bugs_of[name], urls[name], args)
                rows.append(r)
                first = f"{r['first_s']:.2f}" if r["found"] else "MISSED"
                print(f"{base_name:<9} {name:<34} {r['rule']:<36} {r['severity'] or '-':<8} {first:>7} "
                      f"{r['first_examples'] or '-':>5} {r['reported_s'] or '-':>10} {r['length'] or '-':>5}  "
                      f"{', '.join(r['other_rules'] + r['errors'][:1]) or '-'}", flush=True)
            refs.append(bench_correct(f"{correct} (memory)", target(urls[correct]), args.reference_s, args.seed,
                                      coverage=args.coverage and base_name == "lenient"))
        if base_name == "reference":
            with sqlite_wallet() as url:
                refs.append(bench_correct("reference (SQLite, croupier wallet serve)", target(url),
                                          args.reference_s, args.seed))
    print()
    for r in refs:
        print(f"{r['wallet']:<44} {r['verdict']:<5} {r['examples']:>6} examples in {r['seconds']:>5.1f} s = "
              f"{r['examples_per_s']:>6.1f} examples/s  {', '.join(r['failures'] + r['errors']) or ''}")
    for r in refs:
        if "coverage" in r:
            print(f"\n{r['wallet']}: {r['coverage']}")
    found = [r for r in rows if r["found"]]
    if found:
        print(f"\nfound {len(found)}/{len(rows)}; slowest first counterexample "
              f"{max(r['first_s'] for r in found):.2f} s; longest minimal sequence {max(r['length'] for r in found)} "
              "calls")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"bugs": rows, "correct": refs}, indent=2))
    ok = all(r["found"] for r in rows) and all(r["verdict"] == "pass" for r in refs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
