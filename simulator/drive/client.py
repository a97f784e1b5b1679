"""The thin aiohttp driver around a dialect: send a WalletCall, get an Outcome.

Everything protocol-specific is in the dialect; here a timeout, a reset or an
unreadable answer become ``Unknown`` (the call may have happened), never an
exception the caller has to interpret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from ..protocol.calls import Exchange, Outcome, Unknown, WalletCall
from ..protocol.dialects import Dialect, HttpRequest, HttpResponse, batching


@dataclass(frozen=True, slots=True)
class BatchExchange:
    """One request carrying several calls and what came back for each: the shared evidence."""

    calls: tuple[WalletCall, ...]
    outcome: tuple[Outcome, ...]
    latency_ms: float
    request_body: bytes = b""
    status: int | None = None
    response_body: bytes = b""


@dataclass
class WalletClient:
    """Sends calls to one wallet base URL (for the canonical dialect: ``http://host:port/wallet``)."""

    base_url: str
    dialect: Dialect
    session: aiohttp.ClientSession
    timeout_s: float = 5.0
    clock: Callable[[], float] = time.time
    extra_headers: dict[str, str] = field(default_factory=dict)
    _timeout: aiohttp.ClientTimeout | None = field(default=None, init=False, repr=False, compare=False)

    def _request_timeout(self) -> aiohttp.ClientTimeout:
        """One ClientTimeout for every request (built again only if ``timeout_s`` is changed)."""
        timeout = self._timeout
        if timeout is None or timeout.total != self.timeout_s:
            timeout = self._timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        return timeout

    async def _request(self, req: HttpRequest) -> HttpResponse | str:
        """Move one request's bytes: the answer, or why there is none (the outcome is then unknown)."""
        url = f"{self.base_url.rstrip('/')}/{req.path}"
        # aiohttp copies the headers it is given, so the dialect's dict is passed as it is.
        headers = {**req.headers, **self.extra_headers} if self.extra_headers else req.headers
        try:
            async with self.session.request(
                req.method, url, data=req.body, headers=headers, timeout=self._request_timeout(),
            ) as resp:
                headers = dict(resp.headers) if self.dialect.reads_response_headers else {}
                return HttpResponse(resp.status, headers, await resp.read())
        except TimeoutError:  # asyncio.TimeoutError is TimeoutError since 3.11
            return "timeout"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"

    async def exchange(self, call: WalletCall) -> Exchange:
        req = self.dialect.encode_call(call, self.clock())
        started = time.perf_counter()
        resp = await self._request(req)
        if isinstance(resp, str):
            return Exchange(call, Unknown(resp), _ms(started), req.body)
        return Exchange(call, self.dialect.decode_response(call, resp), _ms(started), req.body, resp.status, resp.body)

    async def exchange_batch(self, calls: Sequence[WalletCall]) -> BatchExchange:
        """``calls`` in one request (the dialect must batch: :func:`simulator.protocol.dialects.batching`)."""
        dialect = batching(self.dialect)
        assert dialect is not None, f"dialect {self.dialect.name} does not batch"
        calls = tuple(calls)
        req = dialect.encode_batch(calls, self.clock())
        started = time.perf_counter()
        resp = await self._request(req)
        if isinstance(resp, str):
            unknown = Unknown(resp)
            return BatchExchange(calls, tuple(unknown for _ in calls), _ms(started), req.body)
        outcomes = tuple(dialect.decode_batch_response(calls, resp))
        return BatchExchange(calls, outcomes, _ms(started), req.body, resp.status, resp.body)

    async def send(self, call: WalletCall) -> Outcome:
        return (await self.exchange(call)).outcome


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class AdminError(RuntimeError):
    """The admin API answered with an error status; ``body`` is its answer as decoded (JSON when it was)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"admin API answered HTTP {status} {self.answer_text()}")

    def answer_text(self, limit: int = 200) -> str:
        """The answer as the wallet sent it (JSON, on one line, cut at ``limit`` characters): what a user
        reads in a message, never a Python repr."""
        body = self.body
        if isinstance(body, (bytes, bytearray)):
            text = bytes(body).decode("utf-8", "replace")
        elif isinstance(body, str):
            text = body
        else:
            try:
                text = orjson.dumps(body).decode()
            except TypeError:
                text = str(body)
        text = " ".join(text.split()) or "(an empty answer)"
        return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class AdminClient:
    """The reference wallet's admin API (``http://host:port``), for provisioning and reports."""

    base_url: str
    admin_token: str
    session: aiohttp.ClientSession

    async def _call(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        async with self.session.request(
            method, f"{self.base_url.rstrip('/')}{path}", params=params,
            data=orjson.dumps(body) if body is not None else None,
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"},
        ) as resp:
            raw = await resp.read()
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = raw.decode("utf-8", "replace")
            if resp.status >= 400:
                raise AdminError(resp.status, data)
            return data

    async def create_player(self, player_id: str, currency: str, balance: int) -> dict[str, Any]:
        return await self._call("POST", "/admin/players", {"player_id": player_id, "currency": currency, "balance": balance})  # type: ignore[no-any-return]

    async def player(self, player_id: str) -> dict[str, Any]:
        from urllib.parse import quote

        return await self._call("GET", f"/admin/players/{quote(player_id, safe='')}")  # type: ignore[no-any-return]

    async def players(self, limit: int | None = None, after: str | None = None) -> dict[str, Any]:
        """One page of ``GET /admin/players``: ``{"players": [...], "next": id | None}``."""
        params: dict[str, str] = {}
        if limit is not None:
            params["limit"] = str(limit)
        if after is not None:
            params["after"] = after
        return await self._call("GET", "/admin/players", params=params or None)  # type: ignore[no-any-return]

    async def deposit(self, player_id: str, amount: int) -> dict[str, Any]:
        from urllib.parse import quote

        return await self._call("POST", f"/admin/players/{quote(player_id, safe='')}/deposit", {"amount": amount})  # type: ignore[no-any-return]

    async def block(self, player_id: str, blocked: bool = True) -> dict[str, Any]:
        from urllib.parse import quote

        verb = "block" if blocked else "unblock"
        return await self._call("POST", f"/admin/players/{quote(player_id, safe='')}/{verb}", {})  # type: ignore[no-any-return]

    async def token(self, player_id: str, ttl_s: int | None = None) -> str:
        body: dict[str, Any] = {"player_id": player_id}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return (await self._call("POST", "/admin/tokens", body))["token"]  # type: ignore[no-any-return]

    async def transactions(self, player_id: str | None = None) -> list[dict[str, Any]]:
        params = {"format": "jsonl"}
        if player_id:
            params["player_id"] = player_id
        async with self.session.get(
            f"{self.base_url.rstrip('/')}/admin/transactions", params=params,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise AdminError(resp.status, raw.decode("utf-8", "replace"))
        return [orjson.loads(line) for line in raw.splitlines() if line]

    async def ggr(self, since: str | None = None, until: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("from", since), ("to", until)) if v}
        return await self._call("GET", "/admin/reports/ggr", params=params)  # type: ignore[no-any-return]
