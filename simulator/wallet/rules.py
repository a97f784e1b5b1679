"""Every money rule of PROTOCOL.md as pure decisions over facts a store has read.

A store reads the facts a call needs (:class:`Facts`), asks :func:`decide`, and
writes the :class:`Apply` it gets back inside the same transaction.  No store
holds a rule of its own, so memory, SQLite and PostgreSQL cannot drift apart.

The order of the checks is this wallet's choice, not the protocol's: a call that
breaks two rules gets the first one's code here, and PROTOCOL.md allows any code of
a rule the call breaks. ``docs/wallet-rules.md`` lists the order, so that the
reference wallet's answers are predictable.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.calls import Ok, Op, Rejected, WalletCall, WinReason
from ..protocol.codes import ErrorCode
from ..protocol.money import INT64_MAX
from .records import LaunchToken, PlayerRow, RoundRow, SessionRow, TxRow


@dataclass(frozen=True, slots=True)
class Facts:
    """What a money call's decision depends on, read under the player's lock."""

    existing: TxRow | None
    """The transaction already recorded under the call's ``tx_id``."""
    player: PlayerRow | None
    session: SessionRow | None
    round: RoundRow | None
    """The (player, round) the call names."""
    tombstoned: bool
    """bet: its ``tx_id`` was rolled back before it arrived; rollback: ``ref_tx_id`` was."""
    ref: TxRow | None = None
    """rollback: the transaction ``ref_tx_id`` names."""


@dataclass(frozen=True, slots=True)
class Replay:
    original: TxRow


@dataclass(frozen=True, slots=True)
class Apply:
    """Record the call and move the balance; everything a store must write."""

    delta: int
    new_balance: int
    open_bet: int = 0
    """+1 a bet joins the round's live bets, -1 a refund leaves them."""
    close_round: bool = False
    roll_back: str | None = None
    """tx_id of the bet this call refunds (mark it rolled back)."""
    tombstone: str | None = None
    """tx_id to tombstone: a rollback that arrived before its bet."""


Decision = Rejected | Replay | Apply


def _reject(code: ErrorCode, message: str) -> Rejected:
    return Rejected(code, message)


def decide(call: WalletCall, facts: Facts, now: float) -> Decision:
    """Judge a bet, win or rollback."""
    if facts.existing is not None:
        if facts.existing.replay_key() == call.replay_key():
            return Replay(facts.existing)
        return _reject(ErrorCode.DUPLICATE_MISMATCH, "tx_id was already used with different fields")
    player = facts.player
    if player is None:
        return _reject(ErrorCode.PLAYER_NOT_FOUND, "no such player")
    session = facts.session
    if session is None or session.player_id != player.player_id:
        return _reject(ErrorCode.INVALID_TOKEN, "session_token is not a session of this player")
    if call.op is Op.BET and now >= session.expires_at:
        return _reject(ErrorCode.SESSION_EXPIRED, "session expired: bets need a live session")
    if call.amount is not None and call.amount.currency.code != player.currency:
        return _reject(ErrorCode.CURRENCY_MISMATCH, f"player's currency is {player.currency}")
    if call.op is Op.BET:
        return _bet(call, facts, player)
    if call.op is Op.WIN:
        return _win(call, facts, player)
    return _rollback(call, facts, player)


def _round_closed(facts: Facts) -> Rejected | None:
    if facts.round is not None and facts.round.closed:
        return _reject(ErrorCode.ROUND_CLOSED, "round is closed")
    return None


def _bet(call: WalletCall, facts: Facts, player: PlayerRow) -> Decision:
    assert call.amount is not None
    if player.blocked:
        return _reject(ErrorCode.PLAYER_BLOCKED, "player is blocked: bets are refused")
    if facts.tombstoned:
        return _reject(ErrorCode.TX_ROLLED_BACK, "this bet was rolled back before it arrived")
    if closed := _round_closed(facts):
        return closed
    amount = call.amount.minor
    if amount > player.balance:
        return _reject(ErrorCode.INSUFFICIENT_FUNDS, "balance is lower than the bet")
    return Apply(delta=-amount, new_balance=player.balance - amount, open_bet=1)


def _win(call: WalletCall, facts: Facts, player: PlayerRow) -> Decision:
    assert call.amount is not None
    if closed := _round_closed(facts):
        return closed
    if call.reason is WinReason.REGULAR and (facts.round is None or facts.round.live_bets <= 0):
        return _reject(ErrorCode.ROUND_NOT_FOUND, "a regular win needs an accepted bet in its round")
    amount = call.amount.minor
    if player.balance + amount > INT64_MAX:
        return _reject(ErrorCode.LIMIT_EXCEEDED, "balance would exceed the largest balance held")
    return Apply(delta=amount, new_balance=player.balance + amount, close_round=bool(call.round_closed))


def _rollback(call: WalletCall, facts: Facts, player: PlayerRow) -> Decision:
    ref = facts.ref
    if ref is not None:
        if ref.op != Op.BET:
            return _reject(ErrorCode.ROLLBACK_NOT_ALLOWED, "only a bet can be rolled back")
        if ref.player_id != call.player_id or ref.round_id != call.round_id:
            return _reject(ErrorCode.ROLLBACK_NOT_ALLOWED, "ref_tx_id is a bet of another player or round")
        if ref.rolled_back:
            return Apply(delta=0, new_balance=player.balance)
    elif facts.tombstoned:
        return Apply(delta=0, new_balance=player.balance)
    if closed := _round_closed(facts):
        return closed
    if ref is None:
        return Apply(delta=0, new_balance=player.balance, tombstone=call.ref_tx_id)
    assert ref.amount is not None
    if player.balance + ref.amount > INT64_MAX:
        return _reject(ErrorCode.LIMIT_EXCEEDED, "balance would exceed the largest balance held")
    return Apply(
        delta=ref.amount, new_balance=player.balance + ref.amount, open_bet=-1, roll_back=ref.tx_id
    )


# -- authenticate and balance ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSession:
    expires_at: float


def decide_authenticate(
    launch: LaunchToken | None, player: PlayerRow | None, session: SessionRow | None, now: float
) -> Rejected | SessionRow | NewSession:
    """A launch token becomes one session; asking again returns the same one (retries are safe)."""
    if launch is None or player is None:
        return _reject(ErrorCode.INVALID_TOKEN, "unknown launch token")
    if player.blocked:
        return _reject(ErrorCode.PLAYER_BLOCKED, "player is blocked")
    if session is not None:
        if now >= session.expires_at:
            return _reject(ErrorCode.SESSION_EXPIRED, "the session of this launch token has expired")
        return session
    return NewSession(expires_at=now + launch.ttl_s)


def decide_balance(player: PlayerRow | None, session: SessionRow | None) -> Rejected | None:
    """Balance is a read: any session of the player will do, expired or not."""
    if player is None:
        return _reject(ErrorCode.PLAYER_NOT_FOUND, "no such player")
    if session is None or session.player_id != player.player_id:
        return _reject(ErrorCode.INVALID_TOKEN, "session_token is not a session of this player")
    return None


def ok_for(player: PlayerRow) -> Ok:
    from ..protocol.money import Money, currency

    return Ok(Money(player.balance, currency(player.currency)))
