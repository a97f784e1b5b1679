"""Calls per second of one ``croupier run`` process next to a bare aiohttp ceiling, and memory per idle player.

    .venv/bin/python bench/runner.py [--duration 10] [--players 64] [--runs 1] [--json PATH]
                                     [--memory-players 10000] [--think 5000,10000] [--skip-memory]
                                     [--profile-seconds 4] [--tracemalloc]

Everything runs on 127.0.0.1 against ONE reference wallet with the in-memory store
(``python -m simulator wallet serve --memory``, uvloop, no access log) in its own subprocess.

Client CPU per call (first; ``--skip-client`` skips it): a bare aiohttp loop POSTing pre-signed bets
(``harness.write_pool``) and ``croupier run`` itself, each a process of its own, each run for 3 s and
for 3 s + ``--duration``: CPU per call is ΔCPU ÷ Δcalls (``harness.PerCall``), so every fixed cost
(start-up, seating, the end of the run) cancels.  ``--code DIR`` measures another checkout's
``croupier run`` (a before).  See bench/README.md, "Client CPU per call".

Throughput (this process; per run, each target gets a 1 s warm-up, then ``--duration`` s timed):

* *ceiling*: a bare aiohttp client loop on uvloop, a keep-alive pool of ``--players`` connections
  and as many workers, sending canonical ``bet`` calls built and HMAC-signed before timing
  (``CanonicalDialect.encode_call``, fresh tx_ids and round_ids) for players provisioned through
  the admin API and authenticated;
* *runner*: :class:`simulator.run.runner.Runner` with the ``smoke`` scenario, ``--players`` players,
  zero think time, no faults, ``concurrency = --players`` (closed model).  Calls are counted
  from its own statistics in a window that starts 1 s after every player is seated; the
  provider-side work (rounds, ledger, signing, statistics) is all in the timed path.  Measured
  twice: on uvloop (the ceiling's loop) and on the stdlib asyncio loop, which is what
  ``croupier run`` uses today (``asyncio.run`` in simulator/commands/runcmd.py).
* the order alternates between runs; ratios are runner / ceiling within one run.

Then a separate short runner run under cProfile (``--profile-seconds``) shows where the runner's
time goes (top functions by own time, and own time by module).

Memory (a fresh child process, so the figure holds nothing from the throughput phase): a runner with
``--memory-players`` players thinking ``--think`` ms between rounds (mostly idle); RSS before the run
and once every player is seated and the seating burst is over, divided by the players, in KiB.
Seating 10,000 players through the admin API takes a while: the time is measured and printed.
With ``--tracemalloc`` (or automatically when the aim is missed) a second child repeats the run under
tracemalloc and lists the top allocations held at that point.

Exit codes: 0 measured (whether or not the aims are met), 2 something did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import itertools
import json
import os
import platform
import pstats
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness
from harness import ROOT, Server, StartError, busy_s, memory_wallet

SECRET = "bench-runner-secret"
ADMIN_TOKEN = "bench-runner-admin"
GAME_ID = "bench-slot"
CURRENCY = "EUR"
BALANCE = 10**15  # the ceiling's players: no bet is ever refused for funds
BET_AMOUNT = 100
WARMUP_S = 1.0
POOL_RATE = 12_000  # ceiling bodies pre-built per second of sending (more are built inline, counted)
AIM_RATIO = 0.6
AIM_KIB_PER_PLAYER = 20.0
QUIET_CORES = 0.15


# ---------------------------------------------------------------------------------------
# CPU accounting (the machine has two cores: load generator and wallet share them)
# ---------------------------------------------------------------------------------------


class GcMeter:
    """CPU time the cyclic garbage collector spends, by generation, over a window (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.counts = [0, 0, 0]
        self.by_gen = [0.0, 0.0, 0.0]
        self._t = 0.0

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.process_time()
        else:
            dt = time.process_time() - self._t
            self.seconds += dt
            g = int(info.get("generation", 0))
            self.counts[g] += 1
            self.by_gen[g] += dt

    def __enter__(self) -> GcMeter:  # noqa: PYI034 - a final class
        gc.callbacks.append(self._cb)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._cb)

    def to_json(self, calls: int) -> dict[str, Any]:
        return {"gc_s": round(self.seconds, 4), "collections": self.counts,
                "gc_s_by_gen": [round(x, 4) for x in self.by_gen], "gc_us_per_call": 1e6 * self.seconds / max(1, calls)}


@dataclass
class CpuMeter:
    """CPU seconds of this process, of the wallet and of the whole machine over a window."""

    wallet_pid: int
    t0: float = 0.0
    me0: float = 0.0
    wallet0: float = 0.0
    busy0: float = 0.0

    def _wallet(self) -> float:
        import psutil

        try:
            return float(sum(psutil.Process(self.wallet_pid).cpu_times()[:2]))
        except psutil.Error:
            return 0.0

    def start(self) -> None:
        self.t0, self.me0, self.wallet0, self.busy0 = time.perf_counter(), time.process_time(), self._wallet(), busy_s()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        me = time.process_time() - self.me0
        wallet = self._wallet() - self.wallet0
        busy = busy_s() - self.busy0
        return {
            "elapsed_s": wall,
            "gen_cpu_s": me,
            "gen_cpu_pct": 100 * me / wall,
            "wallet_cpu_pct": 100 * wallet / wall,
            "other_cpu_pct": max(0.0, 100 * (busy - me - wallet) / wall),
        }


async def wait_quiet(limit_s: float, console: Any, label: str) -> float:
    """Wait (up to ``limit_s``) until the machine is nearly idle; the busy cores seen last."""
    if limit_s <= 0:
        return 0.0
    deadline = time.monotonic() + limit_s
    said = False
    while True:
        b0, t0 = busy_s(), time.monotonic()
        await asyncio.sleep(0.5)
        busy = (busy_s() - b0) / (time.monotonic() - t0)
        if busy < QUIET_CORES or time.monotonic() >= deadline:
            return busy
        if not said:
            console.print(f"  {label}: waiting up to {limit_s:g} s for other load to stop ({100 * busy:.0f}% CPU busy)")
            said = True


def rss_kib() -> int:
    """VmRSS of this process, KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # pragma: no cover - no /proc


def hwm_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # pragma: no cover


def loop_factory(kind: str) -> Any:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_on(kind: str, coro: Any) -> Any:
    with asyncio.Runner(loop_factory=loop_factory(kind)) as r:
        return r.run(coro)


# ---------------------------------------------------------------------------------------
# the ceiling: pre-signed canonical bets from a bare aiohttp client loop
# ---------------------------------------------------------------------------------------


async def provision(base: str, players: int, tag: str) -> list[tuple[str, str]]:
    """Players with huge balances through the admin API, authenticated: [(player_id, session_token)]."""
    return await harness.provision(base, players, f"ceil-{tag}", secret=SECRET, admin_token=ADMIN_TOKEN,
                                   currency=CURRENCY, balance=BALANCE, game_id=GAME_ID)


class BetPool:
    """Canonical bet requests, encoded and signed by the simulator's own dialect, before timing."""

    def __init__(self, tag: str, players: list[tuple[str, str]]) -> None:
        from simulator.protocol.dialects.canonical import CanonicalDialect

        self.tag = tag
        self.players = players
        self.dialect = CanonicalDialect(SECRET)
        self.items: list[tuple[bytes, dict[str, str]]] = []
        self.built_inline = 0
        self.n = itertools.count()

    def _make(self, i: int, now: float) -> tuple[bytes, dict[str, str]]:
        from simulator.protocol.calls import WalletCall
        from simulator.protocol.money import Money, currency

        pid, session = self.players[i % len(self.players)]
        call = WalletCall.bet(f"ceil-{self.tag}-t{i}", pid, session, GAME_ID, f"ceil-{self.tag}-r{i}",
                              Money(BET_AMOUNT, currency(CURRENCY)))
        req = self.dialect.encode_call(call, now)
        return req.body, req.headers

    def fill(self, n: int) -> None:
        """Build (and sign, now) the next ``n`` requests; fresh tx_ids every time."""
        now = time.time()
        self.items = [self._make(next(self.n), now) for _ in range(n)]

    def take(self, k: int) -> tuple[bytes, dict[str, str]]:
        if k < len(self.items):
            return self.items[k]
        self.built_inline += 1
        return self._make(next(self.n), time.time())


