"""A player's session, written once (:mod:`simulator.drive.session`) and ended once (:mod:`simulator.drive.endgame`).

1. Two players' sessions — every fault kind but two rounds at once (whose interleaving, not the
   session, decides which round gets which id) — and the end of play, through the in-process, asyncio
   and gevent drivers against the same in-process wallet: the same calls, the same counts, no finding,
   nothing left in doubt, every balance reconciled.
2. The ways a session ends: unseated, broke, stopped, done; a live table.
3. For any seed and fault rates, a session and the end of play on a correct wallet leave no money or
   contract finding and nothing in doubt (Hypothesis).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import gevent
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.drive import endgame, session
from simulator.drive.delivery import Courier, Flow, Provision, Provisioned, Think, Unseated, run_sync
from simulator.drive.driver import Driver
from simulator.drive.inprocess import InProcessClient, InProcessWallet, SyncDriver
from simulator.drive.session import Ending, Floor, Left
from simulator.judge.ledger import FAILING, Ledger
from simulator.judge.stats import RunStats
from simulator.play.faults import FaultRates, LateDuplicates
from simulator.play.players import PlayerProfile, make_players
from simulator.play.rounds import Launch, RetryPolicy, Seat, TxIds, player_ids
from simulator.play.scenario import LiveSettings, Scenario
from simulator.protocol import dialects
from simulator.protocol.dialects import Dialect
from simulator.protocol.money import currency

from .test_delivery import AsyncInProcess, Exact, FakeHttp, FakeProcess, Recording

SECRET = "k"
RETRY = RetryPolicy(max_attempts=4, base_s=0.001, cap_s=0.002)


@dataclass
class Tally:
    """A :class:`simulator.drive.session.Board` that keeps everything."""

    rounds: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seats: dict[str, Seat] = field(default_factory=dict)
    causes: Counter[str] = field(default_factory=Counter)
    owed: int = 0

    def error(self, text: str) -> None:
        self.errors.append(text)

    def seated(self, seat: Seat) -> None:
        self.seats[seat.player_id] = seat

    def unseated(self, player_id: str, cause: str, detail: str) -> None:
        self.causes[cause] += 1

    def unpaid(self, player_id: str, n: int) -> None:
        self.owed += n


def _plan(late: bool = True, rates: dict[str, float] | None = None) -> Exact:
    """Every fault kind but two rounds at once; a deadline of 0 ms (a timed-out call is never waited for)."""
    base = {"duplicate": 0.08, "concurrent_duplicate": 0.08, "timeout": 0.08, "lost_response": 0.08,
            "retry_storm": 0.1, "partial_batch": 0.1, "reorder": 0.1, "late_win": 0.1, "invalid": 0.6,
            "concurrent_rounds": 0.0, "late_duplicate": 0.2 if late else 0.0} | (rates or {})
    return Exact(FaultRates(**base), storm_size=6, timeout_deadline_ms=(0, 0), late_duplicate_min_calls=3)


def _scenario(plan: Exact, rounds: int = 12, live: LiveSettings | None = None) -> Scenario:
    return Scenario("session-test", rounds=rounds, think_time_ms=(0, 0), game_mix={"slot": 2, "roulette": 1},
                    faults=plan, retry=RETRY, live=live or LiveSettings())


@dataclass
class Table:
    """One driver's world: a fresh in-process wallet, the dialect (recording every call it encodes)."""

    name: str
    plan: Exact
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.wallet = InProcessWallet(SECRET, wire=dialects.get(self.name, SECRET))
        self.good = cast(Dialect, Recording(dialects.get(self.name, SECRET), "good", self.calls))
        self.bad = cast(Dialect, Recording(dialects.get(self.name, SECRET + "-wrong"), "bad", self.calls))
        self.semantics = dialects.semantics_of(self.good)
        self.ledger = Ledger(semantics=self.semantics)
        self.board = Tally()

    def floor(self, scenario: Scenario) -> Floor:
        return Floor(scenario, self.semantics, True, dialects.batching(self.good) is not None, 3600)

    def provision(self, p: Provision) -> Provisioned:
        if p.again is not None:
            return Launch(p.again.player_id, p.again.currency, self.wallet.launch(p.again.player_id))
        pid = p.profile.player_id
        self.wallet.create_player(pid, p.profile.currency, p.profile.bankroll)
        return Launch(pid, currency(p.profile.currency), self.wallet.launch(pid), balance=p.profile.bankroll)

    def ids(self, pid: str) -> TxIds:
        return player_ids(pid, self.semantics, "run")

    def sessions(self, courier: Courier, scenario: Scenario) -> list[Flow[Left]]:
        profiles = make_players(5, 2, currencies=("EUR",), id_prefix="s")
        return [session.player(courier, self.floor(scenario), self.board, p, random.Random(n), self.ids,
                               scenario.rounds) for n, p in enumerate(profiles)]

    def end(self, courier: Courier, seats: dict[str, Seat]) -> list[Flow[Any]]:
        """The end of play, in order: late duplicates, settlement, what is left flagged, final reads."""
        settle_ids = {pid: TxIds(f"{pid}-settle") for pid in seats}
        return [endgame.drain_late(courier, list(seats)),
                endgame.settle(courier, seats, self.semantics, settle_ids.__getitem__, self.board.rounds,
                               courier.clock() + 30),
                endgame.reconcile(courier, list(seats.values()))]


