"""croupier's end-of-run report from a Locust run: pure functions over plain data.

Each Locust process (the local runner, or every worker) keeps a ledger of its own players and
sends a *snapshot* of it (anomaly counts and evidence, calls, rounds, faults, what stayed in
doubt) with each statistics report; the master keeps the latest per worker and merges them
here with Locust's merged statistics into the report ``croupier run`` prints — the same keys,
so :func:`simulator.report.summary.print_summary` and :func:`simulator.report.junit.junit_xml`
serve both — plus the thresholds' results and the per-second series of
:mod:`simulator.report.series` (the same shape as ``croupier run``'s), which the master's
:class:`loadtests.sampler.Sampler` builds with :func:`sample`, :func:`step` and :func:`series_of`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import simulator
from simulator.judge.ledger import Anomaly
from simulator.protocol.findings import Severity
from simulator.report import model
from simulator.report import series as series_shape

from . import verdict

MAX_FINDINGS_PER_KIND = 20


def merge_snapshots(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several processes' snapshots as one (counts add up; evidence is capped per kind)."""
    out: dict[str, Any] = {"players": 0, "calls": Counter(), "results": Counter(), "rounds": Counter(),
                           "faults": Counter(), "anomalies": Counter(), "findings": [], "unsettled": 0,
                           "errors": [], "nodes": {}, "causes": Counter()}
    coverage = []
    per_kind: Counter[str] = Counter()
    for snap in snapshots:
        out["players"] += snap.get("players", 0)
        for key in ("calls", "results", "rounds", "faults", "anomalies", "causes"):
            out[key].update(snap.get(key, {}))
        coverage.append(snap.get("coverage", {}))
        for f in snap.get("findings", []):
            if per_kind[f["kind"]] < MAX_FINDINGS_PER_KIND:
                per_kind[f["kind"]] += 1
                out["findings"].append(f)
        out["unsettled"] += snap.get("unsettled", 0)
        out["errors"].extend(snap.get("errors", []))
        out["nodes"][snap.get("node", "?")] = {"players": snap.get("players", 0), "calls": dict(snap.get("calls", {})),
                                               "final": bool(snap.get("final"))}
    for key in ("calls", "results", "rounds", "faults", "anomalies", "causes"):
        out[key] = dict(out[key])
    out["errors"] = out["errors"][:50]
    out["coverage"] = model.merge_coverage(coverage)
    return out


def _error(merged: Mapping[str, Any]) -> str | None:
    """Why the load test tested nothing (None: it did test)."""
    causes = Counter(merged.get("causes", {}))
    cause = causes.most_common(1)[0][0] if causes else None
    if not merged["players"]:
        return cause or "no player could be provisioned or authenticated"
    calls = merged.get("calls", {})
    money = ("bet", "win", "rollback", "batch")
    if not any(calls.get(op) for op in money):
        return "no round was played: nothing was checked"
    if not any(n for k, n in merged.get("results", {}).items()
               if k.split(":", 1)[0] in money and not k.endswith(":unknown")):
        return "no call got a definitive answer: nothing was checked"
    return None


def sample(entries: Iterable[tuple[str, int, int, Mapping[Any, int]]], results: Mapping[str, int],
           faults: Mapping[str, int], anomalies: Mapping[str, int]) -> dict[str, Any]:
    """A cumulative reading of a running load test: each protocol row's (name, requests, failures,
    latency histogram) as Locust has them, and croupier's counters (refusals by code are read from
    the ``op:CODE`` results)."""
    refusals: Counter[str] = Counter()
    for key, n in results.items():
        code = key.split(":", 1)[-1]
        if code not in ("ok", "unknown"):
            refusals[code] += int(n)
    return {"rows": {name: (int(req), int(fail), {str(k): int(v) for k, v in rt.items()})
                     for name, req, fail, rt in entries},
            "refusals": dict(refusals), "faults": {k: int(v) for k, v in faults.items()},
            "anomalies": {str(k): int(v) for k, v in anomalies.items() if v}}


def _minus(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: n - int(before.get(k, 0)) for k, n in now.items() if n - int(before.get(k, 0)) > 0}


