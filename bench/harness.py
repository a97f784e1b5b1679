"""What the benches share: server subprocesses on 127.0.0.1, players to load, how busy the machine is.

Each bench is a script run from the project's root (``python bench/X.py``); this module sits
beside them and is imported as ``harness`` (a script's own folder is on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

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


# ---------------------------------------------------------------------------------------
# pre-signed canonical bets: built and signed before anything is timed
# ---------------------------------------------------------------------------------------


def bet_body(tag: str, i: int, player: tuple[str, str], *, game_id: str, currency: str, amount: int) -> bytes:
    """A canonical ``bet`` body in the canonical field order (dialects/canonical.py ``FIELDS[Op.BET]``;
    :func:`write_pool` checks it against ``call_to_json``), a unique ``tx_id`` and ``round_id``."""
    import orjson

    return orjson.dumps({
        "tx_id": f"bench-{tag}-t{i}",
        "player_id": player[0],
        "session_token": player[1],
        "game_id": game_id,
        "round_id": f"bench-{tag}-r{i}",
        "currency": currency,
        "amount": amount,
    })


def write_pool(path: Path, tag: str, start: int, n: int, players: list[tuple[str, str]], *, secret: str,
               game_id: str, currency: str, amount: int) -> None:
    """``n`` signed bets (ids ``start`` … ``start+n-1`` under ``tag``, players in round robin), one
    ``signature TAB body`` per line: what wrk's Lua script, the bare aiohttp loop and the bare Locust user send."""
    import orjson

    from simulator.protocol import signing
    from simulator.protocol.calls import Op, WalletCall
    from simulator.protocol.dialects.canonical import call_from_json, call_to_json, parse_object

    def body(i: int) -> bytes:
        return bet_body(tag, i, players[i % len(players)], game_id=game_id, currency=currency, amount=amount)

    first = body(start)
    call = call_from_json(Op.BET, parse_object(first))  # what the wallet will decode
    assert isinstance(call, WalletCall) and orjson.dumps(call_to_json(call)) == first
    t = int(time.time())  # signed now: the wallet allows 300 s of clock difference
    key = secret.encode()
    with open(path, "wb") as f:
        for i in range(start, start + n):
            b = body(i)
            f.write(signing.sign(key, b, t).encode() + b"\t" + b + b"\n")


def read_pool(path: Path) -> list[tuple[str, bytes]]:
    """The ``(X-Signature value, body)`` pairs :func:`write_pool` wrote."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            sig, _, body = line.rstrip(b"\n").partition(b"\t")
            out.append((sig.decode(), body))
    return out


# ---------------------------------------------------------------------------------------
# a load generator's CPU per call, by difference of a short and a long run
# ---------------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    import psutil

    try:
        return float(sum(psutil.Process(pid).cpu_times()[:2]))
    except psutil.Error:
        return 0.0


@dataclass
class ChildRun:
    """One load generator run to its end in a child process: its CPU (and its reaped children's) from
    ``wait4``, the wallet's CPU and the machine's over the same lifetime, and what the child reported."""

    rc: int
    cpu_s: float
    wall_s: float
    wallet_cpu_s: float
    busy_s: float
    out: str


def run_child(argv: list[str], wallet_pid: int, log_path: Path, timeout: float,
              env: dict[str, str] | None = None, code: Path = ROOT) -> ChildRun:
    """Run ``argv`` to its end; its stdout and stderr go to ``log_path`` (a pipe could fill and stall it).

    ``code``: the checkout it runs in and imports ``simulator`` from (another one measures a before)."""
    full_env = {**os.environ, "PYTHONPATH": str(code), **(env or {})}
    w0, b0, t0 = proc_cpu_s(wallet_pid), busy_s(), time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=full_env, cwd=code, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, ru = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return ChildRun(proc.returncode, ru.ru_utime + ru.ru_stime, wall, proc_cpu_s(wallet_pid) - w0, busy_s() - b0,
                    log_path.read_text(errors="replace"))


@dataclass
class PerCall:
    """A load generator's figures from a short and a long run of the same load.

    Every fixed cost (interpreter start, imports, provisioning and seating, the end of a run:
    settlement, reconciliation, the report) is paid alike by both runs, so the differences are
    what the extra seconds of steady load cost: CPU per call is ΔCPU ÷ Δcalls."""

    calls: int
    play_s: float
    calls_per_s: float
    cpu_us_per_call: float
    client_pct: float
    wallet_pct: float
    wallet_us_per_call: float
    other_pct: float
    saturated: str
    short_calls: int
    long_calls: int

    @classmethod
    def of(cls, short: ChildRun, short_calls: int, short_play_s: float, long: ChildRun, long_calls: int,
           long_play_s: float, cores: int) -> PerCall:
        d_calls = max(1, long_calls - short_calls)
        d_play = max(1e-6, long_play_s - short_play_s)
        d_cpu = long.cpu_s - short.cpu_s
        d_wallet = long.wallet_cpu_s - short.wallet_cpu_s
        d_busy = long.busy_s - short.busy_s
        client_pct, wallet_pct = 100 * d_cpu / d_play, 100 * d_wallet / d_play
        machine_pct = 100 * d_busy / d_play
        other = max(0.0, machine_pct - client_pct - wallet_pct)
        return cls(long_calls, round(long_play_s, 2), round(d_calls / d_play, 1), round(1e6 * d_cpu / d_calls, 1),
                   round(client_pct, 1), round(wallet_pct, 1), round(1e6 * d_wallet / d_calls, 1), round(other, 1),
                   saturated(client_pct, wallet_pct, machine_pct, cores), short_calls, long_calls)


SATURATED_PCT = 90.0


def saturated(client_pct: float, wallet_pct: float, machine_pct: float, cores: int) -> str:
    """Which resource ran out: a process at >= 90 % of a core (one Python process, one GIL), or every core."""
    names = [n for n, v in (("client CPU", client_pct), ("wallet CPU", wallet_pct)) if v >= SATURATED_PCT]
    if not names and machine_pct >= SATURATED_PCT * cores:
        names.append("every core")
    return " + ".join(names) or "none (latency-bound)"


def last_json_line(text: str, prefix: str) -> dict[str, Any]:
    """The JSON a child printed on its last line starting with ``prefix``."""
    for line in reversed(text.splitlines()):
        if line.startswith(prefix):
            return dict(json.loads(line[len(prefix):]))
    raise StartError(f"no {prefix.strip()} line in the child's output: {text[-1500:]}")


def scenario_file(folder: Path, players: int, duration: float, name: str) -> Path:
    """A scenario both engines play alike: ``players`` players, zero think time, no faults, the default
    game mix, EUR."""
    path = folder / f"{name}.toml"
    path.write_text(
        f"# {name}: no think time, no faults; played by croupier run and croupier load alike.\n"
        f'name = "{name}"\n\n[run]\nduration_s = {duration}\nplayers = {players}\n\n'
        '[players]\nthink_time_ms = [0, 0]\ncurrencies = ["EUR"]\n', encoding="utf-8")
    return path
