"""What a game round is, as a wallet sees it: stakes debited, payouts credited, and why.

A game model never touches a wallet.  It says what a real provider's game would
say at the end of a round — *these* amounts were staked, *these* amounts are
paid and for *this* reason — and the traffic engine turns that into calls (a
stake becomes a ``bet``, a payout a ``win`` with its :class:`WinReason`).

Rules every game here follows, because the wallet tests depend on them:

* **Integers only.**  Amounts are ``int`` minor units of the player's currency
  (a game never needs to know which one: the maths is scale-free).  Odds and
  multipliers are ``int`` or :class:`fractions.Fraction`; a payout is floored
  to a whole minor unit once, at the end.  No float ever touches an amount.
* **Pure and seeded.**  Every draw comes from the ``random.Random`` the caller
  passes in; no global random state, no I/O, no clock.  Same seed, same rounds.
* **No zero payouts.**  A losing round has an empty ``payouts``; whether a
  dialect closes such a round with a zero ``win`` is the engine's business.
* **A declared RTP that is exact.**  ``declared_rtp`` is the long-run return to
  player as a :class:`Fraction`, derived from the game's rules, and the tests
  check it against simulation with a tolerance that follows from the variance.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol, runtime_checkable

from ...protocol.calls import WinReason
from ..players import GameKind

__all__ = [
    "Game",
    "GameKind",
    "Payout",
    "RoundResult",
    "SinglePlayerGame",
    "Stake",
    "floor_fraction",
]


def _check_amount(kind: str, amount: object, minimum: int) -> None:
    # bool is an int subclass: a stake of True is a bug, not one minor unit.
    if type(amount) is not int:
        raise TypeError(f"{kind} amount must be an int of minor units, got {type(amount).__name__}")
    if amount < minimum:
        raise ValueError(f"{kind} amount must be >= {minimum}, got {amount}")


@dataclass(frozen=True, slots=True)
class Stake:
    """An amount the player puts at risk in the round: one ``bet`` (debit) call.

    ``amount`` is positive minor units; ``label`` says what it was staked on
    (``"spin"``, ``"straight 17"``, ``"bet @2.00x"``) for logs and reports.
    """

    amount: int
    label: str

    def __post_init__(self) -> None:
        _check_amount("stake", self.amount, 1)


@dataclass(frozen=True, slots=True)
class Payout:
    """An amount paid to the player: one ``win`` (credit) call with ``reason``.

    ``amount`` is the total credited (stake returned plus winnings, as
    providers credit it), in minor units, never negative.
    """

    amount: int
    reason: WinReason
    label: str

    def __post_init__(self) -> None:
        _check_amount("payout", self.amount, 0)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """One player's round: what was staked, what is paid, and game-specific ``detail``.

    ``detail`` is informative only (reel stops, the winning number, the crash
    point); money is in ``stakes`` and ``payouts`` alone, so an engine never
    has to understand a game to send its calls.
    """

    game_id: str
    stakes: tuple[Stake, ...]
    payouts: tuple[Payout, ...]
    detail: Mapping[str, object] = field(default_factory=dict)

    @property
    def total_staked(self) -> int:
        return sum(s.amount for s in self.stakes)

    @property
    def total_paid(self) -> int:
        return sum(p.amount for p in self.payouts)

    @property
    def net(self) -> int:
        """The player's gain (negative: loss), minor units."""
        return self.total_paid - self.total_staked

    @property
    def is_win(self) -> bool:
        """Whether anything was paid (a hit, for hit-frequency counts)."""
        return bool(self.payouts)


@runtime_checkable
class Game(Protocol):
    """What every game in the catalog offers, whatever its own play API.

    ``play_round(rng, stake)`` plays one *typical* round for one player who
    stakes ``stake`` minor units in total: the slot spins, roulette spreads the
    stake over a realistic set of bets, crash picks a realistic cash-out target,
    a live table seats the player alone.  The RTP of ``play_round`` is
    ``declared_rtp`` (for crash, up to the flooring its docstring bounds), so
    an engine that only knows this method still produces honest traffic.
    """

    @property
    def game_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> GameKind: ...

    @property
    def declared_rtp(self) -> Fraction: ...

    def play_round(self, rng: random.Random, stake: int) -> RoundResult: ...


@runtime_checkable
class SinglePlayerGame(Game, Protocol):
    """A game whose only decision is the stake (the slot): ``play(rng, stake)``."""

    def play(self, rng: random.Random, stake: int) -> RoundResult: ...


def floor_fraction(value: Fraction) -> int:
    """Floor an exact amount to whole minor units (``int(Fraction)`` truncates toward 0)."""
    return value.numerator // value.denominator
