"""Wallet dialects: one wire protocol each, as pure encode/decode functions for both sides.

A dialect turns a :class:`~simulator.protocol.calls.WalletCall` into an :class:`HttpRequest`
and an :class:`HttpResponse` back into an :class:`~simulator.protocol.calls.Outcome` (the
simulator's side), and the reverse (the reference wallet's side).  No dialect does
I/O: the aiohttp runner, the Locust users, the Hypothesis machine and the wallet
server move the bytes.

This package is the registry (:func:`names`, :func:`get`); what a dialect is lives in
:mod:`.base` and is re-exported here, so the implementations never import the package back.
"""

from __future__ import annotations

from .base import (
    BatchDialect,
    Dialect,
    DialectBase,
    DialectError,
    HttpRequest,
    HttpResponse,
    VariantDialect,
    batching,
    carries,
    semantics_of,
    variants,
)
from .builtin import SPECS, builtin
from .canonical import CanonicalDialect
from .declarative import DeclarativeDialect
from .spec import load_file

__all__ = [
    "BatchDialect", "Dialect", "DialectBase", "DialectError", "HttpRequest", "HttpResponse", "VariantDialect",
    "batching", "carries", "get", "names", "semantics_of", "variants",
]


def names() -> list[str]:
    """The built-in dialects: canonical first, then the real-world shapes."""
    return ["canonical", *SPECS]


def get(name: str, secret: str) -> Dialect:
    """A dialect by built-in name or TOML file path, keyed with the shared secret.

    ``ValueError`` (a :class:`~simulator.protocol.dialects.declarative.SpecError` for an invalid
    file) names what is wrong: callers turn it into exit code 2.
    """
    if name == "canonical":
        return CanonicalDialect(secret)
    found = builtin(name, secret)
    if found is not None:
        return found
    if name.endswith(".toml") or "/" in name:
        try:
            spec = load_file(name)
        except OSError as exc:
            raise ValueError(f"cannot read dialect file {name}: {exc.strerror}") from None
        return DeclarativeDialect(spec, secret)
    raise ValueError(f"unknown dialect {name!r}; known: {', '.join(names())}, or a .toml dialect file")
