"""Runs one call against a synchronous repository: read facts, decide, write.

The memory and SQLite stores both hand a :class:`Repo` to :func:`execute` from the
one place where their writes are serialized (the event loop, or the SQLite
writer thread), so the read–decide–write sequence is atomic and every store
writes exactly what :mod:`.rules` decided.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from ..protocol.calls import Ok, Op, Outcome, Rejected, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.money import INT64_MAX, Money, currency
from . import rules
from .records import LaunchToken, PlayerRow, RoundRow, SessionRow, TxRow


class Repo(Protocol):
    """Row access inside one open transaction."""

    def player(self, player_id: str) -> PlayerRow | None: ...
    def insert_player(self, row: PlayerRow, now: float) -> None: ...
    def set_balance(self, player_id: str, balance: int) -> None: ...
    def set_blocked(self, player_id: str, blocked: bool) -> None: ...
    def launch_token(self, token: str) -> LaunchToken | None: ...
    def insert_launch_token(self, row: LaunchToken) -> None: ...
    def bind_session(self, token: str, session_token: str) -> None: ...
    def session(self, session_token: str) -> SessionRow | None: ...
    def insert_session(self, row: SessionRow) -> None: ...
    def tx(self, tx_id: str) -> TxRow | None: ...
    def insert_tx(self, row: TxRow) -> str:
        """Store ``row`` (its wallet_tx_id is ignored) and return the id given to it."""
        ...
    def mark_rolled_back(self, tx_id: str) -> None: ...
    def is_tombstoned(self, tx_id: str) -> bool: ...
    def insert_tombstone(self, tx_id: str, rollback_tx_id: str, now: float) -> None: ...
    def round(self, player_id: str, round_id: str) -> RoundRow | None: ...
    def save_round(self, row: RoundRow) -> None: ...


def new_token() -> str:
    return secrets.token_urlsafe(24)


def execute(repo: Repo, call: WalletCall, now: float) -> Outcome:
    """Judge and apply one protocol call; the caller commits."""
    if call.op is Op.AUTHENTICATE:
        return _authenticate(repo, call, now)
    if call.op is Op.BALANCE:
        assert call.player_id is not None and call.session_token is not None
        player = repo.player(call.player_id)
        refused = rules.decide_balance(player, repo.session(call.session_token))
        return refused if refused is not None else rules.ok_for(player)  # type: ignore[arg-type]
    return _money(repo, call, now)


def _authenticate(repo: Repo, call: WalletCall, now: float) -> Outcome:
    assert call.token is not None and call.game_id is not None
    launch = repo.launch_token(call.token)
    player = repo.player(launch.player_id) if launch else None
    session = repo.session(launch.session_token) if launch and launch.session_token else None
    verdict = rules.decide_authenticate(launch, player, session, now)
    if isinstance(verdict, Rejected):
        return verdict
    assert launch is not None and player is not None
    if isinstance(verdict, rules.NewSession):
        session = SessionRow(new_token(), player.player_id, call.game_id, verdict.expires_at)
        repo.insert_session(session)
        repo.bind_session(launch.token, session.session_token)
    else:
        session = verdict
    ok = rules.ok_for(player)
    return Ok(ok.balance, player_id=player.player_id, session_token=session.session_token)


@dataclass(frozen=True, slots=True)
class FactKeys:
    """The rows a money call's decision reads (so a store can fetch them in one query)."""

    tx_id: str
    player_id: str
    session_token: str | None
    round_id: str
    ref_tx_id: str | None
    tombstone_key: str | None
    """bet: its own tx_id; rollback: ref_tx_id; win: None."""


def fact_keys(call: WalletCall) -> FactKeys:
    assert call.tx_id is not None and call.player_id is not None and call.round_id is not None
    ref = call.ref_tx_id if call.op is Op.ROLLBACK else None
    tomb = call.tx_id if call.op is Op.BET else ref
    return FactKeys(call.tx_id, call.player_id, call.session_token, call.round_id, ref, tomb)


@dataclass(frozen=True, slots=True)
class Effects:
    """Everything a store writes for an applied call, in one transaction."""

    row: TxRow
    """The transaction to record (its wallet_tx_id is assigned by the store)."""
    new_balance: int | None
    """The player's new balance, or None when it does not change."""
    roll_back: str | None
    tombstone: str | None
    round: RoundRow | None
    """The round as it must be saved (None: untouched)."""


def effects(call: WalletCall, facts: rules.Facts, decision: rules.Apply, now: float) -> Effects:
    """What to write for ``decision`` (pure: the same for every store)."""
    player = facts.player
    assert player is not None and call.tx_id is not None and call.player_id is not None
    assert call.round_id is not None
    row = TxRow(
        wallet_tx_id="",
        tx_id=call.tx_id,
        op=str(call.op),
        player_id=call.player_id,
        game_id=call.game_id,
        round_id=call.round_id,
        currency=player.currency,
        amount=call.amount.minor if call.amount else None,
        ref_tx_id=call.ref_tx_id,
        reason=str(call.reason) if call.reason else None,
        round_closed=call.round_closed,
        delta=decision.delta,
        balance_after=decision.new_balance,
        rolled_back=False,
        created_at=now,
    )
    round_row = None
    if decision.open_bet or decision.close_round:
        base = facts.round or RoundRow(call.player_id, call.round_id, call.game_id or "", False, 0)
        round_row = RoundRow(base.player_id, base.round_id, base.game_id, base.closed or decision.close_round,
                             base.live_bets + decision.open_bet)
    return Effects(row, decision.new_balance if decision.delta else None, decision.roll_back, decision.tombstone,
                   round_row)


