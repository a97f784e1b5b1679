"""A player's session, written once: seat, choose a game and a stake, play, relaunch, pause, leave.

``croupier run`` (asyncio), the Locust users (gevent) and the tests (in one thread) all play the
same flows: a player at a single-player game (:func:`player`) and a live table's seated players
(:func:`table`).  They are flows over :mod:`simulator.drive.delivery`'s primitives — the rounds
through :meth:`Courier.drive`, seating through :class:`Provision`, a pause through :class:`Think`,
a round's concurrency slot through :class:`Hold` — so what a player does is decided here and only
here; a driver decides how long a pause lasts and when play stops.

What happens is counted on a :class:`Board` (the run's statistics, a Locust process's counters);
the run's settlement and final reads are :mod:`simulator.drive.endgame`'s, after play.
"""

from __future__ import annotations

import enum
import itertools
import random
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..judge.diagnosis import seat_cause
from ..judge.ledger import describe
from ..play import gameplay
from ..play.players import PlayerProfile, choose_stake, think_time
from ..play.rounds import (
    Launch,
    Parallel,
    RoundContext,
    RoundOutcome,
    Seat,
    SeatRefused,
    TxIds,
    live_round,
    open_seat,
    play_round,
    repay,
)
from ..play.scenario import Scenario
from ..protocol.codes import ErrorCode
from ..protocol.dialects.semantics import CANONICAL, Semantics
from .delivery import SEAT, Courier, Flow, Gather, Hold, Provision, Think, Unseated, held


class Board(Protocol):
    """Where a session's counts go: the run's statistics, or a Locust process's share of them."""

    @property
    def rounds(self) -> Counter[str]: ...

    def error(self, text: str) -> None: ...

    def seated(self, seat: Seat) -> None: ...

    def unseated(self, player_id: str, cause: str, detail: str) -> None: ...

    def unpaid(self, player_id: str, n: int) -> None:
        """Wins or rollbacks refused SESSION_EXPIRED (the dialect allows it) that cannot be sent again."""


@dataclass(frozen=True)
class Floor:
    """What every session of a run shares: the scenario, and what the dialect's wire means."""

    scenario: Scenario
    semantics: Semantics = CANONICAL
    signed: bool = True
    """Whether the dialect signs its requests (a bad signature is then one of the faults)."""
    batches: bool = False
    """The dialect carries an instant round's bet and closing win in one request."""
    session_ttl_s: float | None = None
    """How long a session lives when known (provisioned; a players file's is not known)."""
    wallet_url: str = ""
    dialect: str = "canonical"
    players_file: str | None = None
    """Named in the likely cause when players cannot be seated."""
    _kinds: list[str] = field(init=False, repr=False)
    _weights: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The game mix is drawn from once per round: its weights summed once.
        mix = self.scenario.game_mix
        kinds = [k for k, w in mix.items() if w > 0]
        object.__setattr__(self, "_kinds", kinds)
        object.__setattr__(self, "_weights", list(itertools.accumulate(mix[k] for k in kinds)))

    def context(self, seat: Seat, game_id: str, rng: random.Random, ids: TxIds, batch: bool = False) -> RoundContext:
        """A round's context: the scenario's faults and retries, the dialect's semantics."""
        sc = self.scenario
        return RoundContext(seat, game_id, rng, ids, sc.faults, sc.retry, batch=batch, semantics=self.semantics,
                            signed=self.signed)

    def kind(self, rng: random.Random, allowed: set[str] | None = None) -> str | None:
        """The next round's game kind, by the scenario's mix (among ``allowed`` kinds if given)."""
        if allowed is None:
            return rng.choices(self._kinds, cum_weights=self._weights)[0] if self._kinds else None
        kinds = [k for k in self._kinds if k in allowed]
        mix = self.scenario.game_mix
        return rng.choices(kinds, weights=[mix[k] for k in kinds])[0] if kinds else None

    def think(self, profile: PlayerProfile, rng: random.Random) -> float:
        """Seconds between a player's rounds: the scenario's fixed range, or the player's own habit."""
        if self.scenario.think_time_ms is not None:
            lo, hi = self.scenario.think_time_ms
            return rng.randint(lo, hi) / 1000
        return think_time(profile, rng) / 1000


class Ending(enum.StrEnum):
    """Why a session ended."""

    UNSEATED = "unseated"
    """Nobody could be seated (provisioning or authenticate failed)."""
    BROKE = "broke"
    """The player (or every player of a table) could not afford the smallest stake."""
    DONE = "done"
    """The session's rounds were played."""
    STOPPED = "stopped"
    """Play stopped (the run's end, an interrupt, Locust stopping the user)."""
    LOST = "lost"
    """The session ran out and could not be launched again."""


