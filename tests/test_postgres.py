"""The PostgreSQL store where SQLite cannot go: several wallet processes, a crash, a database that goes away.

* Two ``croupier wallet serve --dsn`` processes on one schema take calls for the
  *same* players at once: bets that race for one balance (no lost update, no
  overdraft), identical replays sent to both processes together (applied once,
  one ``wallet_tx_id``), rollbacks of one bet through both (refunded once), and a
  bet racing its own rollback across processes.
* A PG-backed wallet under load is SIGKILLed and restarted: every acknowledged
  call is in the log, every in-flight call replayed through two fresh processes
  at once settles exactly once, and every balance is the sum of its log.
* ``croupier run`` against a wallet whose database (behind :class:`tests.pgproxy.PgProxy`)
  disappears for 1.5 s in the middle: /healthz says 503, calls in the outage get
  503 (outcome unknown, never a definitive answer), the wallet reconnects by
  itself, and the provider's retries and rollbacks leave nothing in doubt and
  zero anomalies.

Every test runs in a schema of its own (``croupier_t_<hex>``), dropped at the end,
and is skipped with the reason when no PostgreSQL is reachable
(``CROUPIER_TEST_PG_DSN``, default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from simulator.drive.client import AdminClient, Exchange, WalletClient
from simulator.drive.driver import Driver
from simulator.play import scenario as scenarios
from simulator.play.faults import FaultPlan
from simulator.play.players import make_players
from simulator.play.rounds import Seat, Send
from simulator.protocol.calls import Ok, Op, Rejected, Unknown, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects.canonical import CanonicalDialect
from simulator.protocol.money import Money, currency
from simulator.run.runner import Runner, RunOptions, RunResult, result_json, run
from simulator.wallet.postgres import PostgresStore
from tests import support
from tests.pgproxy import PgProxy
from tests.support import ADMIN_TOKEN, PG_DSN, SECRET, WalletProcess, serve_wallet, skip_without_pg
from tests.test_crash import TASKS as CRASH_TASKS
from tests.test_crash import Book, check_log, load_until_killed, snapshot
from tests.test_crash import client as crash_client

GAME = "g-pg"


# -- plumbing ---------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _probe_pg_outside_the_event_loop() -> None:
    """Probe PostgreSQL once from a synchronous fixture, before any event loop runs.

    ``tests/support.py:pg_unavailable()`` probes with ``asyncio.run()``, which raises
    ``RuntimeError: asyncio.run() cannot be called from a running event loop`` when the
    first caller is an async test or fixture — and caches that as "no PostgreSQL", so
    every PostgreSQL test after it is skipped.  Probing here gives the real answer (and
    discards such a poisoned answer cached by an earlier test module)."""
    cached = support._pg_reason
    if cached and cached[0] and "running event loop" in cached[0]:
        cached.clear()
    support.pg_unavailable()


def new_schema() -> str:
    return f"croupier_t_{uuid.uuid4().hex[:16]}"


async def drop_schema(schema: str) -> None:
    """Drop a test schema, straight on the server (never through a proxy)."""
    conn = await asyncpg.connect(PG_DSN, timeout=10)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE", timeout=30)
    finally:
        await conn.close()


async def sql(query: str, *args: Any, schema: str) -> list[asyncpg.Record]:
    """Read the wallet's tables directly (the ground truth behind the admin API)."""
    conn = await asyncpg.connect(PG_DSN, timeout=10, server_settings={"search_path": schema})
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query, *args)
        return rows
    finally:
        await conn.close()


def stop(proc: WalletProcess) -> None:
    proc.kill()
    if proc.proc:
        for stream in (proc.proc.stdout, proc.proc.stderr):
            if stream:
                stream.close()


