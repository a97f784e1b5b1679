"""Concurrent calls against the served wallet over real HTTP on 127.0.0.1 (memory and SQLite stores).

Why: PROTOCOL.md rule 7 — calls for one player are serialized, no update is
lost and no balance goes negative — and rules 1 and 4 (a replay or a second
rollback changes nothing) are only worth something if they hold when the
duplicates arrive *at the same time*, which is exactly when providers retry.
Every test judges the wallet from the answers it gave and cross-checks the
admin transaction log.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulator.protocol.calls import Ok, Op, Outcome, Rejected, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.money import Money
from tests.support import STORE_KINDS, FakeClock, Served, make_store, serve_wallet

GAME = "g-conc"


@pytest.fixture(params=STORE_KINDS)
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    async with serve_wallet(make_store(request.param, tmp_path), FakeClock()) as s:
        yield s


async def new_player(served: Served, player_id: str, currency: str, balance: int) -> str:
    """Create a player and return a live session token."""
    await served.admin.create_player(player_id, currency, balance)
    token = await served.admin.token(player_id)
    out = await served.wallet.send(WalletCall.authenticate(token, GAME))
    assert isinstance(out, Ok) and out.session_token, out
    return out.session_token


async def balance_of(served: Served, player_id: str) -> int:
    return int((await served.admin.player(player_id))["balance"])


async def log_of(served: Served, player_id: str) -> list[dict[str, Any]]:
    """The player's log, checked for self-consistency: each balance_after is the running sum of deltas."""
    rows = await served.admin.transactions(player_id)
    running = 0
    for r in rows:
        running += r["delta"]
        assert r["balance_after"] == running, r
    return rows


async def test_concurrent_bets_never_overdraw(served: Served) -> None:
    """200 bets at once on a balance that covers 142 of them: exactly 142 pass, each seeing its own balance."""
    start, stake, n = 1_000, 7, 200
    sess = await new_player(served, "p-overdraft", "EUR", start)
    calls = [
        WalletCall.bet(f"od-{k}", "p-overdraft", sess, GAME, f"round-{k % 10}", Money.of(stake, "EUR"))
        for k in range(n)
    ]
    outcomes = await asyncio.gather(*(served.wallet.send(c) for c in calls))
    oks = [o for o in outcomes if isinstance(o, Ok)]
    refused = [o for o in outcomes if not isinstance(o, Ok)]
    assert all(isinstance(o, Rejected) and o.code is ErrorCode.INSUFFICIENT_FUNDS for o in refused), refused[:3]
    final = await balance_of(served, "p-overdraft")
    assert final >= 0
    assert len(oks) * stake == start - final
    assert len(oks) == start // stake, "bets were refused while the balance still covered them"
    # Serialized: every accepted bet saw a different balance, one stake below the previous one.
    assert sorted(o.balance.minor for o in oks) == [start - k * stake for k in range(len(oks), 0, -1)]
    assert len({o.wallet_tx_id for o in oks}) == len(oks)

    rows = await log_of(served, "p-overdraft")
    bets = [r for r in rows if r["op"] == Op.BET]
    assert len(bets) == len(oks) and all(r["delta"] == -stake for r in bets)
    assert {r["wallet_tx_id"] for r in bets} == {o.wallet_tx_id for o in oks}
    assert rows[-1]["balance_after"] == final
    assert sum(r["delta"] for r in rows) == final


async def test_concurrent_identical_bets_debit_once(served: Served) -> None:
    """50 copies of one bet at once (a provider's retry storm): all 200, one wallet_tx_id, one debit."""
    start, stake = 10_000, 250
    sess = await new_player(served, "p-dup", "KWD", start)
    call = WalletCall.bet("dup-1", "p-dup", sess, GAME, "round-1", Money.of(stake, "KWD"))
    exchanges = await asyncio.gather(*(served.wallet.exchange(call) for _ in range(50)))
    assert [e.status for e in exchanges] == [200] * 50, [e.response_body for e in exchanges if e.status != 200][:3]
    assert all(isinstance(e.outcome, Ok) for e in exchanges)
    assert len({e.outcome.wallet_tx_id for e in exchanges if isinstance(e.outcome, Ok)}) == 1
    assert await balance_of(served, "p-dup") == start - stake
    rows = await log_of(served, "p-dup")
    assert [r["tx_id"] for r in rows if r["tx_id"] is not None] == ["dup-1"]