@dataclass(frozen=True, slots=True)
class Left:
    """A session's end: who was seated (to settle and reconcile), and why it ended."""

    seats: tuple[Seat, ...]
    why: Ending


def seat(courier: Courier, floor: Floor, board: Board, profile: PlayerProfile, index: int = 0) -> Flow[Seat | None]:
    """Provision the player (or take its players-file row), then open a session the dialect's way
    (:func:`simulator.play.rounds.open_seat`)."""
    launch = yield Provision(profile, index)
    if not isinstance(launch, Launch):
        why = launch if isinstance(launch, Unseated) else Unseated("no way to provision players")
        board.unseated(profile.player_id, why.cause, why.detail)
        return None
    pid, code = launch.player_id, launch.currency.code
    if launch.balance is not None:  # provisioned: every answer is judged against the opening balance
        courier.ledger.open(pid, code, launch.balance)
    else:  # a players file's account: its balance is read, then judged from there
        courier.ledger.book(pid).currency = code
    got = yield from courier.drive(open_seat(launch, floor.semantics, floor.session_ttl_s,
                                             floor.scenario.timeout_s + 1))
    if isinstance(got, SeatRefused):
        board.unseated(pid, seat_cause(got.step, got.outcome, floor.wallet_url, floor.dialect, floor.players_file),
                       got.detail or (describe(got.outcome) if got.outcome is not None else ""))
        return None
    assert isinstance(got, Seat) and got.balance is not None
    if launch.balance is None:
        courier.ledger.open(pid, code, got.balance)
    board.seated(got)
    return got


def relaunch(courier: Courier, floor: Floor, board: Board, profile: PlayerProfile, seat: Seat) -> Flow[bool]:
    """The session ran out (perhaps waiting for a late win): launch the game again."""
    launch = yield Provision(profile, again=seat)
    if not isinstance(launch, Launch):
        if isinstance(launch, Unseated):
            board.error(f"{seat.player_id}: relaunch failed: {launch.cause}"
                        + (f" ({launch.detail})" if launch.detail else ""))
        return False
    again = Launch(seat.player_id, seat.currency, launch.token, session_ref=seat.session_ref, balance=seat.balance)
    got = yield from courier.drive(open_seat(again, floor.semantics, floor.session_ttl_s,
                                             floor.scenario.timeout_s + 1, read_balance=False))
    if isinstance(got, SeatRefused):
        board.error(f"{seat.player_id}: re-authenticate failed: "
                    f"{describe(got.outcome) if got.outcome is not None else got.step}")
        return False
    assert isinstance(got, Seat)
    seat.session_token, seat.live_until, seat.expired_after = got.session_token, got.live_until, got.expired_after
    if got.balance is not None:
        seat.balance = got.balance
    board.rounds["relaunched"] += 1
    return True


def pay_owed(courier: Courier, floor: Floor, board: Board, profile: PlayerProfile, ctx: RoundContext) -> Flow[bool]:
    """The session ran out: launch again and send what the wallet refused for it (a wallet whose wins
    need a live session); False when the player cannot go on (what is owed is then said unpaid)."""
    seat = ctx.seat
    if not (yield from relaunch(courier, floor, board, profile, seat)):
        if seat.owed:
            board.unpaid(seat.player_id, len(seat.owed))
            seat.owed.clear()
        return False
    if seat.owed:
        paid = yield Hold(courier.drive(repay(ctx)))
        assert isinstance(paid, int)
        board.rounds["owed_paid"] += paid
    return True


def count(courier: Courier, board: Board, result: RoundOutcome) -> None:
    """A round's end in the statistics (and the faults it met on its own)."""
    board.rounds[result.status] += 1
    if "reorder" in result.notes:
        courier.on_fault("reorder")
    if "late_win" in result.notes:
        courier.on_fault("late_win")


def retire(courier: Courier, seat: Seat) -> None:
    """Between the player's rounds nothing of theirs is open: the ledger may let go of what no later
    call names (:meth:`simulator.judge.ledger.Ledger.retire`) but the late duplicates still queued and
    what is owed to the player, which go out again with the same ids."""
    queued = courier.late.queues.get(seat.player_id) if courier.late is not None else None
    keep = [q.call for q in queued] if queued else []
    courier.ledger.retire(seat.player_id, [*keep, *seat.owed])


def _both(a: Any, b: Any) -> Generator[Parallel, object, object]:
    results = yield Parallel((a, b))
    return results


