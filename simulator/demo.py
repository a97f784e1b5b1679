"""``croupier demo``: the sandbox in one command, on embedded defaults.

Starts the reference wallet on a SQLite file, provisions a few players (Faker
names, several currencies), lets each play a handful of signed rounds over real
HTTP — including a duplicate delivery and a rollback, the faults a wallet is
judged by — and shows the players, the wallet's answers and its GGR report.
It is the smoke test a newcomer runs before pointing croupier at their own wallet.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from faker import Faker
from rich.console import Console
from rich.table import Table

from .calls import Ok, Rejected, WalletCall, WinReason
from .client import AdminClient, WalletClient
from .dialects.canonical import CanonicalDialect
from .money import Money, currency
from .wallet.http import WalletConfig
from .wallet.service import make_app
from .wallet.sqlite import SQLiteStore

SECRET = "croupier-demo-secret"
ADMIN = "croupier-demo-admin"
LOCALES = [("de_DE", "EUR"), ("en_GB", "GBP"), ("pt_BR", "BRL"), ("ja_JP", "JPY"), ("tr_TR", "TRY"),
           ("en_IN", "INR"), ("ko_KR", "KRW"), ("es_CL", "CLP"), ("ar_AA", "KWD"), ("en_US", "USD")]


@dataclass
class DemoPlayer:
    player_id: str
    name: str
    currency: str
    opening: int
    session_token: str = ""
    calls: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    replays_ok: int = 0
    expected: int = 0


async def _play(client: WalletClient, p: DemoPlayer, rng: random.Random, rounds: int) -> None:
    cur = currency(p.currency)
    unit = 10**cur.exponent
    for r in range(rounds):
        rid = f"{p.player_id}-r{r}"
        stake = Money(rng.choice([1, 2, 5, 10]) * unit, cur)
        bet = WalletCall.bet(f"{rid}-bet", p.player_id, p.session_token, "demo-slot", rid, stake)
        out = await client.send(bet)
        p.calls += 1
        if isinstance(out, Rejected):
            p.rejected[out.code] = p.rejected.get(out.code, 0) + 1
            continue
        p.expected -= stake.minor
        if r % 4 == 3:
            # The provider lost the bet's answer and rolls it back: the wallet must refund once.
            rb = WalletCall.rollback(f"{rid}-rb", bet.tx_id or "", p.player_id, p.session_token, "demo-slot", rid)
            first, again = await client.send(rb), await client.send(rb)
            p.calls += 2
            if isinstance(first, Ok):
                p.expected += stake.minor
            if isinstance(again, Ok) and isinstance(first, Ok) and again.wallet_tx_id == first.wallet_tx_id:
                p.replays_ok += 1
            continue
        multiplier = rng.choice([0, 0, 0, 1, 2, 5])
        win = WalletCall.win(f"{rid}-win", p.player_id, p.session_token, "demo-slot", rid,
                             Money(stake.minor * multiplier, cur), WinReason.REGULAR, round_closed=True)
        first = await client.send(win)
        again = await client.send(win)  # a duplicate delivery: must be a replay, not a second credit
        p.calls += 2
        if isinstance(first, Ok):
            p.expected += stake.minor * multiplier
        if isinstance(again, Ok) and isinstance(first, Ok) and again.wallet_tx_id == first.wallet_tx_id:
            p.replays_ok += 1


async def _demo(db: Path, players: int, seed: int) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = SQLiteStore(db)
    app = make_app(store, WalletConfig(SECRET, ADMIN))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(seed)
    Faker.seed(seed)
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession() as session:
            admin = AdminClient(base, ADMIN, session)
            wallet = WalletClient(f"{base}/wallet", CanonicalDialect(SECRET), session)
            roster: list[DemoPlayer] = []
            for i in range(players):
                locale, code = LOCALES[i % len(LOCALES)]
                name = Faker(locale).name()
                cur = currency(code)
                opening = rng.randint(50, 200) * 10**cur.exponent
                pid = f"demo-{i + 1:03d}"
                await admin.create_player(pid, code, opening)
                token = await admin.token(pid)
                auth = await wallet.send(WalletCall.authenticate(token, "demo-slot"))
                assert isinstance(auth, Ok) and auth.session_token
                roster.append(DemoPlayer(pid, name, code, opening, auth.session_token, expected=opening))
            await asyncio.gather(*(_play(wallet, p, random.Random(rng.random()), 12) for p in roster))
            finals = {p.player_id: (await admin.player(p.player_id))["balance"] for p in roster}
            ggr = await admin.ggr()
            log = await admin.transactions()
    finally:
        await runner.cleanup()
    elapsed = time.perf_counter() - started
    mismatches = [p.player_id for p in roster if finals[p.player_id] != p.expected]
    return {
        "wallet": base,
        "db": str(db),
        "elapsed_s": round(elapsed, 3),
        "transactions": len(log),
        "players": [
            {"player_id": p.player_id, "name": p.name, "currency": p.currency, "opening": p.opening,
             "balance": finals[p.player_id], "expected": p.expected, "calls": p.calls,
             "replays_answered_with_original": p.replays_ok, "rejected": p.rejected}
            for p in roster
        ],
        "ggr": ggr["lines"],
        "mismatches": mismatches,
    }


def run_demo(db: str, players: int, seed: int, json_path: str | None = None) -> int:
    console = Console()
    console.print(f"[bold]croupier demo[/]: reference wallet on SQLite ([cyan]{db}[/]), {players} players, seed {seed}")
    summary = asyncio.run(_demo(Path(db), players, seed))
    table = Table(title=f"Players after 12 rounds each ({summary['transactions']} rows in the wallet's log)")
    for col in ("player", "name", "currency", "opening", "balance", "expected", "calls", "replays ok", "rejected"):
        table.add_column(col, justify="right" if col in ("opening", "balance", "expected", "calls", "replays ok") else "left")
    for p in summary["players"]:
        cur = currency(p["currency"])
        ok = p["balance"] == p["expected"]
        table.add_row(
            p["player_id"], p["name"], p["currency"], Money(p["opening"], cur).to_decimal(),
            f"[{'green' if ok else 'red'}]{Money(p['balance'], cur).to_decimal()}[/]",
            Money(p["expected"], cur).to_decimal(), str(p["calls"]), str(p["replays_answered_with_original"]),
            ", ".join(f"{k}×{v}" for k, v in p["rejected"].items()) or "-",
        )
    console.print(table)
    ggr = Table(title="GGR by game, currency and day (minor units)")
    for col in ("game", "currency", "day", "bets", "staked", "wins", "paid", "refunds", "GGR"):
        ggr.add_column(col)
    for line in summary["ggr"]:
        ggr.add_row(line["game_id"], line["currency"], line["day"], str(line["bets"]), str(line["bet_amount"]),
                    str(line["wins"]), str(line["win_amount"]), str(line["refund_amount"]), str(line["ggr"]))
    console.print(ggr)
    if json_path:
        Path(json_path).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if summary["mismatches"]:
        console.print(f"[bold red]FAIL[/]: balances differ from the expected ones for {', '.join(summary['mismatches'])}")
        return 1
    console.print(
        f"[bold green]OK[/]: every balance equals what the provider expects; duplicates were replays, "
        f"rollbacks refunded once ({summary['elapsed_s']} s). Next: `croupier wallet serve` and point your provider at "
        "http://127.0.0.1:8080/wallet"
    )
    return 0
