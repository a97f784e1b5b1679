"""The provider's lobby: the catalog's games as an operator sees them, and one round of each.

Why a view and not the catalog itself: the slot is played with the progressive
jackpot attached (``gameplay.plan_single("slot", ...)`` plays
``croupier-stars-mega``), so the lobby lists that game, under the id the
wallet's calls will carry, with the RTP the player really gets.  The catalog id
of a game the lobby plays with a jackpot is accepted as an alias at launch.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .. import gameplay
from ..games import catalog
from ..games.base import RoundResult
from ..players import GAME_KINDS, STAKE_LADDERS, GameKind


@dataclass(frozen=True, slots=True)
class LobbyGame:
    game_id: str
    """The id the wallet's calls carry."""
    catalog_id: str
    name: str
    kind: GameKind
    declared_rtp: Fraction
    min_stake: int
    """The smallest stake a round of this game accepts, in minor units of any currency."""

    def to_json(self) -> dict[str, Any]:
        return {
            "game_id": self.game_id,
            "name": self.name,
            "kind": self.kind,
            "rtp": rtp_decimal(self.declared_rtp),
            "rtp_fraction": str(self.declared_rtp),
            "min_stake": {code: max(ladder[0], self.min_stake) for code, ladder in STAKE_LADDERS.items()},
        }


def rtp_decimal(rtp: Fraction, places: int = 4) -> str:
    """``rtp`` as a decimal string with ``places`` decimals, rounded half up, exactly (no float)."""
    scale = 10**places
    q, r = divmod(rtp.numerator * scale, rtp.denominator)
    if 2 * r >= rtp.denominator:
        q += 1
    whole, frac = divmod(q, scale)
    return f"{whole}.{frac:0{places}d}"


def _min_stake(game: object) -> int:
    # A slot spreads its stake over its lines: less than a minor unit per line is no stake.
    inner = getattr(game, "game", game)
    lines = getattr(inner, "lines", 1)
    return lines if isinstance(lines, int) and lines > 0 else 1


@functools.cache
def games() -> tuple[LobbyGame, ...]:
    """Every game the provider offers, in catalog order (the catalog is immutable: built once)."""
    slot = gameplay.jackpot_slot()
    out = []
    for g in catalog.all():
        played: Any = slot if g.game_id == slot.game.game_id else g
        out.append(LobbyGame(played.game_id, g.game_id, played.name, g.kind, played.declared_rtp, _min_stake(played)))
    return tuple(out)


def resolve(game_id: str) -> LobbyGame | None:
    """The lobby game with ``game_id`` (or with that catalog id), or None."""
    for g in games():
        if game_id in (g.game_id, g.catalog_id):
            return g
    return None


def kinds() -> tuple[GameKind, ...]:
    offered = {g.kind for g in games()}
    return tuple(k for k in GAME_KINDS if k in offered)


def plan(game: LobbyGame, rng: random.Random, stake: int, currency: str) -> RoundResult:
    """One round of ``game`` for ``stake`` (``ValueError`` when the game cannot take that stake).

    ``plan_single`` plays a kind; when the lobby has several games of the kind,
    the one asked for is played through the catalog's ``play_round``."""
    sole = sum(1 for g in games() if g.kind == game.kind) == 1
    if sole or game.game_id == gameplay.jackpot_slot().game_id:
        played, result = gameplay.plan_single(game.kind, rng, stake, currency)
        assert played == game.game_id, (played, game.game_id)
        return result
    return catalog.get(game.catalog_id).play_round(rng, stake)


def plan_kind(kind: GameKind, rng: random.Random, stake: int, currency: str) -> tuple[LobbyGame, RoundResult]:
    """One round of some game of ``kind``, as the runner picks it."""
    played, result = gameplay.plan_single(kind, rng, stake, currency)
    game = resolve(played)
    assert game is not None, played
    return game, result
