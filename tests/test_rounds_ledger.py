"""Rounds, faults and the ledger without a network: the reference rules in memory pass every
fault cleanly, and each deliberately broken wallet is caught as the right anomaly."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.drive.inprocess import InProcessClient, InProcessWallet, SyncDriver
from simulator.judge.ledger import Anomaly, Ledger
from simulator.play.faults import Delivery, Due, FaultPlan, FaultRates, Invalid
from simulator.play.rounds import Pay, Plan, RetryPolicy, RoundContext, Seat, Send, Stake, TxIds, play_round
from simulator.protocol.calls import Ok, Op, Outcome, Rejected, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects.canonical import CanonicalDialect
from simulator.protocol.money import currency
from simulator.wallet import rules
from tests.support import FakeClock

SECRET = "k"


def setup(wallet: InProcessWallet, players: int = 3, code: str = "EUR", balance: int = 100_000) -> tuple[
        SyncDriver, list[Seat]]:
    ledger = Ledger()
    driver = SyncDriver(InProcessClient(wallet, CanonicalDialect(SECRET)), ledger,
                        InProcessClient(wallet, CanonicalDialect("wrong")))
    seats = []
    for i in range(players):
        pid = f"p{i}"
        wallet.create_player(pid, code, balance)
        ledger.open(pid, code, balance)
        out = driver.deliver(Send(WalletCall.authenticate(wallet.launch(pid), "g")))
        assert isinstance(out, Ok) and out.session_token
        seats.append(Seat(pid, out.session_token, currency(code), balance))
    return driver, seats


def play(driver: SyncDriver, seats: list[Seat], faults: FaultPlan, rounds: int = 30, seed: int = 7) -> None:
    rng = random.Random(seed)
    for seat in seats:
        ids = TxIds(seat.player_id)
        for _ in range(rounds):
            stakes = tuple(Stake(rng.choice([0, 1, 50, 200])) for _ in range(rng.randint(1, 3)))
            pays = tuple(Pay(rng.choice([0, 100, 400]), rng.choice(list(WinReason))) for _ in range(rng.randint(0, 3)))
            ctx = RoundContext(seat, "slot", rng, ids, faults, RetryPolicy(max_attempts=3, base_s=0, cap_s=0))
            driver.drive(play_round(ctx, Plan(stakes, pays)))


def reconcile(driver: SyncDriver, wallet: InProcessWallet, seats: list[Seat]) -> None:
    for seat in seats:
        out = driver.client.exchange(WalletCall.balance(seat.player_id, seat.session_token)).outcome
        assert isinstance(out, Ok)
        driver.ledger.reconcile(seat.player_id, out)


ALL_FAULTS = FaultPlan(FaultRates(duplicate=0.1, concurrent_duplicate=0.1, timeout=0.1, lost_response=0.1,
                                  retry_storm=0.05, reorder=0.1, invalid=0.3))


@pytest.mark.parametrize("delivery", list(Delivery))
def test_every_delivery_is_clean_against_the_reference_rules(delivery: Delivery) -> None:
    wallet = InProcessWallet(SECRET)
    driver, seats = setup(wallet)
    rate = {d: 0.0 for d in ("duplicate", "concurrent_duplicate", "timeout", "lost_response", "retry_storm",
                             "partial_batch")}
    if delivery.value in rate:
        rate[delivery.value] = 0.5
    plan = FaultPlan(FaultRates(**rate, invalid=1.0 if delivery is Delivery.BAD_SIGNATURE else 0.0))
    play(driver, seats, plan)
    reconcile(driver, wallet, seats)
    assert driver.ledger.anomaly_count == 0, driver.ledger.findings[:3]
    assert not driver.ledger.in_doubt()
    assert any(s.delivery is delivery for s, _ in driver.sent) or delivery is Delivery.NORMAL


def test_every_rollback_names_its_bets_round_and_game() -> None:
    """A wallet may refuse a rollback naming another round or game than its bet's (PROTOCOL.md, "Where a
    wallet may choose"): croupier never sends one, so no refusal of its rollbacks is that choice."""
    wallet = InProcessWallet(SECRET)
    driver, seats = setup(wallet)
    play(driver, seats, FaultPlan(dataclasses.replace(ALL_FAULTS.rates, invalid=0.0)), rounds=40)
    bets = {s.call.tx_id: s.call for s, _ in driver.sent if s.call.op is Op.BET}
    rollbacks = [s.call for s, _ in driver.sent if s.call.op is Op.ROLLBACK]
    assert len(rollbacks) > 10
    for rb in rollbacks:
        bet = bets.get(rb.ref_tx_id)
        if bet is not None:
            assert (rb.round_id, rb.game_id) == (bet.round_id, bet.game_id), (rb, bet)


