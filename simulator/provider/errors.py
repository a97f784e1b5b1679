"""The provider API's errors: one JSON shape, a code a client can branch on, always a status.

Wallet refusals keep the wallet's code and status (a game client shows
``INSUFFICIENT_FUNDS`` whoever said it); the provider's own codes are here.
A wallet that does not answer, or refuses the provider's own signature, is the
provider's upstream problem: 502, never the client's 4xx.
"""

from __future__ import annotations

from typing import Final

import orjson
from aiohttp import web

from ..protocol.codes import ErrorCode, http_status

BAD_REQUEST: Final = "BAD_REQUEST"
UNAUTHORIZED: Final = "UNAUTHORIZED"
GAME_NOT_FOUND: Final = "GAME_NOT_FOUND"
SESSION_NOT_FOUND: Final = "SESSION_NOT_FOUND"
PLAYER_MISMATCH: Final = "PLAYER_MISMATCH"
WALLET_UNAVAILABLE: Final = "WALLET_UNAVAILABLE"

_UPSTREAM: Final = frozenset({ErrorCode.INVALID_SIGNATURE})
"""Wallet codes that mean the provider is misconfigured, not that the client erred."""


class ProviderError(Exception):
    """A definitive answer of the provider API: ``status`` with ``{"status": "error", code, message}``."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    @classmethod
    def bad(cls, message: str) -> ProviderError:
        return cls(BAD_REQUEST, 400, message)

    @classmethod
    def from_wallet(cls, code: ErrorCode, message: str) -> ProviderError:
        """A wallet refusal passed on to the client with the wallet's own code."""
        status = http_status(code)
        if status >= 500 or code in _UPSTREAM:
            status = 502
        return cls(str(code), status, message)

    def response(self) -> web.Response:
        return json_response({"status": "error", "code": self.code, "message": self.message}, self.status)


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")
