"""Faults real providers produce, named at the wallet level and drawn from a seeded plan.

A fault is either a way of *delivering* one call (``Delivery``: the driver sends
it twice, twice at once, gives up waiting, drops the answer, bursts retries, or
signs it wrongly, or reads only some of a batch's answers), a change in what a round *does* (reorder, late win, an
invalid call the wallet must refuse), or an acknowledged call sent again long
after its answer (``late_duplicate``: :class:`LateDuplicates`, a provider's retry
queue or settlement job).  The plan only decides (:meth:`FaultPlan.decide`: one
:class:`Decision` per call or batch); :mod:`simulator.drive.delivery` carries decisions out for
every driver.

A call the wallet must refuse carries a :class:`Due`: every code of a rule the call
breaks (PROTOCOL.md, "Where a wallet may choose": *any code of a rule that the call
breaks is correct, as long as nothing changes*), computed when the call is made.
"""

from __future__ import annotations

import random
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Final, TypeVar

from ..protocol.calls import Unknown, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.findings import RULE_OF_CODE


class Delivery(StrEnum):
    NORMAL = "normal"
    DUPLICATE = "duplicate"
    """The same request again, after the first answer."""
    CONCURRENT_DUPLICATE = "concurrent_duplicate"
    """The same request twice at once."""
    TIMEOUT = "timeout"
    """The provider stops waiting at a short deadline; the request may still land."""
    LOST_RESPONSE = "lost_response"
    """The wallet answers but the provider never reads the answer."""
    RETRY_STORM = "retry_storm"
    """Many copies of one request in a burst."""
    BAD_SIGNATURE = "bad_signature"
    """Signed with the wrong secret: must be refused with INVALID_SIGNATURE."""
    PARTIAL_BATCH = "partial_batch"
    """A batch answered for some of its actions only: the provider reads the answers of its first
    actions, the others never reach it (a proxy cut the body short, a partial failure).  A single
    call has one action: delivered as normal."""


class Invalid(StrEnum):
    """Calls the wallet must refuse (:func:`simulator.play.rounds.invalid_call` says with which codes)."""

    BAD_SIGNATURE = "bad_signature"
    WRONG_CURRENCY = "wrong_currency"
    OVERDRAFT = "overdraft"
    CLOSED_ROUND = "closed_round"
    MISMATCHED_REPLAY = "mismatched_replay"
    ROLLBACK_OF_WIN = "rollback_of_win"


SESSION_CODES: Final = frozenset({ErrorCode.SESSION_EXPIRED, ErrorCode.INVALID_TOKEN})
"""The codes of "`bet` needs a live session of its own player (`INVALID_TOKEN`, `SESSION_EXPIRED`)"."""
CIRCUMSTANTIAL: Final = frozenset({ErrorCode.SESSION_EXPIRED, ErrorCode.INSUFFICIENT_FUNDS})
"""Codes a call may earn from the moment it arrives (a session that ran out, a balance that fell),
which the reference wallet answers too when they hold: never a choice worth a note."""


@dataclass(frozen=True, slots=True)
class Due:
    """A refusal that is due, and what a wallet may answer instead of the usual code.

    ``codes``: every code of a rule the call breaks, any of which is correct as long as nothing
    changes; ``usual``: the code of the rule the call is made to test (what the reference wallet
    answers when nothing else applies); ``rule``: that rule's id in :data:`simulator.protocol.findings.RULES`.
    The ledger adds ``INSUFFICIENT_FUNDS`` for a bet whenever the balance may not cover it."""

    codes: frozenset[ErrorCode]
    usual: ErrorCode
    rule: str
    what: str = ""
    """What the call is, as a finding names it ("bet on a closed round")."""

    @classmethod
    def of(cls, code: ErrorCode, *also: ErrorCode, rule: str | None = None, what: str = "") -> Due:
        return cls(frozenset({code, *also}), code, rule or RULE_OF_CODE.get(code, "errors-codes"), what)


def as_due(expect: ErrorCode | Due | None) -> Due | None:
    """A due refusal from a plain code (callers that name one code) or as it is."""
    if expect is None or isinstance(expect, Due):
        return expect
    return Due.of(expect)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probabilities per call (deliveries) or per round (reorder, late win, invalid).

    Rates are given as fractions in scenario files; they steer a seeded RNG and
    never touch money, so float is fine here.
    """

    duplicate: float = 0.0
    concurrent_duplicate: float = 0.0
    timeout: float = 0.0
    lost_response: float = 0.0
    retry_storm: float = 0.0
    reorder: float = 0.0
    late_win: float = 0.0
    invalid: float = 0.0
    concurrent_rounds: float = 0.0
    """A player with two tables open: two rounds of one player in flight at once."""
    late_duplicate: float = 0.0
    """Per acknowledged bet, win or rollback: sent again as it was, long after its answer."""
    partial_batch: float = 0.0
    """Per batch (a batching dialect): only its first actions' answers are read."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {f.name} must be a number from 0 to 1, got {value!r}")
        deliveries = self.duplicate + self.concurrent_duplicate + self.timeout + self.lost_response + self.retry_storm \
            + self.partial_batch
        if deliveries > 1.0:
            raise ValueError("delivery fault rates add up to more than 1")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