@given(st.integers(min_value=0, max_value=2**32), st.sampled_from(["EUR", "JPY", "BTC", "KWD"]))
def test_any_seed_with_every_fault_reconciles(seed: int, code: str) -> None:
    wallet = InProcessWallet(SECRET)
    driver, seats = setup(wallet, players=2, code=code, balance=5_000)
    play(driver, seats, ALL_FAULTS, rounds=15, seed=seed)
    reconcile(driver, wallet, seats)
    assert driver.ledger.anomaly_count == 0, driver.ledger.findings[:3]
    for seat in seats:
        assert driver.ledger.books[seat.player_id].expected == wallet.balance(seat.player_id)


def test_same_seed_same_calls() -> None:
    bodies = []
    for _ in range(2):
        wallet = InProcessWallet(SECRET, clock=FakeClock())
        driver, seats = setup(wallet, players=1)
        driver.sent.clear()
        # session tokens are the wallet's random values: compare the calls without them
        play(driver, seats, ALL_FAULTS, rounds=20, seed=42)
        bodies.append([dataclasses.replace(s.call, session_token=None) for s, _ in driver.sent])
    assert bodies[0] == bodies[1]


class Forced(FaultPlan):
    """Always the one invalid call under test."""

    def __init__(self, kind: Invalid) -> None:
        super().__init__(FaultRates())
        self.kind = kind

    def invalid(self, rng: random.Random) -> Invalid | None:
        return self.kind


def test_invalid_calls_are_each_refused_with_their_code() -> None:
    wallet = InProcessWallet(SECRET)
    driver, seats = setup(wallet, players=1)
    for kind in Invalid:
        ctx = RoundContext(seats[0], "slot", random.Random(1), TxIds(f"x{kind}"), Forced(kind))
        driver.drive(play_round(ctx, Plan((Stake(100),), (Pay(50),))))
    dues = [(s.expect, ex.outcome) for s, ex in driver.sent if isinstance(s.expect, Due)]
    assert {d.usual for d, _ in dues} == {
        ErrorCode.INVALID_SIGNATURE, ErrorCode.CURRENCY_MISMATCH, ErrorCode.INSUFFICIENT_FUNDS,
        ErrorCode.ROUND_CLOSED, ErrorCode.DUPLICATE_MISMATCH, ErrorCode.ROLLBACK_NOT_ALLOWED}
    for due, outcome in dues:
        assert isinstance(outcome, Rejected) and outcome.code is due.usual and outcome.code in due.codes
    # A bet refused for its signature is sent again, signed, and judged again (rule 3): accepted this time.
    again = [ex.outcome for s, ex in driver.sent if s.purpose == "invalid:signature:again"]
    assert len(again) == 1 and isinstance(again[0], Ok)
    assert sum(driver.ledger.counts.values()) == 0, driver.ledger.findings  # not even a note
    for rule in ("transport-signature", "money-currency", "idempotency-7-never-negative", "operations-round-closed",
                 "idempotency-2-mismatch", "idempotency-6-rollback-only-bets", "idempotency-3-rejected-not-recorded"):
        assert driver.ledger.coverage[rule].calls > 0, rule


# -- broken wallets: each must be caught as its anomaly ---------------------------------


