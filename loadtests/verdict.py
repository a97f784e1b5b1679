"""Pass/fail thresholds for CI, checked against a run's statistics: parse, measure, judge.

A threshold states when the run *fails*::

    p99(bet)>250ms        the 99th percentile of bet latency above 250 ms
    p95>100ms             … of every request (anomaly rows excluded)
    avg(wallet win)>20ms  a row picked by type and name ("wallet", "via-provider", "provider")
    error_rate>0.1%       failed requests / requests (also 0.001); error_rate(bet) for one row
    rps<500               fewer than 500 requests per second over the run
    failures(rollback)>0  a count; also requests(...)
    anomalies>0           money and contract findings of the ledger (anomalies(double_apply) for one kind,
                          anomalies(wallet_choice) counts notes); unsettled>0

Latency metrics: pNN or pNN.N (p50, p99, p99.9), median, avg (or mean), min, max; values in
ms (the default) or s.  Comparisons: ``>``, ``>=``, ``<``, ``<=``.  A threshold whose rows saw
no request fails ("not measured"): a typo never passes a CI gate silently.

Statistics come as plain dictionaries (see :func:`entry`), made from Locust's in the Locust
process; nothing here imports Locust, so the command line validates ``--fail-on`` before it
starts anything.

``croupier run`` takes the same ``--fail-on``: a severity (money, contract, note) or a threshold
(:class:`FailOnAction`), measured on its own statistics (:func:`run_statistics`: one ``wallet`` row per
operation, from its exact latency histograms).
"""

from __future__ import annotations

import argparse
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from simulator.judge.stats import RunStats, _upper
from simulator.protocol.findings import KINDS, Severity

SEVERITIES: Final = tuple(s.value for s in Severity)
"""The ``--fail-on`` values that name a severity (the least severe finding that fails the run), not a threshold."""
ANOMALY_TYPE: Final = "ANOMALY"
"""The request type of the rows that count ledger anomalies in Locust's statistics."""

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
}
_LATENCY: Final = ("median", "avg", "mean", "min", "max")
_COUNTS: Final = ("requests", "failures", "anomalies", "unsettled")
_RATES: Final = ("error_rate", "fail_ratio")
_PATTERN: Final = re.compile(
    r"^\s*(?P<metric>[a-z_]+|p\d{1,2}(?:\.\d+)?)\s*(?:\(\s*(?P<selector>[^()]*?)\s*\))?\s*"
    r"(?P<op>>=|<=|>|<)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%|/s)?\s*$"
)


class ThresholdError(ValueError):
    """A threshold that cannot be parsed (exit code 2 on the command line)."""


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str
    selector: str | None
    op: str
    limit: float
    """In ms for latencies, a fraction for rates, a count or requests per second otherwise."""

    @property
    def unit(self) -> str:
        if self.is_latency:
            return "ms"
        if self.metric in _RATES:
            return "%"
        return "/s" if self.metric == "rps" else ""

    @property
    def is_latency(self) -> bool:
        return self.metric in _LATENCY or self.metric.startswith("p")

    def show(self, value: float) -> str:
        if self.metric in _RATES:
            return f"{value * 100:.3g}%"
        if self.is_latency:
            return f"{value:.1f}ms" if value >= 1 or value == 0 else f"{value:.3g}ms"
        if self.metric == "rps":
            return f"{value:.1f}/s"
        return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Result:
    threshold: Threshold
    passed: bool
    measured: float | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"threshold": self.threshold.text, "passed": self.passed, "measured": self.measured,
                "message": self.message}


def parse(text: str) -> Threshold:
    m = _PATTERN.match(text)
    if m is None:
        raise ThresholdError(f"cannot read threshold {text!r}: expected e.g. 'p99(bet)>250ms' or 'error_rate>0.1%'")
    metric, selector, op, value, unit = m["metric"], m["selector"], m["op"], float(m["value"]), m["unit"]
    if selector == "":
        selector = None
    if metric.startswith("p") and metric[1:2].isdigit():
        pct = float(metric[1:])
        if not 0 < pct < 100:
            raise ThresholdError(f"{text!r}: a percentile is between p0 and p100 (exclusive)")
        kind = "latency"
    elif metric in _LATENCY:
        kind = "latency"
    elif metric in _RATES:
        kind = "rate"
    elif metric in _COUNTS:
        kind = "count"
    elif metric == "rps":
        kind = "rps"
    else:
        known = "pNN, median, avg, min, max, rps, requests, failures, error_rate, anomalies, unsettled"
        raise ThresholdError(f"{text!r}: unknown metric {metric!r} (known: {known})")
    if kind == "latency":
        if unit not in (None, "ms", "s"):
            raise ThresholdError(f"{text!r}: a latency is in ms or s")
        value = value * 1000 if unit == "s" else value
    elif kind == "rate":
        if unit not in (None, "%"):
            raise ThresholdError(f"{text!r}: a rate is a fraction (0.001) or a percentage (0.1%)")
        value = value / 100 if unit == "%" else value
        if value > 1:
            raise ThresholdError(f"{text!r}: a rate is at most 100%")
    elif kind == "rps":
        if unit not in (None, "/s"):
            raise ThresholdError(f"{text!r}: rps is requests per second")
    elif unit is not None:
        raise ThresholdError(f"{text!r}: {metric} is a count, without a unit")
    if metric == "unsettled" and selector:
        raise ThresholdError(f"{text!r}: unsettled takes no row")
    return Threshold(text.strip(), metric, selector, op, value)


