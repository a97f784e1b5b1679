"""Which game a round is, and what it stakes and pays: the bridge from players to rounds.

Picks a game of the kind a scenario (or a player) asks for from the catalog and
lets it decide the round; slot rounds carry the process-wide progressive
jackpot, so jackpot wins appear as a real provider's would.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Final

from ..protocol.calls import Op, WalletCall
from ..protocol.dialects import Dialect
from .games import catalog
from .games.base import RoundResult
from .games.jackpot import JackpotGame
from .games.roulette import random_bets
from .players import PlayerProfile, choose_stake
from .rounds import Seat

LIVE_GAME_ID: Final = "live-roulette"
INSTANT_KINDS: Final = frozenset({"slot", "roulette", "crash"})
"""Single-player games whose win is known when the bet is placed (a batching dialect sends both at once)."""


def batched(kind: str, batching: bool) -> bool:
    """Whether a round of ``kind`` may send its bet and closing win in one request, when the
    dialect batches (``batching``: :func:`simulator.protocol.dialects.batching` is not None): the
    instant games.  :func:`simulator.play.rounds.batchable` decides for the round itself.  The one
    rule for ``croupier run`` and ``croupier load``."""
    return batching and kind in INSTANT_KINDS


def signs(dialect: Dialect, wrong: Dialect) -> bool:
    """Whether ``dialect`` signs its requests: ``wrong`` (the same dialect keyed with a wrong secret)
    encodes a call otherwise.  A wire with no signature (``scheme = "none"``) has no bad-signature
    call to make (:func:`simulator.play.rounds.expressible`).  When in doubt (the call cannot be encoded),
    it does.  The one rule for ``croupier run`` and ``croupier load``."""
    call = WalletCall(Op.BALANCE, player_id="croupier-probe", session_token="croupier-probe", currency_hint="EUR")
    now = 1_700_000_000.0
    try:
        a, b = dialect.encode_call(call, now), wrong.encode_call(call, now)
    except (ValueError, KeyError, TypeError):
        return True
    return (a.method, a.path, a.headers, a.body) != (b.method, b.path, b.headers, b.body)


_jackpot: JackpotGame | None = None


def jackpot_slot() -> JackpotGame:
    """The slot with the progressive jackpot attached (one pool per currency, per process)."""
    global _jackpot
    if _jackpot is None:
        _jackpot = catalog.with_jackpot()
    return _jackpot


def plan_single(kind: str, rng: random.Random, stake: int, currency: str) -> tuple[str, RoundResult]:
    """A round of a single-player game of ``kind`` for ``stake`` minor units."""
    if kind == "slot":
        game = jackpot_slot()
        return game.game_id, game.play(rng, stake, currency)
    games = catalog.of_kind(kind)  # type: ignore[arg-type]
    if not games:
        raise ValueError(f"no game of kind {kind!r} in the catalog")
    chosen = games[rng.randrange(len(games))]
    return chosen.game_id, chosen.play_round(rng, stake)


def plan_live(rng: random.Random, stakes: Mapping[str, Sequence[int]]) -> dict[str, RoundResult]:
    """One shared live-roulette round: every player's bets in one window, one spin, all settled."""
    table = catalog.get(LIVE_GAME_ID)
    live = table.open_round(rng)  # type: ignore[attr-defined]
    for player_id, amounts in stakes.items():
        for amount in amounts:
            for bet in random_bets(rng, amount, max_bets=1):
                live.place(player_id, bet)
    return live.settle(rng)  # type: ignore[no-any-return]


def live_stakes(seated: Sequence[tuple[PlayerProfile, Seat]], rng: random.Random,
                bets_per_player: int) -> dict[str, list[int]]:
    """What each seated player stakes in one live round: up to ``bets_per_player`` chips they can pay."""
    stakes: dict[str, list[int]] = {}
    for profile, seat in seated:
        chosen: list[int] = []
        left = seat.balance or 0
        for _ in range(bets_per_player):
            stake = choose_stake(profile, rng, left)
            if stake is None:
                break
            chosen.append(stake)
            left -= stake
        if chosen:
            stakes[seat.player_id] = chosen
    return stakes
