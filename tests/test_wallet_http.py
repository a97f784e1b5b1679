"""The wallet state machine again, over HTTP against the served app.

Why again: the in-process machine proves the store's decisions; this one proves
that they survive the wire — signing, decoding, status codes, the JSON bodies
and the admin API — for the same rules and the same model (the machine in
``test_wallet_machine.py`` with an HTTP :class:`Driver`, nothing copied).

Hypothesis has no async rules, so each machine instance owns an event loop
running in a background thread; the server (``serve_wallet``) and its clients
live on that loop and the rules submit coroutines to it.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from simulator.drive.client import AdminError
from simulator.protocol.calls import Op, WalletCall
from simulator.protocol.codes import ErrorCode, http_status
from tests.support import FakeClock, make_store, serve_wallet, skip_without_pg
from tests.test_wallet_machine import Driver, PlayerView, Sent, WalletMachine

T = TypeVar("T")
TIMEOUT_S = 30.0


OK_FIELDS = {
    Op.AUTHENTICATE: {"status", "player_id", "currency", "balance", "session_token"},
    Op.BALANCE: {"status", "balance", "currency"},
    Op.BET: {"status", "balance", "currency", "wallet_tx_id"},
    Op.WIN: {"status", "balance", "currency", "wallet_tx_id"},
    Op.ROLLBACK: {"status", "balance", "currency", "wallet_tx_id"},
}


def check_wire(call: WalletCall, status: int, body: bytes) -> None:
    """The answer's JSON has exactly PROTOCOL.md's fields, with integer money (never a float or a string)."""
    data = orjson.loads(body)
    assert isinstance(data, dict), body
    if status == 200:
        assert data["status"] == "ok" and set(data) == OK_FIELDS[call.op], f"{call.op}: {data}"
        assert type(data["balance"]) is int and data["balance"] >= 0, data
    else:
        assert set(data) == {"status", "code", "message"} and data["status"] == "error", data
        assert http_status(ErrorCode(data["code"])) == status, f"{data['code']} with HTTP {status}"


class HttpDriver(Driver):
    """The wallet served on 127.0.0.1, reached through ``WalletClient`` and ``AdminClient``."""

    def __init__(self, kind: str, clock: FakeClock) -> None:
        super().__init__(clock)
        self.tmp = tempfile.TemporaryDirectory(prefix="croupier-http-machine-")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="wallet-machine-loop", daemon=True)
        self.thread.start()
        self.cm = serve_wallet(make_store(kind, Path(self.tmp.name)), clock)
        try:
            self.served = self.run(self.cm.__aenter__())
        except BaseException:
            self._stop()
            raise

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT_S)

    def create_player(self, player_id: str, currency: str, balance: int) -> None:
        got = self.run(self.served.admin.create_player(player_id, currency, balance))
        assert got == {"player_id": player_id, "currency": currency, "balance": balance, "blocked": False}, got

    def deposit(self, player_id: str, amount: int) -> int:
        return int(self.run(self.served.admin.deposit(player_id, amount))["balance"])

    def set_blocked(self, player_id: str, blocked: bool) -> None:
        got = self.run(self.served.admin.block(player_id, blocked))
        assert got["blocked"] is blocked, got

    def issue_token(self, player_id: str, ttl_s: int) -> str:
        return self.run(self.served.admin.token(player_id, ttl_s))

    def send(self, call: WalletCall) -> Sent:
        ex = self.run(self.served.wallet.exchange(call))
        assert ex.status is not None, ex.outcome
        check_wire(call, ex.status, ex.response_body)
        return Sent(ex.outcome, ex.status)

    def players(self, player_ids: list[str]) -> dict[str, PlayerView | None]:
        async def one(pid: str) -> PlayerView | None:
            try:
                row = await self.served.admin.player(pid)
            except AdminError as exc:
                if exc.status == 404:
                    return None
                raise
            return PlayerView(row["currency"], row["balance"], row["blocked"])

        async def all_of() -> list[PlayerView | None]:
            return list(await asyncio.gather(*(one(pid) for pid in player_ids)))

        return dict(zip(player_ids, self.run(all_of()), strict=True))

    def transactions(self, player_id: str) -> list[dict[str, Any]]:
        return self.run(self.served.admin.transactions(player_id))

    def close(self) -> None:
        try:
            self.run(self.cm.__aexit__(None, None, None))
        finally:
            self._stop()

    def _stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT_S)
        self.loop.close()
        self.tmp.cleanup()


class HttpMachine(WalletMachine):
    """Every rule of :class:`WalletMachine`; ``check`` also asserts the HTTP status of each answer."""

    kind = "memory"

    def make_driver(self, clock: FakeClock) -> Driver:
        return HttpDriver(self.kind, clock)


class HttpMemoryMachine(HttpMachine):
    kind = "memory"


class HttpSQLiteMachine(HttpMachine):
    kind = "sqlite"


class HttpPostgresMachine(HttpMachine):
    kind = "postgres"


@pytest.mark.parametrize("machine", [HttpMemoryMachine, HttpSQLiteMachine, HttpPostgresMachine],
                         ids=["memory", "sqlite", "postgres"])
def test_served_wallet_against_model(machine: type[WalletMachine]) -> None:
    if machine.kind == "postgres":
        skip_without_pg()
    run_state_machine_as_test(machine, settings=settings())
