"""The embedded SQLite store: one writer thread, group commit, WAL.

Why this shape (see PERFORMANCE.md): a thread hop per statement (aiosqlite) caps
a wallet near 2,000 calls/s, and a commit per call near 5,000.  Here every
write runs on one dedicated thread with the stdlib driver; whatever calls are
waiting when it wakes run in one transaction (each inside a savepoint, so a
failing call cannot spoil its neighbours), and every caller is answered only
after the COMMIT that holds its call.  A ``kill -9`` therefore loses nothing that
was acknowledged; ``sync="full"`` adds power-loss durability.

Checkpoints (copying the WAL back into the database file, with an fsync) run on
a thread and connection of their own, every ``CHECKPOINT_S``, in PASSIVE mode
(they never block a writer).  Left to SQLite's automatic checkpoint they would
run inside the writer's COMMIT every 1,000 pages and stall every call waiting
for the next batch: the latency tail of bench/README.md.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from . import rules
from .engine import FactKeys
from .records import TX_COLUMNS, LaunchToken, PlayerRow, RoundRow, SessionRow, TxRow
from .store import RepoStore

T = TypeVar("T")
log = logging.getLogger("croupier.wallet.sqlite")

SCHEMA_VERSION: Final = 1
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS players (
    player_id  TEXT PRIMARY KEY,
    currency   TEXT NOT NULL,
    balance    INTEGER NOT NULL CHECK (balance >= 0),
    blocked    INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS launch_tokens (
    token         TEXT PRIMARY KEY,
    player_id     TEXT NOT NULL REFERENCES players(player_id),
    ttl_s         INTEGER NOT NULL,
    created_at    REAL NOT NULL,
    session_token TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    session_token TEXT PRIMARY KEY,
    player_id     TEXT NOT NULL REFERENCES players(player_id),
    game_id       TEXT NOT NULL,
    expires_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_id         TEXT UNIQUE,
    op            TEXT NOT NULL,
    player_id     TEXT NOT NULL REFERENCES players(player_id),
    game_id       TEXT,
    round_id      TEXT,
    currency      TEXT NOT NULL,
    amount        INTEGER,
    ref_tx_id     TEXT,
    reason        TEXT,
    round_closed  INTEGER,
    delta         INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    rolled_back   INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS txs_player ON txs (player_id, seq);
CREATE INDEX IF NOT EXISTS txs_created ON txs (created_at);
CREATE TABLE IF NOT EXISTS tombstones (
    tx_id          TEXT PRIMARY KEY,
    rollback_tx_id TEXT NOT NULL,
    created_at     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    player_id TEXT NOT NULL,
    round_id  TEXT NOT NULL,
    game_id   TEXT NOT NULL,
    closed    INTEGER NOT NULL DEFAULT 0,
    live_bets INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (player_id, round_id)
) WITHOUT ROWID;
"""

_TX_SELECT: Final = (
    "SELECT seq, tx_id, op, player_id, game_id, round_id, currency, amount, ref_tx_id, reason,"
    " round_closed, delta, balance_after, rolled_back, created_at FROM txs"
)
_STOP: Final = object()
CHECKPOINT_S: Final = 0.25

_TX_COLS: Final = ("seq, tx_id, op, player_id, game_id, round_id, currency, amount, ref_tx_id, reason, round_closed,"
                   " delta, balance_after, rolled_back, created_at")
# Every fact of a money call in one statement (the way PostgreSQL's croupier_facts reads them):
# each LEFT JOIN is one lookup by primary key or unique index, and a key that is NULL matches nothing.
_FACTS: Final = (
    "SELECT p.player_id IS NOT NULL, p.currency, p.balance, p.blocked,"
    " s.player_id, s.game_id, s.expires_at,"
    " r.game_id, r.closed, r.live_bets, "
    + ", ".join(f"e.{c.strip()}" for c in _TX_COLS.split(",")) + ", "
    + ", ".join(f"f.{c.strip()}" for c in _TX_COLS.split(",")) + ","
    " EXISTS (SELECT 1 FROM tombstones t WHERE t.tx_id = ?)"
    " FROM (SELECT 1) AS one"
    " LEFT JOIN players p ON p.player_id = ?"
    " LEFT JOIN sessions s ON s.session_token = ?"
    " LEFT JOIN rounds r ON r.player_id = ? AND r.round_id = ?"
    " LEFT JOIN txs e ON e.tx_id = ?"
    " LEFT JOIN txs f ON f.tx_id = ?"
)


