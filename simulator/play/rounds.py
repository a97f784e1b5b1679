"""Rounds as sans-I/O generators: they yield steps and receive outcomes.

``call = gen.send(outcome)`` — a round plays one game round the way a real
provider does (PROTOCOL.md, "How the provider side behaves"): a bet without a
definitive answer is rolled back and the rollback retried; a win without one is
sent again with the same ``tx_id`` until answered; retries back off with full
jitter up to a cap.  The aiohttp runner, the Locust users and the tests drive
the same generators, so this behaviour is written once.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..protocol.calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from ..protocol.codes import ErrorCode
from ..protocol.dialects.semantics import CANONICAL, RULE_IDS, Semantics
from ..protocol.money import CURRENCIES, INT64_MAX, Currency, Money
from .faults import SESSION_CODES, Delivery, Due, FaultPlan, Invalid


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``call`` the way ``delivery`` says; ``expect`` is the rejection that is due, if any (every
    code a wallet may answer, :class:`~simulator.play.faults.Due`); ``rule`` a rule of PROTOCOL.md the call
    exercises besides its operation's own (a win on an expired session: money owed is paid)."""

    call: WalletCall
    delivery: Delivery = Delivery.NORMAL
    expect: ErrorCode | Due | None = None
    purpose: str = ""
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Parallel:
    """Drive these rounds at once; the driver sends back the list of their results."""

    rounds: tuple[Generator[Step, object, object], ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Send ``calls`` in one request (a batching dialect); the driver sends back one Outcome per call.

    Delivered like a :class:`Send` (the same faults apply to the one request).  Reading the
    answer: every call Ok; or one Rejected, the calls after it not tried and the ones before
    it Unknown (their results are not on the wire); or all Unknown."""

    calls: tuple[WalletCall, ...]
    delivery: Delivery = Delivery.NORMAL
    purpose: str = "batch"


Step = Send | Batch | Sleep | Parallel
RoundGen = Generator[Step, object, "RoundOutcome"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; ``max_attempts`` counts the first try."""

    max_attempts: int = 8
    base_s: float = 0.02
    cap_s: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s < 0 or self.cap_s < 0:
            raise ValueError("retry: max_attempts >= 1, base_s >= 0, cap_s >= 0")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


@dataclass(slots=True)
class Seat:
    """A player with a live session, as the provider knows them."""

    player_id: str
    session_token: str
    currency: Currency
    balance: int | None = None
    """The last balance the wallet reported (the provider shows it to the player)."""
    live_until: float | None = None
    """Wall-clock time before which the session is surely live at the wallet (None: unknown)."""
    expired_after: float | None = None
    """Wall-clock time after which the session has surely expired at the wallet (None: unknown)."""
    session_ref: str | None = None
    """A second session id some wires carry (a players file gives it); sent with every call."""
    owed: list[WalletCall] = field(default_factory=list)
    """Wins and rollbacks refused ``SESSION_EXPIRED`` by a wallet whose wins need a live session
    (``Semantics.wins_need_live_session``), and the wins of their round not yet sent: the provider
    sends them again on a fresh session (:func:`repay`) once the game is launched again."""

    def opened(self, sent_at: float, answered_at: float, ttl_s: float | None, margin_s: float) -> None:
        """The session came from an authenticate sent at ``sent_at`` and answered at ``answered_at``
        that lives ``ttl_s`` seconds (None: unknown); ``margin_s``: how late a call may reach the wallet."""
        if ttl_s is None:
            self.live_until = self.expired_after = None
        else:
            self.live_until = sent_at + ttl_s - margin_s
            self.expired_after = answered_at + ttl_s

    def maybe_expired(self, now: float | None = None) -> bool:
        return self.live_until is None or (now if now is not None else time.time()) >= self.live_until

    def surely_expired(self, now: float | None = None) -> bool:
        return self.expired_after is not None and (now if now is not None else time.time()) >= self.expired_after


class TxIds:
    """Deterministic transaction and round ids: one seed, the same ids.

    ``tx_prefix`` (default ``prefix``): the transaction ids' own prefix.  Where a ``tx_id`` is
    unique per player (``Semantics.tx_scope == "player"``) every player's ids share one prefix,
    so two players send the same ``tx_id``s and the wallet must keep them apart; round ids keep
    the player's prefix."""

    def __init__(self, prefix: str, tx_prefix: str | None = None) -> None:
        self.prefix = prefix
        self.tx_prefix = prefix if tx_prefix is None else tx_prefix
        self.n = 0

    def tx(self) -> str:
        self.n += 1
        return f"{self.tx_prefix}-t{self.n}"

    def round(self) -> str:
        self.n += 1
        return f"{self.prefix}-r{self.n}"


class PayoutLike(Protocol):
    @property
    def amount(self) -> int: ...

    @property
    def reason(self) -> WinReason: ...


class StakeLike(Protocol):
    @property
    def amount(self) -> int: ...


class PlanLike(Protocol):
    """What a game decided for one round: what is staked, what is paid and why."""

    @property
    def stakes(self) -> Sequence[StakeLike]: ...

    @property
    def payouts(self) -> Sequence[PayoutLike]: ...


@dataclass(frozen=True, slots=True)
class Pay:
    amount: int
    reason: WinReason = WinReason.REGULAR


@dataclass(frozen=True, slots=True)
class Stake:
    amount: int


@dataclass(frozen=True, slots=True)
class Plan:
    stakes: tuple[Stake, ...]
    payouts: tuple[Pay, ...] = ()


@dataclass(slots=True)
class RoundOutcome:
    """How a round ended, from the provider's side."""

    status: str
    """settled | cancelled (rolled back) | refused (a bet was refused) | unresolved (retries exhausted)"""
    round_id: str
    staked: int = 0
    paid: int = 0
    invalid: Invalid | None = None
    refusal: ErrorCode | None = None
    """The code a bet was refused with (``status == "refused"``)."""
    notes: list[str] = field(default_factory=list)
    closing_win: WalletCall | None = None
    """The acknowledged win that closed the round."""


@dataclass(slots=True)
class RoundContext:
    seat: Seat
    game_id: str
    rng: random.Random
    ids: TxIds
    faults: FaultPlan = field(default_factory=FaultPlan)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch: bool = False
    """The dialect batches and the game is instant: a round whose win is known at the bet
    sends both in one request (:func:`batch_phase`)."""
    semantics: Semantics = CANONICAL
    """What the dialect's wire carries and means: which invalid calls it can express, whether
    wins close rounds, whether a bet may be 0, whether wins need a live session."""
    signed: bool = True
    """Whether the dialect signs its requests (a wrong secret changes them): without a
    signature there is no bad-signature call to make."""


def _seen(seat: Seat, outcome: object) -> None:
    if isinstance(outcome, Ok):
        seat.balance = outcome.balance.minor


def settle(ctx: RoundContext, send: Send) -> Generator[Step, object, Outcome]:
    """Send until a definitive answer or the attempts run out (then the last Unknown)."""
    attempt = 1
    while True:
        outcome = yield send
        assert isinstance(outcome, (Ok, Rejected, Unknown))
        _seen(ctx.seat, outcome)
        if not isinstance(outcome, Unknown) or attempt >= ctx.retry.max_attempts:
            return outcome
        yield Sleep(ctx.retry.backoff(attempt, ctx.rng))
        attempt += 1
        send = Send(send.call, ctx.faults.delivery(ctx.rng), send.expect, f"{send.purpose}:retry", send.rule)


def _bet(ctx: RoundContext, round_id: str, amount: int, tx_id: str | None = None,
         money: Money | None = None) -> WalletCall:
    """A bet of the seat's player.  Where a bet must be above zero (``Semantics.zero_bet`` false)
    a stake of 0 is raised to the smallest bet, 1 minor unit: the round keeps its shape (a bet,
    then its wins), and no valid-looking bet is one the wallet must refuse."""
    s = ctx.seat
    if money is None:
        if amount <= 0 and not ctx.semantics.zero_bet:
            amount = 1
        money = Money(amount, s.currency)
    return WalletCall(Op.BET, player_id=s.player_id, session_token=s.session_token, game_id=ctx.game_id,
                      tx_id=tx_id or ctx.ids.tx(), round_id=round_id, amount=money, session_ref=s.session_ref)


def _win(ctx: RoundContext, round_id: str, pay: PayoutLike, closes: bool,
         bets: Sequence[WalletCall]) -> WalletCall:
    """A win of the seat's player: it names the round's first accepted bet (``bet_tx_id``; None for a
    round without one), which a dialect whose wins name their bet sends; without rounds
    (``Semantics.rounds`` false) no win closes one."""
    s = ctx.seat
    return WalletCall(Op.WIN, player_id=s.player_id, session_token=s.session_token, game_id=ctx.game_id,
                      tx_id=ctx.ids.tx(), round_id=round_id, amount=Money(pay.amount, s.currency), reason=pay.reason,
                      round_closed=closes and ctx.semantics.rounds, bet_tx_id=bets[0].tx_id if bets else None,
                      session_ref=s.session_ref)


def _rollback(ctx: RoundContext, bet: WalletCall) -> WalletCall:
    """The rollback of ``bet``: the same player, round and game as the bet (a wallet may refuse a
    rollback naming another round or game, PROTOCOL.md "Where a wallet may choose"), and the
    amount of the bet it cancels (a dialect whose rollbacks carry it sends it)."""
    s = ctx.seat
    assert bet.tx_id is not None and bet.round_id is not None
    return WalletCall(Op.ROLLBACK, player_id=s.player_id, session_token=s.session_token,
                      game_id=bet.game_id or ctx.game_id, tx_id=ctx.ids.tx(), round_id=bet.round_id,
                      amount=bet.amount, ref_tx_id=bet.tx_id, session_ref=s.session_ref)


LATE_PAID = "sessions-money-owed-is-paid"
LIVE_SESSION = RULE_IDS[("wins_need_live_session", True)]
"""The rule a win or rollback exercises, on a dialect whose wins need a live session, when its session
may have ended (a ``SESSION_EXPIRED`` refusal is then allowed: the provider sends it again later)."""


def owed(seat: Seat, semantics: Semantics = CANONICAL) -> str | None:
    """The rule a win or rollback exercises when its session has (or, where wins need a live session,
    may have) ended."""
    if semantics.wins_need_live_session:
        return LIVE_SESSION if seat.maybe_expired() else None
    return LATE_PAID if seat.surely_expired() else None


def session_ended(ctx: RoundContext, outcome: object) -> bool:
    """A win or rollback refused because its session ended, on a dialect whose wins need a live
    session: owed to the player, sent again on a fresh session.  An unmapped code counts when the
    session may have ended (it may be the wallet's word for it)."""
    if not ctx.semantics.wins_need_live_session or not isinstance(outcome, Rejected):
        return False
    return outcome.code is ErrorCode.SESSION_EXPIRED or (
        outcome.code is ErrorCode.UNMAPPED and ctx.seat.maybe_expired())


def _cancelled(ctx: RoundContext, rollback: WalletCall, outcome: object) -> None:
    if session_ended(ctx, outcome):
        ctx.seat.owed.append(rollback)


def cancel(ctx: RoundContext, bets: Sequence[WalletCall]) -> Generator[Step, object, bool]:
    """Roll back every bet that may have landed; True when each rollback was acknowledged.

    A rollback is delivered with the faults of any call; now and then a second retry loop of the
    provider cancels the same bet under a new tx_id, after the first (``duplicate``) or at the same
    time (``concurrent_duplicate``): either must change nothing (rule 4)."""
    done = True
    rates = ctx.faults.rates
    sem = ctx.semantics
    for bet in bets:
        first = Send(_rollback(ctx, bet), ctx.faults.delivery(ctx.rng), purpose="rollback", rule=owed(ctx.seat, sem))
        if rates.concurrent_duplicate and ctx.rng.random() < rates.concurrent_duplicate:
            other = Send(_rollback(ctx, bet), ctx.faults.delivery(ctx.rng), purpose="rollback:concurrent",
                         rule=owed(ctx.seat, sem))
            both = yield Parallel((settle(ctx, first), settle(ctx, other)))
            assert isinstance(both, list)
            done = done and not all(isinstance(o, Unknown) for o in both)
            if not any(isinstance(o, Ok) for o in both):
                _cancelled(ctx, first.call, next((o for o in both if isinstance(o, Rejected)), None))
            continue
        outcome = yield from settle(ctx, first)
        done = done and not isinstance(outcome, Unknown)
        _cancelled(ctx, first.call, outcome)
        if isinstance(outcome, Ok) and rates.duplicate and ctx.rng.random() < rates.duplicate:
            # A second retry loop cancels the same bet under a new tx_id: it must change nothing.
            yield from settle(ctx, Send(_rollback(ctx, bet), purpose="rollback:second", rule=owed(ctx.seat, sem)))
    return done


def repay(ctx: RoundContext) -> Generator[Step, object, int]:
    """Send again, on the seat's fresh session, what a wallet whose wins need a live session refused
    ``SESSION_EXPIRED`` (:attr:`Seat.owed`): each with its own ``tx_id``, until a definitive answer.
    Returns how many were accepted.  One refused again is not kept: the ledger judges it."""
    s = ctx.seat
    calls, s.owed = s.owed, []
    paid = 0
    for call in calls:
        again = dataclasses.replace(call, session_token=s.session_token, session_ref=s.session_ref)
        outcome = yield from settle(ctx, Send(again, ctx.faults.delivery(ctx.rng), purpose="owed",
                                              rule=owed(s, ctx.semantics)))
        paid += isinstance(outcome, Ok)
    return paid


def bet_phase(ctx: RoundContext, round_id: str, stakes: Sequence[int], result: RoundOutcome) -> Generator[
        Step, object, list[WalletCall] | None]:
    """Place the round's bets; on a refusal or no answer, roll back what may have landed (None)."""
    bets: list[WalletCall] = []
    for amount in stakes:
        bet = _bet(ctx, round_id, amount)
        outcome = yield Send(bet, ctx.faults.delivery(ctx.rng), purpose="bet")
        _seen(ctx.seat, outcome)
        if isinstance(outcome, Ok):
            bets.append(bet)
            assert bet.amount is not None
            result.staked += bet.amount.minor
            continue
        if isinstance(outcome, Unknown):
            bets.append(bet)
        acknowledged = yield from cancel(ctx, bets)
        result.status = "refused" if isinstance(outcome, Rejected) else ("cancelled" if acknowledged else "unresolved")
        if isinstance(outcome, Rejected):
            result.refusal = outcome.code
        result.staked = 0
        return None
    return bets


def win_phase(ctx: RoundContext, round_id: str, payouts: Sequence[PayoutLike], result: RoundOutcome,
              late: bool = True, bets: Sequence[WalletCall] = ()) -> Generator[Step, object, bool]:
    """Pay the round's wins, the last one closing it (a zero win for a lost round).

    ``bets``: the round's accepted bets (its wins name the first).  Without rounds
    (``Semantics.rounds`` false) nothing is closed, so a lost round sends no zero win.
    ``late=False`` for shared rounds: a live table settles everyone together and never
    holds one player's win back.  A win refused because its session ended, where the dialect's
    wins need a live session, is owed (:attr:`Seat.owed`) with the wins after it."""
    wins: list[PayoutLike] = [p for p in payouts if p.amount > 0]
    if not wins and ctx.semantics.rounds:
        wins = [Pay(0, WinReason.REGULAR)]
    for i, pay in enumerate(wins):
        last = i == len(wins) - 1
        if late and last and ctx.faults.late_win(ctx.rng):
            result.notes.append("late_win")
            yield Sleep(ctx.faults.late_win_delay_s)
        s = ctx.seat
        win = _win(ctx, round_id, pay, last, bets)
        outcome = yield from settle(ctx, Send(win, ctx.faults.delivery(ctx.rng), purpose=f"win:{pay.reason}",
                                              rule=owed(s, ctx.semantics)))
        if isinstance(outcome, Ok):
            result.paid += pay.amount
            if last:
                result.closing_win = win
        else:
            result.status = "unresolved" if isinstance(outcome, Unknown) else "refused"
            if session_ended(ctx, outcome):
                s.owed.append(win)
                s.owed.extend(_win(ctx, round_id, p, j == len(wins) - 1, bets)
                              for j, p in enumerate(wins) if j > i)
                result.refusal = ErrorCode.SESSION_EXPIRED
            return False
    return True


def batchable(ctx: RoundContext, stakes: Sequence[int], payouts: Sequence[PayoutLike]) -> Pay | None:
    """The one regular win (or the zero win) a one-bet round closes with, if it can go with its bet."""
    if not ctx.batch or len(stakes) != 1:
        return None
    wins = [p for p in payouts if p.amount > 0]
    if not wins:
        return Pay(0, WinReason.REGULAR) if ctx.semantics.rounds else None
    if len(wins) == 1 and wins[0].reason is WinReason.REGULAR:
        return Pay(wins[0].amount, WinReason.REGULAR)
    return None


def batch_phase(ctx: RoundContext, round_id: str, stake: int, pay: Pay, result: RoundOutcome) -> Generator[
        Step, object, list[WalletCall] | None]:
    """The bet and the win that closes the round in one request, re-sent as it is until an answer.

    Every action is idempotent by its own ``tx_id``, so the exact batch is re-sent while no
    action has a definitive answer (a regular win cannot stand without its bet, and a rollback
    of a bet whose round the win may have closed would be refused).  A refused bet: the win was
    not tried and nothing stands.  A refused win: the bet may stand (not on the wire), so it is
    rolled back as any bet without an answer.  Returns the bets that stand, or None."""
    s = ctx.seat
    bet = _bet(ctx, round_id, stake)
    win = _win(ctx, round_id, pay, True, [bet])
    step = Batch((bet, win), ctx.faults.delivery(ctx.rng))
    attempt = 1
    while True:
        outcomes = yield step
        assert isinstance(outcomes, tuple) and len(outcomes) == 2
        bet_out, win_out = outcomes
        _seen(s, bet_out)
        _seen(s, win_out)
        if isinstance(bet_out, Ok) and isinstance(win_out, Ok):
            assert bet.amount is not None
            result.staked += bet.amount.minor
            result.paid += pay.amount
            result.closing_win = win
            return [bet]
        if isinstance(bet_out, Rejected):
            result.status, result.refusal = "refused", bet_out.code
            return None
        if isinstance(win_out, Rejected):
            acknowledged = yield from cancel(ctx, [bet])
            result.status = "refused" if acknowledged else "unresolved"
            return None
        if attempt >= ctx.retry.max_attempts:
            result.status = "unresolved"
            return None
        yield Sleep(ctx.retry.backoff(attempt, ctx.rng))
        attempt += 1
        step = Batch(step.calls, ctx.faults.delivery(ctx.rng), "batch:retry")


def play_round(ctx: RoundContext, plan: PlanLike, round_id: str | None = None) -> RoundGen:
    """One round of a single-player game: bets, then wins, then perhaps an invalid call."""
    round_id = round_id or ctx.ids.round()
    stakes = [s.amount for s in plan.stakes]
    result = RoundOutcome("settled", round_id)
    if stakes and ctx.faults.reorder(ctx.rng):
        # The rollback overtakes its bet: the wallet must tombstone it and refuse the bet.
        bet = _bet(ctx, round_id, stakes[0])
        yield from settle(ctx, Send(_rollback(ctx, bet), purpose="reorder:rollback"))
        due = Due(frozenset({ErrorCode.TX_ROLLED_BACK}) | _session_codes(ctx.seat), ErrorCode.TX_ROLLED_BACK,
                  "idempotency-5-tombstone", "bet after its rollback")
        outcome = yield Send(bet, expect=due, purpose="reorder:bet")
        _seen(ctx.seat, outcome)
        if isinstance(outcome, Ok):  # accepted after its rollback: take the money back out
            yield from cancel(ctx, [bet])
        result.status = "cancelled"
        result.notes.append("reorder")
        return result
    pay = batchable(ctx, stakes, plan.payouts)
    if pay is not None:
        bets = yield from batch_phase(ctx, round_id, stakes[0], pay, result)
        if bets is None:
            return result
    else:
        bets = yield from bet_phase(ctx, round_id, stakes, result)
        if bets is None:
            return result
        if not (yield from win_phase(ctx, round_id, plan.payouts, result, bets=bets)):
            return result
    kinds = expressible(ctx.semantics, ctx.signed)
    kind = ctx.faults.invalid(ctx.rng) if len(kinds) == len(Invalid) else ctx.faults.invalid(ctx.rng, kinds)
    if kind is not None and kind in kinds:
        result.invalid = kind
        yield from invalid_call(ctx, kind, round_id, bets[0] if bets else None, result.closing_win)
    return result


def live_round(
    table: str, seats: Sequence[tuple[RoundContext, PlanLike]], round_id: str
) -> Generator[Step, object, list[RoundOutcome]]:
    """A live-table round: one shared round, a betting window where every seated player bets
    at once, then every win settled in one burst (the load real live tables put on a wallet)."""
    results = [RoundOutcome("settled", round_id, notes=[f"live:{table}"]) for _ in seats]
    placed = yield Parallel(tuple(
        bet_phase(ctx, round_id, [s.amount for s in plan.stakes], res) for (ctx, plan), res in zip(seats, results, strict=True)))
    assert isinstance(placed, list)
    yield Parallel(tuple(
        win_phase(ctx, round_id, plan.payouts, res, late=False, bets=bets)
        for ((ctx, plan), res, bets) in zip(seats, results, placed, strict=True) if bets is not None))
    return results


@functools.cache
def expressible(semantics: Semantics, signed: bool = True) -> tuple[Invalid, ...]:
    """The invalid calls a dialect's wire can express, in :class:`Invalid`'s order (a canonical run
    draws from all of them, as it always did): no call in another currency where calls carry none,
    no bet on a closed round where nothing closes one, no wrong signature where nothing is signed."""
    return tuple(k for k in Invalid if not (
        (k is Invalid.WRONG_CURRENCY and not semantics.carries_currency)
        or (k is Invalid.CLOSED_ROUND and not semantics.rounds)
        or (k is Invalid.BAD_SIGNATURE and not signed)))


def _session_codes(seat: Seat) -> frozenset[ErrorCode]:
    """A bet on a session that may have run out by the time it arrives may be refused for it."""
    return SESSION_CODES if seat.maybe_expired() else frozenset()


def invalid_call(
    ctx: RoundContext, kind: Invalid, closed_round: str, first_bet: WalletCall | None,
    closing_win: WalletCall | None = None,
) -> Generator[Step, object, Outcome | None]:
    """A call the wallet must refuse; if it accepts a debit, the provider takes it back.

    Each call carries every code a wallet may refuse it with (:class:`~simulator.play.faults.Due`),
    computed now: the code of the rule it is made to break, and the codes of the other rules it
    breaks (a bet whose session may have run out by the time it arrives; a mismatched replay on a
    closed round; the funds are the ledger's to judge).  A bet refused for its bad signature is
    sent again, signed: a rejected call is not recorded, so it is judged again (rule 3).  Only
    calls the dialect's wire can express are made (:func:`expressible`); without rounds no code
    of a round is due."""
    s = ctx.seat
    sess = _session_codes(s)
    closed = frozenset({ErrorCode.ROUND_CLOSED}) if ctx.semantics.rounds else frozenset()
    if kind is Invalid.BAD_SIGNATURE:
        due = Due(frozenset({ErrorCode.INVALID_SIGNATURE}) | sess, ErrorCode.INVALID_SIGNATURE,
                  "transport-signature", "bet with a wrong signature")
        send = Send(_bet(ctx, ctx.ids.round(), 1), Delivery.BAD_SIGNATURE, due, "invalid:signature")
    elif kind is Invalid.WRONG_CURRENCY:
        other = ctx.rng.choice([c for c in CURRENCIES.values() if c != s.currency])
        # One whole unit: every dialect's wire carries it, however few decimals it has.
        tx_id = ctx.ids.tx()
        call = _bet(ctx, ctx.ids.round(), 0, tx_id=tx_id, money=Money(10**other.exponent, other))
        due = Due(frozenset({ErrorCode.CURRENCY_MISMATCH}) | sess, ErrorCode.CURRENCY_MISMATCH, "money-currency",
                  f"bet in {other.code}")
        send = Send(call, expect=due, purpose="invalid:currency")
    elif kind is Invalid.OVERDRAFT and s.balance is not None and s.balance < INT64_MAX:
        due = Due(frozenset({ErrorCode.INSUFFICIENT_FUNDS}) | sess, ErrorCode.INSUFFICIENT_FUNDS,
                  "idempotency-7-never-negative", "bet over the balance")
        send = Send(_bet(ctx, ctx.ids.round(), s.balance + 1), expect=due, purpose="invalid:overdraft")
    elif kind is Invalid.CLOSED_ROUND and ctx.semantics.rounds:
        due = Due(frozenset({ErrorCode.ROUND_CLOSED}) | sess, ErrorCode.ROUND_CLOSED, "operations-round-closed",
                  "bet on a closed round")
        send = Send(_bet(ctx, closed_round, 1), expect=due, purpose="invalid:closed_round")
    elif kind is Invalid.MISMATCHED_REPLAY and first_bet is not None and first_bet.amount is not None:
        changed = _bet(ctx, closed_round, first_bet.amount.minor + 1, tx_id=first_bet.tx_id)
        # Not a replay: a later bet on the closed round too (where there are rounds).
        due = Due(frozenset({ErrorCode.DUPLICATE_MISMATCH}) | closed | sess,
                  ErrorCode.DUPLICATE_MISMATCH, "idempotency-2-mismatch", "bet reusing an accepted tx_id")
        send = Send(changed, expect=due, purpose="invalid:mismatched_replay")
    elif kind is Invalid.ROLLBACK_OF_WIN and closing_win is not None and closing_win.tx_id is not None:
        # Its round is closed by that very win: ROUND_CLOSED is a rule it breaks too (where there are rounds).
        call = WalletCall(Op.ROLLBACK, player_id=s.player_id, session_token=s.session_token,
                          game_id=closing_win.game_id or ctx.game_id, tx_id=ctx.ids.tx(), round_id=closed_round,
                          amount=closing_win.amount, ref_tx_id=closing_win.tx_id, session_ref=s.session_ref)
        due = Due(frozenset({ErrorCode.ROLLBACK_NOT_ALLOWED}) | closed, ErrorCode.ROLLBACK_NOT_ALLOWED,
                  "idempotency-6-rollback-only-bets", "rollback of a win")
        send = Send(call, expect=due, purpose="invalid:rollback_of_win")
    else:
        return None
    outcome = yield send
    _seen(ctx.seat, outcome)
    if kind is Invalid.BAD_SIGNATURE and isinstance(outcome, Rejected) and \
            outcome.code is ErrorCode.INVALID_SIGNATURE:
        again = yield Send(send.call, purpose="invalid:signature:again")
        _seen(ctx.seat, again)
        if isinstance(again, (Ok, Unknown)):  # accepted now, as it must be (funds permitting): close it
            yield from cancel(ctx, [send.call])
    elif isinstance(outcome, Ok) and send.call.op is Op.BET and kind is not Invalid.MISMATCHED_REPLAY:
        yield from cancel(ctx, [send.call])  # the wallet took it: the provider takes it back
    elif isinstance(outcome, Unknown) and send.call.op is Op.BET and kind not in (
            Invalid.MISMATCHED_REPLAY, Invalid.CLOSED_ROUND):
        yield from cancel(ctx, [send.call])  # it may have landed: roll it back, as any bet without an answer
    return outcome  # type: ignore[return-value]


# -- seating: how a provider gets a player's session ------------------------------------------
@dataclass(frozen=True, slots=True)
class Launch:
    """What the provider knows of a player before play (provisioned, or a players file's row)."""

    player_id: str
    currency: Currency
    token: str
    """The launch token an ``authenticate`` turns into a session; where the operator makes the
    sessions (``Semantics.sessions == "operator"``), the session itself unless ``session_token``."""
    session_token: str | None = None
    """The session a players file gives (operator-made sessions; or when authenticate returns none)."""
    session_ref: str | None = None
    balance: int | None = None
    """The opening balance when known (provisioned); else read from the wallet."""
    game_id: str = "lobby"


@dataclass(frozen=True, slots=True)
class SeatRefused:
    """A player could not be seated: ``step`` is the call that failed (``authenticate``, ``balance``),
    ``other-player`` (authenticate answered another player than the launch token's) or ``currency``
    (the account is in another currency than the provider launched it in)."""

    step: str
    outcome: Outcome | None = None
    detail: str = ""


def open_seat(launch: Launch, semantics: Semantics, ttl_s: float | None, margin_s: float, *,
              read_balance: bool = True) -> Generator[Step, object, Seat | SeatRefused]:
    """Seat a player the way the dialect's sessions are made, for every driver (``run``, ``load``).

    * ``sessions = "authenticate"``: the launch token is sent; what the answer leaves out
      (:attr:`Ok.missing`) comes from what the provider knows: the player id it launched, the
      players file's session token or else the launch token itself as the session (a Hub88-style
      user-info call returns none), the balance from a ``balance`` call.
    * ``sessions = "operator"``: no call makes a session; the file's session token (or its token)
      is the session, and the balance is read with a ``balance`` call unless known.

    ``ttl_s``: how long a session lives (None: unknown); ``margin_s``: how late a call may arrive.
    ``read_balance=False`` (a relaunch): the balance is not read again."""
    code = launch.currency.code
    session: str | None
    balance = launch.balance
    if semantics.sessions == "operator":
        sent = answered = time.time()
        session = launch.session_token or launch.token
    else:
        call = WalletCall(Op.AUTHENTICATE, token=launch.token, game_id=launch.game_id,
                          session_ref=launch.session_ref, currency_hint=code)
        sent = time.time()
        outcome = yield Send(call, purpose="authenticate")
        answered = time.time()
        assert isinstance(outcome, (Ok, Rejected, Unknown))
        if not isinstance(outcome, Ok):
            return SeatRefused("authenticate", outcome)
        missing = outcome.missing
        player_id = launch.player_id if "player_id" in missing else outcome.player_id
        if player_id != launch.player_id:
            return SeatRefused("other-player", outcome, repr(outcome.player_id))
        session = (launch.session_token or launch.token) if "session_token" in missing else outcome.session_token
        if not session:
            return SeatRefused("authenticate", outcome)
        if "balance" not in missing:
            if outcome.balance.currency != launch.currency:
                return SeatRefused("currency", outcome, f"account in {outcome.balance.currency.code}, not {code}")
            balance = outcome.balance.minor
    seat = Seat(launch.player_id, session, launch.currency, balance, session_ref=launch.session_ref)
    seat.opened(sent, answered, ttl_s, margin_s)
    if seat.balance is None and read_balance:
        read = WalletCall(Op.BALANCE, player_id=launch.player_id, session_token=session,
                          session_ref=launch.session_ref, currency_hint=code)
        outcome = yield Send(read, purpose="balance")
        assert isinstance(outcome, (Ok, Rejected, Unknown))
        if not isinstance(outcome, Ok):
            return SeatRefused("balance", outcome)
        seat.balance = outcome.balance.minor
    return seat


def balance_call(seat: Seat) -> WalletCall:
    """A read of the seat's balance, with the account's currency for answers that omit it."""
    return WalletCall(Op.BALANCE, player_id=seat.player_id, session_token=seat.session_token,
                      session_ref=seat.session_ref, currency_hint=seat.currency.code)


def player_ids(prefix: str, semantics: Semantics, shared: str) -> TxIds:
    """A player's ids (``prefix``: the player's own).  Where a ``tx_id`` is unique per player
    (``tx_scope = "player"``) every player's transaction ids share the prefix ``shared`` (the run's):
    two players send the same ``tx_id``s, which such a wallet must keep apart.  The one rule for
    ``croupier run`` and ``croupier load``."""
    if semantics.tx_scope == "player":
        return TxIds(prefix, tx_prefix=f"{shared}-x")
    return TxIds(prefix)
