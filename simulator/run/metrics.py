"""``croupier run --metrics-listen``: the run's statistics, counted as Prometheus metrics while it plays.

The core stays as it is: the driver tells the run's :class:`~simulator.judge.stats.RunStats` of every call's
end, every fault injected and every finding (the ledger's hook), and :class:`MeteredStats` passes each on as
well.  What the core only keeps as a total (rounds) or what is a state (players, calls in doubt) is read once
a second by :meth:`MeteredStats.sync`, on the run's loop: a scrape never walks the ledger from another thread.
"""

from __future__ import annotations

from collections import Counter

from ..judge.stats import RunStats
from ..metrics.families import IN_DOUBT, PLAYERS, PLAYING, Metrics, outcome_of_label

__all__ = ["SYNC_S", "MeteredStats"]

SYNC_S = 1.0
"""How often the rounds and the gauges are brought up to date (a scrape every 5 s or more sees them move)."""


class MeteredStats(RunStats):
    """The run's statistics, each call, fault and finding also counted in ``metrics``."""

    def __init__(self, metrics: Metrics, dialect: str) -> None:
        super().__init__()
        self.metrics = metrics
        self.dialect = dialect
        self._rounds_seen: Counter[str] = Counter()

    def record(self, op: str, result: str, ms: float, second: int) -> None:
        RunStats.record(self, op, result, ms, second)
        outcome, code = outcome_of_label(result)
        self.metrics.call(op, self.dialect, outcome, ms / 1000, code)

    def fault(self, kind: str, n: int = 1, second: int | None = None) -> None:
        RunStats.fault(self, kind, n, second)
        self.metrics.fault(kind, "", n)

    def anomaly(self, kind: str, second: int | None = None) -> None:
        RunStats.anomaly(self, kind, second)
        self.metrics.anomaly(kind)

    def sync(self, seated: int, playing: int, in_doubt: int) -> None:
        """The rounds ended since the last time, and the gauges now."""
        for status, n in self.rounds.items():
            new = n - self._rounds_seen[status]
            if new > 0:
                self.metrics.rounds(status, new)
                self._rounds_seen[status] = n
        self.metrics.gauge(PLAYERS, seated)
        self.metrics.gauge(PLAYING, playing)
        self.metrics.gauge(IN_DOUBT, in_doubt)
