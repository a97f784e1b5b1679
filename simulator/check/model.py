"""An independent model of the canonical wallet protocol: what a correct wallet must hold and answer.

Written from PROTOCOL.md, docs/wallet-rules.md and docs/dialects.md only (never from
``simulator/wallet/rules.py`` or ``engine.py``), so that a wallet bug and a model
bug have to coincide to go unnoticed.  It is plain Python with no I/O: the
checker (``croupier check``) and the test suite's state machines ask it what a
call *should* do, then ask the wallet what it *did*.

The wallet invents two kinds of values the model cannot predict: session tokens
and ``wallet_tx_id``s.  The caller hands them back with :meth:`WalletModel.record_session`
and :meth:`WalletModel.record_wallet_tx_id` after the wallet answered, so replays
can be checked against the original id.

A dialect may declare semantics other than PROTOCOL.md's (:mod:`simulator.protocol.dialects.semantics`):
the session names the player, amounts carry no currency, there are no rounds, a
win names its bet, ``tx_id`` is unique per player... The model takes them
(``WalletModel(semantics=...)``) and judges each call as its wire carries it,
expecting nothing the semantics leave out.  An outcome that rests on such an
axis names its ``dialect-*`` rule (:attr:`Outcomes.rule`), whose quote is the
dialect's documented sentence.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from simulator.protocol.calls import Op, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects.semantics import CANONICAL, RULE_IDS, Semantics
from simulator.protocol.money import INT64_MAX

ExpectedOk: TypeAlias = tuple[Literal["ok"], int, str | None]
"""("ok", balance after the call, original wallet_tx_id for a replay / existing session token, else None)."""
ExpectedRejected: TypeAlias = tuple[Literal["rejected"], ErrorCode]
Expected: TypeAlias = ExpectedOk | ExpectedRejected
TxKey: TypeAlias = str | tuple[str, str]
"""What a transaction is recorded under: its ``tx_id`` (PROTOCOL.md), or (player, ``tx_id``) where a dialect's
``tx_id`` is unique per player."""

ANY_CODE: frozenset[ErrorCode] = frozenset(ErrorCode)
"""Every code (a refusal the semantics require without naming its code: any refusal that changes nothing)."""


@dataclass(frozen=True, slots=True)
class Accept:
    """One way a correct wallet may accept a call: the balance it answers and what the call does.

    ``effects`` are small tuples that :meth:`WalletModel.commit` carries out, so a decision can be
    weighed (several of them, in a race in every order) before anything moves."""

    balance: int
    original: str | None = None
    """The original wallet_tx_id (a replay) or the existing session token (authenticate), else None."""
    effects: tuple[tuple[object, ...], ...] = ()
    choice: str = ""
    """Set when this acceptance is one choice among several the protocol allows: what the wallet chose."""
    new_session: bool = False
    """authenticate: the wallet hands out a new session (the caller records it)."""


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Every answer PROTOCOL.md allows for one call, and the reference wallet's among them (``primary``).

    ``codes``: the refusals allowed (each changes nothing), any code of a rule the call breaks;
    ``accepts``: the acceptances allowed.  ``choices`` says, per refusal code, which allowed
    choice a refusal with that code is (when an acceptance was allowed too)."""

    primary: Expected
    codes: frozenset[ErrorCode] = frozenset()
    accepts: tuple[Accept, ...] = ()
    choices: tuple[tuple[ErrorCode, str], ...] = ()
    rule: str = ""
    """The ``dialect-*`` rule the decision rests on, where a dialect's semantics decided it (else "")."""

    def accept(self, balance: int) -> Accept | None:
        """The acceptance that answers ``balance``, the primary's first (None: no acceptance fits)."""
        fitting = [a for a in self.accepts if a.balance == balance]
        return fitting[0] if fitting else None

    def choice_of(self, code: ErrorCode) -> str:
        return next((c for k, c in self.choices if k == code), "")


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
    game_id: str | None = None
    """What the call did to the balance (a no-op rollback: 0), as the transaction log must show."""
    wallet_tx_id: str | None = None
    rolled_back: bool = False

    def key(self) -> tuple[object, ...]:
        return (self.op, self.player_id, self.round_id, self.amount, self.currency, self.ref_tx_id)