DELIVERY_FAULTS: Final = (
    Delivery.DUPLICATE,
    Delivery.CONCURRENT_DUPLICATE,
    Delivery.TIMEOUT,
    Delivery.LOST_RESPONSE,
    Delivery.RETRY_STORM,
    Delivery.PARTIAL_BATCH,
)


class Read(StrEnum):
    """Which copy's answer the provider reads."""

    FIRST = "first"
    """The first copy's (copies sent one after the other: the provider waited for the first)."""
    ANY = "any"
    """The first definitive answer of the copies (copies sent at once: :func:`answered`)."""
    NONE = "none"
    """None: the round gets ``Unknown`` (the answer was lost)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The fault plan's whole decision for one call or batch, as data: what a driver needs to
    deliver it and nothing else, so every driver delivers it alike (:mod:`simulator.drive.delivery`).

    A new delivery fault is a new way of filling these fields in :meth:`FaultPlan.decide`."""

    fault: str | None = None
    """What the run counts as injected (None: nothing)."""
    copies: int = 1
    concurrent: bool = False
    """The copies go out at once (else one after the other, each after the previous answer)."""
    deadline_s: float | None = None
    """The provider stops waiting after this long (the request goes on and still reaches the ledger);
    None: it waits for the answer (the client's own timeout).  With a deadline there is one copy."""
    read: Read = Read.FIRST
    visible: bool = True
    """Whether the provider reads each copy's answer (the ledger's evidence says so)."""
    bad_signature: bool = False
    """Signed with the wrong secret."""
    actions_read: int | None = None
    """Of a batch, how many of its first actions' answers the provider reads (None: every one)."""
    unread: str = ""
    """The reason of the ``Unknown`` the round gets for an answer it does not read."""


PLAIN: Final = Decision()
"""A call delivered once, its answer read: the decision for almost every call."""


@dataclass(slots=True)
class FaultPlan:
    """Draws faults from the rates with the caller's seeded RNG (so one seed replays a run)."""

    rates: FaultRates = field(default_factory=FaultRates)
    storm_size: int = 8
    timeout_deadline_ms: tuple[int, int] = (0, 3)
    late_win_delay_s: float = 0.0
    late_duplicate_min_delay_s: float = 0.0
    """A late duplicate goes out no sooner than this after its original was answered …"""
    late_duplicate_min_calls: int = 0
    """… and after at least this many other calls (both must hold; the end of play sends what is left)."""

    def delivery(self, rng: random.Random) -> Delivery:
        # DELIVERY_FAULTS in order, unrolled (called for every call): the same draw, the same sums.
        roll = rng.random()
        r = self.rates
        if roll < r.duplicate:
            return Delivery.DUPLICATE
        roll -= r.duplicate
        if roll < r.concurrent_duplicate:
            return Delivery.CONCURRENT_DUPLICATE
        roll -= r.concurrent_duplicate
        if roll < r.timeout:
            return Delivery.TIMEOUT
        roll -= r.timeout
        if roll < r.lost_response:
            return Delivery.LOST_RESPONSE
        roll -= r.lost_response
        if roll < r.retry_storm:
            return Delivery.RETRY_STORM
        roll -= r.retry_storm
        if roll < r.partial_batch:
            return Delivery.PARTIAL_BATCH
        return Delivery.NORMAL

    def decide(self, delivery: Delivery, tx_id: str | None, purpose: str = "", actions: int | None = None) -> Decision:
        """How to deliver one call (``actions`` None) or a batch of ``actions`` calls whose first
        ``tx_id`` is given, sent with ``delivery`` for ``purpose``.  Deadlines and partial answers
        are seeded by the tx_id, so every driver decides the same for the same run.

        A bad signature is an invalid call: counted once, by its purpose (the signed resend after
        it, ``…:again``, is a valid call); a batch never goes badly signed."""
        if purpose.startswith("invalid:"):
            fault = None if purpose.endswith(":again") else purpose
        elif delivery is Delivery.NORMAL:
            return PLAIN
        else:
            fault = str(delivery)
        batch = actions is not None
        if delivery is Delivery.DUPLICATE:
            return Decision(fault, copies=2)
        if delivery in (Delivery.CONCURRENT_DUPLICATE, Delivery.RETRY_STORM):
            return Decision(fault, copies=self.copies(delivery), concurrent=True, read=Read.ANY)
        if delivery is Delivery.LOST_RESPONSE:
            return Decision(fault, read=Read.NONE, visible=False,
                            unread=f"{delivery} (fault)" if batch else "lost response (fault)")
        if delivery is Delivery.TIMEOUT:
            return Decision(fault, deadline_s=self.deadline_s(tx_id),
                            unread=f"{delivery} (fault)" if batch else "provider stopped waiting (fault)")
        if delivery is Delivery.BAD_SIGNATURE:
            return Decision(fault, bad_signature=not batch)
        if delivery is Delivery.PARTIAL_BATCH:
            if actions is None or actions < 2:
                return PLAIN  # one action is answered whole
            return Decision(fault, actions_read=self.actions_read(tx_id, actions), unread=f"{delivery} (fault)")
        return Decision(fault)  # NORMAL with an invalid purpose

    def actions_read(self, tx_id: str | None, actions: int) -> int:
        """Of a batch of ``actions`` (two or more), how many first answers a partial answer carries:
        at least one, never all; seeded by the first tx_id, as :meth:`deadline_s`."""
        return 1 + zlib.crc32(f"partial:{tx_id}".encode()) % (actions - 1)

    def reorder(self, rng: random.Random) -> bool:
        return self.rates.reorder > 0 and rng.random() < self.rates.reorder

    def late_win(self, rng: random.Random) -> bool:
        return self.rates.late_win > 0 and rng.random() < self.rates.late_win

    def concurrent_rounds(self, rng: random.Random) -> bool:
        return self.rates.concurrent_rounds > 0 and rng.random() < self.rates.concurrent_rounds

    def late_duplicate(self, tx_id: str | None) -> bool:
        """Whether the acknowledged call ``tx_id`` is sent again late: seeded by the tx_id, as
        :meth:`deadline_s`, so every driver picks the same calls for the same run."""
        rate = self.rates.late_duplicate
        return rate > 0 and zlib.crc32(f"late:{tx_id}".encode()) < rate * 2**32

    def invalid(self, rng: random.Random, kinds: Sequence[Invalid] | None = None) -> Invalid | None:
        """An invalid call for this round, or None; ``kinds``: those the dialect's wire can express
        (:func:`simulator.play.rounds.expressible`; every kind by default, drawn as always)."""
        if self.rates.invalid > 0 and rng.random() < self.rates.invalid:
            choices = list(Invalid) if kinds is None else list(kinds)
            return rng.choice(choices) if choices else None
        return None

    def deadline_ms(self, rng: random.Random) -> int:
        low, high = self.timeout_deadline_ms
        return rng.randint(low, high)

    def deadline_s(self, tx_id: str | None) -> float:
        """How long the provider waits before it gives up on a timed-out call: seeded by the tx_id, so
        the same run draws the same deadlines in every driver."""
        return self.deadline_ms(random.Random(zlib.crc32((tx_id or "").encode()))) / 1000

    def copies(self, delivery: Delivery) -> int:
        """How many copies of one request go out at once for a concurrent delivery."""
        return 2 if delivery is Delivery.CONCURRENT_DUPLICATE else max(2, self.storm_size)