@contextlib.asynccontextmanager
async def pg_processes(tmp_path: Path, schema: str, n: int) -> AsyncIterator[list[WalletProcess]]:
    """``n`` wallet processes on one schema, started together (they migrate it together, under the advisory lock)."""
    procs = [WalletProcess(tmp_path / "unused.db", "--dsn", PG_DSN, "--pg-schema", schema) for _ in range(n)]
    try:
        await asyncio.gather(*(asyncio.to_thread(p.start) for p in procs))
        yield procs
    finally:
        for p in procs:
            stop(p)


@dataclass
class Wallet:
    """One wallet process as a client sees it."""

    name: str
    wallet: WalletClient
    admin: AdminClient


@dataclass
class Cluster:
    schema: str
    a: Wallet
    b: Wallet

    @property
    def both(self) -> tuple[Wallet, Wallet]:
        return self.a, self.b


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Two wallet processes (A and B) serving one PostgreSQL schema."""
    skip_without_pg()
    schema = new_schema()
    try:
        async with pg_processes(tmp_path, schema, 2) as (pa, pb), aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1024)
        ) as http:
            def side(name: str, proc: WalletProcess) -> Wallet:
                return Wallet(name, WalletClient(f"{proc.base}/wallet", CanonicalDialect(SECRET), http,
                                                 timeout_s=20.0), AdminClient(proc.base, ADMIN_TOKEN, http))

            yield Cluster(schema, side("A", pa), side("B", pb))
    finally:
        await drop_schema(schema)


async def new_player(c: Cluster, player_id: str, currency: str, balance: int) -> str:
    """Create the player through A, launch the game through B: the session is shared by both processes."""
    await c.a.admin.create_player(player_id, currency, balance)
    token = await c.a.admin.token(player_id)
    out = await c.b.wallet.send(WalletCall.authenticate(token, GAME))
    assert isinstance(out, Ok) and out.session_token, out
    return out.session_token


async def log_of(c: Cluster, player_id: str) -> list[dict[str, Any]]:
    """The player's log, the same through both processes, each balance_after the running sum of the deltas."""
    rows = await c.a.admin.transactions(player_id)
    assert rows == await c.b.admin.transactions(player_id), "the two processes read different logs"
    running = 0
    for r in rows:
        running += r["delta"]
        assert r["balance_after"] == running, r
    return rows


async def balance_of(c: Cluster, player_id: str) -> int:
    a, b = await asyncio.gather(c.a.admin.player(player_id), c.b.admin.player(player_id))
    assert a == b
    return int(a["balance"])


# -- 1. two processes, one database ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_two_processes_bets_for_one_player_never_overdraw(cluster: Cluster) -> None:
    """240 bets for one player at once, alternately through A and B, on a balance that covers 142 of them."""
    skip_without_pg()
    c = cluster
    start, stake, n = 1_000, 7, 240
    sess = await new_player(c, "p-od", "EUR", start)
    calls = [WalletCall.bet(f"od-{k}", "p-od", sess, GAME, f"r-{k % 12}", Money.of(stake, "EUR")) for k in range(n)]
    via = [c.both[k % 2] for k in range(n)]
    outcomes = await asyncio.gather(*(w.wallet.send(call) for w, call in zip(via, calls, strict=True)))

    oks = [o for o in outcomes if isinstance(o, Ok)]
    refused = [o for o in outcomes if not isinstance(o, Ok)]
    assert all(isinstance(o, Rejected) and o.code is ErrorCode.INSUFFICIENT_FUNDS for o in refused), refused[:3]
    final = await balance_of(c, "p-od")
    assert final >= 0
    assert len(oks) * stake == start - final, "lost update: accepted stakes do not explain the balance"
    assert len(oks) == start // stake, "bets were refused while the balance still covered them"
    per_process = Counter(w.name for w, o in zip(via, outcomes, strict=True) if isinstance(o, Ok))
    assert per_process["A"] > 0 and per_process["B"] > 0, per_process
    print(f"overdraft: accepted per process {dict(per_process)}")
    # Serialized across processes: each accepted bet saw its own balance, one stake below the one before.
    assert sorted(o.balance.minor for o in oks) == [start - k * stake for k in range(len(oks), 0, -1)]
    assert len({o.wallet_tx_id for o in oks}) == len(oks)

    rows = await log_of(c, "p-od")
    bets = [r for r in rows if r["op"] == Op.BET]
    assert len(bets) == len(oks) and all(r["delta"] == -stake for r in bets)
    assert {r["wallet_tx_id"] for r in bets} == {o.wallet_tx_id for o in oks}
    assert sum(r["delta"] for r in rows) == final == rows[-1]["balance_after"]
    (db,) = await sql("SELECT balance FROM players WHERE player_id = $1", "p-od", schema=c.schema)
    assert db["balance"] == final


