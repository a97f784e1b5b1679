"""European single-zero roulette: every bet of the layout, paid exactly at its odds.

Why roulette traffic differs from a slot's: one spin carries *several* bets, so a
round is several stakes (one ``bet`` call each, or their sum, as the engine
chooses) and several independent payouts, one per winning bet, all ``regular``.

The wheel has 37 pockets, 0-36.  A bet covering ``k`` numbers pays ``36/k − 1``
to one and returns the stake, so the total credited is ``amount · 36 / k`` —
a whole number for every bet on the layout (k divides 36) — and every bet,
hence every mix of bets, returns exactly ``36/37`` of its stake on average.

Bet types and their selections:

========== ======================================= ====== =====
type       selection                               covers odds
========== ======================================= ====== =====
straight   a number, ``17`` or ``(17,)``           1      35:1
split      two adjacent numbers, ``(17, 20)``;     2      17:1
           zero splits ``(0, 1)``, ``(0, 2)``,
           ``(0, 3)``
street     a row, ``(13, 14, 15)``; the trios      3      11:1
           ``(0, 1, 2)``, ``(0, 2, 3)``
corner     four numbers meeting at a corner,       4      8:1
           ``(17, 18, 20, 21)``; the first four
           ``(0, 1, 2, 3)``
line       two adjacent rows, ``(13, ..., 18)``    6      5:1
dozen      ``1`` (1-12), ``2``, ``3``              12     2:1
column     ``1`` (1, 4, … 34), ``2``, ``3``        12     2:1
red_black  ``"red"`` or ``"black"``                18     1:1
odd_even   ``"odd"`` or ``"even"``                 18     1:1
low_high   ``"low"`` (1-18) or ``"high"``          18     1:1
========== ======================================= ====== =====

Zero loses every outside bet (no *la partage*).  Inside selections may be given
in any order; they are normalised to ascending tuples.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from itertools import accumulate
from typing import Final, Literal

from ...protocol.calls import WinReason
from .base import Payout, RoundResult, Stake

__all__ = [
    "BET_TYPES",
    "POCKETS",
    "RED",
    "ROULETTE_RTP",
    "Bet",
    "BetLike",
    "BetType",
    "EuropeanRoulette",
    "bet_moments",
    "coerce_bet",
    "color",
    "legal_selections",
    "random_bets",
    "settle_bets",
]

POCKETS: Final = 37
ROULETTE_RTP: Final = Fraction(36, 37)

RED: Final = frozenset({1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36})
BLACK: Final = frozenset(range(1, 37)) - RED


class BetType(StrEnum):
    STRAIGHT = "straight"
    SPLIT = "split"
    STREET = "street"
    CORNER = "corner"
    LINE = "line"
    DOZEN = "dozen"
    COLUMN = "column"
    RED_BLACK = "red_black"
    ODD_EVEN = "odd_even"
    LOW_HIGH = "low_high"


BET_TYPES: Final = tuple(BetType)

Selection = int | str | tuple[int, ...]


def _layout() -> dict[BetType, dict[Selection, frozenset[int]]]:
    """Every legal bet of the European layout: type → selection → numbers covered."""
    rows = [(3 * r - 2, 3 * r - 1, 3 * r) for r in range(1, 13)]
    splits = [(n, n + 1) for n in range(1, 37) if n % 3] + [(n, n + 3) for n in range(1, 34)]
    splits += [(0, 1), (0, 2), (0, 3)]
    corners = [(n, n + 1, n + 3, n + 4) for n in range(1, 33) if n % 3] + [(0, 1, 2, 3)]
    lines = [rows[r] + rows[r + 1] for r in range(11)]
    table: dict[BetType, dict[Selection, frozenset[int]]] = {
        BetType.STRAIGHT: {n: frozenset({n}) for n in range(37)},
        BetType.SPLIT: {s: frozenset(s) for s in splits},
        BetType.STREET: {s: frozenset(s) for s in [*rows, (0, 1, 2), (0, 2, 3)]},
        BetType.CORNER: {s: frozenset(s) for s in corners},
        BetType.LINE: {s: frozenset(s) for s in lines},
        BetType.DOZEN: {d: frozenset(range(12 * d - 11, 12 * d + 1)) for d in (1, 2, 3)},
        BetType.COLUMN: {c: frozenset(range(c, 37, 3)) for c in (1, 2, 3)},
        BetType.RED_BLACK: {"red": RED, "black": BLACK},
        BetType.ODD_EVEN: {"odd": frozenset(range(1, 37, 2)), "even": frozenset(range(2, 37, 2))},
        BetType.LOW_HIGH: {"low": frozenset(range(1, 19)), "high": frozenset(range(19, 37))},
    }
    covers = {BetType.STRAIGHT: 1, BetType.SPLIT: 2, BetType.STREET: 3, BetType.CORNER: 4, BetType.LINE: 6}
    for bet_type, size in covers.items():
        assert all(len(ns) == size for ns in table[bet_type].values()), bet_type
    return table


_LAYOUT: Final = _layout()
_INSIDE: Final = frozenset({BetType.STRAIGHT, BetType.SPLIT, BetType.STREET, BetType.CORNER, BetType.LINE})


def legal_selections(bet_type: BetType | str) -> tuple[Selection, ...]:
    """Every selection ``bet_type`` accepts, in layout order."""
    return tuple(_LAYOUT[BetType(bet_type)])


@dataclass(frozen=True, slots=True)
class Bet:
    """One chip stack on the layout: ``amount`` minor units on ``selection`` of ``bet_type``.

    Construction validates and normalises; ``numbers`` are the pockets it wins on.
    """

    bet_type: BetType
    selection: Selection
    amount: int
    numbers: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bet_type = BetType(self.bet_type)
        selection = self.selection
        if bet_type in _INSIDE:
            if isinstance(selection, int) and not isinstance(selection, bool):
                selection = (selection,)
            if not isinstance(selection, Sequence) or isinstance(selection, str):
                raise ValueError(f"{bet_type} takes a tuple of numbers, got {selection!r}")
            if not all(type(n) is int for n in selection):
                raise ValueError(f"{bet_type} takes whole numbers, got {selection!r}")
            selection = tuple(sorted(selection))
            if bet_type is BetType.STRAIGHT:
                selection = selection[0] if len(selection) == 1 else selection
        elif type(selection) is bool:
            raise ValueError(f"not a selection: {selection!r}")
        numbers = _LAYOUT[bet_type].get(selection)
        if numbers is None:
            raise ValueError(f"not a {bet_type} bet on a European layout: {self.selection!r}")
        if type(self.amount) is not int or self.amount < 1:
            raise ValueError(f"a bet is a positive int of minor units, got {self.amount!r}")
        object.__setattr__(self, "bet_type", bet_type)
        object.__setattr__(self, "selection", selection)
        object.__setattr__(self, "numbers", numbers)

    @property
    def odds(self) -> int:
        """``x`` of "pays x to 1"."""
        return 36 // len(self.numbers) - 1

    @property
    def payout(self) -> int:
        """What a win credits: the stake back plus ``odds`` times it."""
        return self.amount * (36 // len(self.numbers))

    @property
    def label(self) -> str:
        sel = self.selection
        text = "-".join(map(str, sel)) if isinstance(sel, tuple) else str(sel)
        return f"{self.bet_type} {text}"


BetLike = Bet | tuple[str, Selection, int]


def coerce_bet(bet: BetLike) -> Bet:
    """A :class:`Bet` from a ``Bet`` or a ``(bet_type, selection, amount)`` tuple."""
    if isinstance(bet, Bet):
        return bet
    bet_type, selection, amount = bet
    return Bet(BetType(bet_type), selection, amount)


def settle_bets(game_id: str, bets: Sequence[Bet], number: int, detail: Mapping[str, object]) -> RoundResult:
    """The result of ``bets`` when the ball lands on ``number``: one payout per winning bet."""
    stakes = tuple(Stake(b.amount, b.label) for b in bets)
    payouts = tuple(Payout(b.payout, WinReason.REGULAR, b.label) for b in bets if number in b.numbers)
    return RoundResult(game_id, stakes, payouts, detail)


def color(number: int) -> str:
    return "green" if number == 0 else "red" if number in RED else "black"


def bet_moments(bets: Iterable[BetLike]) -> tuple[Fraction, Fraction]:
    """Exact (mean, variance) of a spin's total payout for ``bets``, over the 37 pockets."""
    bs = [coerce_bet(b) for b in bets]
    pays = [sum(b.payout for b in bs if n in b.numbers) for n in range(POCKETS)]
    mean = Fraction(sum(pays), POCKETS)
    return mean, Fraction(sum(p * p for p in pays), POCKETS) - mean * mean


