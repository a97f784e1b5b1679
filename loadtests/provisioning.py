"""Provisioning calls (the reference wallet's admin API), counted apart from the protocol's statistics.

Creating a player, minting a token or reading a balance through the operator's books is set-up, not
the protocol under test: a slow ``POST /admin/players`` (p99 ≈ 700 ms while the wallet's database is
busy) says nothing about ``bet``.  So these calls never reach Locust's request event (no per-name row,
nothing in the Aggregated row or its percentiles); each process records them here instead, its
snapshot carries them to the master, and croupier's summary states them separately: how many, how many
failed, how long they took.

Pure (no gevent, no Locust): the master merges and summarises with the same code the tests call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from simulator.judge.stats import Histogram


class Provisioning:
    """A stand-in for Locust's ``events.request`` hook, given to the admin API's HTTP session.

    Locust's session calls ``fire(**request_meta)`` when a request ends; here that records the call
    by name (``create player``, ``token``, ``player``) instead of adding a row to the statistics."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.latency: dict[str, Histogram] = {}

    def fire(self, *, name: str, response_time: float | None = None, exception: object = None,
             **_: Any) -> None:
        self.calls[name] += 1
        if exception is not None:
            self.failures[name] += 1
        hist = self.latency.get(name)
        if hist is None:
            hist = self.latency[name] = Histogram()
        hist.add(float(response_time or 0.0))

    def to_json(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "failures": dict(self.failures),
                "latency": {k: h.to_json() for k, h in self.latency.items()}}


def merge(parts: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Several processes' :meth:`Provisioning.to_json` as one (counts add up, histograms merge exactly)."""
    calls: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    latency: dict[str, Histogram] = {}
    for part in parts:
        if not part:
            continue
        calls.update(part.get("calls", {}))
        failures.update(part.get("failures", {}))
        for name, data in part.get("latency", {}).items():
            latency.setdefault(name, Histogram()).merge(Histogram.from_json(data))
    return {"calls": dict(calls), "failures": dict(failures), "latency": {k: h.to_json() for k, h in latency.items()}}


def summary(merged: Mapping[str, Any]) -> dict[str, Any]:
    """What the report says of provisioning: totals, the time it took, and the figures per call name
    (percentiles from :class:`~simulator.judge.stats.Histogram`: never above the slowest call)."""
    hists = {k: Histogram.from_json(v) for k, v in merged.get("latency", {}).items()}
    total = Histogram()
    for h in hists.values():
        total.merge(h)
    failures = merged.get("failures", {})
    return {
        "calls": total.count,
        "failures": sum(int(v) for v in failures.values()),
        "time_s": round(total.total_ms / 1000, 3),
        "latency_ms": total.summary(),
        "by_name": {k: {"failures": int(failures.get(k, 0)), **h.summary()} for k, h in sorted(hists.items())},
    }

