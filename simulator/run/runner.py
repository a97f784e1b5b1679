"""``croupier run``: realistic, faulty provider traffic at any wallet, reconciled at the end.

The runner is the asyncio driver around the core: each player plays a session
(:mod:`simulator.drive.session`: choose a stake and a game, play the rounds of
:mod:`simulator.play.rounds` with the faults of :mod:`simulator.play.faults`, pause,
relaunch), the ledger (:mod:`simulator.judge.ledger`) judges every answer, and the
runner schedules the players (closed or open model, live tables), bounds the end, and
builds the result.  At the end (:mod:`simulator.drive.endgame`) every call still in doubt is settled the way PROTOCOL.md
says a provider must (bets rolled back, wins re-sent), within a deadline, and
every balance is read once more, alone, and compared.

A run that could not test anything (wallet unreachable, nobody provisioned or
authenticated, no call judged) ends with the verdict ``error`` and the likely
cause, never ``pass``; it always ends with a report.

A run stopped from outside (:meth:`Runner.interrupt`: the command's SIGINT or SIGTERM) ends
the same way, only sooner: no new round, the end's steps bounded from the signal
(:mod:`.interruption`), and
what is still in doubt counted rather than judged; its report says so (``interrupted``).
"""

from __future__ import annotations

import asyncio
import gc
import random
import ssl
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import aiohttp

from ..drive import endgame, session
from ..drive.client import AdminClient, AdminError, WalletClient
from ..drive.delivery import ROUND, SEAT, Provision, Provisioned, Unseated
from ..drive.driver import Driver, StopSignal
from ..drive.evidence import EvidenceFile
from ..drive.session import Floor
from ..drive.tls import TLSError
from ..judge.diagnosis import admin_cause
from ..judge.ledger import Ledger
from ..judge.stats import RunStats
from ..play import gameplay
from ..play.players import PlayerProfile, PlayerRandom, make_players
from ..play.rounds import Launch, Seat, TxIds, player_ids
from ..protocol import dialects
from ..protocol.dialects.semantics import CANONICAL, Semantics
from ..protocol.money import CURRENCIES, currency
from .accounts import RunError, SetupError, TestAccount, TLSProblem, preflight, read_accounts
from .interruption import INTERRUPT_RECONCILE_S, INTERRUPT_ROUNDS_S, INTERRUPT_SETTLE_S, Interruption
from .metrics import SYNC_S, MeteredStats
from .result import RunOptions, RunResult, result_json

__all__ = ["RunError", "RunOptions", "RunResult", "Runner", "SetupError", "TestAccount", "read_accounts",
           "result_json", "run"]
"""The run's names, where its commands and tests have always found them."""


