"""What a run needs before its first round: the test accounts of a players file, a wallet that listens.

A run that cannot start says so with a :class:`RunError` (exit code 2, no report); one that started
but could not test anything, with a :class:`SetupError` (a report whose verdict is ``error``).
"""

from __future__ import annotations

import asyncio
import csv
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..drive.tls import ClientTLS, TLSError, handshake_problem
from ..protocol.money import currency


class RunError(RuntimeError):
    """The run could not start (bad player file, bad options...): exit code 2, no report."""


class SetupError(RunError):
    """The run started but could not test anything (unreachable wallet or admin API): a report
    with the verdict ``error`` and this message as its cause."""


@dataclass(frozen=True, slots=True)
class TestAccount:
    """One row of a players file: a player the wallet already has, and how croupier reaches it."""

    player_id: str
    token: str
    """A launch token (for ``authenticate``); where the operator makes the sessions and the file gives
    no ``session_token``, the session itself."""
    currency: str
    session_token: str | None = None
    """The player's session, where the operator makes them (``sessions = "operator"``); also the session
    when an ``authenticate`` answer carries none."""
    session_ref: str | None = None
    """A second session id some wires carry beside the session token."""

    @property
    def session(self) -> str:
        """The session croupier plays on where no ``authenticate`` call makes one."""
        return self.session_token or self.token


def read_accounts(path: str) -> list[TestAccount]:
    """A CSV of test accounts with a header: player_id,token,currency (a launch token each), and the
    optional columns session_token and session_ref (where the operator makes the sessions, or a wire
    carries a second session id).  A UTF-8 byte-order mark (Excel's "CSV UTF-8") is ignored, and so
    are spaces around names and values; an empty optional value is no value."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
            rows = list(reader)
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RunError(f"{path}: not a UTF-8 CSV file ({exc})") from None
    accounts = []
    for n, row in enumerate(rows, start=2):
        try:
            acc = TestAccount(row["player_id"].strip(), row["token"].strip(), row["currency"].strip(),
                              _optional(row.get("session_token")), _optional(row.get("session_ref")))
            currency(acc.currency)
        except (KeyError, AttributeError):
            raise RunError(f"{path}:{n}: needs columns player_id,token,currency "
                           "(and optionally session_token,session_ref)") from None
        except ValueError as exc:
            raise RunError(f"{path}:{n}: {exc}") from None
        if not acc.player_id or not (acc.token or acc.session_token):
            raise RunError(f"{path}:{n}: a player_id and a token (or a session_token) are needed")
        accounts.append(acc)
    if not accounts:
        raise RunError(f"{path}: no accounts")
    return accounts


def _optional(value: str | None) -> str | None:
    value = value.strip() if isinstance(value, str) else None
    return value or None


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
