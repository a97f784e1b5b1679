"""A progressive jackpot: a pool per currency fed by every stake, paid whole on a rare hit.

Why: jackpot wins are the largest single credits a wallet sees (thousands of
times a stake, reason ``jackpot``), they come from a pool shared by all players
of a currency, and their accounting must balance to the minor unit — exactly the
kind of thing a wallet test should exercise.

Rules:

* Every eligible round adds ``contribution_bp`` basis points of its wagered
  stake to its currency's pool.  ``stake·bp`` is kept in ten-thousandths of a
  minor unit: whole minor units join the pool, the rest is carried to the next
  contribution, so nothing is rounded away — at every moment, exactly,
  ``pool + carry/10⁴ + paid = seeded + Σ stake·bp/10⁴`` (:meth:`JackpotPool.balanced`).
* A round that stakes ``s`` hits with probability ``s / stake_per_hit``
  (``rng.randrange(stake_per_hit) < s``): bigger stakes win proportionally more
  often, so every minor unit staked has the same chance.  A hit pays the whole
  pool (whole minor units, after this round's contribution) with reason
  ``jackpot``, and the pool restarts at ``seed``, which the operator funds.
* Expected contribution to RTP, in the long run and per unit staked: the
  contributions (all of them are paid out eventually) plus the seed money
  (``seed`` per hit, one hit per ``stake_per_hit`` staked)::

      expected_rtp = contribution_bp / 10 000 + seed / stake_per_hit

  and the mean pool when it drops is ``seed + stake_per_hit · bp / 10 000``.

The jackpot is the one stateful piece of :mod:`simulator.play.games` (the pool *is*
state); randomness still comes only from the caller's ``rng``.  Attach it to any
game with :class:`JackpotGame`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

from ...protocol.calls import WinReason
from .base import Game, GameKind, Payout, RoundResult

__all__ = ["BP", "JackpotGame", "JackpotPool", "JackpotTerms", "ProgressiveJackpot"]

BP: Final = 10_000
"""Basis points in a whole."""


@dataclass(frozen=True, slots=True)
class JackpotTerms:
    """A currency's pool: restarts at ``seed`` minor units; hits once per ``stake_per_hit`` staked."""

    seed: int
    stake_per_hit: int

    def __post_init__(self) -> None:
        if type(self.seed) is not int or self.seed < 1:
            raise ValueError("the seed is a positive int of minor units")
        if type(self.stake_per_hit) is not int or self.stake_per_hit < 1:
            raise ValueError("stake_per_hit is a positive int of minor units")


@dataclass(slots=True)
class JackpotPool:
    """One currency's pool and its ledger, all exact."""

    currency: str
    amount: int
    """The pool in whole minor units: what a hit would pay now."""
    carry: int = 0
    """Contributions not yet a whole minor unit, in 1/10 000 of a minor unit (0 ≤ carry < 10 000)."""
    seeded: int = 0
    """Seed money put in: the opening seed plus one seed per reset."""
    contributed: int = 0
    """Σ stake·bp over all contributions: in 1/10 000 of a minor unit."""
    paid: int = 0
    hits: int = 0
    staked: int = 0

    def balanced(self) -> bool:
        """``pool + carry + paid == seeded + contributions``, to the ten-thousandth of a minor unit."""
        return (self.amount + self.paid) * BP + self.carry == self.seeded * BP + self.contributed


