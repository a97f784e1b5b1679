"""What the game pages send and get back: the player's choices in, a round to draw out.

The browser never does game math: it sends a stake (and, for roulette, where
the chips go; for crash, the auto cash-out target), the games package draws the
round from the session's seeded draws inside the provider's round (so the wallet
calls are the runner's), and this module turns the result into what a page
draws — the slot's screens as symbols, the winning number and its colour, the
crash point — all amounts as integer minor units.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any, Final, cast

from ..play.games import catalog
from ..play.games.base import RoundResult
from ..play.games.crash import MAX_MULTIPLIER, MIN_TARGET, CrashGame, format_multiplier
from ..play.games.roulette import Bet, BetType, EuropeanRoulette, color, legal_selections
from ..play.games.slot import CROUPIER_STARS, Slot
from ..play.players import STAKE_LADDERS
from ..protocol.money import INT64_MAX
from ..provider import lobby
from ..provider.state import RoundRecord, Session

__all__ = ["BadPlay", "game_info", "planner", "round_view", "stakes_for"]

_TARGET: Final = re.compile(r"(0|[1-9][0-9]{0,6})(\.[0-9]{1,2})?")
ROULETTE_BETS: Final = {
    "red_black": ("red", "black"),
    "odd_even": ("odd", "even"),
    "low_high": ("low", "high"),
    "dozen": (1, 2, 3),
    "column": (1, 2, 3),
    "straight": tuple(range(37)),
}
"""The bets the sandbox's roulette table offers (outside bets and straight-ups)."""


class BadPlay(ValueError):
    """A play the game cannot take (a 400 with BAD_REQUEST, never a 500)."""


def stakes_for(session: Session, game: lobby.LobbyGame) -> list[int]:
    """The stake ladder the page offers: the currency's lobby stakes the game can take."""
    ladder = [s for s in STAKE_LADDERS.get(session.currency.code, ()) if s >= game.min_stake]
    return ladder or [game.min_stake]


def _slot_of(game: lobby.LobbyGame) -> Slot:
    inner = catalog.get(game.catalog_id)
    return inner if isinstance(inner, Slot) else CROUPIER_STARS


def game_info(session: Session, game: lobby.LobbyGame) -> dict[str, Any]:
    """What a page needs to draw the game before any round (symbols, the bets it offers)."""
    info: dict[str, Any] = {"game_id": game.game_id, "name": game.name, "kind": game.kind,
                            "rtp": lobby.rtp_decimal(game.declared_rtp)}
    if game.kind == "slot":
        slot = _slot_of(game)
        info["slot"] = {"lines": slot.lines, "wild": slot.wild, "scatter": slot.scatter,
                        "free_spins": slot.free_spins, "free_spin_multiplier": slot.free_spin_multiplier,
                        "screen": [list(row) for row in slot.window((0, 0, 0, 0, 0))]}
    elif game.kind == "roulette":
        info["roulette"] = {"bets": {k: list(v) for k, v in ROULETTE_BETS.items()}}
    elif game.kind == "crash":
        info["crash"] = {"min_target": format_multiplier(MIN_TARGET)[:-1], "default_target": "2.00"}
    return info


