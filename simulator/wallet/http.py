"""What the wallet's handlers share: app keys, configuration, JSON errors, bounded bodies."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from aiohttp.web_server import Server

from ..protocol.codes import ErrorCode, http_status
from ..protocol.dialects import Dialect
from ..protocol.dialects.canonical import MAX_BODY
from .store import Store

# Per-request facts for the access log (op, tx_id, code, replay); a RequestKey where aiohttp has them.
LOG_INFO: Any = web.RequestKey("croupier", dict) if hasattr(web, "RequestKey") else "croupier"

STORE: web.AppKey[Store] = web.AppKey("store", Store)
CONFIG: web.AppKey[WalletConfig] = web.AppKey("config", object)  # type: ignore[arg-type]
DIALECT: web.AppKey[Dialect] = web.AppKey("dialect", object)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class WalletConfig:
    secret: str
    admin_token: str
    session_ttl: int = 3600
    clock: Callable[[], float] = time.time
    """Injected so tests can move time (session expiry, signature windows)."""


def error_response(code: ErrorCode, message: str) -> web.Response:
    return web.json_response({"status": "error", "code": str(code), "message": message}, status=http_status(code))


async def read_bounded(request: web.Request, limit: int = MAX_BODY) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (checked before it is buffered)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size) if size <= limit else b""
        if not chunk:
            break
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            return None
    return b"".join(chunks)




class _JsonErrorRequestHandler(RequestHandler):
    """aiohttp answers a request it cannot parse (a head over its limits, a broken request
    line) itself, in plain text, echoing the input.  The protocol promises a JSON error
    with a code for every rejection, so we answer those in JSON too."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> StreamResponse:
        super().handle_error(request, status, exc, message)  # logs, and refuses if a response began
        code = ErrorCode.INTERNAL if status >= 500 else ErrorCode.BAD_REQUEST
        text = "internal error: outcome unknown" if status >= 500 else "malformed HTTP request (line or header too long, or invalid)"
        resp = web.Response(status=status, body=orjson.dumps({"status": "error", "code": str(code), "message": text}),
                            content_type="application/json")
        resp.force_close()
        return resp


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


def json_parser_errors(app: web.Application) -> web.Application:
    """Make the app's low-level server answer unparseable requests with JSON errors."""
    make = app._make_handler

    def make_handler(**kwargs: Any) -> Server:
        server = make(**kwargs)
        server.__class__ = _JsonErrorServer
        return server

    app._make_handler = make_handler  # type: ignore[method-assign]
    return app
