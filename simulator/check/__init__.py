"""``croupier check``: Hypothesis finds a wallet's money bugs and shrinks each to a minimal replayable sequence.

Use it from Python (or your own test suite)::

    from simulator.check import CheckOptions, Target, check, assert_passes

    target = Target("http://127.0.0.1:8080/wallet", secret="...",
                    admin_url="http://127.0.0.1:8080", admin_token="...")
    result = check(target, CheckOptions(budget_s=30, seed=1))
    assert_passes(result)          # AssertionError with every minimal sequence if a rule broke

or with pytest through :mod:`simulator.check.pytest_plugin` (``--croupier-wallet URL``).
The state machine itself is :class:`~simulator.check.machine.CheckMachine`; the
rules it judges by are :data:`~simulator.check.protocol.RULES`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .protocol import RULES, Rule, Violation

if TYPE_CHECKING:
    from ..run.accounts import TestAccount, read_accounts
    from .runner import CheckOptions, CheckResult, Failure, UnknownRule, check, select_rules
    from .target import CheckError, Target

_LAZY = {
    "TestAccount": "simulator.run.runner", "read_accounts": "simulator.run.runner",
    "CheckOptions": "simulator.check.runner", "CheckResult": "simulator.check.runner",
    "Failure": "simulator.check.runner", "UnknownRule": "simulator.check.runner", "check": "simulator.check.runner",
    "select_rules": "simulator.check.runner", "CheckError": "simulator.check.target", "Target": "simulator.check.target",
}
"""Loaded when first asked for: importing the package's pure modules (``model``, ``protocol``) loads no HTTP client
nor Hypothesis (README, Layout: the core imports no app)."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "RULES", "CheckError", "CheckOptions", "CheckResult", "Failure", "Rule", "Target", "TestAccount", "UnknownRule",
    "Violation", "assert_passes", "check", "read_accounts", "select_rules",
]


def assert_passes(result: CheckResult) -> None:
    """Raise AssertionError (with the report) unless the check passed: no money or contract finding (no note
    either with ``fail_on="note"``) and no error."""
    if result.verdict != "pass":
        from .report import render_text

        raise AssertionError(render_text(result))
