"""croupier's end-of-run report from a Locust run: pure functions over plain data.

Each Locust process (the local runner, or every worker) keeps a ledger of its own players and
sends a *snapshot* of it (anomaly counts and evidence, calls, rounds, faults, what stayed in
doubt) with each statistics report; the master keeps the latest per worker and merges them
here with Locust's merged statistics into the report ``croupier run`` prints — the same keys,
so :func:`simulator.report.summary.print_summary` and :func:`simulator.report.junit.junit_xml`
serve both — plus the thresholds' results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from simulator.findings import Severity
from simulator.ledger import Anomaly
from simulator.report import model

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


def build(stats: Mapping[str, Any], merged: Mapping[str, Any], thresholds: list[verdict.Threshold], *,
          scenario: str, target: str, seed: int, run_id: str, workers: int, topology: str,
          exceptions: int = 0, fail_on: Severity = Severity.CONTRACT) -> dict[str, Any]:
    """The run's report: ``croupier run``'s keys, Locust's rows, the thresholds and the verdict
    (``error`` when nothing was tested, ``fail`` on a failing finding, a threshold or the load test's
    own errors, else ``pass``)."""
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
    if error and not reasons:
        reasons.append(error)
    return {
        "verdict": "fail" if (failing or merged["unsettled"] or failed or exceptions) else ("error" if error else "pass"),
        "error": error,
        "fail_on": str(fail_on),
        "reasons": reasons,
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
