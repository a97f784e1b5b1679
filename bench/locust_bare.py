"""The Locust baseline of bench/load.py: a bare ``FastHttpUser`` POSTing pre-signed canonical bets.

    CROUPIER_BENCH_POOL=FILE CROUPIER_BENCH_OUT=FILE locust -f bench/locust_bare.py --headless \
        -u 64 -r 64 -t 10s --host http://127.0.0.1:PORT

``FILE`` holds ``signature TAB body`` lines (``harness.write_pool``); each bet is sent once, and a
user that finds the pool empty stops the run rather than send a ``tx_id`` twice.  At the end
the requests answered and failed are written to ``CROUPIER_BENCH_OUT`` as JSON, with the
seconds between the first and the last request.  What any Locust client must do per call and
nothing more: croupier's users (loadtests/users.py) do the same request with a game, a ledger
and the rules' checks on top.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # beside this file, after the path is set

POOL = harness.read_pool(Path(os.environ["CROUPIER_BENCH_POOL"]))
_next = itertools.count()
_span: list[float] = []


class BareBettor(FastHttpUser):
    """One connection, a closed loop of bets, no wait between them."""

    @task
    def bet(self) -> None:
        k = next(_next)
        if k >= len(POOL):
            self.environment.runner.quit()
            return
        sig, body = POOL[k]
        if not _span:
            _span.append(time.perf_counter())
        # geventhttpclient sends bytes as they are; Locust's annotation names only str.
        with self.client.post("/wallet/bet", data=body, name="bet", catch_response=True,  # type: ignore[arg-type]
                              headers={"Content-Type": "application/json", "X-Signature": sig}) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _written(environment: Any, **_kw: Any) -> None:
    total = environment.stats.total
    out = {"calls": total.num_requests, "failures": total.num_failures,
           "play_s": time.perf_counter() - _span[0] if _span else 0.0, "ran_dry": next(_next) > len(POOL)}
    Path(os.environ["CROUPIER_BENCH_OUT"]).write_text(json.dumps(out), encoding="utf-8")
