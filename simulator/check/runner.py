"""Drive the machine with Hypothesis within a budget, and turn what it found into failures.

Hypothesis has no time budget, so a check is a series of Hypothesis runs of
growing size (each with its own seed, derived from ``--seed``).  A run that
finds counterexamples shrinks them for at most ``shrink_s`` (Hypothesis reruns
the minimal sequence once more, which is the evidence we report; cut short, the
shortest sequence seen is); their rules are then reported, and later runs end
an example that breaks one of them quietly (Hypothesis's ``reject()``) and stop
drawing the steps that serve only them, so the search goes on for the rules not
broken yet until the search budget (shrinking not counted), the examples or the
rules run out.  The example database (``--db-dir``) is replayed by the first
run of every check, so a counterexample found once is tried first the next time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition, Unsatisfiable, UnsatisfiedAssumption
from hypothesis.stateful import get_state_machine_test

from ..protocol.dialects import semantics_of, variants
from ..protocol.dialects.semantics import RULE_IDS
from ..protocol.findings import KINDS, Severity, fails
from .checker import replaced_rules
from .machine import CheckMachine, RunContext, StopSearch, machine_for
from .protocol import RULES, Rule, Violation
from .target import CheckError, Connection, Target
from .wire import CURRENCY_CODES

DEFAULT_DB_DIR = ".croupier/hypothesis"
DB_KEY = b"croupier-check-v1"
"""The database key of the machine: stable across wallets and runs, so saved counterexamples are tried first."""


class UnknownRule(ValueError):
    """--rules / --skip-rules named something that is no rule id (nor a prefix of one)."""


def select_rules(rules: Iterable[str] | None = None, skip: Iterable[str] = ()) -> frozenset[str]:
    """The rule ids judged and sought: ``rules`` (all when None) minus ``skip``.

    Each entry is a rule id of :data:`simulator.protocol.findings.RULES` or a prefix of ids (``idempotency-``,
    ``idempotency-7``, ``sessions``); an entry that names none raises :class:`UnknownRule`."""

    def expand(entries: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry in RULES:
                out.add(entry)
                continue
            stem = entry if entry.endswith("-") else entry + "-"
            matched = {r for r in RULES if r.startswith(stem)}
            if not matched:
                raise UnknownRule(f"no rule {entry!r}; the rules are: {', '.join(RULES)}")
            out |= matched
        return out

    chosen = expand(rules) if rules is not None else set(RULES)
    return frozenset(chosen - expand(skip))


def split_rules(text: str | None) -> list[str] | None:
    """A comma list from the command line (None stays None)."""
    return None if text is None else [t for t in (p.strip() for p in text.split(",")) if t]


@dataclass
class StopRequest:
    """A stop asked from outside the check: the command turns SIGINT/SIGTERM into :meth:`request`
    (this module never touches signals).

    Between two Hypothesis runs the request is noted and the search stops before the next one.
    While one runs, :meth:`request` raises ``KeyboardInterrupt`` — how Hypothesis itself is stopped
    at once (it drops the example in progress and records nothing) — so it must be called where that
    may be raised: from a signal handler of the thread running the check, as the command does."""

    signal: str | None = None
    """The signal's name once a stop was asked."""
    at: float | None = None
    """``time.monotonic()`` of the request."""
    searching: bool = False
    """Whether a Hypothesis run is going (set by the runner)."""

    @contextlib.contextmanager
    def during_search(self) -> Iterator[None]:
        """While a Hypothesis run goes: a request raises at once.  A KeyboardInterrupt that lands in a gc
        callback is dropped by Python, which prints it as "Exception ignored" with a traceback; that one is
        silenced here (the stop is not lost: :meth:`RunContext.stop_reason` sees it before the next example)."""
        before = sys.unraisablehook

        def hook(unraisable: Any) -> None:
            if not (isinstance(unraisable.exc_value, KeyboardInterrupt) and self.signal is not None):
                before(unraisable)

        self.searching = True
        sys.unraisablehook = hook
        try:
            yield
        finally:
            self.searching = False
            sys.unraisablehook = before

    def request(self, signal_name: str) -> None:
        if self.signal is not None:
            return  # a second signal changes nothing: the check is already stopping
        self.signal, self.at = signal_name, time.monotonic()
        if self.searching:
            raise KeyboardInterrupt(signal_name)


