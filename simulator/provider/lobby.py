"""The provider's lobby: the catalog's games as an operator sees them, and one round of each.

Why a view and not the catalog itself: the slot is offered twice — plain
(``croupier-stars``, the catalog's own game) and with the progressive jackpot
attached (``croupier-stars-mega``, what ``gameplay.plan_single("slot", ...)``
plays for ``croupier run``) — each under the id the wallet's calls will carry,
with the RTP the player really gets.  A game is launched by its own id only: an
unknown id is refused (404 ``GAME_NOT_FOUND``), never mapped to another game.

RTPs are exact fractions inside croupier (the slot's has hundreds of digits);
``GET /games`` gives each as a 4-decimal string and in basis points, both
rounded half up from the exact value, and the fraction itself only where it is
short enough to read (``36/37``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..play import gameplay
from ..play.games import catalog
from ..play.games.base import RoundResult
from ..play.players import GAME_KINDS, STAKE_LADDERS, GameKind


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
            "rtp_bp": rtp_basis_points(self.declared_rtp),
            "rtp_fraction": short_fraction(self.declared_rtp),
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


def rtp_basis_points(rtp: Fraction) -> int:
    """``rtp`` in basis points (1/100 of a percent), rounded half up, exactly: how back offices store RTPs."""
    return int(rtp_decimal(rtp, 4).replace(".", ""))


SHORT_FRACTION_DIGITS = 12


def short_fraction(rtp: Fraction) -> str | None:
    """``"36/37"`` when numerator and denominator are short enough to read, else None (a 200-digit
    numerator is exact but tells a reader nothing: ``rtp`` and ``rtp_bp`` say it)."""
    if max(len(str(rtp.numerator)), len(str(rtp.denominator))) > SHORT_FRACTION_DIGITS:
        return None
    return f"{rtp.numerator}/{rtp.denominator}"


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
        versions: tuple[Any, ...] = (g, slot) if g.game_id == slot.game.game_id else (g,)
        for played in versions:
            out.append(LobbyGame(played.game_id, g.game_id, played.name, g.kind, played.declared_rtp,
                                 _min_stake(played)))
    return tuple(out)


def resolve(game_id: str) -> LobbyGame | None:
    """The lobby game with exactly ``game_id``, or None (never another game of a similar name)."""
    for g in games():
        if game_id == g.game_id:
            return g
    return None


def unknown(game_id: str) -> str:
    """Why ``game_id`` cannot be launched, in one sentence with the nearest id and where the list is."""
    import difflib

    ids = [g.game_id for g in games()]
    close = difflib.get_close_matches(game_id, ids, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown game {game_id[:64]!r}{hint}; the games are {', '.join(ids)} (GET /games)"


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
