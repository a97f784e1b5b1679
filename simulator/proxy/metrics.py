"""The proxy's Prometheus metrics, served at ``/metrics`` on its control port.

One registry per proxy (never the process-wide default), so two proxies in one process — the tests —
count apart.  Names follow Prometheus' conventions: ``croupier_proxy_`` prefix, ``_total`` counters,
latency in seconds.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..judge.ledger import Anomaly

__all__ = ["CONTENT_TYPE_LATEST", "ProxyMetrics"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ProxyMetrics:
    """Calls, latency and errors by operation and dialect; anomalies by kind and severity; faults injected."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter("croupier_proxy_calls", "Calls forwarded to the wallet (or answered by a fault), by "
                             "operation, dialect and outcome (ok, rejected, unknown, undecoded)",
                             ("op", "dialect", "outcome"), registry=self.registry)
        self.latency = Histogram("croupier_proxy_call_latency_seconds", "The wallet's answer time as the proxy "
                                 "measured it, by operation and dialect", ("op", "dialect"), buckets=BUCKETS,
                                 registry=self.registry)
        self.errors = Counter("croupier_proxy_errors", "Answers that were not a success, by operation, dialect and "
                              "code (a protocol code, or 'unknown' for a timeout, reset, 5xx or unreadable answer)",
                              ("op", "dialect", "code"), registry=self.registry)
        self.anomalies = Counter("croupier_proxy_anomalies", "Findings of the ledger on the traffic, by kind and "
                                 "severity", ("kind", "severity"), registry=self.registry)
        self.faults = Counter("croupier_proxy_faults_injected", "Faults the proxy injected, by fault and operation",
                              ("fault", "op"), registry=self.registry)

    def gauges(self, in_doubt: Callable[[], float], held: Callable[[], float], players: Callable[[], float]) -> None:
        """Gauges read when scraped (nothing to keep up to date between scrapes)."""
        Gauge("croupier_proxy_in_doubt", "Money calls whose outcome is still unknown (no definitive answer yet)",
              registry=self.registry).set_function(in_doubt)
        Gauge("croupier_proxy_held_calls", "Calls held back by the reorder fault right now",
              registry=self.registry).set_function(held)
        Gauge("croupier_proxy_players", "Players seen in the traffic", registry=self.registry).set_function(players)

    def call(self, op: str, outcome: str, latency_s: float | None, code: str | None = None) -> None:
        self.calls.labels(op, self.dialect, outcome).inc()
        if latency_s is not None:
            self.latency.labels(op, self.dialect).observe(latency_s)
        if code is not None:
            self.errors.labels(op, self.dialect, code).inc()

    def anomaly(self, kind: str) -> None:
        self.anomalies.labels(kind, str(Anomaly(kind).severity)).inc()

    def fault(self, fault: str, op: str) -> None:
        self.faults.labels(fault, op).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