@dataclass(slots=True)
class _Queued:
    call: WalletCall
    at: float
    after_calls: int


class LateDuplicates:
    """A provider's retry queue: acknowledged calls waiting to be sent again, long after their answer.

    Pure bookkeeping (drivers keep one and say what time it is and how many calls were sent): a
    call offered at ``now`` after ``calls`` calls is due once ``min_delay_s`` have passed *and*
    ``min_calls`` other calls were sent.  Calls are kept per player, so a player's due calls go
    out between that player's rounds (each replay then alone, judged exactly); what is still
    queued when play ends is sent then, before settlement (:meth:`drain`)."""

    MAX_QUEUED: Final = 100_000

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.queues: dict[str, deque[_Queued]] = {}
        self.queued = 0
        self.sent = 0

    def offer(self, call: WalletCall, now: float, calls: int) -> bool:
        """An acknowledged call: queued if the plan picks it for a late duplicate."""
        if call.player_id is None or not self.plan.late_duplicate(call.tx_id) or self.queued >= self.MAX_QUEUED:
            return False
        q = self.queues.get(call.player_id)
        if q is None:
            q = self.queues[call.player_id] = deque()
        q.append(_Queued(call, now + self.plan.late_duplicate_min_delay_s, calls + self.plan.late_duplicate_min_calls))
        self.queued += 1
        return True

    def due(self, player_id: str, now: float, calls: int) -> list[WalletCall]:
        """The player's calls due now, oldest first (taken off the queue)."""
        q = self.queues.get(player_id)
        out: list[WalletCall] = []
        while q and q[0].at <= now and q[0].after_calls <= calls:
            out.append(q.popleft().call)
        self.queued -= len(out)
        self.sent += len(out)
        return out

    def drain(self, player_id: str) -> list[WalletCall]:
        """Every call still queued for the player (the end of play)."""
        q = self.queues.pop(player_id, None)
        out = [e.call for e in q] if q else []
        self.queued -= len(out)
        self.sent += len(out)
        return out

    def players(self) -> list[str]:
        return [pid for pid, q in self.queues.items() if q]


T = TypeVar("T")


def unanswered(answer: object) -> bool:
    """No definitive answer: an unknown outcome, or for a batch not one of its actions answered."""
    if isinstance(answer, tuple):
        return all(isinstance(o, Unknown) for o in answer)
    return isinstance(answer, Unknown)


def answered(answers: Sequence[T]) -> T:
    """Of the answers to copies sent at once (outcomes, or a batch's tuples of them), the one a
    provider reads: the first with a definitive answer, else the first."""
    return next((a for a in answers if not unanswered(a)), answers[0])
