"""The gevent driver: the primitives of :mod:`simulator.drive.delivery` over Locust's fast HTTP client.

Rounds, faults, the ledger's bookkeeping and the late-duplicate queue are the core's
(:class:`simulator.drive.delivery.Courier`, the same for ``croupier run`` and the in-process driver);
this driver only sends a request, gathers greenlets, sleeps and leaves a greenlet running past a
deadline.  Every exchange is a row of Locust's statistics, named by operation (``batch`` for a
batch), marked a success or a failure as :func:`simulator.drive.delivery.judge` says: ok, a refusal that
was due or one a provider meets in normal play is a success; a refusal nobody asked for, an
acceptance where a refusal was due, no definitive answer, or an answer the ledger found a money or
contract finding in is a failure (a note never is).  Money and contract findings also get a row of
their own (type ``ANOMALY``, one per kind: the process's ``publish_anomalies``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar, cast

import gevent
from gevent.pool import Group

from simulator.drive.delivery import (
    LATE,
    Answer,
    Courier,
    Flow,
    Gather,
    Hold,
    Provision,
    Provisioned,
    Quiesce,
    Record,
    Think,
    Transmit,
    Within,
)
from simulator.judge.ledger import Ledger
from simulator.play.faults import FaultPlan, LateDuplicates
from simulator.play.rounds import Send, Step
from simulator.protocol.calls import Outcome, Unknown
from simulator.protocol.dialects import Dialect, HttpResponse, batching

from .hurry import join_bounded

T = TypeVar("T")
WALLET: Final = "wallet"


class Process(Protocol):
    """What the driver needs of its Locust process's share of the run (:class:`loadtests.process.Croupier`)."""

    ledger: Ledger
    dialect: Dialect
    bad_dialect: Dialect
    late: LateDuplicates | None
    sent: int
    faults: Counter[str]

    @property
    def plan(self) -> FaultPlan: ...

    @property
    def wallet_url(self) -> str: ...

    def count_call(self, op: str, result: str) -> None: ...

    def publish_anomalies(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Paused:
    """A session paused between rounds (:meth:`GeventDriver.advance`): Locust's user waits ``seconds``
    (its own ``wait_time``, where Locust may stop it), then resumes it."""

    seconds: float


class GeventDriver:
    """Delivers the calls of round generators through one Locust ``FastHttpSession``."""

    def __init__(self, process: Process, http: Any, request_type: str = WALLET,
                 provision: Callable[[Provision], Provisioned] = lambda p: None) -> None:
        self.c = process
        self.http = http
        self.request_type = request_type
        self.base = process.wallet_url
        self.provision = provision
        self.stopping = False
        """Set when the user is stopping: a :class:`Think` then says play stops."""
        self.background: set[gevent.Greenlet] = set()
        self.courier = Courier(process.ledger, process.plan, time.monotonic, self._fault, process.late, process)

    def _fault(self, kind: str) -> None:
        self.c.faults[kind] += 1

    def drive(self, gen: Generator[Step, object, object]) -> object:
        """Run a round generator to its end and return its result."""
        return self.run(self.courier.drive(gen))

    def deliver(self, send: Send) -> Outcome:
        return self.run(self.courier.deliver(send))[0]

    def late_duplicates(self, player_id: str, *, drain: bool = False) -> int:
        """Send the player's due late duplicates (``drain``: every one still queued)."""
        return self.run(self.courier.late_duplicates(player_id, drain=drain))

    def quiesce(self, timeout: float | None = None) -> None:
        """Wait for the answers the provider stopped waiting for (they still count for the ledger); a
        second interrupt ends the wait."""
        if self.background:
            join_bounded(list(self.background), timeout)

    def advance(self, flow: Flow[T], reply: object = None) -> T | Paused:
        """Run a session flow until its next pause between rounds (Locust's user then waits, as Locust
        users do between tasks) or its end; ``reply``: None for a new flow, else whether play goes on."""
        return self._run(flow, reply, suspend=True)

    # -- the primitives -------------------------------------------------------------------
    def run(self, flow: Flow[T]) -> T:
        return cast(T, self._run(flow, None, suspend=False))

    def _run(self, flow: Flow[T], reply: object, *, suspend: bool) -> T | Paused:
        while True:
            try:
                p = flow.send(reply)
            except StopIteration as stop:
                return cast(T, stop.value)
            if isinstance(p, Think):
                if self.stopping:
                    reply = False
                elif suspend and p.seconds > 0:
                    return Paused(p.seconds)
                else:
                    gevent.sleep(p.seconds)
                    reply = True
            elif isinstance(p, Hold):  # a Locust user is one player: its concurrency is Locust's
                reply = self.run(p.flow)
            elif isinstance(p, Provision):
                reply = self.provision(p)
            elif isinstance(p, Quiesce):
                self.quiesce(p.timeout_s)
                reply = None
            elif isinstance(p, Transmit):
                reply = self._transmit(p, flow)
            elif isinstance(p, Gather):
                group = Group()
                greenlets = [group.spawn(self.run, f) for f in p.flows]
                gevent.joinall(greenlets, raise_error=True)
                reply = [g.value for g in greenlets]
            elif isinstance(p, Within):
                g = gevent.spawn(self.run, p.flow)
                g.join(p.deadline_s)
                if g.ready():
                    reply = g.get()
                else:
                    self.background.add(g)
                    g.link(self.background.discard)
                    reply = LATE
            elif isinstance(p, Record):  # pragma: no cover - a Record follows its Transmit
                raise TypeError("a Record without its request")
            else:
                gevent.sleep(p.seconds)
                reply = None

    def _transmit(self, t: Transmit, flow: Flow[Any]) -> object:
        """One request, held open until the flow has judged it (its :class:`Record`): Locust counts
        it as a success or a failure when the request ends."""
        dialect = self.c.bad_dialect if t.bad_signature else self.c.dialect
        batch = batching(dialect) if t.batch else None
        assert batch is not None or not t.batch, f"dialect {dialect.name} does not batch"
        req = batch.encode_batch(t.calls, time.time()) if batch else dialect.encode_call(t.calls[0], time.time())
        started = time.perf_counter()
        with self.http.request(req.method, f"{self.base}/{req.path}", name=t.name, data=req.body,
                               headers=req.headers, catch_response=True) as resp:
            resp.request_meta["request_type"] = self.request_type
            latency = (time.perf_counter() - started) * 1000
            status = resp.status_code or None
            body = b""
            if not status:
                error = getattr(resp, "error", None)
                unknown = Unknown(type(error).__name__ if error is not None else "no response")
                outcomes: tuple[Outcome, ...] = tuple(unknown for _ in t.calls)
            else:
                body = resp.content or b""
                # Headers too when the dialect reads them (json-rsa signs its answers); copying them out of
                # geventhttpclient's Headers was ~5 µs per call, for a canonical answer that never needs them.
                headers = dict(resp.headers.items()) if resp.headers and dialect.reads_response_headers else {}
                answer = HttpResponse(status, headers, body)
                outcomes = tuple(batch.decode_batch_response(t.calls, answer)) if batch else \
                    (dialect.decode_response(t.calls[0], answer),)
            record = flow.send(Answer(outcomes, latency, status, body))
            assert isinstance(record, Record)
            if record.why is None:
                resp.success()
            else:
                resp.failure(record.why)
        self.c.count_call(record.name, record.label)
        self.c.publish_anomalies()
        return None
