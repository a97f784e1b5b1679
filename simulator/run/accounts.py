"""What a run needs before its first round: the test accounts of a players file, a wallet that listens.

A run that cannot start says so with a :class:`RunError` (exit code 2, no report); one that started
but could not test anything, with a :class:`SetupError` (a report whose verdict is ``error``).
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

from ..drive.accounts import PlayersFileError, TestAccount
from ..drive.accounts import read_accounts as _read_accounts
from ..drive.tls import ClientTLS, TLSError, handshake_problem

__all__ = ["RunError", "SetupError", "TLSProblem", "TestAccount", "preflight", "read_accounts"]


class RunError(RuntimeError):
    """The run could not start (bad player file, bad options...): exit code 2, no report."""


class SetupError(RunError):
    """The run started but could not test anything (unreachable wallet or admin API): a report
    with the verdict ``error`` and this message as its cause."""


def read_accounts(path: str) -> list[TestAccount]:
    """:func:`simulator.drive.accounts.read_accounts`, its errors a :class:`RunError` (exit code 2)."""
    try:
        return _read_accounts(path)
    except PlayersFileError as exc:
        raise RunError(str(exc)) from None


class TLSProblem(RunError):
    """The wallet listens but croupier cannot talk TLS with it (an untrusted certificate, a client certificate
    asked for...): the message names the flag that fixes it."""


async def preflight(url: str, timeout: float = 3.0, tls: ClientTLS | None = None,
                    ctx: ssl.SSLContext | None = None) -> None:
    """Fail fast (exit 2) when nothing listens at the wallet's address; for an ``https://`` wallet, also
    when the TLS handshake fails (:class:`TLSProblem`, with the flag that fixes it): one sentence before
    the first call rather than every call of the run failing alike.  ``ctx``: the run's client context
    (default: one built from ``tls``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RunError(f"not an http(s) URL: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise RunError(f"wallet unreachable at {parts.hostname}:{port}: {exc}") from None
    writer.close()
    if parts.scheme == "https":
        tls = tls or ClientTLS()
        try:
            ctx = ctx or tls.context()
        except TLSError as exc:
            raise RunError(str(exc)) from None
        problem = await asyncio.to_thread(handshake_problem, parts.hostname, port, parts.path, tls, ctx, timeout)
        if problem:
            raise TLSProblem(problem)