@dataclass
class Measured:
    target: str
    calls: int
    elapsed_s: float
    rate: float
    gen_cpu_pct: float
    wallet_cpu_pct: float
    other_cpu_pct: float
    gen_cpu_us_per_call: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))
    return values[k]


async def send_bet(post: Any, url: str, body: bytes, headers: dict[str, str], errors: Counter[str]) -> bool:
    """One POST of a pre-signed bet and its answer read: True when answered 200, else the failure is
    counted in ``errors`` by kind (an exception's type, or the HTTP status)."""
    try:
        async with post(url, data=body, headers=headers) as resp:
            await resp.read()
            status = resp.status
    except Exception as exc:  # noqa: BLE001 - counted, never fatal
        errors[type(exc).__name__] += 1
        return False
    if status != 200:
        errors[f"HTTP {status}"] += 1
        return False
    return True


async def ceiling_phase(base: str, wallet_pid: int, concurrency: int, duration: float, pool: BetPool,
                        profile_s: float = 0.0) -> tuple[Measured, pstats.Stats | None]:
    import aiohttp

    url = f"{base}/wallet/bet"
    perf = time.perf_counter
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        post = session.post
        counter = itertools.count()
        lat: list[float] = []

        async def worker(deadline: float, record: bool) -> None:
            while perf() < deadline:
                body, headers = pool.take(next(counter))
                t0 = perf()
                if await send_bet(post, url, body, headers, errors) and record:
                    lat.append(perf() - t0)

        warm_deadline = perf() + WARMUP_S
        await asyncio.gather(*(worker(warm_deadline, False) for _ in range(concurrency)))
        errors.clear()
        gc.collect()
        meter = CpuMeter(wallet_pid)
        prof = cProfile.Profile() if profile_s else None
        meter.start()
        with GcMeter() as gcm:
            if prof is not None:
                prof.enable()
            await asyncio.gather(*(worker(perf() + (profile_s or duration), True) for _ in range(concurrency)))
            if prof is not None:
                prof.disable()
        cpu = meter.stop()
    lat.sort()
    calls = len(lat)
    return Measured(
        "ceiling" if prof is None else "ceiling-profiled", calls, cpu["elapsed_s"], calls / cpu["elapsed_s"], cpu["gen_cpu_pct"], cpu["wallet_cpu_pct"],
        cpu["other_cpu_pct"], 1e6 * cpu["gen_cpu_s"] / max(1, calls), pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000,
        dict(errors), {"built_inline": pool.built_inline, **gcm.to_json(calls)},
    ), (pstats.Stats(prof) if prof is not None else None)


# ---------------------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------------------


def runner_options(base: str, players: int, think_ms: tuple[int, int], run_id: str, concurrency: int,
                   cap_s: float, timeout_s: float | None = None) -> Any:
    from simulator.play import scenario as scenarios
    from simulator.play.faults import FaultPlan
    from simulator.run.runner import RunOptions

    smoke = scenarios.load("smoke")
    sc = dataclasses.replace(smoke, players=players, think_time_ms=think_ms, duration_s=cap_s, rounds=None,
                             faults=FaultPlan(), currencies=("EUR",), timeout_s=timeout_s or smoke.timeout_s)
    return RunOptions(scenario=sc, wallet_url=f"{base}/wallet", secret=SECRET, admin_url=base, admin_token=ADMIN_TOKEN,
                      run_id=run_id, seed=1, concurrency=concurrency)


def total_calls(runner: Any) -> int:
    return int(sum(runner.stats.calls.values()))


async def seated(runner: Any, task: asyncio.Task[Any], players: int, poll: float = 0.02,
                 stall_s: float = 15.0) -> bool:
    """Wait until every player is seated (or refused); False when seating stalled.

    A player task that dies while seating (an exception _seat does not catch) records nothing
    until the run ends, so "no new seat for ``stall_s``" is how a stall shows.
    """
    last, last_t = -1, time.perf_counter()
    while len(runner.seats) + len(runner.errors) < players and not task.done():
        n = len(runner.seats) + len(runner.errors)
        if n != last:
            last, last_t = n, time.perf_counter()
        elif time.perf_counter() - last_t > stall_s:
            return False
        await asyncio.sleep(poll)
    if task.done() and task.exception() is not None:
        raise StartError(f"the runner failed: {task.exception()!r}")
    if not runner.seats:
        raise StartError(f"no player could be seated: {runner.errors[:3]}")
    return True


async def runner_phase(base: str, wallet_pid: int, players: int, duration: float, label: str,
                       profile_s: float = 0.0) -> tuple[Measured, pstats.Stats | None]:
    from simulator.run.runner import Runner

    run_id = f"{label}-{secrets.token_hex(3)}"
    runner = Runner(runner_options(base, players, (0, 0), run_id, players, WARMUP_S + duration + 600))
    t0 = time.perf_counter()
    task = asyncio.create_task(runner.run())
    if not await seated(runner, task, players):
        runner.stop.set()
        await task
        raise StartError(f"{label}: seating stalled at {len(runner.seats)} of {players} players")
    seat_s = time.perf_counter() - t0
    await asyncio.sleep(WARMUP_S)
    ops0 = Counter(runner.stats.calls)
    broke0 = runner.stats.rounds["player_broke"]
    gc.collect()
    meter = CpuMeter(wallet_pid)
    prof: cProfile.Profile | None = None
    meter.start()
    c0 = total_calls(runner)
    with GcMeter() as gcm:
        if profile_s:
            prof = cProfile.Profile()
            prof.enable()
            await asyncio.sleep(profile_s)
            prof.disable()
        else:
            await asyncio.sleep(duration)
    c1 = total_calls(runner)
    cpu = meter.stop()
    ledger_objs = ledger_size(runner)
    ops = Counter(runner.stats.calls)
    ops.subtract(ops0)
    active = sum(1 for t in asyncio.all_tasks() if getattr(t.get_coro(), "__qualname__", "") == "Runner._delayed"
                 and not t.done())
    runner.stop.set()
    t_end = time.perf_counter()
    result = await task
    wind_down = time.perf_counter() - t_end
    calls = c1 - c0
    bet = runner.stats.latency.get("bet")
    measured = Measured(
        label, calls, cpu["elapsed_s"], calls / cpu["elapsed_s"], cpu["gen_cpu_pct"], cpu["wallet_cpu_pct"],
        cpu["other_cpu_pct"], 1e6 * cpu["gen_cpu_s"] / max(1, calls),
        bet.percentile(50) if bet else None, bet.percentile(99) if bet else None,
        {k: v for k, v in result.stats.results.items() if not k.endswith(":ok")},
        {
            "seat_s": round(seat_s, 3), "seated": len(runner.seats), "players_playing_at_end": active,
            "players_broke_in_window": runner.stats.rounds["player_broke"] - broke0,
            "ops_in_window": {k: v for k, v in ops.items() if v},
            "verdict": result.verdict, "anomalies": result.ledger.anomaly_count, "unsettled": result.unsettled,
            "errors": result.provision_errors[:5], "wind_down_s": round(wind_down, 3),
            "ledger_at_window_end": ledger_objs, **gcm.to_json(c1 - c0),
        },
    )
    stats = pstats.Stats(prof) if prof is not None else None
    return measured, stats


# ---------------------------------------------------------------------------------------
# where the runner's time goes
# ---------------------------------------------------------------------------------------


