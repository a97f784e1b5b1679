"""The reference wallet's stores against an independent model, driven by a Hypothesis state machine.

Why a state machine: the wallet's rules interact (a tombstone meets a replay, a
closed round meets a rollback, an expired session meets a win), and the bugs
that cost real integrations money live in those interactions, not in any single
call.  Every outcome is compared with :mod:`tests.model`; every step ends with
the books checked: each balance equals the model's, none is negative, and per
currency the balances add up to deposits − bets + wins + refunds.

The machine is written against a small :class:`Driver` so that the same rules
run in-process here (``store.execute``) and over HTTP in ``test_wallet_http.py``.
"""

from __future__ import annotations

import abc
import asyncio
import tempfile
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from simulator.protocol.calls import MONEY_OPS, Ok, Op, Outcome, Rejected, WalletCall, WinReason
from simulator.protocol.codes import http_status
from simulator.protocol.dialects.canonical import MAX_ID_LENGTH
from simulator.protocol.money import INT64_MAX, Money
from simulator.wallet.store import Store
from tests.model import WalletModel
from tests.support import FakeClock, make_store, skip_without_pg

T = TypeVar("T")

CURRENCY_CODES = ("EUR", "JPY", "KWD", "BTC", "USDT")
"""2, 0, 3, 8 and 6 decimals: the exponent must never matter to the books."""
MAX_PLAYERS = 5
ROUNDS = ("r0", "r1", "r2", "rü")
"""Few round ids, shared by all players, so rounds get closed, reused and are seen to be per player."""
GAMES = ("g1", "g2")
NORMAL_TTL = 3600
SHORT_TTL = 30

index = st.integers(min_value=0, max_value=1 << 16)
"""Picks an element of a list that exists only at run time (shrinks to the first one)."""
small_amounts = st.integers(min_value=0, max_value=2_000)
stakes = st.one_of(st.just(0), st.integers(min_value=1, max_value=300))
"""Bets small next to the balances, so most are accepted and there is something to roll back and replay."""


@dataclass(frozen=True)
class Sent:
    """What came back for one call; ``status`` is the HTTP status (None in-process)."""

    outcome: Outcome
    status: int | None = None


@dataclass(frozen=True)
class PlayerView:
    currency: str
    balance: int
    blocked: bool


class Driver(abc.ABC):
    """How the machine reaches a wallet: in-process store calls or HTTP."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    @abc.abstractmethod
    def create_player(self, player_id: str, currency: str, balance: int) -> None: ...

    @abc.abstractmethod
    def deposit(self, player_id: str, amount: int) -> int:
        """Returns the balance after the deposit."""

    @abc.abstractmethod
    def set_blocked(self, player_id: str, blocked: bool) -> None: ...

    @abc.abstractmethod
    def issue_token(self, player_id: str, ttl_s: int) -> str: ...

    @abc.abstractmethod
    def send(self, call: WalletCall) -> Sent: ...

    @abc.abstractmethod
    def players(self, player_ids: list[str]) -> dict[str, PlayerView | None]:
        """Several players at once (one round trip where the transport allows)."""

    @abc.abstractmethod
    def transactions(self, player_id: str) -> list[dict[str, Any]]:
        """The player's transaction log rows, as the admin API renders them."""

    @abc.abstractmethod
    def close(self) -> None: ...


