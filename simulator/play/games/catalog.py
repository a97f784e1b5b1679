"""The games croupier offers, by id: what a provider's lobby lists.

Every entry is immutable (a round's state lives in the objects its play methods
return), so the catalog can be shared by any number of workers.  The one
stateful piece, the progressive jackpot's pools, is made fresh by
:func:`with_jackpot` for whoever runs it.

=================== ======== ===================================== ================
id                  kind     game                                  declared RTP
=================== ======== ===================================== ================
``croupier-stars``  slot     5×3, 10 lines, wilds, free spins      ≈ 95.99 % (exact)
``roulette-eu``     roulette European single zero, RNG             36/37 ≈ 97.30 %
``live-roulette``   live     European single zero, shared rounds   36/37 ≈ 97.30 %
``crash-x``         crash    1 % house edge, up to 1,000,000×      99/100
=================== ======== ===================================== ================
"""

from __future__ import annotations

from typing import Final

from ..players import STAKE_LADDERS
from .base import Game, GameKind
from .crash import CrashGame
from .jackpot import JackpotGame, JackpotTerms, ProgressiveJackpot
from .live import LiveRouletteTable
from .roulette import EuropeanRoulette
from .slot import CROUPIER_STARS

__all__ = ["GAMES", "UnknownGame", "all", "default_jackpot", "get", "of_kind", "with_jackpot"]

GAMES: Final[dict[str, Game]] = {
    g.game_id: g
    for g in (
        CROUPIER_STARS,
        EuropeanRoulette("roulette-eu", "European Roulette"),
        LiveRouletteTable("live-roulette", "Live Roulette", table_id="lr-1"),
        CrashGame("crash-x", "Crash X"),
    )
}


class UnknownGame(KeyError):
    """A game id the catalog does not list."""


def get(game_id: str) -> Game:
    try:
        return GAMES[game_id]
    except KeyError:
        raise UnknownGame(f"unknown game {game_id!r}") from None


def all() -> tuple[Game, ...]:
    """Every game, in catalog order."""
    return tuple(GAMES.values())


def of_kind(kind: GameKind) -> tuple[Game, ...]:
    """The games of one kind (what a player who prefers ``kind`` picks from)."""
    return tuple(g for g in GAMES.values() if g.kind == kind)


JACKPOT_SEED_STAKES: Final = 10_000
"""The pool restarts at 10 000 × the currency's smallest lobby stake (€1,000; ¥100,000)."""
JACKPOT_STAKE_PER_HIT_STAKES: Final = 5_000_000
"""One hit per 5 000 000 smallest stakes wagered (€500,000), so the seed adds 1/500 = 0.2 % RTP."""
JACKPOT_CONTRIBUTION_BP: Final = 100
"""1 % of every stake feeds the pool."""


def default_jackpot() -> ProgressiveJackpot:
    """A fresh "Croupier Mega" jackpot in every currency: 1 % contribution, expected RTP 1.2 %,
    the mean drop 60 000 × the smallest stake (€6,000)."""
    terms = {
        code: JackpotTerms(ladder[0] * JACKPOT_SEED_STAKES, ladder[0] * JACKPOT_STAKE_PER_HIT_STAKES)
        for code, ladder in STAKE_LADDERS.items()
    }
    return ProgressiveJackpot("mega", "Croupier Mega", contribution_bp=JACKPOT_CONTRIBUTION_BP, terms=terms)


def with_jackpot(game_id: str = "croupier-stars", jackpot: ProgressiveJackpot | None = None) -> JackpotGame:
    """``game_id`` with a jackpot attached (a fresh :func:`default_jackpot` unless one is given,
    e.g. to share one pool between several games)."""
    return JackpotGame(get(game_id), default_jackpot() if jackpot is None else jackpot)
