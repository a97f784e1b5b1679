"""Serving the reference wallet: configuration from flags and environment, graceful shutdown.

On SIGTERM or SIGINT aiohttp stops accepting connections, lets in-flight calls
finish (up to ``shutdown_timeout``), then the store drains its queue and closes:
no acknowledged call is lost and no accepted call is left half-done.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ..protocol.signing import DEV_ADMIN_TOKEN, DEV_SECRET
from .accesslog import AccessLogger, choose, configure
from .http import WalletConfig
from .memory import MemoryStore
from .service import make_app
from .sqlite import SQLiteStore, migrate
from .sqlite import connect as sqlite_connect
from .store import Store

log = logging.getLogger("croupier.wallet")

GC_GEN0 = 7000
"""Allocations between young collections while serving (Python's default: 700)."""



@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    db: str = "croupier-wallet.db"
    memory: bool = False
    sync: str = "normal"
    secret: str | None = None
    admin_token: str | None = None
    session_ttl: int = 3600
    access_log: bool | None = None
    """True: on (readable on a terminal, JSON elsewhere); False: off; None: off on a terminal, JSON elsewhere."""
    access_log_file: str | None = None
    """JSON access lines to this file (appended) instead of stderr."""
    log_level: str = "info"
    shutdown_timeout: float = 30.0
    dsn: str | None = None
    pg_schema: str = "public"
    workers: int = 1
    reuse_port: bool = False
    ssl_context: ssl.SSLContext | None = None
    """Serve HTTPS with this context (``--tls-cert``/``--tls-key``, built by the command); None: plain HTTP."""
    metrics: bool = False
    """Count the protocol's calls and serve them at ``GET /metrics`` (``--metrics``; docs/metrics.md)."""


class ConfigError(ValueError):
    """A configuration the wallet refuses to start with (exit code 2)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_secrets(opts: ServeOptions) -> tuple[str, str]:
    """Flags, then the environment, then development defaults — but only on a loopback address."""
    secret = opts.secret or os.environ.get("CROUPIER_SECRET")
    admin = opts.admin_token or os.environ.get("CROUPIER_ADMIN_TOKEN")
    if (secret is None or admin is None) and not is_loopback(opts.host):
        raise ConfigError(
            "listening beyond loopback needs --secret and --admin-token "
            "(or CROUPIER_SECRET and CROUPIER_ADMIN_TOKEN)"
        )
    if secret is None:
        log.warning("no --secret given: using the development secret %r (loopback only)", DEV_SECRET)
    if admin is None:
        log.warning("no --admin-token given: using the development token %r (loopback only)", DEV_ADMIN_TOKEN)
    return secret or DEV_SECRET, admin or DEV_ADMIN_TOKEN


def _dsn_where(dsn: str) -> str:
    """The DSN without its password, for messages."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "the --dsn address"
    return f"{host}:{port}{parts.path}"


def dsn_problem(dsn: str, timeout: float = 10.0) -> str | None:
    """Connect once before serving, so a wrong ``--dsn`` is one sentence and exit 2, not a traceback."""
    scheme = dsn.split("://", 1)[0] if "://" in dsn else ""
    if scheme not in ("postgresql", "postgres"):
        return (f"--dsn must be a PostgreSQL URL such as postgresql://user:password@host:5432/database "
                f"(got {scheme + '://' if scheme else 'no scheme'}); for SQLite use --db FILE instead")
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=timeout)
        await conn.close()

    where = _dsn_where(dsn)
    try:
        asyncio.run(asyncio.wait_for(probe(), timeout + 1))
    except asyncpg.InvalidCatalogNameError:
        db = where.split("/", 1)[-1] if "/" in where else "?"
        return f"PostgreSQL at {where} has no database {db!r}: create it (createdb {db}) or fix --dsn"
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        return f"PostgreSQL at {where} refused the login ({exc}): check the user and password in --dsn"
    except (TimeoutError, OSError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return f"cannot reach PostgreSQL at {where} ({why}): is it running, and is --dsn right?"
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        return f"cannot use PostgreSQL at {where}: {exc}: check --dsn"
    return None


def make_store(opts: ServeOptions) -> Store:
    if opts.dsn:
        from .postgres import PostgresStore

        try:
            store = PostgresStore(opts.dsn, schema=opts.pg_schema)
        except ValueError as exc:
            raise ConfigError(f"{exc}: check --pg-schema") from None
        problem = dsn_problem(opts.dsn)
        if problem:
            raise ConfigError(problem)
        return store
    if opts.workers > 1:
        raise ConfigError("--workers needs PostgreSQL (--dsn): SQLite and memory have one writer")
    if opts.memory:
        return MemoryStore()
    try:
        Path(opts.db).parent.mkdir(parents=True, exist_ok=True)
        # Open and migrate once up front, so a bad path is a clear exit 2, not a traceback.
        conn = sqlite_connect(opts.db, opts.sync)
        try:
            migrate(conn)
        finally:
            conn.close()
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        raise ConfigError(f"cannot open database {opts.db}: {exc}") from None
    return SQLiteStore(opts.db, sync=opts.sync)


def configure_logs(level: str, access_log: bool | None, access_log_file: str | None) -> None:
    """The logs as asked; an access-log file that cannot be opened is a :class:`ConfigError`, not a traceback."""
    try:
        configure(level, access_log, access_log_file)
    except OSError as exc:
        raise ConfigError(f"cannot write the access log to {access_log_file}: {exc.strerror}: "
                          "check --access-log-file") from None


def access_log_note(access_log: bool | None, access_log_file: str | None) -> str:
    """Where the access log goes, for the startup line: a person at a terminal learns how to see it."""
    form = choose(access_log, access_log_file)
    if access_log_file:
        return f"access log: JSON lines to {access_log_file}"
    if form is None:
        return "access log off" + (", --access-log shows a line per request" if access_log is None else "")
    return f"access log: {'a line' if form == 'text' else 'JSON'} per request on stderr"


def build(opts: ServeOptions) -> web.Application:
    configure_logs(opts.log_level, opts.access_log, opts.access_log_file)
    secret, admin = resolve_secrets(opts)
    if opts.session_ttl < 1:
        raise ConfigError("--session-ttl must be at least 1 second")
    metrics = None
    if opts.metrics:
        from ..metrics.families import Metrics

        metrics = Metrics("wallet")
    return make_app(make_store(opts), WalletConfig(secret=secret, admin_token=admin, session_ttl=opts.session_ttl),
                    metrics=metrics)


def serve_workers(opts: ServeOptions, argv: list[str]) -> int:
    """``--workers N``: N wallet processes on one port (SO_REUSEPORT) sharing one PostgreSQL.

    The kernel spreads connections over the processes; the database serializes each
    player.  SIGTERM/SIGINT are passed on, and each worker shuts down gracefully.  With
    ``--metrics`` the workers count into one directory, and whichever answers ``/metrics``
    answers for all of them (:mod:`simulator.metrics.exposition`).
    """
    if not opts.dsn:
        raise ConfigError("--workers needs PostgreSQL (--dsn): SQLite and memory have one writer")
    configure_logs(opts.log_level, opts.access_log, opts.access_log_file)
    resolve_secrets(opts)
    make_store(opts)  # a wrong --dsn is one sentence here, not one traceback per worker
    pool = None
    if opts.metrics:
        from ..metrics.exposition import WorkerPool

        pool = WorkerPool()
    children = [subprocess.Popen([sys.executable, "-m", "simulator", *argv, "--worker-of-pool"],
                                 env=pool.env() if pool is not None else None)
                for _ in range(opts.workers)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    if pool is not None:
        pool.close()
    return max(codes) if any(codes) else 0


def serve(opts: ServeOptions) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully."""
    app = build(opts)
    where = ("postgres" if opts.dsn else "memory" if opts.memory else f"{opts.db} (sync={opts.sync})")

    async def announce(_: web.Application) -> None:
        # What start-up allocated lives as long as the process: frozen, the collector's full passes
        # no longer walk it (a pause in every call's latency); young passes run 1/10 as often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])
        log.info("croupier wallet on %s://%s:%d/wallet (store: %s; %s)", "https" if opts.ssl_context else "http",
                 opts.host, opts.port, where,
                 access_log_note(opts.access_log, opts.access_log_file))

    app.on_startup.append(announce)
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop | None = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is optional
        loop = None
    sock = socket.socket(socket.AF_INET6 if ":" in opts.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if opts.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((opts.host, opts.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {opts.host}:{opts.port}: {exc.strerror}") from None
    web.run_app(
        app,
        sock=sock,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("croupier.access"),
        shutdown_timeout=opts.shutdown_timeout,
        print=None,
        loop=loop,
        ssl_context=opts.ssl_context,
    )
