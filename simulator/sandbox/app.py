"""The sandbox's web lobby: players, the catalog, launch, the game pages' API and the live panel.

It is an operator's lobby in miniature, so it does what an operator's platform
does: it creates players and launch tokens through the wallet's admin API, and
launches a game through the provider's ``POST /launch`` over HTTP with the
operator's API key — the same flow a real integration exercises.  Rounds are
then played through the provider's engine in this process (the game math, the
round generators, the ledger: the runner's code), so the page can show the
reels the round drew and the panel every byte the wallet saw.

The lobby has no authentication of its own: it listens on loopback only
(:mod:`simulator.sandbox.server` refuses anything else).  Every error is
``{"status": "error", "code", "message"}`` with a 4xx; bad input is never a 500.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import web

from ..drive.client import AdminClient, AdminError
from ..play.games.base import RoundResult
from ..play.players import STAKE_LADDERS
from ..protocol.codes import ErrorCode
from ..protocol.money import CURRENCIES, INT64_MAX, Money, MoneyError
from ..provider import lobby
from ..provider.engine import Provider
from ..provider.errors import ProviderError
from ..provider.state import Session
from ..wallet.http import read_bounded
from ..wallet.service import json_errors
from .panel import ActionError, Panel, entry_event
from .play import BadPlay, game_info, planner, round_view, stakes_for

__all__ = ["SANDBOX", "SandboxState", "make_lobby", "static_dir"]

_ID: Final = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
MAX_BODY: Final = 16_384


def static_dir() -> Path:
    """The shipped HTML/CSS/JS (package data: present in a non-editable install too)."""
    return Path(str(resources.files("simulator.sandbox") / "static"))


@dataclass(slots=True)
class SandboxState:
    """What the lobby knows: where the wallet and the provider are, and this sandbox's players."""

    provider: Provider
    provider_url: str
    api_key: str
    panel: Panel
    wallet_url: str
    """The wallet's protocol base URL the provider calls."""
    admin_url: str | None = None
    """The reference wallet's admin API; None when the provider plays against the user's wallet."""
    admin_token: str | None = None
    players: dict[str, str] = field(default_factory=dict)
    """player id → currency, in the order this sandbox met them."""
    http: aiohttp.ClientSession | None = None
    client_ssl: ssl.SSLContext | None = None
    """How the lobby verifies the sandbox's own servers when they serve TLS (pinned to their certificate);
    None: aiohttp's default."""

    def admin(self) -> AdminClient:
        if self.admin_url is None or self.admin_token is None:
            raise SandboxError("NO_ADMIN_API", 409,
                               "the sandbox plays against your wallet: create players and launch tokens there")
        assert self.http is not None
        return AdminClient(self.admin_url, self.admin_token, self.http)


SANDBOX: web.AppKey[SandboxState] = web.AppKey("sandbox", SandboxState)


class SandboxError(Exception):
    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _error(code: str, status: int, message: str) -> web.Response:
    return _json({"status": "error", "code": code, "message": message}, status)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


@web.middleware
async def local_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """Loopback is not enough against a web page in the same browser: a Host that is not a loopback
    name (DNS rebinding) is refused, and a POST must say it is JSON, which a cross-site form cannot
    send without a CORS preflight this server never grants."""
    try:
        host = request.url.host
    except ValueError:  # a Host header that is no host at all
        host = None
    if host not in _LOCAL_HOSTS:
        return _error("FORBIDDEN_HOST", 403, "the sandbox answers on 127.0.0.1, localhost or [::1] only")
    if request.method == "POST" and request.content_type != "application/json":
        return _error("UNSUPPORTED_MEDIA_TYPE", 415, "POST bodies are JSON: send Content-Type: application/json")
    return await handler(request)  # type: ignore[no-any-return]


