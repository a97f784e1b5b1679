"""Counters and latency histograms that merge exactly across worker processes.

Latencies go into log-spaced buckets (2% wide), so p50/p95/p99 of a run sharded
over several processes are computed from the merged buckets, not averaged.

The same holds over time: each operation's calls, latencies and refusals, the faults injected and
the findings made are kept per bucket of :attr:`RunStats.width` seconds since the run's start (the
report's series, :mod:`simulator.report.series`), and shards' buckets are aligned on their
wall-clock starts when they merge.  A bucket is 1 s until the run has :data:`MAX_POINTS` of them;
then adjacent buckets are merged pairwise and the width doubles (as a round-robin database does),
so a soak of any length keeps at most that many: histograms and counts add exactly, only the
resolution is lost (an 8-hour run is drawn in 8-second buckets).  The whole-run totals are kept
apart and never coarsened.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_GROWTH = 1.02
_LOG = math.log(_GROWTH)
_MIN_MS = 0.01

MAX_POINTS = 3600
"""Buckets kept per series before they are coarsened: an hour at 1 s each.  A bucket's latencies are
:class:`Strip` arrays, 7–10 KiB for five operations at 3,000 calls/s (a coarsened bucket's are wider),
so the series holds ~25–36 MiB at most, however long the run (bench/soak.py ``--stats-hours``)."""


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


class Strip:
    """One operation's latencies in one bucket of the series: :class:`Histogram`'s 2 % buckets, as one
    array of counts from the lowest bucket seen to the highest.  A Counter of 170–270 buckets (a busy
    second's, a coarsened bucket's) holds 10–16 KiB; this ~1–2 KiB, so the series' 3,600 buckets of
    four or five operations stay within a few tens of MiB.  Percentiles are :class:`Histogram`'s,
    exactly (no mean: the series shows none)."""

    __slots__ = ("count", "counts", "lo", "max_ms", "min_ms")

    def __init__(self) -> None:
        self.counts = array("I")
        self.lo = 0
        """The bucket of ``counts[0]``."""
        self.count = 0
        self.max_ms = 0.0
        self.min_ms = math.inf

    def _cover(self, low: int, high: int) -> None:
        """Grow ``counts`` to hold buckets ``low`` … ``high`` (zeros where nothing was seen)."""
        if not self.counts:
            self.lo = low
            self.counts = array(self.counts.typecode, bytes(self.counts.itemsize * (high - low + 1)))
            return
        if low < self.lo:
            self.counts[0:0] = array(self.counts.typecode, bytes(self.counts.itemsize * (self.lo - low)))
            self.lo = low
        top = self.lo + len(self.counts) - 1
        if high > top:
            self.counts.extend(array(self.counts.typecode, bytes(self.counts.itemsize * (high - top))))

    def _add(self, bucket: int, n: int) -> None:
        i = bucket - self.lo
        if i < 0 or i >= len(self.counts):
            self._cover(bucket, bucket)
            i = bucket - self.lo
        try:
            self.counts[i] += n
        except OverflowError:  # 2**32 calls in one latency bucket of one series bucket: 64-bit counts
            self.counts = array("Q", self.counts)
            self.counts[i] += n

    def add_bucket(self, bucket: int, ms: float) -> None:
        """Per call (a hot path): the common case, a bucket already in range, without a method call."""
        i = bucket - self.lo
        if 0 <= i < len(self.counts):
            try:
                self.counts[i] += 1
            except OverflowError:
                self._add(bucket, 1)
        else:
            self._add(bucket, 1)
        self.count += 1
        if ms > self.max_ms:  # noqa: PLR1730 - per call
            self.max_ms = ms
        if ms < self.min_ms:  # noqa: PLR1730
            self.min_ms = ms

    def merge(self, other: Strip) -> None:
        if not other.count:
            return
        self._cover(other.lo, other.lo + len(other.counts) - 1)
        for i, n in enumerate(other.counts):
            if n:
                self._add(other.lo + i, n)
        self.count += other.count
        self.max_ms = max(self.max_ms, other.max_ms)
        self.min_ms = min(self.min_ms, other.min_ms)

    def percentile(self, p: float) -> float:
        """As :meth:`Histogram.percentile`: the upper edge of the bucket holding it, within [min, max]."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return max(min(_upper(self.lo + i), self.max_ms), min(self.min_ms, self.max_ms))
        return self.max_ms  # pragma: no cover

    def to_json(self) -> dict[str, Any]:
        return {"lo": self.lo, "counts": self.counts.tolist(), "count": self.count, "max_ms": self.max_ms,
                "min_ms": self.min_ms if self.count else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Strip:
        out = cls()
        counts = [int(n) for n in data["counts"]]
        out.counts = array("I" if max(counts, default=0) < 2**32 else "Q", counts)
        out.lo, out.count, out.max_ms = int(data["lo"]), int(data["count"]), float(data["max_ms"])
        out.min_ms = math.inf if data.get("min_ms") is None else float(data["min_ms"])
        return out


def _count_at(table: dict[str, Counter[int]], key: str, at: int, n: int = 1) -> None:
    by_bucket = table.get(key)
    if by_bucket is None:
        by_bucket = table[key] = Counter()
    by_bucket[at] += n


def _moved(b: int, width: int, to: int, by: int) -> int:
    """Bucket ``b`` of ``width`` seconds, ``by`` seconds later, as a bucket of ``to`` seconds (exact when
    ``to`` is a multiple of ``width`` and of ``by``: the bucket's seconds all land in the new one)."""
    return (b * width + by) // to


def _merge_at(mine: dict[str, Counter[int]], other: dict[str, Counter[int]], width: int, to: int, by: int) -> None:
    for key, c in other.items():
        into = mine.get(key)
        if into is None:
            into = mine[key] = Counter()
        for b, n in c.items():
            into[_moved(b, width, to, by)] += n


def _rebucketed(table: dict[str, Counter[int]], width: int, to: int, by: int) -> dict[str, Counter[int]]:
    out: dict[str, Counter[int]] = {}
    _merge_at(out, table, width, to, by)
    return out


def _merge_strips(mine: dict[str, dict[int, Strip]], other: dict[str, dict[int, Strip]], width: int, to: int,
                  by: int) -> None:
    for op, buckets in other.items():
        into = mine.setdefault(op, {})
        for b, h in buckets.items():
            into.setdefault(_moved(b, width, to, by), Strip()).merge(h)


def _at_json(table: dict[str, Counter[int]]) -> dict[str, dict[str, int]]:
    return {k: {str(s): n for s, n in c.items()} for k, c in table.items()}


def _at_from_json(data: dict[str, dict[str, int]]) -> dict[str, Counter[int]]:
    return {k: Counter({int(s): int(n) for s, n in c.items()}) for k, c in data.items()}


@dataclass(slots=True)
class RunStats:
    """What a run did: calls by op and result, faults injected, latency by op, and all of it over time."""

    calls: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    rounds: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)
    by_second: dict[str, dict[int, Strip]] = field(default_factory=dict)
    """Operation → bucket (seconds since start // ``width``) → latencies of that operation's calls that ended in it."""
    refusals_at: dict[str, Counter[int]] = field(default_factory=dict)
    """Protocol error code → bucket → calls refused with it."""
    faults_at: dict[str, Counter[int]] = field(default_factory=dict)
    """Fault kind → bucket → faults injected (``faults`` is their total)."""
    anomalies_at: dict[str, Counter[int]] = field(default_factory=dict)
    """Finding kind → bucket → findings made (notes included)."""
    t0: float | None = None
    """Wall-clock time (epoch seconds) of second 0: set by :meth:`start`, the earliest shard's after a merge."""
    settling_from: int | None = None
    """The second (not bucket) the end-of-run settlement began (None: it has not)."""
    origin: float = 0.0
    """``time.monotonic()`` at second 0 (this process only; not saved)."""
    phase: str = ""
    """What the run is doing now, for a progress line ("" while playing, "settling…" after); not saved."""
    width: int = 1
    """Seconds per bucket of the ``*_at`` tables and ``by_second``: doubles each time they would need more
    than ``max_points`` buckets."""
    max_points: int = field(default_factory=lambda: MAX_POINTS)
    """The most buckets kept (not saved: the process that merges shards keeps its own); the module's
    :data:`MAX_POINTS` when made (bench/soak.py lowers it so a short soak shows the bound)."""

    def start(self, origin: float) -> None:
        """Second 0 is ``origin`` (a ``time.monotonic()`` reading): the driver's start."""
        self.origin = origin
        self.t0 = time.time() - (time.monotonic() - origin)

    def second(self) -> int:
        """The second since start now."""
        return int(time.monotonic() - self.origin)

    def _at(self, second: int) -> int:
        """The bucket of ``second``, coarsening first if it is beyond the last one kept."""
        at = second // self.width
        if at >= self.max_points:
            while second // self.width >= self.max_points:
                self._rebucket(self.width * 2)
            at = second // self.width
        return at

    def record(self, op: str, result: str, ms: float, second: int) -> None:
        """One call's end: per call, a few dictionary lookups and one bucket computation (a hot path)."""
        self.calls[op] += 1
        self.results[f"{op}:{result}"] += 1
        bucket = _bucket(ms)
        by_op = self.latency.get(op)
        if by_op is None:
            by_op = self.latency[op] = Histogram()
        by_op.add_bucket(bucket, ms)
        at = second // self.width
        if at >= self.max_points:
            at = self._at(second)
        op_buckets = self.by_second.get(op)
        if op_buckets is None:
            op_buckets = self.by_second[op] = {}
        in_bucket = op_buckets.get(at)
        if in_bucket is None:
            in_bucket = op_buckets[at] = Strip()
        in_bucket.add_bucket(bucket, ms)
        if result != "ok" and result != "unknown":
            _count_at(self.refusals_at, result, at)

    def fault(self, kind: str, n: int = 1, second: int | None = None) -> None:
        """``n`` faults of ``kind`` injected now (or in ``second``)."""
        self.faults[kind] += n
        at = self._at(self.second() if second is None else second)  # first: coarsening replaces the tables
        _count_at(self.faults_at, kind, at, n)

    def anomaly(self, kind: str, second: int | None = None) -> None:
        """A finding of ``kind`` made now (or in ``second``): the ledger's hook."""
        at = self._at(self.second() if second is None else second)
        _count_at(self.anomalies_at, kind, at)

    def settling(self) -> None:
        """The end-of-run settlement begins now (the report shades the seconds from here)."""
        if self.settling_from is None:
            self.settling_from = self.second()
            self._at(self.settling_from)  # the series reaches it: it must fit too

    @property
    def timeline(self) -> dict[int, Strip]:
        """Bucket → latencies of every call that ended in it (all operations together)."""
        out: dict[int, Strip] = {}
        for buckets in self.by_second.values():
            for b, h in buckets.items():
                out.setdefault(b, Strip()).merge(h)
        return out

    def buckets(self) -> int:
        """How many buckets the series spans (0 … the last one anything happened in, and the settlement's)."""
        tables: list[Mapping[int, object]] = [*self.by_second.values(), *self.refusals_at.values(),
                                              *self.faults_at.values(), *self.anomalies_at.values()]
        last = max((max(t, default=-1) for t in tables), default=-1)
        if self.settling_from is not None:
            last = max(last, self.settling_from // self.width)
        return last + 1

    def _rebucket(self, to: int, by: int = 0) -> None:
        """Buckets of ``to`` seconds instead of ``width``, every count ``by`` seconds later (aligning on an
        earlier shard's start): histograms and counts of the buckets that fall together add up."""
        if to == self.width and not by:
            return
        hists: dict[str, dict[int, Strip]] = {}
        _merge_strips(hists, self.by_second, self.width, to, by)
        self.by_second = hists
        self.refusals_at = _rebucketed(self.refusals_at, self.width, to, by)
        self.faults_at = _rebucketed(self.faults_at, self.width, to, by)
        self.anomalies_at = _rebucketed(self.anomalies_at, self.width, to, by)
        self.width = to
        if by and self.settling_from is not None:
            self.settling_from += by

    def merge(self, other: RunStats) -> None:
        """Add ``other`` (another shard's stats): totals add up, buckets line up on the wall clock at the
        coarser shard's width (to the second when the shards' starts are a whole number of buckets apart)."""
        to = math.lcm(self.width, other.width)
        by = 0
        if self.t0 is not None and other.t0 is not None:
            if other.t0 < self.t0:
                self._rebucket(to, round(self.t0 - other.t0))
                self.t0 = other.t0
            else:
                by = round(other.t0 - self.t0)
        elif other.t0 is not None:
            self.t0 = other.t0
        self._rebucket(to)
        self.calls.update(other.calls)
        self.results.update(other.results)
        self.faults.update(other.faults)
        self.rounds.update(other.rounds)
        for k, h in other.latency.items():
            self.latency.setdefault(k, Histogram()).merge(h)
        _merge_strips(self.by_second, other.by_second, other.width, to, by)
        _merge_at(self.refusals_at, other.refusals_at, other.width, to, by)
        _merge_at(self.faults_at, other.faults_at, other.width, to, by)
        _merge_at(self.anomalies_at, other.anomalies_at, other.width, to, by)
        if other.settling_from is not None:
            theirs = other.settling_from + by
            self.settling_from = theirs if self.settling_from is None else min(self.settling_from, theirs)
        while self.buckets() > self.max_points:
            self._rebucket(self.width * 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls), "results": dict(self.results), "faults": dict(self.faults),
            "rounds": dict(self.rounds),
            "latency": {k: h.to_json() for k, h in self.latency.items()},
            "by_second": {op: {str(s): h.to_json() for s, h in sec.items()} for op, sec in self.by_second.items()},
            "refusals_at": _at_json(self.refusals_at), "faults_at": _at_json(self.faults_at),
            "anomalies_at": _at_json(self.anomalies_at), "t0": self.t0, "settling_from": self.settling_from,
            "width": self.width,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStats:
        return cls(Counter(data["calls"]), Counter(data["results"]), Counter(data["faults"]), Counter(data["rounds"]),
                   {k: Histogram.from_json(v) for k, v in data["latency"].items()},
                   {op: {int(s): Strip.from_json(h) for s, h in sec.items()}
                    for op, sec in data.get("by_second", {}).items()},
                   _at_from_json(data.get("refusals_at", {})), _at_from_json(data.get("faults_at", {})),
                   _at_from_json(data.get("anomalies_at", {})), data.get("t0"), data.get("settling_from"),
                   width=int(data.get("width", 1)))
