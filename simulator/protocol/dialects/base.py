"""What a dialect is: the :class:`Dialect` protocol, its optional capabilities and the wire types.

Every capability a driver or the check may use is declared here, with its default in
:class:`DialectBase` (no batches, no malformed variants, no signed time, every currency
carried, nothing to warm up): a caller reads ``dialect.supports_batches``, never probes
with ``getattr``.  The implementations (:mod:`.canonical`, :mod:`.declarative`) import
this module, never the package, so the registry in :mod:`simulator.protocol.dialects` can import
them without a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from ..calls import Outcome, Rejected, WalletCall
from ..frozen import quick_init
from ..money import Currency
from .semantics import CANONICAL, Semantics


class DialectError(ValueError):
    """A call this dialect's wire format cannot express (refused rather than rounded)."""


def header(headers: Mapping[str, str], name: str | None) -> str | None:
    """A header's value whatever case the peer spelled its name in (HTTP names are case-insensitive)."""
    if name is None:
        return None
    exact = headers.get(name)  # as the name is usually spelled: a dict lookup, not a scan
    if exact is not None:
        return exact
    lname = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lname), None)


@quick_init
@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request relative to the wallet's base URL (``path`` has no leading slash)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@quick_init
@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Dialect(Protocol):
    """What every wallet dialect provides (derive from :class:`DialectBase` for the optional parts' defaults)."""

    name: str
    semantics: Semantics
    """What the wire's calls carry and mean (PROTOCOL.md's by default): the judges expect only that."""

    # Optional capabilities: declared here, defaulted in DialectBase, read by the callers (never probed).
    @property
    def supports_batches(self) -> bool:
        """The wire also carries several money calls in one request: the dialect is a :class:`BatchDialect`."""
        ...

    @property
    def supports_variants(self) -> bool:
        """The dialect can send a call with one defect in its own wire: it is a :class:`VariantDialect`."""
        ...

    @property
    def signature_has_time(self) -> bool:
        """The signature binds a time: a stale or future request is refused."""
        ...

    @property
    def reads_response_headers(self) -> bool:
        """``decode_response`` may look at the answer's headers (a signed answer's, say); when it never
        does, the drivers skip copying them out of their HTTP client's response on every call."""
        ...

    @property
    def max_exponent(self) -> int | None:
        """The most decimals an amount of the wire carries exactly (None: any currency's)."""
        ...

    def warm(self) -> None:
        """Load or derive keys now (a driver calls this before its clock starts)."""
        ...

    # The simulator's side.
    def encode_call(self, call: WalletCall, now: float) -> HttpRequest:
        """The request a provider sends for ``call`` at unix time ``now`` (signed)."""
        ...

    def decode_response(self, call: WalletCall, response: HttpResponse) -> Outcome:
        """What ``response`` means for ``call``: ok, a definitive rejection, or unknown."""
        ...

    # The wallet's side.
    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        """The call ``request`` carries, or the rejection it earns before any state is read."""
        ...

    def encode_response(self, call: WalletCall | None, outcome: Outcome) -> HttpResponse:
        """The wire answer to ``call`` (``None`` when the request could not be decoded)."""
        ...


class BatchDialect(Dialect, Protocol):
    """A dialect whose wire also carries several money calls in one request (optional).

    Only some real APIs batch (``actions-hmac``: a bet and its win in one ``play``);
    every other dialect is untouched.  ``supports_batches`` says whether a dialect does
    (:func:`batching` gives it this type).
    The calls of a batch are applied in order, each under the normal rules and
    idempotent by its own ``tx_id``; the first that is not a success stops the rest.
    """

    # The simulator's side.
    def encode_batch(self, calls: Sequence[WalletCall], now: float) -> HttpRequest:
        """One request carrying ``calls`` in order (``DialectError`` if they cannot share one)."""
        ...

    def decode_batch_response(self, calls: Sequence[WalletCall], response: HttpResponse) -> list[Outcome]:
        """What ``response`` means for each of ``calls``."""
        ...

    # The wallet's side.
    def decode_batch(self, request: HttpRequest, now: float) -> WalletCall | list[WalletCall] | Rejected:
        """As :meth:`Dialect.decode_request`, but a request carrying several calls gives their list."""
        ...

    def encode_batch_response(self, calls: Sequence[WalletCall], outcomes: Sequence[Outcome]) -> HttpResponse:
        """The answer to a batch: ``outcomes`` are those of the calls applied, in order (the last
        one the first that was not a success, if any)."""
        ...


def batching(dialect: Dialect) -> BatchDialect | None:
    """``dialect`` as a :class:`BatchDialect` if its wire carries batches, else None."""
    return cast(BatchDialect, dialect) if dialect.supports_batches else None


class VariantDialect(Dialect, Protocol):
    """A dialect that can send a valid call with one defect in its own wire (optional).

    The check's malformed-input mutations (``amount-string``, ``missing-field`` ...) go
    through it, so a wallet of any dialect is tried with them.  ``supports_variants``
    says whether a dialect has it (:func:`variants` gives it this type).
    """

    def encode_variant(self, call: WalletCall, now: float, variant: str) -> HttpRequest:
        """The signed request of ``call`` with the defect ``variant`` (signed over the defective
        request); :class:`DialectError` when the variant means nothing on this wire."""
        ...


def variants(dialect: Dialect) -> VariantDialect | None:
    """``dialect`` as a :class:`VariantDialect` if it can encode defective variants, else None."""
    return cast(VariantDialect, dialect) if dialect.supports_variants else None


class DialectBase:
    """The defaults of a dialect's optional capabilities: none of them (every dialect derives from this)."""

    semantics: Semantics = CANONICAL
    supports_batches: bool = False
    supports_variants: bool = False
    signature_has_time: bool = False
    reads_response_headers: bool = True
    max_exponent: int | None = None

    def warm(self) -> None:
        """Nothing to prepare."""


def semantics_of(dialect: Dialect) -> Semantics:
    """The dialect's declared semantics (PROTOCOL.md's for one that declares none)."""
    return dialect.semantics


def carries(dialect: Dialect, cur: Currency) -> bool:
    """Whether every amount of ``cur`` fits the dialect's wire format exactly."""
    limit = dialect.max_exponent
    return limit is None or cur.exponent <= limit