def _area(filename: str, name: str) -> str:
    if filename == "~":
        low = name.lower()
        for key, label in (("hmac", "hmac/hashlib (signing)"), ("hashlib", "hmac/hashlib (signing)"),
                           ("_hashlib", "hmac/hashlib (signing)"), ("orjson", "orjson"),
                           ("random", "random (C)"), ("uvloop", "uvloop (C)"), ("select", "selectors/epoll"),
                           ("socket", "socket I/O"), ("send", "socket I/O"), ("recv", "socket I/O"),
                           ("_asyncio", "asyncio (C)")):
            if key in low:
                return label
        return "other builtins"
    path = filename.replace("\\", "/")
    if "/simulator/" in path:
        return "simulator/" + path.rsplit("/simulator/", 1)[1]
    if "/bench/" in path:
        return "bench/" + path.rsplit("/bench/", 1)[1] + " (the ceiling's loop)"
    for pkg in ("aiohttp", "multidict", "yarl", "uvloop", "faker", "rich", "propcache", "frozenlist", "aiosignal"):
        if f"/{pkg}/" in path:
            return pkg
    if "/asyncio/" in path:
        return "asyncio"
    stem = path.rsplit("/", 1)[-1]
    return f"stdlib {stem}"


def profile_tables(stats: pstats.Stats, top: int = 20) -> dict[str, Any]:
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-9
    rows = []
    areas: Counter[str] = Counter()
    for (filename, line, name), (cc, nc, tt, ct, _callers) in raw.items():
        areas[_area(filename, name)] += tt
        where = "builtin" if filename == "~" else f"{_short(filename)}:{line}"
        rows.append({"function": name, "where": where, "calls": nc, "tottime_s": tt, "cumtime_s": ct,
                     "share_pct": 100 * tt / total})
    rows.sort(key=lambda r: -r["tottime_s"])
    by_area = [{"area": a, "tottime_s": t, "share_pct": 100 * t / total} for a, t in areas.most_common()]
    cum = sorted(rows, key=lambda r: -r["cumtime_s"])
    sim_cum = [r for r in cum if r["where"].startswith("simulator/")][:12]
    return {"total_s": total, "top_tottime": rows[:top], "by_area": by_area, "simulator_cumtime": sim_cum}


def _short(filename: str) -> str:
    path = filename.replace("\\", "/")
    for marker in ("/simulator/", "/site-packages/", "/lib/python3.11/"):
        if marker in path:
            rest = path.rsplit(marker, 1)[1]
            return ("simulator/" + rest) if marker == "/simulator/" else rest
    return path.rsplit("/", 2)[-1]


def component_costs(repeat: int = 20_000) -> list[dict[str, Any]]:
    """CPU µs of the provider-side work the runner does per call, each piece alone (no network, no profiler)."""
    import random

    import orjson
    from multidict import CIMultiDict, CIMultiDictProxy

    from simulator.drive.delivery import label as outcome_label
    from simulator.judge.ledger import Ledger
    from simulator.judge.stats import RunStats
    from simulator.play import gameplay
    from simulator.play.rounds import RoundContext, Seat, Send, TxIds, play_round
    from simulator.protocol.calls import Ok, WalletCall
    from simulator.protocol.dialects import HttpResponse
    from simulator.protocol.dialects.canonical import CanonicalDialect
    from simulator.protocol.money import Money, currency

    eur = currency(CURRENCY)
    dialect = CanonicalDialect(SECRET)
    session = secrets.token_urlsafe(24)
    calls = [WalletCall.bet(f"bench-p00001-t{i}", "bench-p00001", session, "croupier-stars", f"bench-p00001-r{i}",
                            Money(100, eur)) for i in range(repeat)]
    body = orjson.dumps({"status": "ok", "balance": 123_456, "currency": "EUR", "wallet_tx_id": "987654"})
    raw_headers = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json", "Content-Length": str(len(body)),
                                                "Date": "Tue, 24 Nov 2026 10:00:00 GMT",
                                                "Server": "Python/3.11 aiohttp/3.9"}))
    ok = Ok(Money(123_456, eur), wallet_tx_id="987654")
    perf = time.perf_counter

    def timed(fn: Any) -> float:
        gc.collect()
        t0 = perf()
        fn()
        return 1e6 * (perf() - t0) / repeat

    rows: list[dict[str, Any]] = []

    def encode() -> None:
        now = time.time()
        for c in calls:
            dialect.encode_call(c, now)

    def decode() -> None:
        for c in calls:
            dialect.decode_response(c, HttpResponse(200, dict(raw_headers), body))

    def ledger() -> None:
        led = Ledger()
        led.open("bench-p00001", "EUR", 10**12)
        for c in calls:
            token = led.begin(c)
            led.end(token, c, ok, latency_ms=1.234, status=200, response=body)

    def stats() -> None:
        st = RunStats()
        for i in range(repeat):
            st.record("bet", outcome_label(ok), 1.234 + (i % 50) / 10, i // 1000)

    def headers() -> None:
        extra: dict[str, str] = {}
        req = dialect.encode_call(calls[0], time.time())
        for _ in range(repeat):
            merged = {**req.headers, **extra}
            copied = dict(raw_headers)
        del merged, copied

    n_calls = 0

    def rounds() -> None:
        nonlocal n_calls
        rng = random.Random(7)
        seat = Seat("bench-p00001", session, eur, 10**12)
        ids = TxIds("bench-p00001")
        kinds = ["slot"] * 6 + ["roulette"] * 3 + ["crash"]
        n_calls = 0
        for _ in range(repeat):
            ctx = RoundContext(seat, "", rng, ids)
            game_id, plan = gameplay.plan_single(rng.choice(kinds), rng, 10, "EUR")
            ctx.game_id = game_id
            gen = play_round(ctx, plan)
            reply: object = None
            while True:
                try:
                    step = gen.send(reply)
                except StopIteration:
                    break
                if isinstance(step, Send):
                    n_calls += 1
                    reply = ok
                else:
                    reply = None

    for label, fn, what in (
        ("encode + sign a call (call_to_json, orjson, HMAC-SHA256)", encode, "dialects/canonical.py encode_call"),
        ("decode an answer (dict(headers) + orjson + Ok)", decode, "dialects/canonical.py decode_response"),
        ("ledger begin + end (Evidence, describe, _call_json, Tx kept)", ledger, "ledger.py"),
        ("statistics record (2 histograms: by op and by second)", stats, "stats.py RunStats.record"),
        ("header dicts per request ({**req.headers, **extra}, dict(resp.headers))", headers, "client.py exchange"),
    ):
        rows.append({"piece": label, "where": what, "us_per_call": timed(fn)})
    import tracemalloc

    tracemalloc.start()
    base_mem = tracemalloc.get_traced_memory()[0]
    kept = Ledger()
    kept.open("bench-p00001", "EUR", 10**12)
    kept_stats = RunStats()
    for i, c in enumerate(calls):
        token = kept.begin(c)
        kept.end(token, c, ok, latency_ms=1.234, status=200, response=body)
        kept_stats.record("bet", "ok", 1.234 + (i % 50) / 10, i // 1000)
    retained = (tracemalloc.get_traced_memory()[0] - base_mem) / repeat
    tracemalloc.stop()
    del kept, kept_stats
    per_round = timed(rounds)
    rows.append({"piece": "plan a round + step its generator, per call (smoke mix)",
                 "where": "gameplay.py, games/, rounds.py", "us_per_call": per_round * repeat / max(1, n_calls)})
    rows.append({"piece": "memory kept per acknowledged call (ledger Tx + Evidence; stats are bounded)",
                 "where": "ledger.py", "bytes_retained": retained})
    return rows


# ---------------------------------------------------------------------------------------
# memory per idle player (a child process: ``--memory-child``)
# ---------------------------------------------------------------------------------------


def ledger_size(runner: Any) -> dict[str, int]:
    books = runner.ledger.books
    txs = sum(len(b.txs) for b in books.values())
    ev = sum(len(t.evidence) for b in books.values() for t in b.txs.values())
    return {"books": len(books), "txs": txs, "evidence": ev}


async def memory_child(base: str, players: int, think: tuple[int, int], hold_s: float, concurrency: int,
                       trace: bool, timeout_s: float) -> dict[str, Any]:
    import tracemalloc

    from simulator.play import gameplay
    from simulator.play.players import make_players
    from simulator.run.runner import Runner

    # Fixed costs, not per player: the process-wide jackpot slot, and the Faker locales make_players loads.
    gameplay.jackpot_slot()
    make_players(1, 200, currencies=("EUR",), id_prefix="warm-up")
    opts = runner_options(base, players, think, f"mem-{secrets.token_hex(3)}", concurrency, 3600.0, timeout_s)
    runner = Runner(opts)
    gc.collect()
    if trace:
        tracemalloc.start(1)
    rss0, t0 = rss_kib(), time.perf_counter()
    snap0 = tracemalloc.take_snapshot() if trace else None
    task = asyncio.create_task(runner.run())
    progress: list[tuple[float, int, int]] = []

    async def watch() -> None:
        while True:
            progress.append((round(time.perf_counter() - t0, 2), len(runner.seats), rss_kib()))
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch())
    complete = await seated(runner, task, players, poll=0.05)
    seat_s = time.perf_counter() - t0
    calls_at_seated = total_calls(runner)
    # Let the seating burst settle: every seated player is now in (or soon in) a think pause.
    await asyncio.sleep(1.0)
    rss1 = rss_kib()
    calls1 = total_calls(runner)
    led1 = ledger_size(runner)
    snap1 = tracemalloc.take_snapshot() if trace else None
    traced1 = tracemalloc.get_traced_memory()[0] if trace else None
    # Idle hold: players mostly think; rounds still finish now and then, and the ledger keeps each call.
    await asyncio.sleep(hold_s)
    rss2 = rss_kib()
    calls2 = total_calls(runner)
    led2 = ledger_size(runner)
    traced2 = tracemalloc.get_traced_memory()[0] if trace else None
    if trace:
        tracemalloc.stop()
    watcher.cancel()
    runner.stop.set()
    t_end = time.perf_counter()
    result = await task
    wind_down = time.perf_counter() - t_end
    seated_n = len(runner.seats)
    out: dict[str, Any] = {
        "players": players, "seated": seated_n, "seating_complete": complete, "timeout_s": timeout_s,
        "think_ms": list(think), "concurrency": concurrency,
        "rss_before_kib": rss0, "rss_seated_kib": rss1, "rss_after_hold_kib": rss2, "hwm_kib": hwm_kib(),
        "kib_per_player": (rss1 - rss0) / max(1, seated_n),
        "seat_s": round(seat_s, 2), "hold_s": hold_s,
        "calls_at_seated": calls_at_seated, "calls_at_measure": calls1, "calls_after_hold": calls2,
        "ledger_at_measure": led1, "ledger_after_hold": led2,
        "hold_kib_per_call": (rss2 - rss1) / (calls2 - calls1) if calls2 > calls1 else None,
        "wind_down_s": round(wind_down, 2), "verdict": result.verdict, "anomalies": result.ledger.anomaly_count,
        "unsettled": result.unsettled, "errors": result.provision_errors[:5], "n_errors": len(result.provision_errors),
        "error_kinds": dict(Counter(e.split(": ", 1)[-1][:80] for e in result.provision_errors).most_common(5)),
        "progress": progress,
    }
    if snap0 is not None and snap1 is not None:
        if traced1 is not None and traced2 is not None and calls2 > calls1:
            out["hold_traced_bytes_per_call"] = (traced2 - traced1) / (calls2 - calls1)
        diff = snap1.compare_to(snap0, "lineno")
        out["traced_kib_per_player"] = (traced1 - sum(s.size for s in snap0.traces)) / 1024 / max(1, seated_n) \
            if traced1 is not None else None
        out["top_lines"] = [
            {"where": f"{_short(d.traceback[0].filename)}:{d.traceback[0].lineno}", "kib": d.size_diff / 1024,
             "blocks": d.count_diff, "bytes_per_player": d.size_diff / max(1, seated_n)}
            for d in diff[:25]
        ]
        by_file = snap1.compare_to(snap0, "filename")
        out["top_files"] = [
            {"where": _short(d.traceback[0].filename), "kib": d.size_diff / 1024,
             "bytes_per_player": d.size_diff / max(1, seated_n)}
            for d in by_file[:12]
        ]
    return out


def spawn_memory_child(base: str, args: argparse.Namespace, trace: bool, tmp: Path) -> dict[str, Any]:
    out = tmp / f"memory-{'trace' if trace else 'rss'}.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--memory-child", "--wallet-base", base,
            "--memory-players", str(args.memory_players), "--think", f"{args.think[0]},{args.think[1]}",
            "--hold", str(args.hold), "--memory-concurrency", str(args.memory_concurrency),
            "--memory-loop", args.memory_loop, "--memory-timeout", str(args.memory_timeout), "--child-out", str(out)]
    if trace:
        argv.append("--tracemalloc")
    proc = subprocess.run(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          timeout=3600, check=False)
    if proc.returncode != 0 or not out.exists():
        raise StartError(f"memory child exited with {proc.returncode}: {proc.stderr.decode(errors='replace')[-1500:]}")
    return dict(json.loads(out.read_text()))