@dataclass
class CheckOptions:
    max_examples: int | None = None
    """Stop after this many examples of searching (shrinking not counted); None: the budget decides."""
    budget_s: float | None = 60.0
    """Seconds of searching (shrinking not counted); None: no limit."""
    seed: int | None = None
    db_dir: str | None = DEFAULT_DB_DIR
    steps: int = 10
    """Rules per example (Hypothesis' stateful_step_count)."""
    shrink_s: float = 30.0
    """How long each counterexample may be shrunk (beside the budget); then the shortest sequence seen for its
    rule is reported and the search goes on for the rules not broken yet."""
    strict_codes: bool = False
    """Judge rejection codes in the reference wallet's order (docs/wallet-rules.md) instead of any code that applies."""
    enough: Callable[[dict[str, Violation]], bool] | None = None
    """Stop as soon as this says the violations seen so far (shortest per rule) are enough (tests, benchmarks)."""
    rules: Iterable[str] | None = None
    """Rule ids or prefixes to judge and seek (None: every rule); see :func:`select_rules`."""
    skip_rules: Iterable[str] = ()
    """Rule ids or prefixes not to judge nor seek."""
    fail_on: str = "contract"
    """The mildest severity that fails the check: money, contract (default) or note."""
    stop_after: Iterable[str] = ()
    """Stop once every one of these rule ids has been reported, shrunk (benchmarks, tests)."""
    stop: StopRequest | None = None
    """A stop the command may ask for (SIGINT/SIGTERM): what was found so far is reported."""


@dataclass
class Failure:
    """One broken rule: the minimal sequence Hypothesis shrank it to, with the evidence of its last run."""

    rule: Rule
    message: str
    call_number: int | None
    entries: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    prefix: str = ""
    found_after_s: float | None = None
    found_after_examples: int | None = None
    flaky: bool = False
    """The minimal sequence did not fail again when rerun (timing-dependent, e.g. a race)."""
    kind: str = ""
    """What happened (a kind of :data:`simulator.protocol.findings.KINDS`), which gives the severity."""

    @property
    def length(self) -> int:
        """Protocol calls in the minimal sequence (authenticate included; admin provisioning and checks not)."""
        return sum(1 for e in self.entries if e["kind"] == "call")

    @property
    def severity(self) -> Severity:
        k = KINDS.get(self.kind)
        return k.severity if k is not None else Severity.CONTRACT

    @property
    def kind_title(self) -> str:
        k = KINDS.get(self.kind)
        return k.title if k is not None else self.kind

    @classmethod
    def from_violation(cls, exc: Violation, ctx: RunContext | None = None, flaky: bool = False) -> Failure:
        ev = exc.evidence
        found = ctx.first_found.get(exc.rule.id) if ctx else None
        return cls(exc.rule, exc.message, exc.call_number, ev.get("entries", []), ev.get("steps", []),
                   ev.get("prefix", ""), found[0] if found else None, found[1] if found else None, flaky,
                   getattr(exc, "kind", "") or "")


STOPPED = {
    "budget": "the search budget was spent",
    "max-examples": "--max-examples were searched",
    "all-broken": "every rule selected was broken",
    "enough": "enough was found (CheckOptions.enough / stop_after)",
    "saturated": "every example ran into a rule already reported",
    "exhausted": "Hypothesis had nothing left to try",
    "interrupted": "it was interrupted (Ctrl-C or SIGTERM)",
    "error": "an error",
    "replayed": "the sequence was replayed",
}
"""Why a check stopped, as the report says it."""