# ---------------------------------------------------------------------- realistic bets

# How players spread chips: mostly even-money and straight-up bets, some dozens,
# fewer splits, corners, streets and lines.  Integer weights, aligned with BET_TYPES.
_TYPE_WEIGHTS: Final = {
    BetType.STRAIGHT: 26,
    BetType.SPLIT: 10,
    BetType.STREET: 4,
    BetType.CORNER: 8,
    BetType.LINE: 3,
    BetType.DOZEN: 10,
    BetType.COLUMN: 6,
    BetType.RED_BLACK: 17,
    BetType.ODD_EVEN: 8,
    BetType.LOW_HIGH: 8,
}
_TYPE_CUM: Final = tuple(accumulate(_TYPE_WEIGHTS.values()))
_TYPE_LIST: Final = tuple(_TYPE_WEIGHTS)
_SELECTIONS: Final = {t: tuple(_LAYOUT[t]) for t in BetType}
# Number of distinct bets a player puts on one spin (1..8): most place one to three.
_COUNT_CUM: Final = tuple(accumulate((30, 22, 16, 11, 8, 6, 4, 3)))
_CHIP_STEPS: Final = (1, 2, 5)


def _chip(total: int, count: int) -> int:
    """The chip value: the largest 1-2-5 denomination that divides ``total`` into at least
    ``4 * count`` chips (or ``count`` when even that is impossible), so amounts look like
    a stack of round chips rather than arbitrary cents."""
    best = 1
    scale = 1
    while scale <= total:
        for step in _CHIP_STEPS:
            chip = step * scale
            if total % chip == 0 and total // chip >= 4 * count:
                best = max(best, chip)
        scale *= 10
    return best