@pytest.mark.slow
async def test_two_processes_identical_replays_apply_once(cluster: Cluster) -> None:
    """10 bets and 10 wins, each sent 8 times through A and 8 times through B, all at once: each applied once."""
    skip_without_pg()
    c = cluster
    start = 100_000
    pid = "p-dup"
    sess = await new_player(c, pid, "KWD", start)
    bets = [WalletCall.bet(f"dup-b{k}", pid, sess, GAME, f"dr-{k}", Money.of(100 + k, "KWD")) for k in range(10)]
    wins = [WalletCall.win(f"dup-w{k}", pid, sess, GAME, f"dr-{k}", Money.of(1_000 + k, "KWD"), WinReason.REGULAR,
                           round_closed=False) for k in range(10)]

    async def storm(calls: list[WalletCall]) -> list[tuple[WalletCall, Exchange]]:
        sends = [(call, w) for call in calls for w in c.both for _ in range(8)]
        random.Random(len(calls)).shuffle(sends)
        exchanges = await asyncio.gather(*(w.wallet.exchange(call) for call, w in sends))
        return [(call, ex) for (call, _), ex in zip(sends, exchanges, strict=True)]

    def bet_delta(k: int) -> int:
        return -(100 + k)

    def win_delta(k: int) -> int:
        return 1_000 + k

    for calls, delta in ((bets, bet_delta), (wins, win_delta)):
        answered = await storm(calls)
        bad = [(call.tx_id, ex.status, ex.response_body) for call, ex in answered if ex.status != 200]
        assert not bad, bad[:3]
        wtx: dict[str, set[str | None]] = defaultdict(set)
        for call, ex in answered:
            assert isinstance(ex.outcome, Ok)
            wtx[call.tx_id or ""].add(ex.outcome.wallet_tx_id)
        assert all(len(ids) == 1 for ids in wtx.values()), {t: ids for t, ids in wtx.items() if len(ids) > 1}
        assert len({next(iter(ids)) for ids in wtx.values()}) == len(calls)
        rows = await log_of(c, pid)
        for k, call in enumerate(calls):
            mine = [r for r in rows if r["tx_id"] == call.tx_id]
            assert len(mine) == 1 and mine[0]["delta"] == delta(k), mine
            assert {mine[0]["wallet_tx_id"]} == wtx[call.tx_id or ""]

    expected = start - sum(100 + k for k in range(10)) + sum(1_000 + k for k in range(10))
    assert await balance_of(c, pid) == expected
    (n,) = await sql("SELECT count(*) AS n FROM txs WHERE player_id = $1 AND tx_id IS NOT NULL", pid, schema=c.schema)
    assert n["n"] == 20


