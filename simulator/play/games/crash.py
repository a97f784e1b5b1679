"""A crash game (Aviator, Bustabit and kin): cash out before the multiplier crashes.

Why model it: crash games are the fastest-growing traffic in Brazil, India and
at crypto casinos, and their wallet pattern is distinct — every player's bet
lands in the few seconds before a round starts, and each winner's credit comes
at the moment *they* cash out, spread over the round, while losers get nothing
when it crashes.

Rules:

* Multipliers are integers in **hundredths** (``250`` is 2.50×); no float.
* The crash point ``C`` is ``⌊100·r / U⌋`` hundredths for a uniform real
  ``U`` in [0, 1) and RTP ``r`` (``1 − house edge``), capped at
  ``max_multiplier``.  Then for every target ``t`` up to the cap,
  ``P(C ≥ t) = 100·r / t`` exactly, and a bet that cashes out at ``t`` pays
  ``stake·t/100`` with that probability: its RTP is exactly ``r`` whatever
  ``t`` — the game has one RTP, ``declared_rtp = 1 − house_edge``.
* ``U`` is drawn exactly: its bits are generated lazily until ``⌊100·r/U⌋`` is
  the same for every real in the interval they fix (almost always after the
  first 64), so no rounding of ``U`` biases the distribution.
* A crash point below 1.00× (probability ``1 − r``) is shown as 1.00×, an
  instant crash: every bet loses.  Targets are from 1.01× to the cap.
* A cash-out pays ``⌊stake·t/100⌋`` minor units, floored once.  When
  ``stake·t`` is a multiple of 100 the RTP is exactly ``r``; otherwise the
  floor keeps less than one minor unit per winning bet for the house
  (:func:`expected_return` gives the exact figure for any stake and target).

Time (not money, so a float is fine there): the multiplier grows as
``e^(0.00006·ms)`` — 2.00× after 11.6 s, 10× after 38 s — and each result says
when its cash-out and the crash happen, so an engine can send the credits when a
real game would.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import accumulate
from typing import Final, Literal

from ...protocol.calls import WinReason
from .base import Payout, RoundResult, Stake

__all__ = [
    "GROWTH_PER_MS",
    "MAX_MULTIPLIER",
    "MIN_TARGET",
    "CrashGame",
    "CrashRound",
    "cashout_amount",
    "draw_crash_point",
    "elapsed_ms",
    "expected_return",
    "format_multiplier",
    "random_target",
    "settle",
]

MIN_TARGET: Final = 101
"""1.01×: the lowest cash-out target (1.00× would be no bet at all)."""
MAX_MULTIPLIER: Final = 100_000_000
"""1,000,000.00×: the crash point's cap and the highest target."""
GROWTH_PER_MS: Final = 0.00006
"""The multiplier is ``e^(GROWTH_PER_MS · ms)`` (timing only, never money)."""


def format_multiplier(hundredths: int) -> str:
    """``250`` → ``"2.50x"`` without a float."""
    return f"{hundredths // 100}.{hundredths % 100:02d}x"


def elapsed_ms(hundredths: int) -> int:
    """Milliseconds after take-off at which the multiplier reaches ``hundredths``."""
    return 0 if hundredths <= 100 else math.ceil(math.log(hundredths / 100) / GROWTH_PER_MS)


def draw_crash_point(rng: random.Random, rtp: Fraction = Fraction(99, 100), cap: int = MAX_MULTIPLIER) -> int:
    """A crash point in hundredths with ``P(C ≥ t) = 100·rtp/t`` exactly for ``100·rtp ≤ t ≤ cap``.

    ``C = min(cap, ⌊100·rtp/U⌋)`` with ``U`` uniform in [0, 1), its binary
    digits drawn until every ``U`` they allow gives the same ``C``.  The
    result can be below 100 (an instant crash).
    """
    num, den = 100 * rtp.numerator, rtp.denominator
    k = 64
    a = rng.getrandbits(k)
    while True:
        # U lies in [a/2^k, (a+1)/2^k), so 100·rtp/U lies in (num·2^k/(den·(a+1)), num·2^k/(den·a)].
        lo = (num << k) // (den * (a + 1))
        if lo >= cap:
            return cap
        if a and (num << k) // (den * a) == lo:
            return lo
        a = (a << 32) | rng.getrandbits(32)
        k += 32


