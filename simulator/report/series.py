"""The per-second series of a report (``report["series"]``): what happened when, for charts and for tools.

One shape for ``croupier run`` (built here from :class:`~simulator.judge.stats.RunStats`) and ``croupier
load`` (built by :mod:`loadtests.report` from the Locust master's samples), so the HTML report and
anyone reading the JSON draw both the same way::

    {"t0": "2026-12-04T19:50:01Z",        # wall-clock start, UTC ISO-8601
     "seconds": [0, 1, 2, ...],            # seconds since start, contiguous, one entry per second
     "settling_from": 21 | None,           # first second of the end-of-run settlement
     "calls": {op: [count per second]},
     "latency_ms": {op: {"p50": [...], "p99": [...]}},   # None where no call in that second
     "refusals": {code: [count per second]},             # refused calls by protocol error code
     "anomalies": {kind: [count per second]},            # findings by kind, at the second they were found
     "faults": {kind: [count per second]}}               # injected faults by kind

Every list has one entry per second of ``seconds``; the counts of a key sum to the report's total
for it (``calls[op]`` to ``report["calls"][op]``, ``faults[kind]`` to ``report["faults"][kind]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from ..judge.stats import Histogram, RunStats

Series: TypeAlias = dict[str, Any]

KEYS = ("t0", "seconds", "settling_from", "calls", "latency_ms", "refusals", "anomalies", "faults")
"""The keys of a series, in order."""


def iso_utc(epoch: float | None) -> str | None:
    """Epoch seconds as ``2026-12-04T19:50:01Z`` (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(*keys: Iterable[int]) -> list[int]:
    """Seconds 0 … the last second anything happened in (contiguous; empty when nothing did)."""
    last = max((s for ks in keys for s in ks), default=-1)
    return list(range(last + 1))


def _counts(table: Mapping[str, Mapping[int, int]], seconds: list[int]) -> dict[str, list[int]]:
    return {k: [int(c.get(s, 0)) for s in seconds] for k, c in sorted(table.items()) if any(c.values())}


def _pct(h: Histogram | None, p: float) -> float | None:
    return None if h is None or not h.count else round(h.percentile(p), 3)


def build(stats: RunStats) -> Series:
    """The series of a run (a merged one included) from its statistics."""
    seconds = _span(*(sec.keys() for sec in stats.by_second.values()), *(c.keys() for c in stats.refusals_at.values()),
                    *(c.keys() for c in stats.faults_at.values()), *(c.keys() for c in stats.anomalies_at.values()),
                    [stats.settling_from] if stats.settling_from is not None else [])
    ops = sorted(stats.by_second)
    return {
        "t0": iso_utc(stats.t0),
        "seconds": seconds,
        "settling_from": stats.settling_from,
        "calls": {op: [h.count if (h := stats.by_second[op].get(s)) else 0 for s in seconds] for op in ops},
        "latency_ms": {op: {"p50": [_pct(stats.by_second[op].get(s), 50) for s in seconds],
                            "p99": [_pct(stats.by_second[op].get(s), 99) for s in seconds]} for op in ops},
        "refusals": _counts(stats.refusals_at, seconds),
        "anomalies": _counts(stats.anomalies_at, seconds),
        "faults": _counts(stats.faults_at, seconds),
    }


def empty(t0: str | None = None) -> Series:
    """A series of nothing (a run that never started)."""
    return {"t0": t0, "seconds": [], "settling_from": None, "calls": {}, "latency_ms": {}, "refusals": {},
            "anomalies": {}, "faults": {}}


def totals(series: Mapping[str, Any], key: str) -> dict[str, int]:
    """What a count key (``calls``, ``refusals``, ``anomalies``, ``faults``) adds up to, per name."""
    return {k: sum(v) for k, v in series.get(key, {}).items()}


def downsample(series: Mapping[str, Any], max_points: int) -> tuple[dict[str, Any], int]:
    """The series with at most ``max_points`` points per line, for drawing a long run: each point is a
    run of ``step`` seconds (returned), counts as their mean per second, p50 as the mean of the seconds'
    p50s and p99 as their worst (a slow second is never averaged away).  ``seconds`` are each run's first
    second; ``settling_from`` is unchanged.  The JSON keeps every second."""
    n = len(series["seconds"])
    step = max(1, -(-n // max(1, max_points)))
    if step == 1:
        return dict(series), 1
    starts = list(range(0, n, step))

    def mean(values: list[int]) -> list[float]:
        return [round(sum(values[i:i + step]) / len(values[i:i + step]), 2) for i in starts]

    def pick(values: list[float | None], worst: bool) -> list[float | None]:
        out: list[float | None] = []
        for i in starts:
            seen = [v for v in values[i:i + step] if v is not None]
            out.append(None if not seen else (max(seen) if worst else round(sum(seen) / len(seen), 3)))
        return out

    out = dict(series)
    out["seconds"] = [series["seconds"][i] for i in starts]
    for key in ("calls", "refusals", "anomalies", "faults"):
        out[key] = {k: mean(v) for k, v in series[key].items()}
    out["latency_ms"] = {op: {"p50": pick(v["p50"], False), "p99": pick(v["p99"], True)}
                         for op, v in series["latency_ms"].items()}
    return out, step


def valid(series: object) -> bool:
    """Whether ``series`` has the shape above (the HTML report draws nothing from anything else)."""
    if not isinstance(series, Mapping) or any(k not in series for k in KEYS):
        return False
    n = len(series["seconds"])
    if series["seconds"] != list(range(n)):
        return False
    for key in ("calls", "refusals", "anomalies", "faults"):
        if not isinstance(series[key], Mapping) or any(len(v) != n for v in series[key].values()):
            return False
    lat = series["latency_ms"]
    return isinstance(lat, Mapping) and all(len(v.get("p50", ())) == n and len(v.get("p99", ())) == n
                                            for v in lat.values())
