"""Deliberately broken wallets, served over real HTTP: the reference wallet with exactly one bug each.

Each bug is a small subclass of :class:`MemoryStore` (or of the canonical dialect), so
everything else — signatures, decoding, the admin API the runner provisions players
with — is the reference wallet's.  ``croupier run`` against any of them must fail
with the anomaly named in :data:`BROKEN`.

Serve one by hand (for a reproduction with the real CLI)::

    python -m tests.broken_wallets forgets_tx_ids --port 8099
    croupier run duplicates --wallet http://127.0.0.1:8099/wallet \
        --secret test-secret --admin-token test-admin
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulator.judge.ledger import Anomaly
from simulator.protocol.calls import MONEY_OPS, Ok, Op, Outcome, Rejected, WalletCall
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import HttpResponse
from simulator.protocol.dialects.canonical import CanonicalDialect
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryRepo, MemoryStore
from simulator.wallet.records import PlayerRow
from simulator.wallet.service import make_app
from tests.support import ADMIN_TOKEN, SECRET, free_port


class ForgetsTxIds(MemoryStore):
    """(a) Forgets every tx_id it has seen: a replayed bet or win is applied again."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.tx_id:
            self.repo.by_tx_id.pop(call.tx_id, None)
        return await super().execute(call, now)


class _NoTombstoneRepo(MemoryRepo):
    def is_tombstoned(self, tx_id: str) -> bool:
        return False


class IgnoresTombstones(MemoryStore):
    """(b) Acknowledges a rollback that arrives before its bet, then accepts the bet anyway."""

    def __init__(self) -> None:
        super().__init__()
        self.repo = _NoTombstoneRepo()


class _StaleRepo(MemoryRepo):
    """Returns the balance read before the store yielded to the event loop."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: dict[str, PlayerRow] = {}

    def player(self, player_id: str) -> PlayerRow | None:
        return self.stale.get(player_id) or super().player(player_id)


class RacyBalance(MemoryStore):
    """(c) A lost update: reads the balance, awaits (1 ms), then writes what it computed from it.

    The tx_id lookup stays current, so replays are still recognised: only two different
    calls of one player in flight together (two tables open, a timed-out call still
    running when its rollback arrives) can overwrite each other's balance."""

    storage_latency_s = 0.001

    def __init__(self) -> None:
        super().__init__()
        self.repo: _StaleRepo = _StaleRepo()

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op not in MONEY_OPS or call.player_id is None:
            return await super().execute(call, now)
        read = self.repo.players.get(call.player_id)
        await asyncio.sleep(self.storage_latency_s)
        if read is not None:
            self.repo.stale[call.player_id] = read
        try:
            return await super().execute(call, now)  # runs synchronously: no other call interleaves
        finally:
            self.repo.stale.pop(call.player_id, None)


class SecondRollbackRefunds(MemoryStore):
    """(d) A second rollback of the same bet (a new tx_id) refunds it again."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        repo = self.repo
        if call.op is Op.ROLLBACK and call.ref_tx_id in repo.by_tx_id and call.tx_id not in repo.by_tx_id:
            i = repo.by_tx_id[call.ref_tx_id]
            repo.txs[i] = dataclasses.replace(repo.txs[i], rolled_back=False)
        return await super().execute(call, now)


class RefusesLateWins(MemoryStore):
    """(e) Refuses a win whose session has expired (the protocol says wins need no live session)."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op is Op.WIN and call.session_token:
            session = self.repo.session(call.session_token)
            if session is not None and now >= session.expires_at:
                return Rejected(ErrorCode.SESSION_EXPIRED, "session expired")
        return await super().execute(call, now)


