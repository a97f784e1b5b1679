"""Delivery as data, interpreted once (:mod:`simulator.drive.delivery`).

1. The pure interpreter with a scripted transport: the copies sent are the decision's copies, the
   answer read is the one the decision names, a batch read in part gives its other actions Unknown.
2. One scenario with every fault kind and a fixed seed, played through the in-process, asyncio and
   gevent drivers against the same in-process wallet: the calls sent (operation, ids, amounts,
   signer, copies) are the same multiset.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import gevent
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.drive.delivery import LATE, Answer, Courier, Gather, Pause, Record, Transmit, Within, run_sync
from simulator.drive.driver import Driver
from simulator.drive.inprocess import InProcessClient, InProcessWallet, SyncDriver
from simulator.judge.ledger import Ledger
from simulator.judge.stats import RunStats
from simulator.play.faults import Delivery, FaultPlan, FaultRates, Invalid, LateDuplicates, Read
from simulator.play.rounds import (
    Batch,
    Parallel,
    Pay,
    Plan,
    RetryPolicy,
    RoundContext,
    Seat,
    Send,
    Sleep,
    Stake,
    Step,
    TxIds,
    play_round,
)
from simulator.protocol import dialects
from simulator.protocol.calls import Ok, Outcome, Rejected, Unknown, WalletCall
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import Dialect, HttpRequest, HttpResponse
from simulator.protocol.money import Money, currency

SECRET = "k"
EUR = currency("EUR")


def _bet(tx: str, amount: int = 100, rnd: str = "r1") -> WalletCall:
    return WalletCall.bet(tx, "p1", "s", "g", rnd, Money(amount, EUR))


def _win(tx: str, amount: int = 50, rnd: str = "r1") -> WalletCall:
    return WalletCall.win(tx, "p1", "s", "g", rnd, Money(amount, EUR), round_closed=True)


# -- 1. the pure interpreter, with a scripted transport --------------------------------------------


@dataclass
class Script:
    """A transport that answers from a script (one outcome per call, cycling), and keeps what it sent."""

    answers: list[Outcome]
    sent: list[Transmit] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def transmit(self, t: Transmit) -> Answer:
        self.sent.append(t)
        n = len(self.sent) - 1
        return Answer(tuple(self.answers[(n + i) % len(self.answers)] for i in range(len(t.calls))), 1.0, 200)


def _courier(plan: FaultPlan) -> tuple[Courier, Counter[str]]:
    ledger = Ledger()
    ledger.open("p1", "EUR", 10_000)
    faults: Counter[str] = Counter()
    return Courier(ledger, plan, time.monotonic, lambda k: faults.update([k])), faults


OK = Ok(Money(9_900, EUR), "w")
NO = Unknown("no answer")
REFUSED = Rejected(ErrorCode.INSUFFICIENT_FUNDS, "no")
SINGLE_KINDS = [d for d in Delivery if d is not Delivery.BAD_SIGNATURE]


@given(st.sampled_from(SINGLE_KINDS), st.integers(2, 12), st.lists(st.sampled_from([OK, NO, REFUSED]), min_size=1,
                                                                   max_size=12))
def test_copies_sent_are_the_decisions_and_the_answer_read_is_the_one_it_names(
        delivery: Delivery, storm: int, answers: list[Outcome]) -> None:
    plan = FaultPlan(storm_size=storm, timeout_deadline_ms=(5, 5))
    courier, faults = _courier(plan)
    script = Script(answers)
    send = Send(_bet("t1"), delivery, purpose="bet")
    d = courier.decide(send)
    got = run_sync(courier.deliver(send), script.transmit, on_record=script.records.append, latency_s=0.001)
    assert len(script.sent) == len(script.records) == d.copies
    assert all(t.calls == (send.call,) and not t.batch for t in script.sent)
    sent = [answers[i % len(answers)] for i in range(d.copies)]
    if d.read is Read.NONE:
        assert got == (Unknown(d.unread),)
    elif d.read is Read.ANY:
        assert got == (next((a for a in sent if not isinstance(a, Unknown)), sent[0]),)
    else:
        assert got == (sent[0],)
    assert sum(faults.values()) == (d.fault is not None)
    assert d.fault is None or d.fault == str(delivery)


def test_a_deadline_shorter_than_the_request_is_not_waited_for() -> None:
    courier, _ = _courier(FaultPlan(timeout_deadline_ms=(0, 0)))
    script = Script([OK])
    got = run_sync(courier.deliver(Send(_bet("t1"), Delivery.TIMEOUT)), script.transmit)
    assert got == (Unknown("provider stopped waiting (fault)"),) and len(script.sent) == 1
    courier, _ = _courier(FaultPlan(timeout_deadline_ms=(3, 3)))
    assert run_sync(courier.deliver(Send(_bet("t2"), Delivery.TIMEOUT)), Script([OK]).transmit,
                    latency_s=0.001) == (OK,)


def test_the_primitives_are_asked_for_as_the_decision_says() -> None:
    """The flow itself: a storm is one Gather of storm_size exchanges, a timeout one Within."""
    courier, _ = _courier(FaultPlan(storm_size=5))
    flow = courier.deliver(Send(_bet("t1"), Delivery.RETRY_STORM))
    first = next(flow)
    assert isinstance(first, Gather) and len(first.flows) == 5
    courier, _ = _courier(FaultPlan(timeout_deadline_ms=(2, 2)))
    within = next(courier.deliver(Send(_bet("t2"), Delivery.TIMEOUT)))
    assert isinstance(within, Within) and within.deadline_s == 0.002
    flow = courier.deliver(Send(_bet("t3"), Delivery.TIMEOUT))
    next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(LATE)
    assert done.value.value == (Unknown("provider stopped waiting (fault)"),)


def test_a_batch_is_one_request_and_a_lost_answer_is_unknown_for_each_action() -> None:
    courier, _ = _courier(FaultPlan())
    script = Script([OK])
    batch = Batch((_bet("t1"), _win("t2")), Delivery.LOST_RESPONSE)
    got = run_sync(courier.deliver(batch), script.transmit, on_record=script.records.append)
    assert [t.batch for t in script.sent] == [True] and script.sent[0].calls == batch.calls
    assert got == (Unknown("lost_response (fault)"),) * 2
    assert script.records[0].name == "batch"


def _inner() -> Generator[Step, object, str]:
    yield Send(_bet("t9"))
    return "done"


def _outer() -> Generator[Step, object, object]:
    yield Sleep(0.5)
    return (yield Parallel((_inner(), _inner())))


@given(st.integers(2, 6), st.text(min_size=1, max_size=8))
def test_a_batch_answered_in_part_is_read_in_part(actions: int, tx: str) -> None:
    """A partial answer: one request; the first answers read (at least one, never all), the others
    Unknown to the round; the ledger judges every action and says which the provider never saw."""
    courier, faults = _courier(FaultPlan())
    calls = tuple(_bet(f"{tx}-{i}", 1, rnd=tx) for i in range(actions))
    script = Script([OK])
    batch = Batch(calls, Delivery.PARTIAL_BATCH)
    d = courier.decide(batch)
    got = run_sync(courier.deliver(batch), script.transmit)
    assert d.actions_read is not None and 1 <= d.actions_read < actions
    assert len(script.sent) == 1 and faults == Counter({"partial_batch": 1})
    assert got == (OK,) * d.actions_read + (Unknown("partial_batch (fault)"),) * (actions - d.actions_read)
    tx_ = courier.ledger.books["p1"].txs
    assert [tx_[c.tx_id or ""].evidence[-1][5] for c in calls] == [i < d.actions_read for i in range(actions)]
    # One call has one action: answered whole, no fault.
    courier, faults = _courier(FaultPlan())
    assert courier.decide(Send(calls[0], Delivery.PARTIAL_BATCH)).actions_read is None
    assert run_sync(courier.deliver(Send(calls[0], Delivery.PARTIAL_BATCH)), Script([OK]).transmit) == (OK,)
    assert not faults


def test_partial_answers_on_the_actions_wire_are_clean_against_the_reference_rules() -> None:
    """The actions dialect's bet+win plays, a third of them answered for their bet only: the round
    sends the play again as it is (every action is idempotent), the ledger finds nothing wrong and
    nothing is left in doubt."""
    bench = Bench("actions-hmac", FaultPlan(FaultRates(partial_batch=0.3)))
    driver = bench.sync_driver(late=False)
    bench.play(driver.deliver, driver.drive, lambda p, d: driver.late_duplicates(p, drain=d))
    ledger, wallet = bench.ledger, bench.wallet
    assert driver.faults["partial_batch"] > 5
    assert ledger.anomaly_count == 0, [f"{f.kind}: {f.message}" for f in ledger.findings[:3]]
    assert not ledger.in_doubt()
    for pid, book in ledger.books.items():
        assert book.expected == wallet.balance(pid)


def test_sleep_and_parallel_steps_become_pause_and_gather() -> None:
    courier, _ = _courier(FaultPlan())
    flow = courier.drive(_outer())
    assert next(flow) == Pause(0.5)
    gather = flow.send(None)
    assert isinstance(gather, Gather) and len(gather.flows) == 2
    with pytest.raises(StopIteration) as done:
        flow.send(["done", "done"])
    assert done.value.value == ["done", "done"]


# -- 2. one scenario, three drivers ----------------------------------------------------------------


class Recording:
    """A dialect that keeps every call it encodes (with the signer's name), then encodes it as ``inner``."""

    def __init__(self, inner: Dialect, signer: str, calls: list[tuple[Any, ...]]) -> None:
        self._inner = inner
        self._signer = signer
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _keep(self, call: WalletCall, batched: bool) -> None:
        self._calls.append((call.op, call.player_id, call.tx_id, call.round_id, call.ref_tx_id,
                            call.amount.minor if call.amount else None, call.reason, self._signer, batched))

    def encode_call(self, call: WalletCall, now: float) -> HttpRequest:
        self._keep(call, False)
        return self._inner.encode_call(call, now)

    def encode_batch(self, calls: list[WalletCall], now: float) -> HttpRequest:
        for call in calls:
            self._keep(call, True)
        return self._inner.encode_batch(calls, now)  # type: ignore[attr-defined,no-any-return]


class Exact(FaultPlan):
    """Draws as any plan, but makes no overdraft: its amount is the last balance the provider read,
    which under real concurrency depends on the order answers come back in (not on the driver)."""

    def invalid(self, rng: random.Random, kinds: Sequence[Invalid] | None = None) -> Invalid | None:
        kind = FaultPlan.invalid(self, rng, kinds)
        return None if kind is Invalid.OVERDRAFT else kind


def _plan(dialect: str) -> FaultPlan:
    """Every fault kind at once; a deadline of 0 ms, so a timed-out call is never waited for in any driver."""
    rates = FaultRates(duplicate=0.08, concurrent_duplicate=0.08, timeout=0.08, lost_response=0.08, retry_storm=0.1,
                       partial_batch=0.1, reorder=0.1, late_win=0.1, invalid=0.6, concurrent_rounds=0.2,
                       late_duplicate=0.2)
    return Exact(rates, storm_size=6, timeout_deadline_ms=(0, 0))


def _both(a: Generator[Step, object, object], b: Generator[Step, object, object]) -> Generator[Step, object, object]:
    return (yield Parallel((a, b)))


def _scenario(name: str, deliver: Callable[[Send], Outcome], drive: Callable[[Generator[Step, object, object]], object],
              late: Callable[[str, bool], int], wallet: InProcessWallet, plan: FaultPlan) -> None:
    """Two players, fifteen rounds each (some two at once), late duplicates between rounds and at the end."""
    sem = dialects.semantics_of(dialects.get(name, SECRET))
    batch = dialects.batching(dialects.get(name, SECRET)) is not None
    rng = random.Random(11)
    tables = itertools.count()
    retry = RetryPolicy(max_attempts=4, base_s=0.001, cap_s=0.002)
    for n in range(2):
        pid = f"p{n}"
        wallet.create_player(pid, "EUR", 50_000)
        out = deliver(Send(WalletCall.authenticate(wallet.launch(pid), "g"), purpose="authenticate"))
        assert isinstance(out, Ok), out
        seat = Seat(pid, out.session_token or "", EUR, out.balance.minor)
        seat.opened(time.time(), time.time(), 3600, 5)
        ids = TxIds(pid)
        ctx = RoundContext(seat, "slot", rng, ids, plan, retry, batch=batch, semantics=sem)
        for _ in range(15):
            plan_ = Plan((Stake(rng.choice([1, 50, 200])),), (Pay(rng.choice([0, 100, 400])),))
            if plan.concurrent_rounds(rng):
                # A second table: its own draws and ids, so the rounds' interleaving changes nothing.
                table = RoundContext(seat, "roulette", random.Random(rng.random()), TxIds(f"{pid}-b{next(tables)}"), plan,
                                     retry, batch=batch, semantics=sem)
                drive(_both(play_round(ctx, plan_), play_round(table, Plan((Stake(10),), (Pay(20),)))))
            else:
                drive(play_round(ctx, plan_))
            late(pid, False)
        late(pid, True)


@dataclass
class Bench:
    """One driver's run: a fresh in-process wallet, the dialect (recording every call it encodes, with
    its signer), the fault plan and a ledger."""

    name: str
    plan: FaultPlan
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.wallet = InProcessWallet(SECRET, wire=dialects.get(self.name, SECRET))
        self.good = cast(Dialect, Recording(dialects.get(self.name, SECRET), "good", self.calls))
        self.bad = cast(Dialect, Recording(dialects.get(self.name, SECRET + "-wrong"), "bad", self.calls))
        self.ledger = Ledger(semantics=dialects.semantics_of(self.good))

    def play(self, deliver: Callable[[Send], Outcome], drive: Callable[[Generator[Step, object, object]], object],
             late: Callable[[str, bool], int]) -> None:
        _scenario(self.name, deliver, drive, late, self.wallet, self.plan)

    def sync_driver(self, late: bool = True) -> SyncDriver:
        return SyncDriver(InProcessClient(self.wallet, self.good), self.ledger, InProcessClient(self.wallet, self.bad),
                          plan=self.plan, late=LateDuplicates(self.plan) if late else None)


def _in_process(name: str) -> tuple[list[tuple[Any, ...]], Ledger, Counter[str]]:
    bench = Bench(name, _plan(name))
    driver = bench.sync_driver()
    bench.play(driver.deliver, driver.drive, lambda p, d: driver.late_duplicates(p, drain=d))
    return bench.calls, bench.ledger, driver.faults


@dataclass
class AsyncInProcess:
    """The asyncio driver's client, over the in-process wallet: each exchange takes a millisecond."""

    inner: InProcessClient

    async def exchange(self, call: WalletCall) -> Any:
        await asyncio.sleep(0.001)
        return self.inner.exchange(call)

    async def exchange_batch(self, calls: Any) -> Any:
        await asyncio.sleep(0.001)
        return self.inner.exchange_batch(calls)


def _asyncio(name: str) -> tuple[list[tuple[Any, ...]], Ledger, Counter[str]]:
    bench = Bench(name, _plan(name))
    stats = RunStats()
    loop = asyncio.new_event_loop()
    try:
        driver = Driver(cast(Any, AsyncInProcess(InProcessClient(bench.wallet, bench.good))), bench.ledger, stats,
                        bench.plan, cast(Any, AsyncInProcess(InProcessClient(bench.wallet, bench.bad))))

        def late(p: str, drain: bool) -> int:
            return loop.run_until_complete(driver.late_duplicates(p, drain=drain))

        bench.play(lambda s: loop.run_until_complete(driver.deliver(s)),
                   lambda g: loop.run_until_complete(driver.drive(g)), late)
        loop.run_until_complete(driver.quiesce())
    finally:
        loop.close()
    return bench.calls, bench.ledger, stats.faults


class FakeResponse:
    """What Locust's ``FastHttpSession.request(..., catch_response=True)`` yields, enough for the driver."""

    def __init__(self, resp: HttpResponse) -> None:
        self.status_code = resp.status
        self.content = resp.body
        self.headers = resp.headers
        self.request_meta: dict[str, Any] = {}
        self.verdict: str | None = "unmarked"

    def success(self) -> None:
        self.verdict = None

    def failure(self, why: str) -> None:
        self.verdict = why


@dataclass
class FakeHttp:
    """Locust's fast HTTP client, over the in-process wallet: each request takes a millisecond."""

    wallet: InProcessWallet
    marked: list[str | None] = field(default_factory=list)

    @contextlib.contextmanager
    def request(self, method: str, url: str, *, name: str, data: bytes, headers: dict[str, str],
                catch_response: bool) -> Iterator[FakeResponse]:
        gevent.sleep(0.001)
        resp = FakeResponse(self.wallet.handle(HttpRequest(method, url.removeprefix("mem://wallet/"), headers, data)))
        yield resp
        self.marked.append(resp.verdict)


@dataclass
class FakeProcess:
    ledger: Ledger
    dialect: Dialect
    bad_dialect: Dialect
    plan: FaultPlan
    late: LateDuplicates | None
    sent: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    wallet_url: str = "mem://wallet"

    def count_call(self, op: str, result: str) -> None:
        self.calls[f"{op}:{result}"] += 1

    def publish_anomalies(self) -> None:
        pass


def _gevent(name: str) -> tuple[list[tuple[Any, ...]], Ledger, Counter[str]]:
    from loadtests.driver import GeventDriver

    bench = Bench(name, _plan(name))
    process = FakeProcess(bench.ledger, bench.good, bench.bad, bench.plan, LateDuplicates(bench.plan))
    http = FakeHttp(bench.wallet)
    driver = GeventDriver(process, http)

    def play() -> None:
        bench.play(driver.deliver, driver.drive, lambda p, d: driver.late_duplicates(p, drain=d))
        driver.quiesce()

    gevent.spawn(play).get()
    assert "unmarked" not in http.marked
    return bench.calls, bench.ledger, process.faults


@pytest.mark.parametrize("name", ["canonical", "actions-hmac"])
def test_one_scenario_sends_the_same_calls_through_every_driver(name: str) -> None:
    runs = {"in-process": _in_process(name), "asyncio": _asyncio(name), "gevent": _gevent(name)}
    sent = {k: Counter(calls) for k, (calls, _, _) in runs.items()}
    base = sent["in-process"]
    for k, ledger_faults in runs.items():
        _, ledger, faults = ledger_faults
        assert ledger.anomaly_count == 0, (k, [f"{f.kind}: {f.message}" for f in ledger.findings[:3]])
        assert sent[k] == base, (k, (sent[k] - base).most_common(3), (base - sent[k]).most_common(3))
        assert faults == runs["in-process"][2], k
    faults = runs["in-process"][2]
    for kind in ("duplicate", "concurrent_duplicate", "timeout", "lost_response", "retry_storm", "late_duplicate"):
        assert faults[kind] > 0, (kind, faults)
    if name == "actions-hmac":
        assert any(batched for *_, batched in base) and faults["partial_batch"] > 0
    else:
        assert faults["invalid:signature"] > 0 and any(s == "bad" for *_, s, _ in base)
    # A storm sends storm_size copies of its call in every driver (the in-process one sent 4).
    assert max(base.values()) >= 6


def test_the_scenario_key_is_read() -> None:
    """``[faults] partial_batch`` in a scenario file: a rate like any delivery fault's."""
    from simulator.play import scenario

    sc = scenario.parse({"faults": {"partial_batch": 0.2, "timeout": 0.1}}, "t.toml")
    assert sc.faults.rates.partial_batch == 0.2
    with pytest.raises(scenario.ScenarioError):
        scenario.parse({"faults": {"partial_batch": 0.95, "timeout": 0.1}}, "t.toml")  # more than 1 in all
