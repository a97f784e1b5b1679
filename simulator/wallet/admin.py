"""The reference wallet's admin API (PROTOCOL.md): players, deposits, launch tokens, reports.

Not part of the wallet protocol; guarded by a bearer token.  Input is checked as
strictly as on the protocol paths: a bad request is a 400 with a code and
changes nothing.
"""

from __future__ import annotations

import csv
import hmac
import io
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiohttp import web

from ..protocol.calls import Rejected
from ..protocol.codes import ErrorCode
from ..protocol.dialects.canonical import MAX_ID_LENGTH, _Bad, parse_object
from ..protocol.money import CURRENCIES, INT64_MAX
from .ggr import GgrReport
from .http import CONFIG, STORE, error_response, read_bounded
from .records import TX_COLUMNS, PlayerRow
from .store import Store

log = logging.getLogger("croupier.wallet.admin")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _error(code: ErrorCode, message: str) -> web.Response:
    return error_response(code, message)


def _player_json(row: PlayerRow) -> dict[str, Any]:
    return {"player_id": row.player_id, "currency": row.currency, "balance": row.balance, "blocked": row.blocked}


def guarded(handler: Handler) -> Handler:
    async def check(request: web.Request) -> web.StreamResponse:
        expected = f"Bearer {request.app[CONFIG].admin_token}".encode()
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            return _error(ErrorCode.UNAUTHORIZED, "admin API needs Authorization: Bearer <admin token>")
        try:
            return await handler(request)
        except _Bad as bad:
            return _error(bad.code, bad.message)

    return check


async def _body(request: web.Request, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    raw = await read_bounded(request)
    if raw is None:
        raise _Bad(ErrorCode.BAD_REQUEST, "body too large")
    data = parse_object(raw if raw else b"{}")
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise _Bad(ErrorCode.BAD_REQUEST, f"unknown field(s): {', '.join(k[:64] for k in unknown)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise _Bad(ErrorCode.BAD_REQUEST, f"missing field(s): {', '.join(missing)}")
    return data


def _ident(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH or _CONTROL.search(value):
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} printable characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} is not valid Unicode") from None
    return value


def _int(value: Any, name: str, low: int, high: int = INT64_MAX) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} must be an integer from {low} to {high}")
    return value


def _answer(result: PlayerRow | Rejected, status: int = 200) -> web.Response:
    if isinstance(result, Rejected):
        return _error(result.code, result.message)
    return web.json_response(_player_json(result), status=status)


def _store(request: web.Request) -> Store:
    return request.app[STORE]


def _now(request: web.Request) -> float:
    return request.app[CONFIG].clock()


@guarded
async def create_player(request: web.Request) -> web.StreamResponse:
    data = await _body(request, ("player_id", "currency"), ("balance",))
    player_id = _ident(data["player_id"], "player_id")
    code = data["currency"]
    if not isinstance(code, str) or code not in CURRENCIES:
        raise _Bad(ErrorCode.BAD_REQUEST, f"currency must be one of {', '.join(CURRENCIES)}")
    balance = _int(data.get("balance", 0), "balance", 0)
    return _answer(await _store(request).create_player(player_id, code, balance, _now(request)), 201)


DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 1000


@guarded
async def list_players(request: web.Request) -> web.StreamResponse:
    """Players in id order, ``limit`` at a time; ``next`` is the ``after`` of the next page (null on the last)."""
    q = request.query
    limit_raw = q.get("limit", str(DEFAULT_PAGE))
    if not (limit_raw.isascii() and limit_raw.isdigit()) or len(limit_raw) > 4 or not 1 <= int(limit_raw) <= MAX_PAGE:
        raise _Bad(ErrorCode.BAD_REQUEST, f"limit must be an integer from 1 to {MAX_PAGE}")
    limit = int(limit_raw)
    after = _ident(q["after"], "after") if "after" in q else None
    rows = await _store(request).list_players(limit + 1, after)
    more = len(rows) > limit
    rows = rows[:limit]
    return web.json_response(
        {"players": [_player_json(r) for r in rows], "next": rows[-1].player_id if more else None}
    )


@guarded
async def get_player(request: web.Request) -> web.StreamResponse:
    row = await _store(request).get_player(_ident(request.match_info["player_id"], "player_id"))
    if row is None:
        return _error(ErrorCode.PLAYER_NOT_FOUND, "no such player")
    return web.json_response(_player_json(row))


