"""The rules of PROTOCOL.md a wallet is judged by, and the failure raised when one is broken.

Every counterexample names exactly one rule.  Each rule has its own exception
class, so Hypothesis (which tells failures apart by exception type and place)
keeps one minimal sequence per broken rule: a wallet with two bugs gets two
reports, not one.
"""

from __future__ import annotations

from typing import Any, Final

from ..protocol.findings import KINDS, RULES, Rule

__all__ = ["RULES", "VIOLATIONS", "Rule", "Violation", "violation"]

_RULES: Final = tuple(RULES.values())


class Violation(AssertionError):
    """A wallet broke a rule; ``rule`` says which.  Subclassed once per rule (see :func:`violation_class`)."""

    rule: Rule = _RULES[0]

    def __init__(self, message: str, call_number: int | None = None, kind: str = "") -> None:
        super().__init__(f"[{self.rule.id}] {message}")
        self.message = message
        self.call_number = call_number
        self.kind = kind or next((k.id for k in KINDS.values() if k.rule == self.rule.id), "wrong_code")
        """What happened (a kind of :data:`simulator.protocol.findings.KINDS`): it carries the severity."""
        self.evidence: dict[str, Any] = {}
        """Filled by the checker: the transcript and the replayable steps of the sequence that failed."""


def _class_name(rule_id: str) -> str:
    return "Broke_" + rule_id.replace("-", "_")


VIOLATIONS: Final[dict[str, type[Violation]]] = {
    r.id: type(_class_name(r.id), (Violation,), {"rule": r, "__module__": __name__}) for r in _RULES
}
globals().update({cls.__name__: cls for cls in VIOLATIONS.values()})


def violation(rule_id: str, message: str, call_number: int | None = None, kind: str = "") -> Violation:
    return VIOLATIONS[rule_id](message, call_number, kind)
