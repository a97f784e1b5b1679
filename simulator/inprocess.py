"""An in-process transport: the simulator's dialect talks to the reference wallet's dialect
and rules in memory, with no network (h11's trick of pairing both sides in one process).

Tests of rounds, faults and the ledger run on it in milliseconds, and a broken
wallet for a test is one subclass away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from .calls import Exchange, Outcome, Unknown, WalletCall
from .dialects import Dialect, HttpRequest, HttpResponse
from .dialects.canonical import CanonicalDialect
from .faults import Delivery
from .ledger import Ledger
from .rounds import Parallel, Send, Sleep, Step
from .wallet import engine
from .wallet.memory import MemoryRepo


@dataclass
class InProcessWallet:
    """The reference wallet's rules on a memory repository, reached through encoded bytes."""

    secret: str = "in-process"
    clock: Callable[[], float] = time.time
    repo: MemoryRepo = field(default_factory=MemoryRepo)

    def __post_init__(self) -> None:
        self.dialect: Dialect = CanonicalDialect(self.secret)

    def handle(self, request: HttpRequest) -> HttpResponse:
        now = self.clock()
        decoded = self.dialect.decode_request(request, now)
        if not isinstance(decoded, WalletCall):
            return self.dialect.encode_response(None, decoded)
        return self.dialect.encode_response(decoded, self.execute(decoded, now))

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
    """What :class:`simulator.client.WalletClient` is, minus the network."""

    wallet: InProcessWallet
    dialect: Dialect

    def exchange(self, call: WalletCall) -> Exchange:
        req = self.dialect.encode_call(call, self.wallet.clock())
        started = time.perf_counter()
        resp = self.wallet.handle(req)
        outcome = self.dialect.decode_response(call, resp)
        return Exchange(call, outcome, (time.perf_counter() - started) * 1000, req.body, resp.status, resp.body)


@dataclass
class SyncDriver:
    """Drives round generators against an in-process wallet, applying faults deterministically.

    A timeout or lost response lands the call and hides the answer (the worst
    case for a wallet); concurrent deliveries run one after the other.
    """

    client: InProcessClient
    ledger: Ledger
    bad_signer: InProcessClient | None = None
    sent: list[tuple[Send, Exchange]] = field(default_factory=list)

    def _one(self, send: Send, client: InProcessClient | None = None, visible: bool = True) -> Exchange:
        token = self.ledger.begin(send.call, send.expect, rule=send.rule)
        ex = (client or self.client).exchange(send.call)
        self.ledger.end(token, send.call, ex.outcome, expect=send.expect, visible=visible, latency_ms=ex.latency_ms,
                        status=ex.status, response=ex.response_body)
        self.sent.append((send, ex))
        return ex

    def deliver(self, send: Send) -> Outcome:
        d = send.delivery
        if d is Delivery.BAD_SIGNATURE:
            return self._one(send, self.bad_signer).outcome
        if d in (Delivery.TIMEOUT, Delivery.LOST_RESPONSE):
            self._one(send, visible=False)
            return Unknown(f"{d} (fault)")
        copies = {Delivery.DUPLICATE: 2, Delivery.CONCURRENT_DUPLICATE: 2, Delivery.RETRY_STORM: 4}.get(d, 1)
        first = self._one(send)
        for _ in range(copies - 1):
            self._one(send)
        return first.outcome

    def drive(self, gen: Generator[Step, object, object]) -> object:
        reply: object = None
        while True:
            try:
                step = gen.send(reply)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, Send):
                reply = self.deliver(step)
            elif isinstance(step, Sleep):
                reply = None
            elif isinstance(step, Parallel):
                reply = [self.drive(g) for g in step.rounds]
            else:  # pragma: no cover
                raise TypeError(step)
