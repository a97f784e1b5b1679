"""Launching and playing: the provider's two conversations with the operator's wallet.

Both go through the same :class:`~simulator.drive.driver.Driver`, round generators and
:class:`~simulator.judge.ledger.Ledger` as ``croupier run``: a bet without an answer is
rolled back, a win re-sent until acknowledged, and every exchange judged.  This
module only decides what to play and records what happened.

The provider does not own the player's balance: the cashier and the operator's
other games move it between rounds.  So before a launch and before each round
the ledger forgets the expected balance (when nothing is in doubt) and takes
the wallet's next answer as the new opening; within a round every answer is
judged exactly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import aiohttp

from ..drive.driver import Driver
from ..metrics.families import Metrics
from ..play import gameplay
from ..play.faults import FaultPlan
from ..play.games.base import RoundResult
from ..play.players import GameKind
from ..play.rounds import Launch, RoundContext, RoundOutcome, Seat, SeatRefused, open_seat, play_round
from ..protocol.calls import Ok, Rejected
from ..protocol.codes import ErrorCode
from ..protocol.dialects import Dialect, batching, semantics_of
from ..protocol.money import Money
from ..protocol.money import currency as currency_of
from .errors import GAME_NOT_FOUND, PLAYER_MISMATCH, WALLET_UNAVAILABLE, ProviderError
from .lobby import LobbyGame, plan, plan_kind, resolve
from .state import CallRecord, ProviderConfig, ProviderState, RecordingClient, RoundRecord, Session, plain


class Provider:
    """The mock provider's behaviour, over one aiohttp client session to the wallet."""

    def __init__(self, config: ProviderConfig, state: ProviderState, dialect: Dialect,
                 http: aiohttp.ClientSession | None = None, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        """The wallet calls made, the rounds played and the ledger's findings, counted (``--metrics``)."""
        self.state = state
        self.dialect = dialect
        self.http = http
        """Set when the application starts (a client session belongs to a running loop)."""
        self.faults = FaultPlan()
        """No injected faults: an operator's integration sees a well-behaved provider."""
        self.semantics = semantics_of(dialect)
        """What the dialect's calls mean: the rounds play it and the ledger judges by it (as in ``croupier run``)."""
        state.ledger.semantics = self.semantics

    def _driver(self, session_id: str | None, player_id: str, currency: str,
                calls: list[CallRecord] | None = None) -> Driver:
        assert self.http is not None, "the provider application has not started"
        client = RecordingClient(self.config.wallet_url, self.dialect, self.http, timeout_s=self.config.timeout_s,
                                 sink=self.state.recorder(session_id, player_id, currency, calls))
        driver = Driver(client, self.state.ledger, self.state.stats, self.faults, started=self.state.started)
        if self.metrics is not None:  # the driver has just pointed the ledger's findings at the statistics
            self.state.ledger.on_flag = self._flagged
        return driver

    def _flagged(self, kind: str) -> None:
        self.state.stats.anomaly(kind)
        if self.metrics is not None:
            self.metrics.anomaly(kind)

    def _forget_balance(self, player_id: str) -> None:
        book = self.state.ledger.book(player_id)
        if not book.doubt and not book.in_flight:
            book.expected = None

    async def launch(self, player_id: str, currency: str, language: str, token: str, game: LobbyGame) -> Session:
        """Turn the operator's launch token into a provider session (``authenticate`` on the wallet)."""
        self._forget_balance(player_id)
        driver = self._driver(None, player_id, currency)
        # The dialect's way (simulator.play.rounds.open_seat, as croupier run and load): authenticate, or the
        # operator's launch token is the session; what an answer leaves out is read with a balance call.
        got = await driver.drive(open_seat(Launch(player_id, currency_of(currency), token, game_id=game.game_id),
                                           self.semantics, None, self.config.timeout_s + 1))
        if isinstance(got, SeatRefused):
            outcome = got.outcome
            what = "the launch token" if got.step == "authenticate" else "the session"
            if got.step == "other-player" and isinstance(outcome, Ok):
                raise ProviderError(PLAYER_MISMATCH, 409,
                                    f"the launch token belongs to player {outcome.player_id!r}, not {player_id!r}")
            if got.step == "currency" and isinstance(outcome, Ok):
                raise ProviderError(str(ErrorCode.CURRENCY_MISMATCH), 422,
                                    f"the player's wallet is in {outcome.balance.currency.code}, not {currency}")
            if isinstance(outcome, Rejected):
                raise ProviderError.from_wallet(outcome.code, f"the wallet refused {what}: {outcome.code}"
                                                + (f" ({outcome.message})" if outcome.message else ""))
            raise ProviderError(WALLET_UNAVAILABLE, 502, f"the wallet gave no usable answer to {got.step}: {outcome}")
        assert isinstance(got, Seat) and got.balance is not None
        self.state.ledger.book(player_id).currency = currency
        return self.state.open_session(player_id, currency_of(currency), language, game.game_id,
                                       got.session_token, got.balance)

    async def play(self, session: Session, stake: int, game: LobbyGame | None = None,
                   kind: GameKind | None = None,
                   planner: Callable[[random.Random], RoundResult] | None = None) -> RoundRecord:
        """One round for ``stake`` minor units of the session's currency, one at a time per session.

        ``planner`` draws the round from the session's seeded draws when the player chose more
        than a stake (the sandbox's roulette bets, a crash cash-out target); by default the
        lobby's game plays its typical round, as the runner does."""
        async with session.lock:
            started = time.time()
            code = session.currency.code
            try:
                if planner is not None:
                    if game is None:
                        game = resolve(session.game_id)
                        if game is None:  # pragma: no cover - launched games stay in the lobby
                            raise ProviderError(GAME_NOT_FOUND, 404, f"unknown game {session.game_id!r}")
                    result = planner(session.rng)
                elif kind is not None:
                    game, result = plan_kind(kind, session.rng, stake, code)
                else:
                    if game is None:
                        game = resolve(session.game_id)
                        if game is None:  # pragma: no cover - launched games stay in the lobby
                            raise ProviderError(GAME_NOT_FOUND, 404, f"unknown game {session.game_id!r}")
                    result = plan(game, session.rng, stake, code)
            except ValueError as exc:
                raise ProviderError.bad(f"stake of {Money(stake, session.currency)} not playable: {exc}") from None
            self._forget_balance(session.player_id)
            calls: list[CallRecord] = []
            driver = self._driver(session.session_id, session.player_id, code, calls)
            # An instant round's bet and closing win go in one request when the dialect batches,
            # by the same rule as croupier run and croupier load.
            ctx = RoundContext(session.seat, game.game_id, session.rng, session.ids, self.faults, self.config.retry,
                               batch=gameplay.batched(game.kind, batching(self.dialect) is not None),
                               semantics=self.semantics)
            outcome = await driver.drive(play_round(ctx, result))
            await driver.quiesce()
            assert isinstance(outcome, RoundOutcome)
            self.state.stats.rounds[outcome.status] += 1
            if self.metrics is not None:
                self.metrics.rounds(outcome.status)
            record = RoundRecord(
                round_id=outcome.round_id, session_id=session.session_id, game_id=game.game_id, kind=game.kind,
                stake=stake, status=outcome.status, staked=outcome.staked, paid=outcome.paid,
                balance=session.seat.balance, currency=code, at=started,
                refusal=str(outcome.refusal) if outcome.refusal else None, calls=calls,
                detail=plain(result.detail) if outcome.status == "settled" else {}, notes=list(outcome.notes),
            )
            session.rounds.append(record)
            if outcome.status == "settled":
                session.last_stake = stake  # the page offers it again; a refused stake it does not
            return record
