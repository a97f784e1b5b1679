"""The go-live checklist, item by item: what each item is judged by, and its status from the phases' reports.

Operators sign an integration against a checklist (the evaluation lists vendors publish: documentation
available, sandbox provided, authentication tested, rollback support; reporting verified, reconciliation
process, error handling reviewed; uptime, load testing completed, scalability validated; encryption
enforced, access controls verified, fraud prevention).  croupier's phases — the conformance check, the
fault scenarios, the load ramp, the security pass, the probes — each produce a report (the same JSON their
own commands write); here every item is judged from them, without I/O.

Two kinds of basis, never mixed up:

* **Protocol items** are judged by PROTOCOL.md's rules (or the dialect's documented semantics): an item
  fails only through a finding that quotes the rule it breaks, exactly as ``check`` and ``run`` report it.
  A wallet that made a choice the protocol allows passes.
* **Operator criteria** (an SLA, encryption, documentation, an export that agrees) are not in PROTOCOL.md:
  they are the go-live list's, with the threshold the operator gave (``--sla``).  Their status says so.
  Items no machine can judge (uptime guarantees, contracts) are ``for the operator``, with what croupier
  measured that bears on them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.findings import RULES, Severity, fails
from ..report.series import width as series_width


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_TESTED = "not tested"
    OPERATOR = "for the operator"


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase's outcome: its report (the JSON its own command writes), or why there is none."""

    name: str
    command: str
    """The command line that reproduces it."""
    report: Mapping[str, Any] | None = None
    skipped: str | None = None
    """Why the phase did not run (no budget left, not asked for, an input missing)."""
    error: str | None = None
    """Why it ran but produced no usable report."""


@dataclass
class Phases:
    """What certify ran, by role."""

    check: Phase | None = None
    scenarios: list[Phase] = field(default_factory=list)
    load: Phase | None = None
    security: Phase | None = None
    docs: Phase | None = None
    encryption: Phase | None = None
    export: Phase | None = None

    def all(self) -> list[Phase]:
        return [p for p in (self.docs, self.check, *self.scenarios, self.load, self.security, self.encryption,
                            self.export) if p is not None]

    def traffic(self) -> list[Phase]:
        """The phases that judged wallet calls with PROTOCOL.md's rules (their coverage and findings)."""
        return [p for p in (self.check, *self.scenarios, self.load) if p is not None and p.report is not None]


@dataclass
class Item:
    """One line of the checklist, judged."""

    id: str
    group: str
    title: str
    status: Status
    why: str
    basis: str
    """What the item is judged by: the PROTOCOL.md rules (their ids), or the operator's criterion."""
    evidence: list[dict[str, Any]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "group": self.group, "title": self.title, "status": str(self.status), "why": self.why,
                "basis": self.basis, "evidence": self.evidence, "commands": self.commands}


GROUPS = ("Documentation", "Integration", "Operations", "Performance", "Security")

RULE_ITEMS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # item id: (group, title, rule ids or prefixes ending in "-")
    "authentication": ("Integration", "Authentication tested",
                       ("sessions-", "operations-authenticate", "transport-signature", "choice-session",
                        "dialect-player-session", "dialect-sessions-operator")),
    "rollbacks": ("Integration", "Rollback support",
                         ("idempotency-4-", "idempotency-5-", "idempotency-6-", "rollback-finds-bet-by-player",
                          "choice-rollback-round", "choice-win-after-rollback", "dialect-rollback-")),
    "idempotency": ("Integration", "Retries and duplicates apply once (idempotency)",
                    ("idempotency-1-", "idempotency-2-", "idempotency-3-", "idempotency-7-concurrent-duplicates",
                     "provider-settles")),
    "round-closure": ("Integration", "Rounds close: zero-win closure, nothing after a closed round",
                      ("operations-round-closed", "operations-regular-win-needs-bet", "dialect-win-",
                       "dialect-rounds-")),
    "money": ("Integration", "Money moves exactly (minor units, currency, effect of each call)",
              ("money-", "operations-effect", "operations-success-shape", "dialect-currency-account",
               "dialect-zero-bet-", "dialect-rollback-amount-", "dialect-tx-scope-player")),
    "concurrency": ("Integration", "Concurrent calls never lose an update",
                    ("idempotency-7-serialized", "idempotency-7-never-negative")),
    "error-handling": ("Operations", "Error handling reviewed",
                       ("errors-", "transport-bad-request", "transport-unknown-fields", "choice-codes",
                        "operations-unknown-player")),
}
"""The protocol items: each is judged by the rules it names, over every phase that sent traffic."""