@dataclass
class MRound:
    closed: bool = False
    live_bets: int = 0
    bets: int = 0
    """Bets ever accepted in the round (rolled back or not): a regular win after they were all rolled
    back is one of the choices PROTOCOL.md leaves to the wallet."""


@dataclass
class Totals:
    """Money that entered or left the players' balances, per currency."""

    deposits: int = 0
    bets: int = 0
    wins: int = 0
    refunds: int = 0

    def expected_sum(self) -> int:
        return self.deposits - self.bets + self.wins + self.refunds


def call_key(call: WalletCall, semantics: Semantics = CANONICAL, player_id: str | None = None) -> tuple[object, ...]:
    """The fields PROTOCOL.md idempotency rule 1 compares (game_id, session, reason, round_closed do not).

    Only what the dialect's wire carries: no round without rounds, no currency where amounts are in the
    account's, never a rollback's amount; ``player_id``: the player the wallet knows the call by (the
    session's, where the session names the player)."""
    amount = call.amount.minor if call.amount is not None and call.op is not Op.ROLLBACK else None
    cur = call.amount.currency.code if call.amount is not None and call.op is not Op.ROLLBACK else None
    return (call.op, player_id if player_id is not None else call.player_id,
            call.round_id if semantics.rounds else None, amount, cur if semantics.carries_currency else None,
            call.ref_tx_id)


def _tx_key(tx: MTx, semantics: Semantics) -> tuple[object, ...]:
    return (tx.op, tx.player_id, tx.round_id if semantics.rounds else None, tx.amount,
            tx.currency if semantics.carries_currency else None, tx.ref_tx_id)


