"""The call vocabulary: what a provider asks a wallet, and what can come back.

``WalletCall`` is one request in protocol-neutral form; ``Outcome`` is one of
``Ok``, ``Rejected`` (a definitive refusal that changed nothing) or ``Unknown``
(timeout, reset, 5xx, garbage: the call may or may not have happened).  Rounds,
the ledger, dialects and the reference wallet all speak these types, so a rule
is written against them once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from .codes import ErrorCode
from .frozen import quick_init
from .money import Money


class Op(StrEnum):
    AUTHENTICATE = "authenticate"
    BALANCE = "balance"
    BET = "bet"
    WIN = "win"
    ROLLBACK = "rollback"


class WinReason(StrEnum):
    REGULAR = "regular"
    FREE_SPIN = "free_spin"
    BONUS = "bonus"
    JACKPOT = "jackpot"
    PROMO = "promo"
    TOURNAMENT = "tournament"
    CASHBACK = "cashback"


MONEY_OPS: Final = frozenset({Op.BET, Op.WIN, Op.ROLLBACK})
"""Operations that carry a ``tx_id`` and may move money."""


@quick_init
@dataclass(frozen=True, slots=True)
class WalletCall:
    """One provider → wallet request, independent of any wire format.

    Which fields are set depends on ``op`` (see PROTOCOL.md); the dialects
    enforce that on the wire, the constructors below make it easy in code.
    """

    op: Op
    player_id: str | None = None
    session_token: str | None = None
    token: str | None = None
    game_id: str | None = None
    tx_id: str | None = None
    round_id: str | None = None
    amount: Money | None = None
    ref_tx_id: str | None = None
    reason: WinReason | None = None
    round_closed: bool | None = None
    bet_tx_id: str | None = None
    """A win: the bet it pays (a dialect whose wins name their bet sends it; PROTOCOL.md's wins do not)."""
    session_ref: str | None = field(default=None, compare=False)
    """A second session id some wires carry beside the session token (given by a players file);
    sent where a dialect maps the source ``session_ref``, never compared."""
    currency_hint: str | None = field(default=None, compare=False)
    """The account's currency as the provider knows it, for a dialect whose answers may omit the
    currency (a balance call carries no amount to take it from).  Never sent, never compared."""

    @classmethod
    def authenticate(cls, token: str, game_id: str) -> WalletCall:
        return cls(Op.AUTHENTICATE, token=token, game_id=game_id)

    @classmethod
    def balance(cls, player_id: str, session_token: str) -> WalletCall:
        return cls(Op.BALANCE, player_id=player_id, session_token=session_token)

    @classmethod
    def bet(
        cls, tx_id: str, player_id: str, session_token: str, game_id: str, round_id: str, amount: Money
    ) -> WalletCall:
        return cls(
            Op.BET,
            tx_id=tx_id,
            player_id=player_id,
            session_token=session_token,
            game_id=game_id,
            round_id=round_id,
            amount=amount,
        )

    @classmethod
    def win(
        cls,
        tx_id: str,
        player_id: str,
        session_token: str,
        game_id: str,
        round_id: str,
        amount: Money,
        reason: WinReason = WinReason.REGULAR,
        round_closed: bool = False,
    ) -> WalletCall:
        return cls(
            Op.WIN,
            tx_id=tx_id,
            player_id=player_id,
            session_token=session_token,
            game_id=game_id,
            round_id=round_id,
            amount=amount,
            reason=reason,
            round_closed=round_closed,
        )

    @classmethod
    def rollback(
        cls, tx_id: str, ref_tx_id: str, player_id: str, session_token: str, game_id: str, round_id: str
    ) -> WalletCall:
        return cls(
            Op.ROLLBACK,
            tx_id=tx_id,
            ref_tx_id=ref_tx_id,
            player_id=player_id,
            session_token=session_token,
            game_id=game_id,
            round_id=round_id,
        )

    def replay_key(self) -> tuple[object, ...]:
        """The fields that decide replay vs ``DUPLICATE_MISMATCH`` (PROTOCOL.md rule 1).

        A rollback's amount (dialects whose rollbacks carry the bet's amount) is not one of them."""
        amount = (self.amount.minor, self.amount.currency.code) if self.amount and self.op is not Op.ROLLBACK \
            else (None, None)
        return (self.op, self.player_id, self.round_id, *amount, self.ref_tx_id)


@quick_init
@dataclass(frozen=True, slots=True)
class Ok:
    """A success.  ``balance`` is the balance after the call (current, for a replay)."""

    balance: Money
    wallet_tx_id: str | None = None
    player_id: str | None = None
    session_token: str | None = None
    replay: bool = field(default=False, compare=False)
    """Known only inside the reference wallet; the wire does not say."""
    missing: frozenset[str] = field(default=frozenset(), compare=False)
    """What the answer did not carry, of ``balance``, ``player_id``, ``session_token`` (an
    ``authenticate`` / user-info answer may carry only some; the caller takes the rest from its
    players file or asks for the balance).  ``balance`` is then a placeholder of 0."""
    unknown_ref: bool = field(default=False, compare=False)
    """A rollback of a transaction the wallet never saw (it left a tombstone).  Known only
    inside the reference wallet, for dialects that answer it with a code of its own."""


@quick_init
@dataclass(frozen=True, slots=True)
class Rejected:
    """A definitive refusal: nothing changed."""

    code: ErrorCode
    message: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class Unknown:
    """No definitive answer: timeout, reset, 5xx or an answer we cannot read."""

    reason: str
    status: int | None = None


Outcome = Ok | Rejected | Unknown


@quick_init
@dataclass(frozen=True, slots=True)
class Exchange:
    """One call and what came back, with timing: the evidence a report shows."""

    call: WalletCall
    outcome: Outcome
    latency_ms: float
    request_body: bytes = b""
    status: int | None = None
    response_body: bytes = b""


CALL_FIELDS: Final = ("player_id", "session_token", "token", "game_id", "tx_id", "round_id", "ref_tx_id", "bet_tx_id",
                      "session_ref", "currency_hint")
"""The text fields of a call any dialect may send, in the order its JSON form lists them."""


def call_json(call: WalletCall) -> dict[str, Any]:
    """A call as plain JSON (a replay file, a recording): every field (None left out), amounts as
    [minor units, currency]."""
    out: dict[str, Any] = {"op": str(call.op)}
    for name in CALL_FIELDS:
        value = getattr(call, name)
        if value is not None:
            out[name] = value
    if call.amount is not None:
        out["amount"] = [call.amount.minor, call.amount.currency.code]
    if call.reason is not None:
        out["reason"] = str(call.reason)
    if call.round_closed is not None:
        out["round_closed"] = call.round_closed
    return out


def call_from_json(data: Mapping[str, Any]) -> WalletCall:
    """The call :func:`call_json` wrote."""
    fields = {name: str(data[name]) for name in CALL_FIELDS if data.get(name) is not None}
    amount = data.get("amount")
    return WalletCall(Op(data["op"]), amount=Money.of(int(amount[0]), str(amount[1])) if amount else None,
                      reason=WinReason(data["reason"]) if data.get("reason") else None,
                      round_closed=data.get("round_closed"), **fields)
