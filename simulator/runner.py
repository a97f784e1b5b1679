"""``croupier run``: realistic, faulty provider traffic at any wallet, reconciled at the end.

The runner is the asyncio driver around the pure core: players (:mod:`.players`)
choose stakes and games, games (:mod:`.games`) decide what is staked and paid,
rounds (:mod:`.rounds`) turn that into wallet calls as a provider would, faults
(:mod:`.faults`) bend delivery, and the ledger (:mod:`.ledger`) judges every
answer.  At the end every call still in doubt is settled the way PROTOCOL.md
says a provider must (bets rolled back, wins re-sent), within a deadline, and
every balance is read once more, alone, and compared.

A run that could not test anything (wallet unreachable, nobody provisioned or
authenticated, no call judged) ends with the verdict ``error`` and the likely
cause, never ``pass``; it always ends with a report.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from . import __version__, dialects, gameplay, settlement
from .calls import Ok, Rejected
from .client import AdminClient, AdminError, WalletClient
from .codes import ErrorCode
from .diagnosis import admin_cause, seat_cause
from .dialects.semantics import CANONICAL, Semantics
from .driver import Driver
from .findings import Severity
from .ledger import Evidence, Ledger, describe
from .money import CURRENCIES, currency
from .players import PlayerProfile, choose_stake, make_players, think_time
from .report import model, series
from .rounds import (
    Launch,
    Parallel,
    RoundContext,
    RoundOutcome,
    Seat,
    SeatRefused,
    TxIds,
    balance_call,
    live_round,
    open_seat,
    play_round,
    player_ids,
    repay,
)
from .scenario import Scenario
from .stats import RunStats


class RunError(RuntimeError):
    """The run could not start (bad player file, bad options...): exit code 2, no report."""


class SetupError(RunError):
    """The run started but could not test anything (unreachable wallet or admin API): a report
    with the verdict ``error`` and this message as its cause."""


@dataclass(frozen=True, slots=True)
class TestAccount:
    """One row of a players file: a player the wallet already has, and how croupier reaches it."""

    player_id: str
    token: str
    """A launch token (for ``authenticate``); where the operator makes the sessions and the file gives
    no ``session_token``, the session itself."""
    currency: str
    session_token: str | None = None
    """The player's session, where the operator makes them (``sessions = "operator"``); also the session
    when an ``authenticate`` answer carries none."""
    session_ref: str | None = None
    """A second session id some wires carry beside the session token."""

    @property
    def session(self) -> str:
        """The session croupier plays on where no ``authenticate`` call makes one."""
        return self.session_token or self.token


@dataclass
class RunOptions:
    scenario: Scenario
    wallet_url: str
    secret: str
    dialect: str = "canonical"
    admin_url: str | None = None
    admin_token: str | None = None
    accounts: list[TestAccount] | None = None
    seed: int = 1
    run_id: str = "run"
    shard: tuple[int, int] = (0, 1)
    concurrency: int = 256
    on_tick: Callable[[RunStats, Ledger, float], None] | None = None
    fail_on: Severity = Severity.CONTRACT
    """Findings of this severity and worse fail the run (``--fail-on``)."""
    players_file: str | None = None
    """Where ``accounts`` came from (named in messages)."""


@dataclass
class RunResult:
    scenario: Scenario
    options: RunOptions
    stats: RunStats
    ledger: Ledger
    elapsed_s: float
    players: int
    unsettled: int
    provision_errors: list[str] = field(default_factory=list)
    unseated: int = 0
    """Players that could not be provisioned or authenticated (the run then checked fewer)."""
    error: str | None = None
    """Why the run could not test what it was asked to (the verdict is then ``error``), with the likely cause."""
    skipped: list[str] = field(default_factory=list)
    """What this run did not do, and why (no admin API, a dialect that cannot carry a currency...)."""
    settle_deadline_hit: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {str(k): v for k, v in self.ledger.counts.items()}

    @property
    def verdict(self) -> str:
        return model.verdict(self.counts, self.options.fail_on, self.error)


def read_accounts(path: str) -> list[TestAccount]:
    """A CSV of test accounts with a header: player_id,token,currency (a launch token each), and the
    optional columns session_token and session_ref (where the operator makes the sessions, or a wire
    carries a second session id).  A UTF-8 byte-order mark (Excel's "CSV UTF-8") is ignored, and so
    are spaces around names and values; an empty optional value is no value."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
            rows = list(reader)
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RunError(f"{path}: not a UTF-8 CSV file ({exc})") from None
    accounts = []
    for n, row in enumerate(rows, start=2):
        try:
            acc = TestAccount(row["player_id"].strip(), row["token"].strip(), row["currency"].strip(),
                              _optional(row.get("session_token")), _optional(row.get("session_ref")))
            currency(acc.currency)
        except (KeyError, AttributeError):
            raise RunError(f"{path}:{n}: needs columns player_id,token,currency "
                           "(and optionally session_token,session_ref)") from None
        except ValueError as exc:
            raise RunError(f"{path}:{n}: {exc}") from None
        if not acc.player_id or not (acc.token or acc.session_token):
            raise RunError(f"{path}:{n}: a player_id and a token (or a session_token) are needed")
        accounts.append(acc)
    if not accounts:
        raise RunError(f"{path}: no accounts")
    return accounts


def _optional(value: str | None) -> str | None:
    value = value.strip() if isinstance(value, str) else None
    return value or None


async def preflight(url: str, timeout: float = 3.0) -> None:
    """Fail fast (exit 2) when nothing listens at the wallet's address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RunError(f"not an http(s) URL: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise RunError(f"wallet unreachable at {parts.hostname}:{port}: {exc}") from None
    writer.close()


class StopSignal(asyncio.Event):
    """The run's stop event; :meth:`pause` waits on it without a task of its own per wait."""

    def __init__(self) -> None:
        super().__init__()
        self._pauses: set[asyncio.Future[None]] = set()

    def set(self) -> None:
        super().set()
        for waiter in list(self._pauses):
            _wake(waiter)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the run is stopped meanwhile."""
        if self.is_set():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = waiter.get_loop().call_later(seconds, _wake, waiter)
        self._pauses.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._pauses.discard(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Runner:
    def __init__(self, options: RunOptions) -> None:
        self.o = options
        self.s = options.scenario
        self.stats = RunStats()
        self.semantics = _semantics(options)
        """What the dialect's calls mean: the rounds play it, the ledger judges by it."""
        self.signed = True
        """Whether the dialect signs its requests (set when the run starts)."""
        self.ledger = Ledger(semantics=self.semantics)
        self.unpaid = 0
        """Wins and rollbacks refused SESSION_EXPIRED (allowed by the dialect) that could not be sent again."""
        self.stop = StopSignal()
        self.seats: dict[str, Seat] = {}
        self.errors: list[str] = []
        self.sem = asyncio.Semaphore(max(1, options.concurrency))
        # Players are seated a few dozen at a time: queued ones wait here, not inside a client timeout.
        self.seating = asyncio.Semaphore(max(1, min(options.concurrency, 64)))
        self.unseated = 0
        self.causes: Counter[str] = Counter()
        """Why players could not be seated, most likely first (the verdict's message when nobody was)."""
        self.skipped: list[str] = []
        if options.accounts is not None:
            self.skipped.append("no admin API used (--players): a player whose session expires stops playing "
                                "(no relaunch); live tables are not played")
        self.settle_deadline_hit = False
        self.batches = False
        """The dialect carries a round's bet and win in one request (set when the run starts)."""
        # The game mix, drawn from once per round: weights summed once (random.choices does the same sums).
        self._kinds = [k for k, w in self.s.game_mix.items() if w > 0]
        self._kind_cum_weights = list(itertools.accumulate(self.s.game_mix[k] for k in self._kinds))

    # -- players ----------------------------------------------------------------------
    def _profiles(self) -> list[tuple[int, PlayerProfile]]:
        if self.o.accounts is not None:
            return self._account_profiles(self.o.accounts)
        total = self.s.players + self.s.live.tables * self.s.live.seats
        k, n = self.o.shard
        profiles = make_players(self.o.seed, total, currencies=self._currencies(), id_prefix=self.o.run_id)
        return [(i, p) for i, p in enumerate(profiles) if i % n == k]

    def _account_profiles(self, accounts: list[TestAccount]) -> list[tuple[int, PlayerProfile]]:
        """Test accounts play in their own currencies, whatever the scenario lists: player ``i`` is made
        for account ``i``'s currency (its stakes and habits are that currency's).  An account whose
        currency the dialect's wire cannot carry exactly is left out (and said so), not misjudged."""
        dialect = self._warm()
        k, n = self.o.shard
        mine = [(i, acc) for i, acc in enumerate(accounts) if i % n == k]
        uncarried = sorted({acc.currency for _, acc in mine if not dialects.carries(dialect, currency(acc.currency))})
        if uncarried:
            self.skipped.append(f"accounts in {', '.join(uncarried)}: the {self.o.dialect} dialect's wire cannot "
                                "carry them exactly")
        made: dict[str, list[PlayerProfile]] = {}
        out = []
        for i, acc in mine:
            if acc.currency in uncarried:
                continue
            code = currency(acc.currency).code
            if code not in made:
                made[code] = make_players(self.o.seed, len(accounts), currencies=(code,), id_prefix=self.o.run_id)
            out.append((i, made[code][i]))
        if not out and mine:
            raise RunError(f"dialect {self.o.dialect} carries none of the accounts' currencies "
                           f"({', '.join(uncarried)}) exactly")
        return out

    def _warm(self) -> dialects.Dialect:
        """The dialect, its keys derived (json-rsa's development keys) before the clock starts."""
        dialect = dialects.get(self.o.dialect, self.o.secret)
        for d in (dialect, dialects.get(self.o.dialect, self.o.secret + "-not-the-secret")):
            getattr(d, "warm", lambda: None)()
        return dialect

    def _currencies(self) -> tuple[str, ...] | None:
        """The scenario's currencies the dialect carries exactly (a ×100 000 or 2-decimal wire
        cannot carry every satoshi, so those players are not made rather than misjudged)."""
        dialect = self._warm()
        wanted = tuple(self.s.currencies) if self.s.currencies is not None else tuple(CURRENCIES)
        kept = tuple(c for c in wanted if dialects.carries(dialect, currency(c)))
        if len(kept) == len(wanted):
            return self.s.currencies
        if kept:
            self.skipped.append(f"currencies {', '.join(c for c in wanted if c not in kept)}: the {self.o.dialect} "
                                "dialect's wire cannot carry them exactly")
        if not kept:
            raise RunError(f"dialect {self.o.dialect} carries none of the scenario's currencies "
                           f"({', '.join(wanted)}) exactly")
        return kept

    async def _seat(self, driver: Driver, admin: AdminClient | None, index: int, profile: PlayerProfile) -> Seat | None:
        """Provision (or take a test account), then authenticate as a real launch would."""
        async with self.seating:
            seat = await self._seat_now(driver, admin, index, profile)
        if seat is None:
            self.unseated += 1
        return seat

    def _setup_failed(self, player_id: str, cause: str, detail: str = "") -> None:
        """A player could not be seated: ``cause`` names the likely reason (the verdict's message when
        nobody could be), ``detail`` what exactly happened."""
        self.causes[cause] += 1
        self.errors.append(f"{player_id}: {cause}" + (f" ({detail})" if detail else ""))

    def _ctx(self, seat: Seat, game_id: str, rng: random.Random, ids: TxIds, batch: bool = False) -> RoundContext:
        """A round's context: the scenario's faults and retries, the dialect's semantics."""
        return RoundContext(seat, game_id, rng, ids, self.s.faults, self.s.retry, batch=batch,
                            semantics=self.semantics, signed=self.signed)

    def _ttl(self) -> float | None:
        """How long a session lives, when known (a provisioned one; a players file's is not known)."""
        return self.s.session_ttl_s if self.o.accounts is None else None

    async def _seat_now(self, driver: Driver, admin: AdminClient | None, index: int,
                        profile: PlayerProfile) -> Seat | None:
        what = "POST /admin/players"
        session_token = session_ref = None
        try:
            if self.o.accounts is not None:
                acc = self.o.accounts[index]
                player_id, token, code, opening = acc.player_id, acc.token, acc.currency, None
                session_token, session_ref = acc.session_token, acc.session_ref
            else:
                assert admin is not None
                player_id, code, opening = profile.player_id, profile.currency, profile.bankroll
                await admin.create_player(player_id, code, opening)
                what = "POST /admin/tokens"
                token = await admin.token(player_id, self.s.session_ttl_s)
        except AdminError as exc:
            self._setup_failed(profile.player_id, admin_cause(exc.status, what, self.o.admin_url), exc.answer_text())
            return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._setup_failed(profile.player_id, f"admin API unreachable at {self.o.admin_url}",
                               f"{type(exc).__name__} {exc}")
            return None
        if opening is not None:
            self.ledger.open(player_id, code, opening)
        else:
            self.ledger.book(player_id).currency = code
        launch = Launch(player_id, currency(code), token, session_token, session_ref, opening)
        got = await driver.drive(open_seat(launch, self.semantics, self._ttl(), self.s.timeout_s + 1))
        if isinstance(got, SeatRefused):
            self._setup_failed(player_id, seat_cause(got.step, got.outcome, self.o.wallet_url, self.o.dialect,
                                                     self.o.players_file),
                               got.detail or (describe(got.outcome) if got.outcome is not None else ""))
            return None
        assert isinstance(got, Seat) and got.balance is not None
        self.seats[player_id] = got
        if opening is None:
            self.ledger.open(player_id, code, got.balance)
        return got

    def _ids(self, player_id: str) -> TxIds:
        """A player's transaction and round ids; a test account's id carries no run id, so its ids get
        one (a second run with the same accounts never re-sends the first run's ids)."""
        prefix = f"{self.o.run_id}-{player_id}" if self.o.accounts is not None else player_id
        return player_ids(prefix, self.semantics, self.o.run_id)

    def _kind(self, rng: random.Random) -> str:
        return rng.choices(self._kinds, cum_weights=self._kind_cum_weights)[0]

    def _think(self, profile: PlayerProfile, rng: random.Random) -> float:
        if self.s.think_time_ms is not None:
            lo, hi = self.s.think_time_ms
            return rng.randint(lo, hi) / 1000
        return think_time(profile, rng) / 1000

    async def _player(self, driver: Driver, admin: AdminClient | None, index: int, profile: PlayerProfile,
                      max_rounds: int | None) -> None:
        rng = random.Random(f"{self.o.seed}:{index}")
        seat = await self._seat(driver, admin, index, profile)
        if seat is None:
            return
        ids = self._ids(seat.player_id)
        played = 0
        while not self.stop.is_set() and (max_rounds is None or played < max_rounds):
            balance = seat.balance if seat.balance is not None else 0
            stake = choose_stake(profile, rng, balance)
            if stake is None:
                self.stats.rounds["player_broke"] += 1
                break
            ctx = self._ctx(seat, "", rng, ids)
            kind = self._kind(rng)
            game_id, plan = gameplay.plan_single(kind, rng, stake, seat.currency.code)
            ctx.game_id, ctx.batch = game_id, gameplay.batched(kind, self.batches)
            if self.s.faults.concurrent_rounds(rng) and balance >= 2 * stake:
                # Two tables open at once: two rounds of one player in flight together.
                other_kind = self._kind(rng)
                other_id, other_plan = gameplay.plan_single(other_kind, rng, stake, seat.currency.code)
                other = self._ctx(seat, other_id, random.Random(rng.random()), ids,
                                  gameplay.batched(other_kind, self.batches))
                self.stats.fault("concurrent_rounds")
                async with self.sem:
                    results = await driver.drive(_both(play_round(ctx, plan), play_round(other, other_plan)))
                for r in results:  # type: ignore[attr-defined]
                    self._count(r)
                if seat.owed and not await self._pay_owed(driver, admin, ctx):
                    break
            else:
                async with self.sem:
                    result = await driver.drive(play_round(ctx, plan))
                assert isinstance(result, RoundOutcome)
                self._count(result)
                # The session ran out (perhaps waiting for a late win): relaunch the game.
                if (result.refusal is ErrorCode.SESSION_EXPIRED or seat.owed) and \
                        not await self._pay_owed(driver, admin, ctx):
                    break
            played += 1
            if driver.late is not None:  # the provider's retry queue, between the player's rounds
                await driver.late_duplicates(seat.player_id)
            pause = self._think(profile, rng)
            if pause > 0:
                await self.stop.pause(pause)

    async def _pay_owed(self, driver: Driver, admin: AdminClient | None, ctx: RoundContext) -> bool:
        """The session ran out: launch the game again and send what the wallet refused for it (a wallet
        whose wins need a live session); False when the player cannot go on (no relaunch without the
        admin API: what is owed is then reported as not sent again)."""
        seat = ctx.seat
        if admin is None or not await self._relaunch(driver, admin, seat):
            self.unpaid += len(seat.owed)
            seat.owed.clear()
            return False
        if seat.owed:
            async with self.sem:
                paid = await driver.drive(repay(ctx))
            assert isinstance(paid, int)
            self.stats.rounds["owed_paid"] += paid
        return True

    async def _relaunch(self, driver: Driver, admin: AdminClient, seat: Seat) -> bool:
        try:
            token = await admin.token(seat.player_id, self.s.session_ttl_s)
        except (AdminError, aiohttp.ClientError, TimeoutError) as exc:
            self.errors.append(f"{seat.player_id}: relaunch failed: {exc}")
            return False
        launch = Launch(seat.player_id, seat.currency, token, session_ref=seat.session_ref, balance=seat.balance)
        got = await driver.drive(open_seat(launch, self.semantics, self.s.session_ttl_s, self.s.timeout_s + 1,
                                           read_balance=False))
        if isinstance(got, SeatRefused):
            self.errors.append(f"{seat.player_id}: re-authenticate failed: "
                               f"{describe(got.outcome) if got.outcome is not None else got.step}")
            return False
        assert isinstance(got, Seat)
        seat.session_token, seat.live_until, seat.expired_after = got.session_token, got.live_until, got.expired_after
        if got.balance is not None:
            seat.balance = got.balance
        self.stats.rounds["relaunched"] += 1
        return True

    def _count(self, result: RoundOutcome) -> None:
        self.stats.rounds[result.status] += 1
        if "reorder" in result.notes:
            self.stats.fault("reorder")
        if "late_win" in result.notes:
            self.stats.fault("late_win")

    async def _table(self, driver: Driver, admin: AdminClient | None, table: int,
                     players: list[tuple[int, PlayerProfile]], max_rounds: int | None) -> None:
        """A live table: the same seated players play one shared round after another."""
        rng = random.Random(f"{self.o.seed}:table:{table}")
        seated = [(p, await self._seat(driver, admin, i, p)) for i, p in players]
        ctxs = [(p, self._ctx(s, gameplay.LIVE_GAME_ID, random.Random(rng.random()), self._ids(s.player_id)))
                for p, s in seated if s is not None]
        ids = TxIds(f"{self.o.run_id}-table{table}")
        played = 0
        while ctxs and not self.stop.is_set() and (max_rounds is None or played < max_rounds):
            stakes = gameplay.live_stakes([(p, ctx.seat) for p, ctx in ctxs], rng, self.s.live.bets_per_player)
            if not stakes:
                break
            plans = gameplay.plan_live(rng, stakes)
            seats = [(ctx, plans[ctx.seat.player_id]) for _, ctx in ctxs if ctx.seat.player_id in plans]
            results = await driver.drive(live_round(f"table{table}", seats, ids.round()))
            assert isinstance(results, list)
            for (ctx, _), r in zip(seats, results, strict=True):
                self._count(r)
                if r.refusal is ErrorCode.SESSION_EXPIRED or ctx.seat.owed:
                    await self._pay_owed(driver, admin, ctx)
            self.stats.rounds["live_rounds"] += 1
            played += 1
            if driver.late is not None:
                for _, ctx in ctxs:
                    await driver.late_duplicates(ctx.seat.player_id)
            await self.stop.pause(self.s.live.window_ms / 1000)

    # -- the run ----------------------------------------------------------------------
    async def run(self) -> RunResult:
        if self.o.accounts is None and not (self.o.admin_url and self.o.admin_token):
            raise RunError("players come from the admin API (--admin-url, --admin-token) or --players FILE")
        # Players are made (Faker: CPU-bound) before the clock starts: duration_s is play time.
        profiles = await asyncio.to_thread(self._profiles)
        try:
            await preflight(self.o.wallet_url)
        except RunError as exc:
            return self._result(0.0, 0, f"{exc}: is the wallet running, and is --wallet right?")
        # The ledger keeps every call: move what exists to the permanent generation and collect
        # less often, or collections cost a third of the runner's time per call (bench/runner.py).
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(50_000, 20, 100)
        try:
            return await self._run(profiles)
        except SetupError as exc:
            return self._result(0.0, 0, str(exc))
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    def _result(self, elapsed: float, unsettled: int, error: str | None = None) -> RunResult:
        if self.unpaid:
            self.skipped.append(
                f"{self.unpaid} wins or rollbacks refused SESSION_EXPIRED (the dialect allows it on an ended "
                "session) were not sent again: a new session needs the admin API (with --players none is made)")
        return RunResult(self.s, self.o, self.stats, self.ledger, elapsed, len(self.seats), unsettled, self.errors,
                         self.unseated, error, self.skipped, self.settle_deadline_hit)

    def _diagnose(self, wanted: int) -> str | None:
        """Why this run tested less than it was asked to (None: it did what it was asked)."""
        cause = self.causes.most_common(1)[0][0] if self.causes else None
        if not self.seats:
            return cause or "no player could be provisioned or authenticated"
        money = ("bet", "win", "rollback", "batch")
        if not any(n for k, n in self.stats.calls.items() if k in money):
            broke = self.stats.rounds.get("player_broke", 0)
            return "no round was played: nothing was checked" + (
                f" ({broke} players could not afford their smallest stake)" if broke else "")
        judged = sum(n for k, n in self.stats.results.items()
                     if k.split(":", 1)[0] in money and not k.endswith(":unknown"))
        if not judged:
            return "no call got a definitive answer: nothing was checked"
        if self.unseated:
            return f"{self.unseated} of {wanted} players could not be seated: {cause or 'see errors'}"
        return None

    async def _run(self, profiles: list[tuple[int, PlayerProfile]]) -> RunResult:
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.s.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.o.concurrency, limit_per_host=0, force_close=False)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            dialect = dialects.get(self.o.dialect, self.o.secret)
            wrong = dialects.get(self.o.dialect, self.o.secret + "-not-the-secret")
            self.batches = dialects.batching(dialect) is not None
            self.signed = gameplay.signs(dialect, wrong)
            client = WalletClient(self.o.wallet_url, dialect, session, timeout_s=self.s.timeout_s)
            bad = WalletClient(self.o.wallet_url, wrong, session, timeout_s=self.s.timeout_s)
            driver = Driver(client, self.ledger, self.stats, self.s.faults, bad)
            admin = AdminClient(self.o.admin_url, self.o.admin_token, session) \
                if self.o.admin_url and self.o.admin_token and self.o.accounts is None else None
            if admin is not None:
                await self._admin_reachable(session)
            n_live = self.s.live.tables * self.s.live.seats if self.o.accounts is None else 0
            if self.o.accounts is not None:  # test accounts all play single-player games
                singles, live = profiles, []
            else:  # the first `players` play alone; the next tables × seats sit at live tables
                singles = [(i, p) for i, p in profiles if i < self.s.players]
                live = [(i, p) for i, p in profiles if self.s.players <= i < self.s.players + n_live]
            tasks: list[asyncio.Task[None]] = []
            if self.s.model == "open":
                tasks.append(asyncio.create_task(self._arrivals(driver, admin, singles, tasks)))
            else:
                for n, (i, p) in enumerate(singles):
                    tasks.append(asyncio.create_task(self._delayed(n, self._player(driver, admin, i, p, self.s.rounds))))
            for t in range(self.s.live.tables):
                mine = [(i, p) for i, p in live if (i - self.s.players) // self.s.live.seats == t]
                if mine:
                    tasks.append(asyncio.create_task(self._table(driver, admin, t, mine, self.s.rounds)))
            ticker = asyncio.create_task(self._tick(started))
            await self._until_done(tasks, started)
            await self._bounded(driver.quiesce(), self.s.timeout_s * 2 + 1)
            await self._bounded(self._drain_late(driver), self.s.settle_timeout_s)
            unsettled = await self._settle(driver)
            await self._bounded(self._reconcile(driver), self.s.timeout_s * 3 + 5)
            ticker.cancel()
        elapsed = time.monotonic() - started
        wanted = len(self.o.accounts) if self.o.accounts is not None else \
            self.s.players + self.s.live.tables * self.s.live.seats
        wanted = len([1 for i in range(wanted) if i % self.o.shard[1] == self.o.shard[0]])
        return self._result(elapsed, unsettled, self._diagnose(wanted))

    async def _admin_reachable(self, session: aiohttp.ClientSession) -> None:
        """Fail fast when nothing answers at the admin API's address (any answer will do: the
        readiness path is the reference wallet's and optional)."""
        assert self.o.admin_url is not None
        try:
            async with session.get(f"{self.o.admin_url.rstrip('/')}/healthz",
                                   timeout=aiohttp.ClientTimeout(total=self.s.timeout_s)) as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SetupError(f"admin API unreachable at {self.o.admin_url} ({type(exc).__name__}): "
                             "check --admin-url, or use --players FILE") from None

    @staticmethod
    async def _bounded(coro: Awaitable[Any], seconds: float) -> bool:
        """Run ``coro`` for at most ``seconds``; False when it had to be stopped."""
        try:
            await asyncio.wait_for(coro, max(0.1, seconds))
            return True
        except TimeoutError:
            return False

    async def _drain_late(self, driver: Driver) -> None:
        """The end of play: every late duplicate still queued goes out now, each player's alone."""
        if driver.late is None:
            return

        async def one(pid: str) -> None:
            async with self.sem:
                await driver.late_duplicates(pid, drain=True)

        await asyncio.gather(*(one(pid) for pid in driver.late.players()))

    async def _delayed(self, n: int, coro: Awaitable[None]) -> None:
        # Spread the first calls over the first second rather than a thundering herd at t=0.
        await asyncio.sleep(min(1.0, n * 0.002))
        await coro

    async def _arrivals(self, driver: Driver, admin: AdminClient | None, pool: list[tuple[int, PlayerProfile]],
                        tasks: list[asyncio.Task[None]]) -> None:
        """The open model: players arrive at ``arrival_rate`` per second and play one session each."""
        rng = random.Random(f"{self.o.seed}:arrivals")
        for i, p in pool:
            if self.stop.is_set():
                break
            rounds = p.session_rounds if self.s.rounds is None else min(p.session_rounds, self.s.rounds)
            tasks.append(asyncio.create_task(self._player(driver, admin, i, p, rounds)))
            await self.stop.pause(rng.expovariate(self.s.arrival_rate))

    async def _until_done(self, tasks: list[asyncio.Task[None]], started: float) -> None:
        deadline = None if self.s.duration_s is None else started + self.s.duration_s
        try:
            while True:
                pending = [t for t in tasks if not t.done()]
                if not pending:
                    break
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if wait == 0.0:
                    break
                await asyncio.wait(pending, timeout=min(wait or 0.5, 0.5), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.stop.set()
            self.stats.phase = "settling…"  # the bar is full: say what the seconds after it are for
            self.stats.settling()
            # Rounds in progress finish (a round is never abandoned half-way); then we settle.
            pending = [t for t in tasks if not t.done()]
            if pending:
                _, still = await asyncio.wait(pending, timeout=max(30.0, self.s.timeout_s * 4))
                for t in still:
                    t.cancel()
            for t in tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    self.errors.append(f"player task failed: {t.exception()!r}")

    async def _tick(self, started: float) -> None:
        if self.o.on_tick is None:
            return
        while True:
            self.o.on_tick(self.stats, self.ledger, time.monotonic() - started)
            await asyncio.sleep(0.25)

    async def _settle(self, driver: Driver) -> int:
        """Settle every call still in doubt as a provider must (:mod:`simulator.settlement`), players
        at once, each player's calls in order, the whole within ``settle_timeout_s``; what is still
        in doubt then is a ``no_definitive_answer`` finding each.  Returns how many."""
        ids: dict[str, TxIds] = {}  # one id sequence per player for the whole settlement

        async def player(pid: str, txs: list[Any]) -> None:
            seat = self.seats.get(pid)
            if seat is None:
                return
            own = self._ids(pid)
            mine = ids.setdefault(pid, TxIds(f"{own.prefix}-settle", tx_prefix=f"{own.tx_prefix}-settle"))
            async with self.sem:
                for book, tx in txs:
                    if tx.call.tx_id not in book.doubt:
                        continue  # settled meanwhile (its rollback's answer settled the bet too)
                    self.stats.rounds["settled_at_end"] += 1
                    await driver.drive(settlement.settlement(book, tx, seat, mine, self.semantics))

        async def passes() -> None:
            for _ in range(3):
                doubtful = self.ledger.in_doubt()
                if not doubtful:
                    return
                by_player: dict[str, list[Any]] = {}
                for book, tx in settlement.in_order(doubtful):
                    by_player.setdefault(book.player_id, []).append((book, tx))
                await asyncio.gather(*(player(pid, txs) for pid, txs in by_player.items()))
                await driver.quiesce()

        if not await self._bounded(passes(), self.s.settle_timeout_s):
            self.settle_deadline_hit = True
            self.errors.append(f"settlement stopped at its deadline ({self.s.settle_timeout_s:g} s, "
                               "[run] settle_timeout_s): what was still in doubt is reported so")
        why = f" (settlement deadline of {self.s.settle_timeout_s:g} s reached)" if self.settle_deadline_hit else ""
        return self.ledger.unsettled(why)

    async def _reconcile(self, driver: Driver) -> None:
        """Read every balance once more, alone, and compare with what the wallet must hold."""
        await asyncio.gather(*(self._reconcile_one(driver, pid, seat) for pid, seat in self.seats.items()))

    async def _reconcile_one(self, driver: Driver, player_id: str, seat: Seat) -> None:
        async with self.sem:  # many players at once; each player's read is alone for that player
            ex = await driver.client.exchange(balance_call(seat))
        self.stats.record("balance", "ok" if isinstance(ex.outcome, Ok) else
                          (str(ex.outcome.code) if isinstance(ex.outcome, Rejected) else "unknown"),
                          ex.latency_ms, int(time.monotonic() - driver.started))
        if isinstance(ex.outcome, Ok):
            self.ledger.reconcile(player_id, ex.outcome, ex.latency_ms)
            return
        if isinstance(ex.outcome, Rejected):
            self.ledger.balance_refused(player_id, ex.outcome, Evidence(
                {"op": "balance", "player_id": player_id}, describe(ex.outcome), round(ex.latency_ms, 3), ex.status,
                ex.response_body[:500].decode("utf-8", "replace")))
        self.errors.append(f"{player_id}: final balance read failed: {describe(ex.outcome)}")


def _semantics(options: RunOptions) -> Semantics:
    """The dialect's semantics (PROTOCOL.md's when the dialect cannot be read: the run says why later)."""
    try:
        return dialects.semantics_of(dialects.get(options.dialect, options.secret))
    except ValueError:
        return CANONICAL


def _both(a: Any, b: Any) -> Any:
    results = yield Parallel((a, b))
    return results


async def run(options: RunOptions) -> RunResult:
    return await Runner(options).run()


def result_json(result: RunResult) -> dict[str, Any]:
    """The machine-readable report (``--json``)."""
    s = result.stats
    counts = result.counts
    fail_on = result.options.fail_on
    return {
        "verdict": result.verdict,
        "error": result.error,
        "fail_on": str(fail_on),
        "scenario": result.scenario.name,
        "wallet": result.options.wallet_url,
        "seed": result.options.seed,
        "run_id": result.options.run_id,
        "elapsed_s": round(result.elapsed_s, 3),
        "players": result.players,
        "calls": dict(s.calls),
        "batched": s.calls.get("batch", 0),
        "results": dict(s.results),
        "calls_per_s": round(sum(s.calls.values()) / result.elapsed_s, 1) if result.elapsed_s else 0.0,
        "rounds": dict(s.rounds),
        "faults": dict(s.faults),
        "latency_ms": {op: h.summary() for op, h in sorted(s.latency.items())},
        "findings_by_severity": model.by_severity(counts),
        "anomalies": counts,
        "findings": [f.to_json() for f in result.ledger.findings],
        "coverage": model.coverage_rows(result.ledger.coverage_json(), fail_on),
        "unsettled": result.unsettled,
        "unseated": result.unseated,
        "skipped": list(result.skipped),
        "errors": result.provision_errors[:50],
        "dialect": result.options.dialect,
        "croupier_version": __version__,
        "series": series.build(s),
    }
