"""What every report of a run says, computed once: findings by severity, the verdict, the coverage table.

``croupier run`` (summary, JSON, JUnit, HTML, ``--workers`` merging) and ``croupier load`` (the
Locust master's summary) build their reports from the same counts with these functions, so a
kind has one severity and a run one verdict wherever it is read.

Verdicts: ``error`` — the run could not test what it was asked to (nothing reachable, nobody
seated, nothing judged); ``fail`` — a finding of a severity that fails the run (``--fail-on``,
default ``contract``: money and contract findings fail, notes never do); ``pass`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ..protocol.findings import KINDS, RULES, SEVERITY_ORDER, Severity, fails

RUN_RULES: Final = (
    "operations-authenticate",
    "operations-effect",
    "operations-success-shape",
    "operations-regular-win-needs-bet",
    "operations-round-closed",
    "idempotency-1-no-change",
    "idempotency-1-original-id",
    "idempotency-2-mismatch",
    "idempotency-3-rejected-not-recorded",
    "idempotency-4-rollback-once",
    "idempotency-5-tombstone",
    "idempotency-6-rollback-only-bets",
    "idempotency-7-serialized",
    "idempotency-7-concurrent-duplicates",
    "idempotency-7-never-negative",
    "sessions-money-owed-is-paid",
    "transport-signature",
    "money-currency",
    "errors-definitive",
    "provider-settles",
)
"""The rules a run can exercise, in the order the coverage table lists them (any other rule a
finding names is listed after them)."""

VERDICTS: Final = ("pass", "fail", "error")


def severity_name(value: str) -> Severity:
    """``--fail-on`` on the command line: note, contract or money."""
    try:
        return Severity(value)
    except ValueError:
        raise ValueError(f"--fail-on must be one of {', '.join(s.value for s in SEVERITY_ORDER)}, got {value!r}") \
            from None


def by_severity(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Counts of findings by kind, grouped by severity (money, contract, note; empty kinds left out)."""
    out: dict[str, dict[str, int]] = {str(s): {} for s in SEVERITY_ORDER}
    for kind, n in counts.items():
        if n and kind in KINDS:
            out[str(KINDS[kind].severity)][kind] = int(n)
    return out


def failing(counts: Mapping[str, int], fail_on: Severity = Severity.CONTRACT) -> int:
    """How many findings fail a run that fails on ``fail_on`` and anything worse."""
    return sum(int(n) for kind, n in counts.items() if kind in KINDS and fails(KINDS[kind].severity, fail_on))


def verdict(counts: Mapping[str, int], fail_on: Severity = Severity.CONTRACT, error: str | None = None) -> str:
    """``fail`` when a finding fails the run (even beside an error: it is true all the same), else
    ``error`` when the run could not test what it was asked to, else ``pass``."""
    if failing(counts, fail_on):
        return "fail"
    return "error" if error else "pass"


def exit_code(verdict_: str) -> int:
    return {"pass": 0, "fail": 1}.get(verdict_, 2)


def coverage_rows(raw: Mapping[str, Mapping[str, Any]], fail_on: Severity = Severity.CONTRACT) -> list[dict[str, Any]]:
    """The coverage table: for each rule a run can exercise (and any other a finding names), how many
    calls exercised it and the result: ``pass``, ``fail`` (with the kinds found), ``not exercised``, or
    ``not on this wire`` for a PROTOCOL.md rule the dialect's semantics replace (``replaced_by`` names the
    dialect's rule that speaks instead)."""
    rules = list(RUN_RULES) + sorted(r for r in raw if r not in RUN_RULES and r in RULES)
    rows = []
    for rule_id in rules:
        entry = raw.get(rule_id, {})
        calls = int(entry.get("calls", 0))
        found = {k: int(n) for k, n in dict(entry.get("findings", {})).items() if n}
        rule = RULES[rule_id]
        bad = {k: n for k, n in found.items() if k in KINDS and fails(KINDS[k].severity, fail_on)}
        instead = entry.get("replaced_by")
        if bad:
            result = "fail"
        elif calls or found:
            result = "pass"
        elif instead:
            result = "not on this wire"
        else:
            result = "not exercised"
        row = {"rule": rule_id, "title": rule.title, "section": rule.section, "calls": calls,
               "findings": found, "result": result}
        if instead:
            row["replaced_by"] = str(instead)
        rows.append(row)
    return rows


def coverage_raw(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows back to counts (to merge several reports)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        out[r["rule"]] = {"calls": int(r.get("calls", 0)), "findings": dict(r.get("findings", {}))}
        if r.get("replaced_by"):
            out[r["rule"]]["replaced_by"] = r["replaced_by"]
    return out


def merge_coverage(parts: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Several processes' raw coverage as one (counts add up)."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for rule, entry in part.items():
            mine = out.setdefault(rule, {"calls": 0, "findings": {}})
            mine["calls"] += int(entry.get("calls", 0))
            if entry.get("replaced_by"):
                mine["replaced_by"] = entry["replaced_by"]
            for kind, n in dict(entry.get("findings", {})).items():
                mine["findings"][kind] = mine["findings"].get(kind, 0) + int(n)
    return out


def describe_result(row: Mapping[str, Any]) -> str:
    """A coverage row's result in a few words: ``pass``, ``not exercised``, ``fail: double_apply ×3``…"""
    found = row.get("findings") or {}
    kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(found.items()))
    if row["result"] == "fail":
        return f"fail: {kinds}"
    if found:
        return f"pass (noted: {kinds})"
    if row.get("replaced_by"):
        return f"not on this wire (see {row['replaced_by']})"
    return str(row["result"])