@dataclass
class Coverage:
    """One row of the coverage table: a rule, how often it was judged, and what came of it."""

    rule: Rule
    exercised: int
    result: str
    """pass | broken | not exercised | skipped"""
    severity: str = ""
    why: str = ""
    notes: int = 0
    """Choices the protocol allows, seen under this rule."""


@dataclass
class CheckResult:
    target: dict[str, Any]
    examples: int = 0
    elapsed_s: float = 0.0
    seed: int = 0
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopped_by: str = ""
    """A key of :data:`STOPPED`."""
    setup_s: float = 0.0
    """Seconds before the search: reaching the wallet, probing its admin API and wire."""
    search_s: float = 0.0
    """Seconds spent searching (what --budget limits)."""
    shrink_s: float = 0.0
    """Seconds spent shrinking counterexamples (each at most --shrink-time)."""
    search_examples: int = 0
    quiet: int = 0
    """Examples ended quietly: they broke a rule already reported, or one not selected."""
    selected: frozenset[str] = frozenset(RULES)
    exercised: Counter[str] = field(default_factory=Counter)
    choices: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)
    replays_lost: int = 0
    """Hypothesis runs that ended because an example could not be replayed the same way: the wallet answered it
    differently the second time (a wallet whose answers depend on chance), so after a rule broken in the first
    run was reported the second ran other rules.  The search goes on with a new run; the findings stand."""
    """What the check could not try against this wallet, and why (human text)."""
    rule_skips: dict[str, str] = field(default_factory=dict)
    """rule id → why it cannot be judged against this wallet (missing endpoint, wire, --players)."""
    fail_on: str = "contract"
    interrupted: dict[str, Any] | None = None
    """The report's ``interrupted`` entry (the shared contract) when a signal stopped the check."""
    doing: str = ""
    """What the check was doing when it was interrupted (one clause)."""

    def failing(self) -> list[Failure]:
        """The failures that fail the check (money and contract; notes too with fail_on note)."""
        return [f for f in self.failures if fails(f.severity, Severity(self.fail_on))]

    @property
    def verdict(self) -> str:
        if self.failing():
            return "fail"
        return "error" if self.errors else "pass"

    @property
    def exit_code(self) -> int:
        if self.interrupted is not None:
            return 130  # interrupted: what was found is reported, the verdict is only so far
        return {"pass": 0, "fail": 1}.get(self.verdict, 2)

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.elapsed_s if self.elapsed_s else 0.0

    def coverage(self) -> list[Coverage]:
        """Every rule of PROTOCOL.md the check judges by: exercised how often, and the result."""
        broken = {f.rule.id: f for f in self.failures}
        notes: Counter[str] = Counter()
        for note, n in self.choices.items():
            notes[note.split(":", 1)[0].strip()] += n
        rows = []
        for rule_id, rule in RULES.items():
            n = self.exercised.get(rule_id, 0)
            f = broken.get(rule_id)
            if f is not None:
                row = Coverage(rule, n, "broken", str(f.severity), f.kind_title)
            elif rule_id not in self.selected:
                row = Coverage(rule, n, "skipped", why="not selected (--rules / --skip-rules)")
            elif n or notes[rule_id]:
                row = Coverage(rule, n, "pass", why=self.rule_skips.get(rule_id, ""))
            elif rule_id in self.rule_skips:
                row = Coverage(rule, n, "skipped", why=self.rule_skips[rule_id])
            else:
                row = Coverage(rule, n, "not exercised")
            row.notes = notes[rule_id]
            rows.append(row)
        return rows


