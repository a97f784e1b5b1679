"""Wallet dialects: one wire protocol each, as pure encode/decode functions for both sides.

A dialect turns a :class:`~simulator.calls.WalletCall` into an :class:`HttpRequest`
and an :class:`HttpResponse` back into an :class:`~simulator.calls.Outcome` (the
simulator's side), and the reverse (the reference wallet's side).  No dialect does
I/O: the aiohttp runner, the Locust users, the Hypothesis machine and the wallet
server move the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..calls import Outcome, Rejected, WalletCall


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


def get(name: str, secret: str) -> Dialect:
    """A dialect by name, keyed with the shared secret."""
    from .canonical import CanonicalDialect

    dialects = {"canonical": CanonicalDialect}
    try:
        return dialects[name](secret)
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(sorted(dialects))}") from None
