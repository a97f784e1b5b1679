"""An independent model of the canonical wallet protocol: what a correct wallet must hold and answer.

Written from PROTOCOL.md and docs/wallet-rules.md only (never from
``simulator/wallet/rules.py`` or ``engine.py``), so that a wallet bug and a model
bug have to coincide to go unnoticed.  It is plain Python with no I/O: the
checker (``croupier check``) and the test suite's state machines ask it what a
call *should* do, then ask the wallet what it *did*.

The wallet invents two kinds of values the model cannot predict: session tokens
and ``wallet_tx_id``s.  The caller hands them back with :meth:`WalletModel.record_session`
and :meth:`WalletModel.record_wallet_tx_id` after the wallet answered, so replays
can be checked against the original id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from simulator.calls import Op, WalletCall, WinReason
from simulator.codes import ErrorCode
from simulator.money import INT64_MAX

ExpectedOk: TypeAlias = tuple[Literal["ok"], int, str | None]
"""("ok", balance after the call, original wallet_tx_id for a replay / existing session token, else None)."""
ExpectedRejected: TypeAlias = tuple[Literal["rejected"], ErrorCode]
Expected: TypeAlias = ExpectedOk | ExpectedRejected


@dataclass
class MPlayer:
    player_id: str
    currency: str
    balance: int
    blocked: bool = False
    deposited: int = 0
    """Opening balance plus admin deposits: the ``deposit`` rows of the transaction log."""


@dataclass
class MLaunchToken:
    player_id: str
    ttl_s: int
    session_token: str | None = None


@dataclass
class MSession:
    player_id: str
    expires_at: float

    def live(self, now: float) -> bool:
        """A session that lives ``ttl_s`` seconds is over once ``ttl_s`` seconds have passed."""
        return now < self.expires_at


@dataclass
class MTx:
    """An accepted bet, win or rollback: what decides replay vs mismatch, and the bet's fate."""

    op: Op
    player_id: str
    round_id: str
    amount: int | None
    currency: str | None
    ref_tx_id: str | None
    delta: int = 0
    """What the call did to the balance (a no-op rollback: 0), as the transaction log must show."""
    wallet_tx_id: str | None = None
    rolled_back: bool = False

    def key(self) -> tuple[object, ...]:
        return (self.op, self.player_id, self.round_id, self.amount, self.currency, self.ref_tx_id)


@dataclass
class MRound:
    closed: bool = False
    live_bets: int = 0


@dataclass
class Totals:
    """Money that entered or left the players' balances, per currency."""

    deposits: int = 0
    bets: int = 0
    wins: int = 0
    refunds: int = 0

    def expected_sum(self) -> int:
        return self.deposits - self.bets + self.wins + self.refunds


def call_key(call: WalletCall) -> tuple[object, ...]:
    """The fields PROTOCOL.md idempotency rule 1 compares (game_id, session, reason, round_closed do not)."""
    amount = call.amount.minor if call.amount is not None else None
    cur = call.amount.currency.code if call.amount is not None else None
    return (call.op, call.player_id, call.round_id, amount, cur, call.ref_tx_id)


