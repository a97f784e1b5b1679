"""The asyncio driver: the primitives of :mod:`simulator.drive.delivery` over an aiohttp client.

Rounds, faults, the ledger's bookkeeping and the late-duplicate queue are the core's
(:class:`simulator.drive.delivery.Courier`, the same for Locust's gevent driver and the in-process
one); this driver only sends a request, gathers tasks, sleeps and leaves a task running past a
deadline.  Every exchange — including answers the provider chose not to wait for or never read —
reaches the ledger and the run statistics; the round sees only what a real provider would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar, cast

from ..judge.ledger import Ledger
from ..judge.stats import RunStats
from ..play.faults import FaultPlan, LateDuplicates
from ..play.rounds import Send, Step
from ..protocol.calls import Outcome
from .client import WalletClient
from .delivery import (
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

T = TypeVar("T")


class StopSignal(asyncio.Event):
    """The run's stop event; :meth:`pause` waits on it without a task of its own per wait."""

    def __init__(self) -> None:
        super().__init__()
        self._pauses: set[asyncio.Future[None]] = set()

    def set(self) -> None:
        super().set()
        for waiter in list(self._pauses):
            _wake(waiter)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the run is stopped meanwhile."""
        if self.is_set():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = waiter.get_loop().call_later(seconds, _wake, waiter)
        self._pauses.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._pauses.discard(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _settled(task: asyncio.Task[object]) -> None:
    """A flow left in the background ended: what it raised is retrieved (asyncio would complain) and
    dropped — its exchanges already reached the ledger, and nobody waits for its result."""
    if not task.cancelled():
        task.exception()


async def _nobody(_: Provision) -> Provisioned:
    return None


@dataclass
class Driver:
    client: WalletClient
    ledger: Ledger
    stats: RunStats
    faults: FaultPlan
    bad_signer: WalletClient | None = None
    started: float = field(default_factory=time.monotonic)
    background: set[asyncio.Task[object]] = field(default_factory=set)
    late: LateDuplicates | None = None
    """The provider's retry queue for ``late_duplicate`` (None: the fault is off)."""
    sent: int = 0
    """Calls sent so far (a late duplicate waits for a number of them)."""
    stop: StopSignal = field(default_factory=StopSignal)
    """Set when play stops: a :class:`Think` ends at once and says so."""
    provision: Callable[[Provision], Awaitable[Provisioned]] = _nobody
    """How players are provisioned (the run's admin API or players file)."""
    slots: Mapping[str, int] = field(default_factory=dict)
    """How many flows may hold each slot at once (:class:`Hold`; a slot not named here is unbounded)."""

    def __post_init__(self) -> None:
        self.stats.start(self.started)  # the report's second 0, and the findings' clock
        self.ledger.on_flag = self.stats.anomaly
        if self.late is None and self.faults.rates.late_duplicate > 0:
            self.late = LateDuplicates(self.faults)
        self.courier = Courier(self.ledger, self.faults, time.monotonic, self.stats.fault, self.late, self)
        self._slots = {name: asyncio.Semaphore(max(1, n)) for name, n in self.slots.items()}

    async def drive(self, gen: Generator[Step, object, object]) -> object:
        """Run a round generator to its end and return its result."""
        return await self.run(self.courier.drive(gen))

    async def deliver(self, send: Send) -> Outcome:
        return (await self.run(self.courier.deliver(send)))[0]

    async def late_duplicates(self, player_id: str, *, drain: bool = False) -> int:
        """Send the player's due late duplicates (``drain``: every one still queued), one after the other."""
        return await self.run(self.courier.late_duplicates(player_id, drain=drain))

    async def quiesce(self, timeout_s: float | None = None) -> None:
        """Wait for the answers the provider stopped waiting for (they still count for the ledger), at
        most ``timeout_s``."""
        until = None if timeout_s is None else time.monotonic() + timeout_s
        while self.background:
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                return
            await asyncio.wait(list(self.background), timeout=left)

    # -- the primitives -------------------------------------------------------------------
    async def run(self, flow: Flow[T]) -> T:
        reply: object = None
        while True:
            try:
                p = flow.send(reply)
            except StopIteration as stop:
                return cast(T, stop.value)
            if isinstance(p, Transmit):
                client = (self.bad_signer if p.bad_signature else None) or self.client
                if p.batch:
                    bx = await client.exchange_batch(p.calls)
                    reply = Answer(bx.outcome, bx.latency_ms, bx.status, bx.response_body)
                else:
                    ex = await client.exchange(p.calls[0])
                    reply = Answer((ex.outcome,), ex.latency_ms, ex.status, ex.response_body)
            elif isinstance(p, Record):
                self.stats.record(p.name, p.label, p.latency_ms, int(time.monotonic() - self.started))
                reply = None
            elif isinstance(p, Gather):
                reply = list(await asyncio.gather(*(self.run(f) for f in p.flows)))
            elif isinstance(p, Within):
                task: asyncio.Task[object] = asyncio.ensure_future(self.run(p.flow))
                try:
                    reply = await asyncio.wait_for(asyncio.shield(task), p.deadline_s)
                except TimeoutError:
                    self.background.add(task)
                    task.add_done_callback(self.background.discard)
                    task.add_done_callback(_settled)
                    reply = LATE
            elif isinstance(p, Hold):
                slot = self._slots.get(p.slot)
                if slot is None:
                    reply = await self.run(p.flow)
                else:
                    async with slot:
                        reply = await self.run(p.flow)
            elif isinstance(p, Think):
                if p.seconds > 0:
                    await self.stop.pause(p.seconds)
                reply = not self.stop.is_set()
            elif isinstance(p, Provision):
                reply = await self.provision(p)
            elif isinstance(p, Quiesce):
                await self.quiesce(p.timeout_s)
                reply = None
            else:
                await asyncio.sleep(p.seconds)
                reply = None
