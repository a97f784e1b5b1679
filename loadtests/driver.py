"""The gevent driver: runs the core's round generators over Locust's fast HTTP client.

The shape of :class:`simulator.inprocess.SyncDriver` and of the asyncio
:class:`simulator.driver.Driver` — a round yields ``Send``, ``Batch``, ``Sleep`` or
``Parallel``, the driver delivers each ``Send`` (or ``Batch``: several calls in one request,
when the dialect batches) the way its fault says and feeds the ``Outcome`` (one per call of a
batch) back — with greenlets where the asyncio driver has tasks.  Every exchange goes to the
process's ledger (even answers the provider "never read"; each call of a batch as its own
call, :meth:`simulator.ledger.Ledger.begin_batch`) and to Locust's statistics, named by
operation (``batch`` for a batch), as a success or a failure:

* ok, or a refusal that was due (``Send.expect``: any code of a rule the call breaks — the
  ledger judges which), or one a provider meets in normal play (an expired session, a bet its
  rollback overtook): success;
* a refusal nobody asked for, an acceptance where a refusal was due, an answer that is no
  answer (timeout, reset, 5xx, garbage), or an answer the ledger finds a money or contract
  finding in: failure (a note — a choice the protocol allows — never is).

Money and contract findings also get a row of their own (type ``ANOMALY``, one per kind).
Acknowledged calls the scenario's ``late_duplicate`` picks are sent again between the player's
rounds once due (:class:`simulator.faults.LateDuplicates`), and every one left when the player leaves.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final

import gevent
from gevent.pool import Group

from simulator import settlement
from simulator.calls import MONEY_OPS, Ok, Outcome, Rejected, Unknown
from simulator.codes import ErrorCode
from simulator.dialects import Dialect, HttpResponse, batching
from simulator.faults import Delivery, Due, answered, as_due
from simulator.ledger import FAILING, Evidence, describe
from simulator.rounds import Batch, Parallel, Seat, Send, Sleep, Step, balance_call

if TYPE_CHECKING:
    from .process import Croupier

WALLET: Final = "wallet"
BENIGN: Final = frozenset({ErrorCode.SESSION_EXPIRED, ErrorCode.TX_ROLLED_BACK})
"""Refusals a provider meets in normal play: a session that ran out (the game relaunches), a
bet whose rollback overtook it on another connection."""


def label(outcome: Outcome) -> str:
    if isinstance(outcome, Ok):
        return "ok"
    if isinstance(outcome, Rejected):
        return str(outcome.code)
    return "unknown"


def judge(outcome: Outcome, expect: ErrorCode | Due | None, flagged: list[str]) -> str | None:
    """Why this exchange is a failure in Locust's statistics (None: a success)."""
    if flagged:
        return f"anomaly: {', '.join(flagged)}"
    if isinstance(outcome, Unknown):
        return f"no definitive answer: {outcome.reason}"
    due = as_due(expect)
    if isinstance(outcome, Rejected):
        if due is not None:
            return None  # due to be refused: with which code is the ledger's to judge (wrong_code)
        if outcome.code in BENIGN or outcome.code is ErrorCode.UNMAPPED:
            return None  # an unmapped code is some refusal: the ledger judged it (flagged above if not due)
        return f"refused {outcome.code} (not due)"
    if due is not None and due.usual is not ErrorCode.TX_ROLLED_BACK:
        return f"accepted ({due.usual} was due)"
    return None


def _flagged(before: dict[Any, int], counts: dict[Any, int]) -> list[str]:
    """The money and contract kinds the ledger found in the exchange just ended."""
    return [str(k) for k, n in counts.items() if n > before[k] and k in FAILING]


