"""Drive the machine with Hypothesis within a budget, and turn what it found into failures.

Hypothesis has no time budget, so the run is a series of Hypothesis runs of
growing size (each with its own seed, derived from ``--seed``) until the
examples or the seconds are spent or a counterexample is found; Hypothesis then
shrinks it and reruns the minimal sequence once more, which is the evidence we
report.  The example database (``--db-dir``) is shared by every run of the
checker, so a counterexample found once is tried first the next time.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import random
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky
from hypothesis.stateful import get_state_machine_test

from .machine import BudgetSpent, CheckMachine, RunContext, machine_for
from .protocol import RULES, Rule, Violation
from .target import CheckError, Connection, Target

DEFAULT_DB_DIR = ".croupier/hypothesis"
DB_KEY = b"croupier-check-v1"
"""The database key of the machine: stable across wallets and runs, so saved counterexamples are tried first."""


@dataclass
class CheckOptions:
    max_examples: int = 1000
    budget_s: float | None = 60.0
    seed: int | None = None
    db_dir: str | None = DEFAULT_DB_DIR
    steps: int = 10
    """Rules per example (Hypothesis' stateful_step_count)."""
    shrink_s: float = 30.0
    """How long to keep shrinking (and looking for other broken rules) after the first counterexample;
    then the shortest sequence seen for each rule is reported."""
    strict_codes: bool = False
    """Judge rejection codes in the reference wallet's order (docs/wallet-rules.md) instead of any code that applies."""
    enough: Callable[[dict[str, Violation]], bool] | None = None
    """Stop as soon as this says the violations seen so far (shortest per rule) are enough (tests, benchmarks)."""


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

    @property
    def length(self) -> int:
        """Protocol calls in the minimal sequence (authenticate included; admin provisioning and checks not)."""
        return sum(1 for e in self.entries if e["kind"] == "call")

    @classmethod
    def from_violation(cls, exc: Violation, ctx: RunContext | None = None, flaky: bool = False) -> Failure:
        ev = exc.evidence
        found = ctx.first_found.get(exc.rule.id) if ctx else None
        return cls(exc.rule, exc.message, exc.call_number, ev.get("entries", []), ev.get("steps", []),
                   ev.get("prefix", ""), found[0] if found else None, found[1] if found else None, flaky)


@dataclass
class CheckResult:
    target: dict[str, Any]
    examples: int = 0
    elapsed_s: float = 0.0
    seed: int = 0
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stopped_by: str = ""
    """max-examples, budget or counterexample."""

    @property
    def verdict(self) -> str:
        return "error" if self.errors and not self.failures else "fail" if self.failures else "pass"

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 1}.get(self.verdict, 2)

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.elapsed_s if self.elapsed_s else 0.0


def hypothesis_settings(options: CheckOptions, max_examples: int) -> settings:
    db = DirectoryBasedExampleDatabase(str(Path(options.db_dir))) if options.db_dir else None
    return settings(
        max_examples=max_examples, stateful_step_count=options.steps, deadline=None, database=db,
        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False,
        report_multiple_bugs=True, derandomize=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    )