def parse_all(texts: Iterable[str]) -> list[Threshold]:
    return [parse(t) for t in texts]


# -- statistics as plain data ---------------------------------------------------------
def entry(type_: str, name: str, requests: int, failures: int, response_times: Mapping[Any, int],
          total_ms: float, max_ms: float, min_ms: float) -> dict[str, Any]:
    """One row of the statistics: ``response_times`` maps a (rounded) latency in ms to a count."""
    return {"type": type_, "name": name, "requests": requests, "failures": failures,
            "response_times": {str(k): int(v) for k, v in response_times.items()},
            "total_ms": total_ms, "max_ms": max_ms, "min_ms": min_ms}


def percentile(response_times: Mapping[str, int], pct: float) -> float:
    """The nearest-rank percentile of a latency histogram (0.0 when it is empty)."""
    items = sorted((float(k), n) for k, n in response_times.items())
    total = sum(n for _, n in items)
    if not total:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * total))
    seen = 0
    for ms, n in items:
        seen += n
        if seen >= rank:
            return ms
    return items[-1][0]  # pragma: no cover


def merge(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several rows as one (exact: the histograms add up)."""
    hist: dict[str, int] = {}
    requests = failures = 0
    total_ms = max_ms = 0.0
    min_ms: float | None = None
    for r in rows:
        requests += r["requests"]
        failures += r["failures"]
        total_ms += r["total_ms"]
        max_ms = max(max_ms, r["max_ms"])
        if r["requests"]:
            min_ms = r["min_ms"] if min_ms is None else min(min_ms, r["min_ms"])
        for k, n in r["response_times"].items():
            hist[k] = hist.get(k, 0) + n
    return {"requests": requests, "failures": failures, "response_times": hist, "total_ms": total_ms,
            "max_ms": max_ms, "min_ms": min_ms or 0.0}


def row_percentile(row: Mapping[str, Any], pct: float) -> float:
    """A row's percentile, clamped to the row's own [min, max].

    Locust keeps latencies rounded (to 1 ms under 100 ms, to 10 ms under 1 s, to 100 ms above), so the
    nearest-rank percentile of its histogram can exceed the slowest call it saw (a p99 of 56.0 beside a
    max of 55.855): no percentile may say more than what was measured, nor less than the fastest call."""
    if not row["requests"]:
        return 0.0
    value = percentile(row["response_times"], pct)
    hi = float(row["max_ms"])
    lo = min(float(row.get("min_ms") or 0.0), hi)
    return round(max(min(value, hi), lo), 3)


def latency_summary(row: Mapping[str, Any]) -> dict[str, float | int]:
    """count, mean, p50, p95, p99, max of a row: the shape ``croupier run`` reports latencies in
    (percentiles clamped to [min, max], see :func:`row_percentile`)."""
    n = int(row["requests"])
    return {"count": n, "mean": round(row["total_ms"] / n, 3) if n else 0.0,
            "p50": row_percentile(row, 50), "p95": row_percentile(row, 95),
            "p99": row_percentile(row, 99), "max": round(row["max_ms"], 3)}


def select(entries: Iterable[Mapping[str, Any]], selector: str | None, *, anomalies: bool = False) -> list[Mapping[str, Any]]:
    """The rows a selector names: ``None`` every row, ``NAME`` rows of that name, ``TYPE NAME`` one row.

    Anomaly rows are counted requests in Locust's table, but never part of a latency, a rate or
    a throughput (``anomalies=True`` selects them instead)."""
    rows = [e for e in entries if (e["type"] == ANOMALY_TYPE) == anomalies]
    if selector is None or selector == "*":
        return rows
    if " " in selector:
        type_, _, name = selector.partition(" ")
        return [e for e in rows if e["type"] == type_ and e["name"] == name.strip()]
    return [e for e in rows if e["name"] == selector]


def measure(t: Threshold, stats: Mapping[str, Any], anomaly_counts: Mapping[str, int], unsettled: int) -> float | None:
    """The value ``t`` compares (None: nothing was measured)."""
    if t.metric == "unsettled":
        return float(unsettled)
    if t.metric == "anomalies":
        if t.selector is None:
            return float(sum(n for k, n in anomaly_counts.items()
                             if k not in KINDS or KINDS[k].severity is not Severity.NOTE))
        return float(anomaly_counts.get(t.selector, 0))
    rows = select(stats["entries"], t.selector)
    if not rows:
        return None
    row = merge(rows)
    n = int(row["requests"])
    if t.metric == "requests":
        return float(n)
    if t.metric == "failures":
        return float(row["failures"])
    if not n:
        return None
    if t.metric in _RATES:
        return float(row["failures"]) / n
    if t.metric == "rps":
        duration = stats.get("duration_s") or 0.0
        return float(n / duration) if duration > 0 else None
    if t.metric in ("avg", "mean"):
        return float(row["total_ms"]) / n
    if t.metric == "max":
        return float(row["max_ms"])
    if t.metric == "min":
        return float(row["min_ms"])
    pct = 50.0 if t.metric == "median" else float(t.metric[1:])
    return row_percentile(row, pct)


def evaluate(thresholds: Iterable[Threshold], stats: Mapping[str, Any], anomaly_counts: Mapping[str, int],
             unsettled: int = 0) -> list[Result]:
    results = []
    for t in thresholds:
        value = measure(t, stats, anomaly_counts, unsettled)
        if value is None:
            results.append(Result(t, False, None, f"{t.text}: not measured (no request matched "
                                                  f"{t.selector!r})" if t.selector else f"{t.text}: not measured"))
            continue
        failed = _COMPARE[t.op](value, t.limit)
        what = f"{t.metric}({t.selector})" if t.selector else t.metric
        verdict = "FAIL" if failed else "ok"
        results.append(Result(t, not failed, value,
                              f"{verdict}: {what} = {t.show(value)} (fails when {t.op} {t.show(t.limit)})"))
    return results


# -- croupier run's --fail-on --------------------------------------------------------
class FailOnAction(argparse.Action):
    """``--fail-on SEVERITY|THRESHOLD`` (repeatable), as ``croupier load`` reads it: a severity sets the
    option's own value (``money``, ``contract``, ``note``; one at most), anything else is a threshold,
    parsed now (a typo is exit 2 before anything runs) and appended to ``thresholds``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        text = str(values).strip()
        if text in SEVERITIES:
            named = getattr(namespace, "_fail_on_named", None)
            if named is not None and named != text:
                parser.error(f"--fail-on names more than one severity: {named}, {text}")
            namespace._fail_on_named = text
            setattr(namespace, self.dest, text)
            return
        try:
            parse(text)
        except ThresholdError as exc:
            parser.error(f"argument --fail-on: {exc} (or a severity: {', '.join(SEVERITIES)})")
        namespace.thresholds = [*(getattr(namespace, "thresholds", None) or []), text]


def run_statistics(stats: RunStats, elapsed_s: float) -> dict[str, Any]:
    """``croupier run``'s statistics as threshold rows: one ``wallet`` row per operation (``bet``, ``win``,
    ``batch``…), its latencies from the run's histograms (2 %-wide buckets, each at its upper edge, so a
    percentile reads as the summary's does, clamped to the row's [min, max]).

    A failure here is a call that got no definitive answer (a timeout, a reset, a 5xx, garbage): ``croupier
    run`` judges refusals through its findings (``anomalies>0``), not per call as Locust's rows do."""
    entries = []
    for op, hist in sorted(stats.latency.items()):
        times: dict[float, int] = {}
        for bucket, n in hist.buckets.items():
            edge = round(_upper(bucket), 3)
            times[edge] = times.get(edge, 0) + n
        entries.append(entry("wallet", op, hist.count, int(stats.results.get(f"{op}:unknown", 0)), times,
                             hist.total_ms, hist.max_ms, hist.min_ms if hist.count else 0.0))
    return {"entries": entries, "duration_s": elapsed_s}


def check_run(report: dict[str, Any], stats: RunStats, texts: Sequence[str]) -> None:
    """Judge ``croupier run``'s thresholds into its report: ``thresholds`` (as ``croupier load``'s), and a
    failed one makes a passing verdict ``fail`` (an ``error`` stays one: nothing was tested)."""
    if not texts:
        return
    results = evaluate(parse_all(texts), run_statistics(stats, float(report.get("elapsed_s") or 0.0)),
                       report.get("anomalies", {}), int(report.get("unsettled") or 0))
    report["thresholds"] = [r.to_json() for r in results]
    failed = [r for r in results if not r.passed]
    if failed and report.get("verdict") == "pass":
        report["verdict"] = "fail"
    if failed:
        report["reasons"] = [*report.get("reasons", []), f"{len(failed)} of {len(results)} thresholds"]