def rep(phase: Phase) -> Mapping[str, Any]:
    """A phase's report, or nothing."""
    return phase.report or {}


def _matches(rule: str, patterns: Sequence[str]) -> bool:
    return any(rule.startswith(p) if p.endswith("-") else rule == p for p in patterns)


@dataclass
class RuleView:
    """One rule over every traffic phase: how often it was exercised, what broke it."""

    exercised: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    phases: set[str] = field(default_factory=set)
    not_on_wire: bool = False


def rule_views(phases: Iterable[Phase], fail_on: Severity = Severity.CONTRACT) -> dict[str, RuleView]:
    """Every rule's exercise and failures, merged from check's and run's/load's reports (two shapes)."""
    out: dict[str, RuleView] = {}
    for phase in phases:
        report = phase.report or {}
        for row in report.get("coverage", []):
            view = out.setdefault(str(row["rule"]), RuleView())
            n = int(row.get("calls", row.get("exercised", 0)) or 0)
            view.exercised += n
            if n:
                view.phases.add(phase.name)
            if row.get("result") == "not on this wire":
                view.not_on_wire = True
        found = list(report.get("failures", []))  # check's: already the failing ones
        found += [f for f in report.get("findings", []) if _failing(f, fail_on)]  # run's and load's: every finding
        for f in found:
            view = out.setdefault(str(f.get("rule")), RuleView())
            view.failures.append({
                "phase": phase.name, "rule": f.get("rule"), "severity": f.get("severity"), "kind": f.get("kind"),
                "message": f.get("message"), "quote": f.get("quote") or f.get("protocol"),
                "section": f.get("section"), "evidence": (f.get("evidence") or f.get("calls") or [])[:3],
            })
    return out


def _failing(finding: Mapping[str, Any], fail_on: Severity) -> bool:
    try:
        return fails(Severity(str(finding.get("severity"))), fail_on)
    except ValueError:
        return False


def rule_item(item_id: str, views: Mapping[str, RuleView], commands: list[str]) -> Item:
    """A protocol item from the rules it names."""
    group, title, patterns = RULE_ITEMS[item_id]
    rules = sorted({r for r in list(views) + list(RULES) if _matches(r, patterns)})
    basis = "PROTOCOL.md: " + ", ".join(rules)
    broken = [f for r in rules for f in views.get(r, RuleView()).failures]
    exercised = {r: views[r].exercised for r in rules if r in views and views[r].exercised}
    if broken:
        kinds = sorted({f"{f['rule']} ({f['kind']})" for f in broken})
        return Item(item_id, group, title, Status.FAIL, f"{len(broken)} finding(s) break {', '.join(kinds)}", basis,
                    broken[:20], commands)
    if not exercised:
        return Item(item_id, group, title, Status.NOT_TESTED,
                    "no call exercised these rules (a shorter budget, or a wire that cannot carry them)", basis, [],
                    commands)
    quiet = [r for r in rules if r not in exercised and r in RULES and not views.get(r, RuleView()).not_on_wire
             and not r.startswith("dialect-")]
    why = f"{sum(exercised.values()):,} calls exercised {len(exercised)} rule(s), none broken"
    if quiet:
        why += f"; not exercised: {', '.join(quiet)}"
    return Item(item_id, group, title, Status.PASS, why, basis,
                [{"rule": r, "title": RULES[r].title if r in RULES else r, "calls": n} for r, n in exercised.items()],
                commands)


