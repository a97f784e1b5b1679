"""The series of a report (``report["series"]``): what happened when, for charts and for tools.

One shape for ``croupier run`` (built here from :class:`~simulator.judge.stats.RunStats`) and ``croupier
load`` (built by :mod:`loadtests.report` from the Locust master's samples), so the HTML report and
anyone reading the JSON draw both the same way::

    {"t0": "2026-12-04T19:50:01Z",        # wall-clock start, UTC ISO-8601
     "seconds": [0, 1, 2, ...],            # each bucket's first second since start, contiguous buckets
     "width": 1,                           # seconds per bucket: 1, or 2, 4, 8 … for a long run
     "settling_from": 21 | None,           # first second of the end-of-run settlement
     "calls": {op: [count per bucket]},
     "latency_ms": {op: {"p50": [...], "p99": [...]}},   # None where no call in that bucket
     "refusals": {code: [count per bucket]},             # refused calls by protocol error code
     "anomalies": {kind: [count per bucket]},            # findings by kind, in the bucket they were found in
     "faults": {kind: [count per bucket]}}               # injected faults by kind

A run keeps at most :data:`simulator.judge.stats.MAX_POINTS` buckets: past that, they are merged
pairwise and ``width`` doubles, so ``seconds`` is ``[0, width, 2 * width, …]``.  Every list has one
entry per bucket of ``seconds``; the counts of a key sum to the report's total for it (``calls[op]``
to ``report["calls"][op]``, ``faults[kind]`` to ``report["faults"][kind]``): a count per second is
the bucket's count over ``width``.  A series without ``width`` (an older report) has 1 s buckets.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from ..judge.stats import RunStats, Strip

Series: TypeAlias = dict[str, Any]

KEYS = ("t0", "seconds", "width", "settling_from", "calls", "latency_ms", "refusals", "anomalies", "faults")
"""The keys of a series, in order (``width`` may be missing: 1)."""


def iso_utc(epoch: float | None) -> str | None:
    """Epoch seconds as ``2026-12-04T19:50:01Z`` (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _counts(table: Mapping[str, Mapping[int, int]], buckets: range) -> dict[str, list[int]]:
    return {k: [int(c.get(b, 0)) for b in buckets] for k, c in sorted(table.items()) if any(c.values())}


def _pct(h: Strip | None, p: float) -> float | None:
    return None if h is None or not h.count else round(h.percentile(p), 3)


def build(stats: RunStats) -> Series:
    """The series of a run (a merged one included) from its statistics."""
    buckets = range(stats.buckets())
    ops = sorted(stats.by_second)
    return {
        "t0": iso_utc(stats.t0),
        "seconds": [b * stats.width for b in buckets],
        "width": stats.width,
        "settling_from": stats.settling_from,
        "calls": {op: [h.count if (h := stats.by_second[op].get(b)) else 0 for b in buckets] for op in ops},
        "latency_ms": {op: {"p50": [_pct(stats.by_second[op].get(b), 50) for b in buckets],
                            "p99": [_pct(stats.by_second[op].get(b), 99) for b in buckets]} for op in ops},
        "refusals": _counts(stats.refusals_at, buckets),
        "anomalies": _counts(stats.anomalies_at, buckets),
        "faults": _counts(stats.faults_at, buckets),
    }


def empty(t0: str | None = None) -> Series:
    """A series of nothing (a run that never started)."""
    return {"t0": t0, "seconds": [], "width": 1, "settling_from": None, "calls": {}, "latency_ms": {}, "refusals": {},
            "anomalies": {}, "faults": {}}


def totals(series: Mapping[str, Any], key: str) -> dict[str, int]:
    """What a count key (``calls``, ``refusals``, ``anomalies``, ``faults``) adds up to, per name."""
    return {k: sum(v) for k, v in series.get(key, {}).items()}


def width(series: Mapping[str, Any]) -> int:
    """Seconds per bucket (1 for a series from before buckets could be wider)."""
    w = series.get("width", 1)
    return w if isinstance(w, int) and not isinstance(w, bool) and w >= 1 else 0


def _latencies(lat: Mapping[str, Mapping[str, list[float | None]]], starts: range | list[int],
               size: int) -> dict[str, dict[str, list[float | None]]]:
    """Each run of ``size`` entries from ``starts`` as one: p50 the mean of its p50s, p99 the worst of its
    p99s (a slow second is never averaged away); None where it has none."""
    def pick(values: list[float | None], worst: bool) -> list[float | None]:
        out: list[float | None] = []
        for i in starts:
            seen = [v for v in values[i:i + size] if v is not None]
            out.append(None if not seen else (max(seen) if worst else round(sum(seen) / len(seen), 3)))
        return out

    return {op: {"p50": pick(v["p50"], False), "p99": pick(v["p99"], True)} for op, v in lat.items()}


def downsample(series: Mapping[str, Any], max_points: int) -> tuple[dict[str, Any], int]:
    """The series with at most ``max_points`` points per line, for drawing: each point is a run of
    ``step`` seconds (returned), counts as their mean per second, p50 as the mean of the buckets' p50s and
    p99 as their worst (a slow bucket is never averaged away).  ``seconds`` are each run's first second;
    ``settling_from`` is unchanged.  A series of 1 s buckets that fits comes back as it is (step 1);
    the JSON keeps every bucket."""
    w = width(series) or 1
    n = len(series["seconds"])
    points = max(1, -(-n // max(1, max_points)))
    if points == 1 and w == 1:
        return dict(series), 1
    starts = list(range(0, n, points))

    def mean(values: list[int]) -> list[float]:
        return [round(sum(values[i:i + points]) / (len(values[i:i + points]) * w), 2) for i in starts]

    out = dict(series)
    out["seconds"] = [series["seconds"][i] for i in starts]
    out["width"] = points * w
    for key in ("calls", "refusals", "anomalies", "faults"):
        out[key] = {k: mean(v) for k, v in series[key].items()}
    out["latency_ms"] = _latencies(series["latency_ms"], starts, points)
    return out, points * w


def rebucket(series: Mapping[str, Any], width: int) -> dict[str, Any]:
    """A 1-second series as buckets of ``width`` seconds: counts add up (exactly), p50 is the mean and p99
    the worst of the seconds' (``croupier load``'s long tests, whose readings are kept per bucket)."""
    if width == 1:
        return dict(series)
    n = len(series["seconds"])
    starts = range(0, n, width)

    out = dict(series)
    out["seconds"] = list(starts)
    out["width"] = width
    for key in ("calls", "refusals", "anomalies", "faults"):
        out[key] = {k: [sum(v[i:i + width]) for i in starts] for k, v in series[key].items()}
    out["latency_ms"] = _latencies(series["latency_ms"], starts, width)
    return out


def valid(series: object) -> bool:
    """Whether ``series`` has the shape above (the HTML report draws nothing from anything else)."""
    if not isinstance(series, Mapping) or any(k not in series for k in KEYS if k != "width"):
        return False
    n, w = len(series["seconds"]), width(series)
    if not w or series["seconds"] != list(range(0, n * w, w)):
        return False
    for key in ("calls", "refusals", "anomalies", "faults"):
        if not isinstance(series[key], Mapping) or any(len(v) != n for v in series[key].values()):
            return False
    lat = series["latency_ms"]
    return isinstance(lat, Mapping) and all(len(v.get("p50", ())) == n and len(v.get("p99", ())) == n
                                            for v in lat.values())