class Runner:
    def __init__(self, options: RunOptions) -> None:
        self.o = options
        self.s = options.scenario
        self.stats = RunStats() if options.metrics is None else MeteredStats(options.metrics, _dialect_name(options))
        self.semantics = _semantics(options)
        """What the dialect's calls mean: the rounds play it, the ledger judges by it."""
        self.signed = True
        """Whether the dialect signs its requests (set when the run starts)."""
        self.evidence: EvidenceFile | None = None
        """The evidence file closed rounds go to (opened when play starts)."""
        self.ledger = Ledger(semantics=self.semantics, keep_all=options.keep_all_evidence,
                             retired_to=self._retired if options.evidence_path else None)
        self.owed_unpaid = 0
        """Wins and rollbacks refused SESSION_EXPIRED (allowed by the dialect) that could not be sent again."""
        self.stop = StopSignal()
        self.interruption: Interruption | None = None
        """Set by :meth:`interrupt` (the command's SIGINT/SIGTERM)."""
        self.abandon = asyncio.Event()
        """A second signal: skip what is left of the settlement and the final balance reads."""
        self.started: float | None = None
        """``time.monotonic()`` when play started."""
        self.seats: dict[str, Seat] = {}
        self.errors: list[str] = []
        self.admin: AdminClient | None = None
        self.unseated_n = 0
        self.causes: Counter[str] = Counter()
        """Why players could not be seated, most likely first (the verdict's message when nobody was)."""
        self.skipped: list[str] = []
        if options.accounts is not None:
            self.skipped.append("no admin API used (--players): a player whose session expires stops playing "
                                "(no relaunch); live tables are not played")
        self.settle_deadline_hit = False
        self.floor = Floor(self.s, self.semantics)
        """What every player's session shares (completed with the dialect's wire when the run starts)."""
        self.ssl: ssl.SSLContext | None = None
        """The clients' TLS context (``--ca-bundle``...), built when the run starts."""

    def interrupt(self, signal_name: str) -> None:
        """A stop asked from outside, on the run's event loop (the command turns SIGINT/SIGTERM into
        this call; the runner itself never touches signals).  The first stops play: no new round,
        the rounds in flight get :data:`INTERRUPT_ROUNDS_S`, the settlement :data:`INTERRUPT_SETTLE_S`.
        The second skips what is left of the settlement and the final balance reads."""
        if self.interruption is None:
            self.interruption = Interruption(signal_name, time.monotonic())
            self.stats.phase = "interrupted: stopping…"
            self.stop.set()
        elif self.interruption.again is None:
            self.interruption.again = signal_name
            self.stats.phase = "interrupted: settlement skipped"
            self.abandon.set()

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
            d.warm()
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

    # -- what the sessions count (simulator.drive.session.Board) ------------------------------
    @property
    def rounds(self) -> Counter[str]:
        return self.stats.rounds

    def error(self, text: str) -> None:
        self.errors.append(text)

    def seated(self, seat: Seat) -> None:
        self.seats[seat.player_id] = seat

    def unseated(self, player_id: str, cause: str, detail: str) -> None:
        """A player could not be seated: ``cause`` names the likely reason (the verdict's message when
        nobody could be), ``detail`` what exactly happened."""
        self.unseated_n += 1
        self.causes[cause] += 1
        self.errors.append(f"{player_id}: {cause}" + (f" ({detail})" if detail else ""))

    def unpaid(self, player_id: str, n: int) -> None:
        self.owed_unpaid += n

    async def _provision(self, p: Provision) -> Provisioned:
        """A players file's row, or a player made through the admin API and a launch token issued."""
        if self.o.accounts is not None:
            if p.again is not None:
                return None  # no admin API: no new session (what is owed is said unpaid)
            acc = self.o.accounts[p.index]
            return Launch(acc.player_id, currency(acc.currency), acc.token, acc.session_token, acc.session_ref)
        assert self.admin is not None
        pid = p.profile.player_id if p.again is None else p.again.player_id
        what = "POST /admin/players"
        try:
            if p.again is None:
                await self.admin.create_player(pid, p.profile.currency, p.profile.bankroll)
            what = "POST /admin/tokens"
            token = await self.admin.token(pid, self.s.session_ttl_s)
        except AdminError as exc:
            return Unseated(admin_cause(exc.status, what, self.o.admin_url), exc.answer_text())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Unseated(f"admin API unreachable at {self.o.admin_url}", f"{type(exc).__name__} {exc}")
        return Launch(pid, currency(p.profile.currency), token, balance=p.profile.bankroll)

    def _ids(self, player_id: str) -> TxIds:
        """A player's transaction and round ids; a test account's id carries no run id, so its ids get
        one (a second run with the same accounts never re-sends the first run's ids)."""
        prefix = f"{self.o.run_id}-{player_id}" if self.o.accounts is not None else player_id
        return player_ids(prefix, self.semantics, self.o.run_id)

    async def _player(self, driver: Driver, index: int, profile: PlayerProfile, max_rounds: int | None) -> None:
        rng = PlayerRandom(f"{self.o.seed}:{index}")
        await driver.run(session.player(driver.courier, self.floor, self, profile, rng, self._ids, max_rounds, index))

    async def _table(self, driver: Driver, table: int, players: list[tuple[int, PlayerProfile]],
                     max_rounds: int | None) -> None:
        """A live table: the same seated players play one shared round after another."""
        rng = random.Random(f"{self.o.seed}:table:{table}")
        await driver.run(session.table(driver.courier, self.floor, self, f"table{table}", players, rng, self._ids,
                                       TxIds(f"{self.o.run_id}-table{table}"), max_rounds))

    # -- the run ----------------------------------------------------------------------
    async def run(self) -> RunResult:
        if self.o.accounts is None and not (self.o.admin_url and self.o.admin_token):
            raise RunError("players come from the admin API (--admin-url, --admin-token) or --players FILE")
        # Players are made (Faker: CPU-bound) before the clock starts: duration_s is play time.
        profiles = await asyncio.to_thread(self._profiles)
        if self.interruption is not None:
            return self._result(0.0, 0, "interrupted before play started: nothing was checked")
        try:
            self.ssl = self.o.tls.context()
            await preflight(self.o.wallet_url, tls=self.o.tls, ctx=self.ssl)
        except TLSProblem as exc:
            return self._result(0.0, 0, str(exc))
        except TLSError as exc:  # the command checked the files first; a file changed since
            return self._result(0.0, 0, str(exc))
        except RunError as exc:
            return self._result(0.0, 0, f"{exc}: is the wallet running, and is --wallet right?")
        # Players, profiles and books live for the whole run (every call too with --keep-all-evidence):
        # move what exists to the permanent generation and collect less often, or collections cost a
        # third of the runner's time per call (bench/runner.py).
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(50_000, 20, 100)
        if self.o.evidence_path and not self.o.keep_all_evidence:
            self.evidence = EvidenceFile(self.o.evidence_path)
        try:
            return await self._run(profiles)
        except SetupError as exc:
            return self._result(0.0, 0, str(exc))
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            if self.evidence is not None:
                self.evidence.close()

    def _retired(self, record: dict[str, Any]) -> None:
        """A closed round's transaction left the ledger: to the evidence file, if there is one."""
        if self.evidence is not None:
            self.evidence.write(record)

    def _result(self, elapsed: float, unsettled: int, error: str | None = None) -> RunResult:
        if self.owed_unpaid:
            self.skipped.append(
                f"{self.owed_unpaid} wins or rollbacks refused SESSION_EXPIRED (the dialect allows it on an ended "
                "session) were not sent again: a new session needs the admin API (with --players none is made)")
        stop = self.interruption
        if stop is not None:
            stop.after_s = max(0.0, stop.at - (self.started if self.started is not None else stop.at))
            stop.unsettled = unsettled
            stop.before_play = stop.before_play or self.started is None
            if stop.before_play or (unsettled == 0 and stop.again is None):
                stop.settled = True  # nothing was, or is, in doubt: nothing is left to settle
        return RunResult(self.s, self.o, self.stats, self.ledger, elapsed, len(self.seats), unsettled, self.errors,
                         self.unseated_n, error, self.skipped, self.settle_deadline_hit, stop)

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
        if self.unseated_n:
            return f"{self.unseated_n} of {wanted} players could not be seated: {cause or 'see errors'}"
        return None

    async def _run(self, profiles: list[tuple[int, PlayerProfile]]) -> RunResult:
        started = self.started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=self.s.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.o.concurrency, limit_per_host=0, force_close=False,
                                         ssl=self.ssl or self.o.tls.context())
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            dialect = dialects.get(self.o.dialect, self.o.secret)
            wrong = dialects.get(self.o.dialect, self.o.secret + "-not-the-secret")
            self.signed = gameplay.signs(dialect, wrong)
            self.floor = Floor(self.s, self.semantics, self.signed, dialects.batching(dialect) is not None,
                               self.s.session_ttl_s if self.o.accounts is None else None, self.o.wallet_url,
                               self.o.dialect, self.o.players_file)
            client = WalletClient(self.o.wallet_url, dialect, session, timeout_s=self.s.timeout_s)
            bad = WalletClient(self.o.wallet_url, wrong, session, timeout_s=self.s.timeout_s)
            # A round waits for a slot before its first call, never inside a client timeout; players are
            # seated a few dozen at a time.
            slots = {ROUND: self.o.concurrency, SEAT: min(self.o.concurrency, 64)}
            driver = Driver(client, self.ledger, self.stats, self.s.faults, bad, stop=self.stop,
                            provision=self._provision, slots=slots)
            self.admin = AdminClient(self.o.admin_url, self.o.admin_token, session) \
                if self.o.admin_url and self.o.admin_token and self.o.accounts is None else None
            if self.admin is not None:
                await self._admin_reachable(session)
            n_live = self.s.live.tables * self.s.live.seats if self.o.accounts is None else 0
            if self.o.accounts is not None:  # test accounts all play single-player games
                singles, live = profiles, []
            else:  # the first `players` play alone; the next tables × seats sit at live tables
                singles = [(i, p) for i, p in profiles if i < self.s.players]
                live = [(i, p) for i, p in profiles if self.s.players <= i < self.s.players + n_live]
            tasks: list[asyncio.Task[None]] = []
            if self.s.model == "open":
                tasks.append(asyncio.create_task(self._arrivals(driver, singles, tasks)))
            else:
                for n, (i, p) in enumerate(singles):
                    tasks.append(asyncio.create_task(self._delayed(n, self._player(driver, i, p, self.s.rounds))))
            for t in range(self.s.live.tables):
                mine = [(i, p) for i, p in live if (i - self.s.players) // self.s.live.seats == t]
                if mine:
                    tasks.append(asyncio.create_task(self._table(driver, t, mine, self.s.rounds)))
            ticker = asyncio.create_task(self._tick(started))
            metering = asyncio.create_task(self._meter(tasks)) if isinstance(self.stats, MeteredStats) else None
            await self._until_done(tasks, started)
            # Interrupted, each step of the end is bounded from the signal, and a second signal skips them.
            await self._bounded(driver.quiesce(), self.s.timeout_s * 2 + 1, self._rounds_left())
            late = driver.late.players() if driver.late is not None else []
            await self._bounded(driver.run(endgame.drain_late(driver.courier, late)), self.s.settle_timeout_s,
                                0.0)  # no new calls once stopped
            unsettled = await self._settle(driver)
            await self._bounded(self._reconcile(driver), self.s.timeout_s * 3 + 5, INTERRUPT_RECONCILE_S)
            ticker.cancel()
            if metering is not None:
                metering.cancel()
                self._sync(tasks)  # the last word: what a scrape after the end reads
            unheard = list(driver.background)  # answers nobody waits for any more (a cut-short end): not leaked
            for task in unheard:
                task.cancel()
            if unheard:
                await asyncio.wait(unheard, timeout=1.0)
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

    async def _bounded(self, coro: Awaitable[Any], seconds: float, interrupted_s: float | None = None) -> bool:
        """Run ``coro`` for at most ``seconds``; once the run is interrupted, for at most ``interrupted_s``
        from the signal (or from the start of ``coro`` if later), and not at all after a second signal.
        False when it had to be stopped (it is cancelled)."""
        task = asyncio.ensure_future(coro)
        start = time.monotonic()
        try:
            while not task.done():
                deadline = start + max(0.1, seconds)
                stop = self.interruption
                if stop is not None:
                    if self.abandon.is_set():
                        break
                    if interrupted_s is not None:
                        deadline = min(deadline, max(start, stop.at) + interrupted_s)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # Woken by the task, or every 0.2 s to see whether a signal came (a short bound now).
                await asyncio.wait({task}, timeout=min(left, 0.2))
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            task.result()  # what it raised, as wait_for did
            return True
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        return False

    async def _delayed(self, n: int, coro: Awaitable[None]) -> None:
        # Spread the first calls over the first second rather than a thundering herd at t=0.
        await self.stop.pause(min(1.0, n * 0.002))
        await coro

    async def _arrivals(self, driver: Driver, pool: list[tuple[int, PlayerProfile]],
                        tasks: list[asyncio.Task[None]]) -> None:
        """The open model: players arrive at ``arrival_rate`` per second and play one session each."""
        rng = random.Random(f"{self.o.seed}:arrivals")
        for i, p in pool:
            if self.stop.is_set():
                break
            rounds = p.session_rounds if self.s.rounds is None else min(p.session_rounds, self.s.rounds)
            tasks.append(asyncio.create_task(self._player(driver, i, p, rounds)))
            await self.stop.pause(rng.expovariate(self.s.arrival_rate))

    async def _until_done(self, tasks: list[asyncio.Task[None]], started: float) -> None:
        deadline = None if self.s.duration_s is None else started + self.s.duration_s
        try:
            while not self.stop.is_set():
                pending = [t for t in tasks if not t.done()]
                if not pending:
                    break
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if wait == 0.0:
                    break
                await asyncio.wait(pending, timeout=min(wait or 0.25, 0.25), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.stop.set()
            # The bar is full (or the run was interrupted): say what the seconds after it are for.
            self.stats.phase = "interrupted: settling…" if self.interruption is not None else "settling…"
            # Rounds in progress finish (a round is never abandoned half-way unless interrupted); then we settle.
            self.stats.settling()
            await self._let_finish(tasks)
            for t in tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    self.errors.append(f"player task failed: {t.exception()!r}")

    def _rounds_left(self) -> float:
        """What is left of :data:`INTERRUPT_ROUNDS_S` since the signal (all of it before one): the answers
        the provider stopped waiting for share the rounds' window, not a window of their own."""
        if self.interruption is None:
            return INTERRUPT_ROUNDS_S
        return max(0.0, self.interruption.at + INTERRUPT_ROUNDS_S - time.monotonic())

    async def _let_finish(self, tasks: list[asyncio.Task[None]]) -> None:
        """Let the rounds in progress finish: up to ``max(30, 4 × timeout_s)`` seconds, or
        :data:`INTERRUPT_ROUNDS_S` from a signal, none after a second; then cancel them (the calls they
        had in flight stay in doubt, and are settled as a provider settles what it stopped waiting for)."""
        pending = {t for t in tasks if not t.done()}
        until = time.monotonic() + max(30.0, self.s.timeout_s * 4)
        while pending and not self.abandon.is_set():
            stop = self.interruption
            limit = until if stop is None else min(until, stop.at + INTERRUPT_ROUNDS_S)
            left = limit - time.monotonic()
            if left <= 0:
                break
            # The tasks grow while the open model's arrivals finish: look again every 0.2 s.
            _, pending = await asyncio.wait(pending | {t for t in tasks if not t.done()}, timeout=min(left, 0.2))
        still = [t for t in tasks if not t.done()]
        for t in still:
            t.cancel()
        if still:
            await asyncio.wait(still, timeout=1.0)
            if self.interruption is not None:
                self.interruption.cancelled_rounds = len(still)

    async def _tick(self, started: float) -> None:
        if self.o.on_tick is None:
            return
        while True:
            self.o.on_tick(self.stats, self.ledger, time.monotonic() - started)
            await asyncio.sleep(0.25)

    async def _meter(self, tasks: list[asyncio.Task[None]]) -> None:
        while True:
            self._sync(tasks)
            await asyncio.sleep(SYNC_S)

    def _sync(self, tasks: list[asyncio.Task[None]]) -> None:
        if isinstance(self.stats, MeteredStats):
            playing = sum(1 for t in tasks if not t.done())
            if self.s.model == "open" and tasks and not tasks[0].done():
                playing -= 1  # the arrivals, not a session
            self.stats.sync(len(self.seats), playing, len(self.ledger.in_doubt()))

    async def _settle(self, driver: Driver) -> int:
        """Settle every call still in doubt as a provider must (:mod:`simulator.drive.endgame`), within
        ``settle_timeout_s``; what is still in doubt then is a ``no_definitive_answer`` finding each.
        Returns how many."""
        cached: dict[str, TxIds] = {}  # one id sequence per player for the whole settlement

        def ids(pid: str) -> TxIds:
            if pid not in cached:
                own = self._ids(pid)
                cached[pid] = TxIds(f"{own.prefix}-settle", tx_prefix=f"{own.tx_prefix}-settle")
            return cached[pid]

        began = time.monotonic()
        flow = endgame.settle(driver.courier, self.seats, self.semantics, ids, self.stats.rounds,
                              began + self.s.settle_timeout_s, self.abandon.is_set)
        outcome: list[bool] = []
        finished = await self._bounded(self._into(driver.run(flow), outcome), self.s.settle_timeout_s,
                                       INTERRUPT_SETTLE_S) and outcome == [True]
        if self.interruption is not None:
            self.interruption.settled = finished
            self.interruption.settle_bound_s = round(time.monotonic() - began, 1)
            if not finished:  # cut short by the signal, not the wallet's doing: counted, not judged
                return len(endgame.in_doubt(driver.courier, self.seats))
        if not finished:
            self.settle_deadline_hit = True
            self.errors.append(f"settlement stopped at its deadline ({self.s.settle_timeout_s:g} s, "
                               "[run] settle_timeout_s): what was still in doubt is reported so")
        why = f" (settlement deadline of {self.s.settle_timeout_s:g} s reached)" if self.settle_deadline_hit else ""
        return endgame.flag_left(driver.courier, self.seats, why)

    @staticmethod
    async def _into(coro: Awaitable[bool], out: list[bool]) -> None:
        out.append(await coro)

    async def _reconcile(self, driver: Driver) -> None:
        """Read every balance once more, alone, and compare with what the wallet must hold."""
        self.errors.extend(await driver.run(endgame.reconcile(driver.courier, self.seats.values())))


def _dialect_name(options: RunOptions) -> str:
    """The dialect's name for the metrics' ``dialect`` label (a dialect file's own name, not its path)."""
    try:
        return dialects.get(options.dialect, options.secret).name
    except ValueError:
        return options.dialect


def _semantics(options: RunOptions) -> Semantics:
    """The dialect's semantics (PROTOCOL.md's when the dialect cannot be read: the run says why later)."""
    try:
        return dialects.semantics_of(dialects.get(options.dialect, options.secret))
    except ValueError:
        return CANONICAL


async def run(options: RunOptions) -> RunResult:
    return await Runner(options).run()