def hypothesis_settings(options: CheckOptions, max_examples: int, reuse: bool = True) -> settings:
    db = DirectoryBasedExampleDatabase(str(Path(options.db_dir))) if options.db_dir else None
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
    if not reuse:  # saved counterexamples are replayed once per check; replayed again, a rule already reported
        phases.remove(Phase.reuse)  # would end them quietly, and Hypothesis would drop them from the database
    return settings(
        max_examples=max_examples, stateful_step_count=options.steps, deadline=None, database=db,
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False,
        report_multiple_bugs=True, derandomize=False, phases=phases,
    )


CONSTANT_MODULES = (
    "simulator.protocol.money", "simulator.protocol.codes", "simulator.protocol.calls", "simulator.protocol.signing", "simulator.protocol.dialects",
    "simulator.protocol.dialects.canonical", "simulator.protocol.dialects.declarative", "simulator.protocol.dialects.builtin",
    "simulator.check.machine", "simulator.check.model", "simulator.check.protocol", "simulator.check.wire",
    "simulator.check.target",
)
"""Whose literals Hypothesis may mix into what it draws during a check (see :func:`pinned_constants`)."""


@functools.cache
def _croupier_constants() -> Any:
    from hypothesis.internal.constants_ast import Constants, constants_from_module

    constants = Constants()
    for name in CONSTANT_MODULES:
        constants |= constants_from_module(importlib.import_module(name))
    return constants


@contextlib.contextmanager
def pinned_constants() -> Iterator[None]:
    """Make a seed mean one search wherever the check runs.

    Hypothesis (6.131 and later) mixes literals found in every *local* module imported so far
    into what it draws. So the same ``--seed`` searched differently from the CLI, inside a
    user's pytest session (whose own modules are local) and in our suite, depending on what
    had been imported. For the duration of a check the literals are pinned to croupier's own
    protocol modules (64-bit limits, codes, field names: the useful ones). Where this Hypothesis
    has no such mechanism, nothing is changed.
    """
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants  # noqa: F401 - the layout this relies on
    except ImportError:  # pragma: no cover - another Hypothesis layout
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if original is None or cache is None:  # pragma: no cover
        yield
        return
    pinned = _croupier_constants()
    providers._get_local_constants = lambda: pinned
    cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()


def db_key(selected: frozenset[str]) -> bytes:
    """The example database's key: one for a whole check, another for each selection of rules (a saved
    counterexample of a rule not selected would end quietly, and Hypothesis would forget it)."""
    if selected == frozenset(RULES):
        return DB_KEY
    return DB_KEY + b":" + hashlib.sha256(",".join(sorted(selected)).encode()).hexdigest()[:16].encode()


def run_machine(machine: type[CheckMachine], options: CheckOptions, max_examples: int, seed: int,
                reuse: bool = True, key: bytes = DB_KEY) -> None:
    """One Hypothesis run of ``machine`` (raises what Hypothesis raises for a counterexample)."""
    test = get_state_machine_test(machine, settings=hypothesis_settings(options, max_examples, reuse))
    test.hypothesis.inner_test._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]
    test._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    with pinned_constants():
        test()


def _flatten(exc: BaseException) -> list[tuple[BaseException, bool]]:
    """Every leaf exception, with whether it came from a flaky (not reproduced) counterexample."""
    flaky = isinstance(exc, FlakyFailure)
    if isinstance(exc, BaseExceptionGroup):
        return [(leaf, flaky or f) for sub in exc.exceptions for leaf, f in _flatten(sub)]
    return [(exc, flaky)]