class DoubleApplyReplay(InProcessWallet):
    """Forgets it has seen a tx_id: a duplicate is applied again."""

    def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.tx_id:
            self.repo.by_tx_id.pop(call.tx_id, None)
        return super().execute(call, now)


class NoTombstone(InProcessWallet):
    def execute(self, call: WalletCall, now: float) -> Outcome:
        self.repo.tombstones.clear()
        return super().execute(call, now)


class SecondRollbackRefunds(InProcessWallet):
    def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op is Op.ROLLBACK and call.ref_tx_id in self.repo.by_tx_id and call.tx_id not in self.repo.by_tx_id:
            i = self.repo.by_tx_id[call.ref_tx_id]
            self.repo.txs[i] = dataclasses.replace(self.repo.txs[i], rolled_back=False)
        return super().execute(call, now)


class RefusesWinOnExpiredSession(InProcessWallet):
    def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op is Op.WIN and call.session_token:
            session = self.repo.session(call.session_token)
            if session is not None and now >= session.expires_at:
                return Rejected(ErrorCode.SESSION_EXPIRED, "expired")
        return super().execute(call, now)


class FloatMoney(InProcessWallet):
    def handle(self, request):  # type: ignore[no-untyped-def]
        resp = super().handle(request)
        if request.path in ("bet", "win"):  # 12.34 instead of 1234: major units as a float
            import orjson

            body = orjson.loads(resp.body)
            if isinstance(body.get("balance"), int):
                body["balance"] = body["balance"] / 100
            return dataclasses.replace(resp, body=orjson.dumps(body))
        return resp


class IgnoresRoundClosed(InProcessWallet):
    def execute(self, call: WalletCall, now: float) -> Outcome:
        for key, row in list(self.repo.rounds.items()):
            self.repo.rounds[key] = dataclasses.replace(row, closed=False)
        return super().execute(call, now)


@pytest.mark.parametrize(
    ("wallet_cls", "faults", "kinds"),
    [
        (DoubleApplyReplay, FaultRates(duplicate=0.5), {Anomaly.DOUBLE_APPLY}),
        (NoTombstone, FaultRates(reorder=0.5), {Anomaly.ACCEPTED_AFTER_ROLLBACK}),
        (SecondRollbackRefunds, FaultRates(lost_response=0.3, duplicate=0.3), {Anomaly.ROLLBACK_APPLIED_TWICE}),
        (FloatMoney, FaultRates(), {Anomaly.UNDECODABLE_ANSWER}),
        (IgnoresRoundClosed, FaultRates(invalid=1.0), {Anomaly.INVALID_CALL_MOVED_MONEY}),
    ],
)
def test_broken_wallets_are_caught(wallet_cls: type[InProcessWallet], faults: FaultRates, kinds: set[Anomaly]) -> None:
    wallet = wallet_cls(SECRET)
    driver, seats = setup(wallet)
    play(driver, seats, FaultPlan(faults))
    reconcile(driver, wallet, seats)
    seen = {k for k, n in driver.ledger.counts.items() if n}
    assert kinds <= seen, (seen, driver.ledger.findings[:2])


def test_win_refused_on_expired_session_is_caught() -> None:
    clock = FakeClock()
    wallet = RefusesWinOnExpiredSession(SECRET, clock=clock)
    driver, seats = setup(wallet, players=1)
    seat = seats[0]
    ids = TxIds("late")
    ctx = RoundContext(seat, "slot", random.Random(1), ids)
    gen = play_round(ctx, Plan((Stake(100),), (Pay(300),)))
    step = next(gen)
    out = driver.deliver(step)  # the bet
    step = gen.send(out)
    clock.advance(7200)  # the win arrives after the session expired
    out = driver.deliver(step)
    with pytest.raises(StopIteration):
        gen.send(out)
    assert driver.ledger.counts[Anomaly.REFUSED_VALID_CALL] == 1
    # and the reference rules accept it
    assert rules  # imported for the reader: the rule lives in rules.decide
