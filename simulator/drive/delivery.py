"""Delivery as data, interpreted once: round steps become requests for a handful of primitives.

Rounds (:mod:`simulator.play.rounds`) yield steps — ``Send``, ``Batch``, ``Sleep``, ``Parallel`` — and
the fault plan (:meth:`simulator.play.faults.FaultPlan.decide`) turns each call or batch into one
:class:`~simulator.play.faults.Decision`: how many copies, at once or in turn, the deadline, which
answer is read, what the ledger may see, the signer.  :class:`Courier` carries both out, with the
ledger's bookkeeping, the late-duplicate queue and the statistics' verdict, as a generator that
yields *primitives* and receives their results (h11's sans-I/O style; httpx carries one auth
flow through its sync and async transports the same way):

* :class:`Transmit` — send one request (one call, or a batch), reply with its :class:`Answer`;
* :class:`Record` — the exchange just transmitted, judged: report it (always right after its
  ``Transmit``, so a Locust driver can mark the request it still holds);
* :class:`Gather` — run several flows at once, reply with their results in order;
* :class:`Pause` — sleep;
* :class:`Within` — run a flow; if it has not ended by a deadline reply :data:`LATE` and let it
  finish in the background (its answer still reaches the ledger);
* :class:`Quiesce` — wait (bounded) for what :class:`Within` left in the background;
* :class:`Hold` — run a flow holding one of the driver's slots (a round's, a seating's: how many
  run at once, so that a queued round waits before its first call, never inside a client timeout);
* :class:`Think` — a player's pause between rounds, cut short when play stops; reply whether play
  goes on (where a Locust user gives the greenlet back to Locust's own wait);
* :class:`Provision` — have a player provisioned and a launch token issued (the admin API, or a
  players file's row), reply a :class:`~simulator.play.rounds.Launch` or an :class:`Unseated`.

Players' sessions (:mod:`simulator.drive.session`) and the end of play (:mod:`simulator.drive.endgame`)
are flows over the same primitives.

The asyncio driver (:mod:`simulator.drive.driver`), the gevent one for Locust (:mod:`loadtests.driver`)
and the in-process one (:mod:`simulator.drive.inprocess`) implement only these, so they deliver every
fault alike: a new fault kind is written in the fault plan, never in a driver.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias, TypeVar, cast

from ..judge.ledger import FAILING, Anomaly, Evidence, Ledger, describe
from ..play.faults import PLAIN, Decision, Due, FaultPlan, LateDuplicates, Read, answered, as_due
from ..play.players import PlayerProfile
from ..play.rounds import Batch, Launch, Parallel, Seat, Send, Sleep, Step, balance_call
from ..protocol.calls import MONEY_OPS, Ok, Outcome, Rejected, Unknown, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.frozen import quick_init

T = TypeVar("T")


@quick_init
@dataclass(frozen=True, slots=True)
class Transmit:
    """Send one request — ``calls[0]`` alone, or ``calls`` as the dialect's batch — and reply with
    its :class:`Answer` (one outcome per call; the client's own timeout applies)."""

    calls: tuple[WalletCall, ...]
    batch: bool = False
    bad_signature: bool = False
    """Sign it with the wrong secret."""
    name: str = ""
    """The statistics row: the operation, or ``batch``."""


@quick_init
@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for a :class:`Transmit`: one outcome per call, and the raw evidence."""

    outcomes: tuple[Outcome, ...]
    latency_ms: float
    status: int | None = None
    body: bytes = b""


@quick_init
@dataclass(frozen=True, slots=True)
class Record:
    """The exchange just transmitted, judged by the ledger: report it (reply None)."""

    name: str
    label: str
    """``ok``, the refusal's code, or ``unknown`` (of the outcome that stands for the request)."""
    latency_ms: float
    why: str | None
    """Why a load test counts the exchange as a failure (None: a success), :func:`judge`."""
    step: Send | Batch
    answer: Answer


@dataclass(frozen=True, slots=True)
class Gather:
    """Run these flows at once; reply with the list of their results, in order."""

    flows: tuple[Flow[object], ...]


@dataclass(frozen=True, slots=True)
class Pause:
    """Sleep this long (reply None)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Within:
    """Run ``flow``; reply with its result if it ends within ``deadline_s``, else with :data:`LATE`
    and let it go on in the background (a driver's ``quiesce`` waits for it)."""

    flow: Flow[object]
    deadline_s: float


@dataclass(frozen=True, slots=True)
class Quiesce:
    """Wait for the flows :class:`Within` left running, at most ``timeout_s`` (None: until they end);
    reply None.  Their answers still reach the ledger: the end of play waits for them."""

    timeout_s: float | None = None


ROUND: Final = "round"
"""The slot a round (or a player's settlement, or final read) holds: as many at once as the run's
concurrency, the client's connection pool."""
SEAT: Final = "seat"
"""The slot a player's seating holds (provisioning and authenticate: a few dozen at once)."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Run ``flow`` holding one of the driver's ``slot``s (:data:`ROUND`, :data:`SEAT`); reply its
    result.  A driver whose concurrency is bounded elsewhere (a Locust user is one player) just runs it."""

    flow: Flow[object]
    slot: str = ROUND


def held(flow: Flow[T], slot: str = ROUND) -> Flow[T]:
    """``flow`` as a flow that holds a ``slot`` while it runs (for :class:`Gather`)."""
    return cast(T, (yield Hold(flow, slot)))


@dataclass(frozen=True, slots=True)
class Think:
    """A player's pause between rounds, cut short when play stops; reply True to play on, False when
    play stops (``Think(0)`` only asks)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Provision:
    """Have a player provisioned (or found: ``index`` is its row of a players file) and a launch token
    issued; ``again``: only a new launch token, for a player whose session ran out.  Reply a
    :class:`~simulator.play.rounds.Launch`, an :class:`Unseated`, or None when this run cannot (a
    relaunch without an admin API)."""

    profile: PlayerProfile
    index: int = 0
    again: Seat | None = None


@dataclass(frozen=True, slots=True)
class Unseated:
    """Why a :class:`Provision` failed: the likely ``cause`` (a person's next step) and what happened."""

    cause: str
    detail: str = ""


Provisioned: TypeAlias = Launch | Unseated | None


class _Late:
    def __repr__(self) -> str:
        return "LATE"


LATE: Final = _Late()
"""What :class:`Within` replies when the deadline passed first."""

Primitive: TypeAlias = Transmit | Record | Gather | Pause | Within | Quiesce | Hold | Think | Provision
Flow: TypeAlias = Generator[Primitive, object, T]

BENIGN: Final = frozenset({ErrorCode.SESSION_EXPIRED, ErrorCode.TX_ROLLED_BACK})
"""Refusals a provider meets in normal play: a session that ran out (the game relaunches), a
bet whose rollback overtook it on another connection."""


def label(outcome: Outcome) -> str:
    """An outcome in one word, for the statistics' rows."""
    if isinstance(outcome, Ok):
        return "ok"
    if isinstance(outcome, Rejected):
        return str(outcome.code)
    return "unknown"


def judge(outcome: Outcome, expect: ErrorCode | Due | None, flagged: list[str]) -> str | None:
    """Why this exchange is a failure in a load test's statistics (None: a success).

    Ok, or a refusal that was due (any code of a rule the call breaks: which one is the ledger's to
    judge), or one a provider meets in normal play: a success; a refusal nobody asked for, an
    acceptance where a refusal was due, no answer, or one the ledger found a money or contract
    finding in: a failure."""
    if flagged:
        return f"anomaly: {', '.join(flagged)}"
    if isinstance(outcome, Unknown):
        return f"no definitive answer: {outcome.reason}"
    due = as_due(expect)
    if isinstance(outcome, Rejected):
        if due is not None:
            return None
        if outcome.code in BENIGN or outcome.code is ErrorCode.UNMAPPED:
            return None  # an unmapped code is some refusal: the ledger judged it (flagged above if not due)
        return f"refused {outcome.code} (not due)"
    if due is not None and due.usual is not ErrorCode.TX_ROLLED_BACK:
        return f"accepted ({due.usual} was due)"
    return None


def _newly_flagged(counts: dict[Anomaly, int], before: tuple[int, ...]) -> list[str]:
    """The failing kinds whose count rose since ``before`` (the counts' values then, in their order).

    A tuple of the values is the cheapest snapshot per call (a dict copy and a scan of every kind
    cost ~2 µs), and the usual call, with nothing flagged, stops at the comparison.  A dict keeps
    its keys in insertion order, so a kind added since then is at the end and counts from 0."""
    after = tuple(counts.values())
    if after == before:
        return []
    before = before + (0,) * (len(after) - len(before))
    return [str(k) for k, n0, n in zip(counts, before, after, strict=True) if n > n0 and k in FAILING]


class Tally(Protocol):
    """Where the calls sent are counted (a late duplicate waits for a number of them); a Locust
    process shares one among its users."""

    sent: int


@dataclass(slots=True)
class Count:
    """A tally of its own (one driver, one count)."""

    sent: int = 0


@dataclass(eq=False)
class Courier:
    """Carries out round steps and the fault plan's decisions over the primitives (no I/O here).

    ``clock``: a monotonic clock (the late-duplicate queue's); ``on_fault``: a fault injected."""

    ledger: Ledger
    plan: FaultPlan
    clock: Callable[[], float]
    on_fault: Callable[[str], None]
    late: LateDuplicates | None = None
    """The provider's retry queue for ``late_duplicate`` (None: the fault is off)."""
    tally: Tally = field(default_factory=Count)

    def decide(self, step: Send | Batch) -> Decision:
        if isinstance(step, Send):
            return self.plan.decide(step.delivery, step.call.tx_id, step.purpose)
        return self.plan.decide(step.delivery, step.calls[0].tx_id, step.purpose, len(step.calls))

    def drive(self, gen: Generator[Step, object, object]) -> Flow[object]:
        """Run a round generator to its end; its result is the flow's."""
        reply: object = None
        while True:
            try:
                step = gen.send(reply)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, Send):
                d = self.decide(step)
                if d is PLAIN:
                    # Almost every call: exchange()'s three steps here, not two generators deeper (each
                    # primitive would pass up through deliver's and exchange's frames, and back down).
                    token, transmit = self._send(step, d)
                    answer = yield transmit
                    assert isinstance(answer, Answer)
                    yield self._judged(step, d, token, answer)
                    reply = answer.outcomes[0]
                else:
                    reply = (yield from self._deliver(step, d))[0]
            elif isinstance(step, Batch):
                reply = yield from self.deliver(step)
            elif isinstance(step, Sleep):
                if step.seconds > 0:
                    yield Pause(step.seconds)
                reply = None
            elif isinstance(step, Parallel):
                reply = yield Gather(tuple(self.drive(g) for g in step.rounds))
            else:  # pragma: no cover
                raise TypeError(f"a round yielded {step!r}")

    def deliver(self, step: Send | Batch) -> Flow[tuple[Outcome, ...]]:
        """Deliver one call or batch as the fault plan decides; the outcomes the provider reads."""
        return (yield from self._deliver(step, self.decide(step)))

    def _deliver(self, step: Send | Batch, d: Decision) -> Flow[tuple[Outcome, ...]]:
        if d.fault is not None:
            self.on_fault(d.fault)
        if d.deadline_s is not None:
            got = yield Within(self.exchange(step, d), d.deadline_s)
            if got is LATE:
                return self._unread(step, d)
            assert isinstance(got, tuple)
            answers: list[tuple[Outcome, ...]] = [got]
        elif d.copies == 1:
            answers = [(yield from self.exchange(step, d))]
        elif d.concurrent:
            gathered = yield Gather(tuple(self.exchange(step, d) for _ in range(d.copies)))
            assert isinstance(gathered, list)
            answers = gathered
        else:
            answers = []
            for _ in range(d.copies):
                answers.append((yield from self.exchange(step, d)))
        if d.read is Read.NONE:
            return self._unread(step, d)
        read = answered(answers) if d.read is Read.ANY else answers[0]
        if d.actions_read is not None:
            return read[:d.actions_read] + self._unread(step, d)[d.actions_read:]
        return read

    @staticmethod
    def _unread(step: Send | Batch, d: Decision) -> tuple[Outcome, ...]:
        unknown = Unknown(d.unread)
        return (unknown,) if isinstance(step, Send) else tuple(unknown for _ in step.calls)

    def exchange(self, step: Send | Batch, d: Decision) -> Flow[tuple[Outcome, ...]]:
        """One request: the ledger told what is sent and what came back (even an answer the
        provider does not read), the exchange recorded, an acknowledged call offered to the
        late-duplicate queue."""
        if isinstance(step, Send):
            token, transmit = self._send(step, d)
            answer = yield transmit
            assert isinstance(answer, Answer)
            yield self._judged(step, d, token, answer)
            return answer.outcomes
        ledger = self.ledger
        tokens = ledger.begin_batch(step.calls)
        answer = yield Transmit(step.calls, True, False, "batch")
        assert isinstance(answer, Answer)
        before = tuple(ledger.counts.values())
        shown = ledger.end_batch(tokens, step.calls, answer.outcomes, visible=d.visible, read=d.actions_read,
                                 latency_ms=answer.latency_ms, status=answer.status, response=answer.body)
        flagged = _newly_flagged(ledger.counts, before)
        yield Record("batch", label(shown), answer.latency_ms, judge(shown, None, flagged), step, answer)
        return answer.outcomes

    def _send(self, step: Send, d: Decision) -> tuple[int, Transmit]:
        """A call's request, the ledger told it is sent (:meth:`exchange`'s first step)."""
        call = step.call
        token = self.ledger.begin(call, step.expect, rule=step.rule)
        self.tally.sent += 1
        return token, Transmit((call,), False, d.bad_signature, str(call.op))

    def _judged(self, step: Send, d: Decision, token: int, answer: Answer) -> Record:
        """The ledger told what came back for a call (:meth:`exchange`'s second step), the exchange
        judged for the statistics, an acknowledged call offered to the late-duplicate queue."""
        ledger, call = self.ledger, step.call
        before = tuple(ledger.counts.values())
        shown = answer.outcomes[0]
        ledger.end(token, call, shown, expect=step.expect, visible=d.visible, latency_ms=answer.latency_ms,
                   status=answer.status, response=answer.body)
        record = Record(str(call.op), label(shown), answer.latency_ms,
                        judge(shown, step.expect, _newly_flagged(ledger.counts, before)), step, answer)
        if self.late is not None and d.visible and isinstance(shown, Ok) and step.expect is None \
                and call.op in MONEY_OPS and not step.purpose.startswith(("late", "settle")):
            self.late.offer(call, self.clock(), self.tally.sent)
        return record

    def late_duplicates(self, player_id: str, *, drain: bool = False) -> Flow[int]:
        """Send the player's due late duplicates (``drain``: every one still queued), one after the other."""
        if self.late is None:
            return 0
        late = self.late
        calls = late.drain(player_id) if drain else late.due(player_id, self.clock(), self.tally.sent)
        for call in calls:
            self.on_fault("late_duplicate")
            yield from self.deliver(Send(call, purpose="late_duplicate"))
        return len(calls)


    def reconcile(self, seat: Seat) -> Flow[str | None]:
        """The end of a player: its balance read once more, alone, and compared with what the wallet
        must hold.  Returns why the read failed (None: it was read; a mismatch is the ledger's finding)."""
        call = balance_call(seat)
        answer = yield Transmit((call,), False, False, "balance")
        assert isinstance(answer, Answer)
        outcome = answer.outcomes[0]
        why: str | None = None
        failed: str | None = None
        if isinstance(outcome, Ok):
            before = self.ledger.anomaly_count
            self.ledger.reconcile(seat.player_id, outcome, answer.latency_ms)
            if self.ledger.anomaly_count > before:
                why = "anomaly: the final balance disagrees with the ledger"
        else:
            if isinstance(outcome, Rejected):
                self.ledger.balance_refused(seat.player_id, outcome, Evidence(
                    {"op": "balance", "player_id": seat.player_id}, describe(outcome), round(answer.latency_ms, 3),
                    answer.status, answer.body[:500].decode("utf-8", "replace")))
            failed = f"{seat.player_id}: final balance read failed: {describe(outcome)}"
            why = f"final balance read failed: {label(outcome)}"
        yield Record("balance", label(outcome), answer.latency_ms, why, Send(call, purpose="reconcile"), answer)
        return failed


def run_sync(flow: Flow[T], transmit: Callable[[Transmit], Answer], *,
             on_record: Callable[[Record], None] = lambda r: None, latency_s: float = 0.005,
             provision: Callable[[Provision], Provisioned] = lambda p: None) -> T:
    """Carry out a flow in one thread, in order: copies sent "at once" go one after the other; a
    request takes ``latency_s`` of simulated time, so a deadline shorter than that always passes
    first (the default, 5 ms, is above every default deadline: a timed-out call lands and its
    answer is not read, the worst case for a wallet); pauses take no time and play always goes on
    (a session run here needs a number of rounds)."""
    reply: object = None
    again = functools.partial(run_sync, transmit=transmit, on_record=on_record, latency_s=latency_s,
                              provision=provision)
    while True:
        try:
            p = flow.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if isinstance(p, Transmit):
            reply = transmit(p)
        elif isinstance(p, Record):
            on_record(p)
            reply = None
        elif isinstance(p, Gather):
            reply = [again(f) for f in p.flows]
        elif isinstance(p, Within):
            done = again(p.flow)
            reply = done if latency_s <= p.deadline_s else LATE
        elif isinstance(p, Hold):
            reply = again(p.flow)
        elif isinstance(p, Provision):
            reply = provision(p)
        elif isinstance(p, Think):
            reply = True
        else:
            reply = None  # Pause: simulated time; Quiesce: nothing runs in the background here