@pytest.mark.slow
async def test_two_processes_rollbacks_of_one_bet_refund_once(cluster: Cluster) -> None:
    """Each of 8 bets gets 6 rollbacks (different tx_ids) and 6 copies of one more rollback, over A and B at once."""
    skip_without_pg()
    c = cluster
    start, pid = 10_000, "p-rb"
    sess = await new_player(c, pid, "JPY", start)
    bets = [WalletCall.bet(f"rb-b{k}", pid, sess, GAME, f"rbr-{k}", Money.of(100 * (k + 1), "JPY")) for k in range(8)]
    placed = await asyncio.gather(*(c.both[k % 2].wallet.send(b) for k, b in enumerate(bets)))
    assert all(isinstance(o, Ok) for o in placed), placed
    after_bets = start - sum(100 * (k + 1) for k in range(8))
    assert await balance_of(c, pid) == after_bets

    sends: list[tuple[WalletCall, Wallet]] = []
    for k, bet in enumerate(bets):
        distinct = [WalletCall.rollback(f"rb-{k}-{j}", bet.tx_id or "", pid, sess, GAME, f"rbr-{k}") for j in range(6)]
        same = WalletCall.rollback(f"rb-{k}-same", bet.tx_id or "", pid, sess, GAME, f"rbr-{k}")
        sends += [(rb, c.both[j % 2]) for j, rb in enumerate(distinct)] + [(same, c.both[j % 2]) for j in range(6)]
    random.Random(3).shuffle(sends)
    exchanges = await asyncio.gather(*(w.wallet.exchange(rb) for rb, w in sends))
    bad = [(rb.tx_id, ex.status, ex.response_body) for (rb, _), ex in zip(sends, exchanges, strict=True)
           if ex.status != 200 or not isinstance(ex.outcome, Ok)]
    assert not bad, bad[:3]
    wtx: dict[str, set[str | None]] = defaultdict(set)
    for (rb, _), ex in zip(sends, exchanges, strict=True):
        assert isinstance(ex.outcome, Ok)
        wtx[rb.tx_id or ""].add(ex.outcome.wallet_tx_id)
    assert all(len(ids) == 1 for ids in wtx.values()), "a replayed rollback got two wallet_tx_ids"
    assert len(wtx) == 8 * 7

    final = await balance_of(c, pid)
    assert final == start, f"each bet must be refunded exactly once: {final} != {start}"
    rows = await log_of(c, pid)
    for k, bet in enumerate(bets):
        rbs = [r for r in rows if r["op"] == Op.ROLLBACK and r["ref_tx_id"] == bet.tx_id]
        assert len(rbs) == 7, rbs
        assert sorted(r["delta"] for r in rbs) == [0] * 6 + [100 * (k + 1)], rbs
        assert [r["rolled_back"] for r in rows if r["tx_id"] == bet.tx_id] == [True]
    assert sum(r["delta"] for r in rows) == final


@pytest.mark.slow
async def test_two_processes_bet_racing_its_own_rollback(cluster: Cluster) -> None:
    """40 bets each sent with its rollback at once, one through A and the other through B: no money moves."""
    skip_without_pg()
    c = cluster
    start, pid = 1_000, "p-race"
    sess = await new_player(c, pid, "USDT", start)
    sends: list[tuple[WalletCall, Wallet]] = []
    for k in range(40):
        bet = WalletCall.bet(f"race-{k}", pid, sess, GAME, f"rr-{k}", Money.of(10, "USDT"))
        rb = WalletCall.rollback(f"race-rb-{k}", f"race-{k}", pid, sess, GAME, f"rr-{k}")
        first, second = c.both if k % 2 else c.both[::-1]
        sends += [(bet, first), (rb, second)] if k % 4 < 2 else [(rb, second), (bet, first)]
    outs = await asyncio.gather(*(w.wallet.send(call) for call, w in sends))
    by_tx = {call.tx_id: o for (call, _), o in zip(sends, outs, strict=True)}
    accepted = set()
    for k in range(40):
        bet_out, rb_out = by_tx[f"race-{k}"], by_tx[f"race-rb-{k}"]
        assert isinstance(rb_out, Ok), rb_out
        assert isinstance(bet_out, Ok) or (
            isinstance(bet_out, Rejected) and bet_out.code is ErrorCode.TX_ROLLED_BACK
        ), bet_out
        if isinstance(bet_out, Ok):
            accepted.add(f"race-{k}")
    assert await balance_of(c, pid) == start
    rows = await log_of(c, pid)
    assert sum(r["delta"] for r in rows) == start
    by_log = {r["tx_id"]: r for r in rows if r["tx_id"]}
    for k in range(40):
        bet_id = f"race-{k}"
        rb_row = by_log[f"race-rb-{k}"]
        if bet_id in accepted:  # the bet won the race: the rollback refunded it
            assert by_log[bet_id]["rolled_back"] and rb_row["delta"] == 10, (by_log[bet_id], rb_row)
        else:  # the rollback won: a tombstone, no refund, and the bet is not in the log
            assert bet_id not in by_log and rb_row["delta"] == 0, rb_row
    print(f"race: the bet won {len(accepted)} times, its rollback {40 - len(accepted)} times")
    tombs = {r["tx_id"] for r in await sql("SELECT tx_id FROM tombstones", schema=c.schema)}
    assert tombs == {f"race-{k}" for k in range(40)} - accepted

    # Whichever process a later retry reaches, it gets the same verdict the race ended with.
    for k in range(40):
        bet = next(call for call, _ in sends if call.tx_id == f"race-{k}")
        again = await asyncio.gather(*(w.wallet.send(bet) for w in c.both))
        for out in again:
            if bet.tx_id in accepted:
                assert isinstance(out, Ok) and out.wallet_tx_id == by_log[bet.tx_id]["wallet_tx_id"], out
            else:
                assert isinstance(out, Rejected) and out.code is ErrorCode.TX_ROLLED_BACK, out
    assert await balance_of(c, pid) == start


