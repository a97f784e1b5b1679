"""Counters and latency histograms that merge exactly across worker processes.

Latencies go into log-spaced buckets (2% wide), so p50/p95/p99 of a run sharded
over several processes are computed from the merged buckets, not averaged.

The same holds second by second: each operation's calls, latencies and refusals, the faults
injected and the findings made are kept per second since the run's start (the report's
per-second series, :mod:`simulator.report.series`), and shards' seconds are aligned on their
wall-clock starts when they merge.
"""

from __future__ import annotations

import math
import time
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
        self.add_bucket(_bucket(ms), ms)

    def add_bucket(self, bucket: int, ms: float) -> None:
        """``add`` with the bucket computed once by the caller (a call goes into two histograms)."""
        self.buckets[bucket] += 1
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


def _count_at(table: dict[str, Counter[int]], key: str, second: int) -> None:
    by_second = table.get(key)
    if by_second is None:
        by_second = table[key] = Counter()
    by_second[second] += 1


def _shifted(table: dict[str, Counter[int]], by: int) -> dict[str, Counter[int]]:
    return {k: Counter({s + by: n for s, n in c.items()}) for k, c in table.items()}


def _merge_at(mine: dict[str, Counter[int]], other: dict[str, Counter[int]], by: int = 0) -> None:
    for key, c in other.items():
        into = mine.get(key)
        if into is None:
            into = mine[key] = Counter()
        for s, n in c.items():
            into[s + by] += n


def _at_json(table: dict[str, Counter[int]]) -> dict[str, dict[str, int]]:
    return {k: {str(s): n for s, n in c.items()} for k, c in table.items()}


def _at_from_json(data: dict[str, dict[str, int]]) -> dict[str, Counter[int]]:
    return {k: Counter({int(s): int(n) for s, n in c.items()}) for k, c in data.items()}