@web.middleware
async def sandbox_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except (SandboxError, ActionError, ProviderError) as exc:
        return _error(exc.code, exc.status, exc.message)
    except BadPlay as exc:
        return _error(str(ErrorCode.BAD_REQUEST), 400, str(exc))


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await read_bounded(request, MAX_BODY)
    if raw is None:
        raise SandboxError("BAD_REQUEST", 400, f"body larger than {MAX_BODY} bytes")
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise SandboxError("BAD_REQUEST", 400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise SandboxError("BAD_REQUEST", 400, "body must be a JSON object")
    return data


def _id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise SandboxError("BAD_REQUEST", 400, f"{name} must be 1-64 letters, digits or _ . : @ -")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or value not in CURRENCIES:
        raise SandboxError("BAD_REQUEST", 400, f"currency must be one of {', '.join(CURRENCIES)}")
    return value


def _admin_failure(exc: AdminError) -> SandboxError:
    body = exc.body if isinstance(exc.body, dict) else {}
    code = str(body.get("code") or "WALLET_ADMIN_ERROR")
    status = exc.status if 400 <= exc.status < 500 else 502
    return SandboxError(code, status, str(body.get("message") or f"the wallet's admin API answered {exc.status}"))


def _session(request: web.Request) -> Session:
    sid = request.match_info["session_id"]
    session = request.app[SANDBOX].provider.state.sessions.get(sid)
    if session is None:
        raise SandboxError("SESSION_NOT_FOUND", 404, "no such game session (launch the game again from the lobby)")
    return session


def _game(session: Session) -> lobby.LobbyGame:
    game = lobby.resolve(session.game_id)
    assert game is not None, session.game_id
    return game


# -- pages ------------------------------------------------------------------------------
async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-store"})


async def game_page(request: web.Request) -> web.FileResponse:
    _session(request)
    return web.FileResponse(static_dir() / "game.html", headers={"Cache-Control": "no-store"})


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


# -- lobby API ----------------------------------------------------------------------------
async def config(request: web.Request) -> web.Response:
    state = request.app[SANDBOX]
    return _json({
        "wallet_url": state.wallet_url, "provider_url": state.provider_url, "embedded": state.admin_url is not None,
        "dialect": state.provider.config.dialect,
        "currencies": [{"code": c.code, "exponent": c.exponent, "stakes": list(STAKE_LADDERS.get(c.code, ()))}
                       for c in CURRENCIES.values()],
        "games": [g.to_json() for g in lobby.games()],
    })


async def _player_row(state: SandboxState, player_id: str) -> dict[str, Any]:
    try:
        row = await state.admin().player(player_id)
    except AdminError as exc:
        raise _admin_failure(exc) from None
    state.players.setdefault(player_id, row["currency"])
    return {**row, "exponent": CURRENCIES[row["currency"]].exponent}


PLAYERS_PAGE: Final = 100


async def list_players(request: web.Request) -> web.Response:
    """The embedded wallet's players, a page at a time (``?after=`` the ``next`` of the previous page),
    players of earlier sessions on the same ``--db`` included; against the user's wallet, which has
    no admin API, the players this sandbox has met."""
    state = request.app[SANDBOX]
    if state.admin_url is None:
        return _json({"players": [{"player_id": p, "currency": c, "balance": None, "exponent":
                                   CURRENCIES[c].exponent} for p, c in state.players.items()], "next": None})
    after = request.query.get("after")
    if after is not None and (not after or len(after) > 1024):
        raise SandboxError("BAD_REQUEST", 400, "after must be the next of the previous page")
    try:
        page = await state.admin().players(PLAYERS_PAGE, after)
    except AdminError as exc:
        raise _admin_failure(exc) from None
    players = [{**row, "exponent": CURRENCIES[row["currency"]].exponent} for row in page["players"]]
    return _json({"players": players, "next": page["next"]})


async def get_player(request: web.Request) -> web.Response:
    state = request.app[SANDBOX]
    return _json(await _player_row(state, _id(request.match_info["player_id"], "player_id")))


async def create_player(request: web.Request) -> web.Response:
    """A player with a currency and a starting balance, made through the wallet's admin API.

    The balance comes as the decimal a human types (``"100.00"``) and is parsed
    exactly into minor units (or as ``balance_minor``, an integer)."""
    state = request.app[SANDBOX]
    data = await _body(request)
    unknown = set(data) - {"player_id", "currency", "balance", "balance_minor"}
    if unknown:
        raise SandboxError("BAD_REQUEST", 400, f"unknown field(s): {', '.join(sorted(k[:32] for k in unknown))}")
    code = _currency(data.get("currency"))
    player_id = _id(data.get("player_id") or f"player-{secrets.token_hex(3)}", "player_id")
    if "balance_minor" in data:
        minor = data["balance_minor"]
        if type(minor) is not int or not 0 <= minor <= INT64_MAX:
            raise SandboxError("BAD_REQUEST", 400, "balance_minor must be a non-negative integer of minor units")
    else:
        text = data.get("balance", "100")
        try:
            minor = Money.from_decimal(text.strip() if isinstance(text, str) else text, code).minor
        except (MoneyError, TypeError):
            raise SandboxError("BAD_REQUEST", 400, f"balance must be a plain decimal amount of {code} with at most "
                               f"{CURRENCIES[code].exponent} decimals, such as 100 or 25.50") from None
        if not 0 <= minor <= INT64_MAX:
            raise SandboxError("BAD_REQUEST", 400, "balance must be between 0 and 2^63-1 minor units")
    try:
        await state.admin().create_player(player_id, code, minor)
    except AdminError as exc:
        raise _admin_failure(exc) from None
    state.players[player_id] = code
    return _json(await _player_row(state, player_id), 201)


async def deposit(request: web.Request) -> web.Response:
    """Money into a player's account (the cashier of the operator's platform), as a decimal typed by a human."""
    state = request.app[SANDBOX]
    player_id = _id(request.match_info["player_id"], "player_id")
    data = await _body(request)
    row = await _player_row(state, player_id)
    code = row["currency"]
    try:
        minor = Money.from_decimal(data.get("amount", "").strip() if isinstance(data.get("amount"), str) else "x",
                                   code).minor
    except MoneyError:
        raise SandboxError("BAD_REQUEST", 400, f"amount must be a plain decimal amount of {code} with at most "
                           f"{CURRENCIES[code].exponent} decimals, such as 50") from None
    if not 1 <= minor <= INT64_MAX:
        raise SandboxError("BAD_REQUEST", 400, "amount must be positive")
    try:
        await state.admin().deposit(player_id, minor)
    except AdminError as exc:
        raise _admin_failure(exc) from None
    return _json(await _player_row(state, player_id))


async def launch(request: web.Request) -> web.Response:
    """The operator's launch flow: a launch token, then the provider's ``POST /launch``."""
    state = request.app[SANDBOX]
    data = await _body(request)
    player_id = _id(data.get("player_id"), "player_id")
    game = lobby.resolve(data["game_id"]) if isinstance(data.get("game_id"), str) else None
    if game is None:
        raise SandboxError("GAME_NOT_FOUND", 404, "game_id must be one of the catalog's games")
    if state.admin_url is not None:
        row = await _player_row(state, player_id)
        code = row["currency"]
        try:
            token = await state.admin().token(player_id)
        except AdminError as exc:
            raise _admin_failure(exc) from None
    else:  # the user's wallet: their platform issued the token
        code = _currency(data.get("currency"))
        given = data.get("token")
        if not isinstance(given, str) or not given or len(given) > 512:
            raise SandboxError("BAD_REQUEST", 400, "token must be the launch token your platform issued")
        token = given
        state.players.setdefault(player_id, code)
    assert state.http is not None
    try:
        async with state.http.post(
            f"{state.provider_url}/launch", data=orjson.dumps(
                {"player_id": player_id, "currency": code, "token": token, "game_id": game.game_id}),
            headers={"Authorization": f"Bearer {state.api_key}", "Content-Type": "application/json"},
        ) as resp:
            status, answer = resp.status, orjson.loads(await resp.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        raise SandboxError("PROVIDER_UNAVAILABLE", 502, f"the provider's /launch failed: {exc}") from None
    if status != 200:
        return _json(answer, status)
    sid = answer["session_id"]
    return _json({**answer, "play_url": f"/play/{sid}"})


# -- game API -----------------------------------------------------------------------------
def _session_json(session: Session, game: lobby.LobbyGame) -> dict[str, Any]:
    last = session.rounds[-1] if session.rounds else None
    return {
        "session_id": session.session_id, "player_id": session.player_id, "currency": session.currency.code,
        "exponent": session.currency.exponent, "balance": session.seat.balance,
        "stakes": stakes_for(session, game), "last_stake": session.last_stake, "game": game_info(session, game),
        "rounds": len(session.rounds), "last_round": last.to_json() if last else None,
    }


async def session_info(request: web.Request) -> web.Response:
    session = _session(request)
    return _json(_session_json(session, _game(session)))


async def play(request: web.Request) -> web.Response:
    """One round: the page's choices in, the round (reels, number, crash point) and its calls out.

    A refused bet answers with the wallet's code (402 INSUFFICIENT_FUNDS …) and the
    round, so the page can say what a real game says."""
    state = request.app[SANDBOX]
    session = _session(request)
    game = _game(session)
    data = await _body(request)
    drawn: list[RoundResult] = []
    stake, draw = planner(game, data, session, drawn)
    record = await state.provider.play(session, stake, game, planner=draw)
    view = round_view(record, drawn[-1] if drawn else None, game)
    if record.refusal is not None:
        code = ErrorCode(record.refusal)
        provider_error = ProviderError.from_wallet(code, f"the wallet refused the bet: {code}")
        return _json({"status": "error", "code": str(code), "message": provider_error.message, "round": view,
                      "balance": session.seat.balance}, provider_error.status)
    if record.status != "settled":
        return _json({"status": "error", "code": "ROUND_" + record.status.upper(),
                      "message": "the wallet did not answer the bet; it was rolled back" if record.status ==
                      "cancelled" else "the wallet has not confirmed this round; it will be settled",
                      "round": view, "balance": session.seat.balance}, 502)
    return _json({"status": "ok", "round": view, "balance": session.seat.balance})


async def calls(request: web.Request) -> web.Response:
    session = _session(request)
    panel = request.app[SANDBOX].panel
    return _json({"calls": [e.to_json() for e in panel.of_player(session.player_id)]})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: this player's calls so far, then each new one as it happens."""
    session = _session(request)
    panel = request.app[SANDBOX].panel
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    with panel.listen() as queue:
        try:
            for entry in panel.of_player(session.player_id)[-200:]:
                await resp.write(entry_event(entry))
            while True:
                try:
                    new = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if new is None:
                    break
                if new.record.player_id == session.player_id:
                    await resp.write(entry_event(new))
        except ConnectionResetError:  # the page went away: the stream ends with it
            pass
    return resp


async def act(request: web.Request) -> web.Response:
    panel = request.app[SANDBOX].panel
    raw = request.match_info["entry_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise SandboxError("BAD_REQUEST", 400, "a call id is a number")
    made = await panel.act(int(raw), request.match_info["action"])
    return _json({"calls": [e.to_json() for e in made]})


def make_lobby(state: SandboxState) -> web.Application:
    app = web.Application(middlewares=[json_errors, local_only, sandbox_errors], client_max_size=MAX_BODY)
    app[SANDBOX] = state

    async def client(_: web.Application) -> Any:
        connector = aiohttp.TCPConnector(ssl=state.client_ssl if state.client_ssl is not None else True)
        async with aiohttp.ClientSession(connector=connector) as http:
            state.http = http
            yield
            state.http = None

    async def close_streams(_: web.Application) -> None:
        state.panel.close()

    app.cleanup_ctx.append(client)
    app.on_shutdown.append(close_streams)
    r = app.router
    r.add_get("/", index)
    r.add_get("/play/{session_id}", game_page)
    r.add_static("/static", static_dir())
    r.add_get("/healthz", healthz)
    r.add_get("/api/config", config)
    r.add_get("/api/players", list_players)
    r.add_post("/api/players", create_player)
    r.add_get("/api/players/{player_id}", get_player)
    r.add_post("/api/players/{player_id}/deposit", deposit)
    r.add_post("/api/launch", launch)
    r.add_get("/api/sessions/{session_id}", session_info)
    r.add_post("/api/sessions/{session_id}/play", play)
    r.add_get("/api/sessions/{session_id}/calls", calls)
    r.add_get("/api/sessions/{session_id}/events", events)
    r.add_post("/api/calls/{entry_id}/{action}", act)
    return app
