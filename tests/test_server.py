"""The wallet as a served program: graceful shutdown, health and OpenAPI, the CLI, the access log.

(a) SIGTERM under load: every answer is definitive, the process exits 0, and a
    restart finds everything that was acknowledged (the crash test's checker).
(b) ``/healthz`` and ``/openapi.json`` answer JSON.
(c) The CLI refuses what it must with exit code 2, honours CROUPIER_SECRET /
    CROUPIER_ADMIN_TOKEN and ``--session-ttl``.
(d) Without ``--no-access-log`` stderr carries one JSON line per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import orjson
import pytest

from simulator.drive.client import AdminClient, AdminError, WalletClient
from simulator.protocol import signing
from simulator.protocol.calls import Ok, Rejected, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects.canonical import CanonicalDialect
from simulator.protocol.money import Money
from simulator.protocol.signing import DEV_ADMIN_TOKEN, DEV_SECRET
from simulator.wallet.sqlite import SQLiteStore
from tests.support import ADMIN_TOKEN, ROOT, SECRET, WalletProcess, free_port, serve_wallet, wait_serving
from tests.test_crash import TASKS, Book, check_log, client, player_task, provision, snapshot

SERVE = [sys.executable, "-m", "simulator", "wallet", "serve"]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any CROUPIER_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@contextlib.contextmanager
def spawn(args: list[str], env: dict[str, str], stderr: BinaryIO | None = None,
          connect_host: str = "127.0.0.1") -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``croupier wallet serve`` with exactly ``args`` (no defaults added), killed on exit if still running."""
    port = free_port()
    proc = subprocess.Popen([*SERVE, "--port", str(port), *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=stderr if stderr is not None else subprocess.DEVNULL)
    base = f"http://{connect_host}:{port}"
    try:
        wait_serving(base, proc, "the wallet")
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# -- (a) graceful shutdown ---------------------------------------------------------------


@pytest.mark.slow
async def test_sigterm_answers_in_flight_calls_and_exits_0(tmp_path: Path) -> None:
    """Calls in flight at SIGTERM are finished and answered; nothing landed stays unanswered."""
    db = tmp_path / "wallet.db"
    book = Book()
    with WalletProcess(db) as wp:
        assert wp.proc is not None
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=TASKS * 2)) as http:
            wallet, admin = client(wp.base, http)
            sessions = await provision(wallet, admin)
            tasks = [asyncio.create_task(player_task(i, wallet, sessions, book, random.Random(i)))
                     for i in range(TASKS)]
            await asyncio.sleep(0.4)
            assert not any(t.done() for t in tasks)
            sent_at = time.monotonic()
            wp.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
            code = await asyncio.to_thread(wp.proc.wait, 30)
            _, err = await asyncio.to_thread(wp.proc.communicate)
    assert code == 0, err.decode()[-2000:]
    assert not book.answered_unknown, f"answers that were not definitive: {book.answered_unknown[:3]}"
    assert not book.rejected, f"load calls were refused: {book.rejected[:3]}"
    assert sum(t > sent_at for t in book.ok_at) > 0, "no call in flight at SIGTERM was answered"

    with WalletProcess(db) as again:
        async with aiohttp.ClientSession() as http:
            _, admin = client(again.base, http)
            log, balances = await snapshot(admin)
            landed = check_log(book, log, balances, settled=set())
    assert not landed, f"graceful shutdown applied calls without answering them: {sorted(landed)[:5]}"
    print(f"SIGTERM: {len(book.acked)} acknowledged ({sum(t > sent_at for t in book.ok_at)} after the signal), "
          f"{len(book.in_flight)} without an answer, none of them applied")


# -- (b) health and OpenAPI ----------------------------------------------------------------