def check(target: Target, options: CheckOptions | None = None, conn: Connection | None = None) -> CheckResult:
    """Run the machine against ``target`` within ``options``' budget (opens its own connection unless given one).

    Raises :class:`UnknownRule` for a rule in ``options.rules`` / ``skip_rules`` that does not exist."""
    options = options or CheckOptions()
    selected = select_rules(options.rules, options.skip_rules)
    Severity(options.fail_on)  # a bad value is the caller's mistake: ValueError now, not a wrong verdict later
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
    result = CheckResult(target.describe(), seed=seed, selected=selected, fail_on=options.fail_on)
    own = conn is None
    started = time.monotonic()
    ctx: RunContext | None = None
    try:
        if conn is None:
            conn = Connection(target).open()
        result.skipped, result.rule_skips = what_is_skipped(conn)  # probes the wire (RSA keys may take seconds)
        result.setup_s = time.monotonic() - started
        ctx = RunContext(conn, options.strict_codes, started=time.monotonic(), budget_s=options.budget_s,
                         shrink_s=options.shrink_s, enough=options.enough, selected=selected)
        _run(ctx, options, seed, result)
    except CheckError as exc:
        result.errors.append(str(exc))
        result.stopped_by = "error"
    finally:
        if own and conn is not None:
            conn.close()
    result.elapsed_s = time.monotonic() - started
    if ctx is not None:
        result.examples, result.search_examples, result.quiet = ctx.examples, ctx.search_examples, ctx.quiet
        result.search_s, result.shrink_s = ctx.search_time(), ctx.shrink_time()
        result.exercised, result.choices = ctx.exercised, ctx.choices
        judged = [r for r in selected if not r.startswith("choice-")]
        if not result.failures and not result.errors and not any(ctx.exercised.get(r) for r in judged) \
                and result.stopped_by != "interrupted":
            result.errors.append("nothing was exercised: no call was judged under any rule selected "
                                 f"({result.examples} examples)")
    if result.stopped_by == "interrupted":
        result.interrupted = interruption(result, options.stop, started)
    return result


def interruption(result: CheckResult, stop: StopRequest | None, started: float) -> dict[str, Any]:
    """The report's ``interrupted`` entry: which signal, when, and in one sentence what was being searched."""
    name = stop.signal if stop is not None and stop.signal else "SIGINT"
    at = stop.at if stop is not None and stop.at is not None else time.monotonic()
    after = max(0.0, at - started)
    found = len(result.failures)
    note = (f"{name} after {after:.1f} s stopped the check {result.doing or 'before the search began'}, "
            f"after {result.examples} examples; "
            + (f"the {found} rule(s) found broken so far are reported" if found else "nothing was found broken so far"))
    return {"signal": name, "after_s": round(after, 3), "settled": True, "unsettled": 0, "note": note}


def _doing(ctx: RunContext) -> str:
    """What the check was doing, as a clause of the interruption's note."""
    shrinking = [r for r in ctx.best if r not in ctx.reported]
    if ctx.shrink_started is not None and shrinking:
        return (f"while shrinking the counterexample(s) of {', '.join(shrinking)} (the shortest sequence seen "
                "is reported)")
    left = len([r for r in ctx.selected if not r.startswith("choice-") and r not in ctx.reported])
    return f"while searching for sequences that break the {left} selected rule(s) not broken yet"


