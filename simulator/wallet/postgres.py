"""The PostgreSQL store (asyncpg): several wallet processes can serve one database.

Serialization per player is a row lock (``FOR UPDATE`` on the player), taken by
the database, never by the process; idempotency and tombstones are enforced by
constraints (``txs.tx_id`` UNIQUE, ``tombstones`` primary key), so two processes
racing on one ``tx_id`` cannot both apply it: the loser's insert fails and the
call is judged again, now as a replay or a mismatch.

A money call costs two round trips, each a statement of its own transaction
(PERFORMANCE.md: round trips, not Python, are the limit here): one query reads
every fact under one snapshot, without a lock; the rules decide in Python
(:func:`simulator.wallet.engine.judge`, shared with every other store); then one
function call, ``croupier_apply``, takes the player's row lock, checks that every
fact the decision rested on is still what was read (balance, blocked, the
round, the tombstone, the referenced transaction; the call's own ``tx_id`` by
its UNIQUE constraint) and writes every effect, committing before it returns.
If a fact changed in between, it writes nothing and the call is judged again
from a fresh read; after a few such losses (one player hammered by concurrent
calls) the call takes the locking path instead: BEGIN, lock and read, write,
COMMIT.  A rejection or a replay writes nothing, so it is answered from the one
read, which is a consistent snapshot.  The pool's connections are not reset on
release (no session state is ever changed on them), which saves a round trip
per call; one left inside a transaction is rolled back.

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

SCHEMA_VERSION: Final = 2
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
    2: """
-- Write a money call's effects if, under the player's row lock, every fact its decision read
-- (x_*) is unchanged; the call's seq, or NULL (nothing written) when one changed.  Its own
-- tx_id is guarded by txs.tx_id UNIQUE: a copy committed meanwhile makes the INSERT fail.
CREATE FUNCTION croupier_apply(
    p_tx TEXT, p_op TEXT, p_player TEXT, p_game TEXT, p_round TEXT, p_currency TEXT, p_amount BIGINT,
    p_ref TEXT, p_reason TEXT, p_closed BOOLEAN, p_delta BIGINT, p_after BIGINT, p_at DOUBLE PRECISION,
    p_set_balance BOOLEAN, p_roll_back TEXT, p_tombstone TEXT,
    p_rnd_game TEXT, p_rnd_closed BOOLEAN, p_rnd_live INTEGER, p_rnd_save BOOLEAN,
    x_balance BIGINT, x_blocked BOOLEAN,
    x_round_found BOOLEAN, x_round_closed BOOLEAN, x_round_live INTEGER,
    x_tomb_key TEXT, x_tomb BOOLEAN,
    x_ref_key TEXT, x_ref_found BOOLEAN, x_ref_rb BOOLEAN
) RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_balance BIGINT; v_blocked BOOLEAN; v_closed BOOLEAN; v_live INTEGER; v_rb BOOLEAN; v_found BOOLEAN;
    v_seq BIGINT;
BEGIN
    SELECT balance, blocked INTO v_balance, v_blocked FROM players WHERE player_id = p_player FOR UPDATE;
    IF NOT FOUND OR v_balance <> x_balance OR v_blocked <> x_blocked THEN
        RETURN NULL;
    END IF;
    SELECT closed, live_bets INTO v_closed, v_live FROM rounds WHERE player_id = p_player AND round_id = p_round;
    v_found := FOUND;
    IF v_found <> x_round_found OR (v_found AND (v_closed <> x_round_closed OR v_live <> x_round_live)) THEN
        RETURN NULL;
    END IF;
    IF x_tomb_key IS NOT NULL AND EXISTS (SELECT 1 FROM tombstones WHERE tx_id = x_tomb_key) <> x_tomb THEN
        RETURN NULL;
    END IF;
    IF x_ref_key IS NOT NULL THEN
        SELECT rolled_back INTO v_rb FROM txs WHERE tx_id = x_ref_key;
        v_found := FOUND;
        IF v_found <> x_ref_found OR (v_found AND v_rb <> x_ref_rb) THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO txs (tx_id, op, player_id, game_id, round_id, currency, amount, ref_tx_id, reason, round_closed,
                     delta, balance_after, created_at)
    VALUES (p_tx, p_op, p_player, p_game, p_round, p_currency, p_amount, p_ref, p_reason, p_closed,
            p_delta, p_after, p_at)
    RETURNING seq INTO v_seq;
    IF p_set_balance THEN
        UPDATE players SET balance = p_after WHERE player_id = p_player;
    END IF;
    IF p_roll_back IS NOT NULL THEN
        UPDATE txs SET rolled_back = true WHERE tx_id = p_roll_back;
    END IF;
    IF p_tombstone IS NOT NULL THEN
        INSERT INTO tombstones (tx_id, rollback_tx_id, created_at) VALUES (p_tombstone, p_tx, p_at);
    END IF;
    IF p_rnd_save THEN
        INSERT INTO rounds (player_id, round_id, game_id, closed, live_bets)
        VALUES (p_player, p_round, p_rnd_game, p_rnd_closed, p_rnd_live)
        ON CONFLICT (player_id, round_id) DO UPDATE SET closed = excluded.closed, live_bets = excluded.live_bets;
    END IF;
    RETURN v_seq;