@guarded
async def deposit(request: web.Request) -> web.StreamResponse:
    player_id = _ident(request.match_info["player_id"], "player_id")
    data = await _body(request, ("amount",))
    amount = _int(data["amount"], "amount", 1)
    return _answer(await _store(request).deposit(player_id, amount, _now(request)))


def _blocking(blocked: bool) -> Handler:
    @guarded
    async def handle(request: web.Request) -> web.StreamResponse:
        player_id = _ident(request.match_info["player_id"], "player_id")
        await _body(request, ())
        return _answer(await _store(request).set_blocked(player_id, blocked))

    return handle


@guarded
async def issue_token(request: web.Request) -> web.StreamResponse:
    data = await _body(request, ("player_id",), ("ttl_s",))
    player_id = _ident(data["player_id"], "player_id")
    ttl = _int(data.get("ttl_s", request.app[CONFIG].session_ttl), "ttl_s", 0, 10 * 365 * 86400)
    token = await _store(request).issue_token(player_id, ttl, _now(request))
    if isinstance(token, Rejected):
        return _error(token.code, token.message)
    return web.json_response({"token": token, "player_id": player_id, "ttl_s": ttl}, status=201)


def parse_time(value: str | None, name: str) -> float | None:
    """Unix seconds, an ISO-8601 date or date-time (UTC when no offset is given), or absent."""
    if value is None or value == "":
        return None
    try:
        if value.isascii() and value.isdigit():
            if len(value) > 12:  # beyond year 33658: not a time anyone means
                raise ValueError(value)
            return float(int(value))
        return _iso(value)
    except (ValueError, OverflowError):
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} must be unix seconds or an ISO-8601 date/time") from None


def _iso(value: str) -> float:
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@guarded
async def transactions(request: web.Request) -> web.StreamResponse:
    q = request.query
    fmt = q.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise _Bad(ErrorCode.BAD_REQUEST, "format must be jsonl or csv")
    player_id = _ident(q["player_id"], "player_id") if q.get("player_id") else None
    since = parse_time(q.get("since"), "since")
    until = parse_time(q.get("until"), "until")
    after_raw = q.get("after", "0")
    if not (after_raw.isascii() and after_raw.isdigit()) or len(after_raw) > 19 or int(after_raw) > INT64_MAX:
        raise _Bad(ErrorCode.BAD_REQUEST, "after must be a wallet_tx_id (an integer from 0 to 2^63-1)")
    rows = _store(request).transactions(player_id, since, until, int(after_raw)).__aiter__()
    # Read the first row before any header goes out: a store that is away is then a clean 503.
    try:
        first: Any = await rows.__anext__()
    except StopAsyncIteration:
        first = None
    resp = web.StreamResponse(
        headers={"Content-Type": "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"}
    )
    await resp.prepare(request)
    buf: list[bytes] = []
    if fmt == "csv":
        buf.append((",".join(TX_COLUMNS) + "\r\n").encode())

    def render(row: Any) -> bytes:
        if fmt == "jsonl":
            return orjson.dumps(row.to_json()) + b"\n"
        out = io.StringIO()
        csv.writer(out).writerow(["" if v is None else v for v in row.to_json().values()])
        return out.getvalue().encode()

    try:
        if first is not None:
            buf.append(render(first))
            async for row in rows:
                buf.append(render(row))
                if len(buf) >= 500:
                    await resp.write(b"".join(buf))
                    buf.clear()
        if buf:
            await resp.write(b"".join(buf))
        await resp.write_eof()
    except Exception:
        log.exception("transaction log stream failed")
        if request.transport is not None:
            request.transport.close()
    return resp


@guarded
async def ggr(request: web.Request) -> web.StreamResponse:
    since = parse_time(request.query.get("from"), "from")
    until = parse_time(request.query.get("to"), "to")
    report = GgrReport()
    async for row in _store(request).transactions(None, since, until):
        report.add(row)
    return web.json_response({"from": since, "to": until, "lines": report.to_json()})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/admin/players", create_player)
    r.add_get("/admin/players", list_players)
    r.add_get("/admin/players/{player_id}", get_player)
    r.add_post("/admin/players/{player_id}/deposit", deposit)
    r.add_post("/admin/players/{player_id}/block", _blocking(True))
    r.add_post("/admin/players/{player_id}/unblock", _blocking(False))
    r.add_post("/admin/tokens", issue_token)
    r.add_get("/admin/transactions", transactions)
    r.add_get("/admin/reports/ggr", ggr)
