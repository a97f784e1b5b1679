"""Counters and latency histograms that merge exactly across worker processes.

Latencies go into log-spaced buckets (2% wide), so p50/p95/p99 of a run sharded
over several processes are computed from the merged buckets, not averaged.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_GROWTH = 1.02
_LOG = math.log(_GROWTH)
_MIN_MS = 0.01


def _bucket(ms: float) -> int:
    return 0 if ms <= _MIN_MS else int(math.log(ms / _MIN_MS) / _LOG) + 1


def _upper(bucket: int) -> float:
    return _MIN_MS * _GROWTH**bucket


@dataclass(slots=True)
class Histogram:
    buckets: Counter[int] = field(default_factory=Counter)
    count: int = 0
    max_ms: float = 0.0
    total_ms: float = 0.0
    min_ms: float = math.inf
    """The least latency seen (``inf`` while empty); a percentile is never below it nor above ``max_ms``."""

    def add(self, ms: float) -> None:
        self.buckets[_bucket(ms)] += 1
        self.count += 1
        self.total_ms += ms
        if ms > self.max_ms:  # noqa: PLR1730 - per call; a branch is cheaper than max()
            self.max_ms = ms
        if ms < self.min_ms:  # noqa: PLR1730
            self.min_ms = ms

    def merge(self, other: Histogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.total_ms += other.total_ms
        self.max_ms = max(self.max_ms, other.max_ms)
        self.min_ms = min(self.min_ms, other.min_ms)

    def percentile(self, p: float) -> float:
        """The upper edge of the bucket holding the p-th percentile, clamped to [min, max] seen: an
        estimate is never above the slowest call (nor below the fastest)."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return max(min(_upper(b), self.max_ms), min(self.min_ms, self.max_ms))
        return self.max_ms  # pragma: no cover

    def summary(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "mean": round(self.total_ms / self.count, 3) if self.count else 0.0,
            "p50": round(self.percentile(50), 3),
            "p95": round(self.percentile(95), 3),
            "p99": round(self.percentile(99), 3),
            "max": round(self.max_ms, 3),
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"buckets": {str(k): v for k, v in self.buckets.items()}, "count": self.count,
                               "max_ms": self.max_ms, "total_ms": self.total_ms}
        if self.count:
            out["min_ms"] = self.min_ms
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Histogram:
        h = cls(Counter({int(k): int(v) for k, v in data["buckets"].items()}), int(data["count"]),
                float(data["max_ms"]), float(data["total_ms"]), float(data.get("min_ms", 0.0 if data["count"] else math.inf)))
        return h


@dataclass(slots=True)
class RunStats:
    """What a run did: calls by op and result, faults injected, latency by op, a timeline."""

    calls: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    rounds: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)
    timeline: dict[int, Histogram] = field(default_factory=dict)
    """Second since start → latencies of calls that ended in it."""
    phase: str = ""
    """What the run is doing now, for a progress line ("" while playing, "settling…" after); not saved."""

    def record(self, op: str, result: str, ms: float, second: int) -> None:
        self.calls[op] += 1
        self.results[f"{op}:{result}"] += 1
        by_op = self.latency.get(op)
        if by_op is None:
            by_op = self.latency[op] = Histogram()
        by_op.add(ms)
        in_second = self.timeline.get(second)
        if in_second is None:
            in_second = self.timeline[second] = Histogram()
        in_second.add(ms)

    def merge(self, other: RunStats) -> None:
        self.calls.update(other.calls)
        self.results.update(other.results)
        self.faults.update(other.faults)
        self.rounds.update(other.rounds)
        for k, h in other.latency.items():
            self.latency.setdefault(k, Histogram()).merge(h)
        for s, h in other.timeline.items():
            self.timeline.setdefault(s, Histogram()).merge(h)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls), "results": dict(self.results), "faults": dict(self.faults),
            "rounds": dict(self.rounds),
            "latency": {k: h.to_json() for k, h in self.latency.items()},
            "timeline": {str(k): h.to_json() for k, h in self.timeline.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStats:
        return cls(Counter(data["calls"]), Counter(data["results"]), Counter(data["faults"]), Counter(data["rounds"]),
                   {k: Histogram.from_json(v) for k, v in data["latency"].items()},
                   {int(k): Histogram.from_json(v) for k, v in data["timeline"].items()})