async def test_healthz(tmp_path: Path) -> None:
    async with (
        serve_wallet(SQLiteStore(tmp_path / "w.db")) as served,
        served.session.get(f"{served.base}/healthz") as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body == {"status": "ok", "store": "sqlite"}


async def test_openapi_json(tmp_path: Path) -> None:
    if importlib.util.find_spec("simulator.wallet.openapi") is None:
        pytest.skip("simulator/wallet/openapi.py does not exist yet (another engineer is writing it)")
    async with (
        serve_wallet(SQLiteStore(tmp_path / "w.db")) as served,
        served.session.get(f"{served.base}/openapi.json") as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert isinstance(body, dict) and isinstance(body.get("openapi"), str), body


# -- (c) the command line --------------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVE, *args], env=env, capture_output=True, text=True, timeout=15, check=False)


@pytest.mark.parametrize("given", [[], ["--secret", "s"], ["--admin-token", "a"]], ids=["none", "secret", "admin"])
def test_public_host_needs_both_secrets(tmp_path: Path, given: list[str]) -> None:
    """Beyond loopback the development secrets are refused: exit 2 with a message, no database created."""
    db = tmp_path / "w.db"
    done = run_cli(["--host", "0.0.0.0", "--port", str(free_port()), "--db", str(db), *given], clean_env())
    assert done.returncode == 2, done
    assert "--secret" in done.stderr and "--admin-token" in done.stderr, done.stderr
    assert not db.exists()


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_bad_port_exits_2(tmp_path: Path, port: str) -> None:
    done = run_cli(["--port", port, "--db", str(tmp_path / "w.db"), "--secret", "s", "--admin-token", "a"],
                   clean_env())
    assert done.returncode == 2, done
    assert "--port" in done.stderr, done.stderr


def test_port_in_use_exits_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(["--port", str(port), "--db", str(tmp_path / "w.db"), "--secret", "s", "--admin-token", "a"],
                       clean_env())
    assert done.returncode == 2, done
    assert "cannot listen" in done.stderr and str(port) in done.stderr, done.stderr


@pytest.mark.parametrize("kind", ["not-a-database", "a-directory", "under-a-file"])
def test_unusable_db_exits_2_naming_it(tmp_path: Path, kind: str) -> None:
    """A --db the wallet cannot use is a configuration error: exit 2, one line naming the file, no traceback."""
    if kind == "not-a-database":
        db = tmp_path / "w.db"
        db.write_bytes(b"this is not a SQLite database, just some text that is long enough\n" * 4)
    elif kind == "a-directory":
        db = tmp_path / "w.db"
        db.mkdir()
    else:
        (tmp_path / "file").write_text("x")
        db = tmp_path / "file" / "w.db"
    done = run_cli(["--port", str(free_port()), "--db", str(db), "--secret", "s", "--admin-token", "a"], clean_env())
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    assert str(db) in done.stderr, done.stderr


async def test_secrets_from_environment(tmp_path: Path) -> None:
    """CROUPIER_SECRET / CROUPIER_ADMIN_TOKEN are used, and satisfy the non-loopback rule."""
    env = clean_env(CROUPIER_SECRET="env-secret", CROUPIER_ADMIN_TOKEN="env-admin")
    with spawn(["--host", "0.0.0.0", "--db", str(tmp_path / "w.db"), "--no-access-log"], env) as (proc, base):
        async with aiohttp.ClientSession() as http:
            for token in (ADMIN_TOKEN, DEV_ADMIN_TOKEN):
                with pytest.raises(AdminError) as refused:
                    await AdminClient(base, token, http).create_player("p1", "EUR", 100)
                assert refused.value.status == 401
            admin = AdminClient(base, "env-admin", http)
            assert (await admin.create_player("p1", "EUR", 100))["balance"] == 100
            launch = await admin.token("p1")
            for secret in (SECRET, DEV_SECRET):
                got = await WalletClient(f"{base}/wallet", CanonicalDialect(secret), http).send(
                    WalletCall.authenticate(launch, "g1"))
                assert got == Rejected(ErrorCode.INVALID_SIGNATURE, got.message if isinstance(got, Rejected) else "")
            ok = await WalletClient(f"{base}/wallet", CanonicalDialect("env-secret"), http).send(
                WalletCall.authenticate(launch, "g1"))
            assert isinstance(ok, Ok) and ok.player_id == "p1", ok
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


@pytest.mark.slow
async def test_session_ttl_flag(tmp_path: Path) -> None:
    """--session-ttl 1: a session from a token issued without ttl_s expires; bets stop, wins do not."""
    with WalletProcess(tmp_path / "w.db", "--session-ttl", "1") as wp:
        async with aiohttp.ClientSession() as http:
            wallet, admin = client(wp.base, http)
            await admin.create_player("p1", "EUR", 1_000)
            issued = await admin._call("POST", "/admin/tokens", {"player_id": "p1"})
            assert issued["ttl_s"] == 1, issued
            auth = await wallet.send(WalletCall.authenticate(issued["token"], "g1"))
            assert isinstance(auth, Ok) and auth.session_token
            sess = auth.session_token
            eur = Money.of(100, "EUR")
            assert isinstance(await wallet.send(WalletCall.bet("b1", "p1", sess, "g1", "r1", eur)), Ok)
            await asyncio.sleep(1.2)
            late = await wallet.send(WalletCall.bet("b2", "p1", sess, "g1", "r2", eur))
            assert isinstance(late, Rejected) and late.code is ErrorCode.SESSION_EXPIRED, late
            win = await wallet.send(WalletCall.win("w1", "p1", sess, "g1", "r1", Money.of(250, "EUR"),
                                                   WinReason.REGULAR, round_closed=True))
            assert isinstance(win, Ok) and win.balance.minor == 1_150, win
            again = await wallet.send(WalletCall.authenticate(issued["token"], "g1"))
            assert isinstance(again, Rejected) and again.code is ErrorCode.SESSION_EXPIRED, again
            assert (await admin.player("p1"))["balance"] == 1_150


# -- (d) the structured access log ----------------------------------------------------------------


async def test_access_log_is_one_json_line_per_request(tmp_path: Path) -> None:
    log_path = tmp_path / "stderr.log"
    args = ["--db", str(tmp_path / "w.db"), "--secret", SECRET, "--admin-token", ADMIN_TOKEN]
    expected: list[dict[str, Any]] = []
    with log_path.open("wb") as stderr, spawn(args, clean_env(), stderr) as (proc, base):
        async with aiohttp.ClientSession() as http:
            auth_header = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

            async def call(method: str, path: str, body: Any = None, *, sig: bool = True, raw: bytes | None = None,
                           headers: dict[str, str] | None = None, **want: Any) -> Any:
                data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
                hdrs = dict(headers or {})
                if sig and data is not None:
                    hdrs[signing.HEADER] = signing.sign(SECRET, data, int(time.time()))
                async with http.request(method, base + path, data=data, headers=hdrs) as resp:
                    answer = await resp.json()
                    expected.append({"method": method, "path": path, "status": resp.status, **want})
                    return answer

            await call("GET", "/healthz")
            await call("POST", "/admin/players", {"player_id": "p1", "currency": "EUR", "balance": 100},
                       sig=False, headers=auth_header)
            token = (await call("POST", "/admin/tokens", {"player_id": "p1"}, sig=False, headers=auth_header))["token"]
            sess = (await call("POST", "/wallet/authenticate", {"token": token, "game_id": "g1"},
                               op="authenticate"))["session_token"]
            bet = {"tx_id": "b1", "player_id": "p1", "session_token": sess, "game_id": "g1", "round_id": "r1",
                   "currency": "EUR", "amount": 60}
            await call("POST", "/wallet/bet", bet, op="bet", tx_id="b1", player_id="p1")
            await call("POST", "/wallet/bet", bet, op="bet", tx_id="b1", player_id="p1", replay=True)
            await call("POST", "/wallet/bet", {**bet, "tx_id": "b2"}, op="bet", tx_id="b2", player_id="p1",
                       code="INSUFFICIENT_FUNDS")
            await call("POST", "/wallet/bet", {**bet, "tx_id": "b3"}, sig=False, op="bet", code="INVALID_SIGNATURE")
            await call("POST", "/wallet/win", raw=b"{not json", op="win", code="BAD_REQUEST")
            await call("POST", "/wallet/balance", {"player_id": "p1", "session_token": sess}, op="balance",
                       player_id="p1")
            await call("GET", "/wallet/bet")
            await call("GET", "/no/such/path")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    lines = log_path.read_bytes().decode().splitlines()
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # the startup banner and other plain log lines
        if isinstance(rec, dict) and "method" in rec:
            records.append(rec)
    # wait_ready's successful poll comes first; then exactly one line per request, in order.
    head, tail = records[: -len(expected)], records[-len(expected):]
    assert all(r["path"] == "/healthz" for r in head), head
    assert len(tail) == len(expected), lines
    for rec, want in zip(tail, expected, strict=True):
        for key in ("method", "path", "status", "ms", "ts", "remote"):
            assert key in rec, (key, rec)
        assert isinstance(rec["ms"], (int, float)) and rec["ms"] >= 0, rec
        assert {k: rec.get(k) for k in want} == want, (rec, want)
        if not rec["path"].startswith("/wallet/") or rec["method"] != "POST":
            assert "op" not in rec and "code" not in rec, rec
        elif rec["status"] == 200:
            assert "code" not in rec, rec
        if "replay" not in want:
            assert "replay" not in rec, rec