class GeventDriver:
    """Delivers the calls of round generators through one Locust ``FastHttpSession``."""

    def __init__(self, croupier: Croupier, http: Any, request_type: str = WALLET) -> None:
        self.c = croupier
        self.http = http
        self.request_type = request_type
        self.base = croupier.settings.wallet_url
        self.background: set[gevent.Greenlet] = set()

    # -- one exchange ---------------------------------------------------------------------
    def _one(self, send: Send, *, visible: bool = True, dialect: Dialect | None = None) -> Outcome:
        ledger = self.c.ledger
        token = ledger.begin(send.call, send.expect, rule=send.rule)
        self.c.sent += 1
        req = (dialect or self.c.dialect).encode_call(send.call, time.time())
        started = time.perf_counter()
        with self.http.request(req.method, f"{self.base}/{req.path}", name=str(send.call.op), data=req.body,
                               headers=req.headers, catch_response=True) as resp:
            resp.request_meta["request_type"] = self.request_type
            latency = (time.perf_counter() - started) * 1000
            status = resp.status_code or None
            body = b""
            if not status:
                error = getattr(resp, "error", None)
                outcome: Outcome = Unknown(type(error).__name__ if error is not None else "no response")
            else:
                body = resp.content or b""
                # Headers too: a dialect may sign its answers (json-rsa).
                outcome = (dialect or self.c.dialect).decode_response(
                    send.call, HttpResponse(status, dict(resp.headers.items() if resp.headers else ()), body))
            before = dict(ledger.counts)
            ledger.end(token, send.call, outcome, expect=send.expect, visible=visible, latency_ms=latency,
                       status=status, response=body)
            why = judge(outcome, send.expect, _flagged(before, ledger.counts))
            if why is None:
                resp.success()
            else:
                resp.failure(why)
        self.c.count_call(str(send.call.op), label(outcome))
        self.c.publish_anomalies()
        late = self.c.late
        if late is not None and visible and isinstance(outcome, Ok) and send.expect is None \
                and send.call.op in MONEY_OPS and not send.purpose.startswith(("late", "settle")):
            late.offer(send.call, time.monotonic(), self.c.sent)
        return outcome

    def late_duplicates(self, player_id: str, *, drain: bool = False) -> int:
        """Send the player's due late duplicates (``drain``: every one still queued), one after the other."""
        late = self.c.late
        if late is None:
            return 0
        calls = late.drain(player_id) if drain else late.due(player_id, time.monotonic(), self.c.sent)
        for call in calls:
            self.c.faults["late_duplicate"] += 1
            self._one(Send(call, purpose="late_duplicate"))
        return len(calls)

    def _batch(self, batch: Batch, *, visible: bool = True) -> tuple[Outcome, ...]:
        """Several calls in one request; the ledger judges each as its own call, with the shared exchange."""
        ledger = self.c.ledger
        dialect = batching(self.c.dialect)
        assert dialect is not None, f"dialect {self.c.dialect.name} does not batch"
        calls = batch.calls
        tokens = ledger.begin_batch(calls)
        req = dialect.encode_batch(calls, time.time())
        started = time.perf_counter()
        with self.http.request(req.method, f"{self.base}/{req.path}", name="batch", data=req.body,
                               headers=req.headers, catch_response=True) as resp:
            resp.request_meta["request_type"] = self.request_type
            latency = (time.perf_counter() - started) * 1000
            status = resp.status_code or None
            body = b""
            if not status:
                error = getattr(resp, "error", None)
                unknown = Unknown(type(error).__name__ if error is not None else "no response")
                outcomes: tuple[Outcome, ...] = tuple(unknown for _ in calls)
            else:
                body = resp.content or b""
                outcomes = tuple(dialect.decode_batch_response(
                    calls, HttpResponse(status, dict(resp.headers.items() if resp.headers else ()), body)))
            before = dict(ledger.counts)
            shown = ledger.end_batch(tokens, calls, outcomes, visible=visible, latency_ms=latency, status=status,
                                     response=body)
            why = judge(shown, None, _flagged(before, ledger.counts))
            if why is None:
                resp.success()
            else:
                resp.failure(why)
        self.c.count_call("batch", label(shown))
        self.c.publish_anomalies()
        return outcomes

    # -- deliveries -----------------------------------------------------------------------
    def deliver(self, send: Send) -> Outcome:
        d = send.delivery
        if d is not Delivery.NORMAL:
            self.c.faults[str(d)] += 1
        if send.purpose.startswith("invalid:"):
            self.c.faults[send.purpose] += 1
        if d is Delivery.NORMAL:
            return self._one(send)
        if d is Delivery.DUPLICATE:
            first = self._one(send)
            self._one(send)
            return first
        if d in (Delivery.CONCURRENT_DUPLICATE, Delivery.RETRY_STORM):
            copies = [gevent.spawn(self._one, send) for _ in range(self.c.scenario.faults.copies(d))]
            gevent.joinall(copies, raise_error=True)
            outcomes: list[Outcome] = [g.value for g in copies]
            return answered(outcomes)
        if d is Delivery.LOST_RESPONSE:
            self._one(send, visible=False)
            return Unknown("lost response (fault)")
        if d is Delivery.BAD_SIGNATURE:
            return self._one(send, dialect=self.c.bad_dialect)
        if d is Delivery.TIMEOUT:
            deadline = self.c.scenario.faults.deadline_s(send.call.tx_id)
            g = gevent.spawn(self._one, send)
            g.join(deadline)
            if g.ready():
                outcome: Outcome = g.get()
                return outcome
            self.background.add(g)
            g.link(self.background.discard)
            return Unknown("provider stopped waiting (fault)")
        raise AssertionError(f"unknown delivery {d}")  # pragma: no cover

    def deliver_batch(self, batch: Batch) -> tuple[Outcome, ...]:
        """A batch is one request: the faults apply to it as to any (a bad signature never goes batched)."""
        d = batch.delivery
        if d is not Delivery.NORMAL:
            self.c.faults[str(d)] += 1
        if d is Delivery.NORMAL or d is Delivery.BAD_SIGNATURE:
            return self._batch(batch)
        if d is Delivery.DUPLICATE:
            first = self._batch(batch)
            self._batch(batch)
            return first
        if d in (Delivery.CONCURRENT_DUPLICATE, Delivery.RETRY_STORM):
            copies = [gevent.spawn(self._batch, batch) for _ in range(self.c.scenario.faults.copies(d))]
            gevent.joinall(copies, raise_error=True)
            answers: list[tuple[Outcome, ...]] = [g.value for g in copies]
            return answered(answers)
        unknown = tuple(Unknown(f"{d} (fault)") for _ in batch.calls)
        if d is Delivery.LOST_RESPONSE:
            self._batch(batch, visible=False)
            return unknown
        if d is Delivery.TIMEOUT:
            deadline = self.c.scenario.faults.deadline_s(batch.calls[0].tx_id)
            g = gevent.spawn(self._batch, batch)
            g.join(deadline)
            if g.ready():
                outcomes: tuple[Outcome, ...] = g.get()
                return outcomes
            self.background.add(g)
            g.link(self.background.discard)
            return unknown
        raise AssertionError(f"unknown delivery {d}")  # pragma: no cover

    def drive(self, gen: Generator[Step, object, object]) -> object:
        """Run a round generator to its end and return its result."""
        reply: object = None
        while True:
            try:
                step = gen.send(reply)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, Send):
                reply = self.deliver(step)
            elif isinstance(step, Batch):
                reply = self.deliver_batch(step)
            elif isinstance(step, Sleep):
                if step.seconds > 0:
                    gevent.sleep(step.seconds)
                reply = None
            elif isinstance(step, Parallel):
                group = Group()
                greenlets = [group.spawn(self.drive, g) for g in step.rounds]
                gevent.joinall(greenlets, raise_error=True)
                reply = [g.value for g in greenlets]
            else:  # pragma: no cover
                raise TypeError(f"a round yielded {step!r}")

    def quiesce(self, timeout: float | None = None) -> None:
        """Wait for the answers the provider stopped waiting for (they still count for the ledger); a
        second interrupt ends the wait."""
        if self.background:
            from .process import join_bounded

            join_bounded(list(self.background), timeout)

    # -- the end of a player ----------------------------------------------------------------
    def settle_in_doubt(self, seats: dict[str, Seat]) -> int:
        """Settle these players' calls still in doubt as a provider must (PROTOCOL.md): wins and
        rollbacks re-sent, then bets rolled back (or asked again when a standing win closed their
        round), each until answered.  Returns what is still in doubt.

        The same rule as the asyncio runner's end of run (``Runner._settle``): the steps come
        from :mod:`simulator.settlement`."""
        deadline = time.monotonic() + self.c.scenario.settle_timeout_s
        for _ in range(3):
            doubtful = [(b, tx) for b, tx in self.c.ledger.in_doubt() if b.player_id in seats]
            if not doubtful:
                return 0
            for book, tx in settlement.in_order(doubtful):
                if self.c.hurried:
                    self.c.settlement_skipped = True
                if time.monotonic() >= deadline or self.c.hurried:
                    break
                if tx.call.tx_id not in book.doubt:
                    continue
                seat = seats[book.player_id]
                self.c.rounds["settled_at_end"] += 1
                self.drive(settlement.settlement(book, tx, seat, self.c.settle_ids(seat.player_id), self.c.semantics))
            self.quiesce(max(0.1, deadline - time.monotonic()))
            if self.c.hurried:  # a second interrupt: what is left is counted as left, not as the wallet's fault
                self.c.settlement_skipped = True
                return 0
            if time.monotonic() >= deadline:
                self.c.errors.append(f"settlement stopped at its deadline ({self.c.scenario.settle_timeout_s:g} s)")
                break
        left = [(b, tx) for b, tx in self.c.ledger.in_doubt() if b.player_id in seats]
        for book, tx in left:
            self.c.ledger.flag_unsettled(book, tx)
        self.c.publish_anomalies()
        return len(left)

    def reconcile(self, seat: Seat) -> None:
        """Read the balance once more, alone, and compare it with what the wallet must hold."""
        call = balance_call(seat)
        req = self.c.dialect.encode_call(call, time.time())
        started = time.perf_counter()
        with self.http.request(req.method, f"{self.base}/{req.path}", name="balance", data=req.body,
                               headers=req.headers, catch_response=True) as resp:
            resp.request_meta["request_type"] = self.request_type
            latency = (time.perf_counter() - started) * 1000
            if not resp.status_code:
                outcome: Outcome = Unknown("no response")
            else:
                outcome = self.c.dialect.decode_response(
                    call, HttpResponse(resp.status_code, dict(resp.headers.items() if resp.headers else ()), resp.content or b""))
            if isinstance(outcome, Ok):
                before = self.c.ledger.anomaly_count
                self.c.ledger.reconcile(seat.player_id, outcome, latency)
                if self.c.ledger.anomaly_count > before:
                    resp.failure("anomaly: the final balance disagrees with the ledger")
                else:
                    resp.success()
            else:
                if isinstance(outcome, Rejected):
                    self.c.ledger.balance_refused(seat.player_id, outcome, Evidence(
                        {"op": "balance", "player_id": seat.player_id}, describe(outcome), round(latency, 3),
                        resp.status_code or None))
                self.c.errors.append(f"{seat.player_id}: final balance read failed: {describe(outcome)}")
                resp.failure(f"final balance read failed: {label(outcome)}")
        self.c.count_call("balance", label(outcome))
        self.c.publish_anomalies()

