"""What the wallet's handlers share: app keys, configuration, JSON errors, bounded bodies."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ..codes import ErrorCode, http_status
from ..dialects import Dialect
from ..dialects.canonical import MAX_BODY
from .store import Store

STORE: web.AppKey[Store] = web.AppKey("store", Store)
CONFIG: web.AppKey["WalletConfig"] = web.AppKey("config", object)  # type: ignore[arg-type]
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


