"""What the mock provider remembers, in memory: sessions, their rounds, and every wallet call.

Why in memory: the provider is a test double an operator integrates against;
its evidence (round history, the transaction log for reconciliation, the
ledger's findings) matters for as long as the process runs, and a restart is a
clean slate.  Transaction ids therefore carry a random per-process ``instance``
prefix: a restarted provider must never reuse a ``tx_id`` the wallet has seen
(PROTOCOL.md rule 1), even with the same ``--seed``.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from ..drive.client import BatchExchange, WalletClient
from ..drive.delivery import label
from ..judge.ledger import Ledger
from ..judge.stats import RunStats
from ..play.rounds import RetryPolicy, Seat, TxIds
from ..protocol.calls import Exchange, Ok, WalletCall
from ..protocol.money import Currency

TX_LOG_COLUMNS = ("at", "tx_id", "op", "player_id", "session_id", "round_id", "game_id", "amount", "currency",
                  "ref_tx_id", "outcome", "wallet_tx_id", "latency_ms")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    wallet_url: str
    """The wallet's protocol base URL (canonical: ``http://host:port/wallet``)."""
    secret: str
    api_key: str
    dialect: str = "canonical"
    seed: int | None = None
    """Seeds every session's game draws; None: a random seed (reported by ``/healthz``)."""
    public_url: str | None = None
    """Where browsers reach this provider (game URLs); None: the Host the operator called."""
    timeout_s: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    wallet_ssl: ssl.SSLContext | None = None
    """The TLS context of the calls to an ``https://`` wallet (``--ca-bundle``...); None: aiohttp's default
    (the system trust store)."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call the provider made to the wallet, with what came back."""

    at: float
    """Unix time the call was sent."""
    op: str
    tx_id: str | None
    ref_tx_id: str | None
    player_id: str | None
    session_id: str | None
    round_id: str | None
    game_id: str | None
    amount: int | None
    currency: str | None
    outcome: str
    wallet_tx_id: str | None
    latency_ms: float
    http_status: int | None
    batch: tuple[str, ...] = ()
    """When the call went in one request with others (a batching dialect): the ``tx_id`` of every
    action of that request, in order; empty for a call sent on its own."""

    def to_json(self) -> dict[str, Any]:
        """A transaction-log line (the report's columns, in order)."""
        return {
            "at": iso(self.at), "tx_id": self.tx_id, "op": self.op, "player_id": self.player_id,
            "session_id": self.session_id, "round_id": self.round_id, "game_id": self.game_id,
            "amount": self.amount, "currency": self.currency, "ref_tx_id": self.ref_tx_id,
            "outcome": self.outcome, "wallet_tx_id": self.wallet_tx_id, "latency_ms": round(self.latency_ms, 3),
            **({"batch": list(self.batch)} if self.batch else {}),
        }

    def brief(self) -> dict[str, Any]:
        """What a round's answer shows of the call."""
        return {"op": self.op, "tx_id": self.tx_id, "ref_tx_id": self.ref_tx_id, "amount": self.amount,
                "outcome": self.outcome, "wallet_tx_id": self.wallet_tx_id, "latency_ms": round(self.latency_ms, 3),
                **({"batch": list(self.batch)} if self.batch else {})}


@dataclass(slots=True)
class RoundRecord:
    round_id: str
    session_id: str
    game_id: str
    kind: str
    stake: int
    status: str
    staked: int
    paid: int
    balance: int | None
    currency: str
    at: float
    refusal: str | None = None
    calls: list[CallRecord] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "round_id": self.round_id, "session_id": self.session_id, "game_id": self.game_id, "kind": self.kind,
            "status": self.status, "stake": self.stake, "staked": self.staked, "paid": self.paid,
            "balance": self.balance, "currency": self.currency, "at": iso(self.at), "refusal": self.refusal,
            "detail": self.detail, "notes": self.notes, "calls": [c.brief() for c in self.calls],
        }


def plain(detail: object) -> dict[str, Any]:
    """A game's informative ``detail`` as plain JSON (tuples become lists, anything odd a string)."""
    data = orjson.loads(orjson.dumps(detail, default=str, option=orjson.OPT_NON_STR_KEYS))
    return data if isinstance(data, dict) else {"detail": data}