async def test_concurrent_win_replays_and_rollbacks(served: Served) -> None:
    """Win retries land together and credit once; rollbacks with different tx_ids land together and refund once."""
    start, stake, prize = 5_000, 1_200, 300
    pid = "p-retry"
    sess = await new_player(served, pid, "JPY", start)
    bet = WalletCall.bet("rt-bet", pid, sess, GAME, "round-r", Money.of(stake, "JPY"))
    assert isinstance(await served.wallet.send(bet), Ok)

    win = WalletCall.win("rt-win", pid, sess, GAME, "round-r", Money.of(prize, "JPY"), WinReason.REGULAR, False)
    wins = await asyncio.gather(*(served.wallet.exchange(win) for _ in range(30)))
    assert all(e.status == 200 and isinstance(e.outcome, Ok) for e in wins), [e.response_body for e in wins][:3]
    assert len({e.outcome.wallet_tx_id for e in wins if isinstance(e.outcome, Ok)}) == 1
    assert await balance_of(served, pid) == start - stake + prize

    rollbacks = [WalletCall.rollback(f"rt-rb-{k}", "rt-bet", pid, sess, GAME, "round-r") for k in range(30)]
    outs = await asyncio.gather(*(served.wallet.exchange(c) for c in rollbacks))
    assert all(e.status == 200 and isinstance(e.outcome, Ok) for e in outs), [e.response_body for e in outs][:3]
    assert len({e.outcome.wallet_tx_id for e in outs if isinstance(e.outcome, Ok)}) == 30
    final = await balance_of(served, pid)
    assert final == start + prize, "the bet must be refunded exactly once"

    rows = await log_of(served, pid)
    rb = [r for r in rows if r["op"] == Op.ROLLBACK]
    assert len(rb) == 30 and sorted(r["delta"] for r in rb) == [0] * 29 + [stake]
    assert [r["rolled_back"] for r in rows if r["tx_id"] == "rt-bet"] == [True]
    assert [r["op"] for r in rows if r["tx_id"] == "rt-win"] == [Op.WIN]
    assert rows[-1]["balance_after"] == final


async def test_bet_racing_its_own_rollback(served: Served) -> None:
    """A bet and its rollback sent together: whichever wins the race, the balance ends where it began."""
    start = 1_000
    pid = "p-race"
    sess = await new_player(served, pid, "USDT", start)
    calls: list[WalletCall] = []
    for k in range(40):
        bet = WalletCall.bet(f"race-{k}", pid, sess, GAME, f"rr-{k}", Money.of(10, "USDT"))
        rb = WalletCall.rollback(f"race-rb-{k}", f"race-{k}", pid, sess, GAME, f"rr-{k}")
        calls += [bet, rb] if k % 2 else [rb, bet]
    outs = await asyncio.gather(*(served.wallet.send(c) for c in calls))
    by_tx = {c.tx_id: o for c, o in zip(calls, outs, strict=True)}
    for k in range(40):
        bet_out, rb_out = by_tx[f"race-{k}"], by_tx[f"race-rb-{k}"]
        assert isinstance(rb_out, Ok), rb_out
        assert isinstance(bet_out, Ok) or (
            isinstance(bet_out, Rejected) and bet_out.code is ErrorCode.TX_ROLLED_BACK
        ), bet_out
    assert await balance_of(served, pid) == start
    rows = await log_of(served, pid)
    assert sum(r["delta"] for r in rows) == start


@dataclass
class Sent:
    call: WalletCall
    outcome: Outcome