def assess(phases: Phases, *, sla_p99_ms: float, fail_on: Severity = Severity.CONTRACT,
           error_budget_pct: float = 1.0) -> list[Item]:
    """The whole checklist, in the go-live list's order."""
    traffic = phases.traffic()
    views = rule_views(traffic, fail_on)
    cmds = [p.command for p in traffic]
    items = [documentation(phases.docs), sandbox(traffic)]
    items += [rule_item(i, views, cmds) for i in ("authentication", "rollbacks", "idempotency",
                                                   "round-closure", "money", "concurrency")]
    items += [reporting(phases.export), reconciliation(traffic, fail_on), rule_item("error-handling", views, cmds),
              uptime(traffic)]
    items += [load_testing(phases.load, fail_on, error_budget_pct), scalability(phases.load, sla_p99_ms)]
    items += [encryption(phases.encryption)]
    items += security_items(phases.security)
    return items


def _absent(item_id: str, group: str, title: str, basis: str, phase: Phase | None, what: str) -> Item | None:
    """The item when its phase did not run or gave nothing (None: it did)."""
    if phase is None:
        return Item(item_id, group, title, Status.NOT_TESTED, f"{what} was not asked for", basis)
    if phase.skipped:
        return Item(item_id, group, title, Status.NOT_TESTED, phase.skipped, basis, commands=[phase.command])
    if phase.report is None:
        return Item(item_id, group, title, Status.NOT_TESTED, f"{what} gave no report: {phase.error or 'unknown'}",
                    basis, commands=[phase.command])
    return None


def documentation(phase: Phase | None) -> Item:
    basis = "operator criterion: the wallet's API is documented (an OpenAPI document naming every operation)"
    absent = _absent("documentation", "Documentation", "Documentation available", basis, phase,
                     "an OpenAPI document (--openapi)")
    if absent is not None:
        return absent
    assert phase is not None and phase.report is not None
    r = phase.report
    missing = list(r.get("missing", []))
    evidence = [{"source": r.get("source"), "title": r.get("title"), "version": r.get("version"),
                 "operations": r.get("operations", []), "missing": missing}]
    if r.get("error"):
        return Item("documentation", "Documentation", "Documentation available", Status.FAIL,
                    f"the document at {r.get('source')} could not be read: {r['error']}", basis, evidence,
                    [phase.command])
    if missing:
        return Item("documentation", "Documentation", "Documentation available", Status.FAIL,
                    f"the document names no path for {', '.join(missing)}", basis, evidence, [phase.command])
    return Item("documentation", "Documentation", "Documentation available", Status.PASS,
                f"{r.get('source')} documents every operation of the dialect ({len(r.get('operations', []))})",
                basis, evidence, [phase.command])


def sandbox(traffic: list[Phase]) -> Item:
    seated = max((int(rep(p).get("players", 0) or 0) if isinstance(rep(p).get("players"), int) else 0)
                 for p in traffic) if traffic else 0
    calls = sum(sum(dict(rep(p).get("calls", {})).values()) for p in traffic if isinstance(rep(p).get("calls"),
                                                                                              dict))
    why = (f"certify played against this wallet: {calls:,} calls, up to {seated} players seated at once"
           if traffic else "certify could not play against this wallet")
    return Item("sandbox", "Documentation", "Sandbox provided", Status.OPERATOR, why,
                "operator criterion: the provider has a sandbox to integrate against (a contract matter)",
                [{"calls": calls, "players": seated}])