Result = tuple[list[tuple[Any, ...]], Table, list[Any]]


def _in_process(name: str, scenario: Callable[[Exact], Scenario]) -> Result:
    t = Table(name, _plan())
    driver = SyncDriver(InProcessClient(t.wallet, t.good), t.ledger, InProcessClient(t.wallet, t.bad), plan=t.plan,
                        late=LateDuplicates(t.plan), provision=t.provision)
    left = [driver.run(flow) for flow in t.sessions(driver.courier, scenario(t.plan))]
    ends = [driver.run(flow) for flow in t.end(driver.courier, t.board.seats)]
    return t.calls, t, left + ends


def _asyncio(name: str, scenario: Callable[[Exact], Scenario]) -> Result:
    t = Table(name, _plan())

    async def provision(p: Provision) -> Provisioned:
        return t.provision(p)

    async def play() -> list[Any]:
        driver = Driver(cast(Any, AsyncInProcess(InProcessClient(t.wallet, t.good))), t.ledger, RunStats(), t.plan,
                        cast(Any, AsyncInProcess(InProcessClient(t.wallet, t.bad))), provision=provision,
                        slots={"round": 1})
        left = [await driver.run(flow) for flow in t.sessions(driver.courier, scenario(t.plan))]
        ends = [await driver.run(flow) for flow in t.end(driver.courier, t.board.seats)]
        await driver.quiesce()
        return left + ends

    return t.calls, t, asyncio.run(play())


def _gevent(name: str, scenario: Callable[[Exact], Scenario]) -> Result:
    from loadtests.driver import GeventDriver

    t = Table(name, _plan())
    process = FakeProcess(t.ledger, t.good, t.bad, t.plan, LateDuplicates(t.plan))
    driver = GeventDriver(process, FakeHttp(t.wallet), provision=t.provision)

    def play() -> list[Any]:
        left = [driver.run(flow) for flow in t.sessions(driver.courier, scenario(t.plan))]
        return left + [driver.run(flow) for flow in t.end(driver.courier, t.board.seats)]

    return t.calls, t, gevent.spawn(play).get()


@pytest.mark.parametrize("name", ["canonical", "actions-hmac"])
def test_sessions_and_their_end_send_the_same_calls_through_every_driver(name: str) -> None:
    runs = {k: run(name, _scenario) for k, run in
            {"in-process": _in_process, "asyncio": _asyncio, "gevent": _gevent}.items()}
    base_calls, base, base_results = runs["in-process"]
    assert [r.why for r in base_results[:2]] == [Ending.DONE, Ending.DONE]
    assert base.board.rounds["settled"] > 0 and len(base.board.seats) == 2
    for k, (calls, t, results) in runs.items():
        assert t.ledger.anomaly_count == 0, (k, [f"{f.kind}: {f.message}" for f in t.ledger.findings[:3]])
        assert Counter(calls) == Counter(base_calls), (k, (Counter(calls) - Counter(base_calls)).most_common(3))
        assert t.board.rounds == base.board.rounds, k
        assert results[:2] == base_results[:2] or [r.why for r in results[:2]] == [Ending.DONE, Ending.DONE], k
        settled, failed_reads = results[3], results[4]
        assert settled is True and failed_reads == [], (k, results)
        assert endgame.flag_left(Courier(t.ledger, t.plan, lambda: 0.0, lambda f: None), t.board.seats) == 0
        for pid in t.board.seats:  # every balance as the ledger says it must be
            assert t.wallet.balance(pid) == t.ledger.books[pid].expected, (k, pid)
    assert any(op == "rollback" for op, *_ in base_calls)


def test_a_player_that_cannot_be_provisioned_is_unseated_with_its_cause_and_sends_nothing() -> None:
    t = Table("canonical", _plan(late=False))
    driver = SyncDriver(InProcessClient(t.wallet, t.good), t.ledger, plan=t.plan,
                        provision=lambda p: Unseated("admin API unreachable at http://x", "ConnectionRefused"))
    profile = make_players(1, 1, currencies=("EUR",))[0]
    left = driver.run(session.player(driver.courier, t.floor(_scenario(t.plan)), t.board, profile, random.Random(1),
                                     t.ids, 3))
    assert left == Left((), Ending.UNSEATED)
    assert t.board.causes == Counter({"admin API unreachable at http://x": 1}) and not t.calls