def what_is_skipped(conn: Connection) -> tuple[list[str], dict[str, str]]:
    """What the check cannot try against this wallet (admin endpoints it lacks, its wire, test accounts)."""
    skipped: list[str] = []
    rules: dict[str, str] = {"provider-settles": "a rule of the provider side (croupier run and load settle calls "
                                                 "in doubt); check judges the wallet"}
    if conn.admin is None:
        skipped.append("test accounts (--players), no admin API: no expired sessions, no blocked players, no "
                       "deposits, no re-authentication, opening balances as the accounts have them; examples share "
                       "the accounts' balances")
        rules["sessions-money-owed-is-paid"] = "needs an expired session: made through the admin API only"
        rules["sessions-blocked-player"] = "needs a blocked player: made through the admin API only"
        rules["operations-authenticate"] = "test accounts are authenticated once, before the search"
    else:
        effects = {
            "player": "balances are read with signed balance calls instead",
            "deposit": "no deposits between calls",
            "block": "no blocked players",
            "unblock": "a blocked player stays blocked for the rest of its example (players are fresh per example)",
        }
        for name, effect in effects.items():
            why = conn.endpoints.get(name)
            if why:
                skipped.append(f"{name}: {why}: {effect}")
        if not conn.has("block"):
            rules["sessions-blocked-player"] = "the admin API has no block endpoint"
    wire = conn.wire
    name = conn.dialect.name
    if variants(conn.dialect) is None:
        skipped.append(f"malformed bodies and unknown fields: the {name} dialect encodes no malformed variants")
        for r in ("transport-bad-request", "transport-unknown-fields"):
            rules[r] = f"the {name} dialect encodes no malformed variants"
    sem = semantics_of(conn.dialect)
    declared = {rule for rule, _ in sem.statements()}
    for rule in RULE_IDS.values():
        if rule not in declared:
            rules[rule] = f"not among the {name} dialect's semantics"
    for old, new in replaced_rules(sem).items():
        rules[old] = f"the {name} dialect's semantics replace it: {new}"
    if sem.differences():
        skipped.append(f"the {name} dialect's semantics: " + "; ".join(sem.declared())
                       + " (judged by the dialect-* rules)")
    if not wire.timed:
        skipped.append(f"stale and future signatures: the {name} dialect's signature binds no time")
    if not wire.unsigned:
        skipped.append(f"unsigned requests: the {name} dialect's signature cannot be left out")
    gone = [c for c in CURRENCY_CODES if c not in wire.currencies]
    if gone:
        skipped.append(f"currencies the {name} wire cannot carry exactly: {', '.join(gone)}")
    narrow = [c for c in wire.currencies if not wire.full(c)]
    if narrow:
        skipped.append("balances up to 2^63-1: the largest the wire carries is " +
                       ", ".join(f"{wire.limit[c]} {c}" for c in narrow))
    return skipped, rules


def _run(ctx: RunContext, options: CheckOptions, seed: int, result: CheckResult) -> None:
    """Hypothesis runs of growing size, each with its own seed, until the budget, the examples or the rules
    run out.  A run that finds counterexamples shrinks them for up to ``shrink_s``; their rules are then
    reported and sought no more (their violations end an example quietly), and the search goes on."""
    machine = machine_for(ctx)
    key = db_key(ctx.selected)
    breakable = {r for r in ctx.selected if not r.startswith("choice-")}
    wanted = set(options.stop_after)
    asked = options.stop or StopRequest()
    ctx.interrupted = lambda: asked.signal is not None
    chunk = 0
    while True:
        if asked.signal is not None:
            result.doing = result.doing or _doing(ctx)
            result.stopped_by = "interrupted"
            break
        stop = ctx.stop_reason()
        if stop in ("budget", "enough"):
            result.stopped_by = stop
            break
        if options.max_examples is not None and ctx.search_examples >= options.max_examples:
            result.stopped_by = "max-examples"
            break
        if breakable and breakable <= ctx.reported:
            result.stopped_by = "all-broken"
            break
        if wanted and wanted <= ctx.reported:
            result.stopped_by = "enough"
            break
        size = 10 * 2 ** min(chunk, 4)
        if options.max_examples is not None:
            size = min(size, options.max_examples - ctx.search_examples)
        now = time.monotonic()
        if ctx.budget_s is not None and ctx.search_examples:
            per_example = ctx.search_time(now) / ctx.search_examples
            size = max(1, min(size, int((ctx.budget_s - ctx.search_time(now)) / max(per_example, 1e-6)) + 1))
        chunk_seed = random.Random(f"{seed}:{chunk}").randrange(2**63)
        before = ctx.examples
        stop = None
        try:
            with asked.during_search():
                run_machine(machine, options, size, chunk_seed, reuse=chunk == 0, key=key)
        except StopSearch as s:
            stop = s.reason
            if stop == "interrupted":
                result.doing = _doing(ctx)
        except CheckError:
            raise
        except Unsatisfiable:
            stop = "saturated"
        except KeyboardInterrupt:  # Ctrl-C or the command's stop request: report what was found so far
            stop = "interrupted"
            result.doing = _doing(ctx)
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - whatever Hypothesis raises is reported, never a traceback
            # Examples ran, then one could not be replayed the same way: the wallet answered differently the
            # second time (chance), not croupier drawing from the wallet's answers. Counted; the search goes on.
            lost = ctx.examples > before and any(isinstance(leaf, FlakyStrategyDefinition) for leaf, _ in _flatten(exc))
            if lost:
                result.replays_lost += 1
            _collect(exc, ctx, result, replay_lost=lost)
            if result.errors:
                stop = "error"
        finally:
            _report_new(ctx, result)
        if stop is not None and stop != "shrink-time":
            result.stopped_by = stop
            break
        chunk += 1
        if ctx.examples == before:  # Hypothesis ran nothing new (its database or its tree said so): stop
            result.stopped_by = "exhausted"
            break


