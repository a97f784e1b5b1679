"""Helpers the tests share: a movable clock, free ports, wallets served in-process or as processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiohttp
import psutil
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulator.drive.client import AdminClient, WalletClient
from simulator.protocol.dialects.canonical import CanonicalDialect
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryStore
from simulator.wallet.postgres import PostgresStore
from simulator.wallet.service import make_app
from simulator.wallet.sqlite import SQLiteStore
from simulator.wallet.store import Store

SECRET = "test-secret"
ADMIN_TOKEN = "test-admin"
ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    """Time that moves only when a test says so (sessions, signature windows)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PG_DSN = os.environ.get("CROUPIER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
_pg_reason: list[str | None] = []


def pg_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here (None when they can); checked once per session."""
    if not _pg_reason:
        async def probe() -> None:
            import asyncpg

            conn = await asyncpg.connect(PG_DSN, timeout=3)
            await conn.close()

        import concurrent.futures

        try:
            # In a thread of its own: the caller may already be inside a running event loop.
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, probe()).result()
            _pg_reason.append(None)
        except Exception as exc:  # noqa: BLE001 - any failure means: skip, and say why
            _pg_reason.append(f"no PostgreSQL at {PG_DSN} ({type(exc).__name__}: {exc}); set CROUPIER_TEST_PG_DSN")
    return _pg_reason[0]


def skip_without_pg() -> None:
    import pytest

    if reason := pg_unavailable():
        pytest.skip(reason)


class ScratchPostgresStore(PostgresStore):
    """A PostgreSQL store in a schema of its own, dropped when the store closes."""

    def __init__(self) -> None:
        super().__init__(PG_DSN, schema=f"croupier_t_{uuid.uuid4().hex[:16]}", pool_size=8)

    async def close(self) -> None:
        await super().close()
        await self.drop_schema()


def make_store(kind: str, tmp_path: Path) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(tmp_path / f"wallet-{time.monotonic_ns()}.db")
    if kind == "postgres":
        skip_without_pg()
        return ScratchPostgresStore()
    raise ValueError(kind)


STORE_KINDS = ["memory", "sqlite", "postgres"]


@dataclass
class Served:
    """A wallet served on 127.0.0.1 with clients for both of its APIs."""

    base: str
    wallet: WalletClient
    admin: AdminClient
    session: aiohttp.ClientSession
    clock: FakeClock | None
    store: Store


@contextlib.asynccontextmanager
async def serve_wallet(
    store: Store, clock: FakeClock | None = None, session_ttl: int = 3600
) -> AsyncIterator[Served]:
    """Serve the wallet app on a real socket in this event loop."""
    config = WalletConfig(SECRET, ADMIN_TOKEN, session_ttl, clock or time.time)
    app: web.Application = make_app(store, config)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
            wallet = WalletClient(f"{base}/wallet", CanonicalDialect(SECRET), session, clock=clock or time.time)
            yield Served(base, wallet, AdminClient(base, ADMIN_TOKEN, session), session, clock, store)
    finally:
        await server.close()


class WalletProcess:
    """``croupier wallet serve`` as a child process on a free port (for crash and shutdown tests)."""

    def __init__(self, db: Path, *extra: str, port: int | None = None) -> None:
        self.db = db
        self.port = port or free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Self:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulator", "wallet", "serve", "--db", str(self.db), "--port", str(self.port),
             "--secret", SECRET, "--admin-token", ADMIN_TOKEN, "--no-access-log", *self.extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise RuntimeError(f"wallet exited with {self.proc.returncode}: {err.decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise TimeoutError("wallet did not become ready")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        if self.proc:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()


@contextlib.contextmanager
def wallet_process(db: Path, *extra: str) -> Iterator[WalletProcess]:
    with WalletProcess(db, *extra) as proc:
        yield proc


def write_test_accounts(base: str, path: Path, accounts: list[tuple[str, str, int]],
                        admin_token: str = ADMIN_TOKEN) -> list[tuple[str, str, str]]:
    """Create each (player_id, currency, balance) through the admin API at ``base`` and write the CSV that
    ``--players`` reads (one launch token per account); returns its rows (player_id, token, currency)."""

    async def provision() -> list[tuple[str, str, str]]:
        rows = []
        async with aiohttp.ClientSession() as session:
            admin = AdminClient(base, admin_token, session)
            for pid, cur, balance in accounts:
                await admin.create_player(pid, cur, balance)
                rows.append((pid, await admin.token(pid, 3600), cur))
        return rows

    rows = asyncio.run(provision())
    path.write_text("player_id,token,currency\n" + "".join(f"{p},{t},{c}\n" for p, t, c in rows))
    return rows


def chromium_or_skip() -> str:
    """Debian's chromium for the browser tests (``CROUPIER_CHROMIUM`` to name another), or skip the test
    with the reason: without a browser or Playwright they cannot run (``.ci/run`` installs chromium)."""
    import importlib.util
    import shutil

    found = next((c for c in (os.environ.get("CROUPIER_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"))
                  if c and os.access(c, os.X_OK)), None)
    if found is None:
        import pytest

        pytest.skip("no chromium browser installed (Debian: apt-get install chromium; .ci/run does it)")
    if importlib.util.find_spec("playwright") is None:
        import pytest

        pytest.skip("the playwright package is not installed (pip install -e '.[test]')")
    return found


def until(what: str, ready: Callable[[], bool], proc: subprocess.Popen[Any] | None = None,
          timeout: float = 40.0) -> None:
    """Wait for a condition a test can observe (calls at the wallet, a progress line) rather than a fixed
    sleep; fails at once, saying so, if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            assert proc.poll() is None, f"the command exited ({proc.returncode}) before {what}"
        if ready():
            return
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


def answers_healthz(base: str) -> bool:
    """Whether the server at ``base`` answers ``GET /healthz`` with 200 (not listening yet, or not ready: no)."""
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def wait_serving(base: str, proc: subprocess.Popen[Any], what: str = "the server", timeout: float = 20.0) -> None:
    """Wait until a child server answers ``/healthz``; fails at once, saying so, if it exits first."""
    until(f"{what} answering {base}/healthz", lambda: answers_healthz(base), proc, timeout)


def child_processes(pid: int, recursive: bool = False) -> list[psutil.Process]:
    """A command's child processes (its workers, Locust's master and workers), to check none outlives it."""
    try:
        found: list[psutil.Process] = psutil.Process(pid).children(recursive=recursive)
    except psutil.NoSuchProcess:
        return []
    return found


def still_running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` still running (a zombie waiting for its parent's wait() has ended)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def valid_junit(xml: bytes) -> ET.Element:
    """The document, after checking it against the JUnit schema (tests/data/junit.xsd) and every header
    count (``tests``, ``failures``, ``errors``, ``skipped``) against the cases below it."""
    import pytest

    xmlschema = pytest.importorskip("xmlschema", reason="pip install -e '.[test]' (xmlschema)")
    xmlschema.XMLSchema(str(Path(__file__).parent / "data" / "junit.xsd")).validate(xml.decode("utf-8"))
    root = ET.fromstring(xml)
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for ts in root.iter("testsuite"):
        cases = ts.findall("testcase")
        counted = {"tests": len(cases), "failures": sum(c.find("failure") is not None for c in cases),
                   "errors": sum(c.find("error") is not None for c in cases),
                   "skipped": sum(c.find("skipped") is not None for c in cases)}
        assert {k: int(ts.get(k, -1)) for k in counted} == counted, ts.get("name")
        for k, n in counted.items():
            total[k] += n
    assert {k: int(root.get(k, -1)) for k in total} == total
    return root