class ProgressiveJackpot:
    """A progressive jackpot with one pool per currency (rules in the module docstring)."""

    def __init__(
        self,
        jackpot_id: str,
        name: str,
        *,
        contribution_bp: int,
        terms: Mapping[str, JackpotTerms],
    ) -> None:
        if type(contribution_bp) is not int or not 0 <= contribution_bp <= BP:
            raise ValueError("contribution_bp is an int in [0, 10 000]")
        self.jackpot_id = jackpot_id
        self.name = name
        self.contribution_bp = contribution_bp
        self.terms: dict[str, JackpotTerms] = dict(terms)
        self.pools: dict[str, JackpotPool] = {}

    def pool(self, currency: str) -> JackpotPool:
        """``currency``'s pool, opened at its seed on first use."""
        pool = self.pools.get(currency)
        if pool is None:
            try:
                seed = self.terms[currency].seed
            except KeyError:
                raise ValueError(f"{self.jackpot_id}: no jackpot terms for {currency}") from None
            pool = self.pools[currency] = JackpotPool(currency, seed, seeded=seed)
        return pool

    def contribute(self, currency: str, stake: int) -> int:
        """Add ``stake``'s share to the pool; returns the whole minor units it grew by now."""
        if type(stake) is not int or stake < 0:
            raise ValueError("a stake is a non-negative int of minor units")
        pool = self.pool(currency)
        share = stake * self.contribution_bp
        pool.contributed += share
        pool.staked += stake
        whole, pool.carry = divmod(pool.carry + share, BP)
        pool.amount += whole
        return whole

    def draw(self, rng: random.Random, currency: str, stake: int) -> Payout | None:
        """Whether a round staking ``stake`` hits; on a hit, pay the pool and reseed it."""
        pool = self.pool(currency)
        terms = self.terms[currency]
        if rng.randrange(terms.stake_per_hit) >= stake:
            return None
        won = pool.amount
        pool.paid += won
        pool.hits += 1
        pool.amount = terms.seed
        pool.seeded += terms.seed
        return Payout(won, WinReason.JACKPOT, self.name)

    def play(self, rng: random.Random, currency: str, stake: int) -> Payout | None:
        """A round's part in the jackpot: contribute, then draw."""
        self.contribute(currency, stake)
        return self.draw(rng, currency, stake)

    def expected_rtp(self, currency: str) -> Fraction:
        """Long-run jackpot return per unit staked in ``currency``."""
        terms = self.terms[currency]
        return Fraction(self.contribution_bp, BP) + Fraction(terms.seed, terms.stake_per_hit)

    def mean_hit(self, currency: str) -> Fraction:
        """The mean pool when it drops (long run)."""
        terms = self.terms[currency]
        return terms.seed + Fraction(terms.stake_per_hit * self.contribution_bp, BP)

    @property
    def declared_rtp(self) -> Fraction:
        """The expected RTP, when it is the same in every currency (as the catalog's is)."""
        rtps = {self.expected_rtp(c) for c in self.terms}
        if len(rtps) != 1:
            raise ValueError(f"{self.jackpot_id}: the jackpot's RTP differs by currency")
        return rtps.pop()


@dataclass(frozen=True)
class JackpotGame:
    """``game`` with ``jackpot`` attached: every round contributes its wagered stake and may hit.

    Not a :class:`~simulator.play.games.base.Game` (a jackpot needs the currency):
    ``play(rng, stake, currency)``.  ``declared_rtp`` is the game's plus the
    jackpot's expected contribution (an operator would lower the base game's
    RTP by as much to fund it).
    """

    game: Game
    jackpot: ProgressiveJackpot
    game_id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.game_id:
            object.__setattr__(self, "game_id", f"{self.game.game_id}-{self.jackpot.jackpot_id}")

    @property
    def name(self) -> str:
        return f"{self.game.name} ({self.jackpot.name})"

    @property
    def kind(self) -> GameKind:
        return self.game.kind

    @property
    def declared_rtp(self) -> Fraction:
        return self.game.declared_rtp + self.jackpot.declared_rtp

    def play(self, rng: random.Random, stake: int, currency: str) -> RoundResult:
        """One round of the game, then the jackpot's contribution and draw on what it wagered."""
        inner = self.game.play_round(rng, stake)
        staked = inner.total_staked
        grew = self.jackpot.contribute(currency, staked)
        hit = self.jackpot.draw(rng, currency, staked)
        detail = dict(inner.detail)
        detail["jackpot"] = {"pool": self.jackpot.pool(currency).amount, "grew": grew, "hit": hit is not None}
        payouts = inner.payouts + ((hit,) if hit else ())
        return RoundResult(self.game_id, inner.stakes, payouts, detail)