def cashout_amount(stake: int, target: int) -> int:
    """What cashing out ``stake`` at ``target`` hundredths credits: ``⌊stake·target/100⌋``."""
    return stake * target // 100


def expected_return(stake: int, target: int, rtp: Fraction = Fraction(99, 100)) -> tuple[Fraction, Fraction]:
    """Exact (mean, variance) of the payout of one bet, in minor units.

    The mean is ``⌊stake·t/100⌋ · 100·rtp/t``: ``rtp · stake`` when the
    cash-out is a whole number of minor units.
    """
    win = cashout_amount(stake, target)
    p = 100 * rtp / target
    return win * p, win * win * p * (1 - p)


def _check_bet(stake: int, target: int, cap: int) -> None:
    if type(stake) is not int or stake < 1:
        raise ValueError(f"stake must be a positive int of minor units, got {stake!r}")
    if type(target) is not int or not MIN_TARGET <= target <= cap:
        raise ValueError(f"target must be an int of hundredths in [{MIN_TARGET}, {cap}], got {target!r}")


def settle(game_id: str, bets: Sequence[tuple[int, int]], crash_point: int, round_id: str | None = None) -> RoundResult:
    """One player's ``(stake, target)`` bets in a round that crashes at ``crash_point``.

    A bet is paid :func:`cashout_amount` if and only if ``crash_point ≥ target``
    (the player's auto cash-out fires at or before the crash).
    """
    stakes: list[Stake] = []
    payouts: list[Payout] = []
    cashouts: list[tuple[int, int, int]] = []
    for stake, target in bets:
        label = f"bet @{format_multiplier(target)}"
        stakes.append(Stake(stake, label))
        if crash_point >= target:
            payouts.append(
                Payout(cashout_amount(stake, target), WinReason.REGULAR, f"cash-out @{format_multiplier(target)}")
            )
            cashouts.append((elapsed_ms(target), stake, target))
    shown = max(crash_point, 100)
    detail: dict[str, object] = {
        "crash_point": shown,
        "crash_ms": elapsed_ms(shown),
        "targets": tuple(t for _, t in bets),
        "cashouts": tuple(cashouts),
    }
    if round_id is not None:
        detail["round_id"] = round_id
    return RoundResult(game_id, tuple(stakes), tuple(payouts), detail)


# Cash-out targets players set (hundredths): auto cash-out favourites, and a share of
# "manual" players who bail out somewhere between 1.01× and 4.00×.
_TARGETS: Final = (110, 120, 130, 150, 175, 200, 250, 300, 500, 1_000, 2_000, 5_000, 10_000)
_TARGET_WEIGHTS: Final = (6, 8, 5, 14, 4, 16, 6, 8, 7, 5, 2, 1, 1)
_MANUAL_WEIGHT: Final = 17
_TARGET_CUM: Final = tuple(accumulate((*_TARGET_WEIGHTS, _MANUAL_WEIGHT)))


def random_target(rng: random.Random) -> int:
    """A realistic cash-out target in hundredths (most between 1.10× and 3.00×, a few 10×+)."""
    i = bisect_right(_TARGET_CUM, rng.randrange(_TARGET_CUM[-1]))
    return _TARGETS[i] if i < len(_TARGETS) else rng.randint(MIN_TARGET, 400)