def test_a_player_who_cannot_afford_a_stake_leaves_broke() -> None:
    t = Table("canonical", _plan(late=False))
    driver = SyncDriver(InProcessClient(t.wallet, t.good), t.ledger, plan=t.plan, provision=t.provision)
    profile = dataclasses.replace(make_players(1, 1, currencies=("EUR",))[0], bankroll=0)
    left = driver.run(session.player(driver.courier, t.floor(_scenario(t.plan)), t.board, profile, random.Random(1),
                                     t.ids, 3))
    assert left.why is Ending.BROKE and [s.player_id for s in left.seats] == [profile.player_id]
    assert t.board.rounds == Counter({"player_broke": 1})


def test_play_that_stops_at_a_pause_ends_the_session_there() -> None:
    """A driver answers a :class:`Think` with False when play stops: the session ends at once, seated."""
    t = Table("canonical", _plan(late=False))
    driver = SyncDriver(InProcessClient(t.wallet, t.good), t.ledger, plan=t.plan, provision=t.provision)
    profile = make_players(1, 1, currencies=("EUR",))[0]
    flow = session.player(driver.courier, t.floor(_scenario(t.plan, rounds=50)), t.board, profile,
                          random.Random(1), t.ids, None)
    thinks = 0
    reply: object = None
    while True:  # the in-process primitives, but the third pause says play stops
        try:
            prim = flow.send(reply)
        except StopIteration as stop:
            left = cast(Left, stop.value)
            break
        if isinstance(prim, Think):
            thinks += 1
            reply = thinks < 3
        else:
            reply = run_sync(_one(prim), driver._transmit, provision=t.provision)
    assert left.why is Ending.STOPPED and len(left.seats) == 1
    assert 1 <= sum(n for k, n in t.board.rounds.items() if k != "relaunched") <= 2


def _one(prim: Any) -> Flow[Any]:
    return (yield prim)


def test_a_player_plays_its_rounds_then_is_done() -> None:
    t = Table("canonical", _plan(late=False, rates={"invalid": 0.0, "timeout": 0.0, "lost_response": 0.0}))
    driver = SyncDriver(InProcessClient(t.wallet, t.good), t.ledger, plan=t.plan, provision=t.provision)
    profile = dataclasses.replace(make_players(1, 1, currencies=("EUR",))[0], bankroll=10_000_000)
    left = driver.run(session.player(driver.courier, t.floor(_scenario(t.plan)), t.board, profile, random.Random(1),
                                     t.ids, 7))
    assert left.why is Ending.DONE
    assert sum(t.board.rounds.values()) == 7 and t.board.rounds["settled"] >= 5, t.board.rounds
    assert t.ledger.anomaly_count == 0


def test_a_live_table_seats_its_players_and_plays_shared_rounds() -> None:
    t = Table("canonical", _plan(late=False))
    driver = SyncDriver(InProcessClient(t.wallet, t.good), t.ledger, plan=t.plan, provision=t.provision)
    scenario = _scenario(t.plan, live=LiveSettings(tables=1, seats=4, bets_per_player=2, window_ms=0))
    players = [(i, dataclasses.replace(p, bankroll=5_000_000))
               for i, p in enumerate(make_players(2, 4, currencies=("EUR",), id_prefix="t"))]
    left = driver.run(session.table(driver.courier, t.floor(scenario), t.board, "table0", players, random.Random(3),
                                    t.ids, TxIds("run-table0"), 5))
    assert left.why is Ending.DONE and len(left.seats) == 4
    assert t.board.rounds["live_rounds"] == 5 and t.ledger.anomaly_count == 0
    assert {s.player_id for s in left.seats} == {p.player_id for _, p in players}


@settings(deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       rates=st.fixed_dictionaries({k: st.sampled_from([0.0, 0.05, 0.15]) for k in
                                    ("duplicate", "concurrent_duplicate", "timeout", "lost_response", "retry_storm",
                                     "partial_batch")} |  # the delivery faults add up to at most 1
                                   {k: st.sampled_from([0.0, 0.2, 0.6]) for k in
                                    ("reorder", "late_win", "invalid", "late_duplicate")}),
       name=st.sampled_from(["canonical", "actions-hmac"]))
def test_a_session_and_the_end_of_play_on_a_correct_wallet_leave_no_finding_and_nothing_in_doubt(
        seed: int, rates: dict[str, float], name: str) -> None:
    t = Table(name, _plan(rates=rates))
    driver = SyncDriver(InProcessClient(t.wallet, t.good), t.ledger, InProcessClient(t.wallet, t.bad), plan=t.plan,
                        late=LateDuplicates(t.plan) if rates["late_duplicate"] else None, provision=t.provision)
    profile: PlayerProfile = make_players(seed, 1, currencies=("EUR",))[0]
    driver.run(session.player(driver.courier, t.floor(_scenario(t.plan)), t.board, profile, random.Random(seed),
                              t.ids, 6))
    results = [driver.run(flow) for flow in t.end(driver.courier, t.board.seats)]
    assert [f for f in t.ledger.findings if f.kind in FAILING] == []
    assert results[1] is True and results[2] == []
    assert endgame.in_doubt(driver.courier, t.board.seats) == []