# ---------------------------------------------------------------------------------------
# one throughput run
# ---------------------------------------------------------------------------------------


@dataclass
class Run:
    index: int
    order: list[str]
    results: dict[str, Measured]
    ratios: dict[str, float]


async def ceiling(wallet: Server, players_n: int, duration: float, tag: str,
                  profile_s: float = 0.0) -> tuple[Measured, pstats.Stats | None]:
    players = await provision(wallet.base, players_n, tag)
    pool = BetPool(tag, players)
    pool.fill(int(POOL_RATE * (WARMUP_S + (profile_s or duration))))
    gc.collect()
    gc.freeze()  # the pool is long-lived: keep the collector from walking it
    try:
        return await ceiling_phase(wallet.base, wallet.pid, players_n, duration, pool, profile_s)
    finally:
        gc.unfreeze()


def one_run(index: int, args: argparse.Namespace, wallet: Server, console: Any) -> Run:
    tag = secrets.token_hex(3)
    loops = ["uvloop", "asyncio"] if not args.uvloop_only else ["uvloop"]
    order = ["ceiling", *[f"runner-{k}" for k in loops]]
    if index % 2 == 0:
        order.reverse()
    results: dict[str, Measured] = {}

    for name in order:
        if not wallet.alive():
            raise StartError(f"the wallet died: {wallet.tail()}")
        run_on("uvloop", wait_quiet(args.quiet_wait, console, f"run {index} {name}"))
        console.print(f"  run {index}/{args.runs}: {name} …")
        if name == "ceiling":
            results[name], _ = run_on("uvloop", ceiling(wallet, args.players, args.duration, tag))
        else:
            kind = name.split("-", 1)[1]
            results[name], _ = run_on(kind, runner_phase(wallet.base, wallet.pid, args.players, args.duration, name))
        m = results[name]
        console.print(f"    {m.rate:,.0f} calls/s, client CPU {m.gen_cpu_pct:.0f}%, wallet CPU {m.wallet_cpu_pct:.0f}%")
    c = results["ceiling"].rate
    ratios = {k: (v.rate / c if c else float("nan")) for k, v in results.items() if k != "ceiling"}
    return Run(index, order, results, ratios)


# ---------------------------------------------------------------------------------------
# client CPU per call: a bare aiohttp loop and `croupier run`, each a process of its own
# ---------------------------------------------------------------------------------------

BARE_JSON = "BARE-JSON "
SHORT_S = 3.0  # the short run of each pair; the long one is SHORT_S + --duration
BARE_POOL_RATE = 20_000  # pre-signed bets per second of the long run (a bare loop did up to ~9k/s here)
CLIENT_TARGETS = ("bare", "croupier-run")
AIM_CPU_RATIO = 1.3


