"""What the benches share: server subprocesses on 127.0.0.1, players to load, how busy the machine is.

Each bench is a script run from the project's root (``python bench/X.py``); this module sits
beside them and is imported as ``harness`` (a script's own folder is on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class StartError(RuntimeError):
    """A server did not start, or could not be provisioned (the benches exit 2)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess on a free port, ready once ``/healthz`` answers 200.

    Its output goes to a file (a full pipe would stall it). It runs in a session of its own,
    so :meth:`kill` takes a ``--workers`` pool's children with it.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Self:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise StartError(f"{self.name} did not become ready in {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # pragma: no cover - gone meanwhile
                pass
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the wallet finishes what is in flight), SIGKILL if it takes longer than ``timeout``."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def memory_wallet(secret: str, admin_token: str, log_path: Path) -> Server:
    """``croupier wallet serve --memory``: the fastest wallet we can stand up, no access log."""
    argv = [sys.executable, "-m", "simulator", "wallet", "serve", "--memory", "--host", "127.0.0.1",
            "--port", "{port}", "--secret", secret, "--admin-token", admin_token, "--no-access-log",
            "--log-level", "warning", "--shutdown-timeout", "2"]
    return Server("wallet", argv, log_path)


def busy_s() -> float:
    """CPU seconds the whole machine has been busy (idle and I/O wait excluded)."""
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


async def provision(base: str, players: int, prefix: str, *, secret: str, admin_token: str, currency: str,
                    balance: int, game_id: str) -> list[tuple[str, str]]:
    """Players created through the admin API, a launch token each, authenticated over the protocol:
    ``[(player_id, session_token)]``."""
    import aiohttp

    from simulator.drive.client import AdminClient, WalletClient
    from simulator.protocol.calls import Ok, WalletCall
    from simulator.protocol.dialects.canonical import CanonicalDialect

    gate = asyncio.Semaphore(32)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        admin = AdminClient(base, admin_token, session)
        wallet = WalletClient(f"{base}/wallet", CanonicalDialect(secret), session)

        async def one(n: int) -> tuple[str, str]:
            pid = f"{prefix}-p{n:05d}"
            async with gate:
                await admin.create_player(pid, currency, balance)
                token = await admin.token(pid, ttl_s=86_400)
                outcome = await wallet.send(WalletCall.authenticate(token, game_id))
            if not isinstance(outcome, Ok) or not outcome.session_token:
                raise StartError(f"authenticate of {pid} failed: {outcome}")
            return pid, outcome.session_token

        return list(await asyncio.gather(*(one(n) for n in range(players))))
