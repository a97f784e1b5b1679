"""The metric families every component shares: names, labels, buckets, what each means (docs/metrics.md).

One set of names for the four components, told apart by a ``component`` label (``wallet``, ``provider``,
``proxy``, ``run``) rather than four copies of each family: one dashboard (docs/grafana/croupier.json)
queries them all, and ``sum by (component)`` never adds the proxy's view of a call to the wallet's.
The label is set by the process itself, so it holds whatever job name a ``prometheus.yml`` gives.

Families are made on first use (a family no component of this process feeds is not exposed at all), and
each labelled child is kept in a dictionary: ``labels()`` takes a lock and builds a key on every call,
the wallet's hot path takes one dictionary lookup per family instead (bench/README.md, the metrics figure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..protocol.calls import Ok, Outcome, Rejected
from ..protocol.findings import KINDS

__all__ = ["ANOMALIES", "CALLS", "ERRORS", "FAMILIES", "FAULTS", "Family", "Metrics", "component_names"]

BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Latency buckets in seconds: a wallet answers in about a millisecond on loopback, a provider gives up at 5 s."""

COMPONENTS: Final = ("wallet", "provider", "proxy", "run")

Kind = Literal["counter", "histogram", "gauge"]


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    """The name in the exposition without ``_total`` (prometheus_client adds it to counters)."""
    doc: str
    labels: tuple[str, ...]
    """Besides ``component``, which every family has first."""
    kind: Kind = "counter"

    @property
    def exposed(self) -> tuple[str, ...]:
        """The sample names a scrape shows for this family (what a dashboard may query)."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}_{s}" for s in ("bucket", "count", "sum"))
        return (self.name,)


CALLS: Final = Family(
    "croupier_calls", "Wallet calls by operation, dialect and outcome (ok; rejected: a definitive refusal; unknown: "
    "a timeout, reset, 5xx or unreadable answer; undecoded: a request the proxy could not read). The wallet counts "
    "the calls it answered, the provider and croupier run the calls they sent, the proxy the calls it forwarded",
    ("op", "dialect", "outcome"))
LATENCY: Final = Family(
    "croupier_call_latency_seconds", "Answer time of a wallet call by operation and dialect: the wallet's handling "
    "time, or the round trip as the provider, the proxy or croupier run measured it", ("op", "dialect"), "histogram")
ERRORS: Final = Family(
    "croupier_errors", "Calls whose answer was not a success, by operation, dialect and code (a protocol code, or "
    "'unknown' for an outcome unknown)", ("op", "dialect", "code"))
ANOMALIES: Final = Family(
    "croupier_anomalies", "Findings of croupier's ledger on the wallet's answers, by kind and severity (money, "
    "contract, note: docs/protocol.md is the rule each breaks)", ("kind", "severity"))
FAULTS: Final = Family(
    "croupier_faults_injected", "Faults injected on purpose, by fault and operation (croupier run's fault plan acts "
    "on a round: its op is empty)", ("fault", "op"))
ROUNDS: Final = Family(
    "croupier_rounds", "Game rounds played to their end, by status (settled, refused, rolled_back...)", ("status",))
PLAYERS: Final = Family(
    "croupier_players", "Players now: seated by croupier run, seen in the proxy's traffic, launched at the provider",
    (), "gauge")
PLAYING: Final = Family(
    "croupier_sessions_playing", "Sessions croupier run is playing now (a player's, or a live table's)", (), "gauge")
IN_DOUBT: Final = Family(
    "croupier_in_doubt", "Money calls whose outcome is still unknown (no definitive answer yet): what the end of "
    "the run settles", (), "gauge")
HELD: Final = Family("croupier_held_calls", "Calls the proxy's reorder fault holds back right now", (), "gauge")

FAMILIES: Final = (CALLS, LATENCY, ERRORS, ANOMALIES, FAULTS, ROUNDS, PLAYERS, PLAYING, IN_DOUBT, HELD)


def component_names() -> frozenset[str]:
    """Every sample name any component may expose (the dashboard's test checks its queries against them)."""
    return frozenset(n for f in FAMILIES for n in f.exposed)


def outcome_of(outcome: Outcome) -> tuple[str, str | None]:
    """An answer as the ``outcome`` label and the ``code`` of ``croupier_errors`` (None for a success)."""
    if isinstance(outcome, Ok):
        return "ok", None
    if isinstance(outcome, Rejected):
        return "rejected", str(outcome.code)
    return "unknown", "unknown"


def outcome_of_label(label: str) -> tuple[str, str | None]:
    """The same from the run statistics' one word (``ok``, a protocol code, or ``unknown``)."""
    if label == "ok":
        return "ok", None
    if label == "unknown":
        return "unknown", "unknown"
    return "rejected", label


class Metrics:
    """One component's metrics in one registry (never the process-wide default: two servers in one process,
    as in the tests and the sandbox, count apart).  With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client
    keeps the values in that directory instead, and :mod:`.exposition` adds every process's up."""

    def __init__(self, component: str, registry: CollectorRegistry | None = None) -> None:
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}: one of {', '.join(COMPONENTS)}")
        self.component = component
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._families: dict[str, Any] = {}
        self._children: dict[tuple[str, ...], Any] = {}

    def _family(self, family: Family) -> Any:
        made = self._families.get(family.name)
        if made is None:
            labels = ("component", *family.labels)
            if family.kind == "counter":
                made = Counter(family.name, family.doc, labels, registry=self.registry)
            elif family.kind == "histogram":
                made = Histogram(family.name, family.doc, labels, buckets=BUCKETS, registry=self.registry)
            else:  # the workers' values add up; a worker that ended no longer counts
                made = Gauge(family.name, family.doc, labels, registry=self.registry, multiprocess_mode="livesum")
            self._families[family.name] = made
        return made

    def child(self, family: Family, *values: str) -> Any:
        """The family's child for ``values`` (``component`` aside), made once."""
        key = (family.name, *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = self._family(family).labels(self.component, *values)
        return found

    def call(self, op: str, dialect: str, outcome: str, latency_s: float | None, code: str | None = None) -> None:
        self.child(CALLS, op, dialect, outcome).inc()
        if latency_s is not None:
            self.child(LATENCY, op, dialect).observe(latency_s)
        if code is not None:
            self.child(ERRORS, op, dialect, code).inc()

    def answer(self, op: str, dialect: str, outcome: Outcome, latency_s: float | None) -> None:
        """A call and the wallet's answer to it."""
        label, code = outcome_of(outcome)
        self.call(op, dialect, label, latency_s, code)

    def anomaly(self, kind: str) -> None:
        self.child(ANOMALIES, kind, str(KINDS[kind].severity)).inc()

    def fault(self, fault: str, op: str = "", n: int = 1) -> None:
        self.child(FAULTS, fault, op).inc(n)

    def rounds(self, status: str, n: int = 1) -> None:
        self.child(ROUNDS, status).inc(n)

    def gauge(self, family: Family, value: float) -> None:
        self.child(family).set(value)

    def gauge_function(self, family: Family, read: Callable[[], float]) -> None:
        """A gauge read when scraped (one process only: a worker pool's gauges are set, :meth:`gauge`)."""
        self.child(family).set_function(read)
