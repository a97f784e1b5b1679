"""The mock provider as an aiohttp application: what an operator's platform integrates with.

Operator-facing calls (catalog, launch, round history, reports) need
``Authorization: Bearer <api key>``.  The game page and ``POST /play`` are the
player's: the session id in the game URL is their only key (unguessable, as a
real provider's launch URL is).  Input is checked strictly and every error is
``{"status": "error", "code", "message"}`` with a 4xx; only a game form posted
from the page gets its error back as the page, so a browser never shows JSON.
"""

from __future__ import annotations

import csv
import hmac
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qs

import aiohttp
import orjson
from aiohttp import web

from ..metrics.exposition import handler as metrics_handler
from ..metrics.families import IN_DOUBT, PLAYERS, Metrics
from ..play.players import GameKind
from ..protocol import dialects
from ..protocol.calls import Exchange
from ..protocol.codes import ErrorCode, http_status
from ..protocol.dialects.canonical import MAX_BODY, MAX_ID_LENGTH, _Bad
from ..protocol.money import CURRENCIES, INT64_MAX
from ..wallet.admin import parse_time
from ..wallet.http import read_bounded
from ..wallet.service import json_errors
from . import lobby
from .engine import Provider
from .errors import GAME_NOT_FOUND, SESSION_NOT_FOUND, UNAUTHORIZED, ProviderError, json_response
from .pages import game_page
from .state import TX_LOG_COLUMNS, CallRecord, ProviderConfig, ProviderState, RoundRecord, Session

__all__ = ["PROVIDER", "make_app"]

PROVIDER: web.AppKey[Provider] = web.AppKey("provider", Provider)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_LANGUAGE: Final = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}")
FORM: Final = "application/x-www-form-urlencoded"


# -- input ----------------------------------------------------------------------------
def _text(value: Any, name: str, limit: int = MAX_ID_LENGTH) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or _CONTROL.search(value):
        raise ProviderError.bad(f"{name} must be a non-empty string of at most {limit} printable characters")
    return value


