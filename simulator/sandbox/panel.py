"""The live panel: every wallet call of the sandbox, as it happens, and what a developer can do with one.

Why it lives beside the provider rather than in it: the provider logs calls for
reconciliation (ids, amounts, outcomes); a developer debugging a wallet wants
the bytes — the signed request as sent and the answer as received — and wants
to poke at the wallet with them.  So the sandbox wraps the provider's dialect to
keep each request it encodes, observes each exchange the provider logs, and
keeps both here, bounded, fanned out to every browser listening.

The three actions a panel offers on a call, each sent through the provider's
own client, ledger and transaction log (so a wallet that mishandles them is
also caught as an anomaly, with evidence):

* **replay** — the recorded request again, byte for byte: same body, same
  signature header (what a retrying proxy or a load balancer redelivers).
  Within the signature window a correct wallet answers with its replay answer.
* **duplicate** — the same call (same ``tx_id``, same fields), freshly
  signed, as a provider's retry: the wallet must answer the original result —
  the same ``wallet_tx_id`` and no change to any balance (PROTOCOL.md rule 1).
* **timeout** — the call is sent again but its answer is dropped, as if the
  provider had timed out; then the provider does what the protocol says: a
  bet is rolled back (the rollback retried until answered), a win or a
  rollback is sent again with the same ``tx_id`` until answered.

A call that went in one request with others (a batching dialect sends an
instant round's bet and closing win together) is one entry per action, each
showing the shared request and answer.  Its actions act on that request, as a
provider would: replay sends its bytes again, duplicate re-sends the whole
batch freshly signed, and timeout drops the batch's answer and re-sends the
same batch until one comes (the provider's rule for a batch without an answer:
a rollback of the bet could be refused if the win had closed the round).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson

from ..drive.client import BatchExchange
from ..drive.driver import Driver
from ..judge.ledger import Ledger
from ..play.faults import Delivery
from ..play.rounds import Batch, RoundContext, Send, Sleep, Step, settle
from ..protocol.calls import MONEY_OPS, Exchange, Ok, Op, Outcome, Rejected, Unknown, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.dialects import Dialect, DialectBase, HttpRequest, HttpResponse, batching, semantics_of
from ..provider.engine import Provider
from ..provider.state import CallRecord, RecordingClient, Session, members

__all__ = ["ACTIONS", "ActionError", "CapturingDialect", "Entry", "Panel"]

MAX_ENTRIES: Final = 5_000
"""Entries kept in memory (oldest dropped first): a sandbox runs for hours on a laptop."""
MAX_SHOWN_BODY: Final = 16_384
"""Bytes of a body the panel shows (a wallet may answer something huge)."""

ACTIONS: Final = ("replay", "duplicate", "timeout")


@dataclass(frozen=True, slots=True)
class _Origin:
    action: str
    of: int


_ORIGIN: contextvars.ContextVar[_Origin | None] = contextvars.ContextVar("croupier_sandbox_origin", default=None)
"""Set while an action runs, so the calls it makes are labelled with it (contextvars follow the task)."""


class ActionError(Exception):
    """An action that cannot be done on this call: a 4xx with a code for the browser."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


def _text(raw: bytes) -> str:
    shown = raw[:MAX_SHOWN_BODY].decode("utf-8", "replace")
    return shown + (f"… ({len(raw)} bytes)" if len(raw) > MAX_SHOWN_BODY else "")