def reporting(phase: Phase | None) -> Item:
    basis = "operator criterion: the wallet's own export agrees with what the provider sent, transaction by transaction"
    absent = _absent("reporting", "Operations", "Reporting verified", basis, phase, "the wallet's export (--export)")
    if absent is not None:
        return absent
    assert phase is not None and phase.report is not None
    r = phase.report
    problems = list(r.get("problems", []))
    evidence = [{k: r.get(k) for k in ("source", "rows", "matched", "missing", "unexpected", "different")}]
    evidence += problems[:20]
    if problems:
        return Item("reporting", "Operations", "Reporting verified", Status.FAIL,
                    f"{len(problems)} transaction(s) differ between croupier's ledger and the export", basis, evidence,
                    [phase.command])
    return Item("reporting", "Operations", "Reporting verified", Status.PASS,
                f"every one of {r.get('matched', 0):,} accepted transactions is in the export, with its amount",
                basis, evidence, [phase.command])


RECONCILE_KINDS = ("balance_mismatch", "no_definitive_answer")


def reconciliation(traffic: list[Phase], fail_on: Severity) -> Item:
    """Every run ends by settling what is in doubt and reading each balance once more (PROTOCOL.md, "How the
    provider side behaves"); the ledger's findings there are this item's."""
    runs = [p for p in traffic if "coverage" in rep(p) and "findings" in rep(p)]
    basis = "PROTOCOL.md: provider-settles, operations-effect (each run's settlement and final balance reads)"
    if not runs:
        return Item("reconciliation", "Operations", "Reconciliation process", Status.NOT_TESTED,
                    "no run settled and reconciled its players", basis)
    bad = [dict(f, phase=p.name) for p in runs for f in rep(p).get("findings", [])
           if _failing(f, fail_on) and (str(f.get("kind")) in RECONCILE_KINDS or f.get("rule") == "provider-settles")]
    unsettled = sum(int(rep(p).get("unsettled", 0) or 0) for p in runs)
    players = sum(int(rep(p).get("players", 0) or 0) for p in runs)
    if bad:
        return Item("reconciliation", "Operations", "Reconciliation process", Status.FAIL,
                    f"{len(bad)} finding(s) at the end of play: balances or calls in doubt that do not reconcile",
                    basis, bad[:20], [p.command for p in runs])
    return Item("reconciliation", "Operations", "Reconciliation process", Status.PASS,
                f"{players:,} players' balances read again at the end of {len(runs)} run(s) and matched the ledger; "
                f"{unsettled} call(s) left in doubt", basis, [{"players": players, "unsettled": unsettled}],
                [p.command for p in runs])


def uptime(traffic: list[Phase]) -> Item:
    """No machine can promise uptime; the share of calls that got a definitive answer bears on it."""
    answered = total = 0
    for p in traffic:
        for key, n in dict(rep(p).get("results", {})).items():
            total += int(n)
            answered += 0 if str(key).endswith(":unknown") else int(n)
    share = f"{100 * answered / total:.3f} %" if total else "no calls"
    return Item("uptime", "Operations", "Uptime", Status.OPERATOR,
                f"measured here: {share} of {total:,} calls got a definitive answer",
                "operator criterion: an availability guarantee (a contract matter)",
                [{"calls": total, "definitive": answered}])


def load_testing(phase: Phase | None, fail_on: Severity, error_budget_pct: float = 1.0) -> Item:
    basis = (f"PROTOCOL.md's rules under load (every finding of the load ramp), and the operator's error budget: at "
             f"most {error_budget_pct:g} % of the ramp's requests failed (--error-budget)")
    absent = _absent("load-testing", "Performance", "Load testing completed", basis, phase, "the load ramp")
    if absent is not None:
        return absent
    assert phase is not None and phase.report is not None
    r = phase.report
    bad = [f for f in r.get("findings", []) if _failing(f, fail_on)]
    locust = dict(r.get("locust") or {})
    requests, failures = int(locust.get("requests", 0) or 0), int(locust.get("failures", 0) or 0)
    rate = 100 * failures / requests if requests else 0.0
    figures = {"calls": sum(dict(r.get("calls", {})).values()), "calls_per_s": r.get("calls_per_s"),
               "elapsed_s": r.get("elapsed_s"), "unsettled": r.get("unsettled", 0), "requests": requests,
               "failures": failures, "error_rate_pct": round(rate, 3)}
    if bad:
        return Item("load-testing", "Performance", "Load testing completed", Status.FAIL,
                    f"{len(bad)} finding(s) under load", basis, [figures, *bad[:20]], [phase.command])
    if r.get("verdict") == "error":
        return Item("load-testing", "Performance", "Load testing completed", Status.FAIL,
                    f"the load ramp could not test the wallet: {r.get('error')}", basis, [figures], [phase.command])
    if rate > error_budget_pct:
        return Item("load-testing", "Performance", "Load testing completed", Status.FAIL,
                    f"{rate:.2f} % of {requests:,} requests failed under load, over the budget of {error_budget_pct:g} %",
                    basis, [figures, *list(locust.get("errors", []))[:10]], [phase.command])
    return Item("load-testing", "Performance", "Load testing completed", Status.PASS,
                f"{figures['calls']:,} calls at up to {r.get('peak_users', '?')} users, no finding", basis, [figures],
                [phase.command])