def _report_new(ctx: RunContext, result: CheckResult) -> None:
    """A Hypothesis run ended: every rule it broke is reported (the shortest sequence seen, unless Hypothesis's
    own minimal one is already there) and sought no more."""
    have = {f.rule.id for f in result.failures}
    for rule_id in ctx.end_run():
        if rule_id not in have:
            result.failures.append(Failure.from_violation(ctx.best[rule_id], ctx))
    result.failures = _ordered(result.failures)


def _collect(exc: BaseException, ctx: RunContext, result: CheckResult, replay_lost: bool = False) -> None:
    best: dict[str, Failure] = {f.rule.id: f for f in result.failures}
    for leaf, flaky in _flatten(exc):
        if isinstance(leaf, Violation):
            if leaf.rule.id in best and leaf.rule.id in ctx.reported:
                continue  # reported by an earlier run
            f = Failure.from_violation(leaf, ctx, flaky)
            old = best.get(f.rule.id)
            if old is None or (old.flaky, old.length) > (f.flaky, f.length):
                best[f.rule.id] = f
        elif isinstance(leaf, CheckError):
            result.errors.append(str(leaf))
        elif isinstance(leaf, UnsatisfiedAssumption):
            continue
        elif isinstance(leaf, FlakyStrategyDefinition) and replay_lost:
            continue  # counted by the caller: the search goes on
        else:
            result.errors.append(error_text(leaf))
    for rule_id, v in ctx.best.items():
        if rule_id in ctx.reported:
            continue
        # Hypothesis shrinks by the order of its choices, not by our count of calls: a sequence seen while
        # shrinking may be shorter than the one it settled on; it happened too, so it is evidence as good.
        seen = Failure.from_violation(v, ctx)
        old = best.get(rule_id)
        if old is None or (old.flaky, old.length) > (seen.flaky, seen.length):
            best[rule_id] = seen
    result.failures = _ordered(list(best.values()))


def error_text(exc: BaseException) -> str:
    """What went wrong, in a line or two: the exception and where it was raised (never a whole traceback)."""
    if os.environ.get("CROUPIER_CHECK_TRACE"):
        traceback.print_exception(exc)
    if isinstance(exc, FlakyStrategyDefinition):
        return ("Hypothesis stopped the search: what the machine drew differed between two runs of one example "
                f"(FlakyStrategyDefinition: {str(exc).splitlines()[0] if str(exc) else ''}). The draws must not "
                "depend on the wallet's answers: this is a bug of croupier check, not of the wallet; please report "
                "it with the seed")
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/simulator/" in f.filename or "/tests/" in f.filename] or frames
    where = f" (at {Path(ours[-1].filename).name}:{ours[-1].lineno} in {ours[-1].name})" if ours else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"the check failed with {type(exc).__name__}: {text}{where}"


def _ordered(failures: list[Failure]) -> list[Failure]:
    order = list(RULES)
    return sorted(failures, key=lambda f: order.index(f.rule.id))
