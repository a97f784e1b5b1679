"""``kill -9`` under load loses nothing that was acknowledged and leaves nothing half-done.

A real ``croupier wallet serve`` on a SQLite file takes bets, wins and rollbacks
from 64 concurrent tasks; after ~1.5 s it is SIGKILLed with calls in flight and
restarted on the same file.  Then:

* every call answered "ok" is in the transaction log under its ``tx_id`` with the
  ``wallet_tx_id`` it was acknowledged with, and nothing else is (no phantom rows);
* every in-flight call (sent, no definitive answer) is either wholly there (its row
  with the right fields and delta) or wholly absent;
* each balance equals the opening balance + Σ delta of the log, equals what the
  acknowledged calls imply plus the in-flight calls that landed, and each row's
  ``balance_after`` continues its predecessor's (writes were serialized);
* re-sending every in-flight call with the same ``tx_id`` and fields gets an "ok"
  that settles it exactly once: a replay (same ``wallet_tx_id``, no balance change)
  for one that landed, an application for one that did not — and a second re-send
  changes nothing.

Run for ``--sync normal`` and ``--sync full``.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.drive.client import AdminClient, WalletClient
from simulator.protocol.calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from simulator.protocol.dialects.canonical import CanonicalDialect
from simulator.protocol.money import Money
from tests.support import ADMIN_TOKEN, SECRET, WalletProcess

pytestmark = pytest.mark.slow

PLAYERS = 20
TASKS = 64
LOAD_S = 1.5
OPENING = 1_000_000
CURRENCY = "EUR"


@dataclass
class Book:
    """What the provider side knows: acknowledged calls, calls without a definitive answer, refusals."""

    acked: dict[str, tuple[WalletCall, str]] = field(default_factory=dict)
    """tx_id -> (call, wallet_tx_id it was acknowledged with)."""
    in_flight: list[WalletCall] = field(default_factory=list)
    """Calls that got no definitive answer (a reset, a refused connection, a timeout, a 5xx)."""
    answered_unknown: list[tuple[WalletCall, Unknown]] = field(default_factory=list)
    """Of those, the ones that did get an HTTP answer (a 5xx or garbage): never expected here."""
    rejected: list[tuple[WalletCall, Outcome]] = field(default_factory=list)
    ok_at: list[float] = field(default_factory=list)
    """time.monotonic() of every "ok" answer (the shutdown test counts those after SIGTERM)."""
    bets: dict[str, WalletCall] = field(default_factory=dict)
    """Every bet sent, by tx_id (a rollback's effect is its bet's amount)."""

    def effect(self, call: WalletCall) -> int:
        """The balance change ``call`` makes when it is applied (each rollback here refunds a live bet)."""
        if call.op is Op.BET:
            assert call.amount is not None
            return -call.amount.minor
        if call.op is Op.WIN:
            assert call.amount is not None
            return call.amount.minor
        assert call.ref_tx_id is not None
        bet = self.bets[call.ref_tx_id]
        assert bet.amount is not None
        return bet.amount.minor


def client(base: str, session: aiohttp.ClientSession) -> tuple[WalletClient, AdminClient]:
    wallet = WalletClient(f"{base}/wallet", CanonicalDialect(SECRET), session, timeout_s=10.0)
    return wallet, AdminClient(base, ADMIN_TOKEN, session)


async def provision(wallet: WalletClient, admin: AdminClient) -> dict[str, str]:
    """Players p00..p19 with OPENING each, and a live session for each."""

    async def one(pid: str) -> tuple[str, str]:
        await admin.create_player(pid, CURRENCY, OPENING)
        auth = await wallet.send(WalletCall.authenticate(await admin.token(pid), "crash-game"))
        assert isinstance(auth, Ok) and auth.session_token, auth
        return pid, auth.session_token

    return dict(await asyncio.gather(*(one(f"p{i:02d}") for i in range(PLAYERS))))


async def player_task(i: int, wallet: WalletClient, sessions: dict[str, str], book: Book, rng: random.Random) -> None:
    """Rounds of bet then win or rollback, until a call gets no definitive answer (the crash)."""
    pid = f"p{i % PLAYERS:02d}"
    token = sessions[pid]
    n = 0
    while True:
        n += 1
        rid = f"t{i}-r{n}"
        bet = WalletCall.bet(f"{rid}-bet", pid, token, "crash-game", rid, Money.of(rng.randint(1, 100), CURRENCY))
        book.bets[bet.tx_id or ""] = bet
        if rng.random() < 0.6:
            second = WalletCall.win(f"{rid}-win", pid, token, "crash-game", rid,
                                    Money.of(rng.randint(0, 200), CURRENCY), WinReason.REGULAR, round_closed=True)
        else:
            second = WalletCall.rollback(f"{rid}-rb", bet.tx_id or "", pid, token, "crash-game", rid)
        for call in (bet, second):
            outcome = await wallet.send(call)
            if isinstance(outcome, Ok):
                assert outcome.wallet_tx_id
                book.acked[call.tx_id or ""] = (call, outcome.wallet_tx_id)
                book.ok_at.append(time.monotonic())
            elif isinstance(outcome, Rejected):
                book.rejected.append((call, outcome))
                break
            else:
                assert isinstance(outcome, Unknown)
                book.in_flight.append(call)
                if outcome.status is not None:
                    book.answered_unknown.append((call, outcome))
                return


def check_log(book: Book, log: list[dict[str, Any]], balances: dict[str, int], settled: set[str]) -> set[str]:
    """The log against the book; ``settled`` in-flight tx_ids must be present. Returns the in-flight ones found."""
    rows = [r for r in log if r["tx_id"] is not None]
    by_tx = {r["tx_id"]: r for r in rows}
    assert len(by_tx) == len(rows), "a tx_id is in the log twice"
    for tx_id, (call, wallet_tx_id) in book.acked.items():
        row = by_tx.get(tx_id)
        assert row is not None, f"acknowledged {tx_id} is missing after the crash"
        assert row["wallet_tx_id"] == wallet_tx_id, (tx_id, row, wallet_tx_id)
        assert row["delta"] == book.effect(call), row
    in_flight = {c.tx_id or "": c for c in book.in_flight}
    landed: set[str] = set()
    for tx_id, call in in_flight.items():
        row = by_tx.get(tx_id)
        if row is None:
            assert tx_id not in settled, f"re-sent {tx_id} is not in the log"
            continue
        landed.add(tx_id)
        assert row["op"] == str(call.op) and row["player_id"] == call.player_id, row
        assert row["round_id"] == call.round_id and row["ref_tx_id"] == call.ref_tx_id, row
        assert row["amount"] == (call.amount.minor if call.amount else None), row
        assert row["delta"] == book.effect(call), row
    phantoms = set(by_tx) - set(book.acked) - landed
    assert not phantoms, f"rows nobody acknowledged or sent: {sorted(phantoms)[:5]}"
    # Per player: the log explains the balance, balance_after chains, and the book agrees.
    expected: dict[str, int] = defaultdict(int)
    for call, _ in book.acked.values():
        expected[call.player_id or ""] += book.effect(call)
    for tx_id in landed:
        call = in_flight[tx_id]
        expected[call.player_id or ""] += book.effect(call)
    per_player: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in log:
        per_player[r["player_id"]].append(r)
    for pid, balance in balances.items():
        running = 0
        for r in sorted(per_player[pid], key=lambda r: int(r["wallet_tx_id"])):
            running += r["delta"]
            assert r["balance_after"] == running, (pid, r)
        assert balance == running, f"{pid}: balance {balance} but the log sums to {running}"
        assert balance == OPENING + expected[pid], f"{pid}: balance {balance}, book says {OPENING + expected[pid]}"
    return landed


async def snapshot(admin: AdminClient) -> tuple[list[dict[str, Any]], dict[str, int]]:
    log = await admin.transactions()
    rows = await asyncio.gather(*(admin.player(f"p{i:02d}") for i in range(PLAYERS)))
    return log, {r["player_id"]: r["balance"] for r in rows}


async def load_until_killed(proc: WalletProcess, wallet: WalletClient, admin: AdminClient, book: Book,
                            rng: random.Random, load_s: float) -> None:
    """TASKS players under load, then SIGKILL with calls in flight: each task ends on the call the crash cut off."""
    sessions = await provision(wallet, admin)
    tasks = [asyncio.create_task(player_task(i, wallet, sessions, book, random.Random(rng.random())))
             for i in range(TASKS)]
    await asyncio.sleep(load_s)
    assert proc.proc is not None
    assert not any(t.done() for t in tasks), "a load task ended before the crash"
    proc.proc.send_signal(signal.SIGKILL)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    proc.proc.wait(10)
    assert proc.proc.returncode == -signal.SIGKILL
    assert not book.rejected, f"load calls were refused: {book.rejected[:3]}"
    assert not book.answered_unknown, f"answers that were not definitive: {book.answered_unknown[:3]}"
    assert len(book.in_flight) == TASKS, "every task ends on the call the crash cut off"
    assert len(book.acked) > TASKS, "the load did not get going before the crash"


@pytest.mark.parametrize("sync", ["normal", "full"])
async def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path, sync: str) -> None:
    db = tmp_path / "wallet.db"
    book = Book()
    rng = random.Random(f"crash-{sync}")
    with WalletProcess(db, "--sync", sync) as first:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=TASKS * 2)) as http:
            await load_until_killed(first, *client(first.base, http), book, rng, LOAD_S)

    with WalletProcess(db, "--sync", sync) as second:
        async with aiohttp.ClientSession() as http:
            wallet, admin = client(second.base, http)
            log, balances = await snapshot(admin)
            landed = check_log(book, log, balances, settled=set())
            wtx = {r["tx_id"]: r["wallet_tx_id"] for r in log if r["tx_id"] is not None}

            # Settle every in-flight call by sending it again, exactly as it was.
            for rnd in range(2):
                before = balances
                answers = await asyncio.gather(*(wallet.send(c) for c in book.in_flight))
                for call, outcome in zip(book.in_flight, answers, strict=True):
                    assert isinstance(outcome, Ok), (call, outcome)
                    assert outcome.wallet_tx_id
                    if call.tx_id in landed or rnd == 1:
                        assert outcome.wallet_tx_id == wtx[call.tx_id], ("replay with a new wallet_tx_id", call)
                    wtx[call.tx_id] = outcome.wallet_tx_id
                log, balances = await snapshot(admin)
                assert check_log(book, log, balances, settled={c.tx_id or "" for c in book.in_flight}) == {
                    c.tx_id for c in book.in_flight
                }
                if rnd == 1:
                    assert balances == before, "a second re-send moved money"
    print(f"sync={sync}: {len(book.acked)} acknowledged, {len(book.in_flight)} in flight, "
          f"{len(landed)} of them had landed")
