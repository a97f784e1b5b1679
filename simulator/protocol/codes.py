"""The error codes of the canonical protocol and the HTTP status each maps to.

One table, used by the wallet to answer and by the simulator to judge answers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ErrorCode(StrEnum):
    BAD_REQUEST = "BAD_REQUEST"
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    INVALID_TOKEN = "INVALID_TOKEN"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    PLAYER_BLOCKED = "PLAYER_BLOCKED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    PLAYER_NOT_FOUND = "PLAYER_NOT_FOUND"
    ROUND_NOT_FOUND = "ROUND_NOT_FOUND"
    DUPLICATE_MISMATCH = "DUPLICATE_MISMATCH"
    TX_ROLLED_BACK = "TX_ROLLED_BACK"
    ROLLBACK_NOT_ALLOWED = "ROLLBACK_NOT_ALLOWED"
    ROUND_CLOSED = "ROUND_CLOSED"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    INTERNAL = "INTERNAL"
    # Admin API only (not part of the wallet protocol).
    UNAUTHORIZED = "UNAUTHORIZED"
    PLAYER_EXISTS = "PLAYER_EXISTS"
    NOT_FOUND = "NOT_FOUND"
    UNAVAILABLE = "UNAVAILABLE"
    # A dialect's wire code that its description maps to no canonical code: some refusal.
    UNMAPPED = "UNMAPPED"


HTTP_STATUS: Final[dict[ErrorCode, int]] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_SIGNATURE: 401,
    ErrorCode.INVALID_TOKEN: 401,
    ErrorCode.SESSION_EXPIRED: 401,
    ErrorCode.INSUFFICIENT_FUNDS: 402,
    ErrorCode.PLAYER_BLOCKED: 403,
    ErrorCode.LIMIT_EXCEEDED: 403,
    ErrorCode.PLAYER_NOT_FOUND: 404,
    ErrorCode.ROUND_NOT_FOUND: 404,
    ErrorCode.DUPLICATE_MISMATCH: 409,
    ErrorCode.TX_ROLLED_BACK: 409,
    ErrorCode.ROLLBACK_NOT_ALLOWED: 409,
    ErrorCode.ROUND_CLOSED: 409,
    ErrorCode.CURRENCY_MISMATCH: 422,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.PLAYER_EXISTS: 409,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.UNMAPPED: 400,
}

PROTOCOL_CODES: Final = frozenset(list(ErrorCode)[:15])
"""The codes a wallet may answer on the protocol paths."""


def http_status(code: ErrorCode) -> int:
    return HTTP_STATUS[code]
