"""An in-process transport: the simulator's dialect talks to the reference wallet's dialect
and rules in memory, with no network (h11's trick of pairing both sides in one process).

Tests of rounds, faults and the ledger run on it in milliseconds, and a broken
wallet for a test is one subclass away.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ..judge.ledger import Ledger
from ..play.faults import FaultPlan, LateDuplicates
from ..play.rounds import Send, Step
from ..protocol.calls import Exchange, Ok, Outcome, WalletCall
from ..protocol.dialects import Dialect, HttpRequest, HttpResponse, batching
from ..protocol.dialects.canonical import CanonicalDialect
from ..wallet import engine
from ..wallet.memory import MemoryRepo
from .client import BatchExchange
from .delivery import Answer, Courier, Flow, Provision, Provisioned, Record, Transmit, run_sync

T = TypeVar("T")


@dataclass
class InProcessWallet:
    """The reference wallet's rules on a memory repository, reached through encoded bytes."""

    secret: str = "in-process"
    clock: Callable[[], float] = time.time
    repo: MemoryRepo = field(default_factory=MemoryRepo)

    wire: Dialect | None = None
    """The wallet's dialect (None: the canonical one with ``secret``)."""

    def __post_init__(self) -> None:
        self.dialect: Dialect = self.wire or CanonicalDialect(self.secret)

    def handle(self, request: HttpRequest) -> HttpResponse:
        now = self.clock()
        batch = batching(self.dialect)
        decoded = batch.decode_batch(request, now) if batch is not None else self.dialect.decode_request(request, now)
        if isinstance(decoded, list):
            assert batch is not None
            return batch.encode_batch_response(decoded, self.execute_batch(decoded, now))
        if not isinstance(decoded, WalletCall):
            return self.dialect.encode_response(None, decoded)
        return self.dialect.encode_response(decoded, self.execute(decoded, now))

    def execute_batch(self, calls: list[WalletCall], now: float) -> list[Outcome]:
        """A batch's calls in order, each under the normal rules; the first that is not a success
        stops the rest (as the reference wallet's service does)."""
        outcomes: list[Outcome] = []
        for call in calls:
            outcomes.append(self.execute(call, now))
            if not isinstance(outcomes[-1], Ok):
                break
        return outcomes

    def execute(self, call: WalletCall, now: float) -> Outcome:
        """Override to make a broken wallet."""
        self.repo.journal.clear()
        return engine.execute(self.repo, call, now)

    # admin conveniences for tests
    def create_player(self, player_id: str, currency: str, balance: int) -> None:
        engine.create_player(self.repo, player_id, currency, balance, self.clock())

    def launch(self, player_id: str, ttl_s: int = 3600) -> str:
        token = engine.issue_token(self.repo, player_id, ttl_s, self.clock())
        assert isinstance(token, str)
        return token

    def balance(self, player_id: str) -> int:
        row = self.repo.player(player_id)
        assert row is not None
        return row.balance


@dataclass
class InProcessClient:
    """What :class:`simulator.drive.client.WalletClient` is, minus the network."""

    wallet: InProcessWallet
    dialect: Dialect

    def exchange(self, call: WalletCall) -> Exchange:
        req = self.dialect.encode_call(call, self.wallet.clock())
        started = time.perf_counter()
        resp = self.wallet.handle(req)
        outcome = self.dialect.decode_response(call, resp)
        return Exchange(call, outcome, (time.perf_counter() - started) * 1000, req.body, resp.status, resp.body)

    def exchange_batch(self, calls: Sequence[WalletCall]) -> BatchExchange:
        dialect = batching(self.dialect)
        assert dialect is not None, f"dialect {self.dialect.name} does not batch"
        req = dialect.encode_batch(calls, self.wallet.clock())
        started = time.perf_counter()
        resp = self.wallet.handle(req)
        outcomes = tuple(dialect.decode_batch_response(calls, resp))
        return BatchExchange(tuple(calls), outcomes, (time.perf_counter() - started) * 1000, req.body, resp.status,
                             resp.body)


@dataclass
class SyncDriver:
    """The primitives of :mod:`simulator.drive.delivery` in one thread, against an in-process wallet.

    Every fault is delivered as by the asyncio and gevent drivers (the same
    :class:`~simulator.drive.delivery.Courier`): a storm sends ``storm_size`` copies, a batch is one
    request.  Copies sent "at once" go one after the other (deterministic); a request takes
    ``latency_s`` of simulated time, so a timed-out call lands and its answer is not read whenever
    its deadline is shorter (every default deadline is); pauses take no time.
    """

    client: InProcessClient
    ledger: Ledger
    bad_signer: InProcessClient | None = None
    sent: list[tuple[Send, Exchange]] = field(default_factory=list)
    """Every call sent, with what came back (a batch's calls one by one, with its delivery)."""
    plan: FaultPlan = field(default_factory=FaultPlan)
    """Copies and deadlines (a round's faults say which delivery; the plan says what it means)."""
    late: LateDuplicates | None = None
    faults: Counter[str] = field(default_factory=Counter)
    latency_s: float = 0.005
    provision: Callable[[Provision], Provisioned] = field(default=lambda p: None)
    """How players are provisioned for a session (:mod:`simulator.drive.session`)."""

    def __post_init__(self) -> None:
        self.courier = Courier(self.ledger, self.plan, time.monotonic, self._fault, self.late)

    def _fault(self, kind: str) -> None:
        self.faults[kind] += 1

    def run(self, flow: Flow[T]) -> T:
        return run_sync(flow, self._transmit, on_record=self._record, latency_s=self.latency_s,
                        provision=self.provision)

    def deliver(self, send: Send) -> Outcome:
        return self.run(self.courier.deliver(send))[0]

    def drive(self, gen: Generator[Step, object, object]) -> object:
        return self.run(self.courier.drive(gen))

    def late_duplicates(self, player_id: str, *, drain: bool = False) -> int:
        return self.run(self.courier.late_duplicates(player_id, drain=drain))

    def _transmit(self, t: Transmit) -> Answer:
        client = (self.bad_signer if t.bad_signature else None) or self.client
        if t.batch:
            bx = client.exchange_batch(t.calls)
            return Answer(bx.outcome, bx.latency_ms, bx.status, bx.response_body)
        ex = client.exchange(t.calls[0])
        return Answer((ex.outcome,), ex.latency_ms, ex.status, ex.response_body)

    def _record(self, r: Record) -> None:
        a, step = r.answer, r.step
        sends = [step] if isinstance(step, Send) else [Send(c, step.delivery, purpose=step.purpose) for c in step.calls]
        for send, outcome in zip(sends, a.outcomes, strict=True):
            self.sent.append((send, Exchange(send.call, outcome, a.latency_ms, b"", a.status, a.body)))