class CapturingDialect(DialectBase):
    """Wraps the provider's dialect to keep the exact request of each call it encodes.

    The request is handed over when the exchange is logged (:meth:`take`), keyed
    by the call object: sends of one call are sequential in the provider (no
    concurrent-duplicate faults), so a FIFO per call pairs them right."""

    def __init__(self, inner: Dialect) -> None:
        self.inner = inner
        self.name = inner.name
        self.semantics = semantics_of(inner)
        self.supports_batches = batching(inner) is not None
        """Batches exactly when the wrapped dialect does."""
        self._sent: dict[int, deque[tuple[HttpRequest, tuple[WalletCall, ...]]]] = {}

    def keep(self, call: WalletCall, req: HttpRequest, batch: tuple[WalletCall, ...] = ()) -> None:
        """``req`` carries ``call`` (with the rest of ``batch`` when it carries several)."""
        if len(self._sent) > 1_000:  # calls whose exchange never got logged (a cancelled task)
            self._sent.clear()
        self._sent.setdefault(id(call), deque()).append((req, batch))

    def encode_call(self, call: WalletCall, now: float) -> HttpRequest:
        req = self.inner.encode_call(call, now)
        self.keep(call, req)
        return req

    def encode_batch(self, calls: Sequence[WalletCall], now: float) -> HttpRequest:
        inner = batching(self.inner)
        assert inner is not None, f"dialect {self.name} does not batch"
        calls = tuple(calls)
        req = inner.encode_batch(calls, now)
        for call in calls:
            self.keep(call, req, calls)
        return req

    def decode_batch_response(self, calls: Sequence[WalletCall], response: HttpResponse) -> list[Outcome]:
        inner = batching(self.inner)
        assert inner is not None, f"dialect {self.name} does not batch"
        return list(inner.decode_batch_response(calls, response))

    def take(self, call: WalletCall) -> tuple[HttpRequest | None, tuple[WalletCall, ...]]:
        """The request that carried ``call`` and, if it carried several, all of them."""
        queue = self._sent.get(id(call))
        if not queue:
            return None, ()
        req, batch = queue.popleft()
        if not queue:
            del self._sent[id(call)]
        return req, batch

    def decode_response(self, call: WalletCall, response: HttpResponse) -> Outcome:
        return self.inner.decode_response(call, response)

    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        return self.inner.decode_request(request, now)

    def encode_response(self, call: WalletCall | None, outcome: Outcome) -> HttpResponse:
        return self.inner.encode_response(call, outcome)


@dataclass(slots=True)
class Entry:
    """One call on the panel: the provider's record, the bytes both ways, and where it came from."""

    id: int
    record: CallRecord
    call: WalletCall
    outcome: Outcome
    url: str
    request: HttpRequest | None
    response_status: int | None
    response_body: bytes
    origin: str = "game"
    """game (a round or a launch), or the action that sent it: replay, duplicate, timeout."""
    of: int | None = None
    """The entry an action was taken on."""
    notes: list[str] = field(default_factory=list)
    """What the sandbox makes of the answer (a replay answer that matches, an answer dropped)."""
    batch: tuple[WalletCall, ...] = ()
    """Every call of the request when it carried several (a batch); empty for a call on its own."""

    def to_json(self) -> dict[str, Any]:
        r, o = self.record, self.outcome
        request = None
        if self.request is not None:
            request = {"method": self.request.method, "url": self.url, "headers": self.request.headers,
                       "body": _text(self.request.body)}
        response = None
        if self.response_status is not None:
            response = {"status": self.response_status, "body": _text(self.response_body)}
        return {
            "id": self.id, "origin": self.origin, "of": self.of, "at": r.to_json()["at"], "op": r.op,
            "tx_id": r.tx_id, "ref_tx_id": r.ref_tx_id, "player_id": r.player_id, "session_id": r.session_id,
            "round_id": r.round_id, "game_id": r.game_id, "amount": r.amount, "currency": r.currency,
            "reason": str(self.call.reason) if self.call.reason else None, "round_closed": self.call.round_closed,
            "outcome": r.outcome, "wallet_tx_id": r.wallet_tx_id,
            "balance": o.balance.minor if isinstance(o, Ok) else None,
            "message": o.message if isinstance(o, Rejected) else (o.reason if isinstance(o, Unknown) else None),
            "latency_ms": round(r.latency_ms, 3), "http_status": r.http_status,
            "request": request, "response": response, "notes": self.notes,
            "actions": list(ACTIONS) if self.call.op in MONEY_OPS else ["replay", "duplicate"],
            "batch": [c.tx_id for c in self.batch] if self.batch else None,
        }