# -- 2. SIGKILL under load ---------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """tests/test_crash.py on PostgreSQL; the in-flight calls are then replayed through two new processes at once."""
    skip_without_pg()
    schema = new_schema()
    book = Book()
    rng = random.Random("pg-crash")
    try:
        async with pg_processes(tmp_path, schema, 1) as (first,), aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CRASH_TASKS * 2)
        ) as http:
            await load_until_killed(first, *crash_client(first.base, http), book, rng, 1.5)

        async with pg_processes(tmp_path, schema, 2) as (pa, pb), aiohttp.ClientSession() as http:
            (wa, admin), (wb, _) = crash_client(pa.base, http), crash_client(pb.base, http)
            log, balances = await snapshot(admin)
            landed = check_log(book, log, balances, settled=set())
            wtx = {r["tx_id"]: r["wallet_tx_id"] for r in log if r["tx_id"] is not None}

            # Settle every in-flight call by sending it again, exactly as it was, through both processes at once.
            for rnd in range(2):
                before = balances
                answers = await asyncio.gather(*(w.send(call) for call in book.in_flight for w in (wa, wb)))
                for k, call in enumerate(book.in_flight):
                    via_a, via_b = answers[2 * k], answers[2 * k + 1]
                    assert isinstance(via_a, Ok) and isinstance(via_b, Ok), (call, via_a, via_b)
                    assert via_a.wallet_tx_id and via_a.wallet_tx_id == via_b.wallet_tx_id, (call, via_a, via_b)
                    if call.tx_id in landed or rnd == 1:
                        assert via_a.wallet_tx_id == wtx[call.tx_id], ("replay with a new wallet_tx_id", call)
                    wtx[call.tx_id] = via_a.wallet_tx_id
                log, balances = await snapshot(admin)
                assert check_log(book, log, balances, settled={c.tx_id or "" for c in book.in_flight}) == {
                    c.tx_id for c in book.in_flight
                }
                if rnd == 1:
                    assert balances == before, "a second re-send moved money"
            # Nothing of the killed process is left holding a lock on this schema in an open transaction.
            stale = await sql(
                "SELECT a.pid, a.state, c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE n.nspname = $1 AND a.state LIKE 'idle in transaction%'", schema, schema=schema)
            assert not stale, stale
        print(f"pg crash: {len(book.acked)} acknowledged, {len(book.in_flight)} in flight, {len(landed)} had landed")
    finally:
        await drop_schema(schema)