def player_script(rng: random.Random, pid: str, sess: str, currency: str) -> list[WalletCall]:
    """A burst of one player's calls: bets, wins, rollbacks and duplicated (retried) calls, in a shuffled order."""
    calls: list[WalletCall] = []
    for k in range(rng.randint(6, 14)):
        rnd = f"{pid}-r{k}"
        bet = WalletCall.bet(f"{pid}-b{k}", pid, sess, GAME, rnd, Money.of(rng.randint(0, 400), currency))
        calls.append(bet)
        if rng.random() < 0.6:
            reason = rng.choice([WinReason.REGULAR, WinReason.BONUS, WinReason.FREE_SPIN])
            calls.append(WalletCall.win(f"{pid}-w{k}", pid, sess, GAME, rnd, Money.of(rng.randint(0, 600), currency),
                                        reason, False))
        for j in range(rng.choice([0, 0, 1, 2])):
            calls.append(WalletCall.rollback(f"{pid}-rb{k}-{j}", bet.tx_id or "", pid, sess, GAME, rnd))
    calls += [rng.choice(calls) for _ in range(len(calls) // 3)]  # retries: the very same calls again
    rng.shuffle(calls)
    return calls


async def test_many_players_mixed_calls(served: Served) -> None:
    """30 players, each firing a shuffled burst at once: every balance is explained by the answers it got."""
    rng = random.Random(20240607)
    currencies = ["EUR", "JPY", "KWD", "BTC", "USDT"]
    players: dict[str, tuple[str, int]] = {}
    scripts: list[WalletCall] = []
    for n in range(30):
        pid, cur, start = f"mix-{n}", currencies[n % len(currencies)], rng.randint(0, 3_000)
        sess = await new_player(served, pid, cur, start)
        players[pid] = (cur, start)
        scripts += player_script(rng, pid, sess, cur)
    rng.shuffle(scripts)
    outcomes = await asyncio.gather(*(served.wallet.send(c) for c in scripts))
    sent = [Sent(c, o) for c, o in zip(scripts, outcomes, strict=True)]

    allowed = {ErrorCode.INSUFFICIENT_FUNDS, ErrorCode.ROUND_NOT_FOUND, ErrorCode.TX_ROLLED_BACK}
    wtx_by_tx: dict[str, set[str | None]] = defaultdict(set)
    for s in sent:
        assert isinstance(s.outcome, Ok) or (isinstance(s.outcome, Rejected) and s.outcome.code in allowed), s
        if isinstance(s.outcome, Ok):
            assert s.outcome.balance.minor >= 0
            assert s.call.tx_id is not None
            wtx_by_tx[s.call.tx_id].add(s.outcome.wallet_tx_id)
    assert all(len(w) == 1 for w in wtx_by_tx.values()), "a retried call got two wallet_tx_ids"

    # What the answers say happened: each accepted tx_id counted once; a bet is refunded once if any rollback of it
    # was accepted after it was (a rollback that overtook its bet leaves a tombstone and the bet is refused).
    accepted = {s.call.tx_id: s.call for s in sent if isinstance(s.outcome, Ok)}
    expected = {pid: start for pid, (_, start) in players.items()}
    refunded: set[str] = set()
    for call in accepted.values():
        assert call.player_id is not None
        if call.op is Op.BET and call.amount is not None:
            expected[call.player_id] -= call.amount.minor
        elif call.op is Op.WIN and call.amount is not None:
            expected[call.player_id] += call.amount.minor
        elif call.op is Op.ROLLBACK and call.ref_tx_id in accepted and call.ref_tx_id not in refunded:
            bet = accepted[call.ref_tx_id]
            assert bet.amount is not None
            refunded.add(call.ref_tx_id)
            expected[call.player_id] += bet.amount.minor

    for pid in players:
        got = await balance_of(served, pid)
        assert got == expected[pid], f"{pid}: wallet {got}, answers say {expected[pid]}"
        rows = await log_of(served, pid)
        assert sum(r["delta"] for r in rows) == got
        logged = {r["tx_id"] for r in rows if r["tx_id"] is not None}
        assert logged == {t for t, c in accepted.items() if c.player_id == pid}