@dataclass
class WalletModel:
    """The whole wallet state, and the rules in docs/wallet-rules.md order."""

    players: dict[str, MPlayer] = field(default_factory=dict)
    launch_tokens: dict[str, MLaunchToken] = field(default_factory=dict)
    sessions: dict[str, MSession] = field(default_factory=dict)
    txs: dict[str, MTx] = field(default_factory=dict)
    tombstones: set[str] = field(default_factory=set)
    rounds: dict[tuple[str, str], MRound] = field(default_factory=dict)
    totals: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))

    # -- admin ------------------------------------------------------------------------
    def create_player(self, player_id: str, currency: str, balance: int) -> None:
        assert player_id not in self.players, "the machine only creates fresh ids"
        self.players[player_id] = MPlayer(player_id, currency, balance, deposited=balance)
        self.totals[currency].deposits += balance

    def deposit(self, player_id: str, amount: int) -> int:
        assert amount >= 1
        p = self.players[player_id]
        p.balance += amount
        p.deposited += amount
        self.totals[p.currency].deposits += amount
        return p.balance

    def set_blocked(self, player_id: str, blocked: bool) -> None:
        self.players[player_id].blocked = blocked

    def issue_token(self, token: str, player_id: str, ttl_s: int) -> None:
        """Record a launch token the wallet issued (the wallet chooses its text)."""
        assert token not in self.launch_tokens, "launch tokens must be unique"
        self.launch_tokens[token] = MLaunchToken(player_id, ttl_s)

    def record_session(self, token: str, session_token: str, now: float) -> None:
        """After a first authenticate: the session lives the token's ttl from now."""
        lt = self.launch_tokens[token]
        assert lt.session_token is None
        assert session_token not in self.sessions, "session tokens must be unique"
        lt.session_token = session_token
        self.sessions[session_token] = MSession(lt.player_id, now + lt.ttl_s)

    def record_wallet_tx_id(self, tx_id: str, wallet_tx_id: str) -> None:
        tx = self.txs[tx_id]
        assert tx.wallet_tx_id is None
        tx.wallet_tx_id = wallet_tx_id

    # -- the protocol -------------------------------------------------------------------
    def apply(self, call: WalletCall, now: float) -> Expected:
        """What the wallet must answer to ``call`` at ``now``; the model's state moves with it."""
        if call.op is Op.AUTHENTICATE:
            return self._authenticate(call, now)
        if call.op is Op.BALANCE:
            return self._balance(call)
        return self._money(call, now)

    def _authenticate(self, call: WalletCall, now: float) -> Expected:
        assert call.token is not None
        lt = self.launch_tokens.get(call.token)
        if lt is None:
            return ("rejected", ErrorCode.INVALID_TOKEN)
        player = self.players[lt.player_id]
        if player.blocked:
            return ("rejected", ErrorCode.PLAYER_BLOCKED)
        if lt.session_token is not None:
            if self.sessions[lt.session_token].live(now):
                return ("ok", player.balance, lt.session_token)
            return ("rejected", ErrorCode.SESSION_EXPIRED)
        return ("ok", player.balance, None)  # new session: the caller records it

    def _balance(self, call: WalletCall) -> Expected:
        assert call.player_id is not None and call.session_token is not None
        player = self.players.get(call.player_id)
        if player is None:
            return ("rejected", ErrorCode.PLAYER_NOT_FOUND)
        if not self._session_of(call.session_token, player.player_id):
            return ("rejected", ErrorCode.INVALID_TOKEN)
        return ("ok", player.balance, None)

    def _session_of(self, session_token: str, player_id: str) -> bool:
        s = self.sessions.get(session_token)
        return s is not None and s.player_id == player_id

    def _round(self, player_id: str, round_id: str) -> MRound:
        return self.rounds.setdefault((player_id, round_id), MRound())

    def _closed(self, player_id: str, round_id: str) -> bool:
        r = self.rounds.get((player_id, round_id))
        return r is not None and r.closed

    def _money(self, call: WalletCall, now: float) -> Expected:
        tx_id, pid, sess, round_id = call.tx_id, call.player_id, call.session_token, call.round_id
        assert tx_id is not None and pid is not None and sess is not None and round_id is not None
        # 1. idempotency, before anything else (expired sessions, closed rounds, blocks do not matter)
        seen = self.txs.get(tx_id)
        if seen is not None:
            if seen.key() == call_key(call):
                return ("ok", self.players[seen.player_id].balance, seen.wallet_tx_id)
            return ("rejected", ErrorCode.DUPLICATE_MISMATCH)
        # 2.-3. player and session
        player = self.players.get(pid)
        if player is None:
            return ("rejected", ErrorCode.PLAYER_NOT_FOUND)
        if not self._session_of(sess, pid):
            return ("rejected", ErrorCode.INVALID_TOKEN)
        # 4. only a bet needs a live session
        if call.op is Op.BET and not self.sessions[sess].live(now):
            return ("rejected", ErrorCode.SESSION_EXPIRED)
        # 5. currency
        if call.op in (Op.BET, Op.WIN):
            assert call.amount is not None
            if call.amount.currency.code != player.currency:
                return ("rejected", ErrorCode.CURRENCY_MISMATCH)
        if call.op is Op.BET:
            return self._bet(call, player)
        if call.op is Op.WIN:
            return self._win(call, player)
        return self._rollback(call, player)

    def _accept(self, call: WalletCall, player: MPlayer, delta: int = 0) -> None:
        assert call.tx_id is not None and call.round_id is not None
        amount = call.amount.minor if call.amount is not None else None
        cur = call.amount.currency.code if call.amount is not None else None
        self.txs[call.tx_id] = MTx(call.op, player.player_id, call.round_id, amount, cur, call.ref_tx_id, delta)

    def _bet(self, call: WalletCall, player: MPlayer) -> Expected:
        assert call.tx_id is not None and call.round_id is not None and call.amount is not None
        if player.blocked:
            return ("rejected", ErrorCode.PLAYER_BLOCKED)
        if call.tx_id in self.tombstones:
            return ("rejected", ErrorCode.TX_ROLLED_BACK)
        if self._closed(player.player_id, call.round_id):
            return ("rejected", ErrorCode.ROUND_CLOSED)
        amount = call.amount.minor
        if amount > player.balance:
            return ("rejected", ErrorCode.INSUFFICIENT_FUNDS)
        player.balance -= amount
        self.totals[player.currency].bets += amount
        self._round(player.player_id, call.round_id).live_bets += 1
        self._accept(call, player, -amount)
        return ("ok", player.balance, None)

    def _win(self, call: WalletCall, player: MPlayer) -> Expected:
        assert call.round_id is not None and call.amount is not None
        if self._closed(player.player_id, call.round_id):
            return ("rejected", ErrorCode.ROUND_CLOSED)
        rnd = self.rounds.get((player.player_id, call.round_id))
        if call.reason is WinReason.REGULAR and (rnd is None or rnd.live_bets == 0):
            return ("rejected", ErrorCode.ROUND_NOT_FOUND)
        amount = call.amount.minor
        if player.balance + amount > INT64_MAX:
            return ("rejected", ErrorCode.LIMIT_EXCEEDED)
        player.balance += amount
        self.totals[player.currency].wins += amount
        if call.round_closed:
            self._round(player.player_id, call.round_id).closed = True
        self._accept(call, player, amount)
        return ("ok", player.balance, None)

    def _rollback(self, call: WalletCall, player: MPlayer) -> Expected:
        ref, round_id = call.ref_tx_id, call.round_id
        assert ref is not None and round_id is not None
        target = self.txs.get(ref)
        if target is not None:
            if target.op is not Op.BET:
                return ("rejected", ErrorCode.ROLLBACK_NOT_ALLOWED)
            if target.player_id != player.player_id or target.round_id != round_id:
                return ("rejected", ErrorCode.ROLLBACK_NOT_ALLOWED)
            if target.rolled_back:
                self._accept(call, player)
                return ("ok", player.balance, None)
        elif ref in self.tombstones:
            self._accept(call, player)
            return ("ok", player.balance, None)
        if self._closed(player.player_id, round_id):
            return ("rejected", ErrorCode.ROUND_CLOSED)
        if target is None:
            self.tombstones.add(ref)
            self._accept(call, player)
            return ("ok", player.balance, None)
        assert target.amount is not None
        if player.balance + target.amount > INT64_MAX:
            # Not in docs/wallet-rules.md (step 8 lists no limit), but a balance is a signed 64-bit
            # column (PROTOCOL.md, money.INT64_MAX): a refund that cannot be held is refused like a win.
            return ("rejected", ErrorCode.LIMIT_EXCEEDED)
        target.rolled_back = True
        player.balance += target.amount
        self.totals[player.currency].refunds += target.amount
        self._round(player.player_id, round_id).live_bets -= 1
        self._accept(call, player, target.amount)
        return ("ok", player.balance, None)