def random_bets(rng: random.Random, total: int, max_bets: int = 8) -> list[Bet]:
    """A realistic set of bets whose amounts add up to exactly ``total`` minor units.

    One to ``max_bets`` bets (fewer when ``total`` is small), each a whole number
    of chips, on types drawn with the weights players show (straight-ups and
    red/black most), on uniformly chosen legal selections.  Bets on the same spot
    are merged, as chips on one spot are one bet.
    """
    if type(total) is not int or total < 1:
        raise ValueError(f"total must be a positive int of minor units, got {total!r}")
    count = min(bisect_right(_COUNT_CUM, rng.randrange(_COUNT_CUM[-1])) + 1, max_bets, total)
    chip = _chip(total, count)
    chips = total // chip
    # Split ``chips`` into ``count`` positive parts: ``count - 1`` distinct cut points.
    cuts = sorted(rng.sample(range(1, chips), count - 1)) if count > 1 else []
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, chips], strict=True)]
    merged: dict[tuple[BetType, Selection], int] = {}
    for part in parts:
        bet_type = _TYPE_LIST[bisect_right(_TYPE_CUM, rng.randrange(_TYPE_CUM[-1]))]
        selection = rng.choice(_SELECTIONS[bet_type])
        merged[(bet_type, selection)] = merged.get((bet_type, selection), 0) + part * chip
    return [Bet(t, s, amount) for (t, s), amount in merged.items()]


# ---------------------------------------------------------------------- the game


@dataclass(frozen=True, slots=True)
class EuropeanRoulette:
    """Single-zero roulette, one player per spin (RNG roulette, not a live table)."""

    game_id: str = "roulette-eu"
    name: str = "European Roulette"
    kind: Literal["roulette"] = "roulette"
    declared_rtp: Fraction = ROULETTE_RTP

    def spin(self, rng: random.Random) -> int:
        return rng.randrange(POCKETS)

    def play(self, rng: random.Random, bets: Iterable[BetLike]) -> RoundResult:
        """Spin once and settle ``bets`` (``Bet`` or ``(bet_type, selection, amount)``)."""
        placed = [coerce_bet(b) for b in bets]
        if not placed:
            raise ValueError("a spin needs at least one bet")
        number = self.spin(rng)
        return settle_bets(self.game_id, placed, number, {"number": number, "color": color(number)})

    def play_round(self, rng: random.Random, stake: int) -> RoundResult:
        """``stake`` spread over :func:`random_bets`, then one spin."""
        return self.play(rng, random_bets(rng, stake))