async def bare_loop(url: str, pool_path: Path, concurrency: int, duration: float) -> dict[str, Any]:
    """The baseline client: ``concurrency`` workers on one keep-alive pool POSTing pre-signed bets, each once.

    What any client must do per call and nothing more: send a body, read the answer, check its status."""
    import aiohttp

    pool = harness.read_pool(pool_path)
    gc.collect()
    gc.freeze()
    counter = itertools.count()
    errors: Counter[str] = Counter()
    ok = 0
    dry = False
    perf = time.perf_counter
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        post = session.post

        async def worker(deadline: float) -> None:
            nonlocal ok, dry
            while perf() < deadline:
                k = next(counter)
                if k >= len(pool):
                    dry = True
                    return
                sig, body = pool[k]
                if await send_bet(post, url, body, {"Content-Type": "application/json", "X-Signature": sig}, errors):
                    ok += 1

        t0 = perf()
        deadline = t0 + duration
        await asyncio.gather(*(worker(deadline) for _ in range(concurrency)))
        elapsed = perf() - t0
    return {"calls": ok + sum(errors.values()), "ok": ok, "errors": dict(errors), "play_s": elapsed, "ran_dry": dry}


@dataclass
class ClientRun:
    index: int
    order: list[str]
    results: dict[str, harness.PerCall]
    notes: dict[str, dict[str, Any]]


def _bare_pair(wallet: Server, players: list[tuple[str, str]], args: argparse.Namespace, tmp: Path,
               tag: str) -> tuple[harness.PerCall, dict[str, Any]]:
    got = []
    n_pool = int(BARE_POOL_RATE * (SHORT_S + args.duration))
    for length in (SHORT_S, SHORT_S + args.duration):
        pool_path = tmp / f"pool-{tag}-{length:g}.txt"
        # The same number of bets for both runs, so reading them is a fixed cost that cancels.
        harness.write_pool(pool_path, f"{tag}-{length:g}", 0, n_pool, players, secret=SECRET, game_id=GAME_ID,
                           currency=CURRENCY, amount=BET_AMOUNT)
        child = harness.run_child(
            [sys.executable, str(Path(__file__).resolve()), "--bare-client", "--wallet-base", wallet.base,
             "--pool", str(pool_path), "--players", str(args.players), "--duration", str(length)],
            wallet.pid, tmp / f"bare-{tag}-{length:g}.log", timeout=length + 120)
        pool_path.unlink()
        if child.rc != 0:
            raise StartError(f"the bare client exited {child.rc}: {child.out[-1500:]}")
        out = harness.last_json_line(child.out, BARE_JSON)
        if out["ran_dry"]:
            raise StartError(f"the bare client ran out of pre-signed bets ({n_pool}): raise BARE_POOL_RATE")
        got.append((child, out))
    (cs, os_), (cl, ol) = got
    per = harness.PerCall.of(cs, os_["calls"], os_["play_s"], cl, ol["calls"], ol["play_s"], os.cpu_count() or 1)
    return per, {"errors": ol["errors"], "short": asdict(cs) | {"out": ""}, "long": asdict(cl) | {"out": ""}}


def _croupier_run_pair(wallet: Server, scenario: Path, args: argparse.Namespace, tmp: Path,
                       tag: str) -> tuple[harness.PerCall, dict[str, Any]]:
    got = []
    for length in (SHORT_S, SHORT_S + args.duration):
        out = tmp / f"run-{tag}-{length:g}.json"
        child = harness.run_child(
            [sys.executable, "-m", "simulator", "run", str(scenario), "--wallet", f"{wallet.base}/wallet",
             "--secret", SECRET, "--admin-token", ADMIN_TOKEN, "--duration", str(length),
             "--player-count", str(args.players), "--concurrency", str(args.players), "--run-id", f"cr-{tag}-{length:g}",
             "--quiet", "--json", str(out)],
            wallet.pid, tmp / f"run-{tag}-{length:g}.log", timeout=length * 10 + 120,
            code=Path(args.code).resolve() if args.code else ROOT)
        if not out.is_file():
            raise StartError(f"croupier run wrote no report (exit {child.rc}): {child.out[-1500:]}")
        rep = json.loads(out.read_text(encoding="utf-8"))
        if rep["verdict"] != "pass":
            raise StartError(f"croupier run ended {rep['verdict']!r}, not pass: {out.read_text()[:1500]}")
        got.append((child, rep))
    (cs, rs), (cl, rl) = got
    per = harness.PerCall.of(cs, sum(rs["calls"].values()), rs["elapsed_s"], cl, sum(rl["calls"].values()),
                             rl["elapsed_s"], os.cpu_count() or 1)
    return per, {"verdict": rl["verdict"], "calls": rl["calls"], "anomalies": rl.get("anomalies"),
                 "bet_p50_ms": rl["latency_ms"].get("bet", {}).get("p50"),
                 "bet_p99_ms": rl["latency_ms"].get("bet", {}).get("p99")}


def client_runs(args: argparse.Namespace, wallet: Server, tmp: Path, console: Any) -> list[ClientRun]:
    """Per run, the bare loop and ``croupier run`` (order alternating), each a short and a long run."""
    scenario = harness.scenario_file(tmp, args.players, SHORT_S + args.duration, "bench-runner")
    players = run_on("uvloop", provision(wallet.base, args.players, f"bare-{secrets.token_hex(3)}"))
    runs = []
    for index in range(1, args.runs + 1):
        order = list(CLIENT_TARGETS) if index % 2 else list(reversed(CLIENT_TARGETS))
        results: dict[str, harness.PerCall] = {}
        notes: dict[str, dict[str, Any]] = {}
        for name in order:
            if not wallet.alive():
                raise StartError(f"the wallet died: {wallet.tail()}")
            run_on("uvloop", wait_quiet(args.quiet_wait, console, f"run {index} {name}"))
            console.print(f"  client run {index}/{args.runs}: {name} ({SHORT_S:g} s and {SHORT_S + args.duration:g} s) …")
            tag = secrets.token_hex(3)
            if name == "bare":
                results[name], notes[name] = _bare_pair(wallet, players, args, tmp, tag)
            else:
                results[name], notes[name] = _croupier_run_pair(wallet, scenario, args, tmp, tag)
            r = results[name]
            console.print(f"    {r.cpu_us_per_call:.0f} µs of client CPU per call, {r.calls_per_s:,.0f} calls/s, "
                          f"client {r.client_pct:.0f}%, wallet {r.wallet_pct:.0f}%, other {r.other_pct:.0f}%")
        runs.append(ClientRun(index, order, results, notes))
    return runs


def client_report(runs: list[ClientRun], args: argparse.Namespace, console: Any) -> dict[str, Any]:
    from rich.table import Table

    med = statistics.median
    table = Table(title=f"client CPU per call, {args.players} players/connections, no think time, by difference of a "
                        f"{SHORT_S:g} s and a {SHORT_S + args.duration:g} s run" + (" (medians)" if len(runs) > 1 else ""))
    for col in ("client", "client CPU µs/call", "× bare", "calls/s", "client %", "wallet %", "wallet µs/call",
                "other %", "saturated"):
        table.add_column(col, justify="left" if col in ("client", "saturated") else "right")
    labels = {"bare": "bare aiohttp loop, pre-signed bets (uvloop)",
              "croupier-run": "`croupier run`, think 0, no faults (uvloop)"}
    summary: dict[str, Any] = {}
    for name in CLIENT_TARGETS:
        rs = [r.results[name] for r in runs]
        ratio = med(r.results[name].cpu_us_per_call / r.results["bare"].cpu_us_per_call for r in runs)
        row = {k: med(getattr(x, k) for x in rs) for k in ("cpu_us_per_call", "calls_per_s", "client_pct",
                                                           "wallet_pct", "wallet_us_per_call", "other_pct")}
        row["ratio_to_bare"] = round(ratio, 3)
        row["saturated"] = sorted({x.saturated for x in rs})
        summary[name] = row
        table.add_row(labels[name], f"{row['cpu_us_per_call']:.0f}", f"{ratio:.2f}", f"{row['calls_per_s']:,.0f}",
                      f"{row['client_pct']:.0f}", f"{row['wallet_pct']:.0f}", f"{row['wallet_us_per_call']:.0f}",
                      f"{row['other_pct']:.0f}", ", ".join(row["saturated"]))
    console.print(table)
    r = summary["croupier-run"]["ratio_to_bare"]
    console.print(f"aim (issue 17): `croupier run` ≤ {AIM_CPU_RATIO} × the bare client's CPU per call — "
                  + ("[green]met[/]" if r <= AIM_CPU_RATIO else "[red]not met[/]") + f" ({r:.2f}×)")
    return {"summary": summary, "runs": [asdict(r) for r in runs], "aim_ratio": AIM_CPU_RATIO}


