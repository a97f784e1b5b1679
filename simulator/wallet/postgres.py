"""The PostgreSQL store (asyncpg): several wallet processes can serve one database.

Serialization per player is a row lock (``FOR UPDATE`` on the player), taken by
the database, never by the process; idempotency and tombstones are enforced by
constraints (``txs.tx_id`` UNIQUE, ``tombstones`` primary key), so two processes
racing on one ``tx_id`` cannot both apply it: the loser's insert fails and the
call is judged again, now as a replay or a mismatch.

Each money call costs four round trips: BEGIN; one function call that takes the
lock and then reads every fact under a fresh snapshot (PERFORMANCE.md: round
trips, not Python, are the limit here); one statement that writes every effect;
COMMIT.  The rules themselves are :func:`simulator.wallet.engine.judge`, shared
with every other store.

A lost connection or a database that is restarting is *outcome unknown*: the
store raises :class:`StoreUnavailable`, the service answers 503, and the pool
reconnects on the next call.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, TypeVar

import asyncpg

from ..protocol.calls import Ok, Op, Outcome, Rejected, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.money import INT64_MAX
from . import engine, rules
from .records import LaunchToken, PlayerRow, RoundRow, SessionRow, TxRow
from .store import Store, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("croupier.wallet.postgres")

SCHEMA_VERSION: Final = 1
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

MIGRATIONS: Final[dict[int, str]] = {
    1: """