# -- 3. the database goes away in the middle of a run ------------------------------------------------------------


async def test_proxy_cuts_refuses_and_restores() -> None:
    """The proxy itself: a cut resets open connections and refuses new ones until restored."""
    skip_without_pg()
    proxy = await PgProxy.for_dsn(PG_DSN).start()
    try:
        conn = await asyncpg.connect(proxy.dsn(PG_DSN), timeout=5)
        assert await conn.fetchval("SELECT 1") == 1
        await proxy.cut()
        with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError)):
            await conn.fetchval("SELECT 1", timeout=5)
        with pytest.raises(OSError):
            await asyncpg.connect(proxy.dsn(PG_DSN), timeout=5)
        await proxy.restore()
        conn = await asyncpg.connect(proxy.dsn(PG_DSN), timeout=5)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        assert proxy.cut_links == 1
    finally:
        await proxy.close()


@dataclass(frozen=True)
class Seen:
    """One protocol exchange as the provider saw it, with when it was sent and answered."""

    sent: float
    answered: float
    ex: Exchange


@dataclass(frozen=True)
class Health:
    sent: float
    answered: float
    status: int | None


def recorded_exchanges(monkeypatch: pytest.MonkeyPatch) -> list[Seen]:
    """Record every exchange the runner makes (including those the provider stopped waiting for)."""
    seen: list[Seen] = []
    real = WalletClient.exchange

    async def exchange(self: WalletClient, call: WalletCall) -> Exchange:
        sent = time.monotonic()
        ex = await real(self, call)
        seen.append(Seen(sent, time.monotonic(), ex))
        return ex

    monkeypatch.setattr(WalletClient, "exchange", exchange)
    return seen


async def poll_health(base: str, into: list[Health], every_s: float = 0.05) -> None:
    async with aiohttp.ClientSession() as http:
        while True:
            sent = time.monotonic()
            try:
                async with http.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=3)) as resp:
                    await resp.read()
                    status: int | None = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = None
            into.append(Health(sent, time.monotonic(), status))
            await asyncio.sleep(every_s)


def explain(result: RunResult) -> str:
    j = result_json(result)
    return (f"anomalies={ {k: v for k, v in j['anomalies'].items() if v} } unsettled={j['unsettled']} "
            f"findings={[(f['kind'], f['message']) for f in j['findings'][:5]]} errors={j['errors'][:5]}")


