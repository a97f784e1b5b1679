"""The master's (or the local runner's) per-second reading of a load test, for the report's series.

Once a second a greenlet reads Locust's cumulative statistics of the protocol rows (requests,
failures, latency histograms) and croupier's counters (refusals by code, faults, findings: the
local process's own, or the sum of the workers' latest snapshots) and keeps only the difference
from the previous reading (:func:`loadtests.report.step`), so a long soak keeps a few numbers per
second, not histograms — and at most :data:`~simulator.judge.stats.MAX_POINTS` of them: past an hour
they are folded pairwise into buckets twice as wide (:func:`loadtests.report.add_step`, as
``croupier run``'s statistics are), and the series says its ``width``.  A last reading at the end (after the settlement) makes the series add up
to the report's totals.  With workers, statistics reach the master every few seconds (Locust's
worker report interval): what arrives after empty seconds is spread evenly over them
(:func:`loadtests.report.spread_bursts`), so a distributed run's charts are smooth at the price of
a few seconds' resolution.

The end-of-run settlement begins when Locust starts stopping users (``test_stopping``): from
there each user settles its calls still in doubt and reads its balances once more.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import gevent
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

from simulator.judge.stats import MAX_POINTS
from simulator.report import series as series_shape

from . import report

Counters = tuple[Mapping[str, int], Mapping[str, int], Mapping[str, int]]
"""croupier's results, faults and findings so far."""


class Sampler:
    """Reads the test once a second.  What croupier counted comes from ``counters`` and the rows to
    read are those of ``call_type()`` (both the process's: this module does not import it)."""

    def __init__(self, environment: Any, call_type: Callable[[], str], counters: Callable[[], Counters]) -> None:
        self.env = environment
        self._call_type = call_type
        self._counters = counters
        self.t0: float | None = None
        self.origin = 0.0
        self.settling_from: int | None = None
        self.steps: list[tuple[int, dict[str, Any]]] = []
        self.width = 1
        """Seconds per kept step: doubles when a long test would need more than ``max_points`` (as RunStats)."""
        self.max_points = MAX_POINTS
        self._last: dict[str, Any] | None = None
        self._loop: gevent.Greenlet | None = None

    def start(self, **_: Any) -> None:
        """A test starts: second 0 is now (a test started again in the web UI starts a new series)."""
        self.stop_loop()
        self.t0, self.origin = time.time(), time.monotonic()
        self.settling_from, self.steps, self._last, self.width = None, [], None, 1
        self._loop = gevent.spawn(self._every_second)

    def stopping(self, **_: Any) -> None:
        if self.t0 is not None and self.settling_from is None:
            self.settling_from = int(time.monotonic() - self.origin)

    def stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=False)
            self._loop = None

    def _every_second(self) -> None:
        k = 0
        while True:
            gevent.sleep(max(0.0, k + 1 - (time.monotonic() - self.origin)))
            self.read(k)
            k += 1

    def read(self, second: int) -> None:
        """Take a reading and keep what changed since the previous one as ``second``'s step."""
        call_type = self._call_type()
        entries = [(e.name, e.num_requests, e.num_failures, dict(e.response_times))
                   for e in list(self.env.runner.stats.entries.values()) if e.method == call_type]
        now = report.sample(entries, *self._counters())
        self.width = report.add_step(self.steps, second, report.step(self._last, now), self.width, self.max_points)
        self._last = now

    def series(self) -> dict[str, Any]:
        """The series so far, with a last reading now (call it once the run has settled)."""
        if self.t0 is None:
            return series_shape.empty()
        self.stop_loop()
        self.read(int(time.monotonic() - self.origin))
        spread = math.ceil(WORKER_REPORT_INTERVAL) if isinstance(self.env.runner, MasterRunner) else 1
        if self.width > 1:  # a long test: its steps are per bucket (the workers' bursts land in theirs)
            per_second = report.series_of(self.steps, series_shape.iso_utc(self.t0), self.settling_from)
            return series_shape.rebucket(per_second, self.width)
        return report.series_of(self.steps, series_shape.iso_utc(self.t0), self.settling_from, spread)


current: Sampler | None = None


def listen(environment: Any, call_type: Callable[[], str], counters: Callable[[], Counters]) -> None:
    """Read the test once a second in the master or the local runner (never in a worker)."""
    global current
    from locust.runners import WorkerRunner

    if isinstance(environment.runner, WorkerRunner):
        return
    current = Sampler(environment, call_type, counters)
    environment.events.test_start.add_listener(current.start)
    environment.events.test_stopping.add_listener(current.stopping)


def series() -> dict[str, Any]:
    """This process's series (empty when no test ran here)."""
    return current.series() if current is not None else series_shape.empty()

