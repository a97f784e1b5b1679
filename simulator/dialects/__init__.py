"""Wallet dialects: one wire protocol each, as pure encode/decode functions for both sides.

A dialect turns a :class:`~simulator.calls.WalletCall` into an :class:`HttpRequest`
and an :class:`HttpResponse` back into an :class:`~simulator.calls.Outcome` (the
simulator's side), and the reverse (the reference wallet's side).  No dialect does
I/O: the aiohttp runner, the Locust users, the Hypothesis machine and the wallet
server move the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..calls import Outcome, Rejected, WalletCall
from ..money import Currency
from .semantics import CANONICAL, Semantics


class DialectError(ValueError):
    """A call this dialect's wire format cannot express (refused rather than rounded)."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request relative to the wallet's base URL (``path`` has no leading slash)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Dialect(Protocol):
    """What every wallet dialect provides."""

    name: str
    semantics: Semantics
    """What the wire's calls carry and mean (PROTOCOL.md's by default): the judges expect only that."""

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
    every other dialect is untouched.  :func:`batching` says whether a dialect does.
    The calls of a batch are applied in order, each under the normal rules and
    idempotent by its own ``tx_id``; the first that is not a success stops the rest.
    """

    supports_batches: bool

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
    if getattr(dialect, "supports_batches", False):
        return dialect  # type: ignore[return-value]
    return None


class VariantDialect(Dialect, Protocol):
    """A dialect that can send a valid call with one defect in its own wire (optional).

    The check's malformed-input mutations (``amount-string``, ``missing-field`` ...) go
    through it, so a wallet of any dialect is tried with them.  :func:`variants` says
    whether a dialect has it.
    """

    def encode_variant(self, call: WalletCall, now: float, variant: str) -> HttpRequest:
        """The signed request of ``call`` with the defect ``variant`` (signed over the defective
        request); :class:`DialectError` when the variant means nothing on this wire."""
        ...


def variants(dialect: Dialect) -> VariantDialect | None:
    """``dialect`` as a :class:`VariantDialect` if it can encode defective variants, else None."""
    if callable(getattr(dialect, "encode_variant", None)):
        return dialect  # type: ignore[return-value]
    return None


def names() -> list[str]:
    """The built-in dialects: canonical first, then the real-world shapes."""
    from .builtin import SPECS

    return ["canonical", *SPECS]


def get(name: str, secret: str) -> Dialect:
    """A dialect by built-in name or TOML file path, keyed with the shared secret.

    ``ValueError`` (a :class:`~simulator.dialects.declarative.SpecError` for an invalid
    file) names what is wrong: callers turn it into exit code 2.
    """
    from .builtin import builtin
    from .canonical import CanonicalDialect

    if name == "canonical":
        return CanonicalDialect(secret)
    found = builtin(name, secret)
    if found is not None:
        return found
    if name.endswith(".toml") or "/" in name:
        from .declarative import DeclarativeDialect, load_file

        try:
            spec = load_file(name)
        except OSError as exc:
            raise ValueError(f"cannot read dialect file {name}: {exc.strerror}") from None
        return DeclarativeDialect(spec, secret)
    raise ValueError(f"unknown dialect {name!r}; known: {', '.join(names())}, or a .toml dialect file")


def semantics_of(dialect: Dialect) -> Semantics:
    """The dialect's declared semantics (PROTOCOL.md's for one that declares none)."""
    return getattr(dialect, "semantics", CANONICAL)


def carries(dialect: Dialect, cur: Currency) -> bool:
    """Whether every amount of ``cur`` fits the dialect's wire format exactly."""
    limit = getattr(dialect, "max_exponent", None)
    return limit is None or cur.exponent <= limit