def step(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> dict[str, Any]:
    """What happened between two readings: calls, p50/p99 of the calls that ended in between
    (None without any), refusals, faults and findings."""
    rows_before = before["rows"] if before else {}
    calls: dict[str, int] = {}
    p50: dict[str, float | None] = {}
    p99: dict[str, float | None] = {}
    for name, (req, _fail, rt) in now["rows"].items():
        req0, _, rt0 = rows_before.get(name, (0, 0, {}))
        calls[name] = max(0, req - req0)
        delta = _minus(rt, rt0)
        p50[name] = verdict.percentile(delta, 50) if delta else None
        p99[name] = verdict.percentile(delta, 99) if delta else None
    out: dict[str, Any] = {"calls": calls, "p50": p50, "p99": p99}
    for key in ("refusals", "faults", "anomalies"):
        out[key] = _minus(now[key], before[key] if before else {})
    return out


def fold(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Two consecutive steps as one (a coarser bucket of a long test's series): counts add up, p99 is the
    worse of the two, p50 the later's (as two steps in one second are read by :func:`series_of`)."""
    out: dict[str, Any] = {}
    for key in ("calls", "refusals", "faults", "anomalies"):
        total = dict(before[key])
        for k, n in after[key].items():
            total[k] = total.get(k, 0) + n
        out[key] = total
    ops = set(before["p50"]) | set(after["p50"])
    out["p50"] = {op: after["p50"].get(op) if after["p50"].get(op) is not None else before["p50"].get(op) for op in ops}
    out["p99"] = {op: max((v for v in (before["p99"].get(op), after["p99"].get(op)) if v is not None), default=None)
                  for op in ops}
    return out


def add_step(steps: list[tuple[int, dict[str, Any]]], second: int, st: dict[str, Any], width: int,
             max_points: int) -> int:
    """Keep ``st``, the step of ``second``, in ``steps`` with at most ``max_points`` buckets of ``width``
    seconds (returned: doubled, and every step folded into its bucket's first second, when ``second``
    would need more), so the master of a soak of any length keeps a bounded series, as ``RunStats`` does.
    Two steps of one bucket (at width 1: of one second, the last reading's and the loop's) are folded."""
    if second // width >= max_points:
        while second // width >= max_points:
            width *= 2
        folded: list[tuple[int, dict[str, Any]]] = []
        for s, old in steps:
            label = s // width * width
            if folded and folded[-1][0] == label:
                folded[-1] = (label, fold(folded[-1][1], old))
            else:
                folded.append((label, dict(old)))
        steps[:] = folded
    label = second // width * width
    if steps and steps[-1][0] == label:
        steps[-1] = (label, fold(steps[-1][1], st))
    else:
        steps.append((label, st))
    return width


def series_of(steps: Iterable[tuple[int, Mapping[str, Any]]], t0: str | None,
              settling_from: int | None, spread: int = 1) -> dict[str, Any]:
    """The run's series (:mod:`simulator.report.series`) from its steps, each at the second it covers;
    two steps in one second add up (their latencies: the later step's).  ``spread``: statistics that
    arrive every ``spread`` seconds (a distributed run's worker reports) are spread evenly over the
    empty seconds before them, up to ``spread`` seconds in all (:func:`spread_bursts`)."""
    by_second: dict[int, list[Mapping[str, Any]]] = {}
    for second, st in steps:
        by_second.setdefault(max(0, int(second)), []).append(st)
    last = max([*by_second, *([settling_from] if settling_from is not None else [])], default=-1)
    seconds = list(range(last + 1))
    names: dict[str, set[str]] = {k: set() for k in ("calls", "refusals", "faults", "anomalies")}
    for sts in by_second.values():
        for st in sts:
            for key, found in names.items():
                found.update(st[key])
    out = series_shape.empty(t0)
    out["seconds"] = seconds
    out["settling_from"] = settling_from
    for key, found in names.items():
        out[key] = {n: [sum(int(st[key].get(n, 0)) for st in by_second.get(s, [])) for s in seconds]
                    for n in sorted(found)}
    out["calls"] = {op: v for op, v in out["calls"].items() if any(v)}

    def latest(op: str, p: str, s: int) -> float | None:
        got = [st[p].get(op) for st in by_second.get(s, []) if st[p].get(op) is not None]
        return got[-1] if got else None

    out["latency_ms"] = {op: {"p50": [latest(op, "p50", s) for s in seconds], "p99": [latest(op, "p99", s) for s in seconds]}
                         for op in out["calls"]}
    return spread_bursts(out, spread) if spread > 1 else out


def spread_bursts(series: dict[str, Any], spread: int) -> dict[str, Any]:
    """Counts that arrived in one second after up to ``spread - 1`` seconds with nothing, spread evenly over
    those seconds (integer shares, the remainder on the latest seconds: the sums stay exact); their
    latencies are shown over the same seconds.  A distributed Locust run's workers report every few seconds:
    without this its charts would be a comb of spikes and zeros."""
    keys = ("calls", "refusals", "faults", "anomalies")
    n = len(series["seconds"])
    busy = [any(series[k][name][i] for k in keys for name in series[k]) for i in range(n)]
    gap = 0
    for i in range(n):
        if not busy[i]:
            gap += 1
            continue
        width = min(gap, spread - 1) + 1
        gap = 0
        if width == 1:
            continue
        first = i - width + 1
        for k in keys:
            for values in series[k].values():
                total, values[i] = values[i], 0
                share, rest = divmod(total, width)
                for j in range(width):
                    values[first + j] = share + (1 if j >= width - rest else 0)
        for lat in series["latency_ms"].values():
            for p in ("p50", "p99"):
                for j in range(first, i):
                    lat[p][j] = lat[p][i]
    return series


def build(stats: Mapping[str, Any], merged: Mapping[str, Any], thresholds: list[verdict.Threshold], *,
          scenario: str, target: str, seed: int, run_id: str, workers: int, topology: str,
          exceptions: int = 0, fail_on: Severity = Severity.CONTRACT, series: Mapping[str, Any] | None = None,
          dialect: str | None = None, lost: Sequence[str] = ()) -> dict[str, Any]:
    """The run's report: ``croupier run``'s keys, Locust's rows, the thresholds and the verdict
    (``error`` when nothing was tested, ``fail`` on a failing finding, a threshold or the load test's
    own errors, else ``pass``).

    ``lost`` names the workers that never sent their final report (killed, cut off from the master): their
    players' last calls were never settled nor their balances reconciled, so the run cannot pass — what
    they did check still fails it, and otherwise the verdict is ``error``: not everything was tested."""
    anomalies = {str(k): int(merged["anomalies"].get(str(k), 0)) for k in Anomaly}
    results = verdict.evaluate(thresholds, stats, anomalies, merged["unsettled"])
    call_type = "via-provider" if topology == "provider" else "wallet"
    rows = [e for e in stats["entries"] if e["type"] == call_type]
    by_op: dict[str, list[Mapping[str, Any]]] = {}
    for e in rows:
        by_op.setdefault(e["name"], []).append(e)
    latency = {op: verdict.latency_summary(verdict.merge(es)) for op, es in sorted(by_op.items())}
    calls = {op: v["count"] for op, v in latency.items()}
    duration = float(stats.get("duration_s") or 0.0)
    reasons = []
    failing = model.failing(anomalies, fail_on)
    if failing:
        groups = model.by_severity(anomalies)
        reasons.append(", ".join(f"{sum(groups[str(sev)].values())} {sev} findings" for sev in
                                 (Severity.MONEY, Severity.CONTRACT, Severity.NOTE)
                                 if groups[str(sev)] and model.failing(groups[str(sev)], fail_on)))
    if merged["unsettled"]:
        reasons.append(f"{merged['unsettled']} calls still in doubt")
    failed = [r for r in results if not r.passed]
    if failed:
        reasons.append(f"{len(failed)} of {len(results)} thresholds")
    if exceptions:
        reasons.append(f"{exceptions} errors in the load test's own code")
    error = _error(merged)
    if lost and not error:
        error = (f"{len(lost)} worker(s) sent no final report ({', '.join(sorted(lost))}): their players' last "
                 "calls were not settled and their balances not reconciled")
    if lost and error is not None and error not in reasons and (failing or merged["unsettled"] or failed or exceptions):
        reasons.append(error)
    if error and not reasons:
        reasons.append(error)
    return {
        "verdict": "fail" if (failing or merged["unsettled"] or failed or exceptions) else ("error" if error else "pass"),
        "error": error,
        "fail_on": str(fail_on),
        "reasons": reasons,
        "lost_workers": sorted(lost),
        "scenario": scenario,
        "wallet": target,
        "seed": seed,
        "run_id": run_id,
        "engine": "locust",
        "topology": topology,
        "workers": workers,
        "elapsed_s": round(duration, 3),
        "players": merged["players"],
        "calls": calls,
        "batched": calls.get("batch", 0),
        "results": merged["results"],
        "calls_per_s": round(sum(calls.values()) / duration, 1) if duration else 0.0,
        "rounds": merged["rounds"],
        "faults": merged["faults"],
        "latency_ms": latency,
        "findings_by_severity": model.by_severity(anomalies),
        "anomalies": anomalies,
        "findings": merged["findings"],
        "coverage": model.coverage_rows(merged.get("coverage", {}), fail_on),
        "skipped": [],
        "unsettled": merged["unsettled"],
        "errors": merged["errors"],
        "thresholds": [r.to_json() for r in results],
        "nodes": merged["nodes"],
        "dialect": dialect,
        "croupier_version": simulator.__version__,
        "series": dict(series) if series is not None else series_shape.empty(),
        "locust": {
            "requests": sum(e["requests"] for e in stats["entries"] if e["type"] != verdict.ANOMALY_TYPE),
            "failures": sum(e["failures"] for e in stats["entries"] if e["type"] != verdict.ANOMALY_TYPE),
            "rows": [{k: v for k, v in e.items() if k != "response_times"}
                     | {"p50": verdict.row_percentile(e, 50), "p99": verdict.row_percentile(e, 99)}
                     for e in stats["entries"]],
            "errors": stats.get("errors", []),
            "exceptions": exceptions,
        },
    }