def judge(call: WalletCall, facts: rules.Facts, now: float) -> Outcome | Effects:
    """Decide a money call: an answer now (rejection or replay), or the effects to write."""
    decision = rules.decide(call, facts, now)
    if isinstance(decision, Rejected):
        return decision
    assert facts.player is not None
    if isinstance(decision, rules.Replay):
        return Ok(rules.ok_for(facts.player).balance, wallet_tx_id=decision.original.wallet_tx_id, replay=True)
    return effects(call, facts, decision, now)


def applied(effects_: Effects, wallet_tx_id: str) -> Ok:
    """The answer to an applied call, once its effects are written under ``wallet_tx_id``."""
    return Ok(Money(effects_.row.balance_after, currency(effects_.row.currency)), wallet_tx_id=wallet_tx_id,
              unknown_ref=effects_.tombstone is not None)


def read_facts(repo: Repo, keys: FactKeys) -> rules.Facts:
    """The facts of a money call: in one query when the repo offers ``facts`` (SQLite), else row by row."""
    one = getattr(repo, "facts", None)
    if one is not None:
        facts: rules.Facts = one(keys)
        return facts
    return rules.Facts(
        existing=repo.tx(keys.tx_id),
        player=repo.player(keys.player_id),
        session=repo.session(keys.session_token) if keys.session_token else None,
        round=repo.round(keys.player_id, keys.round_id),
        tombstoned=repo.is_tombstoned(keys.tombstone_key) if keys.tombstone_key else False,
        ref=repo.tx(keys.ref_tx_id) if keys.ref_tx_id else None,
    )


def _money(repo: Repo, call: WalletCall, now: float) -> Outcome:
    keys = fact_keys(call)
    facts = read_facts(repo, keys)
    verdict = judge(call, facts, now)
    if not isinstance(verdict, Effects):
        return verdict
    wallet_tx_id = repo.insert_tx(verdict.row)
    if verdict.new_balance is not None:
        repo.set_balance(keys.player_id, verdict.new_balance)
    if verdict.roll_back:
        repo.mark_rolled_back(verdict.roll_back)
    if verdict.tombstone:
        repo.insert_tombstone(verdict.tombstone, keys.tx_id, now)
    if verdict.round is not None:
        repo.save_round(verdict.round)
    return applied(verdict, wallet_tx_id)


# -- the admin operations (not part of the protocol) ----------------------------------


def create_player(repo: Repo, player_id: str, code: str, balance: int, now: float) -> PlayerRow | Rejected:
    if repo.player(player_id) is not None:
        return Rejected(ErrorCode.PLAYER_EXISTS, "a player with this id exists")
    row = PlayerRow(player_id, code, balance, False)
    repo.insert_player(row, now)
    if balance:
        _deposit_row(repo, row, balance, now)
    return row


def _deposit_row(repo: Repo, player: PlayerRow, amount: int, now: float) -> None:
    """Log money that entered from outside, so the log alone explains every balance."""
    repo.insert_tx(
        TxRow("", None, "deposit", player.player_id, None, None, player.currency, amount, None, None, None,
              amount, player.balance, False, now)
    )


def deposit(repo: Repo, player_id: str, amount: int, now: float) -> PlayerRow | Rejected:
    player = repo.player(player_id)
    if player is None:
        return Rejected(ErrorCode.PLAYER_NOT_FOUND, "no such player")
    if player.balance + amount > INT64_MAX:
        return Rejected(ErrorCode.LIMIT_EXCEEDED, "balance would exceed the largest balance held")
    new = PlayerRow(player.player_id, player.currency, player.balance + amount, player.blocked)
    repo.set_balance(player_id, new.balance)
    _deposit_row(repo, new, amount, now)
    return new


def set_blocked(repo: Repo, player_id: str, blocked: bool) -> PlayerRow | Rejected:
    player = repo.player(player_id)
    if player is None:
        return Rejected(ErrorCode.PLAYER_NOT_FOUND, "no such player")
    repo.set_blocked(player_id, blocked)
    return PlayerRow(player.player_id, player.currency, player.balance, blocked)


def issue_token(repo: Repo, player_id: str, ttl_s: int, now: float) -> str | Rejected:
    if repo.player(player_id) is None:
        return Rejected(ErrorCode.PLAYER_NOT_FOUND, "no such player")
    token = new_token()
    repo.insert_launch_token(LaunchToken(token, player_id, ttl_s, now))
    return token
