"""What a dialect's wire can express, found by asking the dialect itself (so a TOML dialect works too).

The machine's expectations are written once, in canonical outcomes; a rule that
needs something a wire cannot say is *skipped* for that wire, never weakened:

* currencies whose amounts the wire cannot carry exactly (``dialects.carries``:
  BTC's 8 decimals under 2-decimal amounts) are not played;
* amounts and balances stop at the largest value the wire carries (integers
  scaled by 100 000 reach 2⁶³−1 / 1000 EUR cents): no call whose answer would
  need a larger balance is sent, so the 64-bit limit itself (``LIMIT_EXCEEDED``)
  is checked only where the wire reaches it;
* stale and future signatures only where the signature binds a time
  (``signature_has_time``); a missing signature only where the dialect's request
  has a signature that can be left out (a header, a query or form parameter).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from ..protocol.calls import WalletCall
from ..protocol.dialects import Dialect, DialectError, HttpRequest, carries
from ..protocol.money import INT64_MAX, Money, currency

CURRENCY_CODES = ("EUR", "JPY", "KWD", "USDT", "BTC")
"""The check's currencies: 2, 0, 3, 6 and 8 decimals."""


@dataclass(frozen=True)
class Wire:
    currencies: tuple[str, ...]
    """The check's currencies the wire carries, in the machine's order."""
    limit: dict[str, int]
    """currency → the largest amount (and balance) the wire carries, at most 2⁶³−1 minor units."""
    timed: bool
    """The signature binds a time: a stale or future signature must be refused."""
    unsigned: bool
    """A request can be sent without its signature (the signature is a header or a query/form parameter)."""

    def full(self, code: str) -> bool:
        """Whether the wire carries every balance up to the 64-bit limit in ``code``."""
        return self.limit[code] >= INT64_MAX


def _probe(code: str, minor: int) -> WalletCall:
    return WalletCall.bet("t", "p", "s", "g", "r", Money(minor, currency(code)))


def _encodes(dialect: Dialect, code: str, minor: int) -> bool:
    try:
        dialect.encode_call(_probe(code, minor), 0.0)
    except DialectError:
        return False
    return True


def largest_amount(dialect: Dialect, code: str) -> int:
    """The largest amount of ``code`` the dialect encodes (binary search; 2⁶³−1 when it carries all)."""
    if _encodes(dialect, code, INT64_MAX):
        return INT64_MAX
    lo, hi = 0, INT64_MAX  # encodes lo, not hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _encodes(dialect, code, mid):
            lo = mid
        else:
            hi = mid
    return lo


def without_signature(signed: HttpRequest, other: HttpRequest) -> HttpRequest | None:
    """``signed`` with what changes with the secret left out (``other``: the same call under another secret).

    Headers that differ are dropped, and so are query and form parameters that differ; None when the
    signature is woven into the body some other way (the request cannot be sent unsigned)."""
    headers = {k: v for k, v in signed.headers.items() if other.headers.get(k) == v}
    path = signed.path
    if path != other.path:
        base, _, query = path.partition("?")
        obase, _, oquery = other.path.partition("?")
        if base != obase:
            return None
        theirs = set(parse_qsl(oquery, keep_blank_values=True))
        kept = [kv for kv in parse_qsl(query, keep_blank_values=True) if kv in theirs]
        path = f"{base}?{urlencode(kept)}" if kept else base
    body = signed.body
    if body != other.body:
        if "form" not in signed.headers.get("Content-Type", ""):
            return None
        theirs = set(parse_qsl(other.body.decode(), keep_blank_values=True))
        body = urlencode([kv for kv in parse_qsl(body.decode(), keep_blank_values=True) if kv in theirs]).encode()
    return HttpRequest(signed.method, path, headers, body)


def wire_of(dialect: Dialect, other: Dialect, codes: tuple[str, ...]) -> Wire:
    """What ``dialect`` carries among ``codes`` (``other``: the same dialect under another secret)."""
    kept = tuple(c for c in codes if carries(dialect, currency(c)) and _encodes(dialect, c, 1))
    probe = WalletCall.balance("p", "s")
    unsigned = without_signature(dialect.encode_call(probe, 0.0), other.encode_call(probe, 0.0)) is not None
    return Wire(kept, {c: largest_amount(dialect, c) for c in kept},
                dialect.signature_has_time, unsigned)