CONSTANT_MODULES = (
    "simulator.money", "simulator.codes", "simulator.calls", "simulator.signing", "simulator.dialects",
    "simulator.dialects.canonical", "simulator.dialects.declarative", "simulator.dialects.builtin",
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


def run_machine(machine: type[CheckMachine], options: CheckOptions, max_examples: int, seed: int) -> None:
    """One Hypothesis run of ``machine`` (raises what Hypothesis raises for a counterexample)."""
    test = get_state_machine_test(machine, settings=hypothesis_settings(options, max_examples))
    test.hypothesis.inner_test._hypothesis_internal_add_digest = DB_KEY  # type: ignore[attr-defined]
    test._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    with pinned_constants():
        test()


def _flatten(exc: BaseException) -> list[tuple[BaseException, bool]]:
    """Every leaf exception, with whether it came from a flaky (not reproduced) counterexample."""
    flaky = isinstance(exc, Flaky)
    if isinstance(exc, BaseExceptionGroup):
        return [(leaf, flaky or f) for sub in exc.exceptions for leaf, f in _flatten(sub)]
    return [(exc, flaky)]


def check(target: Target, options: CheckOptions | None = None, conn: Connection | None = None) -> CheckResult:
    """Run the machine against ``target`` within ``options``' budget (opens its own connection unless given one)."""
    options = options or CheckOptions()
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
    result = CheckResult(target.describe(), seed=seed)
    own = conn is None
    started = time.monotonic()
    try:
        if conn is None:
            conn = Connection(target).open()
        ctx = RunContext(conn, options.strict_codes, started=started,
                         deadline=None if options.budget_s is None else started + options.budget_s,
                         shrink_s=options.shrink_s, enough=options.enough)
        _run(ctx, options, seed, result)
    except CheckError as exc:
        result.errors.append(str(exc))
    finally:
        if own and conn is not None:
            conn.close()
    result.elapsed_s = time.monotonic() - started
    return result


def _run(ctx: RunContext, options: CheckOptions, seed: int, result: CheckResult) -> None:
    machine = machine_for(ctx)
    deadline = None if options.budget_s is None else ctx.started + options.budget_s
    chunk = 0
    result.stopped_by = "max-examples"
    while ctx.examples < options.max_examples:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            result.stopped_by = "budget"
            break
        size = min(options.max_examples - ctx.examples, 10 * 2 ** min(chunk, 4))
        if deadline is not None and ctx.examples:
            per_example = (now - ctx.started) / ctx.examples
            size = max(1, min(size, int((deadline - now) / per_example) + 1))
        chunk_seed = random.Random(f"{seed}:{chunk}").randrange(2**63)
        before = ctx.examples
        try:
            run_machine(machine, options, size, chunk_seed)
        except CheckError:
            raise
        except BudgetSpent:
            result.stopped_by = "budget"
            if ctx.best:  # shrinking was cut short: report the shortest sequence seen for each rule
                result.failures = _ordered([Failure.from_violation(v, ctx) for v in ctx.best.values()])
            break
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            _collect(exc, ctx, result)
            result.stopped_by = "counterexample"
            if options.enough is None or options.enough(ctx.best) or ctx.out_of_budget():
                break
            # Not yet enough (a test or benchmark waits for one rule, or a shorter sequence): Hypothesis is
            # done with this counterexample, so search on with the next seed for the rest of the shrink time;
            # the shortest sequence seen per rule is what is reported.
        finally:
            result.examples = ctx.examples
        chunk += 1
        if ctx.examples == before:  # Hypothesis ran nothing new (its database said so): stop
            break


def _collect(exc: BaseException, ctx: RunContext, result: CheckResult) -> None:
    best: dict[str, Failure] = {}
    for leaf, flaky in _flatten(exc):
        if isinstance(leaf, Violation):
            f = Failure.from_violation(leaf, ctx, flaky)
            old = best.get(f.rule.id)
            if old is None or (old.flaky, old.length) > (f.flaky, f.length):
                best[f.rule.id] = f
        elif isinstance(leaf, CheckError):
            result.errors.append(str(leaf))
        else:
            result.errors.append("".join(traceback.format_exception(leaf)).strip())
    for rule_id, v in ctx.best.items():
        # Hypothesis shrinks by the order of its choices, not by our count of calls: a sequence seen while
        # shrinking may be shorter than the one it settled on; it happened too, so it is evidence as good.
        seen = Failure.from_violation(v, ctx)
        old = best.get(rule_id)
        if old is None or (old.flaky, old.length) > (seen.flaky, seen.length):
            best[rule_id] = seen
    result.failures = _ordered(list(best.values()))


def _ordered(failures: list[Failure]) -> list[Failure]:
    order = list(RULES)
    return sorted(failures, key=lambda f: order.index(f.rule.id))
