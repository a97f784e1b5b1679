"""Malformed input: the defective variants of a valid bet or win the check sends, the rule each tests, what
PROTOCOL.md allows for each, and their encoding in a dialect's own wire (:meth:`VariantDialect.encode_variant`).
"""

from __future__ import annotations

from ..protocol.calls import WalletCall
from ..protocol.dialects import Dialect, DialectError, HttpRequest, variants
from ..protocol.dialects.canonical import malformed_canonical_body

MUTATIONS: dict[str, str] = {
    "amount-float": "money-minor-units",
    "amount-string": "money-minor-units",
    "amount-negative": "money-minor-units",
    "amount-boolean": "money-minor-units",
    "amount-past-64-bit": "money-minor-units",
    "missing-field": "transport-bad-request",
    "not-json": "transport-bad-request",
    "not-an-object": "transport-bad-request",
    "oversized": "transport-bad-request",
    "unknown-currency": "money-currency",
    "bad-reason": "transport-bad-request",
    "round-closed-not-boolean": "transport-bad-request",
    "extra-field": "transport-unknown-fields",
}
"""Malformed variants of a valid bet or win (each sent in the dialect's own wire) and the rule each tests."""

POLICY: dict[str, str] = {
    "amount-float": "bad-request", "amount-string": "bad-request", "amount-boolean": "bad-request",
    "missing-field": "bad-request", "not-json": "bad-request", "not-an-object": "bad-request",
    "oversized": "bad-request", "round-closed-not-boolean": "bad-request",
    "amount-negative": "any", "bad-reason": "any",
    "unknown-currency": "currency", "amount-past-64-bit": "big", "extra-field": "valid",
}
"""What PROTOCOL.md allows for each variant.

bad-request: a listed field missing or of the wrong type is BAD_REQUEST (or the code of another rule the call
breaks); any: the text says the value is invalid but names no code, so any refusal that changes nothing;
currency: CURRENCY_MISMATCH (or another rule's code); big: an amount past 2^63-1 — the protocol sets no
largest amount, so exact acceptance or a refusal; valid: an unknown field changes nothing, the call is judged
as it is."""


def malformed_body(call: WalletCall, mutation: str) -> bytes:
    """The canonical body of ``call`` with one defect (see :meth:`CanonicalDialect.encode_variant`)."""
    return malformed_canonical_body(call, mutation)


def encode_variant(dialect: Dialect, call: WalletCall, now: float, variant: str) -> HttpRequest:
    """The signed request of ``call`` with one defect, in ``dialect``'s own wire (``DialectError``: the variant
    means nothing on that wire, or the dialect sends no variants: :func:`simulator.protocol.dialects.variants`)."""
    vd = variants(dialect)
    if vd is None:
        raise DialectError(f"the {dialect.name} dialect sends no malformed variants")
    try:
        req = vd.encode_variant(call, now, variant)
    except (TypeError, OverflowError) as exc:  # a value the wire's encoder cannot write (past 64 bits...)
        raise DialectError(f"the {dialect.name} dialect cannot encode {variant}: {exc}") from None
    assert isinstance(req, HttpRequest)
    return req


def variant_fits(dialect: Dialect, call: WalletCall, variant: str) -> bool:
    """Whether ``dialect``'s wire can carry ``variant`` of ``call`` (a string amount on a string wire cannot)."""
    try:
        encode_variant(dialect, call, 0.0, variant)
    except DialectError:
        return False
    return True