def _tx_row(r: tuple[Any, ...]) -> TxRow:
    return TxRow(
        str(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
        None if r[10] is None else bool(r[10]), r[11], r[12], bool(r[13]), r[14],
    )


assert len(TX_COLUMNS) == 15


class SQLiteRepo:
    """Row access on the writer thread's connection, inside its open transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.c = conn

    def _one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self.c.execute(sql, args).fetchone()  # type: ignore[no-any-return]

    def player(self, player_id: str) -> PlayerRow | None:
        r = self._one("SELECT player_id, currency, balance, blocked FROM players WHERE player_id = ?", (player_id,))
        return None if r is None else PlayerRow(r[0], r[1], r[2], bool(r[3]))

    def insert_player(self, row: PlayerRow, now: float) -> None:
        self.c.execute(
            "INSERT INTO players (player_id, currency, balance, blocked, created_at) VALUES (?, ?, ?, ?, ?)",
            (row.player_id, row.currency, row.balance, int(row.blocked), now),
        )

    def set_balance(self, player_id: str, balance: int) -> None:
        self.c.execute("UPDATE players SET balance = ? WHERE player_id = ?", (balance, player_id))

    def set_blocked(self, player_id: str, blocked: bool) -> None:
        self.c.execute("UPDATE players SET blocked = ? WHERE player_id = ?", (int(blocked), player_id))

    def launch_token(self, token: str) -> LaunchToken | None:
        r = self._one(
            "SELECT token, player_id, ttl_s, created_at, session_token FROM launch_tokens WHERE token = ?", (token,)
        )
        return None if r is None else LaunchToken(*r)

    def insert_launch_token(self, row: LaunchToken) -> None:
        self.c.execute(
            "INSERT INTO launch_tokens (token, player_id, ttl_s, created_at, session_token) VALUES (?, ?, ?, ?, ?)",
            (row.token, row.player_id, row.ttl_s, row.created_at, row.session_token),
        )

    def bind_session(self, token: str, session_token: str) -> None:
        self.c.execute("UPDATE launch_tokens SET session_token = ? WHERE token = ?", (session_token, token))

    def session(self, session_token: str) -> SessionRow | None:
        r = self._one(
            "SELECT session_token, player_id, game_id, expires_at FROM sessions WHERE session_token = ?",
            (session_token,),
        )
        return None if r is None else SessionRow(*r)

    def insert_session(self, row: SessionRow) -> None:
        self.c.execute(
            "INSERT INTO sessions (session_token, player_id, game_id, expires_at) VALUES (?, ?, ?, ?)",
            (row.session_token, row.player_id, row.game_id, row.expires_at),
        )

    def facts(self, k: FactKeys) -> rules.Facts:
        """What :func:`engine.judge` needs, read in one statement instead of five."""
        r = self.c.execute(_FACTS, (k.tombstone_key, k.player_id, k.session_token, k.player_id, k.round_id, k.tx_id,
                                    k.ref_tx_id)).fetchone()
        player = PlayerRow(k.player_id, r[1], r[2], bool(r[3])) if r[0] else None
        session = None if r[4] is None else SessionRow(k.session_token or "", r[4], r[5], r[6])
        round_ = None if r[7] is None else RoundRow(k.player_id, k.round_id, r[7], bool(r[8]), r[9])
        existing = None if r[10] is None else _tx_row(r[10:25])
        ref = None if r[25] is None else _tx_row(r[25:40])
        return rules.Facts(existing, player, session, round_, bool(r[40]), ref)

    def tx(self, tx_id: str) -> TxRow | None:
        r = self._one(_TX_SELECT + " WHERE tx_id = ?", (tx_id,))
        return None if r is None else _tx_row(r)

    def insert_tx(self, row: TxRow) -> str:
        cur = self.c.execute(
            "INSERT INTO txs (tx_id, op, player_id, game_id, round_id, currency, amount, ref_tx_id, reason,"
            " round_closed, delta, balance_after, rolled_back, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.tx_id, row.op, row.player_id, row.game_id, row.round_id, row.currency, row.amount,
                row.ref_tx_id, row.reason, None if row.round_closed is None else int(row.round_closed),
                row.delta, row.balance_after, int(row.rolled_back), row.created_at,
            ),
        )
        return str(cur.lastrowid)

    def mark_rolled_back(self, tx_id: str) -> None:
        self.c.execute("UPDATE txs SET rolled_back = 1 WHERE tx_id = ?", (tx_id,))

    def is_tombstoned(self, tx_id: str) -> bool:
        return self._one("SELECT 1 FROM tombstones WHERE tx_id = ?", (tx_id,)) is not None

    def insert_tombstone(self, tx_id: str, rollback_tx_id: str, now: float) -> None:
        self.c.execute(
            "INSERT INTO tombstones (tx_id, rollback_tx_id, created_at) VALUES (?, ?, ?)", (tx_id, rollback_tx_id, now)
        )

    def round(self, player_id: str, round_id: str) -> RoundRow | None:
        r = self._one(
            "SELECT player_id, round_id, game_id, closed, live_bets FROM rounds WHERE player_id = ? AND round_id = ?",
            (player_id, round_id),
        )
        return None if r is None else RoundRow(r[0], r[1], r[2], bool(r[3]), r[4])

    def save_round(self, row: RoundRow) -> None:
        self.c.execute(
            "INSERT INTO rounds (player_id, round_id, game_id, closed, live_bets) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (player_id, round_id) DO UPDATE SET closed = excluded.closed, live_bets = excluded.live_bets",
            (row.player_id, row.round_id, row.game_id, int(row.closed), row.live_bets),
        )


def connect(path: str | Path, sync: str = "normal") -> sqlite3.Connection:
    """A connection in autocommit mode (we BEGIN ourselves), WAL, with the chosen sync level."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {'FULL' if sync == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"database schema v{version} is newer than this croupier (v{SCHEMA_VERSION})")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


Job = tuple[Callable[[SQLiteRepo], Any], "asyncio.Future[Any]"]


class SQLiteStore(RepoStore):
    """SQLite behind a single writer thread with group commit."""

    name = "sqlite"

    def __init__(self, path: str | Path, sync: str = "normal", max_batch: int = 512) -> None:
        if sync not in ("normal", "full"):
            raise ValueError("sync must be 'normal' or 'full'")
        self.path = Path(path)
        self.sync = sync
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed: BaseException | None = None
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self.batches = 0
        self.calls = 0

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._writer, args=(started,), name="croupier-sqlite-writer", daemon=True)
        self._thread.start()
        await started
        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(target=self._checkpoints, name="croupier-sqlite-checkpoint", daemon=True)
        self._checkpointer.start()

    async def close(self) -> None:
        if self._thread is None:
            return
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
            self._checkpointer = None
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def _checkpoints(self) -> None:
        """PASSIVE checkpoints off the writer's path (the writer's automatic ones are off)."""
        try:
            conn = connect(self.path, self.sync)
        except sqlite3.Error:
            log.exception("checkpoint connection failed; the WAL grows until restart")
            return
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_S):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or locked now: the next round catches up
                    log.debug("checkpoint skipped: %s", exc)
        finally:
            conn.close()

    async def ready(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._failed is None

    async def run(self, fn: Callable[[SQLiteRepo], T]) -> T:
        if self._thread is None or self._loop is None:
            raise RuntimeError("store is not open")
        fut: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((fn, fut))
        return await fut

    # -- the writer thread ------------------------------------------------------------
    def _writer(self, started: asyncio.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            conn = connect(self.path, self.sync)
            migrate(conn)
        except BaseException as exc:  # noqa: BLE001 - reported to the opener
            self._failed = exc
            loop.call_soon_threadsafe(_settle, [(started, None, exc)])
            return
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint thread does it, off this path
        loop.call_soon_threadsafe(_settle, [(started, None, None)])
        repo = SQLiteRepo(conn)
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[Job] = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            loop.call_soon_threadsafe(_settle, self._commit(conn, repo, batch))
        conn.close()

    def _commit(self, conn: sqlite3.Connection, repo: SQLiteRepo, batch: list[Job]) -> list[tuple[Any, Any, Any]]:
        """Run the batch in one transaction and commit it.  Calls almost never raise (the rules answer
        with rejections, not exceptions), so they run without a savepoint each; if one does raise, the
        whole transaction is rolled back and the batch runs again with a savepoint per call, so the
        failing call cannot spoil its neighbours.  Nobody has been answered yet, so a rerun is safe."""
        results: list[tuple[Any, Any, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, fut in batch:
                try:
                    value = fn(repo)
                except Exception:  # noqa: BLE001 - rerun with savepoints, where it is logged
                    conn.execute("ROLLBACK")
                    return self._commit_each(conn, repo, batch)
                results.append((fut, value, None))
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - logged in _failed_batch
            return self._failed_batch(conn, batch, exc)
        self.batches += 1
        self.calls += len(batch)
        return results

    def _commit_each(self, conn: sqlite3.Connection, repo: SQLiteRepo, batch: list[Job]) -> list[tuple[Any, Any, Any]]:
        results: list[tuple[Any, Any, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, fut in batch:
                conn.execute("SAVEPOINT call")
                try:
                    value = fn(repo)
                except Exception as exc:
                    conn.execute("ROLLBACK TO call")
                    conn.execute("RELEASE call")
                    log.exception("call failed inside the store")
                    results.append((fut, None, exc))
                else:
                    conn.execute("RELEASE call")
                    results.append((fut, value, None))
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - logged in _failed_batch
            return self._failed_batch(conn, batch, exc)
        self.batches += 1
        self.calls += len(batch)
        return results

    @staticmethod
    def _failed_batch(conn: sqlite3.Connection, batch: list[Job], exc: Exception) -> list[tuple[Any, Any, Any]]:
        log.exception("commit failed; %d calls answered as outcome unknown", len(batch))
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        return [(fut, None, exc) for _, fut in batch]

    # -- reads for the admin API: a separate connection, never the writer's -----------
    async def list_players(self, limit: int, after: str | None = None) -> list[PlayerRow]:
        # SQLite compares TEXT bytewise (BINARY): UTF-8 byte order is code-point order, as in Python.
        sql = "SELECT player_id, currency, balance, blocked FROM players WHERE player_id > ? ORDER BY player_id LIMIT ?"
        conn = await asyncio.to_thread(connect, self.path, self.sync)
        try:
            rows = await asyncio.to_thread(_fetch, conn, sql, ("" if after is None else after, int(limit)))
        finally:
            conn.close()
        return [PlayerRow(r[0], r[1], r[2], bool(r[3])) for r in rows]

    async def transactions(
        self, player_id: str | None = None, since: float | None = None, until: float | None = None,
        after: int = 0, page: int = 1000,
    ) -> AsyncIterator[TxRow]:
        conn = await asyncio.to_thread(connect, self.path, self.sync)
        try:
            where = ["seq > ?"]
            base: list[Any] = []
            if player_id is not None:
                where.append("player_id = ?")
                base.append(player_id)
            if since is not None:
                where.append("created_at >= ?")
                base.append(since)
            if until is not None:
                where.append("created_at < ?")
                base.append(until)
            sql = f"{_TX_SELECT} WHERE {' AND '.join(where)} ORDER BY seq LIMIT {int(page)}"
            cursor = after
            while True:
                rows: list[Any] = await asyncio.to_thread(_fetch, conn, sql, (cursor, *base))
                for r in rows:
                    yield _tx_row(r)
                if len(rows) < page:
                    break
                cursor = rows[-1][0]
        finally:
            conn.close()


def _fetch(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[Any]:
    return conn.execute(sql, args).fetchall()


def _settle(results: list[Any]) -> None:
    for fut, value, exc in results:
        if fut.done():  # the caller went away (cancelled); its call is committed all the same
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)
