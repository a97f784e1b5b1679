"""The judge's vocabulary: every rule quotes the protocol verbatim, every kind has a rule and a severity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.findings import KINDS, RULES, Severity, fails, worst

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
