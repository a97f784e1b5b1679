"""``croupier proxy`` between the mock provider and a wallet: judged live, faults on purpose, recorded, replayed.

The provider plays real rounds through the proxy, as an operator's staging would; the proxy knows no
opening balance and judges only what the traffic shows.  Wallets: the reference wallet (clean traffic
gives no anomaly), an independent correct wallet that chooses differently (tests/lenient_wallet.py),
and planted-bug wallets the proxy must catch.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulator.protocol.calls import Op, WalletCall
from simulator.provider import ProviderConfig
from simulator.provider import make_app as provider_app
from simulator.proxy import faults as proxy_faults
from simulator.proxy import recording
from simulator.proxy.faults import ProxyFault, ProxyFaults, Rule
from simulator.proxy.server import final_report
from simulator.proxy.service import Proxy, ProxyConfig, make_apps
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryStore
from simulator.wallet.service import make_app as wallet_app
from tests.support import ADMIN_TOKEN, SECRET, free_port, serve_wallet
from tests.test_provider import API_KEY, Api

SIGNED = "actions-hmac"  # a signed (HMAC) non-canonical dialect that batches a bet and its win


@dataclass
class Line:
    """wallet ← proxy ← provider, all on 127.0.0.1 in the test's loop."""

    wallet_base: str
    proxy: Proxy
    control: str
    api: Api
    admin: Any

    async def player(self, player_id: str, balance: int, currency: str = "EUR") -> str:
        await self.admin.create_player(player_id, currency, balance)
        return str(await self.admin.token(player_id))

    async def rounds(self, player_id: str, n: int, balance: int = 100_00, stakes: tuple[int, ...] = (10, 50, 100),
                     ok: tuple[str, ...] = ("settled",)) -> list[dict[str, Any]]:
        token = await self.player(player_id, balance)
        launched = await self.api.launch(player_id, token)
        out = []
        for i in range(n):
            status, data = await self.api.play(launched["session_id"], stakes[i % len(stakes)])
            out.append(data)
            if ok:
                assert status in (200, 502, 503, 504), data
        return out

    async def control_call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.api.http.request(method, f"{self.control}{path}",
                                         data=None if body is None else orjson.dumps(body)) as resp:
            raw = await resp.read()
            return resp.status, (orjson.loads(raw) if resp.content_type == "application/json" else raw.decode())


def wallet_path(dialect: str) -> str:
    return "/wallet" + ("" if dialect == "canonical" else f"/{dialect}")


@contextlib.asynccontextmanager
async def serve_line(*, dialect: str = "canonical", store: Any = None, faults: ProxyFaults | None = None,
                     record: Path | None = None, provider_timeout_s: float = 5.0,
                     wallet: web.Application | None = None) -> AsyncIterator[Line]:
    async with serve_wallet(store or MemoryStore()) if wallet is None else _served(wallet) as served:
        config = ProxyConfig(upstream=f"{served.base}{wallet_path(dialect)}", secret=SECRET, dialect=dialect,
                             faults=faults or ProxyFaults(), record=record)
        traffic, control, proxy = make_apps(config)
        tserver, cserver = TestServer(traffic, host="127.0.0.1"), TestServer(control, host="127.0.0.1")
        await tserver.start_server()
        await cserver.start_server()
        port = free_port()
        pconfig = ProviderConfig(wallet_url=f"http://127.0.0.1:{tserver.port}", secret=SECRET, api_key=API_KEY,
                                 seed=7, public_url=f"http://127.0.0.1:{port}", dialect=dialect,
                                 timeout_s=provider_timeout_s)
        pserver = TestServer(provider_app(pconfig), host="127.0.0.1", port=port)
        await pserver.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield Line(served.base, proxy, f"http://127.0.0.1:{cserver.port}", Api(f"http://127.0.0.1:{port}", http),
                           served.admin)
        finally:
            await pserver.close()
            await cserver.close()
            await tserver.close()


@contextlib.asynccontextmanager
async def _served(app: web.Application) -> AsyncIterator[Any]:
    from simulator.drive.client import AdminClient

    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as session:
            yield _Served(base, AdminClient(base, ADMIN_TOKEN, session))
    finally:
        await server.close()


@dataclass
class _Served:
    base: str
    admin: Any


def failing(report: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in report["by_severity"]["money"].items()} | \
        {k: v for k, v in report["by_severity"]["contract"].items()}


# -- clean traffic ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["canonical", SIGNED])
async def test_clean_traffic_gives_no_anomaly(dialect: str) -> None:
    async with serve_line(dialect=dialect) as line:
        await line.rounds("p-clean", 12)
        report = await final_report(line.proxy)
    assert report["verdict"] == "pass", failing(report)
    assert report["calls"]["money"] >= 24 and report["calls"]["undecoded"] == 0
    player = report["players"][0]
    assert player["sides_agree"] and player["balance_agrees"] is True
    assert player["balance_at_end"]["balance"] == player["last_balance"]