def player(courier: Courier, floor: Floor, board: Board, profile: PlayerProfile, rng: random.Random,
           ids: Callable[[str], TxIds], max_rounds: int | None = None, index: int = 0) -> Flow[Left]:
    """One player's session at single-player games: seated, then round after round (sometimes two at
    once, as on two open tables), a pause between rounds, until broke, done, or play stops.

    ``ids``: the player's transaction ids from its id (a players file's account gets the run's
    prefix); ``index``: its row of a players file."""
    if not (yield Think(0)):
        return Left((), Ending.STOPPED)
    seated = yield Hold(seat(courier, floor, board, profile, index), SEAT)
    if seated is None:
        return Left((), Ending.UNSEATED)
    assert isinstance(seated, Seat)
    mine, played, code = ids(seated.player_id), 0, seated.currency.code
    while max_rounds is None or played < max_rounds:
        balance = seated.balance if seated.balance is not None else 0
        stake = choose_stake(profile, rng, balance)
        if stake is None:
            board.rounds["player_broke"] += 1
            return Left((seated,), Ending.BROKE)
        kind = floor.kind(rng)
        assert kind is not None, "a scenario's game mix is never empty"
        game_id, plan = gameplay.plan_single(kind, rng, stake, code)
        ctx = floor.context(seated, game_id, rng, mine, gameplay.batched(kind, floor.batches))
        if floor.scenario.faults.concurrent_rounds(rng) and balance >= 2 * stake:
            # Two tables open at once: two rounds of one player in flight together.
            other_kind = floor.kind(rng)
            assert other_kind is not None
            other_id, other_plan = gameplay.plan_single(other_kind, rng, stake, code)
            other = floor.context(seated, other_id, random.Random(rng.random()), mine,
                                  gameplay.batched(other_kind, floor.batches))
            courier.on_fault("concurrent_rounds")
            results = yield Hold(courier.drive(_both(play_round(ctx, plan), play_round(other, other_plan))))
            assert isinstance(results, list)
            for r in results:
                count(courier, board, r)
            expired = bool(seated.owed)
        else:
            result = yield Hold(courier.drive(play_round(ctx, plan)))
            assert isinstance(result, RoundOutcome)
            count(courier, board, result)
            expired = result.refusal is ErrorCode.SESSION_EXPIRED or bool(seated.owed)
        # The session ran out (perhaps waiting for a late win): relaunch the game.
        if expired and not (yield from pay_owed(courier, floor, board, profile, ctx)):
            return Left((seated,), Ending.LOST)
        played += 1
        if courier.late is not None and (yield Think(0)):  # the provider's retry queue, between rounds
            yield from courier.late_duplicates(seated.player_id)
        retire(courier, seated)
        if not (yield Think(floor.think(profile, rng))):
            return Left((seated,), Ending.STOPPED)
    return Left((seated,), Ending.DONE)


def table(courier: Courier, floor: Floor, board: Board, name: str, players: list[tuple[int, PlayerProfile]],
          rng: random.Random, ids: Callable[[str], TxIds], round_ids: TxIds,
          max_rounds: int | None = None) -> Flow[Left]:
    """A live table: its players seated at once, then one shared round after another — a betting
    window, one settlement burst (:func:`simulator.play.rounds.live_round`) — until every player is
    broke, the rounds are played, or play stops.  ``players``: (players-file row, profile)."""
    live = floor.scenario.live
    if not (yield Think(0)):
        return Left((), Ending.STOPPED)
    got = yield Gather(tuple(held(seat(courier, floor, board, p, i), SEAT) for i, p in players))
    assert isinstance(got, list)
    seated = [(p, floor.context(s, gameplay.LIVE_GAME_ID, random.Random(rng.random()), ids(s.player_id)))
              for (_, p), s in zip(players, got, strict=True) if s is not None]
    seats = tuple(ctx.seat for _, ctx in seated)
    if not seated:
        return Left((), Ending.UNSEATED)
    played = 0
    while max_rounds is None or played < max_rounds:
        stakes = gameplay.live_stakes([(p, ctx.seat) for p, ctx in seated], rng, live.bets_per_player)
        if not stakes:
            board.rounds["table_broke"] += 1
            return Left(seats, Ending.BROKE)
        plans = gameplay.plan_live(rng, stakes)
        bets = [(p, ctx, plans[ctx.seat.player_id]) for p, ctx in seated if ctx.seat.player_id in plans]
        results = yield from courier.drive(live_round(name, [(ctx, plan) for _, ctx, plan in bets], round_ids.round()))
        assert isinstance(results, list)
        for (p, ctx, _), r in zip(bets, results, strict=True):
            count(courier, board, r)
            if r.refusal is ErrorCode.SESSION_EXPIRED or ctx.seat.owed:
                yield from pay_owed(courier, floor, board, p, ctx)
        board.rounds["live_rounds"] += 1
        played += 1
        if courier.late is not None and (yield Think(0)):
            for s in seats:
                yield from courier.late_duplicates(s.player_id)
        for s in seats:
            retire(courier, s)
        if not (yield Think(live.window_ms / 1000)):
            return Left(seats, Ending.STOPPED)
    return Left(seats, Ending.DONE)