class Panel:
    """The entries, their listeners, and the actions."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.dialect = CapturingDialect(provider.dialect)
        provider.dialect = self.dialect  # the provider builds a client per round with it
        provider.state.observers.append(self._observe)
        self.entries: deque[Entry] = deque(maxlen=MAX_ENTRIES)
        self._by_id: dict[int, Entry] = {}
        self._last = 0
        self._listeners: set[asyncio.Queue[Entry | None]] = set()

    # -- recording ---------------------------------------------------------------------
    def _observe(self, record: CallRecord, ex: Exchange) -> None:
        origin = _ORIGIN.get()
        req, batch = self.dialect.take(ex.call)
        base = self.provider.config.wallet_url.rstrip("/")
        entry = Entry(
            id=self._last + 1, record=record, call=ex.call, outcome=ex.outcome,
            url=f"{base}/{req.path}" if req is not None else base, request=req,
            response_status=ex.status, response_body=ex.response_body,
            origin=origin.action if origin else "game", of=origin.of if origin else None, batch=batch,
        )
        if batch:
            others = ", ".join(f"{c.op} {c.tx_id}" for c in batch if c is not ex.call)
            entry.notes.append(f"sent in one request with {others} (a batch): replay, duplicate and timeout "
                               "act on the whole request")
        self._add(entry)

    def _add(self, entry: Entry) -> None:
        self._last = entry.id
        if len(self.entries) == self.entries.maxlen:
            self._by_id.pop(self.entries[0].id, None)
        self.entries.append(entry)
        self._by_id[entry.id] = entry
        for queue in list(self._listeners):
            if queue.qsize() < 1_000:  # a stalled browser loses entries, never the sandbox's memory
                queue.put_nowait(entry)

    def get(self, entry_id: int) -> Entry | None:
        return self._by_id.get(entry_id)

    def of_player(self, player_id: str, after: int = 0) -> list[Entry]:
        return [e for e in self.entries if e.record.player_id == player_id and e.id > after]

    @contextmanager
    def listen(self) -> Iterator[asyncio.Queue[Entry | None]]:
        queue: asyncio.Queue[Entry | None] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)

    def close(self) -> None:
        """Wake every listener so its stream ends (shutdown)."""
        for queue in list(self._listeners):
            queue.put_nowait(None)

    # -- actions -----------------------------------------------------------------------
    def _session(self, entry: Entry) -> Session | None:
        sid = entry.record.session_id
        return self.provider.state.sessions.get(sid) if sid else None

    def _driver(self, entry: Entry) -> Driver:
        provider = self.provider
        assert provider.http is not None, "the provider has not started"
        player = entry.record.player_id or ""
        client = RecordingClient(provider.config.wallet_url, self.dialect, provider.http,
                                 timeout_s=provider.config.timeout_s,
                                 sink=provider.state.recorder(entry.record.session_id, player,
                                                              entry.record.currency or ""))
        return Driver(client, provider.state.ledger, provider.state.stats, provider.faults,
                      started=provider.state.started)

    async def act(self, entry_id: int, action: str) -> list[Entry]:
        """Take ``action`` on entry ``entry_id``; the entries it made, in order."""
        entry = self.get(entry_id)
        if entry is None:
            raise ActionError("CALL_NOT_FOUND", 404, f"no call #{entry_id} on the panel (it may have aged out)")
        if action not in ACTIONS:
            raise ActionError("BAD_REQUEST", 400, f"action must be one of {', '.join(ACTIONS)}")
        if action == "timeout" and entry.call.op not in MONEY_OPS:
            raise ActionError("BAD_REQUEST", 400, "a timeout is simulated on bets, wins and rollbacks only")
        session = self._session(entry)
        if action == "timeout" and session is None:
            raise ActionError("SESSION_NOT_FOUND", 409, "the call's game session is gone: nothing to recover with")
        first = self._last + 1
        token = _ORIGIN.set(_Origin(action, entry.id))
        anomalies = self.provider.state.ledger.anomaly_count
        try:
            if session is not None:
                async with session.lock:  # never interleaved with a round of the same game window
                    await self._run(entry, action, session)
            else:
                await self._run(entry, action, None)
        finally:
            _ORIGIN.reset(token)
        made = [e for e in self.entries if e.id >= first and e.of == entry.id and e.origin == action]
        self._judge(entry, action, made, self.provider.state.ledger.anomaly_count - anomalies)
        return made

    async def _run(self, entry: Entry, action: str, session: Session | None) -> None:
        driver = self._driver(entry)
        if action == "replay":
            await self._replay(entry, driver)
        elif action == "duplicate" and entry.batch:
            # A provider's retry of a batch is the whole batch: its actions only make sense together.
            await driver.drive(_once(Batch(entry.batch, purpose="sandbox:duplicate")))
        elif action == "duplicate":
            await driver.deliver(Send(entry.call, purpose="sandbox:duplicate"))
        else:
            await self._timeout(entry, driver, session)
        await driver.quiesce()

    async def _replay(self, entry: Entry, driver: Driver) -> None:
        """The recorded bytes again, through the ledger and the transaction log like any call."""
        req = entry.request
        if req is None:
            raise ActionError("NOT_REPLAYABLE", 409, f"call #{entry.id} has no recorded request to replay")
        provider = self.provider
        assert provider.http is not None
        if entry.batch:
            await self._replay_batch(entry, driver, req)
            return
        call = entry.call
        ledger: Ledger = driver.ledger
        token = ledger.begin(call)
        self.dialect.keep(call, req)  # what _observe pairs it with
        sent_at, started = time.time(), time.perf_counter()
        try:
            async with provider.http.request(req.method, entry.url, data=req.body, headers=req.headers,
                                             timeout=aiohttp.ClientTimeout(total=provider.config.timeout_s)) as resp:
                body, status, headers = await resp.read(), resp.status, dict(resp.headers)
            outcome = self.dialect.decode_response(call, HttpResponse(status, headers, body))
            ex = Exchange(call, outcome, (time.perf_counter() - started) * 1000, req.body, status, body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            ex = Exchange(call, Unknown(f"{type(exc).__name__}: {exc}"), (time.perf_counter() - started) * 1000,
                          req.body)
        ledger.end(token, call, ex.outcome, latency_ms=ex.latency_ms, status=ex.status, response=ex.response_body)
        sink = provider.state.recorder(entry.record.session_id, entry.record.player_id or "",
                                       entry.record.currency or "")
        sink(sent_at, ex)

    async def _replay_batch(self, entry: Entry, driver: Driver, req: HttpRequest) -> None:
        """A batch's recorded bytes again: every action of it judged by the ledger and logged."""
        provider = self.provider
        assert provider.http is not None
        calls = entry.batch
        ledger: Ledger = driver.ledger
        tokens = ledger.begin_batch(calls)
        for call in calls:
            self.dialect.keep(call, req, calls)
        sent_at, started = time.time(), time.perf_counter()
        try:
            async with provider.http.request(req.method, entry.url, data=req.body, headers=req.headers,
                                             timeout=aiohttp.ClientTimeout(total=provider.config.timeout_s)) as resp:
                body, status, headers = await resp.read(), resp.status, dict(resp.headers)
            outcomes = tuple(self.dialect.decode_batch_response(calls, HttpResponse(status, headers, body)))
            bex = BatchExchange(calls, outcomes, (time.perf_counter() - started) * 1000, req.body, status, body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            unknown = Unknown(f"{type(exc).__name__}: {exc}")
            bex = BatchExchange(calls, tuple(unknown for _ in calls), (time.perf_counter() - started) * 1000,
                                req.body)
        ledger.end_batch(tokens, calls, bex.outcome, latency_ms=bex.latency_ms, status=bex.status,
                         response=bex.response_body)
        sink = provider.state.recorder(entry.record.session_id, entry.record.player_id or "",
                                       entry.record.currency or "")
        for ex in members(bex):
            sink(sent_at, ex, calls)

    async def _timeout(self, entry: Entry, driver: Driver, session: Session | None) -> None:
        """Send the call, drop its answer, then recover as the protocol says a provider must."""
        assert session is not None
        if entry.batch:
            # A batch without an answer is sent again, unchanged, until one comes (rounds.batch_phase).
            await driver.drive(_until_answered(entry.batch, self.provider.config.retry.max_attempts,
                                               self.provider.config.retry.backoff))
            return
        call = entry.call
        await driver.deliver(Send(call, Delivery.LOST_RESPONSE, purpose="sandbox:timeout"))
        ctx = RoundContext(session.seat, call.game_id or session.game_id, session.rng, session.ids,
                           retry=self.provider.config.retry)
        if call.op is Op.BET:
            assert call.tx_id is not None and call.round_id is not None
            seat = session.seat
            rollback = WalletCall.rollback(session.ids.tx(), call.tx_id, seat.player_id, seat.session_token,
                                           ctx.game_id, call.round_id)
            # A round the provider closed takes no rollback: the protocol's answer is ROUND_CLOSED.
            closed = any(r.round_id == call.round_id and r.status == "settled" for r in session.rounds)
            expect = ErrorCode.ROUND_CLOSED if closed else None
            await driver.drive(settle(ctx, Send(rollback, expect=expect, purpose="sandbox:timeout:rollback")))
        else:
            await driver.drive(settle(ctx, Send(call, purpose="sandbox:timeout:retry")))

    def _originals(self, entry: Entry) -> dict[str | None, Outcome]:
        """What each call of ``entry``'s request was first answered (one call, or every call of its batch)."""
        found: dict[str | None, Outcome] = {entry.call.tx_id: entry.outcome}
        if entry.batch and entry.request is not None:
            for e in self.entries:
                if e.request is entry.request and e.call.tx_id not in found:
                    found[e.call.tx_id] = e.outcome
        return found

    def _judge(self, entry: Entry, action: str, made: list[Entry], new_anomalies: int) -> None:
        """Say in plain words what the wallet's answers to an action mean."""
        originals = self._originals(entry)
        dropped = len(entry.batch) or 1  # the calls of the request whose answer a timeout drops
        for n, e in enumerate(made):
            if action == "timeout" and n < dropped:
                e.notes.append("answer dropped: the provider saw a timeout and recovers from here")
                continue
            if e.call.tx_id not in originals:
                # The rollback the recovery made (also judged by the ledger).
                if isinstance(e.outcome, Rejected) and e.outcome.code is ErrorCode.ROUND_CLOSED:
                    e.notes.append("ROUND_CLOSED: right — the round was closed by its last win, so the bet "
                                   "stands and nothing is refunded")
                elif isinstance(e.outcome, Ok):
                    e.notes.append("the provider rolled the bet back: it must be refunded exactly once")
                continue
            original = originals[e.call.tx_id]
            if isinstance(original, Ok) and e.call.op in MONEY_OPS:
                if isinstance(e.outcome, Ok) and e.outcome.wallet_tx_id == original.wallet_tx_id:
                    e.notes.append(f"replay answer: the original wallet_tx_id {original.wallet_tx_id}")
                elif isinstance(e.outcome, Ok):
                    e.notes.append(f"a new wallet_tx_id ({e.outcome.wallet_tx_id}, originally "
                                   f"{original.wallet_tx_id}): was it applied twice?")
                elif isinstance(e.outcome, Rejected):
                    e.notes.append(f"refused with {e.outcome.code}: a replay of an accepted call must be "
                                   "answered like the original")
            elif isinstance(original, Rejected):
                e.notes.append("the original was refused, so this is judged afresh (PROTOCOL.md rule 3)")
        if made and new_anomalies:
            made[-1].notes.append(f"the ledger flagged {new_anomalies} anomal{'y' if new_anomalies == 1 else 'ies'}: "
                                  "see the provider's /reports/anomalies")
        for e in made:  # the notes were written after the entries went out: send them again
            for queue in list(self._listeners):
                queue.put_nowait(e)


def _once(step: Batch) -> Generator[Step, object, object]:
    """A one-step round for the driver: ``step`` delivered once."""
    return (yield step)


def _until_answered(calls: tuple[WalletCall, ...], attempts: int,
                    backoff: Callable[[int, random.Random], float]) -> Generator[Step, object, object]:
    """``calls`` in one request whose answer is dropped, then the same request until a definitive answer."""
    outcomes = yield Batch(calls, Delivery.LOST_RESPONSE, "sandbox:timeout")
    rng = random.Random(0)
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            yield Sleep(backoff(attempt - 1, rng))
        outcomes = yield Batch(calls, purpose="sandbox:timeout:retry")
        assert isinstance(outcomes, tuple)
        if not all(isinstance(o, Unknown) for o in outcomes):
            break
    return outcomes


def entry_event(entry: Entry) -> bytes:
    """One server-sent event carrying ``entry``."""
    return b"event: call\nid: %d\ndata: %s\n\n" % (entry.id, orjson.dumps(entry.to_json()))