@dataclass(slots=True)
class RunStats:
    """What a run did: calls by op and result, faults injected, latency by op, and all of it per second."""

    calls: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    rounds: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)
    by_second: dict[str, dict[int, Histogram]] = field(default_factory=dict)
    """Operation → second since start → latencies of that operation's calls that ended in it."""
    refusals_at: dict[str, Counter[int]] = field(default_factory=dict)
    """Protocol error code → second → calls refused with it."""
    faults_at: dict[str, Counter[int]] = field(default_factory=dict)
    """Fault kind → second → faults injected (``faults`` is their total)."""
    anomalies_at: dict[str, Counter[int]] = field(default_factory=dict)
    """Finding kind → second → findings made (notes included)."""
    t0: float | None = None
    """Wall-clock time (epoch seconds) of second 0: set by :meth:`start`, the earliest shard's after a merge."""
    settling_from: int | None = None
    """The second the end-of-run settlement began (None: it has not)."""
    origin: float = 0.0
    """``time.monotonic()`` at second 0 (this process only; not saved)."""
    phase: str = ""
    """What the run is doing now, for a progress line ("" while playing, "settling…" after); not saved."""

    def start(self, origin: float) -> None:
        """Second 0 is ``origin`` (a ``time.monotonic()`` reading): the driver's start."""
        self.origin = origin
        self.t0 = time.time() - (time.monotonic() - origin)

    def second(self) -> int:
        """The second since start now."""
        return int(time.monotonic() - self.origin)

    def record(self, op: str, result: str, ms: float, second: int) -> None:
        """One call's end: per call, a few dictionary lookups and one bucket computation (a hot path)."""
        self.calls[op] += 1
        self.results[f"{op}:{result}"] += 1
        bucket = _bucket(ms)
        by_op = self.latency.get(op)
        if by_op is None:
            by_op = self.latency[op] = Histogram()
        by_op.add_bucket(bucket, ms)
        op_seconds = self.by_second.get(op)
        if op_seconds is None:
            op_seconds = self.by_second[op] = {}
        in_second = op_seconds.get(second)
        if in_second is None:
            in_second = op_seconds[second] = Histogram()
        in_second.add_bucket(bucket, ms)
        if result != "ok" and result != "unknown":
            _count_at(self.refusals_at, result, second)

    def fault(self, kind: str, n: int = 1, second: int | None = None) -> None:
        """``n`` faults of ``kind`` injected now (or in ``second``)."""
        self.faults[kind] += n
        by_second = self.faults_at.get(kind)
        if by_second is None:
            by_second = self.faults_at[kind] = Counter()
        by_second[self.second() if second is None else second] += n

    def anomaly(self, kind: str, second: int | None = None) -> None:
        """A finding of ``kind`` made now (or in ``second``): the ledger's hook."""
        _count_at(self.anomalies_at, kind, self.second() if second is None else second)

    def settling(self) -> None:
        """The end-of-run settlement begins now (the report shades the seconds from here)."""
        if self.settling_from is None:
            self.settling_from = self.second()

    @property
    def timeline(self) -> dict[int, Histogram]:
        """Second → latencies of every call that ended in it (all operations together)."""
        out: dict[int, Histogram] = {}
        for seconds in self.by_second.values():
            for s, h in seconds.items():
                out.setdefault(s, Histogram()).merge(h)
        return out

    def _shift(self, by: int) -> None:
        """Move every per-second count ``by`` seconds later (aligning on an earlier shard's start)."""
        if not by:
            return
        self.by_second = {op: {s + by: h for s, h in sec.items()} for op, sec in self.by_second.items()}
        self.refusals_at = _shifted(self.refusals_at, by)
        self.faults_at = _shifted(self.faults_at, by)
        self.anomalies_at = _shifted(self.anomalies_at, by)
        if self.settling_from is not None:
            self.settling_from += by

    def merge(self, other: RunStats) -> None:
        """Add ``other`` (another shard's stats): totals add up, seconds line up on the wall clock."""
        by = 0
        if self.t0 is not None and other.t0 is not None:
            if other.t0 < self.t0:
                self._shift(round(self.t0 - other.t0))
                self.t0 = other.t0
            else:
                by = round(other.t0 - self.t0)
        elif other.t0 is not None:
            self.t0 = other.t0
        self.calls.update(other.calls)
        self.results.update(other.results)
        self.faults.update(other.faults)
        self.rounds.update(other.rounds)
        for k, h in other.latency.items():
            self.latency.setdefault(k, Histogram()).merge(h)
        for op, seconds in other.by_second.items():
            mine = self.by_second.setdefault(op, {})
            for s, h in seconds.items():
                mine.setdefault(s + by, Histogram()).merge(h)
        _merge_at(self.refusals_at, other.refusals_at, by)
        _merge_at(self.faults_at, other.faults_at, by)
        _merge_at(self.anomalies_at, other.anomalies_at, by)
        if other.settling_from is not None:
            theirs = other.settling_from + by
            self.settling_from = theirs if self.settling_from is None else min(self.settling_from, theirs)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls), "results": dict(self.results), "faults": dict(self.faults),
            "rounds": dict(self.rounds),
            "latency": {k: h.to_json() for k, h in self.latency.items()},
            "by_second": {op: {str(s): h.to_json() for s, h in sec.items()} for op, sec in self.by_second.items()},
            "refusals_at": _at_json(self.refusals_at), "faults_at": _at_json(self.faults_at),
            "anomalies_at": _at_json(self.anomalies_at), "t0": self.t0, "settling_from": self.settling_from,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStats:
        return cls(Counter(data["calls"]), Counter(data["results"]), Counter(data["faults"]), Counter(data["rounds"]),
                   {k: Histogram.from_json(v) for k, v in data["latency"].items()},
                   {op: {int(s): Histogram.from_json(h) for s, h in sec.items()}
                    for op, sec in data.get("by_second", {}).items()},
                   _at_from_json(data.get("refusals_at", {})), _at_from_json(data.get("faults_at", {})),
                   _at_from_json(data.get("anomalies_at", {})), data.get("t0"), data.get("settling_from"))