@dataclass
class WalletModel:
    """The whole wallet state, and the rules in docs/wallet-rules.md order (under a dialect's semantics)."""

    players: dict[str, MPlayer] = field(default_factory=dict)
    launch_tokens: dict[str, MLaunchToken] = field(default_factory=dict)
    sessions: dict[str, MSession] = field(default_factory=dict)
    txs: dict[TxKey, MTx] = field(default_factory=dict)
    """Accepted transactions by :meth:`key` (the ``tx_id``; (player, ``tx_id``) where it is unique per player)."""
    tombstones: set[TxKey] = field(default_factory=set)
    rounds: dict[tuple[str, str], MRound] = field(default_factory=dict)
    totals: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    semantics: Semantics = CANONICAL
    """What the dialect's calls carry and mean (PROTOCOL.md's by default)."""

    # -- what the wire carries ------------------------------------------------------------
    def key(self, player_id: str | None, tx_id: str) -> TxKey:
        """What ``tx_id`` of ``player_id`` is recorded under."""
        return (player_id or "", tx_id) if self.semantics.tx_scope == "player" else tx_id

    def player_of(self, call: WalletCall) -> str | None:
        """The player the wallet knows ``call`` by: the one it names, or (where the session names the player)
        the owner of its session (None: a session the wallet did not issue)."""
        if self.semantics.names_player or call.op is Op.AUTHENTICATE:
            return call.player_id
        s = self.sessions.get(call.session_token or "")
        return s.player_id if s is not None else None

    def tx_of(self, call: WalletCall) -> MTx | None:
        """The accepted transaction ``call``'s ``tx_id`` names (for the call's player where ids are per player)."""
        return self.txs.get(self.key(self.player_of(call), call.tx_id)) if call.tx_id else None

    def ref_of(self, call: WalletCall) -> MTx | None:
        """The accepted transaction a rollback's ``ref_tx_id`` names."""
        return self.txs.get(self.key(self.player_of(call), call.ref_tx_id)) if call.ref_tx_id else None

    def reused_elsewhere(self, call: WalletCall) -> bool:
        """Where ``tx_id`` is unique per player: another player has a transaction under this call's ``tx_id``."""
        if self.semantics.tx_scope != "player" or not call.tx_id:
            return False
        pid = self.player_of(call)
        return any(isinstance(k, tuple) and k[1] == call.tx_id and k[0] != pid for k in self.txs)

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
        """After an authenticate that made a session: it lives the token's ttl from now."""
        lt = self.launch_tokens[token]
        assert session_token not in self.sessions, "session tokens must be unique"
        lt.session_token = session_token
        self.sessions[session_token] = MSession(lt.player_id, now + lt.ttl_s)

    def record_session_direct(self, session_token: str, player_id: str, ttl_s: int, now: float) -> None:
        """A session the operator made (no ``authenticate``): it lives ``ttl_s`` from now."""
        assert session_token not in self.sessions, "session tokens must be unique"
        self.launch_tokens[session_token] = MLaunchToken(player_id, ttl_s, session_token)
        self.sessions[session_token] = MSession(player_id, now + ttl_s)

    def record_wallet_tx_id(self, tx_id: str, wallet_tx_id: str, player_id: str | None = None) -> None:
        tx = self.txs[self.key(player_id, tx_id)]
        assert tx.wallet_tx_id is None
        tx.wallet_tx_id = wallet_tx_id

    # -- the protocol -------------------------------------------------------------------
    def apply(self, call: WalletCall, now: float) -> Expected:
        """What the reference wallet answers to ``call`` at ``now`` (one correct wallet); the model moves with it.

        The test suite's state machines hold the reference wallet to this; ``croupier check`` holds any
        wallet to :meth:`outcomes`, which allows every choice PROTOCOL.md leaves open."""
        out = self.outcomes(call, now)
        if out.primary[0] == "ok":
            accept = out.accepts[0]
            self.commit(call, accept, now)
        return out.primary

    def outcomes(self, call: WalletCall, now: float) -> Outcomes:
        """Every answer a correct wallet may give ``call`` at ``now``; the model does not move."""
        if call.op is Op.AUTHENTICATE:
            return self._authenticate(call, now)
        if call.op is Op.BALANCE:
            return self._balance(call)
        return self._money(call, now)

    def commit(self, call: WalletCall, accept: Accept, now: float) -> None:
        """Carry out what ``accept`` says ``call`` did (after the wallet answered so)."""
        for effect in accept.effects:
            what = effect[0]
            if what == "balance":
                _, pid, delta, kind = effect
                assert isinstance(pid, str) and isinstance(delta, int) and isinstance(kind, str)
                p = self.players[pid]
                p.balance += delta
                t = self.totals[p.currency]
                setattr(t, kind, getattr(t, kind) + abs(delta))
            elif what == "tx":
                _, tx = effect
                assert isinstance(tx, MTx) and call.tx_id is not None
                self.txs[self.key(tx.player_id, call.tx_id)] = dataclasses.replace(tx)
            elif what == "bet_in_round":
                _, pid, rnd, n = effect
                assert isinstance(pid, str) and isinstance(rnd, str) and isinstance(n, int)
                r = self._round(pid, rnd)
                r.live_bets += n
                r.bets += max(n, 0)
            elif what == "close":
                _, pid, rnd = effect
                assert isinstance(pid, str) and isinstance(rnd, str)
                if self.semantics.rounds:
                    self._round(pid, rnd).closed = True
            elif what == "rolled_back":
                _, ref = effect
                assert isinstance(ref, (str, tuple))
                self.txs[ref].rolled_back = True
            elif what == "tombstone":
                _, ref = effect
                assert isinstance(ref, (str, tuple))
                self.tombstones.add(ref)
            elif what == "session":
                _, token, session_token = effect
                assert isinstance(token, str) and isinstance(session_token, str)
                self.record_session(token, session_token, now)

    def _authenticate(self, call: WalletCall, now: float) -> Outcomes:
        """PROTOCOL.md says only that authenticate turns a launch token into a session; the rest is the wallet's.

        A blocked player may get a session (bets are what PROTOCOL.md refuses him); a launch token
        exchanged before may give the same session, a new one, or be refused."""
        assert call.token is not None
        lt = self.launch_tokens.get(call.token)
        if lt is None:
            return Outcomes(("rejected", ErrorCode.INVALID_TOKEN),
                            frozenset({ErrorCode.INVALID_TOKEN, ErrorCode.SESSION_EXPIRED}))
        player = self.players[lt.player_id]
        fresh = Accept(player.balance, None, (), new_session=True)
        codes: set[ErrorCode] = set()
        choices: list[tuple[ErrorCode, str]] = []
        accepts: list[Accept] = []
        if lt.session_token is not None:
            live = self.sessions[lt.session_token].live(now)
            same = Accept(player.balance, lt.session_token, (), choice="authenticate: the same session again")
            accepts = [same, dataclasses.replace(fresh, choice="authenticate: a new session for a used launch token")]
            if not live:
                accepts = [accepts[1], same]
            codes |= {ErrorCode.INVALID_TOKEN, ErrorCode.SESSION_EXPIRED}
            choices += [(ErrorCode.INVALID_TOKEN, "authenticate: a launch token works once"),
                        (ErrorCode.SESSION_EXPIRED, "authenticate: a launch token works once")]
            primary: Expected = ("ok", player.balance, lt.session_token) if live else \
                ("rejected", ErrorCode.SESSION_EXPIRED)
        else:
            accepts = [fresh]
            primary = ("ok", player.balance, None)
        if player.blocked:
            codes.add(ErrorCode.PLAYER_BLOCKED)
            choices.append((ErrorCode.PLAYER_BLOCKED, "authenticate: a blocked player gets no session"))
            accepts = [dataclasses.replace(a, choice=a.choice or "authenticate: a blocked player gets a session")
                       for a in accepts]
            primary = ("rejected", ErrorCode.PLAYER_BLOCKED)
        if primary[0] == "ok" and primary[2] is None:
            accepts.sort(key=lambda a: not a.new_session)
        return Outcomes(primary, frozenset(codes), tuple(accepts), tuple(choices))

    def _balance(self, call: WalletCall) -> Outcomes:
        assert call.session_token is not None
        if not self.semantics.names_player:
            pid = self.player_of(call)
            if pid is None:
                return Outcomes(("rejected", ErrorCode.INVALID_TOKEN), frozenset({ErrorCode.INVALID_TOKEN}),
                                rule=RULE_IDS[("player", "session")])
            balance = self.players[pid].balance
            return Outcomes(("ok", balance, None), accepts=(Accept(balance),))
        assert call.player_id is not None
        player = self.players.get(call.player_id)
        if player is None:
            return Outcomes(("rejected", ErrorCode.PLAYER_NOT_FOUND),
                            frozenset({ErrorCode.PLAYER_NOT_FOUND, ErrorCode.INVALID_TOKEN}))
        if not self._session_of(call.session_token, player.player_id):
            return Outcomes(("rejected", ErrorCode.INVALID_TOKEN), frozenset({ErrorCode.INVALID_TOKEN}),
                            (Accept(player.balance, choice="balance: session_token ignored"),),
                            ((ErrorCode.INVALID_TOKEN, "balance: only its own player's sessions"),))
        return Outcomes(("ok", player.balance, None), accepts=(Accept(player.balance),))

    def _session_of(self, session_token: str, player_id: str) -> bool:
        s = self.sessions.get(session_token)
        return s is not None and s.player_id == player_id

    def _round(self, player_id: str, round_id: str) -> MRound:
        return self.rounds.setdefault((player_id, round_id), MRound())

    def _closed(self, player_id: str, round_id: str) -> bool:
        """Whether the round is closed (never, where a dialect has no rounds)."""
        r = self.rounds.get((player_id, round_id))
        return self.semantics.rounds and r is not None and r.closed

    def _tx(self, call: WalletCall, pid: str, delta: int) -> tuple[object, ...]:
        assert call.round_id is not None
        amount = call.amount.minor if call.amount is not None and call.op is not Op.ROLLBACK else None
        cur = call.amount.currency.code if call.amount is not None and call.op is not Op.ROLLBACK else None
        return ("tx", MTx(call.op, pid, call.round_id, amount, cur, call.ref_tx_id, delta, call.game_id))

    def _money(self, call: WalletCall, now: float) -> Outcomes:
        tx_id, sess, round_id = call.tx_id, call.session_token, call.round_id
        assert tx_id is not None and sess is not None and round_id is not None
        pid = self.player_of(call)
        if pid is None:
            if not self.semantics.names_player:
                # The session names the player, and the wallet did not issue it: INVALID_TOKEN (a tx_id the
                # wallet holds may be answered DUPLICATE_MISMATCH: the call is not that transaction's replay).
                codes = {ErrorCode.INVALID_TOKEN}
                if self.semantics.tx_scope == "wallet" and tx_id in self.txs:
                    codes.add(ErrorCode.DUPLICATE_MISMATCH)
                return Outcomes(("rejected", ErrorCode.INVALID_TOKEN), frozenset(codes),
                                rule=RULE_IDS[("player", "session")])
            assert call.player_id is not None
            pid = call.player_id
        seen = self.txs.get(self.key(pid, tx_id))
        if seen is not None:
            if _tx_key(seen, self.semantics) == call_key(call, self.semantics, pid):
                # Rule 1: a replay is always answered as one (expired sessions, closed rounds, blocks do not matter).
                balance = self.players[seen.player_id].balance
                return Outcomes(("ok", balance, seen.wallet_tx_id), accepts=(Accept(balance, seen.wallet_tx_id),))
            # Rule 2, or the code of any other rule the call breaks as a call of its own.
            broken = self._new(call, now, pid).codes
            return Outcomes(("rejected", ErrorCode.DUPLICATE_MISMATCH), broken | {ErrorCode.DUPLICATE_MISMATCH})
        out = self._new(call, now, pid)
        if not out.rule and self.reused_elsewhere(call):
            out = dataclasses.replace(out, rule=RULE_IDS[("tx_scope", "player")])
        return out

    def _new(self, call: WalletCall, now: float, pid: str) -> Outcomes:
        """A bet, win or rollback whose tx_id the wallet has not accepted (``pid``: the player it is known by)."""
        sess = call.session_token
        assert sess is not None
        player = self.players.get(pid)
        if player is None:
            return Outcomes(("rejected", ErrorCode.PLAYER_NOT_FOUND),
                            frozenset({ErrorCode.PLAYER_NOT_FOUND, ErrorCode.INVALID_TOKEN}))
        session = self.sessions.get(sess)
        own = session is not None and session.player_id == pid
        if call.op is Op.BET:
            return self._bet(call, player, session, own, now)
        # win, rollback: the session may be ignored, or only this player's (expired ones included) accepted
        out = self._win(call, player) if call.op is Op.WIN else self._rollback(call, player)
        if own and session is not None and not session.live(now) and self.semantics.wins_need_live_session:
            rule = RULE_IDS[("wins_need_live_session", True)]
            out = dataclasses.replace(
                out, codes=out.codes | {ErrorCode.SESSION_EXPIRED},
                accepts=tuple(dataclasses.replace(a, choice=a.choice or f"{rule}: {call.op} accepted on an ended "
                                                  "session") for a in out.accepts),
                choices=(*out.choices, (ErrorCode.SESSION_EXPIRED, f"{rule}: {call.op} refused on an ended session")))
        if own:
            return out
        choice = f"{call.op}: session_token ignored"
        return Outcomes(("rejected", ErrorCode.INVALID_TOKEN), out.codes | {ErrorCode.INVALID_TOKEN},
                        tuple(dataclasses.replace(a, choice=a.choice or choice) for a in out.accepts),
                        (*out.choices, (ErrorCode.INVALID_TOKEN, f"{call.op}: only its own player's sessions")),
                        out.rule)

    def _bet(self, call: WalletCall, player: MPlayer, session: MSession | None, own: bool, now: float) -> Outcomes:
        assert call.tx_id is not None and call.round_id is not None and call.amount is not None
        if call.amount.minor == 0 and not self.semantics.zero_bet:
            # A bet is above zero: refused, with any code, and nothing changes.
            return Outcomes(("rejected", ErrorCode.BAD_REQUEST), ANY_CODE, rule=RULE_IDS[("zero_bet", False)])
        broken: list[ErrorCode] = []  # in the reference wallet's order (docs/wallet-rules.md)
        if not own:
            broken.append(ErrorCode.INVALID_TOKEN)
        if session is not None and not session.live(now):
            broken.append(ErrorCode.SESSION_EXPIRED)
        if self.semantics.carries_currency and call.amount.currency.code != player.currency:
            broken.append(ErrorCode.CURRENCY_MISMATCH)
        if player.blocked:
            broken.append(ErrorCode.PLAYER_BLOCKED)
        if self.key(player.player_id, call.tx_id) in self.tombstones:
            broken.append(ErrorCode.TX_ROLLED_BACK)
        if self._closed(player.player_id, call.round_id):
            broken.append(ErrorCode.ROUND_CLOSED)
        amount = call.amount.minor
        if amount > player.balance:
            broken.append(ErrorCode.INSUFFICIENT_FUNDS)
        if broken:
            return Outcomes(("rejected", broken[0]), frozenset(broken))
        pid = player.player_id
        effects = (("balance", pid, -amount, "bets"), ("bet_in_round", pid, call.round_id, 1), self._tx(call, pid, -amount))
        balance = player.balance - amount
        return Outcomes(("ok", balance, None), accepts=(Accept(balance, None, effects),))

    def _win(self, call: WalletCall, player: MPlayer) -> Outcomes:
        assert call.round_id is not None and call.amount is not None
        pid = player.player_id
        sem = self.semantics
        broken: list[ErrorCode] = []
        if sem.carries_currency and call.amount.currency.code != player.currency:
            broken.append(ErrorCode.CURRENCY_MISMATCH)
        if self._closed(pid, call.round_id):
            broken.append(ErrorCode.ROUND_CLOSED)
        rnd = self.rounds.get((pid, call.round_id))
        optional: list[tuple[ErrorCode, str, str]] = []
        rule = ""
        if call.reason is WinReason.REGULAR and sem.win_bet == "named":
            # The win names the bet it pays: that bet, accepted from this player.
            rule = RULE_IDS[("win_bet", "named")]
            bet = self.txs.get(self.key(pid, call.bet_tx_id)) if call.bet_tx_id else None
            if bet is None or bet.op is not Op.BET or bet.player_id != pid:
                broken.append(ErrorCode.ROUND_NOT_FOUND)
            elif bet.rolled_back:
                optional.append((ErrorCode.ROUND_NOT_FOUND, f"{rule}: a win naming a rolled-back bet is refused",
                                 f"{rule}: a win naming a rolled-back bet is paid"))
        elif call.reason is WinReason.REGULAR and sem.win_bet == "none":
            if rnd is None or rnd.live_bets == 0:
                rule = RULE_IDS[("win_bet", "none")]  # PROTOCOL.md would want a bet here; this dialect does not
        elif call.reason is WinReason.REGULAR and (rnd is None or rnd.live_bets == 0):
            if rnd is not None and rnd.bets > 0:
                optional.append((ErrorCode.ROUND_NOT_FOUND,
                                 "win: a regular win after its round's bets were rolled back is refused",
                                 "win: a regular win after its round's bets were rolled back is paid"))
            else:
                broken.append(ErrorCode.ROUND_NOT_FOUND)
        amount = call.amount.minor
        if player.balance + amount > INT64_MAX:
            # PROTOCOL.md sets no largest balance: a wallet may hold it exactly, or refuse what it cannot hold.
            optional.append((ErrorCode.LIMIT_EXCEEDED, "win: refuses a balance past 2^63-1",
                             "win: holds a balance past 2^63-1"))
        if broken:
            return Outcomes(("rejected", broken[0]), frozenset(broken) | {c for c, _, _ in optional}, rule=rule)
        effects: tuple[tuple[object, ...], ...] = (("balance", pid, amount, "wins"), self._tx(call, pid, amount))
        if call.round_closed and sem.rounds:
            effects += (("close", pid, call.round_id),)
        balance = player.balance + amount
        accept = Accept(balance, None, effects, choice="; ".join(y for _, _, y in optional))
        if optional:
            primary: Expected = ("rejected", optional[0][0])
            return Outcomes(primary, frozenset(c for c, _, _ in optional), (accept,),
                            tuple((c, n) for c, n, _ in optional), rule)
        return Outcomes(("ok", balance, None), accepts=(accept,), rule=rule)

    def _rollback(self, call: WalletCall, player: MPlayer) -> Outcomes:
        """Rules 4-6, the closed round, and the choices of "Where a wallet may choose" about rollbacks (as the
        dialect finds a rollback's bet: by ``ref_tx_id`` and player, by the id alone, or within the round named)."""
        ref, round_id = call.ref_tx_id, call.round_id
        assert ref is not None and round_id is not None
        sem = self.semantics
        pid = player.player_id
        ref_key = self.key(pid, ref)
        target = self.txs.get(ref_key)
        nothing = Accept(player.balance, None, (self._tx(call, pid, 0),))
        call_closed = self._closed(pid, round_id)
        if target is not None and target.player_id != pid:
            # Another player's transaction: not this player's bet. Never a refund; refused, or a bet this
            # player's rollback has never seen (200, a tombstone).
            others = {ErrorCode.ROLLBACK_NOT_ALLOWED} | ({ErrorCode.ROUND_CLOSED} if call_closed else set())
            unseen = dataclasses.replace(nothing, effects=(*nothing.effects, ("tombstone", ref_key)),
                                         choice="rollback: another player's transaction taken as a bet never seen")
            return Outcomes(("rejected", ErrorCode.ROLLBACK_NOT_ALLOWED), frozenset(others),
                            () if call_closed else (unseen,),
                            ((ErrorCode.ROLLBACK_NOT_ALLOWED, "rollback: another player's transaction refused"),))
        if target is not None and target.op is not Op.BET:
            not_a_bet = {ErrorCode.ROLLBACK_NOT_ALLOWED}
            if call_closed or self._closed(pid, target.round_id):
                not_a_bet.add(ErrorCode.ROUND_CLOSED)
            return Outcomes(("rejected", ErrorCode.ROLLBACK_NOT_ALLOWED), frozenset(not_a_bet))
        if target is not None and sem.rollback_by == "round" and target.round_id != round_id:
            # Found only within the round it names: naming another, it does not find the bet. Never a refund.
            rule = RULE_IDS[("rollback_by", "round")]
            unseen = dataclasses.replace(nothing, choice=f"{rule}: answered as a rollback of a bet never seen")
            refusals = {ErrorCode.ROLLBACK_NOT_ALLOWED} | ({ErrorCode.ROUND_CLOSED} if call_closed else set())
            return Outcomes(("ok", player.balance, None), frozenset(refusals), (unseen,),
                            ((ErrorCode.ROLLBACK_NOT_ALLOWED, f"{rule}: refused, naming another round"),
                             (ErrorCode.ROUND_CLOSED, f"{rule}: refused, naming a closed round")), rule)
        if target is None:
            if ref_key in self.tombstones:
                accept = nothing
            else:
                accept = dataclasses.replace(nothing, effects=(*nothing.effects, ("tombstone", ref_key)))
            if call_closed:  # rule 5 and the closed round both speak: either answer changes nothing now
                primary_t: Expected = ("ok", player.balance, None) if ref_key in self.tombstones else \
                    ("rejected", ErrorCode.ROUND_CLOSED)
                return Outcomes(primary_t, frozenset({ErrorCode.ROUND_CLOSED}),
                                (dataclasses.replace(accept, choice="rollback: rule 5 before the closed round"),),
                                ((ErrorCode.ROUND_CLOSED, "rollback: the closed round before rule 5"),))
            return Outcomes(("ok", player.balance, None), accepts=(accept,))
        # this player's bet
        other_round = sem.rounds and target.round_id != round_id
        other_game = call.game_id is not None and target.game_id is not None and call.game_id != target.game_id
        elsewhere = other_round or other_game
        bet_closed = self._closed(pid, target.round_id)
        rule = ""
        if sem.rollback_by == "tx":
            # Found by the transaction id alone: the round and game it names do not matter.
            if elsewhere:
                rule = RULE_IDS[("rollback_by", "tx")]
            elsewhere = other_round = False
            call_closed = bet_closed
        codes: set[ErrorCode] = set()
        choices: list[tuple[ErrorCode, str]] = []
        if elsewhere:
            codes.add(ErrorCode.ROLLBACK_NOT_ALLOWED)
            choices.append((ErrorCode.ROLLBACK_NOT_ALLOWED, "rollback: must name its bet's round and game"))
        if call_closed or bet_closed:
            codes.add(ErrorCode.ROUND_CLOSED)
        if target.rolled_back:
            # Rule 4: a second rollback changes nothing (or a code of another rule it breaks).
            accepts = (nothing,)  # rule 4 speaks for it even in a closed round; ROUND_CLOSED changes nothing too
            primary: Expected = ("rejected", ErrorCode.ROLLBACK_NOT_ALLOWED) if other_round else \
                ("ok", player.balance, None)
            if call_closed or bet_closed:
                choices.append((ErrorCode.ROUND_CLOSED, "rollback: the closed round before rule 4"))
            return Outcomes(primary, frozenset(codes), accepts, tuple(choices), rule)
        assert target.amount is not None
        refund = target.amount
        effects = (("balance", pid, refund, "refunds"), ("rolled_back", ref_key),
                   ("bet_in_round", pid, target.round_id, -1), self._tx(call, pid, refund))
        accepts_l: list[Accept] = []
        if not (call_closed and bet_closed) and not (not other_round and call_closed):
            note = "rollback: the bet found by ref_tx_id and player, another round or game named" if elsewhere else ""
            accepts_l.append(Accept(player.balance + refund, None, effects, choice=note))
        if player.balance + refund > INT64_MAX:
            codes.add(ErrorCode.LIMIT_EXCEEDED)
            choices.append((ErrorCode.LIMIT_EXCEEDED, "rollback: refuses a balance past 2^63-1"))
        if other_round:
            primary = ("rejected", ErrorCode.ROLLBACK_NOT_ALLOWED)
        elif call_closed:
            primary = ("rejected", ErrorCode.ROUND_CLOSED)
        elif player.balance + refund > INT64_MAX:
            primary = ("rejected", ErrorCode.LIMIT_EXCEEDED)
        elif accepts_l:
            primary = ("ok", accepts_l[0].balance, None)
        else:
            primary = ("rejected", ErrorCode.ROUND_CLOSED)
        return Outcomes(primary, frozenset(codes), tuple(accepts_l), tuple(choices), rule)