def _fields(data: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise ProviderError.bad(f"unknown field(s): {', '.join(k[:64] for k in unknown)}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ProviderError.bad(f"missing field(s): {', '.join(missing)}")
    return data


async def _raw(request: web.Request) -> bytes:
    raw = await read_bounded(request)
    if raw is None:
        raise ProviderError.bad(f"body larger than {MAX_BODY} bytes")
    return raw


async def _json(request: web.Request, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return _json_object(await _raw(request), required, optional)


def _json_object(raw: bytes, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProviderError.bad(f"body is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ProviderError.bad("body must be a JSON object")
    return _fields(data, required, optional)


def _form(raw: bytes, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    try:
        pairs = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        raise ProviderError.bad("the form is not valid UTF-8 url-encoded data") from None
    if any(len(v) != 1 for v in pairs.values()):
        raise ProviderError.bad("each form field may be given once")
    return _fields({k: v[0] for k, v in pairs.items()}, required, optional)


def _session(request: web.Request, session_id: Any) -> Session:
    sid = _text(session_id, "session_id", 128)
    session = request.app[PROVIDER].state.sessions.get(sid)
    if session is None:
        raise ProviderError(SESSION_NOT_FOUND, 404, "no such session (launch the game again)")
    return session


def _game(game_id: Any) -> lobby.LobbyGame:
    game = lobby.resolve(_text(game_id, "game_id"))
    if game is None:
        raise ProviderError(GAME_NOT_FOUND, 404, lobby.unknown(str(game_id)))
    return game


def _stake(value: Any, session: Session) -> int:
    if type(value) is not int or not 1 <= value <= INT64_MAX:
        raise ProviderError.bad(f"stake must be a positive integer of minor units of {session.currency.code}")
    return value


def _kind(value: Any) -> GameKind:
    kinds = lobby.kinds()
    if value not in kinds:
        raise ProviderError.bad(f"kind must be one of {', '.join(kinds)}")
    return value  # type: ignore[no-any-return]


# -- plumbing -------------------------------------------------------------------------
@web.middleware
async def provider_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProviderError as exc:
        resp = exc.response()
        if exc.status == 401 and exc.code == UNAUTHORIZED:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp
    except _Bad as bad:  # from the wallet's shared parsers (times)
        return ProviderError(str(bad.code), http_status(bad.code), bad.message).response()


def operator(handler: Handler) -> Handler:
    """Operator-facing: needs ``Authorization: Bearer <api key>`` (compared in constant time)."""

    async def check(request: web.Request) -> web.StreamResponse:
        expected = f"Bearer {request.app[PROVIDER].config.api_key}".encode()
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            raise ProviderError(UNAUTHORIZED, 401, "this call needs Authorization: Bearer <api key>")
        return await handler(request)

    return check


def _base_url(request: web.Request) -> str:
    configured = request.app[PROVIDER].config.public_url
    return (configured or f"{request.scheme}://{request.host}").rstrip("/")


# -- handlers -------------------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "sessions": len(request.app[PROVIDER].state.sessions)})


@operator
async def games(request: web.Request) -> web.Response:
    return json_response({"games": [g.to_json() for g in lobby.games()]})


@operator
async def launch(request: web.Request) -> web.Response:
    data = await _json(request, ("player_id", "currency", "token", "game_id"), ("language",))
    player_id = _text(data["player_id"], "player_id")
    code = data["currency"]
    if not isinstance(code, str) or code not in CURRENCIES:
        raise ProviderError.bad(f"currency must be one of {', '.join(CURRENCIES)}")
    language = data.get("language", "en")
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        raise ProviderError.bad("language must be a language tag such as en, pt-BR or es-419")
    token = _text(data["token"], "token")
    game = _game(data["game_id"])
    session = await request.app[PROVIDER].launch(player_id, code, language, token, game)
    return json_response({
        "session_id": session.session_id,
        "game_url": f"{_base_url(request)}/game/{session.session_id}",
        "player_id": session.player_id, "currency": code, "balance": session.seat.balance,
        "game_id": session.game_id, "language": session.language,
    })


async def _play(request: web.Request, data: dict[str, Any], session: Session) -> RoundRecord:
    stake = _stake(data["stake"], session)
    if "currency" in data and data["currency"] != session.currency.code:
        raise ProviderError(str(ErrorCode.CURRENCY_MISMATCH), 422,
                            f"the session plays in {session.currency.code}; stakes are minor units of it")
    if "kind" in data and "game_id" in data:
        raise ProviderError.bad("give kind or game_id, not both")
    kind = _kind(data["kind"]) if "kind" in data else None
    game = _game(data["game_id"]) if "game_id" in data else None
    record = await request.app[PROVIDER].play(session, stake, game, kind)
    if record.refusal is not None:
        code = ErrorCode(record.refusal)
        raise ProviderError.from_wallet(code, f"the wallet refused the bet of round {record.round_id}: {code}")
    return record


async def play(request: web.Request) -> web.StreamResponse:
    """Play one round: JSON in and out, or the game page's form (answered with the page)."""
    fields = ("session_id", "stake")
    optional = ("kind", "game_id", "currency")
    raw = await _raw(request)
    if request.content_type == FORM and raw.lstrip()[:1] not in (b"{", b"["):
        # The game page's form.  (A JSON body labelled as a form is what `curl -d` sends: taken as JSON.)
        data = _form(raw, fields, optional)
        session = _session(request, data["session_id"])
        stake = data["stake"]
        if stake.isascii() and stake.isdigit() and len(stake) <= 19:
            data["stake"] = int(stake)  # a form sends text; JSON must send an integer
        try:
            await _play(request, data, session)
        except ProviderError as exc:
            return _page(session, exc.status, (exc.code, exc.message))
        raise web.HTTPSeeOther(f"/game/{session.session_id}")
    data = _json_object(raw, fields, optional)
    session = _session(request, data["session_id"])
    record = await _play(request, data, session)
    return json_response({
        "round_id": record.round_id, "status": record.status, "game_id": record.game_id,
        "staked": record.staked, "paid": record.paid, "balance": record.balance, "currency": record.currency,
        "calls": [c.brief() for c in record.calls],
    })


def _page(session: Session, status: int = 200, error: tuple[str, str] | None = None) -> web.Response:
    game = lobby.resolve(session.game_id)
    assert game is not None
    return web.Response(status=status, text=game_page(session, game, error), content_type="text/html",
                        charset="utf-8", headers={"Cache-Control": "no-store"})


async def game_view(request: web.Request) -> web.Response:
    return _page(_session(request, request.match_info["session_id"]))


@operator
async def rounds(request: web.Request) -> web.Response:
    session = _session(request, request.match_info["session_id"])
    return json_response({
        "session_id": session.session_id, "player_id": session.player_id, "game_id": session.game_id,
        "currency": session.currency.code, "rounds": [r.to_json() for r in reversed(session.rounds)],
    })


@operator
async def transactions(request: web.Request) -> web.StreamResponse:
    """The provider's log of every wallet call, oldest first, streamed (for reconciliation)."""
    q = request.query
    fmt = q.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise ProviderError.bad("format must be jsonl or csv")
    since = parse_time(q.get("from"), "from")
    until = parse_time(q.get("to"), "to")
    player_id = _text(q["player_id"], "player_id") if q.get("player_id") else None
    log = request.app[PROVIDER].state.log
    end = len(log)  # append-only: lines added while streaming belong to the next report
    resp = web.StreamResponse(
        headers={"Content-Type": "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"})
    await resp.prepare(request)
    buf: list[bytes] = []
    if fmt == "csv":
        buf.append((",".join(TX_LOG_COLUMNS) + "\r\n").encode())
    for i in range(end):
        rec = log[i]
        if (since is not None and rec.at < since) or (until is not None and rec.at >= until) \
                or (player_id is not None and rec.player_id != player_id):
            continue
        row = rec.to_json()
        if fmt == "jsonl":
            buf.append(orjson.dumps(row) + b"\n")
        else:
            out = io.StringIO()
            csv.writer(out).writerow(["" if row[c] is None else row[c] for c in TX_LOG_COLUMNS])
            buf.append(out.getvalue().encode())
        if len(buf) >= 500:
            await resp.write(b"".join(buf))
            buf.clear()
    if buf:
        await resp.write(b"".join(buf))
    await resp.write_eof()
    return resp


@operator
async def anomalies(request: web.Request) -> web.Response:
    """What the ledger has seen the wallet do wrong so far, with evidence."""
    provider = request.app[PROVIDER]
    state = provider.state
    summary = state.ledger.summary()
    return json_response({
        "total": state.ledger.anomaly_count, **summary,
        "calls": dict(state.stats.results), "rounds": dict(state.stats.rounds),
        "provider": {"instance": state.instance, "seed": state.seed, "wallet": provider.config.wallet_url,
                     "dialect": provider.config.dialect},
    })


def make_app(config: ProviderConfig, metrics: Metrics | None = None) -> web.Application:
    """The provider application (``ValueError`` for an unknown dialect); ``metrics``: count what it does and
    serve it at ``GET /metrics`` (docs/metrics.md)."""
    dialect = dialects.get(config.dialect, config.secret)
    app = web.Application(middlewares=[json_errors, provider_errors], client_max_size=MAX_BODY)
    provider = Provider(config, ProviderState(config.seed), dialect, metrics=metrics)
    app[PROVIDER] = provider
    if metrics is not None:
        _meter(provider, metrics, app)

    async def wallet_session(_: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=256, ssl=config.wallet_ssl if config.wallet_ssl is not None else True)
        async with aiohttp.ClientSession(connector=connector) as http:
            provider.http = http
            yield
            provider.http = None

    app.cleanup_ctx.append(wallet_session)
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/games", games)
    r.add_post("/launch", launch)
    r.add_post("/play", play)
    r.add_get("/game/{session_id}", game_view)
    r.add_get("/sessions/{session_id}/rounds", rounds)
    r.add_get("/reports/transactions", transactions)
    r.add_get("/reports/anomalies", anomalies)
    return app


def _meter(provider: Provider, metrics: Metrics, app: web.Application) -> None:
    """Every wallet call the provider makes (its transaction log's lines), and the gauges read when scraped."""
    state, dialect = provider.state, provider.dialect.name

    def called(record: CallRecord, ex: Exchange) -> None:
        metrics.answer(record.op, dialect, ex.outcome, ex.latency_ms / 1000)

    state.observers.append(called)
    metrics.gauge_function(PLAYERS, lambda: len({s.player_id for s in state.sessions.values()}))
    metrics.gauge_function(IN_DOUBT, lambda: len(state.ledger.in_doubt()))
    app.router.add_get("/metrics", metrics_handler(metrics))