class RepaysReplayedWins(MemoryStore):
    """(g) Knows a replayed bet but not a replayed win, and never closes a round: a win sent
    again — alone, or inside a bet+win batch sent again (``actions-hmac``) — is paid again."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op is Op.WIN and call.tx_id:
            self.repo.by_tx_id.pop(call.tx_id, None)
            call = dataclasses.replace(call, round_closed=False)
        return await super().execute(call, now)


class FloatMoneyDialect(CanonicalDialect):
    """(f) Answers bets and wins with the balance in major units as a JSON float (12.34, not 1234)."""

    def encode_response(self, call: WalletCall | None, outcome: Outcome) -> HttpResponse:
        resp = super().encode_response(call, outcome)
        if call is not None and call.op in (Op.BET, Op.WIN) and isinstance(outcome, Ok):
            body: dict[str, Any] = orjson.loads(resp.body)
            body["balance"] = body["balance"] / 100
            return dataclasses.replace(resp, body=orjson.dumps(body))
        return resp


class GarbledRollbackDialect(CanonicalDialect):
    """(h) Applies rollbacks but answers each with a 200 whose body is not JSON (a proxy's error page):
    the provider can never read it, so every rollback stays in doubt however often it is sent."""

    GARBAGE = b"<html><body>502 upstream timed out</body></html>"

    def encode_response(self, call: WalletCall | None, outcome: Outcome) -> HttpResponse:
        if call is not None and call.op is Op.ROLLBACK and isinstance(outcome, Ok):
            return HttpResponse(200, {"Content-Type": "text/html"}, self.GARBAGE)
        return super().encode_response(call, outcome)


@dataclass(frozen=True)
class Broken:
    """One broken wallet: how to build it, and the anomaly kinds any of which proves the bug."""

    store: Callable[[], MemoryStore]
    anomalies: frozenset[Anomaly]
    dialect: Callable[[str], CanonicalDialect] | None = None


BROKEN: dict[str, Broken] = {
    "forgets_tx_ids": Broken(ForgetsTxIds, frozenset({Anomaly.DOUBLE_APPLY})),
    "ignores_tombstones": Broken(IgnoresTombstones, frozenset({Anomaly.ACCEPTED_AFTER_ROLLBACK})),
    # A lost update is seen as whatever first exposes the overwritten balance: the final
    # read (lost_update), the next solo answer (balance_mismatch) or a replay's answer.
    "racy_balance": Broken(RacyBalance, frozenset({Anomaly.LOST_UPDATE, Anomaly.BALANCE_MISMATCH,
                                                   Anomaly.DOUBLE_APPLY})),
    "second_rollback_refunds": Broken(SecondRollbackRefunds, frozenset({Anomaly.ROLLBACK_APPLIED_TWICE})),
    "refuses_late_wins": Broken(RefusesLateWins, frozenset({Anomaly.REFUSED_VALID_CALL})),
    "float_money": Broken(MemoryStore, frozenset({Anomaly.UNDECODABLE_ANSWER}), FloatMoneyDialect),
    "repays_replayed_wins": Broken(RepaysReplayedWins, frozenset({Anomaly.DOUBLE_APPLY})),
    "garbles_rollbacks": Broken(MemoryStore, frozenset({Anomaly.UNDECODABLE_ANSWER}), GarbledRollbackDialect),
}


def make_broken_app(name: str, secret: str = SECRET, admin_token: str = ADMIN_TOKEN) -> web.Application:
    """The reference wallet app with the bug ``name`` (a key of :data:`BROKEN`)."""
    spec = BROKEN[name]
    dialect = spec.dialect(secret) if spec.dialect else None
    return make_app(spec.store(), WalletConfig(secret, admin_token), dialect)


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 in this event loop; yields its base URL (``http://127.0.0.1:PORT``)."""
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@contextlib.contextmanager
def serve_in_thread(app: web.Application) -> Iterator[str]:
    """Serve ``app`` from a thread with its own event loop (for a CLI subprocess to call)."""
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = web.AppRunner(app, access_log=None)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    thread = threading.Thread(target=loop.run_forever, name="broken-wallet", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def main() -> None:
    """Serve one broken wallet until interrupted."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("bug", choices=sorted(BROKEN))
    p.add_argument("--port", type=int, default=8099)
    args = p.parse_args()
    web.run_app(make_broken_app(args.bug), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
