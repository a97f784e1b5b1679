"""The asyncio driver: runs round generators, delivers their calls with the faults they carry.

Every exchange — including answers the provider chose not to wait for or never
read — is reported to the ledger and the run statistics; the round sees only
what a real provider would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from dataclasses import dataclass, field

from .calls import MONEY_OPS, Exchange, Ok, Op, Outcome, Rejected, Unknown
from .client import BatchExchange, WalletClient
from .faults import Delivery, FaultPlan, LateDuplicates, answered
from .ledger import Ledger
from .rounds import Batch, Parallel, Send, Sleep, Step
from .stats import RunStats

_OP_NAMES = {op: str(op) for op in Op}


def _result(outcome: Outcome) -> str:
    if isinstance(outcome, Ok):
        return "ok"
    if isinstance(outcome, Rejected):
        return str(outcome.code)
    return "unknown"


@dataclass
class Driver:
    client: WalletClient
    ledger: Ledger
    stats: RunStats
    faults: FaultPlan
    bad_signer: WalletClient | None = None
    started: float = field(default_factory=time.monotonic)
    background: set[asyncio.Task[Exchange] | asyncio.Task[BatchExchange]] = field(default_factory=set)
    late: LateDuplicates | None = None
    """The provider's retry queue for ``late_duplicate`` (None: the fault is off)."""
    sent: int = 0
    """Calls sent so far (a late duplicate waits for a number of them)."""

    def __post_init__(self) -> None:
        self.stats.start(self.started)  # the report's second 0, and the findings' clock
        self.ledger.on_flag = self.stats.anomaly
        if self.late is None and self.faults.rates.late_duplicate > 0:
            self.late = LateDuplicates(self.faults)

    async def _one(self, send: Send, *, visible: bool = True, client: WalletClient | None = None) -> Exchange:
        token = self.ledger.begin(send.call, send.expect, rule=send.rule)
        self.sent += 1
        ex = await (client or self.client).exchange(send.call)
        self.ledger.end(token, send.call, ex.outcome, expect=send.expect, visible=visible, latency_ms=ex.latency_ms,
                        status=ex.status, response=ex.response_body)
        self.stats.record(_OP_NAMES[send.call.op], _result(ex.outcome), ex.latency_ms,
                          int(time.monotonic() - self.started))
        if self.late is not None and visible and isinstance(ex.outcome, Ok) and send.expect is None \
                and send.call.op in MONEY_OPS and not send.purpose.startswith(("late", "settle")):
            self.late.offer(send.call, time.monotonic(), self.sent)
        return ex

    async def late_duplicates(self, player_id: str, *, drain: bool = False) -> int:
        """Send the player's due late duplicates (``drain``: every one still queued), one after the other."""
        if self.late is None:
            return 0
        calls = self.late.drain(player_id) if drain else self.late.due(player_id, time.monotonic(), self.sent)
        for call in calls:
            self.stats.fault("late_duplicate")
            await self._one(Send(call, purpose="late_duplicate"))
        return len(calls)

    async def _batch(self, batch: Batch, *, visible: bool = True, client: WalletClient | None = None) -> BatchExchange:
        """One request for several calls; the ledger judges each as its own call, with the shared exchange."""
        tokens = self.ledger.begin_batch(batch.calls)
        ex = await (client or self.client).exchange_batch(batch.calls)
        shown = self.ledger.end_batch(tokens, batch.calls, ex.outcome, visible=visible, latency_ms=ex.latency_ms,
                                      status=ex.status, response=ex.response_body)
        self.stats.record("batch", _result(shown), ex.latency_ms, int(time.monotonic() - self.started))
        return ex

    async def deliver(self, send: Send) -> Outcome:
        d = send.delivery
        if send.purpose.startswith("invalid:"):  # one event, one count: a bad signature is an invalid call
            if not send.purpose.endswith(":again"):  # the signed resend after it is a valid call, no fault
                self.stats.fault(send.purpose)
        elif d is not Delivery.NORMAL:
            self.stats.fault(str(d))
        if d is Delivery.NORMAL:
            return (await self._one(send)).outcome
        if d is Delivery.DUPLICATE:
            first = await self._one(send)
            await self._one(send)
            return first.outcome
        if d in (Delivery.CONCURRENT_DUPLICATE, Delivery.RETRY_STORM):
            exchanges = await asyncio.gather(*(self._one(send) for _ in range(self.faults.copies(d))))
            return answered([ex.outcome for ex in exchanges])
        if d is Delivery.LOST_RESPONSE:
            await self._one(send, visible=False)
            return Unknown("lost response (fault)")
        if d is Delivery.BAD_SIGNATURE:
            return (await self._one(send, client=self.bad_signer)).outcome
        if d is Delivery.TIMEOUT:
            deadline = self.faults.deadline_s(send.call.tx_id)
            task = asyncio.ensure_future(self._one(send))
            try:
                return (await asyncio.wait_for(asyncio.shield(task), deadline)).outcome
            except TimeoutError:
                self.background.add(task)
                task.add_done_callback(self.background.discard)
                return Unknown("provider stopped waiting (fault)")
        raise AssertionError(f"unknown delivery {d}")  # pragma: no cover

    async def _deliver_batch(self, batch: Batch) -> tuple[Outcome, ...]:
        """A batch is one request: the faults apply to it as to any (a bad signature never goes batched)."""
        d = batch.delivery
        if d is not Delivery.NORMAL:
            self.stats.fault(str(d))
        if d is Delivery.NORMAL or d is Delivery.BAD_SIGNATURE:
            return (await self._batch(batch)).outcome
        if d is Delivery.DUPLICATE:
            first = await self._batch(batch)
            await self._batch(batch)
            return first.outcome
        if d in (Delivery.CONCURRENT_DUPLICATE, Delivery.RETRY_STORM):
            exchanges = await asyncio.gather(*(self._batch(batch) for _ in range(self.faults.copies(d))))
            return answered([ex.outcome for ex in exchanges])
        unknown = tuple(Unknown(f"{d} (fault)") for _ in batch.calls)
        if d is Delivery.LOST_RESPONSE:
            await self._batch(batch, visible=False)
            return unknown
        if d is Delivery.TIMEOUT:
            deadline = self.faults.deadline_s(batch.calls[0].tx_id)
            task = asyncio.ensure_future(self._batch(batch))
            try:
                return (await asyncio.wait_for(asyncio.shield(task), deadline)).outcome
            except TimeoutError:
                self.background.add(task)
                task.add_done_callback(self.background.discard)
                return unknown
        raise AssertionError(f"unknown delivery {d}")  # pragma: no cover

    async def drive(self, gen: Generator[Step, object, object]) -> object:
        """Run a round generator to its end and return its result."""
        reply: object = None
        while True:
            try:
                step = gen.send(reply)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, Send):
                if step.delivery is Delivery.NORMAL and not step.purpose.startswith("invalid:"):
                    # What deliver() does for a plain call, one coroutine frame fewer per call.
                    reply = (await self._one(step)).outcome
                else:
                    reply = await self.deliver(step)
            elif isinstance(step, Batch):
                reply = await self._deliver_batch(step)
            elif isinstance(step, Sleep):
                if step.seconds > 0:
                    await asyncio.sleep(step.seconds)
                reply = None
            elif isinstance(step, Parallel):
                reply = list(await asyncio.gather(*(self.drive(g) for g in step.rounds)))
            else:  # pragma: no cover
                raise TypeError(f"a round yielded {step!r}")

    async def quiesce(self) -> None:
        """Wait for the answers the provider stopped waiting for (they still count for the ledger)."""
        while self.background:
            await asyncio.gather(*list(self.background), return_exceptions=True)