class StoreDriver(Driver):
    """Calls a store directly on an event loop owned by this driver (one per machine instance)."""

    def __init__(self, kind: str, clock: FakeClock) -> None:
        super().__init__(clock)
        self.tmp = tempfile.TemporaryDirectory(prefix="croupier-machine-")
        self.loop = asyncio.new_event_loop()
        self.store: Store = make_store(kind, Path(self.tmp.name))
        self.run(self.store.open())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def create_player(self, player_id: str, currency: str, balance: int) -> None:
        row = self.run(self.store.create_player(player_id, currency, balance, self.clock.now))
        assert not isinstance(row, Rejected), row

    def deposit(self, player_id: str, amount: int) -> int:
        row = self.run(self.store.deposit(player_id, amount, self.clock.now))
        assert not isinstance(row, Rejected), row
        return row.balance

    def set_blocked(self, player_id: str, blocked: bool) -> None:
        row = self.run(self.store.set_blocked(player_id, blocked))
        assert not isinstance(row, Rejected), row

    def issue_token(self, player_id: str, ttl_s: int) -> str:
        token = self.run(self.store.issue_token(player_id, ttl_s, self.clock.now))
        assert isinstance(token, str), token
        return token

    def send(self, call: WalletCall) -> Sent:
        return Sent(self.run(self.store.execute(call, self.clock.now)))

    def players(self, player_ids: list[str]) -> dict[str, PlayerView | None]:
        out: dict[str, PlayerView | None] = {}
        for pid in player_ids:
            row = self.run(self.store.get_player(pid))
            out[pid] = None if row is None else PlayerView(row.currency, row.balance, row.blocked)
        return out

    def transactions(self, player_id: str) -> list[dict[str, Any]]:
        async def collect() -> list[dict[str, Any]]:
            return [row.to_json() async for row in self.store.transactions(player_id)]

        return self.run(collect())

    def close(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()
            self.tmp.cleanup()


class WalletMachine(RuleBasedStateMachine):
    """Rules over players, sessions, bets, wins and rollbacks; every answer judged by the model."""

    def make_driver(self, clock: FakeClock) -> Driver:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.model = WalletModel()
        self.driver = self.make_driver(self.clock)
        self.player_ids: list[str] = []
        self.sessions: list[tuple[str, str]] = []
        """(player_id, session_token) of every session the wallet handed out."""
        self.launch_tokens: list[str] = []
        self.sent: list[WalletCall] = []
        """Every bet, win and rollback sent, accepted or not: material for replays and rollbacks."""
        self.wallet_tx_ids: set[str] = set()
        self.counter = 0

    def teardown(self) -> None:
        self.driver.close()

    # -- helpers ------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def check(self, call: WalletCall) -> Outcome:
        """Send ``call``, and compare what the wallet did with what the model says it must do."""
        now = self.clock.now
        known = self.model.players.get(call.player_id or "")
        before = known.balance if known else None
        expected = self.model.apply(call, now)
        sent = self.driver.send(call)
        outcome = sent.outcome
        where = f"{call} at t={now}"
        if call.op in MONEY_OPS:
            self.sent.append(call)
        if expected[0] == "rejected":
            code = expected[1]
            event(f"{call.op}: {code}")
            assert isinstance(outcome, Rejected) and outcome.code == code, f"{where}: expected {code}, got {outcome}"
            if sent.status is not None:
                assert sent.status == http_status(code), f"{where}: {code} came with HTTP {sent.status}"
            return outcome
        _, balance, original = expected
        assert isinstance(outcome, Ok), f"{where}: expected ok (balance {balance}), got {outcome}"
        assert call.player_id is not None
        player = self.model.players[call.player_id]
        assert outcome.balance == Money.of(balance, player.currency), f"{where}: expected {balance}, got {outcome}"
        if sent.status is not None:
            assert sent.status == 200, f"{where}: ok with HTTP {sent.status}"
        if call.op not in MONEY_OPS:
            event(f"{call.op}: ok")
            return outcome
        assert call.tx_id is not None
        wtx = outcome.wallet_tx_id
        assert isinstance(wtx, str) and wtx, f"{where}: no wallet_tx_id in {outcome}"
        if sent.status is None:  # in-process the store says whether it saw a replay
            assert outcome.replay == (original is not None), f"{where}: replay flag {outcome.replay}"
        if original is not None:
            event(f"{call.op}: replay")
            assert wtx == original, f"{where}: replay answered {wtx}, the original was {original}"
        else:
            event(f"{call.op}: ok" + (" (no change)" if balance == before else ""))
            assert wtx not in self.wallet_tx_ids, f"{where}: wallet_tx_id {wtx} handed out twice"
            self.wallet_tx_ids.add(wtx)
            self.model.record_wallet_tx_id(call.tx_id, wtx)
        return outcome

    def authenticate(self, token: str) -> str | None:
        """Exchange a launch token; returns the session token when the wallet must give one."""
        now = self.clock.now
        call = WalletCall.authenticate(token, GAMES[0])
        expected = self.model.apply(call, now)
        sent = self.driver.send(call)
        outcome = sent.outcome
        where = f"{call} at t={now}"
        if expected[0] == "rejected":
            event(f"authenticate: {expected[1]}")
            assert isinstance(outcome, Rejected) and outcome.code == expected[1], f"{where}: expected {expected[1]}, got {outcome}"
            if sent.status is not None:
                assert sent.status == http_status(expected[1])
            return None
        _, balance, existing = expected
        assert isinstance(outcome, Ok), f"{where}: expected ok, got {outcome}"
        lt = self.model.launch_tokens[token]
        player = self.model.players[lt.player_id]
        assert outcome.player_id == lt.player_id, f"{where}: {outcome}"
        assert outcome.balance == Money.of(balance, player.currency), f"{where}: expected {balance}, got {outcome}"
        assert outcome.session_token, f"{where}: no session token"
        if existing is not None:
            event("authenticate: retry")
            assert outcome.session_token == existing, f"{where}: a retry must give the same session"
        else:
            event("authenticate: ok")
            self.model.record_session(token, outcome.session_token, now)
            self.sessions.append((lt.player_id, outcome.session_token))
        return outcome.session_token

    def login(self, player_id: str, ttl_s: int) -> str | None:
        token = self.driver.issue_token(player_id, ttl_s)
        self.model.issue_token(token, player_id, ttl_s)
        self.launch_tokens.append(token)
        return self.authenticate(token)

    def session(self, i: int) -> tuple[str, str]:
        return self.sessions[i % len(self.sessions)]

    def add_player(self, currency: str, balance: int) -> str:
        pid = self.fresh("pläyer")
        self.driver.create_player(pid, currency, balance)
        self.model.create_player(pid, currency, balance)
        self.player_ids.append(pid)
        return pid

    def money(self, player_id: str, amount: int) -> Money:
        return Money.of(amount, self.model.players[player_id].currency)

    def sent_of(self, op: Op) -> list[WalletCall]:
        return [c for c in self.sent if c.op is op]

    # -- admin --------------------------------------------------------------------------
    @initialize(currency=st.sampled_from(CURRENCY_CODES), balance=small_amounts)
    def first_player(self, currency: str, balance: int) -> None:
        self.login(self.add_player(currency, balance), NORMAL_TTL)

    @precondition(lambda self: len(self.player_ids) < MAX_PLAYERS)
    @rule(currency=st.sampled_from(CURRENCY_CODES), balance=st.one_of(st.just(0), small_amounts))
    def create_player(self, currency: str, balance: int) -> None:
        self.login(self.add_player(currency, balance), NORMAL_TTL)

    @rule(i=index, amount=st.integers(min_value=1, max_value=5_000))
    def deposit(self, i: int, amount: int) -> None:
        pid = self.player_ids[i % len(self.player_ids)]
        if self.model.players[pid].balance + amount > INT64_MAX:
            return  # the admin API's overflow answer is not specified; stay clear of it
        got = self.driver.deposit(pid, amount)
        assert got == self.model.deposit(pid, amount)

    @rule(i=index, blocked=st.booleans())
    def block(self, i: int, blocked: bool) -> None:
        pid = self.player_ids[i % len(self.player_ids)]
        self.driver.set_blocked(pid, blocked)
        self.model.set_blocked(pid, blocked)

    @rule(i=index, ttl=st.sampled_from([NORMAL_TTL, SHORT_TTL, 0]))
    def issue_token_and_authenticate(self, i: int, ttl: int) -> None:
        self.login(self.player_ids[i % len(self.player_ids)], ttl)

    @rule(i=index, ttl=st.sampled_from([NORMAL_TTL, SHORT_TTL]))
    def issue_token_only(self, i: int, ttl: int) -> None:
        """A launch token exchanged later: its session lives ttl_s from the exchange, not from the issue."""
        pid = self.player_ids[i % len(self.player_ids)]
        token = self.driver.issue_token(pid, ttl)
        self.model.issue_token(token, pid, ttl)
        self.launch_tokens.append(token)

    @rule(i=index)
    def authenticate_again(self, i: int) -> None:
        """A retried authenticate: the same session while it lives, SESSION_EXPIRED after."""
        self.authenticate(self.launch_tokens[i % len(self.launch_tokens)])

    @rule()
    def authenticate_bogus(self) -> None:
        self.authenticate(self.fresh("no-such-launch-token"))

    @rule(seconds=st.sampled_from([1, 10, SHORT_TTL - 1, SHORT_TTL, SHORT_TTL + 1, 299, NORMAL_TTL // 2]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)

    # -- the protocol -------------------------------------------------------------------
    @precondition(lambda self: self.sessions)
    @rule(i=index)
    def balance(self, i: int) -> None:
        pid, tok = self.session(i)
        self.check(WalletCall.balance(pid, tok))

    @precondition(lambda self: self.sessions)
    @rule(i=index, round_id=st.sampled_from(ROUNDS), game=st.sampled_from(GAMES), amount=stakes)
    def bet(self, i: int, round_id: str, game: str, amount: int) -> None:
        pid, tok = self.session(i)
        self.check(WalletCall.bet(self.fresh("bét"), pid, tok, game, round_id, self.money(pid, amount)))

    @precondition(lambda self: self.sessions)
    @rule(i=index, round_id=st.sampled_from(ROUNDS), extra=st.integers(min_value=1, max_value=1_000))
    def bet_over_balance(self, i: int, round_id: str, extra: int) -> None:
        pid, tok = self.session(i)
        amount = min(self.model.players[pid].balance + extra, INT64_MAX)
        self.check(WalletCall.bet(self.fresh("bét"), pid, tok, GAMES[0], round_id, self.money(pid, amount)))

    @precondition(lambda self: self.sessions)
    @rule(
        i=index, round_id=st.sampled_from(ROUNDS), game=st.sampled_from(GAMES), amount=small_amounts,
        reason=st.sampled_from(list(WinReason)), closed=st.booleans(),
    )
    def win(self, i: int, round_id: str, game: str, amount: int, reason: WinReason, closed: bool) -> None:
        pid, tok = self.session(i)
        self.check(
            WalletCall.win(self.fresh("win"), pid, tok, game, round_id, self.money(pid, amount), reason, closed)
        )

    @precondition(lambda self: self.sessions and all(p.balance < 1 << 62 for p in self.model.players.values()))
    @rule(i=index, below=st.sampled_from([0, 1]), closed=st.booleans())
    def huge_win(self, i: int, below: int, closed: bool) -> None:
        """A jackpot that lands exactly on 2^63−1, or one unit over it (LIMIT_EXCEEDED)."""
        pid, tok = self.session(i)
        amount = INT64_MAX - self.model.players[pid].balance + 1 - below
        amount = min(amount, INT64_MAX)
        call = WalletCall.win(
            self.fresh("win"), pid, tok, GAMES[0], self.fresh("jackpot"), self.money(pid, amount),
            WinReason.JACKPOT, closed,
        )
        self.check(call)

    @precondition(lambda self: any(c.op is Op.BET for c in self.sent))
    @rule(j=index, i=index, owner=st.booleans(), same_round=st.booleans())
    def rollback_bet(self, j: int, i: int, owner: bool, same_round: bool) -> None:
        """Rollback of an earlier bet (accepted or not), by its player or another, in its round or not."""
        bets = self.sent_of(Op.BET)
        bet = bets[j % len(bets)]
        own = [s for s in self.sessions if s[0] == bet.player_id]
        pid, tok = own[i % len(own)] if owner and own else self.session(i)
        assert bet.tx_id is not None and bet.round_id is not None
        round_id = bet.round_id if same_round else "another-round"
        self.check(WalletCall.rollback(self.fresh("rb"), bet.tx_id, pid, tok, GAMES[1], round_id))

    @precondition(lambda self: any(c.op is not Op.BET for c in self.sent))
    @rule(j=index, op=st.sampled_from([Op.WIN, Op.ROLLBACK]))
    def rollback_win(self, j: int, op: Op) -> None:
        """``rollback`` cancels only bets: a win or a rollback is ROLLBACK_NOT_ALLOWED (if it was accepted)."""
        wins = self.sent_of(op) or self.sent_of(Op.WIN) or self.sent_of(Op.ROLLBACK)
        win = wins[j % len(wins)]
        own = [s for s in self.sessions if s[0] == win.player_id]
        if not own:
            return
        assert win.tx_id is not None and win.round_id is not None
        self.check(WalletCall.rollback(self.fresh("rb"), win.tx_id, win.player_id, own[0][1], GAMES[0], win.round_id))

    @precondition(lambda self: self.sessions)
    @rule(i=index, round_id=st.sampled_from(ROUNDS), amount=stakes, late=st.sampled_from([Op.BET, Op.BET, Op.WIN]))
    def rollback_unseen_then_bet(self, i: int, round_id: str, amount: int, late: Op) -> None:
        """Rollback overtakes its bet: a tombstone, then the late bet is TX_ROLLED_BACK.

        (A win carrying the tombstoned tx_id is judged as a win: only bets are tombstoned.)
        """
        pid, tok = self.session(i)
        ghost = self.fresh("ghost-bet")
        self.check(WalletCall.rollback(self.fresh("rb"), ghost, pid, tok, GAMES[0], round_id))
        m = self.money(pid, amount)
        if late is Op.BET:
            self.check(WalletCall.bet(ghost, pid, tok, GAMES[0], round_id, m))
        else:
            self.check(WalletCall.win(ghost, pid, tok, GAMES[0], round_id, m, WinReason.CASHBACK))

    def earlier(self, j: int, op: Op, accepted: bool) -> WalletCall:
        """An earlier money call, of ``op`` and accepted by the wallet if there is such a call."""
        for pool in (
            [c for c in self.sent if c.op is op and (not accepted or c.tx_id in self.model.txs)],
            [c for c in self.sent if c.op is op],
            self.sent,
        ):
            if pool:
                return pool[j % len(pool)]
        raise AssertionError("precondition: something was sent")

    @precondition(lambda self: self.sent)
    @rule(j=index, op=st.sampled_from([Op.BET, Op.WIN, Op.ROLLBACK]), accepted=st.booleans())
    def replay(self, j: int, op: Op, accepted: bool) -> None:
        """The same call again: the original wallet_tx_id if it was accepted, judged anew if not."""
        self.check(self.earlier(j, op, accepted))

    @precondition(lambda self: self.sent)
    @rule(
        j=index, op=st.sampled_from([Op.BET, Op.WIN, Op.ROLLBACK]), accepted=st.booleans(),
        what=st.sampled_from(["amount", "currency", "round_id", "player_id", "ref_tx_id", "op"]),
        delta=st.integers(min_value=1, max_value=100), k=index,
    )
    def replay_mismatch(self, j: int, op: Op, accepted: bool, what: str, delta: int, k: int) -> None:
        """The same tx_id with a field that takes part changed: DUPLICATE_MISMATCH if it was accepted."""
        call = self.earlier(j, op, accepted)
        assert call.player_id and call.session_token and call.tx_id and call.round_id and call.game_id
        fields = _fields(call)
        if what == "round_id":
            fields["round_id"] = call.round_id + "x"
        elif what == "player_id":
            others = [p for p in self.player_ids if p != call.player_id] or [self.fresh("nobody")]
            fields["player_id"] = others[k % len(others)]
        elif what == "op" or (call.op is Op.ROLLBACK and what in ("amount", "currency")):
            if call.op is Op.ROLLBACK:  # the same tx_id as a bet of the player's currency
                cur = self.model.players[call.player_id].currency if call.player_id in self.model.players else "EUR"
                fields.update(op=Op.BET, ref_tx_id=None, amount=Money.of(delta, cur))
            elif call.op is Op.BET:
                fields.update(op=Op.WIN, reason=WinReason.PROMO, round_closed=False)
            else:
                fields.update(op=Op.BET, reason=None, round_closed=None)
        elif what == "ref_tx_id":
            if call.op is Op.ROLLBACK:
                fields["ref_tx_id"] = (call.ref_tx_id or "") + "x"
            else:  # a bet or win as a rollback with the same tx_id
                fields.update(op=Op.ROLLBACK, amount=None, reason=None, round_closed=None, ref_tx_id=self.fresh("ref"))
        else:
            assert call.amount is not None
            if what == "amount":
                # Changed, and still a 64-bit amount: past 2^63-1 the wire refuses it as BAD_REQUEST
                # before any record is read, and that is not what this rule is about.
                minor = call.amount.minor
                amount = minor + delta if minor + delta <= INT64_MAX else minor - delta
                fields["amount"] = Money(amount, call.amount.currency)
            else:
                others = [c for c in CURRENCY_CODES if c != call.amount.currency.code]
                fields["amount"] = Money.of(call.amount.minor, others[k % len(others)])
        changed = WalletCall(**fields)
        if _fits(changed):
            self.check(changed)

    @precondition(lambda self: self.sent and self.sessions)
    @rule(
        j=index, op=st.sampled_from([Op.BET, Op.WIN, Op.ROLLBACK]), i=index,
        session=st.sampled_from(["another-live", "forged", "same"]), game=st.sampled_from(["same", "other"]),
        reason=st.sampled_from(list(WinReason)), closed=st.booleans(),
    )
    def replay_incidental_changes(
        self, j: int, op: Op, i: int, session: str, game: str, reason: WinReason, closed: bool
    ) -> None:
        """game_id, session_token, reason and round_closed do not take part: still a replay when accepted.

        (Not accepted before, the call is judged anew with its new session, reason and round_closed.)
        """
        call = self.earlier(j, op, True)
        fields = _fields(call)
        if session == "another-live":
            fields["session_token"] = self.session(i)[1]
        elif session == "forged":
            fields["session_token"] = self.fresh("forged-session")
        if game == "other":
            fields["game_id"] = f"{call.game_id}-elsewhere"
        if call.op is Op.WIN:
            fields.update(reason=reason, round_closed=closed)
        self.check(WalletCall(**fields))

    @precondition(lambda self: self.sent)
    @rule(
        j=index, op=st.sampled_from([Op.BET, Op.WIN, Op.ROLLBACK]),
        variant=st.sampled_from(["upper", "trailing-space", "leading-space", "nfd", "long"]),
    )
    def lookalike_tx_id(self, j: int, op: Op, variant: str) -> None:
        """A tx_id that only looks like an accepted one is another tx_id: ids are compared exactly."""
        import unicodedata

        call = self.earlier(j, op, True)
        assert call.tx_id is not None
        tx_id = {
            "upper": call.tx_id.upper(),
            "trailing-space": call.tx_id + " ",
            "leading-space": " " + call.tx_id,
            "nfd": unicodedata.normalize("NFD", call.tx_id),
            "long": (call.tx_id + "-" + "x" * MAX_ID_LENGTH)[:MAX_ID_LENGTH],
        }[variant]
        changed = WalletCall(**{**_fields(call), "tx_id": tx_id})
        if tx_id == call.tx_id or tx_id in self.model.txs or not _fits(changed):
            return
        self.check(changed)

    @precondition(lambda self: self.sessions)
    @rule(i=index, op=st.sampled_from([Op.BET, Op.WIN]), k=index, amount=small_amounts)
    def wrong_currency(self, i: int, op: Op, k: int, amount: int) -> None:
        pid, tok = self.session(i)
        others = [c for c in CURRENCY_CODES if c != self.model.players[pid].currency]
        money = Money.of(amount, others[k % len(others)])
        if op is Op.BET:
            call = WalletCall.bet(self.fresh("bét"), pid, tok, GAMES[0], ROUNDS[0], money)
        else:
            call = WalletCall.win(self.fresh("win"), pid, tok, GAMES[0], ROUNDS[0], money, WinReason.PROMO)
        self.check(call)

    @precondition(lambda self: self.sessions)
    @rule(i=index, amount=small_amounts)
    def play_on_closed_round(self, i: int, amount: int) -> None:
        """Close a round with a stand-alone win, then bet, win and roll back on it: ROUND_CLOSED (replays pass)."""
        pid, tok = self.session(i)
        round_id = self.fresh("closed-round")
        closing = WalletCall.win(
            self.fresh("win"), pid, tok, GAMES[0], round_id, self.money(pid, 0), WinReason.FREE_SPIN, True
        )
        self.check(closing)
        self.check(WalletCall.bet(self.fresh("bét"), pid, tok, GAMES[0], round_id, self.money(pid, amount)))
        self.check(WalletCall.win(self.fresh("win"), pid, tok, GAMES[0], round_id, self.money(pid, amount),
                                  WinReason.BONUS, False))
        self.check(WalletCall.rollback(self.fresh("rb"), self.fresh("ghost-bet"), pid, tok, GAMES[0], round_id))
        self.check(closing)

    @rule(i=index, amount=small_amounts, round_id=st.sampled_from(ROUNDS))
    def expired_session(self, i: int, amount: int, round_id: str) -> None:
        """A session outlives its ttl: bets are SESSION_EXPIRED, wins and rollbacks still accepted."""
        pid = self.player_ids[i % len(self.player_ids)]
        tok = self.login(pid, SHORT_TTL)
        if tok is None:  # blocked
            return
        m = self.money(pid, amount)
        bet = WalletCall.bet(self.fresh("bét"), pid, tok, GAMES[0], round_id, m)
        self.check(bet)
        self.clock.advance(SHORT_TTL + 1)
        self.check(WalletCall.bet(self.fresh("bét"), pid, tok, GAMES[0], round_id, m))
        self.check(WalletCall.win(self.fresh("win"), pid, tok, GAMES[0], round_id, m, WinReason.REGULAR))
        assert bet.tx_id is not None
        self.check(WalletCall.rollback(self.fresh("rb"), bet.tx_id, pid, tok, GAMES[0], round_id))
        self.check(WalletCall.balance(pid, tok))

    @precondition(lambda self: self.sessions)
    @rule(i=index, amount=stakes, round_id=st.sampled_from(ROUNDS), unblock=st.booleans())
    def blocked_player_plays(self, i: int, amount: int, round_id: str, unblock: bool) -> None:
        """A blocked player's bets are PLAYER_BLOCKED; money owed (wins, rollbacks) is still paid."""
        pid, tok = self.session(i)
        self.driver.set_blocked(pid, True)
        self.model.set_blocked(pid, True)
        m = self.money(pid, amount)
        bet = WalletCall.bet(self.fresh("bét"), pid, tok, GAMES[0], round_id, m)
        self.check(bet)
        self.check(WalletCall.win(self.fresh("win"), pid, tok, GAMES[0], round_id, m, WinReason.TOURNAMENT))
        self.check(WalletCall.rollback(self.fresh("rb"), self.fresh("ghost"), pid, tok, GAMES[0], round_id))
        self.check(WalletCall.balance(pid, tok))
        if unblock:
            self.driver.set_blocked(pid, False)
            self.model.set_blocked(pid, False)
            self.check(bet)  # a rejected call is not recorded: judged anew

    @precondition(lambda self: self.sessions)
    @rule(
        i=index, op=st.sampled_from([Op.BET, Op.WIN, Op.ROLLBACK, Op.BALANCE]),
        mode=st.sampled_from(["never-issued", "another-player", "unknown-player"]),
    )
    def bogus_session(self, i: int, op: Op, mode: str) -> None:
        """INVALID_TOKEN for every operation (even win and rollback); PLAYER_NOT_FOUND comes first."""
        pid, tok = self.session(i)
        if mode == "never-issued":
            tok = self.fresh("forged-session")
        elif mode == "another-player":
            foreign = [s for s in self.sessions if s[0] != pid]
            if not foreign:
                return
            tok = foreign[i % len(foreign)][1]
        else:
            pid = self.fresh("nobody")
        cur = self.model.players[pid].currency if pid in self.model.players else "EUR"
        m = Money.of(1, cur)
        if op is Op.BET:
            call = WalletCall.bet(self.fresh("bét"), pid, tok, GAMES[0], ROUNDS[0], m)
        elif op is Op.WIN:
            call = WalletCall.win(self.fresh("win"), pid, tok, GAMES[0], ROUNDS[0], m, WinReason.PROMO)
        elif op is Op.ROLLBACK:
            call = WalletCall.rollback(self.fresh("rb"), self.fresh("ghost"), pid, tok, GAMES[0], ROUNDS[0])
        else:
            call = WalletCall.balance(pid, tok)
        self.check(call)

    @rule(i=index)
    def transaction_log(self, i: int) -> None:
        """The log alone explains a balance: one row per accepted call, deltas summing to the balance."""
        pid = self.player_ids[i % len(self.player_ids)]
        rows = self.driver.transactions(pid)
        mp = self.model.players[pid]
        running = deposited = 0
        by_tx_id: dict[str, dict[str, Any]] = {}
        ids = [int(r["wallet_tx_id"]) for r in rows]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), f"log of {pid} out of order: {ids}"
        for r in rows:
            assert r["player_id"] == pid and r["currency"] == mp.currency, r
            running += r["delta"]
            assert r["balance_after"] == running, f"{pid}: row {r} after a running total of {running}"
            if r["tx_id"] is None:
                assert r["op"] == "deposit" and r["delta"] >= 0, r
                deposited += r["delta"]
            else:
                assert r["tx_id"] not in by_tx_id, f"tx_id logged twice: {r}"
                by_tx_id[r["tx_id"]] = r
        assert running == mp.balance and deposited == mp.deposited, (running, deposited, mp)
        expected = {tx_id: tx for tx_id, tx in self.model.txs.items() if tx.player_id == pid}
        assert set(by_tx_id) == set(expected), f"{pid}: log has {sorted(by_tx_id)}, accepted {sorted(expected)}"
        for tx_id, tx in expected.items():
            r = by_tx_id[tx_id]
            got = (r["op"], r["round_id"], r["amount"], r["ref_tx_id"], r["delta"], r["wallet_tx_id"], r["rolled_back"])
            want = (str(tx.op), tx.round_id, tx.amount, tx.ref_tx_id, tx.delta, tx.wallet_tx_id, tx.rolled_back)
            assert got == want, f"{tx_id}: log row {got}, model {want}"

    # -- the books ------------------------------------------------------------------------
    @invariant()
    def books_balance(self) -> None:
        """Every balance is the model's and never negative; per currency, money is conserved."""
        seen = self.driver.players(self.player_ids)
        per_currency: dict[str, int] = defaultdict(int)
        for pid in self.player_ids:
            row = seen[pid]
            mp = self.model.players[pid]
            assert row is not None, f"player {pid} vanished"
            assert row.balance >= 0, f"{pid} has a negative balance {row.balance}"
            assert (row.currency, row.balance, row.blocked) == (mp.currency, mp.balance, mp.blocked), (
                f"{pid}: wallet has {row}, model has {mp}"
            )
            per_currency[row.currency] += row.balance
        for cur, totals in self.model.totals.items():
            assert per_currency[cur] == totals.expected_sum(), f"{cur}: balances {per_currency[cur]} != {totals}"


def _fields(call: WalletCall) -> dict[str, Any]:
    return {name: getattr(call, name) for name in WalletCall.__dataclass_fields__}


def _fits(call: WalletCall) -> bool:
    """Ids within the wire's limit: longer ones are BAD_REQUEST over HTTP, a dialect rule the model leaves out."""
    return all(len(v) <= MAX_ID_LENGTH for v in _fields(call).values() if isinstance(v, str))


class InProcessMachine(WalletMachine):
    """The machine on ``store.execute`` directly: the rules without HTTP in the way."""

    kind = "memory"

    def make_driver(self, clock: FakeClock) -> Driver:
        return StoreDriver(self.kind, clock)


class MemoryMachine(InProcessMachine):
    kind = "memory"


class SQLiteMachine(InProcessMachine):
    kind = "sqlite"


class PostgresMachine(InProcessMachine):
    kind = "postgres"


@pytest.mark.parametrize("machine", [MemoryMachine, SQLiteMachine, PostgresMachine],
                         ids=["memory", "sqlite", "postgres"])
def test_store_against_model(machine: type[WalletMachine]) -> None:
    if machine.kind == "postgres":
        skip_without_pg()
    run_state_machine_as_test(machine, settings=settings())