END $$;
""",
}

# The facts of a money call as croupier_facts reads them, without its lock: one snapshot.
_PEEK: Final = """
SELECT p.currency AS p_currency, p.balance AS p_balance, p.blocked AS p_blocked,
       s.player_id AS s_player, s.game_id AS s_game, s.expires_at AS s_expires,
       r.game_id AS r_game, r.closed AS r_closed, r.live_bets AS r_live,
       e.seq AS e_seq, e.op AS e_op, e.player_id AS e_player, e.game_id AS e_game, e.round_id AS e_round,
       e.currency AS e_currency, e.amount AS e_amount, e.ref_tx_id AS e_ref, e.reason AS e_reason,
       e.round_closed AS e_closed, e.delta AS e_delta, e.balance_after AS e_after, e.rolled_back AS e_rb,
       e.created_at AS e_at,
       f.seq AS f_seq, f.op AS f_op, f.player_id AS f_player, f.game_id AS f_game, f.round_id AS f_round,
       f.currency AS f_currency, f.amount AS f_amount, f.ref_tx_id AS f_ref, f.reason AS f_reason,
       f.round_closed AS f_closed, f.delta AS f_delta, f.balance_after AS f_after, f.rolled_back AS f_rb,
       f.created_at AS f_at,
       EXISTS (SELECT 1 FROM tombstones t WHERE t.tx_id = $6) AS tomb,
       p.player_id IS NOT NULL AS found
FROM (SELECT 1) AS one
LEFT JOIN players p ON p.player_id = $1
LEFT JOIN sessions s ON s.session_token = $2
LEFT JOIN rounds r ON r.player_id = $1 AND r.round_id = $3
LEFT JOIN txs e ON e.tx_id = $4
LEFT JOIN txs f ON f.tx_id = $5
"""

_APPLY: Final = ("SELECT croupier_apply(" + ", ".join(f"${i}" for i in range(1, 31)) + ")")
OPTIMISTIC_TRIES: Final = 4
"""Optimistic attempts of a money call before it takes the locking path."""

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


async def _reset(conn: asyncpg.Connection) -> None:
    """On release to the pool: nothing to undo (the store never changes a session's settings, listens or
    takes advisory locks on a pool connection), except a transaction left open by a cancelled call."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _facts(r: Any, k: engine.FactKeys) -> rules.Facts:
    player = PlayerRow(k.player_id, r["p_currency"], r["p_balance"], r["p_blocked"]) if r["found"] else None
    session = None if r["s_player"] is None else SessionRow(k.session_token or "", r["s_player"], r["s_game"],
                                                             r["s_expires"])
    round_ = None if r["r_game"] is None else RoundRow(k.player_id, k.round_id, r["r_game"], r["r_closed"],
                                                       r["r_live"])
    return rules.Facts(_tx(r, "e", k.tx_id), player, session, round_, bool(r["tomb"]), _tx(r, "f", k.ref_tx_id))


def _write_args(verdict: engine.Effects) -> tuple[Any, ...]:
    row, rnd = verdict.row, verdict.round
    return (row.tx_id, row.op, row.player_id, row.game_id, row.round_id, row.currency, row.amount,
            row.ref_tx_id, row.reason, row.round_closed, row.delta, row.balance_after, row.created_at,
            verdict.new_balance is not None, verdict.roll_back, verdict.tombstone,
            rnd.game_id if rnd else None, rnd.closed if rnd else None, rnd.live_bets if rnd else None,
            rnd is not None)


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
            self.dsn, min_size=1, max_size=self.pool_size, reset=_reset,
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
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        for attempt in range(OPTIMISTIC_TRIES):
            try:
                async with self._pool.acquire(timeout=5.0) as conn:
                    outcome = await self._money_optimistic(conn, call, now)
            except RETRYABLE:  # a copy of this tx_id committed meanwhile: judge again (a replay now)
                await asyncio.sleep(0.001 * attempt)
                continue
            except UNAVAILABLE as exc:
                raise StoreUnavailable(f"database unavailable: {type(exc).__name__}: {exc}") from exc
            if outcome is not None:
                return outcome
        return await self._tx(lambda c: self._money(c, call, now))

    async def _money_optimistic(self, conn: asyncpg.Connection, call: WalletCall, now: float) -> Outcome | None:
        """Read, judge, then apply if nothing changed: the outcome, or None when a fact changed (nothing written)."""
        k = engine.fact_keys(call)
        r = await conn.fetchrow(_PEEK, k.player_id, k.session_token, k.round_id, k.tx_id, k.ref_tx_id,
                                k.tombstone_key)
        assert r is not None
        facts = _facts(r, k)
        verdict = engine.judge(call, facts, now)
        if not isinstance(verdict, engine.Effects):
            return verdict  # a rejection or a replay: nothing to write, answered from one snapshot
        player = facts.player
        assert player is not None
        rnd, ref = facts.round, facts.ref
        seq = await conn.fetchval(
            _APPLY, *_write_args(verdict), player.balance, player.blocked,
            rnd is not None, rnd.closed if rnd else None, rnd.live_bets if rnd else None,
            k.tombstone_key, facts.tombstoned,
            k.ref_tx_id, ref is not None, ref.rolled_back if ref else None)
        return None if seq is None else engine.applied(verdict, str(seq))

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
        """The locking path: BEGIN (by the caller), lock and read, judge, write, COMMIT (by the caller)."""
        k = engine.fact_keys(call)
        r = await conn.fetchrow("SELECT * FROM croupier_facts($1, $2, $3, $4, $5, $6)",
                                k.player_id, k.session_token, k.round_id, k.tx_id, k.ref_tx_id, k.tombstone_key)
        assert r is not None
        verdict = engine.judge(call, _facts(r, k), now)
        if not isinstance(verdict, engine.Effects):
            return verdict
        seq = await conn.fetchval(_WRITE, *_write_args(verdict))
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
