"""CPU per wallet call of counting it: what ``croupier wallet serve --metrics`` adds to each call's hot path.

    .venv/bin/python bench/metrics.py                  # 200,000 calls, this process, then in multiprocess mode
    .venv/bin/python bench/metrics.py --calls 1000000

Measures :meth:`simulator.metrics.families.Metrics.answer` — a call counted, its latency observed, a refusal
counted as an error — on the mix a wallet answers (bets, wins, one refusal in ten), in process CPU time, so
other load on the machine skews it little.  The multiprocess row is the same with ``PROMETHEUS_MULTIPROC_DIR``
set (``--workers N``: the values live in memory-mapped files), measured in a child process because
prometheus_client picks the mode when it is first imported.  ``bench/wallet.py --targets memory,memory-metrics``
measures the same difference end to end, under wrk, within its noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(calls: int) -> float:
    """CPU µs per counted call in this process."""
    from simulator.metrics.families import Metrics
    from simulator.protocol.calls import Ok, Outcome, Rejected
    from simulator.protocol.codes import ErrorCode
    from simulator.protocol.money import Money

    metrics = Metrics("wallet")
    ok = Ok(Money.of(1000, "EUR"), "w1")
    refused = Rejected(ErrorCode.INSUFFICIENT_FUNDS, "no")
    answers: list[tuple[str, Outcome]] = [("bet", ok), ("win", ok), ("bet", ok), ("win", ok), ("bet", refused)] * 2
    for op, outcome in answers:  # the families and their children made before the clock starts
        metrics.answer(op, "canonical", outcome, 0.001)
    start = time.process_time()
    for i in range(calls):
        op, outcome = answers[i % 10]
        metrics.answer(op, "canonical", outcome, 0.0012)
    return 1e6 * (time.process_time() - start) / calls


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=200_000)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.calls)))
        return 0
    single = measure(args.calls)
    with tempfile.TemporaryDirectory(prefix="croupier-bench-metrics-") as folder:
        out = subprocess.run([sys.executable, __file__, "--calls", str(args.calls), "--child"], check=True,
                             capture_output=True, text=True, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder})
    multi = float(out.stdout)
    print(f"CPU per counted call ({args.calls:,} calls; Python {sys.version.split()[0]}):")
    print(f"  one process (wallet serve --metrics):                    {single:6.2f} µs")
    print(f"  multiprocess mode (wallet serve --workers N --metrics):  {multi:6.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