CREATE TABLE players (
    player_id  TEXT PRIMARY KEY,
    currency   TEXT NOT NULL,
    balance    BIGINT NOT NULL CHECK (balance >= 0),
    blocked    BOOLEAN NOT NULL DEFAULT false,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE launch_tokens (
    token         TEXT PRIMARY KEY,
    player_id     TEXT NOT NULL REFERENCES players(player_id),
    ttl_s         BIGINT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    session_token TEXT
);
CREATE TABLE sessions (
    session_token TEXT PRIMARY KEY,
    player_id     TEXT NOT NULL REFERENCES players(player_id),
    game_id       TEXT NOT NULL,
    expires_at    DOUBLE PRECISION NOT NULL
);
CREATE TABLE txs (
    seq           BIGSERIAL PRIMARY KEY,
    tx_id         TEXT UNIQUE,
    op            TEXT NOT NULL,
    player_id     TEXT NOT NULL REFERENCES players(player_id),
    game_id       TEXT,
    round_id      TEXT,
    currency      TEXT NOT NULL,
    amount        BIGINT,
    ref_tx_id     TEXT,
    reason        TEXT,
    round_closed  BOOLEAN,
    delta         BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    rolled_back   BOOLEAN NOT NULL DEFAULT false,
    created_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX txs_player ON txs (player_id, seq);
CREATE INDEX txs_created ON txs (created_at);
CREATE TABLE tombstones (
    tx_id          TEXT PRIMARY KEY,
    rollback_tx_id TEXT NOT NULL,
    created_at     DOUBLE PRECISION NOT NULL
);
CREATE TABLE rounds (
    player_id TEXT NOT NULL,
    round_id  TEXT NOT NULL,
    game_id   TEXT NOT NULL,
    closed    BOOLEAN NOT NULL DEFAULT false,
    live_bets INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (player_id, round_id)
);
-- Lock the player, then read every fact of a money call: one round trip, and (plpgsql,
-- READ COMMITTED) the reads take a snapshot after the lock is granted, so nothing
-- committed by the call we waited for is missed.
CREATE FUNCTION croupier_facts(p_player TEXT, p_session TEXT, p_round TEXT, p_tx TEXT, p_ref TEXT, p_tomb TEXT)
RETURNS TABLE (
    p_currency TEXT, p_balance BIGINT, p_blocked BOOLEAN,
    s_player TEXT, s_game TEXT, s_expires DOUBLE PRECISION,
    r_game TEXT, r_closed BOOLEAN, r_live INTEGER,
    e_seq BIGINT, e_op TEXT, e_player TEXT, e_game TEXT, e_round TEXT, e_currency TEXT, e_amount BIGINT,
    e_ref TEXT, e_reason TEXT, e_closed BOOLEAN, e_delta BIGINT, e_after BIGINT, e_rb BOOLEAN, e_at DOUBLE PRECISION,
    f_seq BIGINT, f_op TEXT, f_player TEXT, f_game TEXT, f_round TEXT, f_currency TEXT, f_amount BIGINT,
    f_ref TEXT, f_reason TEXT, f_closed BOOLEAN, f_delta BIGINT, f_after BIGINT, f_rb BOOLEAN, f_at DOUBLE PRECISION,
    tomb BOOLEAN, found BOOLEAN
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM players WHERE player_id = p_player FOR UPDATE;
    RETURN QUERY
    SELECT p.currency, p.balance, p.blocked,
           s.player_id, s.game_id, s.expires_at,
           r.game_id, r.closed, r.live_bets,
           e.seq, e.op, e.player_id, e.game_id, e.round_id, e.currency, e.amount,
           e.ref_tx_id, e.reason, e.round_closed, e.delta, e.balance_after, e.rolled_back, e.created_at,
           f.seq, f.op, f.player_id, f.game_id, f.round_id, f.currency, f.amount,
           f.ref_tx_id, f.reason, f.round_closed, f.delta, f.balance_after, f.rolled_back, f.created_at,
           EXISTS (SELECT 1 FROM tombstones t WHERE t.tx_id = p_tomb),
           p.player_id IS NOT NULL
    FROM (SELECT 1) AS one
    LEFT JOIN players p ON p.player_id = p_player
    LEFT JOIN sessions s ON s.session_token = p_session
    LEFT JOIN rounds r ON r.player_id = p_player AND r.round_id = p_round
    LEFT JOIN txs e ON e.tx_id = p_tx
    LEFT JOIN txs f ON f.tx_id = p_ref;
END $$;
""",
}

_TX_COLS: Final = ("seq, tx_id, op, player_id, game_id, round_id, currency, amount, ref_tx_id, reason, round_closed,"
                   " delta, balance_after, rolled_back, created_at")

_WRITE: Final = """
WITH ins AS (
    INSERT INTO txs (tx_id, op, player_id, game_id, round_id, currency, amount, ref_tx_id, reason, round_closed,
                     delta, balance_after, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING seq
), bal AS (
    UPDATE players SET balance = $12 WHERE player_id = $3 AND $14::boolean
), rb AS (
    UPDATE txs SET rolled_back = true WHERE tx_id = $15::text
), tomb AS (
    INSERT INTO tombstones (tx_id, rollback_tx_id, created_at) SELECT $16::text, $1, $13 WHERE $16::text IS NOT NULL
), rnd AS (
    INSERT INTO rounds (player_id, round_id, game_id, closed, live_bets)
    SELECT $3, $5, $17::text, $18::boolean, $19::integer WHERE $20::boolean
    ON CONFLICT (player_id, round_id) DO UPDATE SET closed = excluded.closed, live_bets = excluded.live_bets
)
SELECT seq FROM ins
"""

RETRYABLE: Final = (asyncpg.UniqueViolationError, asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
UNAVAILABLE: Final = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def _tx(r: Any, k: str, tx_id: str | None) -> TxRow | None:
    if r[f"{k}_seq"] is None:
        return None
    return TxRow(str(r[f"{k}_seq"]), tx_id, r[f"{k}_op"], r[f"{k}_player"], r[f"{k}_game"], r[f"{k}_round"],
                 r[f"{k}_currency"], r[f"{k}_amount"], r[f"{k}_ref"], r[f"{k}_reason"], r[f"{k}_closed"],
                 r[f"{k}_delta"], r[f"{k}_after"], r[f"{k}_rb"], r[f"{k}_at"])


def _tx_row(r: Any) -> TxRow:
    return TxRow(str(r["seq"]), r["tx_id"], r["op"], r["player_id"], r["game_id"], r["round_id"], r["currency"],
                 r["amount"], r["ref_tx_id"], r["reason"], r["round_closed"], r["delta"], r["balance_after"],
                 r["rolled_back"], r["created_at"])


class PostgresStore(Store):
    name = "postgres"

    def __init__(self, dsn: str, schema: str = "public", pool_size: int = 16, attempts: int = 5) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError("schema must be a lower-case SQL identifier")
        self.dsn = dsn
        self.schema = schema
        self.pool_size = pool_size
        self.attempts = attempts
        self._pool: asyncpg.Pool | None = None

    # -- life cycle -------------------------------------------------------------------
    async def open(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await self._migrate(conn)
        finally:
            await conn.close()
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.pool_size,
            server_settings={"search_path": self.schema, "application_name": "croupier-wallet"},
        )

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        """Create or upgrade the schema, once, even with several wallet processes starting together."""
        await conn.execute("SELECT pg_advisory_lock(hashtext('croupier-migrate'))")
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            await conn.execute(f"SET search_path TO {self.schema}")
            await conn.execute("CREATE TABLE IF NOT EXISTS croupier_schema (version INTEGER NOT NULL)")
            version = await conn.fetchval("SELECT max(version) FROM croupier_schema") or 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"database schema v{version} is newer than this croupier (v{SCHEMA_VERSION})")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                async with conn.transaction():
                    await conn.execute(MIGRATIONS[v])
                    await conn.execute("INSERT INTO croupier_schema (version) VALUES ($1)", v)
                log.info("schema %s migrated to v%d", self.schema, v)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('croupier-migrate'))")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ready(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with self._pool.acquire(timeout=1.0) as conn:
                await conn.fetchval("SELECT 1", timeout=1.0)
            return True
        except Exception:  # noqa: BLE001 - not ready, whatever the reason
            return False

    async def drop_schema(self) -> None:
        """Tests: remove this store's schema and everything in it."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
        finally:
            await conn.close()

    async def _tx(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``fn`` in a transaction, again on a constraint race, and as 'unavailable' on a lost database."""
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        for attempt in range(self.attempts):
            try:
                async with self._pool.acquire(timeout=5.0) as conn, conn.transaction():
                    return await fn(conn)
            except RETRYABLE:
                if attempt == self.attempts - 1:
                    raise
                await asyncio.sleep(0.001 * 2**attempt)
            except UNAVAILABLE as exc:
                raise StoreUnavailable(f"database unavailable: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- protocol calls ---------------------------------------------------------------
    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op is Op.AUTHENTICATE:
            return await self._tx(lambda c: self._authenticate(c, call, now))
        if call.op is Op.BALANCE:
            return await self._tx(lambda c: self._balance(c, call))
        return await self._tx(lambda c: self._money(c, call, now))

    async def _player(self, conn: asyncpg.Connection, player_id: str, lock: bool = False) -> PlayerRow | None:
        r = await conn.fetchrow(
            "SELECT player_id, currency, balance, blocked FROM players WHERE player_id = $1"
            + (" FOR UPDATE" if lock else ""), player_id)
        return None if r is None else PlayerRow(r[0], r[1], r[2], r[3])

    async def _session(self, conn: asyncpg.Connection, token: str | None) -> SessionRow | None:
        if not token:
            return None
        r = await conn.fetchrow(
            "SELECT session_token, player_id, game_id, expires_at FROM sessions WHERE session_token = $1", token)
        return None if r is None else SessionRow(*r)

    async def _balance(self, conn: asyncpg.Connection, call: WalletCall) -> Outcome:
        assert call.player_id is not None
        player = await self._player(conn, call.player_id)
        refused = rules.decide_balance(player, await self._session(conn, call.session_token))
        return refused if refused is not None else rules.ok_for(player)  # type: ignore[arg-type]

    async def _authenticate(self, conn: asyncpg.Connection, call: WalletCall, now: float) -> Outcome:
        assert call.token is not None and call.game_id is not None
        r = await conn.fetchrow(
            "SELECT token, player_id, ttl_s, created_at, session_token FROM launch_tokens WHERE token = $1 FOR UPDATE",
            call.token)
        launch = None if r is None else LaunchToken(*r)
        player = await self._player(conn, launch.player_id) if launch else None
        session = await self._session(conn, launch.session_token) if launch else None
        verdict = rules.decide_authenticate(launch, player, session, now)
        if isinstance(verdict, Rejected):
            return verdict
        assert launch is not None and player is not None
        if isinstance(verdict, rules.NewSession):
            session = SessionRow(engine.new_token(), player.player_id, call.game_id, verdict.expires_at)
            await conn.execute(
                "INSERT INTO sessions (session_token, player_id, game_id, expires_at) VALUES ($1, $2, $3, $4)",
                session.session_token, session.player_id, session.game_id, session.expires_at)
            await conn.execute("UPDATE launch_tokens SET session_token = $1 WHERE token = $2",
                               session.session_token, launch.token)
        else:
            session = verdict
        return Ok(rules.ok_for(player).balance, player_id=player.player_id, session_token=session.session_token)

    async def _money(self, conn: asyncpg.Connection, call: WalletCall, now: float) -> Outcome:
        k = engine.fact_keys(call)
        r = await conn.fetchrow("SELECT * FROM croupier_facts($1, $2, $3, $4, $5, $6)",
                                k.player_id, k.session_token, k.round_id, k.tx_id, k.ref_tx_id, k.tombstone_key)
        assert r is not None
        player = PlayerRow(k.player_id, r["p_currency"], r["p_balance"], r["p_blocked"]) if r["found"] else None
        session = None if r["s_player"] is None else SessionRow(k.session_token or "", r["s_player"], r["s_game"],
                                                                 r["s_expires"])
        round_ = None if r["r_game"] is None else RoundRow(k.player_id, k.round_id, r["r_game"], r["r_closed"],
                                                           r["r_live"])
        facts = rules.Facts(_tx(r, "e", k.tx_id), player, session, round_, bool(r["tomb"]), _tx(r, "f", k.ref_tx_id))
        verdict = engine.judge(call, facts, now)
        if not isinstance(verdict, engine.Effects):
            return verdict
        row, rnd = verdict.row, verdict.round
        seq = await conn.fetchval(
            _WRITE, row.tx_id, row.op, row.player_id, row.game_id, row.round_id, row.currency, row.amount,
            row.ref_tx_id, row.reason, row.round_closed, row.delta, row.balance_after, row.created_at,
            verdict.new_balance is not None, verdict.roll_back, verdict.tombstone,
            rnd.game_id if rnd else None, rnd.closed if rnd else None, rnd.live_bets if rnd else None,
            rnd is not None)
        return engine.applied(verdict, str(seq))

    # -- admin ------------------------------------------------------------------------
    async def create_player(self, player_id: str, currency: str, balance: int, now: float) -> PlayerRow | Rejected:
        async def go(conn: asyncpg.Connection) -> PlayerRow | Rejected:
            done = await conn.fetchval(
                "INSERT INTO players (player_id, currency, balance, blocked, created_at) VALUES ($1, $2, $3, false, $4)"
                " ON CONFLICT (player_id) DO NOTHING RETURNING 1", player_id, currency, balance, now)
            if done is None:
                return Rejected(ErrorCode.PLAYER_EXISTS, "a player with this id exists")
            if balance:
                await self._deposit_row(conn, player_id, currency, balance, balance, now)
            return PlayerRow(player_id, currency, balance, False)

        return await self._tx(go)

    async def _deposit_row(self, conn: asyncpg.Connection, player_id: str, currency: str, amount: int, after: int,
                           now: float) -> None:
        await conn.execute(
            "INSERT INTO txs (tx_id, op, player_id, currency, amount, delta, balance_after, created_at)"
            " VALUES (NULL, 'deposit', $1, $2, $3, $3, $4, $5)", player_id, currency, amount, after, now)

    async def get_player(self, player_id: str) -> PlayerRow | None:
        return await self._tx(lambda c: self._player(c, player_id))

    async def deposit(self, player_id: str, amount: int, now: float) -> PlayerRow | Rejected:
        async def go(conn: asyncpg.Connection) -> PlayerRow | Rejected:
            player = await self._player(conn, player_id, lock=True)
            if player is None:
                return Rejected(ErrorCode.PLAYER_NOT_FOUND, "no such player")
            if player.balance + amount > INT64_MAX:
                return Rejected(ErrorCode.LIMIT_EXCEEDED, "balance would exceed the largest balance held")
            new = PlayerRow(player.player_id, player.currency, player.balance + amount, player.blocked)
            await conn.execute("UPDATE players SET balance = $1 WHERE player_id = $2", new.balance, player_id)
            await self._deposit_row(conn, player_id, player.currency, amount, new.balance, now)
            return new

        return await self._tx(go)

    async def set_blocked(self, player_id: str, blocked: bool) -> PlayerRow | Rejected:
        async def go(conn: asyncpg.Connection) -> PlayerRow | Rejected:
            r = await conn.fetchrow("UPDATE players SET blocked = $1 WHERE player_id = $2"
                                    " RETURNING player_id, currency, balance, blocked", blocked, player_id)
            return Rejected(ErrorCode.PLAYER_NOT_FOUND, "no such player") if r is None else PlayerRow(*r)

        return await self._tx(go)

    async def issue_token(self, player_id: str, ttl_s: int, now: float) -> str | Rejected:
        async def go(conn: asyncpg.Connection) -> str | Rejected:
            if await self._player(conn, player_id) is None:
                return Rejected(ErrorCode.PLAYER_NOT_FOUND, "no such player")
            token = engine.new_token()
            await conn.execute("INSERT INTO launch_tokens (token, player_id, ttl_s, created_at) VALUES ($1, $2, $3, $4)",
                               token, player_id, ttl_s, now)
            return token

        return await self._tx(go)

    async def list_players(self, limit: int, after: str | None = None) -> list[PlayerRow]:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        # COLLATE "C": byte order of UTF-8, i.e. code-point order, whatever the database's collation.
        sql = ('SELECT player_id, currency, balance, blocked FROM players WHERE player_id COLLATE "C" > $1'
               ' ORDER BY player_id COLLATE "C" LIMIT $2')
        try:
            async with self._pool.acquire(timeout=5.0) as conn:
                rows = await conn.fetch(sql, "" if after is None else after, limit)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [PlayerRow(r[0], r[1], r[2], r[3]) for r in rows]

    async def transactions(
        self, player_id: str | None = None, since: float | None = None, until: float | None = None,
        after: int = 0, page: int = 1000,
    ) -> AsyncIterator[TxRow]:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        where: list[str] = ["seq > $1"]
        args: list[Any] = [after]
        for cond, value in (("player_id = ${}", player_id), ("created_at >= ${}", since), ("created_at < ${}", until)):
            if value is not None:
                args.append(value)
                where.append(cond.format(len(args)))
        sql = f"SELECT {_TX_COLS} FROM txs WHERE {' AND '.join(where)} ORDER BY seq LIMIT {int(page)}"
        cursor = after
        while True:
            try:
                async with self._pool.acquire(timeout=5.0) as conn:
                    rows = await conn.fetch(sql, cursor, *args[1:])
            except UNAVAILABLE as exc:
                raise StoreUnavailable(str(exc)) from exc
            for r in rows:
                yield _tx_row(r)
            if len(rows) < page:
                break
            cursor = rows[-1]["seq"]
