"""A live roulette table: one shared round, many players, one settlement burst.

Why this matters to a wallet: at a live table the game is not per player.  A
dealer opens a betting window (15-25 s); every seated player places several
bets, each a ``bet`` call, spread over the window; then "no more bets", one
spin, and *every* winner is credited at once — hundreds of ``win`` calls for the
same round within a second.  That burst, and debits arriving right up to the
close, are what a wallet's locking and connection pool must survive.

The model, sans I/O:

* :meth:`LiveRouletteTable.open_round` opens a round (its id drawn from the rng).
* :meth:`LiveRound.place` takes a player's bet while the window is open;
  :meth:`LiveRound.close` ends the window ("no more bets").
* :meth:`LiveRound.settle` spins once (with the rng it is given, so the outcome
  cannot exist before the bets are in) and returns every player's
  :class:`RoundResult` together.

Bets, odds and payouts are those of :mod:`.roulette` (European, single zero),
so the declared RTP is exactly 36/37 for every bet and every mix of bets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from .base import RoundResult
from .roulette import POCKETS, ROULETTE_RTP, Bet, BetLike, coerce_bet, color, random_bets, settle_bets

__all__ = ["BettingClosed", "LiveRouletteTable", "LiveRound"]


class BettingClosed(RuntimeError):
    """A bet after "no more bets", or a second settlement."""


@dataclass(frozen=True, slots=True)
class LiveRouletteTable:
    """A live European roulette table (immutable: each round is its own :class:`LiveRound`).

    ``max_bets_per_player`` is the table's cap on chip stacks per player per round;
    ``min_bet`` / ``max_bet`` bound each bet in minor units (``max_bet=None``: no cap).
    """

    game_id: str = "live-roulette"
    name: str = "Live Roulette"
    table_id: str = "lr-1"
    min_bet: int = 1
    max_bet: int | None = None
    max_bets_per_player: int = 40
    kind: Literal["live"] = "live"
    declared_rtp: Fraction = ROULETTE_RTP

    def open_round(self, rng: random.Random) -> LiveRound:
        """A new round with its betting window open."""
        return LiveRound(self, f"{self.table_id}-{rng.getrandbits(48):012x}")

    def play_round(self, rng: random.Random, stake: int) -> RoundResult:
        """One player alone at the table: ``stake`` over :func:`random_bets`, then settle."""
        live = self.open_round(rng)
        for bet in random_bets(rng, stake, max_bets=min(8, self.max_bets_per_player)):
            live.place("solo", bet)
        return live.settle(rng)["solo"]


@dataclass(slots=True)
class LiveRound:
    """One round of a :class:`LiveRouletteTable`: open → (place …) → close → settle."""

    table: LiveRouletteTable
    round_id: str
    bets: dict[str, list[Bet]] = field(default_factory=dict)
    """Bets per player, in the order placed (players in order of their first bet)."""
    is_open: bool = True
    number: int | None = None
    """The winning pocket, once settled."""

    def place(self, player_id: str, bet: BetLike) -> Bet:
        """Take ``bet`` from ``player_id`` (refused after the window closes or beyond the table limits)."""
        if not self.is_open:
            raise BettingClosed(f"{self.round_id}: no more bets")
        placed = coerce_bet(bet)
        table = self.table
        if placed.amount < table.min_bet or (table.max_bet is not None and placed.amount > table.max_bet):
            raise ValueError(f"{self.round_id}: bet of {placed.amount} outside the table limits")
        mine = self.bets.setdefault(player_id, [])
        if len(mine) >= table.max_bets_per_player:
            raise ValueError(f"{self.round_id}: {player_id} already has {len(mine)} bets")
        mine.append(placed)
        return placed

    def close(self) -> None:
        """Call "no more bets": later :meth:`place` calls are refused."""
        self.is_open = False

    @property
    def total_staked(self) -> int:
        return sum(b.amount for bets in self.bets.values() for b in bets)

    def settle(self, rng: random.Random) -> dict[str, RoundResult]:
        """Close (if still open), spin once, and settle every player together.

        Every player who placed a bet gets a result, losers included (empty
        ``payouts``); each winning bet is its own payout.  Settles once only.
        """
        if self.number is not None:
            raise BettingClosed(f"{self.round_id}: already settled")
        self.close()
        number = self.number = rng.randrange(POCKETS)
        detail = {"round_id": self.round_id, "table_id": self.table.table_id, "number": number, "color": color(number)}
        game_id = self.table.game_id
        return {player: settle_bets(game_id, bets, number, detail) for player, bets in self.bets.items()}
