"""Why a run could not seat a player, in words that name the likely cause (``croupier run`` and ``load``).

A run that seats nobody has the verdict ``error`` and the most frequent of these as its message,
so a wrong ``--secret``, ``--admin-token`` or base URL reads as what it is, not as a pass.
"""

from __future__ import annotations

from ..protocol.calls import Outcome, Rejected, Unknown
from ..protocol.codes import ErrorCode


def admin_cause(status: int, what: str, admin_url: str | None) -> str:
    """The admin API answered ``status`` to ``what`` (``POST /admin/players``...)."""
    if status in (401, 403):
        return f"admin API answered {status}: check --admin-token"
    if status in (404, 405):
        return (f"admin API answered {status} on {what} at {admin_url}: is --admin-url the wallet's admin API "
                "(its host, without /wallet)? A wallet without one needs --players FILE")
    if status == 409 and "players" in what:
        return f"admin API answered 409 on {what}: these player ids exist already (pass another --run-id)"
    return f"admin API answered {status} on {what}"


def auth_cause(outcome: Outcome, wallet_url: str, dialect: str = "canonical", players_file: str | None = None) -> str:
    """``authenticate`` did not give a session."""
    url = wallet_url.rstrip("/")
    if isinstance(outcome, Rejected):
        if outcome.code is ErrorCode.INVALID_SIGNATURE:
            return "every call was refused INVALID_SIGNATURE: check --secret"
        if outcome.code in (ErrorCode.INVALID_TOKEN, ErrorCode.SESSION_EXPIRED) and players_file is not None:
            return f"authenticate refused {outcome.code}: the launch tokens of {players_file} are not (or no longer) valid"
        return f"authenticate refused {outcome.code}"
    if isinstance(outcome, Unknown):
        if outcome.status == 404:
            return f"404 on {url}/authenticate: is the base URL right (…/wallet)?"
        if outcome.status is not None and outcome.status < 500:
            return (f"authenticate answered HTTP {outcome.status} that cannot be read ({outcome.reason}): "
                    f"is the base URL ({url}) and --dialect ({dialect}) right?")
        if outcome.status is not None:
            return f"authenticate answered HTTP {outcome.status}: the wallet is failing"
        return f"authenticate got no answer ({outcome.reason}): is the wallet up at {url}?"
    return "authenticate answered without a session"


def balance_cause(outcome: Outcome | None, wallet_url: str, players_file: str | None = None) -> str:
    """The balance read that seats a player (no ``authenticate`` gave it) did not answer a balance."""
    url = wallet_url.rstrip("/")
    if isinstance(outcome, Rejected):
        if outcome.code is ErrorCode.INVALID_SIGNATURE:
            return "every call was refused INVALID_SIGNATURE: check --secret"
        if outcome.code in (ErrorCode.INVALID_TOKEN, ErrorCode.SESSION_EXPIRED):
            where = f"the session tokens of {players_file}" if players_file else "the sessions"
            return f"balance read refused {outcome.code}: {where} are not (or no longer) valid"
        return f"balance read refused {outcome.code}"
    if isinstance(outcome, Unknown):
        if outcome.status == 404:
            return f"404 reading a balance at {url}: is the base URL right?"
        if outcome.status is not None:
            return f"balance read answered HTTP {outcome.status} ({outcome.reason})"
        return f"balance read got no answer ({outcome.reason}): is the wallet up at {url}?"
    return "balance read gave no balance"


def seat_cause(step: str, outcome: Outcome | None, wallet_url: str, dialect: str = "canonical",
               players_file: str | None = None) -> str:
    """Why :func:`simulator.play.rounds.open_seat` could not seat a player (``step``: what failed)."""
    if step == "other-player":
        return "authenticate answered another player than the launch token's"
    if step == "currency":
        where = f"in {players_file}" if players_file else "provisioned"
        return f"authenticate answered an account in another currency than {where}"
    if step == "balance":
        return balance_cause(outcome, wallet_url, players_file)
    assert outcome is not None
    return auth_cause(outcome, wallet_url, dialect, players_file)
