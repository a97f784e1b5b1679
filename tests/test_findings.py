"""The judge's vocabulary: every rule quotes the protocol verbatim, every kind has a rule and a severity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.protocol.codes import ErrorCode
from simulator.protocol.findings import KINDS, RULES, Severity, fails, worst

ROOT = Path(__file__).resolve().parent.parent
DOCS_PROTOCOL = ROOT / "docs" / "protocol.md"
DOCS_DIALECTS = ROOT / "docs" / "dialects.md"
SOURCES = {"PROTOCOL.md": DOCS_PROTOCOL, "docs/dialects.md": DOCS_DIALECTS}
SHARED_PROTOCOL = ROOT.parent / "shared" / "design" / "PROTOCOL.md"


def _flat(text: str) -> str:
    """Line breaks and indentation of a wrapped markdown paragraph or list are not part of a sentence."""
    return re.sub(r"\s+", " ", text)


def test_the_repository_carries_the_protocol_it_judges_by() -> None:
    assert DOCS_PROTOCOL.is_file()
    if SHARED_PROTOCOL.is_file():
        assert DOCS_PROTOCOL.read_text(encoding="utf-8") == SHARED_PROTOCOL.read_text(encoding="utf-8"), \
            "docs/protocol.md must say what the design's PROTOCOL.md says: copy it again"


@pytest.mark.parametrize("rule_id", list(RULES))
def test_every_quote_is_in_the_protocol_verbatim(rule_id: str) -> None:
    rule = RULES[rule_id]
    doc = _flat(SOURCES[rule.source].read_text(encoding="utf-8"))
    for quote in rule.quotes:
        assert _flat(quote) in doc, f"{rule_id} quotes text that is not in {rule.source}: {quote!r}"


def test_a_made_up_sentence_is_not_found() -> None:
    doc = _flat(DOCS_PROTOCOL.read_text(encoding="utf-8"))
    made_up = "Every call names its player's session: a token never issued, or another player's, is INVALID_TOKEN."
    assert _flat(made_up) not in doc


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_names_a_rule(kind: str) -> None:
    assert KINDS[kind].rule in RULES


def test_severities_fail_in_order() -> None:
    assert fails(Severity.MONEY) and fails(Severity.CONTRACT) and not fails(Severity.NOTE)
    assert fails(Severity.NOTE, Severity.NOTE)
    assert not fails(Severity.CONTRACT, Severity.MONEY)
    assert worst([Severity.NOTE, Severity.CONTRACT]) is Severity.CONTRACT
    assert worst([]) is None


# -- one taxonomy: run's ledger, load's and croupier check name rules and kinds from findings.py only ----------

def _literals(*folders: str) -> dict[str, list[str]]:
    """Every string constant in the Python files under ``folders``, with where it is."""
    import ast

    found: dict[str, list[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.setdefault(node.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_rule_id_in_the_code_is_a_rule_of_findings() -> None:
    """A rule id written anywhere (the checker's tables, the ledger's, a dialect's) is a key of RULES, or the
    prefix of some (``idempotency-2``, matched with startswith): no second vocabulary drifts from the first."""
    heads = {r.split("-")[0] for r in RULES}
    looks_like_a_rule = re.compile(r"[a-z]+(-[a-z0-9]+)+")
    stray = {text: where for text, where in _literals("simulator", "loadtests").items()
             if looks_like_a_rule.fullmatch(text) and text.split("-")[0] in heads
             and text not in RULES and not any(r.startswith(text + "-") for r in RULES)}
    assert stray == {}, "rule ids that findings.RULES does not have (add the rule there, or name an existing one)"


def test_every_code_of_a_rule_names_a_rule() -> None:
    from simulator.check.checker import _CODE_RULE, MUTATIONS
    from simulator.check.machine import STEP_RULES
    from simulator.protocol.findings import RULE_OF_CODE

    named = [*RULE_OF_CODE.values(), *_CODE_RULE.values(), *MUTATIONS.values(),
             *(r for rules in STEP_RULES.values() for r in rules)]
    assert [r for r in named if r not in RULES] == []
    assert {c: r for c, r in _CODE_RULE.items() if RULE_OF_CODE.get(c) != r} == \
        {ErrorCode.INVALID_TOKEN: "sessions-token-of-player"}, "check reads the codes as the ledger does"


CHECK_REPORTS_OTHERWISE = {"wallet_choice": "check lists the choices a wallet made in its coverage, not as findings"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_croupier_check_can_report_every_kind(kind: str) -> None:
    """Adding a kind says something to ``croupier check``: it names the kind where a wallet shows it, or this
    test says why it never will."""
    named = _literals("simulator/check")
    assert kind in named or kind in CHECK_REPORTS_OTHERWISE, \
        f"croupier check never reports {kind!r}: teach simulator/check/checker.py when a wallet does it, " \
        f"or say here why check cannot"
