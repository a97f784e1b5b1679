"""How the checker reaches a wallet: a synchronous bridge to aiohttp, signing modes, players.

Hypothesis rules are synchronous, so every HTTP exchange runs on an event loop
that lives in a helper thread for the whole check (:class:`Bridge`); a rule
submits a coroutine and waits for its result.  Two calls "in flight at once"
are two coroutines gathered on that loop.

Players come from the reference wallet's admin API (fresh players for every
example) or from a CSV of test accounts (``player_id,token,currency``), which
are authenticated once and reused; see docs/check.md for what the second mode
cannot check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp

from ..drive.client import AdminClient, AdminError, WalletClient
from ..drive.tls import ClientTLS, TLSError
from ..protocol import dialects
from ..protocol.calls import Ok, Op, Outcome, Unknown, WalletCall
from ..protocol.dialects import Dialect, HttpRequest, HttpResponse
from ..run.accounts import RunError, TestAccount, preflight
from .wire import CURRENCY_CODES, Wire, wire_of, without_signature

T = TypeVar("T")

SIGN_MODES = ("ok", "wrong-secret", "stale", "future", "unsigned")
"""How a call is signed: correctly, with another secret, an hour in the past or future, or not at all."""
STALE_S = 3600
"""Far outside the 300 s window PROTOCOL.md allows, so clock skew between us and the wallet cannot matter."""


class CheckError(RuntimeError):
    """The check cannot run (unreachable wallet, refused provisioning, bad accounts): exit code 2."""


class Bridge:
    """An event loop in a helper thread; :meth:`run` waits for a coroutine from synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, name="croupier-check-bridge", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(self._tracked(coro), self.loop).result(timeout)

    async def _tracked(self, coro: Coroutine[Any, Any, T]) -> T:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            return await coro
        finally:
            self._tasks.discard(task)

    def cancel_pending(self, timeout: float = 5.0) -> None:
        """Cancel what a caller stopped waiting for (Ctrl-C lands in :meth:`run`'s wait, not in the coroutine) and
        let it end, before the session under it closes: otherwise it fails later on a closed connector, and asyncio
        prints that failure with a traceback on the way out."""
        async def drain() -> None:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._tasks and not self.loop.is_closed():
            with contextlib.suppress(Exception):  # best effort, on the way out
                asyncio.run_coroutine_threadsafe(drain(), self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.cancel_pending()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Target:
    """The wallet under test and how to provision its players."""

    wallet_url: str
    secret: str
    dialect: str = "canonical"
    admin_url: str | None = None
    admin_token: str | None = None
    accounts: list[TestAccount] | None = None
    timeout_s: float = 10.0
    tls: ClientTLS = field(default_factory=ClientTLS)
    """How an ``https://`` wallet is verified and which client certificate is shown (``--ca-bundle``...)."""

    @property
    def admin(self) -> bool:
        return self.accounts is None

    def describe(self) -> dict[str, Any]:
        described = {"wallet": self.wallet_url, "dialect": self.dialect,
                     "players": "admin API" if self.admin else f"{len(self.accounts or [])} test accounts"}
        if self.tls.insecure or self.wallet_url.lower().startswith("https:"):
            described["tls"] = self.tls.describe()  # how the wallet's certificate was checked (or that it was not)
        return described


@dataclass(frozen=True)
class Sent:
    """One request and what came back."""

    outcome: Outcome
    status: int | None
    request_body: bytes
    response_body: bytes
    sign: str = "ok"
    method: str = "POST"
    path: str = ""
    """The request's method and path (the wallet's base URL left out): a GET wire's call is in its query."""


class Connection:
    """Clients for one wallet, shared by every example of a check (the wallet's state is not)."""

    def __init__(self, target: Target, bridge: Bridge | None = None) -> None:
        self.target = target
        self.dialect: Dialect = dialects.get(target.dialect, target.secret)
        self.wrong: Dialect = dialects.get(target.dialect, target.secret + "-not-the-secret")
        """The same dialect keyed with a wrong secret (wrong signatures; what an unsigned call leaves out)."""
        self._wire: Wire | None = None
        self.bridge: Bridge | None = bridge
        """Given: a bridge the caller owns (a test may serve its wallet on the same loop); else our own."""
        self.own_bridge = bridge is None
        self.session: aiohttp.ClientSession | None = None
        self.clients: dict[str, WalletClient] = {}
        self.admin: AdminClient | None = None
        self.account_sessions: list[str] = []
        """Test-accounts mode: the session of each account, authenticated once per check (or given by the
        players file, where the operator makes the sessions)."""
        self.account_refs: list[str | None] = []
        """Test-accounts mode: each account's second session id (the players file's ``session_ref``)."""
        self.clocks: dict[str, Any] = {"ok": time.time, "wrong-secret": time.time,
                                       "stale": lambda: time.time() - STALE_S, "future": lambda: time.time() + STALE_S}
        self.endpoints: dict[str, str] = {}
        """Optional admin endpoints probed before the search: name → "" (there) or why it is not used."""
        self._launch: dict[str, tuple[str, int]] = {}
        """launch token → (player_id, session lifetime) for the tokens handed out by the admin API"""
        self.sessions_of: dict[str, str] = {}
        """player_id → its newest session of a normal lifetime (balances read by signed calls without GET)"""

    # -- life cycle -------------------------------------------------------------------
    def open(self) -> Self:
        t = self.target
        if t.accounts is None and not (t.admin_url and t.admin_token):
            raise CheckError("players come from the admin API (--admin-url, --admin-token) or --players FILE")
        if self.bridge is None:
            self.bridge = Bridge()
        try:
            self.bridge.run(self._open(), 60)
        except RunError as exc:
            self.close()
            raise CheckError(str(exc)) from None
        except CheckError:
            self.close()
            raise
        return self

    async def _open(self) -> None:
        t = self.target
        try:
            ctx = t.tls.context()
        except TLSError as exc:
            raise CheckError(str(exc)) from None
        await preflight(t.wallet_url, tls=t.tls, ctx=ctx)
        connector = aiohttp.TCPConnector(limit=64, limit_per_host=0, ssl=ctx)
        self.session = aiohttp.ClientSession(connector=connector)
        self.clients = {
            "ok": WalletClient(t.wallet_url, self.dialect, self.session, t.timeout_s),
            "wrong-secret": WalletClient(t.wallet_url, self.wrong, self.session, t.timeout_s),
            "stale": WalletClient(t.wallet_url, self.dialect, self.session, t.timeout_s,
                                  clock=lambda: time.time() - STALE_S),
            "future": WalletClient(t.wallet_url, self.dialect, self.session, t.timeout_s,
                                   clock=lambda: time.time() + STALE_S),
        }
        if t.accounts is None:
            assert t.admin_url and t.admin_token
            self.admin = AdminClient(t.admin_url, t.admin_token, self.session)
            await self._probe(self.admin)
            return
        operator = dialects.semantics_of(self.dialect).sessions == "operator"
        for acc in t.accounts:
            given: str | None = getattr(acc, "session_token", None) or None
            self.account_refs.append(getattr(acc, "session_ref", None) or None)
            if operator:
                # No authenticate: the players file gives each session (or its token column is the session).
                self.account_sessions.append(given or acc.token)
                continue
            call = WalletCall(Op.AUTHENTICATE, token=acc.token, game_id="croupier-check", currency_hint=acc.currency,
                              session_ref=self.account_refs[-1])
            ex = await self.clients["ok"].exchange(call)
            out = ex.outcome
            session = out.session_token if isinstance(out, Ok) else None
            if isinstance(out, Ok) and "session_token" in out.missing:
                session = given or acc.token  # an answer without a session: the launch token is the session
            if not isinstance(out, Ok) or not session:
                raise CheckError(f"test account {acc.player_id}: authenticate answered {_short(ex)}")
            player = acc.player_id if "player_id" in out.missing else out.player_id
            cur = acc.currency if "balance" in out.missing else out.balance.currency.code
            if player != acc.player_id or cur != acc.currency:
                raise CheckError(f"test account {acc.player_id} ({acc.currency}): authenticate answered player "
                                 f"{player!r} in {cur}")
            self.account_sessions.append(session)

    async def _probe(self, admin: AdminClient) -> None:
        """Which admin endpoints the wallet has, asked once before the search (never during it: what the
        machine may draw must not change mid-search).

        ``POST /admin/players`` and ``POST /admin/tokens`` are needed (fresh players and their launch tokens;
        without them use ``--players FILE``); reading a player, deposits, block and unblock are optional: a
        missing one (404, 405, 501) or one that fails is skipped, and the report says so."""
        url = self.target.admin_url
        pid = f"ckprobe-{secrets.token_hex(4)}"
        try:
            await admin.create_player(pid, "EUR", 0)
        except AdminError as exc:
            if exc.status in (401, 403):
                raise CheckError(f"the admin API at {url} refused the admin token: POST /admin/players answered "
                                 f"HTTP {exc.status} {_body(exc)}; check --admin-token (or CROUPIER_ADMIN_TOKEN)"
                                 ) from None
            raise CheckError(f"the admin API at {url} cannot make players: POST /admin/players answered HTTP "
                             f"{exc.status} {_body(exc)}; fresh players come from it: check --admin-url and "
                             "--admin-token, or give --players FILE for a wallet without the admin API") from None
        except aiohttp.ClientError as exc:
            raise CheckError(f"admin API unreachable at {url}: {exc}") from None
        try:
            await admin.token(pid, NORMAL_TTL_PROBE)
        except AdminError as exc:
            raise CheckError(f"the admin API at {url} cannot issue launch tokens: POST /admin/tokens answered HTTP "
                             f"{exc.status} {_body(exc)}; check --admin-url, or give --players FILE") from None

        async def optional(name: str, what: str, coro: Coroutine[Any, Any, Any]) -> bool:
            try:
                await coro
            except AdminError as exc:
                self.endpoints[name] = (f"{what} answered {exc.status}" + (" (not there)" if exc.status in MISSING
                                                                           else f": {_body(exc)}"))
                return False
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
                self.endpoints[name] = f"{what} failed: {type(exc).__name__}: {exc}"
                return False
            self.endpoints[name] = ""
            return True

        await optional("player", "GET /admin/players/{id}", self._read_probe(admin, pid))
        await optional("deposit", "POST /admin/players/{id}/deposit", admin.deposit(pid, 1))
        if await optional("block", "POST /admin/players/{id}/block", admin.block(pid, True)):
            await optional("unblock", "POST /admin/players/{id}/unblock", admin.block(pid, False))
        else:
            self.endpoints["unblock"] = "no block endpoint"

    async def _read_probe(self, admin: AdminClient, pid: str) -> None:
        await self._admin_balance(admin, "GET", f"/admin/players/{quote(pid, safe='')}")

    async def _admin_balance(self, admin: AdminClient, method: str, path: str, body: Any = None) -> int:
        """The ``balance`` of an admin answer, read exactly (a balance past 2^64 is a JSON integer too; orjson
        would read it as a float)."""
        assert self.session is not None
        async with self.session.request(
            method, f"{admin.base_url.rstrip('/')}{path}", data=None if body is None else json.dumps(body),
            headers={"Authorization": f"Bearer {admin.admin_token}", "Content-Type": "application/json"},
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise AdminError(resp.status, raw.decode("utf-8", "replace")[:300])
        data = json.loads(raw)
        balance = data["balance"] if isinstance(data, dict) else None
        if type(balance) is not int:
            raise ValueError(f"{method} {path} answered no integer balance: {raw[:200]!r}")
        return balance

    def has(self, endpoint: str) -> bool:
        """Whether the optional admin endpoint ``endpoint`` (player, deposit, block, unblock) is there."""
        return self.admin is not None and self.endpoints.get(endpoint) == ""

    def close(self) -> None:
        if self.bridge is None:
            return
        self.bridge.cancel_pending()
        if self.session is not None:
            with contextlib.suppress(Exception):  # closing is best effort
                self.bridge.run(self.session.close(), 10)
        if self.own_bridge:
            self.bridge.close()
        self.bridge = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def wire(self) -> Wire:
        """What the dialect's wire can express (currencies, amounts, signature modes), probed once."""
        if self._wire is None:
            accounts = self.target.accounts or []
            codes = (*CURRENCY_CODES, *dict.fromkeys(a.currency for a in accounts if a.currency not in CURRENCY_CODES))
            wire = wire_of(self.dialect, self.wrong, codes)
            for acc in accounts:
                if acc.currency not in wire.limit:
                    raise CheckError(f"test account {acc.player_id}: the {self.dialect.name} dialect cannot carry "
                                     f"{acc.currency} amounts exactly")
            self._wire = wire
        return self._wire

    # -- protocol calls ---------------------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.bridge is not None, "connection not open"
        return self.bridge.run(coro, self.target.timeout_s * 3 + 30)

    async def _send(self, call: WalletCall, sign: str) -> Sent:
        if sign == "unsigned":
            return await self._unsigned(call)
        dialect = self.wrong if sign == "wrong-secret" else self.dialect
        return await self._post(dialect.encode_call(call, self.clocks[sign]()), call, sign)

    async def _unsigned(self, call: WalletCall) -> Sent:
        """The dialect's request without what carries its signature (it changes with the secret)."""
        now = time.time()
        req = without_signature(self.dialect.encode_call(call, now), self.wrong.encode_call(call, now))
        if req is None:
            raise CheckError(f"the {self.dialect.name} dialect cannot send a request without its signature")
        return await self._post(req, call, "unsigned")

    async def _post(self, req: HttpRequest, call: WalletCall, sign: str) -> Sent:
        assert self.session is not None
        url = f"{self.target.wallet_url.rstrip('/')}/{req.path}"
        try:
            async with self.session.request(req.method, url, data=req.body, headers=req.headers,
                                            timeout=aiohttp.ClientTimeout(total=self.target.timeout_s)) as resp:
                body = await resp.read()
                status, headers = resp.status, dict(resp.headers)
        except TimeoutError:
            return Sent(Unknown("timeout"), None, req.body, b"", sign, req.method, req.path)
        except aiohttp.ClientError as exc:
            return Sent(Unknown(f"{type(exc).__name__}: {exc}"), None, req.body, b"", sign, req.method, req.path)
        return Sent(self.dialect.decode_response(call, HttpResponse(status, headers, body)), status, req.body, body,
                    sign, req.method, req.path)

    def send(self, call: WalletCall, sign: str = "ok") -> Sent:
        sent = self.run(self._send(call, sign))
        out = sent.outcome
        if call.op is Op.AUTHENTICATE and isinstance(out, Ok):
            session = call.token if "session_token" in out.missing else out.session_token
            launch = self._launch.get(call.token or "")
            if session and launch is not None and launch[1] > 0:
                self.sessions_of[launch[0]] = session
        return sent

    def send_all(self, calls: list[WalletCall]) -> list[Sent]:
        """Every call in flight at once (correctly signed), answers in the order given."""
        async def all_of() -> list[Sent]:
            return list(await asyncio.gather(*(self._send(c, "ok") for c in calls)))

        return self.run(all_of())

    def raw(self, req: HttpRequest, call: WalletCall) -> Sent:
        """A hand-made request (method, path, headers, body: a malformed variant of ``call`` the dialect
        encoded and signed), sent as it is; its answer read as the answer to ``call``."""
        return self.run(self._post(req, call, "ok"))

    # -- admin API (reference-compatible wallets) -------------------------------------
    def _admin(self) -> AdminClient:
        if self.admin is None:
            raise CheckError("this step needs the admin API")
        return self.admin

    def admin_call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return self.run(coro)
        except AdminError as exc:
            raise CheckError(f"the admin API answered HTTP {exc.status} {_body(exc)}") from None
        except aiohttp.ClientError as exc:
            raise CheckError(f"admin API unreachable: {exc}") from None
        except ValueError as exc:
            raise CheckError(f"admin API: {exc}") from None

    def create_player(self, player_id: str, currency: str, balance: int) -> None:
        self.admin_call(self._admin().create_player(player_id, currency, balance))

    def launch_token(self, player_id: str, ttl_s: int) -> str:
        token = self.admin_call(self._admin().token(player_id, ttl_s))
        self._launch[token] = (player_id, ttl_s)
        return token

    def block(self, player_id: str, blocked: bool) -> None:
        if not self.has("block" if blocked else "unblock"):
            raise CheckError(f"this step needs {'block' if blocked else 'unblock'}: "
                             f"{self.endpoints.get('block' if blocked else 'unblock', 'no admin API')}")
        self.admin_call(self._admin().block(player_id, blocked))

    def deposit(self, player_id: str, amount: int) -> int:
        path = f"/admin/players/{quote(player_id, safe='')}/deposit"
        return self.admin_call(self._admin_balance(self._admin(), "POST", path, {"amount": amount}))

    def balances(self, player_ids: list[str]) -> list[int | None]:
        """Each player's balance, read at once (None: the wallet does not know the player).

        From the admin API (``GET /admin/players/{id}``); where the wallet has no such endpoint, with a
        signed ``balance`` call on the player's newest session."""
        admin = self._admin()
        if not self.has("player"):
            return self._balances_by_calls(player_ids)

        async def one(pid: str) -> int | None:
            try:
                return await self._admin_balance(admin, "GET", f"/admin/players/{quote(pid, safe='')}")
            except AdminError as exc:
                if exc.status == 404:
                    return None
                raise

        async def all_of() -> list[int | None]:
            return list(await asyncio.gather(*(one(p) for p in player_ids)))

        return self.admin_call(all_of())


    def _balances_by_calls(self, player_ids: list[str]) -> list[int | None]:
        async def one(pid: str) -> int | None:
            session = self.sessions_of.get(pid)
            if session is None:
                return None
            sent = await self._send(WalletCall.balance(pid, session), "ok")
            return sent.outcome.balance.minor if isinstance(sent.outcome, Ok) else None

        async def all_of() -> list[int | None]:
            return list(await asyncio.gather(*(one(p) for p in player_ids)))

        return self.run(all_of())


MISSING = frozenset({404, 405, 501})
"""What an admin endpoint a wallet does not have answers."""
NORMAL_TTL_PROBE = 3600


def _body(exc: AdminError) -> str:
    """The admin API's answer as it was sent (JSON), never a Python repr."""
    return exc.answer_text()


def admin_url_for(wallet_url: str) -> str:
    """The reference wallet serves its admin API on the protocol's host: ``http://h:p/wallet`` → ``http://h:p``."""
    parts = urlsplit(wallet_url)
    return f"{parts.scheme}://{parts.netloc}"


def _short(ex: Any) -> str:
    body = ex.response_body[:200].decode("utf-8", "replace") if ex.response_body else ""
    return f"HTTP {ex.status} {body}" if ex.status is not None else str(ex.outcome)