@dataclass(slots=True)
class Session:
    """A launched game: the seat the rounds play on, and everything that happened in it."""

    session_id: str
    player_id: str
    currency: Currency
    language: str
    game_id: str
    seat: Seat
    rng: random.Random
    ids: TxIds
    created_at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One round at a time per session: a player cannot spin twice at once in one game window."""
    rounds: list[RoundRecord] = field(default_factory=list)
    last_stake: int | None = None


class ProviderState:
    """Sessions, the transaction log, and the ledger that judges the wallet's answers."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed if seed is not None else secrets.randbits(63)
        self.instance = secrets.token_hex(4)
        self.ledger = Ledger()
        self.stats = RunStats()
        self.started = time.monotonic()
        self.sessions: dict[str, Session] = {}
        self.log: list[CallRecord] = []
        self.observers: list[Callable[[CallRecord, Exchange], None]] = []
        """Told of every exchange as it is logged (the sandbox's live panel shows them as they happen)."""
        self._sessions_made = 0

    def open_session(self, player_id: str, currency: Currency, language: str, game_id: str,
                     session_token: str, balance: int) -> Session:
        """A new session: an unguessable id (the game URL is the player's only key) and its own
        seeded draws and id sequence."""
        self._sessions_made += 1
        n = self._sessions_made
        session = Session(
            session_id=secrets.token_urlsafe(18), player_id=player_id, currency=currency, language=language,
            game_id=game_id, seat=Seat(player_id, session_token, currency, balance),
            rng=random.Random(f"{self.seed}:{n}"), ids=TxIds(f"cp{self.instance}-s{n}"), created_at=time.time(),
        )
        self.sessions[session.session_id] = session
        return session

    def recorder(self, session_id: str | None, player_id: str, currency: str,
                 also: list[CallRecord] | None = None) -> Sink:
        """A sink for :class:`RecordingClient`: logs each exchange (and adds it to ``also``)."""

        def sink(sent_at: float, ex: Exchange, batch: tuple[WalletCall, ...] = ()) -> None:
            call, outcome = ex.call, ex.outcome
            record = CallRecord(
                at=sent_at, op=str(call.op), tx_id=call.tx_id, ref_tx_id=call.ref_tx_id,
                player_id=call.player_id or player_id, session_id=session_id, round_id=call.round_id,
                game_id=call.game_id, amount=call.amount.minor if call.amount else None,
                currency=call.amount.currency.code if call.amount else currency, outcome=label(outcome),
                wallet_tx_id=outcome.wallet_tx_id if isinstance(outcome, Ok) else None,
                latency_ms=ex.latency_ms, http_status=ex.status, batch=tuple(c.tx_id or "" for c in batch),
            )
            self.log.append(record)
            if also is not None:
                also.append(record)
            for observe in self.observers:
                observe(record, ex)

        return sink


class Sink(Protocol):
    """Told of each exchange; ``batch`` is every call of the request when it carried several."""

    def __call__(self, sent_at: float, ex: Exchange, batch: tuple[WalletCall, ...] = ()) -> None: ...


def members(bex: BatchExchange) -> list[Exchange]:
    """One request's calls as exchanges of their own, each with the shared request and answer."""
    return [Exchange(call, outcome, bex.latency_ms, bex.request_body, bex.status, bex.response_body)
            for call, outcome in zip(bex.calls, bex.outcome, strict=True)]


@dataclass
class RecordingClient(WalletClient):
    """A wallet client that hands every exchange to ``sink``: the provider's transaction log.

    The driver delivers through it, so duplicates and retries are logged as the
    separate calls they are."""

    sink: Sink | None = None

    async def exchange(self, call: WalletCall) -> Exchange:
        sent_at = time.time()
        ex = await super().exchange(call)
        if self.sink is not None:
            self.sink(sent_at, ex)
        return ex

    async def exchange_batch(self, calls: Sequence[WalletCall]) -> BatchExchange:
        """One request for several calls, logged as one line per call (each naming the request's calls)."""
        sent_at = time.time()
        bex = await super().exchange_batch(calls)
        if self.sink is not None:
            for ex in members(bex):
                self.sink(sent_at, ex, bex.calls)
        return bex
