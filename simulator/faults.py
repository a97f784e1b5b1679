"""Faults real providers produce, named at the wallet level and drawn from a seeded plan.

A fault is either a way of *delivering* one call (``Delivery``: the driver sends
it twice, twice at once, gives up waiting, drops the answer, bursts retries, or
signs it wrongly) or a change in what a round *does* (reorder, late win, an
invalid call the wallet must refuse).  The plan only decides; drivers act.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Final, TypeVar

from .calls import Unknown


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


class Invalid(StrEnum):
    """Calls the wallet must refuse, each with the code it must refuse them with."""

    BAD_SIGNATURE = "bad_signature"
    WRONG_CURRENCY = "wrong_currency"
    OVERDRAFT = "overdraft"
    CLOSED_ROUND = "closed_round"
    MISMATCHED_REPLAY = "mismatched_replay"


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

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {f.name} must be a number from 0 to 1, got {value!r}")
        deliveries = self.duplicate + self.concurrent_duplicate + self.timeout + self.lost_response + self.retry_storm
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
)


@dataclass(slots=True)
class FaultPlan:
    """Draws faults from the rates with the caller's seeded RNG (so one seed replays a run)."""

    rates: FaultRates = field(default_factory=FaultRates)
    storm_size: int = 8
    timeout_deadline_ms: tuple[int, int] = (0, 3)
    late_win_delay_s: float = 0.0

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
        return Delivery.NORMAL

    def reorder(self, rng: random.Random) -> bool:
        return self.rates.reorder > 0 and rng.random() < self.rates.reorder

    def late_win(self, rng: random.Random) -> bool:
        return self.rates.late_win > 0 and rng.random() < self.rates.late_win

    def concurrent_rounds(self, rng: random.Random) -> bool:
        return self.rates.concurrent_rounds > 0 and rng.random() < self.rates.concurrent_rounds

    def invalid(self, rng: random.Random) -> Invalid | None:
        if self.rates.invalid > 0 and rng.random() < self.rates.invalid:
            return rng.choice(list(Invalid))
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