# ---------------------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import aiohttp
    import orjson
    import uvloop

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)), "cpu": model,
        "kernel": platform.release(), "python": platform.python_version(), "aiohttp": aiohttp.__version__,
        "uvloop": getattr(uvloop, "__version__", "?"), "orjson": orjson.__version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


LABELS = {
    "ceiling": "ceiling: bare aiohttp loop, pre-signed bets (uvloop)",
    "runner-uvloop": "runner: Runner, smoke, think 0 (uvloop)",
    "runner-asyncio": "runner: Runner, smoke, think 0 (asyncio, as `croupier run`)",
}


def report(runs: list[Run], prof: dict[str, Any] | None, prof_m: Measured | None, mem: dict[str, Any] | None,
           mem_trace: dict[str, Any] | None, args: argparse.Namespace, machine: dict[str, Any]) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    multi = len(runs) > 1
    med = statistics.median
    names = [n for n in LABELS if n in runs[0].results] if runs else []
    console.print(
        f"[bold]machine[/]: {machine['cores']} cores ({machine['cores_usable']} usable), {machine['cpu']}, "
        f"Linux {machine['kernel']}, Python {machine['python']}, aiohttp {machine['aiohttp']}, uvloop {machine['uvloop']} "
        f"— {machine['date']}"
    )
    console.print(
        f"[bold]parameters[/]: duration {args.duration:g} s (+{WARMUP_S:g} s warm-up) per target, {args.players} players = "
        f"{args.players} keep-alive connections, runs {args.runs}; reference wallet, in-memory store, its own process "
        "(uvloop, no access log), all on 127.0.0.1" + (f"; bench and wallet at nice {args.nice}" if args.nice else "")
    )
    table = Table(title="wallet calls per second from one process" + (" (medians)" if multi else ""))
    for col in ("target", "calls/s", "× ceiling", "client CPU µs/call", "client CPU %", "wallet CPU %", "other CPU %",
                "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "target" else "right")

    def summarize(name: str) -> dict[str, Any]:
        ms = [r.results[name] for r in runs]
        return {
            "rate": med(m.rate for m in ms), "ratio": med(r.ratios[name] for r in runs) if name != "ceiling" else 1.0,
            "gen_cpu_us_per_call": med(m.gen_cpu_us_per_call for m in ms), "gen_cpu_pct": med(m.gen_cpu_pct for m in ms),
            "wallet_cpu_pct": med(m.wallet_cpu_pct for m in ms), "other_cpu_pct": med(m.other_cpu_pct for m in ms),
            "p50_ms": med((m.p50_ms or 0.0) for m in ms), "p99_ms": med((m.p99_ms or 0.0) for m in ms),
        }

    def row(label: str, s: dict[str, Any], style: str | None = None) -> None:
        table.add_row(label, f"{s['rate']:,.0f}", f"{s['ratio']:.2f}", f"{s['gen_cpu_us_per_call']:.0f}",
                      f"{s['gen_cpu_pct']:.0f}", f"{s['wallet_cpu_pct']:.0f}", f"{s['other_cpu_pct']:.0f}",
                      f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", style=style)

    if multi:
        for r in runs:
            for n in names:
                m = r.results[n]
                row(f"run {r.index} {n}", {**asdict(m), "ratio": r.ratios.get(n, 1.0),
                                            "p50_ms": m.p50_ms or 0.0, "p99_ms": m.p99_ms or 0.0}, style="dim")
        table.add_section()
    summary = {n: summarize(n) for n in names}
    for n in names:
        row(LABELS[n], summary[n])
    if runs:
        console.print(table)
        console.print(
            "calls/s: answered wallet calls per second of the timed window (runner: every call it made — bets, wins "
            "and the rest — counted by its own statistics after all players were seated). CPU %: CPU seconds per wall "
            "second (100 = one core of 2). Latency: ceiling = its timed bets; runner = its bet histogram over the "
            "whole run."
        )
    for r in runs:
        for n in names:
            m = r.results[n]
            if n == "ceiling":
                if m.errors or m.notes.get("built_inline"):
                    console.print(f"[yellow]run {r.index} ceiling: errors {m.errors}, "
                                  f"{m.notes.get('built_inline')} requests built inside the timed path[/]")
                continue
            nt = m.notes
            console.print(
                f"run {r.index} {n}: seated {nt['seated']} in {nt['seat_s']:.2f} s; window ops "
                f"{nt['ops_in_window']}; broke in window {nt['players_broke_in_window']}; "
                f"verdict {nt['verdict']} ({nt['anomalies']} anomalies, {nt['unsettled']} unsettled); "
                f"wind-down {nt['wind_down_s']:.2f} s"
                + (f"; refusals/unknowns {m.errors}" if m.errors else "")
                + (f"; errors {nt['errors']}" if nt["errors"] else "")
            )
    for r in runs:
        console.print(f"run {r.index} cyclic GC in the timed window: " + "; ".join(
            f"{n} {m.notes['gc_s']:.3f} s = {m.notes['gc_us_per_call']:.1f} µs/call "
            f"(collections gen0/1/2 {'/'.join(map(str, m.notes['collections']))})"
            for n, m in r.results.items() if "gc_s" in m.notes))
    busy = max((m.other_cpu_pct for r in runs for m in r.results.values()), default=0.0)
    if busy > 20:
        console.print(f"[yellow]other processes used up to {busy:.0f}% CPU in a timed window: figures are skewed[/]")
    aims = {}
    for n in names:
        if n == "ceiling":
            continue
        ratio = summary[n]["ratio"]
        met = ratio >= AIM_RATIO
        aims[n] = {"aim": AIM_RATIO, "value": ratio, "met": met}
        console.print(f"aim {n} ≥ {AIM_RATIO}× ceiling: {'[green]MET[/]' if met else '[red]NOT MET[/]'} ({ratio:.2f}×)")

    if prof is not None and prof_m is not None:
        console.print()
        console.print(
            f"[bold]where the runner's time goes[/]: cProfile over {prof_m.elapsed_s:.1f} s of a separate run "
            f"(runner-uvloop, {args.players} players, think 0): {prof_m.rate:,.0f} calls/s under the profiler, "
            f"{prof['total_s']:.2f} s of profiled Python time ({1e6 * prof['total_s'] / max(1, prof_m.calls):.0f} µs/call); "
            "the uvloop core (C) is not seen by cProfile."
        )
        ceil = prof.get("ceiling")
        per_r = {a["area"]: 1e6 * a["tottime_s"] / max(1, prof_m.calls) for a in prof["by_area"]}
        per_c = {a["area"]: 1e6 * a["tottime_s"] / max(1, ceil["window"]["calls"]) for a in ceil["by_area"]} \
            if ceil else {}
        t = Table(title="own time per wallet call by module, under cProfile (inflated alike for both; "
                        "compare the columns, not the absolute µs)")
        t.add_column("module / area")
        t.add_column("runner µs/call", justify="right")
        t.add_column("runner share %", justify="right")
        if ceil:
            t.add_column("ceiling µs/call", justify="right")
            t.add_column("runner − ceiling", justify="right")
        shown = sorted(per_r, key=lambda a: -per_r[a])[:14]
        share = {a["area"]: a["share_pct"] for a in prof["by_area"]}
        for a in shown:
            cells = [a, f"{per_r[a]:.0f}", f"{share[a]:.1f}"]
            if ceil:
                cells += [f"{per_c.get(a, 0.0):.0f}", f"{per_r[a] - per_c.get(a, 0.0):+.0f}"]
            t.add_row(*cells)
        rest_r = sum(v for k, v in per_r.items() if k not in shown)
        cells = ["the rest", f"{rest_r:.0f}", f"{100 * rest_r / max(1e-9, sum(per_r.values())):.1f}"]
        if ceil:
            rest_c = sum(v for k, v in per_c.items() if k not in shown)
            cells += [f"{rest_c:.0f}", f"{rest_r - rest_c:+.0f}"]
        t.add_row(*cells)
        tot_r = sum(per_r.values())
        cells = ["[bold]total profiled[/]", f"[bold]{tot_r:.0f}[/]", "100.0"]
        if ceil:
            tot_c = sum(per_c.values())
            cells += [f"[bold]{tot_c:.0f}[/]", f"[bold]{tot_r - tot_c:+.0f}[/]"]
        t.add_row(*cells)
        console.print(t)
        if ceil:
            console.print(f"ceiling under the profiler: {ceil['window']['rate']:,.0f} calls/s over "
                          f"{ceil['window']['elapsed_s']:.1f} s. cProfile counts each resumption of a coroutine "
                          "as a call, so async functions show about twice their real call count.")
        t = Table(title="top functions by own time")
        for col in ("function", "where", "calls", "own s", "share %", "cum s"):
            t.add_column(col, justify="left" if col in ("function", "where") else "right")
        for r in prof["top_tottime"]:
            t.add_row(r["function"], r["where"], f"{r['calls']:,}", f"{r['tottime_s']:.3f}", f"{r['share_pct']:.1f}",
                      f"{r['cumtime_s']:.3f}")
        console.print(t)
        comp = prof.get("components") or []
        if comp:
            t = Table(title="the runner's own work per call, each piece timed alone (no network, no profiler)")
            for col in ("piece", "code", "CPU µs / call"):
                t.add_column(col, justify="right" if col.startswith("CPU") else "left")
            for c in comp:
                if "us_per_call" in c:
                    t.add_row(c["piece"], c["where"], f"{c['us_per_call']:.1f}")
            total = sum(c.get("us_per_call", 0.0) for c in comp)
            t.add_row("[bold]sum[/]", "", f"[bold]{total:.1f}[/]")
            console.print(t)
            for c in comp:
                if "bytes_retained" in c:
                    console.print(f"{c['piece']}: {c['bytes_retained']:,.0f} bytes — at 5,000 calls/s that is "
                                  f"{c['bytes_retained'] * 5000 * 3600 / 2**30:.1f} GiB per hour of run")
            if runs and "runner-uvloop" in summary:
                r_us = summary["runner-uvloop"]["gen_cpu_us_per_call"]
                c_us = summary["ceiling"]["gen_cpu_us_per_call"]
                gc_us = statistics.median(r.results["runner-uvloop"].notes["gc_us_per_call"] for r in runs)
                console.print(
                    f"client CPU per call (timed windows): runner-uvloop {r_us:.0f} µs, ceiling {c_us:.0f} µs, "
                    f"{r_us - c_us:.0f} µs more; these pieces account for {total:.0f} µs of it and the cyclic GC "
                    f"for {gc_us:.0f} µs (median of the runs), {r_us - c_us - total - gc_us:.0f} µs are left for the "
                    "rest (the per-call await chain _player → drive → deliver → _one → exchange, player choices, "
                    "cache misses of a larger heap).")
        t = Table(title="simulator functions by cumulative time (includes what they call)")
        for col in ("function", "where", "calls", "cum s", "cum µs/call of the run"):
            t.add_column(col, justify="left" if col in ("function", "where") else "right")
        for r in prof["simulator_cumtime"]:
            t.add_row(r["function"], r["where"], f"{r['calls']:,}", f"{r['cumtime_s']:.3f}",
                      f"{1e6 * r['cumtime_s'] / max(1, prof_m.calls):.1f}")
        console.print(t)

    mem_aim = None
    if mem is not None:
        console.print()
        t = Table(title=f"memory per simulated player: {mem['seated']:,} players, think {mem['think_ms'][0]}–"
                        f"{mem['think_ms'][1]} ms, one runner process ({args.memory_loop})")
        t.add_column("figure")
        t.add_column("value", justify="right")
        t.add_row("RSS before the run", f"{mem['rss_before_kib'] / 1024:,.1f} MiB")
        t.add_row("RSS with every player seated and idle", f"{mem['rss_seated_kib'] / 1024:,.1f} MiB")
        t.add_row("[bold]per player[/]", f"[bold]{mem['kib_per_player']:.1f} KiB[/]")
        early = next((p for p in mem.get("progress", []) if p[0] >= 2.5), None)
        if early is not None:
            t.add_row(f"RSS {early[0]:.1f} s into seating ({early[1]:,} seated: the burst of queued admin requests)",
                      f"{early[2] / 1024:,.1f} MiB")
        t.add_row("peak RSS (VmHWM, whole run)", f"{mem['hwm_kib'] / 1024:,.1f} MiB")
        t.add_row("players seated / asked for", f"{mem['seated']:,} / {mem['players']:,}")
        t.add_row(f"time to seat them (admin create + token + authenticate; timeout_s {mem['timeout_s']:g})",
                  f"{mem['seat_s']:.1f} s")
        t.add_row("calls made by then", f"{mem['calls_at_measure']:,}")
        t.add_row("ledger then: books / txs / evidence records",
                  f"{mem['ledger_at_measure']['books']:,} / {mem['ledger_at_measure']['txs']:,} / "
                  f"{mem['ledger_at_measure']['evidence']:,}")
        t.add_row("end of run (settle + reconcile every balance)", f"{mem['wind_down_s']:.1f} s")
        t.add_row("verdict", f"{mem['verdict']} ({mem['anomalies']} anomalies, {mem['n_errors']} seat errors)")
        console.print(t)
        if mem["seated"] < mem["players"]:
            console.print(f"[red]only {mem['seated']:,} of {mem['players']:,} players were seated "
                          f"({mem['n_errors']:,} player errors: {mem['error_kinds']})[/]")
        met = mem["kib_per_player"] < AIM_KIB_PER_PLAYER
        mem_aim = {"aim_kib": AIM_KIB_PER_PLAYER, "value": mem["kib_per_player"], "met": met}
        console.print(f"aim < {AIM_KIB_PER_PLAYER:g} KiB per idle player: {'[green]MET[/]' if met else '[red]NOT MET[/]'} "
                      f"({mem['kib_per_player']:.1f} KiB)")
    if mem_trace is not None and "top_lines" in mem_trace:
        console.print(
            f"tracemalloc run (slower; seated in {mem_trace['seat_s']:.1f} s, {mem_trace['calls_at_measure']:,} calls by then): "
            f"{mem_trace['traced_kib_per_player']:.1f} KiB of Python allocations held per player "
            f"(RSS figure of that run: {mem_trace['kib_per_player']:.1f} KiB)"
            + (f"; over the next {mem_trace['hold_s']:g} s the heap grew by "
               f"{mem_trace['hold_traced_bytes_per_call']:,.0f} bytes per call made "
               f"({mem_trace['calls_after_hold'] - mem_trace['calls_at_measure']:,} calls): what the ledger keeps"
               if mem_trace.get("hold_traced_bytes_per_call") is not None else "")
        )
        t = Table(title="what the seated, idle players hold: top source lines (tracemalloc, growth since before the run)")
        for col in ("allocated at", "KiB", "blocks", "bytes / player"):
            t.add_column(col, justify="left" if col == "allocated at" else "right")
        for d in mem_trace["top_lines"][:20]:
            t.add_row(d["where"], f"{d['kib']:,.0f}", f"{d['blocks']:,}", f"{d['bytes_per_player']:,.0f}")
        console.print(t)
        t = Table(title="by file")
        for col in ("file", "KiB", "bytes / player"):
            t.add_column(col, justify="left" if col == "file" else "right")
        for d in mem_trace["top_files"]:
            t.add_row(d["where"], f"{d['kib']:,.0f}", f"{d['bytes_per_player']:,.0f}")
        console.print(t)
    return {
        "machine": machine,
        "parameters": {"duration_s": args.duration, "warmup_s": WARMUP_S, "players": args.players, "runs": args.runs,
                       "nice": args.nice, "quiet_wait_s": args.quiet_wait,
                       "memory_players": args.memory_players, "think_ms": list(args.think), "hold_s": args.hold,
                       "memory_loop": args.memory_loop, "memory_concurrency": args.memory_concurrency},
        "runs": [{"index": r.index, "order": r.order, "ratios": r.ratios,
                  "results": {k: asdict(v) for k, v in r.results.items()}} for r in runs],
        "median": summary,
        "aims": {"throughput": aims, "memory": mem_aim},
        "profile": ({**prof, "window": asdict(prof_m)} if prof is not None and prof_m is not None else None),
        "memory": mem,
        "memory_tracemalloc": mem_trace,
    }


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------


def _think(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition(",")
    a, b = int(lo), int(hi or lo)
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError("LOW,HIGH milliseconds with 0 ≤ LOW ≤ HIGH")
    return a, b


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="timed seconds per target (default: %(default)s)")
    p.add_argument("--players", type=int, default=64,
                   help="concurrent players = the ceiling's workers and connections (default: %(default)s)")
    p.add_argument("--runs", type=int, default=1, help="throughput runs; with more than one, medians are reported")
    p.add_argument("--uvloop-only", action="store_true", help="measure the runner on uvloop only (not on asyncio too)")
    p.add_argument("--profile-seconds", type=float, default=4.0, help="cProfile window of the runner (0: skip)")
    p.add_argument("--memory-players", type=int, default=10_000, help="players of the memory measurement")
    p.add_argument("--think", type=_think, default=(5000, 10000), metavar="LOW,HIGH",
                   help="think time of the memory measurement, ms (default: 5000,10000)")
    p.add_argument("--hold", type=float, default=5.0, help="idle seconds after seating, to see what calls retain")
    p.add_argument("--memory-concurrency", type=int, default=256,
                   help="the runner's --concurrency in the memory measurement (default: %(default)s, as croupier run)")
    p.add_argument("--memory-loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="event loop of the memory measurement (default: asyncio, as croupier run)")
    p.add_argument("--memory-timeout", type=float, default=120.0, metavar="S",
                   help="the scenario's timeout_s in the memory measurement (default: %(default)s; the smoke "
                        "scenario's 5 s cannot seat 10,000 players: see bench/README.md)")
    p.add_argument("--skip-memory", action="store_true", help="no memory measurement")
    p.add_argument("--skip-throughput", action="store_true",
                   help="no in-process throughput measurement (the ceiling and the Runner in this process, the profile)")
    p.add_argument("--skip-client", action="store_true",
                   help="no client-CPU comparison (a bare aiohttp loop and `croupier run`, each a process of its own)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="always repeat the memory run under tracemalloc (default: only when the aim is missed)")
    p.add_argument("--quiet-wait", type=float, default=60.0, metavar="S",
                   help="before each measurement wait up to S s for other load to stop (default: %(default)s)")
    p.add_argument("--nice", type=int, default=0,
                   help="run the bench and the wallet at this niceness, and their session's autogroup too "
                        "(negative needs root): on a shared machine, other processes then take less of the two "
                        "cores during the measurement (default: 0)")
    p.add_argument("--json", dest="json_path", help="also write every figure as JSON to this file")
    p.add_argument("--code", metavar="DIR",
                   help="measure the `croupier run` of another checkout (e.g. `git archive COMMIT | tar -x -C DIR`: "
                        "a before for an after); the wallet and the bare loop stay this checkout's")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--bare-client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pool", help=argparse.SUPPRESS)
    p.add_argument("--wallet-base", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not (args.memory_child or args.bare_client):
        if not 0.5 <= args.duration <= 240:
            p.error("--duration must be between 0.5 and 240 s (bodies are signed up front; the wallet allows 300 s)")
        if args.players < 1 or args.runs < 1 or args.memory_players < 1 or args.memory_concurrency < 1:
            p.error("--players, --runs, --memory-players and --memory-concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.memory_child:
        out = run_on(args.memory_loop, memory_child(args.wallet_base, args.memory_players, args.think, args.hold,
                                                    args.memory_concurrency, args.tracemalloc, args.memory_timeout))
        Path(args.child_out).write_text(json.dumps(out))
        return 0
    if args.bare_client:
        got = run_on("uvloop", bare_loop(f"{args.wallet_base}/wallet/bet", Path(args.pool), args.players, args.duration))
        print(BARE_JSON + json.dumps(got), flush=True)
        return 0
    from rich.console import Console

    def _terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the finally that stops the wallet

    signal.signal(signal.SIGTERM, _terminate)
    console = Console(stderr=True)
    if args.nice:
        # The wallet and the memory child are started from here afterwards: they inherit it.
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        except OSError as exc:
            console.print(f"[red]bench: cannot set nice {args.nice}: {exc.strerror}[/]")
            return 2
        # With autogroup scheduling, niceness only ranks processes within one session; the
        # session's own weight is set here (this session's processes only).
        try:
            Path("/proc/self/autogroup").write_text(str(args.nice))
        except OSError:
            pass
    machine = machine_info()
    runs: list[Run] = []
    client: list[ClientRun] = []
    prof = prof_m = mem = mem_trace = None
    with tempfile.TemporaryDirectory(prefix="croupier-bench-runner-") as tmp_s:
        tmp = Path(tmp_s)
        wallet = memory_wallet(SECRET, ADMIN_TOKEN, tmp / "wallet.log")
        try:
            wallet.start()
            console.print(f"wallet (memory store) on {wallet.base}, pid {wallet.pid}")
            if not args.skip_client:
                client = client_runs(args, wallet, tmp, console)
            if not args.skip_throughput:
                for i in range(1, args.runs + 1):
                    runs.append(one_run(i, args, wallet, console))
                if args.profile_seconds > 0:
                    console.print(f"  profiling the ceiling and the runner for {args.profile_seconds:g} s each …")
                    ceil_m, ceil_stats = run_on("uvloop", ceiling(wallet, args.players, args.duration,
                                                                  secrets.token_hex(3), args.profile_seconds))
                    prof_m, stats = run_on("uvloop", runner_phase(wallet.base, wallet.pid, args.players,
                                                                  args.duration, "runner-uvloop-profiled",
                                                                  profile_s=args.profile_seconds))
                    assert stats is not None and ceil_stats is not None
                    prof = profile_tables(stats)
                    prof["ceiling"] = {**profile_tables(ceil_stats), "window": asdict(ceil_m)}
                    prof["components"] = component_costs()
            if not args.skip_memory:
                # A fresh wallet: the throughput phase left a few hundred thousand transactions in it.
                wallet.stop()
                wallet = memory_wallet(SECRET, ADMIN_TOKEN, tmp / "wallet-memory.log")
                wallet.start()
                console.print(f"  memory: {args.memory_players:,} players, think {args.think[0]}–{args.think[1]} ms …")
                mem = spawn_memory_child(wallet.base, args, False, tmp)
                console.print(f"    {mem['kib_per_player']:.1f} KiB per player, seated in {mem['seat_s']:.1f} s")
                if args.tracemalloc or mem["kib_per_player"] >= AIM_KIB_PER_PLAYER:
                    wallet.stop()
                    wallet = memory_wallet(SECRET, ADMIN_TOKEN, tmp / "wallet-trace.log")
                    wallet.start()
                    console.print("  memory again under tracemalloc …")
                    mem_trace = spawn_memory_child(wallet.base, args, True, tmp)
        except StartError as exc:
            console.print(f"[red]bench: {exc}[/]")
            return 2
        finally:
            wallet.stop()
    summary: dict[str, Any] = {}
    if client:
        from rich.console import Console as Out

        summary["client_cpu"] = client_report(client, args, Out(width=max(150, Out().width)))
    if runs or mem is not None:
        n_runs = args.runs
        if not runs:
            args.runs = 0
        summary |= report(runs, prof, prof_m, mem, mem_trace, args, machine)
        args.runs = n_runs
    summary.setdefault("machine", machine)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