OUTAGE_AT_S = 2.5
OUTAGE_S = 1.5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smoke", "timeouts"])
async def test_database_outage_during_run(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1.5 s database outage in the middle of a 7 s run: 503s, then recovery, then zero anomalies."""
    skip_without_pg()
    schema = new_schema()
    duration = 7.0
    sc = dataclasses.replace(scenarios.load(name), duration_s=duration, players=6, rounds=None)
    make_players(11, sc.players, currencies=sc.currencies, id_prefix="warm")  # Faker set-up outside the run's clock
    seen = recorded_exchanges(monkeypatch)
    health: list[Health] = []
    proxy = await PgProxy.for_dsn(PG_DSN).start()
    try:
        store = PostgresStore(proxy.dsn(PG_DSN), schema=schema, pool_size=8)
        async with serve_wallet(store) as served:
            poller = asyncio.create_task(poll_health(served.base, health))
            window: dict[str, float] = {}

            async def outage() -> None:
                await asyncio.sleep(OUTAGE_AT_S)
                window["cut"] = time.monotonic()
                await proxy.cut()
                await asyncio.sleep(OUTAGE_S)
                await proxy.restore()
                window["restored"] = time.monotonic()

            cutter = asyncio.create_task(outage())
            started = time.monotonic()
            result = await asyncio.wait_for(run(RunOptions(
                sc, f"{served.base}/wallet", SECRET, admin_url=served.base, admin_token=ADMIN_TOKEN, seed=11,
                run_id=f"pg-{name}")), 60)
            elapsed = time.monotonic() - started
            await cutter
            await asyncio.sleep(0.3)
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            admin_log = await served.admin.transactions()
            balances = {pid: (await served.admin.player(pid))["balance"] for pid in result.ledger.books}
        db_players = {r["player_id"]: r["balance"] for r in await sql("SELECT player_id, balance FROM players",
                                                                      schema=schema)}
    finally:
        await proxy.close()
        await drop_schema(schema)

    cut, restored = window["cut"], window["restored"]
    j = result_json(result)
    print(f"{name}: {elapsed:.1f} s, {sum(j['calls'].values())} calls, results={j['results']}, "
          f"cut {proxy.cut_links} connections, rounds={j['rounds']}")

    # The run finished, and the provider's retries and end-of-run settlement left nothing in doubt.
    assert result.players == sc.players, explain(result)
    assert not result.provision_errors, explain(result)
    assert result.unsettled == 0, explain(result)
    assert result.ledger.anomaly_count == 0, explain(result)
    assert proxy.cut_links > 0, "the outage cut no database connection"

    # During the outage every protocol call got 503 (outcome unknown) — never an answer the wallet could not have.
    inside = [s for s in seen if s.sent > cut + 0.05 and s.answered < restored]
    assert len(inside) >= 5, f"only {len(inside)} calls were sent during the outage"
    wrong = [(s.ex.call.op, s.ex.call.tx_id, s.ex.status, s.ex.response_body[:120]) for s in inside
             if s.ex.status != 503 or not isinstance(s.ex.outcome, Unknown)]
    assert not wrong, f"answers during the outage that were not 503: {wrong[:5]}"
    assert all(orjson.loads(s.ex.response_body)["code"] == "UNAVAILABLE" for s in inside)
    # A lost database is 503 UNAVAILABLE, whatever the moment it was lost at: never a 500, never a hang.
    odd = [(s.ex.call.op, s.ex.status, s.ex.response_body[:160]) for s in seen
           if isinstance(s.ex.outcome, Unknown) and s.ex.status != 503]
    assert not odd, f"outcome-unknown answers that were not 503: {odd[:5]}"
    slow = [round(s.answered - s.sent, 2) for s in seen if s.answered - s.sent > 3.0]
    assert not slow, f"calls that waited on the lost database: {slow[:10]}"
    # The wallet came back by itself: calls sent after the restore were answered (not with 503).
    after = [s for s in seen if s.sent > restored + 1.0]
    assert after and all(s.ex.status != 503 for s in after), Counter(s.ex.status for s in after)
    assert any(isinstance(s.ex.outcome, Ok) and s.sent > restored and s.answered < started + duration
               for s in seen), "no call succeeded after the restore before the run ended"

    print(f"{name}: {len(inside)} calls inside the outage, all 503; healthz polls {len(health)}")
    # /healthz: 200 before, 503 throughout the outage, 200 again soon after.
    before = [h for h in health if h.answered < cut]
    during = [h for h in health if h.sent > cut + 0.05 and h.answered < restored]
    later = [h for h in health if h.sent > restored]
    assert before and all(h.status == 200 for h in before), Counter(h.status for h in before)
    assert len(during) >= 5 and all(h.status == 503 for h in during), Counter(h.status for h in during)
    assert later and later[-1].status == 200
    back = next(h.answered for h in later if h.status == 200)
    assert back - restored < 2.0, f"healthz took {back - restored:.2f} s to recover"
    print(f"{name}: healthz 503 during the outage ({len(during)} polls), 200 again {back - restored:.3f} s after")
    assert all(h.status == 200 for h in later if h.sent > back), Counter(h.status for h in later if h.sent > back)

    # Every acknowledged money call is in the log under the wallet_tx_id it was acknowledged with, and every
    # balance is the sum of its player's log (the database, the admin API and the ledger agree).
    by_tx = {r["tx_id"]: r for r in admin_log if r["tx_id"] is not None}
    for s in seen:
        call, out = s.ex.call, s.ex.outcome
        if call.op in (Op.BET, Op.WIN, Op.ROLLBACK) and isinstance(out, Ok):
            row = by_tx.get(call.tx_id)
            assert row is not None and row["wallet_tx_id"] == out.wallet_tx_id, (call, out, row)
    sums: dict[str, int] = defaultdict(int)
    for r in admin_log:
        sums[r["player_id"]] += r["delta"]
    assert balances == {pid: db_players[pid] for pid in balances}
    assert all(balances[pid] == sums[pid] for pid in balances), (balances, dict(sums))
    for pid, book in result.ledger.books.items():
        assert book.expected == balances[pid], (pid, book.expected, balances[pid])


# -- bugs found on the way ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def wallet_behind_proxy() -> AsyncIterator[tuple[Any, PgProxy, str]]:
    """The wallet in-process, its database behind a proxy; the schema is dropped at the end."""
    schema = new_schema()
    proxy = await PgProxy.for_dsn(PG_DSN).start()
    try:
        async with serve_wallet(PostgresStore(proxy.dsn(PG_DSN), schema=schema, pool_size=4)) as served:
            yield served, proxy, schema
    finally:
        await proxy.close()
        await drop_schema(schema)


async def test_admin_log_during_outage_answers_503() -> None:
    """The admin transaction log, asked for while the database is away: a clean 503, not a 200 that never ends."""
    skip_without_pg()
    async with wallet_behind_proxy() as (served, proxy, _):
        await served.admin.create_player("p-log", "EUR", 100)
        await proxy.cut()
        try:
            for fmt in ("jsonl", "csv"):
                status: int | None = None
                try:
                    async with served.session.get(
                        f"{served.base}/admin/transactions", params={"format": fmt},
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=aiohttp.ClientTimeout(total=2),
                    ) as resp:
                        status = resp.status
                        body = await resp.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    pytest.fail(f"format={fmt}: answered {status}, then {type(exc).__name__}: {exc}")
                assert status == 503, (fmt, status, body[:300])
                assert orjson.loads(body)["code"] == "UNAVAILABLE"
        finally:
            await proxy.restore()


async def test_settle_rolls_back_every_bet_left_in_doubt_by_an_outage() -> None:
    """Two bets of one player sent during an outage (503, outcome unknown), never rolled back by their rounds:
    the end-of-run settlement must roll back both."""
    skip_without_pg()
    async with wallet_behind_proxy() as (served, proxy, _):
        pid, opening = "p-settle", 1_000
        await served.admin.create_player(pid, "EUR", opening)
        auth = await served.wallet.send(WalletCall.authenticate(await served.admin.token(pid), GAME))
        assert isinstance(auth, Ok) and auth.session_token
        runner = Runner(RunOptions(scenarios.load("smoke"), f"{served.base}/wallet", SECRET))
        runner.ledger.open(pid, "EUR", opening)
        runner.seats[pid] = Seat(pid, auth.session_token, currency("EUR"), opening)
        driver = Driver(served.wallet, runner.ledger, runner.stats, FaultPlan())

        await proxy.cut()
        for k in range(2):
            bet = WalletCall.bet(f"s-bet-{k}", pid, auth.session_token, GAME, f"s-r{k}", Money.of(100, "EUR"))
            out = await driver.deliver(Send(bet, purpose="bet"))
            assert isinstance(out, Unknown) and out.status == 503, out
        await proxy.restore()
        assert len(runner.ledger.in_doubt()) == 2

        unsettled = await runner._settle(driver)
        refused = [(k, n) for k, n in runner.stats.results.items() if "DUPLICATE_MISMATCH" in k]
        assert unsettled == 0, (unsettled, refused)
        assert (await served.admin.player(pid))["balance"] == opening
        assert runner.ledger.anomaly_count == 0