SUSTAINED_S = 3
"""Seconds in a row over the SLA that break it: one slow second (a pause of the wallet's, a few calls
whose worst is the p99) is reported, not judged a break."""


def capacity(report: Mapping[str, Any], sla_p99_ms: float) -> dict[str, Any]:
    """Throughput against users, second by second; where the SLA broke (the first of :data:`SUSTAINED_S`
    measured seconds in a row over it) and the most calls per second served within it before that.

    ``report["series"]`` is the load report's; ``report["users_by_second"]`` the users per second (the ramp's).
    A ramp longer than the series' resolution keeps has buckets of ``width`` seconds: a bucket's calls are a rate
    over its width, and "in a row" spans :data:`SUSTAINED_S` seconds, so fewer, wider buckets."""
    s = report.get("series") or {}
    width = max(1, series_width(s))
    seconds = list(s.get("seconds", []))
    users = list(report.get("users_by_second", []))
    calls = dict(s.get("calls", {}))
    p99 = {op: v.get("p99", []) for op, v in dict(s.get("latency_ms", {})).items()}
    settling = s.get("settling_from")
    points: list[dict[str, Any]] = []
    for i, sec in enumerate(seconds):
        if settling is not None and sec >= settling:
            break
        per_s = round(sum(int(v[i]) for v in calls.values() if i < len(v) and v[i]) / width)
        worst = max((float(v[i]) for v in p99.values() if i < len(v) and v[i] is not None), default=None)
        points.append({"second": sec, "users": users[i] if i < len(users) else None, "calls_per_s": per_s,
                       "p99_ms": worst})
    measured = [p for p in points if p["p99_ms"] is not None]
    over = [p["p99_ms"] > sla_p99_ms for p in measured]
    run = -(-SUSTAINED_S // width)  # buckets that span SUSTAINED_S seconds
    broke = next((measured[i] for i in range(len(measured) - run + 1) if all(over[i:i + run])), None)
    before = [p for p in measured if broke is None or p["second"] < broke["second"]]
    within = [p for p in before if p["p99_ms"] <= sla_p99_ms and p["calls_per_s"]]
    best = max(within, key=lambda p: p["calls_per_s"], default=None)
    spikes = [p for p in before if p["p99_ms"] > sla_p99_ms]
    return {"sla_p99_ms": sla_p99_ms, "points": points, "best": best, "broke_at": broke, "spikes": spikes,
            "sustained_s": SUSTAINED_S}


def scalability(phase: Phase | None, sla_p99_ms: float) -> Item:
    basis = f"operator criterion: p99 latency ≤ {sla_p99_ms:g} ms (--sla) as the users grow"
    absent = _absent("scalability", "Performance", "Scalability validated", basis, phase, "the load ramp")
    if absent is not None:
        return absent
    assert phase is not None and phase.report is not None
    cap = capacity(phase.report, sla_p99_ms)
    best, broke, spikes = cap["best"], cap["broke_at"], cap["spikes"]
    evidence = [{"best": best, "broke_at": broke, "sla_p99_ms": sla_p99_ms, "single_slow_seconds": spikes[:20]}]
    also = (f"; {len(spikes)} single second(s) over it before, not in a row (second "
            f"{', '.join(str(p['second']) for p in spikes[:5])})") if spikes else ""
    if best is None:
        return Item("scalability", "Performance", "Scalability validated", Status.FAIL,
                    f"no second of the ramp stayed within p99 ≤ {sla_p99_ms:g} ms before it broke", basis, evidence,
                    [phase.command])
    if broke is not None:
        return Item("scalability", "Performance", "Scalability validated", Status.FAIL,
                    f"the SLA broke at {broke['users'] or '?'} users ({SUSTAINED_S} s in a row over it from second "
                    f"{broke['second']}, p99 {broke['p99_ms']:.0f} ms); capacity within it before: "
                    f"{best['calls_per_s']:,} calls/s at {best['users'] or '?'} users{also}", basis, evidence,
                    [phase.command])
    return Item("scalability", "Performance", "Scalability validated", Status.PASS,
                f"p99 stayed ≤ {sla_p99_ms:g} ms up to the ramp's peak: {best['calls_per_s']:,} calls/s at "
                f"{best['users'] or '?'} users{also}", basis, evidence, [phase.command])


def encryption(phase: Phase | None) -> Item:
    basis = "operator criterion: money calls travel only over TLS (PROTOCOL.md does not say; the go-live list does)"
    absent = _absent("encryption", "Security", "Encryption enforced", basis, phase, "the encryption probe")
    if absent is not None:
        return absent
    assert phase is not None and phase.report is not None
    r = phase.report
    status = Status(str(r.get("status", "not tested")))
    return Item("encryption", "Security", "Encryption enforced", status, str(r.get("why", "")), basis, [dict(r)],
                [phase.command])


SECURITY_ITEMS = {
    "access-control": ("Access controls verified", ("signatures", "sessions")),
    "fraud-prevention": ("Fraud prevention", ("ids", "amounts", "bodies")),
}


def security_items(phase: Phase | None) -> list[Item]:
    """The security pass's attacks, by group: signatures and sessions are access control; attack strings,
    amounts and bodies are fraud prevention.  Each failure quotes its rule (the pass's report)."""
    out = []
    for item_id, (title, groups) in SECURITY_ITEMS.items():
        basis = f"PROTOCOL.md, through the security pass's {' and '.join(groups)} attacks"
        absent = _absent(item_id, "Security", title, basis, phase, "the security pass")
        if absent is not None:
            out.append(absent)
            continue
        assert phase is not None and phase.report is not None
        attacks = [a for a in phase.report.get("items", []) if a.get("group") in groups]
        failed = [a for a in attacks if a.get("status") == "fail"]
        passed = [a for a in attacks if a.get("status") == "pass"]
        if failed:
            out.append(Item(item_id, "Security", title, Status.FAIL,
                            f"{len(failed)} of {len(attacks)} attacks were not refused cleanly", basis, failed[:20],
                            [phase.command]))
        elif passed:
            out.append(Item(item_id, "Security", title, Status.PASS,
                            f"{len(passed)} attacks refused (or taken as ordinary data) with nothing changed"
                            + (f"; {len(attacks) - len(passed)} not tested on this wire" if len(passed) < len(attacks)
                               else ""), basis, [{"name": a.get("name"), "status": a.get("status")} for a in attacks],
                            [phase.command]))
        else:
            out.append(Item(item_id, "Security", title, Status.NOT_TESTED, "no attack of these groups could be sent",
                            basis, attacks[:20], [phase.command]))
    return out


def verdict(items: Iterable[Item]) -> str:
    """``fail`` when an item fails, else ``pass`` (items not tested, or for the operator, do not fail)."""
    return "fail" if any(i.status is Status.FAIL for i in items) else "pass"


def counts(items: Iterable[Item]) -> dict[str, int]:
    out = {str(s): 0 for s in Status}
    for i in items:
        out[str(i.status)] += 1
    return out