@dataclass(frozen=True, slots=True)
class CrashGame:
    """The crash game: single-player :meth:`play` and shared rounds (:meth:`open_round`)."""

    game_id: str = "crash-x"
    name: str = "Crash X"
    house_edge: Fraction = Fraction(1, 100)
    max_multiplier: int = MAX_MULTIPLIER
    kind: Literal["crash"] = "crash"

    def __post_init__(self) -> None:
        if not 0 <= self.house_edge < 1:
            raise ValueError("the house edge is a fraction in [0, 1)")
        if self.max_multiplier < MIN_TARGET:
            raise ValueError(f"the cap must allow a {format_multiplier(MIN_TARGET)} cash-out")

    @property
    def declared_rtp(self) -> Fraction:
        return 1 - self.house_edge

    def draw(self, rng: random.Random) -> int:
        """A crash point in hundredths (below 100: an instant crash)."""
        return draw_crash_point(rng, self.declared_rtp, self.max_multiplier)

    def play(self, rng: random.Random, stake: int, target: int) -> RoundResult:
        """One player, one bet of ``stake`` with auto cash-out at ``target`` hundredths."""
        _check_bet(stake, target, self.max_multiplier)
        return settle(self.game_id, ((stake, target),), self.draw(rng))

    def play_round(self, rng: random.Random, stake: int) -> RoundResult:
        """One bet at a :func:`random_target` (RTP exactly ``declared_rtp`` when the cash-out is whole)."""
        return self.play(rng, stake, random_target(rng))

    def open_round(self, rng: random.Random) -> CrashRound:
        """A shared round.  Its crash point is fixed now, as provably-fair games commit to it
        before bets open, and revealed only by :meth:`CrashRound.settle`."""
        return CrashRound(self, f"{self.game_id}-{rng.getrandbits(48):012x}", self.draw(rng))

    def play_shared(self, rng: random.Random, bets: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, RoundResult]:
        """A whole shared round at once: ``bets`` maps a player to their ``(stake, target)`` bets."""
        live = self.open_round(rng)
        for player, theirs in bets.items():
            for stake, target in theirs:
                live.place(player, stake, target)
        return live.settle()


@dataclass(slots=True)
class CrashRound:
    """A shared crash round: bets are placed before take-off, then :meth:`settle` reveals the crash."""

    game: CrashGame
    round_id: str
    _crash_point: int = field(repr=False)
    bets: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    """Per player, their (stake, target) bets (most games allow two per player)."""
    max_bets_per_player: int = 2
    settled: bool = False

    def place(self, player_id: str, stake: int, target: int) -> None:
        if self.settled:
            raise RuntimeError(f"{self.round_id}: the round has flown")
        _check_bet(stake, target, self.game.max_multiplier)
        mine = self.bets.setdefault(player_id, [])
        if len(mine) >= self.max_bets_per_player:
            raise ValueError(f"{self.round_id}: {player_id} already has {len(mine)} bets")
        mine.append((stake, target))

    @property
    def crash_point(self) -> int:
        """The crash point in hundredths as shown (≥ 100), once settled."""
        if not self.settled:
            raise RuntimeError(f"{self.round_id}: the crash point is revealed when the round settles")
        return max(self._crash_point, 100)

    def settle(self) -> dict[str, RoundResult]:
        """Fly: every player's result, winners and losers (settles once)."""
        if self.settled:
            raise RuntimeError(f"{self.round_id}: already settled")
        self.settled = True
        game_id, point = self.game.game_id, self._crash_point
        return {player: settle(game_id, bets, point, self.round_id) for player, bets in self.bets.items()}

    def cashouts(self) -> list[tuple[int, str, Payout]]:
        """After :meth:`settle`: every winning cash-out as ``(ms after take-off, player, payout)``,
        in the order a real round credits them."""
        if not self.settled:
            raise RuntimeError(f"{self.round_id}: not settled yet")
        events = [
            (
                elapsed_ms(target),
                player,
                Payout(cashout_amount(stake, target), WinReason.REGULAR, f"cash-out @{format_multiplier(target)}"),
            )
            for player, bets in self.bets.items()
            for stake, target in bets
            if self._crash_point >= target
        ]
        events.sort(key=lambda e: (e[0], e[1]))
        return events