def _int(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise BadPlay(f"{name} must be an integer from {low} to {high}")
    return value


def parse_target(value: Any) -> int:
    """A crash cash-out target as typed (``"2.5"``, ``"2.50"``) → hundredths, exactly."""
    if not isinstance(value, str) or not _TARGET.fullmatch(value.strip()):
        raise BadPlay("target must be a multiplier such as 2.00 (at most two decimals)")
    whole, _, frac = value.strip().partition(".")
    hundredths = int(whole) * 100 + int((frac + "00")[:2])
    if not MIN_TARGET <= hundredths <= MAX_MULTIPLIER:
        raise BadPlay(f"target must be from {format_multiplier(MIN_TARGET)} to {format_multiplier(MAX_MULTIPLIER)}")
    return hundredths


def _roulette_bet(value: Any, stake: int) -> Bet:
    if not isinstance(value, dict) or set(value) != {"type", "selection"}:
        raise BadPlay('bet must be {"type": ..., "selection": ...}')
    kind, selection = value["type"], value["selection"]
    if kind not in ROULETTE_BETS:
        raise BadPlay(f"bet type must be one of {', '.join(ROULETTE_BETS)}")
    if selection not in ROULETTE_BETS[kind] or type(selection) is bool:
        raise BadPlay(f"a {kind} bet is on one of {', '.join(map(str, ROULETTE_BETS[kind]))}")
    assert selection in legal_selections(BetType(kind))
    return Bet(BetType(kind), selection, stake)


def planner(game: lobby.LobbyGame, data: dict[str, Any], session: Session,
            drawn: list[RoundResult]) -> tuple[int, Callable[[random.Random], RoundResult]]:
    """The stake and the round-drawing function for a play request (``BadPlay`` for bad input).

    The function runs inside the provider's round (under the session's lock) and
    appends the result it drew to ``drawn``, so the page can show the reels."""
    stake = _int(data.get("stake"), "stake", 1, INT64_MAX)
    code = session.currency.code
    if stake < game.min_stake:
        raise BadPlay(f"the smallest stake of {game.name} is {game.min_stake} minor units of {code}")
    if game.kind == "roulette":
        bet = _roulette_bet(data.get("bet", {"type": "red_black", "selection": "red"}), stake)
        roulette = catalog.get(game.catalog_id)
        assert isinstance(roulette, EuropeanRoulette)

        def spin(rng: random.Random) -> RoundResult:
            result = roulette.play(rng, [bet])
            drawn.append(result)
            return result
        return stake, spin
    if game.kind == "crash":
        target = parse_target(data.get("target", "2.00"))
        crash = catalog.get(game.catalog_id)
        assert isinstance(crash, CrashGame)

        def fly(rng: random.Random) -> RoundResult:
            result = crash.play(rng, stake, target)
            drawn.append(result)
            return result
        return stake, fly

    def typical(rng: random.Random) -> RoundResult:  # the slot (with its jackpot) and the live table
        result = lobby.plan(game, rng, stake, code)
        drawn.append(result)
        return result
    return stake, typical


def round_view(record: RoundRecord, result: RoundResult | None, game: lobby.LobbyGame) -> dict[str, Any]:
    """A round as the page draws it; amounts in minor units."""
    view: dict[str, Any] = {
        "round_id": record.round_id, "status": record.status, "refusal": record.refusal, "stake": record.stake,
        "staked": record.staked, "paid": record.paid, "balance": record.balance, "currency": record.currency,
        "notes": record.notes, "calls": [c.brief() for c in record.calls],
    }
    if result is None or record.status != "settled":
        return view
    view["payouts"] = [{"amount": p.amount, "reason": str(p.reason), "label": p.label} for p in result.payouts]
    detail = result.detail
    if game.kind == "slot":
        slot = _slot_of(game)
        stops = cast(tuple[int, ...], detail["stops"])
        free_stops = cast(tuple[tuple[int, ...], ...], detail.get("free_spin_stops", ()))
        line_wins = cast(tuple[tuple[int, str, int, int], ...], detail["line_wins"])
        wins = {p.label: p.amount for p in result.payouts}
        free = [{"n": i, "screen": [list(r) for r in slot.window(screen)], "win": wins.get(f"free spin {i}", 0)}
                for i, screen in enumerate(free_stops, start=1)]
        view["slot"] = {
            "screen": [list(r) for r in slot.window(stops)],
            "line_wins": [{"line": i + 1, "symbol": s, "length": n, "pays": p,
                           "cells": [[slot.paylines[i][reel], reel] for reel in range(n)]}
                          for i, s, n, p in line_wins],
            "line_bet": detail["line_bet"], "scatters": detail["scatters"],
            "free_spins": detail["free_spins"], "free_spin_win": detail["free_spin_win"],
            "free_spin_multiplier": slot.free_spin_multiplier, "free": free,
            "jackpot": detail.get("jackpot"),
        }
    elif game.kind in ("roulette", "live") and "number" in detail:
        number = detail["number"]
        assert isinstance(number, int)
        view["roulette"] = {"number": number, "color": color(number),
                            "bets": [s.label for s in result.stakes]}
    elif game.kind == "crash":
        point = detail["crash_point"]
        targets = cast(tuple[int, ...], detail["targets"])
        assert isinstance(point, int)
        view["crash"] = {"crash_point": format_multiplier(point)[:-1],
                         "targets": [format_multiplier(t)[:-1] for t in targets],
                         "cashed_out": bool(detail["cashouts"]), "crash_ms": detail["crash_ms"]}
    return view
