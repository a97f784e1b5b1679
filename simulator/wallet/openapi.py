"""The reference wallet's own OpenAPI 3.1 document: the wallet protocol, the admin API, health.

Why it is built from code rather than kept as a YAML file: the field lists, limits,
currencies, reasons and error-code/HTTP-status pairs already live in
:mod:`simulator.protocol.dialects.canonical`, :mod:`simulator.protocol.money`, :mod:`simulator.protocol.codes`
and :mod:`simulator.protocol.signing`.  Reading them here means the document cannot drift
from what the wallet enforces; ``tests/test_openapi.py`` checks what cannot be
derived (which codes each operation may answer, the served routes).

PROTOCOL.md stays the normative text; this document is its machine-readable form.
:func:`document` builds it once; treat the returned dict as read-only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import simulator

from ..protocol import dialects
from ..protocol.calls import Op, WinReason
from ..protocol.codes import PROTOCOL_CODES, ErrorCode, http_status
from ..protocol.dialects.canonical import FIELDS, MAX_BODY, MAX_ID_LENGTH
from ..protocol.money import CURRENCIES, INT64_MAX
from ..protocol.signing import HEADER, TOLERANCE_S
from . import admin
from .records import TX_COLUMNS

__all__ = ["OPENAPI_VERSION", "document"]

OPENAPI_VERSION: Final = "3.1.0"
TITLE: Final = "croupier reference wallet"

Schema = dict[str, Any]

SIGNATURE_SCHEME: Final = "signature"
ADMIN_SCHEME: Final = "adminBearer"

_NO_CONTROL: Final = r"^[^\u0000-\u001F\u007F]*$"
"""Ids may hold any Unicode except control characters (U+0000–U+001F, U+007F)."""

_MAX_TTL_S: Final = 10 * 365 * 86400
"""The largest ``ttl_s`` the admin API accepts for a launch token (see admin.issue_token)."""
_DEFAULT_PAGE: Final = admin.DEFAULT_PAGE
_MAX_PAGE: Final = admin.MAX_PAGE


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


# -- the wallet protocol ----------------------------------------------------------------

_FIELD_DOCS: Final[dict[str, Schema]] = {
    "token": {**ref("Id"), "description": "Launch token issued by the operator (POST /admin/tokens)."},
    "game_id": {**ref("Id"), "description": "The provider's game id."},
    "player_id": {**ref("Id"), "description": "The wallet's player id."},
    "session_token": {**ref("Id"), "description": "The session_token returned by authenticate."},
    "tx_id": {
        **ref("Id"),
        "description": "The provider's transaction id: unique per wallet across all operations; the idempotency key.",
    },
    "round_id": {**ref("Id"), "description": "The game round; rounds are per player: (player_id, round_id)."},
    "ref_tx_id": {**ref("Id"), "description": "tx_id of the bet to cancel."},
    "currency": ref("Currency"),
    "amount": ref("Amount"),
    "reason": ref("WinReason"),
    "round_closed": {"type": "boolean", "description": "true closes the round with this win."},
}
"""The schema of every request field of the canonical protocol, by name."""

_IDEMPOTENCY: Final = (
    "**Idempotent by `tx_id`.** A `tx_id` already accepted with the same operation, `player_id`, "
    "`round_id`, `amount`, `currency` and `ref_tx_id` is a *replay*: 200 with the original "
    "`wallet_tx_id` and the current balance, and nothing changes (even if the session expired, the "
    "round closed or the player was blocked since). The same `tx_id` with any of those different is "
    "`DUPLICATE_MISMATCH`. A rejected call is not recorded: sent again, it is judged again. "
    "Calls for one player are serialized; a balance is never negative."
)


@dataclass(frozen=True, slots=True)
class _ProtocolOp:
    op: Op
    summary: str
    description: str
    success: str
    """Component name of the 200 body."""
    codes: tuple[ErrorCode, ...]
    """Codes the rules may answer besides the ones every operation can (see ``_ALWAYS``)."""


_ALWAYS: Final = (ErrorCode.BAD_REQUEST, ErrorCode.INVALID_SIGNATURE, ErrorCode.INTERNAL)
"""Decoding, signature and unknown-outcome answers, possible on every operation."""

_PROTOCOL: Final[tuple[_ProtocolOp, ...]] = (
    _ProtocolOp(
        Op.AUTHENTICATE,
        "Exchange a launch token for a session",
        "Turns a launch token into a session. Asking again with the same token returns the same "
        "`session_token` while the session lives (a retry is safe), `SESSION_EXPIRED` after; the "
        "session lives the token's `ttl_s`. A blocked player is refused.",
        "AuthenticateOk",
        (ErrorCode.INVALID_TOKEN, ErrorCode.PLAYER_BLOCKED, ErrorCode.SESSION_EXPIRED),
    ),
    _ProtocolOp(
        Op.BALANCE,
        "Read a player's balance",
        "Any session of the player will do, even an expired one: a read moves no money.",
        "BalanceOk",
        (ErrorCode.PLAYER_NOT_FOUND, ErrorCode.INVALID_TOKEN),
    ),
    _ProtocolOp(
        Op.BET,
        "Debit a stake",
        f"Debits `amount` (0 is accepted). {_IDEMPOTENCY}\n\n"
        "Needs a live session (`INVALID_TOKEN`, `SESSION_EXPIRED`) and a player who is not blocked. "
        "A `tx_id` tombstoned by an earlier rollback is `TX_ROLLED_BACK`; a closed round is "
        "`ROUND_CLOSED`; more than the balance is `INSUFFICIENT_FUNDS`. "
        "Without a definitive answer (5xx, timeout, reset) the provider rolls the bet back.",
        "MoneyOk",
        (
            ErrorCode.DUPLICATE_MISMATCH,
            ErrorCode.PLAYER_NOT_FOUND,
            ErrorCode.INVALID_TOKEN,
            ErrorCode.SESSION_EXPIRED,
            ErrorCode.CURRENCY_MISMATCH,
            ErrorCode.PLAYER_BLOCKED,
            ErrorCode.TX_ROLLED_BACK,
            ErrorCode.ROUND_CLOSED,
            ErrorCode.INSUFFICIENT_FUNDS,
        ),
    ),
    _ProtocolOp(
        Op.WIN,
        "Credit a win",
        f"Credits `amount` (a zero win closes a losing round). {_IDEMPOTENCY}\n\n"
        "Accepted with an expired session and for a blocked player: money owed is never refused. "
        "A `regular` win needs an accepted, not rolled back bet in the round (`ROUND_NOT_FOUND`); "
        "the other reasons may stand alone. `round_closed: true` closes the round: later bets, wins "
        "and rollbacks on it are `ROUND_CLOSED`, except replays. "
        "Without a definitive answer the provider sends it again with the same `tx_id`.",
        "MoneyOk",
        (
            ErrorCode.DUPLICATE_MISMATCH,
            ErrorCode.PLAYER_NOT_FOUND,
            ErrorCode.INVALID_TOKEN,
            ErrorCode.CURRENCY_MISMATCH,
            ErrorCode.ROUND_CLOSED,
            ErrorCode.ROUND_NOT_FOUND,
            ErrorCode.LIMIT_EXCEEDED,
        ),
    ),
    _ProtocolOp(
        Op.ROLLBACK,
        "Cancel a bet",
        f"Refunds the bet `ref_tx_id` once. {_IDEMPOTENCY}\n\n"
        "A second rollback of the same bet (any `tx_id`) is 200 and changes nothing. A `ref_tx_id` "
        "the wallet has never seen is 200, changes nothing and leaves a tombstone: a later bet with "
        "that `tx_id` is `TX_ROLLED_BACK`. Only a bet of the same player and round may be rolled "
        "back (`ROLLBACK_NOT_ALLOWED`). Accepted with an expired session and for a blocked player. "
        "Without a definitive answer the provider sends it again with the same `tx_id`.",
        "MoneyOk",
        (
            ErrorCode.DUPLICATE_MISMATCH,
            ErrorCode.PLAYER_NOT_FOUND,
            ErrorCode.INVALID_TOKEN,
            ErrorCode.ROLLBACK_NOT_ALLOWED,
            ErrorCode.ROUND_CLOSED,
            ErrorCode.LIMIT_EXCEEDED,
        ),
    ),
)

_STATUS_TEXT: Final[dict[int, str]] = {
    400: f"Malformed request (bodies over {MAX_BODY // 1024} KiB are refused before parsing); nothing changed.",
    401: "Signature, token or session refused; nothing changed.",
    402: "The balance is lower than the bet; nothing changed.",
    403: "Refused for this player; nothing changed.",
    404: "Unknown player or round; nothing changed.",
    409: "Conflicts with what the wallet recorded; nothing changed.",
    422: "Currency unknown or not the player's; nothing changed.",
    500: "Outcome unknown: the call may or may not have been applied. Retry win and rollback, roll back a bet.",
    503: "The wallet is not ready.",
}


def _request_schema(op: Op) -> Schema:
    fields = FIELDS[op]
    return {
        "type": "object",
        "description": "Every listed field is required; a missing one or one of the wrong type is BAD_REQUEST. "
        "Fields not listed are ignored (providers add fields over time): never refused, echoed or stored, "
        "and no part of replay matching.",
        "properties": {name: _FIELD_DOCS[name] for name in fields},
        "required": list(fields),
        "additionalProperties": True,
    }


def _error_responses(
    codes: Iterable[ErrorCode], base: str, texts: dict[int, str] = _STATUS_TEXT
) -> dict[str, Any]:
    """One response per HTTP status, its ``code`` narrowed to the codes answered with it."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(http_status(code), []).append(str(code))
    out: dict[str, Any] = {}
    for status in sorted(by_status):
        names = by_status[status]
        out[str(status)] = {
            "description": f"{texts[status]} Codes: {', '.join(names)}.",
            "content": _json({"allOf": [ref(base), {"properties": {"code": {"enum": names}}}]}),
        }
    return out


def _protocol_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for spec in _PROTOCOL:
        codes = dict.fromkeys((*spec.codes, *_ALWAYS))  # ordered, without repeats
        responses = {"200": {"description": "Accepted (or a replay).", "content": _json(ref(spec.success))}}
        responses.update(_error_responses(codes, "ProtocolError"))
        paths[f"/wallet/{spec.op}"] = {
            "post": {
                "tags": ["wallet protocol"],
                "operationId": str(spec.op),
                "summary": spec.summary,
                "description": spec.description,
                "security": [{SIGNATURE_SCHEME: []}],
                "requestBody": {"required": True, "content": _json(ref(_request_name(spec.op)))},
                "responses": responses,
            }
        }
    return paths


def _request_name(op: Op) -> str:
    return f"{str(op).capitalize()}Request"


def _protocol_schemas() -> dict[str, Schema]:
    codes = [str(c) for c in ErrorCode if c in PROTOCOL_CODES]
    schemas: dict[str, Schema] = {
        "Id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LENGTH,
            "pattern": _NO_CONTROL,
            "description": f"Non-empty, at most {MAX_ID_LENGTH} characters, no control characters.",
        },
        "Currency": {
            "type": "string",
            "enum": list(CURRENCIES),
            "description": "ISO-style code with a fixed exponent: "
            + ", ".join(f"{c.code} {c.exponent}" for c in CURRENCIES.values())
            + ". On the protocol an unknown code is CURRENCY_MISMATCH.",
        },
        "Amount": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "maximum": INT64_MAX,
            "description": "Minor units of `currency`; a JSON integer, never a float or a string. "
            "Stricter than JSON Schema's `integer`: `10.0` is refused with BAD_REQUEST.",
        },
        "Balance": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "maximum": INT64_MAX,
            "description": "Minor units of the player's currency.",
        },
        "WinReason": {"type": "string", "enum": [str(r) for r in WinReason]},
        "ProtocolErrorCode": {
            "type": "string",
            "enum": codes,
            "description": "HTTP status of each code: "
            + ", ".join(f"{c} {http_status(ErrorCode(c))}" for c in codes)
            + ".",
        },
        "ProtocolError": {
            "type": "object",
            "description": "A definitive rejection (4xx) changed nothing; INTERNAL (500) means outcome unknown.",
            "properties": {
                "status": {"const": "error"},
                "code": ref("ProtocolErrorCode"),
                "message": {"type": "string", "description": "For people; never branch on it."},
            },
            "required": ["status", "code", "message"],
        },
        "AuthenticateOk": _ok(
            player_id=ref("Id"), currency=ref("Currency"), balance=ref("Balance"), session_token=ref("Id")
        ),
        "BalanceOk": _ok(balance=ref("Balance"), currency=ref("Currency")),
        "MoneyOk": _ok(
            balance=ref("Balance"),
            currency=ref("Currency"),
            wallet_tx_id={
                "type": "string",
                "minLength": 1,
                "description": "The wallet's id of the transaction; a replay returns the original.",
            },
        ),
    }
    for op in Op:
        schemas[_request_name(op)] = _request_schema(op)
    return schemas


def _ok(**fields: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {"status": {"const": "ok"}, **fields},
        "required": ["status", *fields],
    }


# -- the admin API ----------------------------------------------------------------------

_ADMIN_CODES: Final = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.UNAUTHORIZED,
    ErrorCode.LIMIT_EXCEEDED,
    ErrorCode.PLAYER_NOT_FOUND,
    ErrorCode.NOT_FOUND,
    ErrorCode.PLAYER_EXISTS,
    ErrorCode.INTERNAL,
    ErrorCode.UNAVAILABLE,
)
"""Every code an admin path (or the JSON error middleware) may answer."""

_ADMIN_STATUS_TEXT: Final[dict[int, str]] = {
    **_STATUS_TEXT,
    400: "Malformed request: a bad field, an unknown or missing field, or a body over "
    f"{MAX_BODY // 1024} KiB; nothing changed.",
    401: "Missing or wrong admin token.",
    403: "The balance would exceed the largest balance held; nothing changed.",
    404: "No such player.",
    409: "A player with this id exists; nothing changed.",
    500: "Internal error: outcome unknown.",
}

_PLAYER_PATH: Final = {
    "name": "player_id",
    "in": "path",
    "required": True,
    "schema": ref("Id"),
}


def _time_param(name: str, what: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{what}: unix seconds or an ISO-8601 date or date-time (UTC when no offset is given).",
        "schema": {"type": "string", "examples": ["1735689600", "2025-01-01", "2025-01-01T12:00:00+02:00"]},
    }


def _admin_op(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    codes: tuple[ErrorCode, ...],
    *,
    body: str | None = None,
    body_required: bool = True,
    parameters: list[Schema] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["admin"],
        "operationId": operation_id,
        "summary": summary,
        "security": [{ADMIN_SCHEME: []}],
    }
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": _json(ref(body))}
    errors = (ErrorCode.BAD_REQUEST, ErrorCode.UNAUTHORIZED, *codes, ErrorCode.INTERNAL)
    op["responses"] = {**responses, **_error_responses(errors, "AdminError", _ADMIN_STATUS_TEXT)}
    return op


def _player_answer(status: str = "200", text: str = "The player as it is now.") -> dict[str, Any]:
    return {status: {"description": text, "content": _json(ref("Player"))}}


def _admin_paths() -> dict[str, Any]:
    not_found = (ErrorCode.PLAYER_NOT_FOUND,)
    return {
        "/admin/players": {
            "post": _admin_op(
                "createPlayer",
                "Create a player",
                _player_answer("201", "Created."),
                (ErrorCode.PLAYER_EXISTS,),
                body="CreatePlayer",
                description="The opening balance is logged as a `deposit` row, so the log explains every balance.",
            ),
            "get": _admin_op(
                "listPlayers",
                "List players, a page at a time",
                {"200": {"description": "A page of players in id order.", "content": _json(ref("PlayerPage"))}},
                (),
                parameters=[
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "description": "Players per page.",
                        "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_PAGE, "default": _DEFAULT_PAGE},
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "Only players whose id sorts after this one (the `next` of the previous page).",
                        "schema": ref("Id"),
                    },
                ],
                description="Keyset pagination: ids compare by Unicode code point. Follow `next` (as `after`) "
                "until it is null; players created meanwhile appear if their id sorts after the cursor.",
            ),
        },
        "/admin/players/{player_id}": {
            "parameters": [_PLAYER_PATH],
            "get": _admin_op("getPlayer", "Read a player", _player_answer(), not_found),
        },
        "/admin/players/{player_id}/deposit": {
            "parameters": [_PLAYER_PATH],
            "post": _admin_op(
                "deposit",
                "Credit a player from outside the games",
                _player_answer(),
                (*not_found, ErrorCode.LIMIT_EXCEEDED),
                body="Deposit",
                description="Logged as a `deposit` row (no `tx_id`) in the transaction log.",
            ),
        },
        "/admin/players/{player_id}/block": {
            "parameters": [_PLAYER_PATH],
            "post": _admin_op(
                "blockPlayer",
                "Block a player",
                _player_answer(),
                not_found,
                body="Empty",
                body_required=False,
                description="A blocked player's bets and authentications are `PLAYER_BLOCKED`; "
                "wins and rollbacks are still accepted.",
            ),
        },
        "/admin/players/{player_id}/unblock": {
            "parameters": [_PLAYER_PATH],
            "post": _admin_op(
                "unblockPlayer", "Unblock a player", _player_answer(), not_found, body="Empty", body_required=False
            ),
        },
        "/admin/tokens": {
            "post": _admin_op(
                "issueToken",
                "Issue a launch token",
                {"201": {"description": "A launch token for `authenticate`.", "content": _json(ref("LaunchToken"))}},
                not_found,
                body="IssueToken",
            )
        },
        "/admin/transactions": {
            "get": _admin_op(
                "transactions",
                "Stream the transaction log",
                {
                    "200": {
                        "description": "Rows in `wallet_tx_id` order, streamed. `jsonl`: one TxRow per line. "
                        f"`csv`: a header row ({','.join(TX_COLUMNS)}) then one row per transaction, "
                        "an empty cell for null.",
                        "content": {
                            "application/x-ndjson": {"schema": ref("TxRow")},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    }
                },
                (),
                parameters=[
                    {"name": "player_id", "in": "query", "required": False, "schema": ref("Id")},
                    _time_param("since", "Rows created at or after"),
                    _time_param("until", "Rows created before"),
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "Only rows whose `wallet_tx_id` is greater (to resume a stream).",
                        "schema": {"type": "integer", "minimum": 0, "maximum": INT64_MAX, "default": 0},
                    },
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"},
                    },
                ],
            )
        },
        "/admin/reports/ggr": {
            "get": _admin_op(
                "ggrReport",
                "Gross gaming revenue by game, currency and day",
                {"200": {"description": "The report.", "content": _json(ref("GgrReport"))}},
                (),
                parameters=[_time_param("from", "Rows created at or after"), _time_param("to", "Rows created before")],
                description="GGR = bet amounts − refunds − wins, in minor units of each currency "
                "(never summed across currencies); days are UTC.",
            )
        },
    }


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], required: Iterable[str] | None = None, **extra: Any) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        **extra,
    }


def _admin_schemas() -> dict[str, Schema]:
    count = {"type": "integer", "minimum": 0}
    signed = {"type": "integer", "format": "int64", "description": "Minor units; may be negative."}
    return {
        "Player": _object(
            {
                "player_id": ref("Id"),
                "currency": ref("Currency"),
                "balance": ref("Balance"),
                "blocked": {"type": "boolean"},
            }
        ),
        "PlayerPage": _object(
            {
                "players": {"type": "array", "items": ref("Player")},
                "next": {
                    **_nullable(ref("Id")),
                    "description": "The `after` of the next page; null when this page is the last.",
                },
            }
        ),
        "CreatePlayer": _object(
            {
                "player_id": ref("Id"),
                "currency": ref("Currency"),
                "balance": {**ref("Balance"), "default": 0, "description": "Opening balance in minor units."},
            },
            required=["player_id", "currency"],
            additionalProperties=False,
        ),
        "Deposit": _object(
            {"amount": {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX}},
            additionalProperties=False,
        ),
        "Empty": {"type": "object", "maxProperties": 0, "description": "No fields (the body may also be absent)."},
        "IssueToken": _object(
            {
                "player_id": ref("Id"),
                "ttl_s": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": _MAX_TTL_S,
                    "description": "Lifetime of the session made from this token "
                    "(default: the wallet's --session-ttl).",
                },
            },
            required=["player_id"],
            additionalProperties=False,
        ),
        "LaunchToken": _object(
            {"token": ref("Id"), "player_id": ref("Id"), "ttl_s": {"type": "integer", "minimum": 0}}
        ),
        "TxRow": _object(
            {
                "wallet_tx_id": {"type": "string", "description": "Increasing decimal id."},
                "tx_id": _nullable(ref("Id")),
                "op": {"type": "string", "enum": [*(str(o) for o in (Op.BET, Op.WIN, Op.ROLLBACK)), "deposit"]},
                "player_id": ref("Id"),
                "game_id": _nullable(ref("Id")),
                "round_id": _nullable(ref("Id")),
                "currency": ref("Currency"),
                "amount": {
                    **_nullable(ref("Amount")),
                    "description": "The amount the call carried; null for a rollback.",
                },
                "ref_tx_id": _nullable(ref("Id")),
                "reason": _nullable(ref("WinReason")),
                "round_closed": {"type": ["boolean", "null"]},
                "delta": {**signed, "description": "What the row did to the balance (minor units)."},
                "balance_after": ref("Balance"),
                "rolled_back": {"type": "boolean"},
                "created_at": {"type": "number", "description": "Unix seconds."},
            },
            required=list(TX_COLUMNS),
        ),
        "GgrLine": _object(
            {
                "game_id": {"type": "string"},
                "currency": ref("Currency"),
                "day": {"type": "string", "format": "date"},
                "bets": count,
                "bet_amount": count,
                "wins": count,
                "win_amount": count,
                "rollbacks": count,
                "refund_amount": count,
                "ggr": signed,
            }
        ),
        "GgrReport": _object(
            {
                "from": {"type": ["number", "null"], "description": "Unix seconds, or null when not given."},
                "to": {"type": ["number", "null"], "description": "Unix seconds, or null when not given."},
                "lines": {"type": "array", "items": ref("GgrLine")},
            }
        ),
        "AdminErrorCode": {
            "type": "string",
            "enum": [str(c) for c in _ADMIN_CODES],
            "description": "Admin answers, plus the wallet's JSON error handler (NOT_FOUND: no such route; "
            "UNAVAILABLE: 503).",
        },
        "AdminError": _object(
            {"status": {"const": "error"}, "code": ref("AdminErrorCode"), "message": {"type": "string"}}
        ),
    }


# -- service paths ----------------------------------------------------------------------


def _service_paths() -> dict[str, Any]:
    return {
        "/healthz": {
            "get": {
                "tags": ["service"],
                "operationId": "healthz",
                "summary": "Readiness",
                "security": [],
                "responses": {
                    "200": {"description": "Ready.", "content": _json(_health("ok"))},
                    "503": {"description": _STATUS_TEXT[503], "content": _json(_health("unavailable"))},
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["service"],
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document.", "content": _json({"type": "object"})}},
            }
        },
        "/metrics": {
            "x-croupier-only-with": "--metrics",
            "get": {
                "tags": ["service"],
                "operationId": "metrics",
                "summary": "Prometheus metrics (served only with `--metrics`)",
                "description": "Calls, latency and errors by operation and dialect, in Prometheus' text format "
                               "(docs/metrics.md). Served only when the wallet runs with `--metrics`; without it the "
                               "path is not routed (404).",
                "security": [],
                "responses": {"200": {"description": "Prometheus text exposition format.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }
        },
    }


OPTIONAL_PATHS: dict[str, str] = {"/metrics": "--metrics"}
"""Documented paths the wallet routes only when started with a flag (the flag, by path)."""


def _health(status: str) -> Schema:
    return _object({"status": {"const": status}, "store": {"type": "string", "examples": ["sqlite", "memory"]}})


# -- the document -----------------------------------------------------------------------


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at ``GET /openapi.json`` (built once; do not mutate)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": TITLE,
            "version": getattr(simulator, "__version__", "0.1.0"),
            "description": "The canonical croupier v1 wallet protocol under `/wallet/` (base URL "
            "`http://host:port/wallet`), the reference wallet's admin API under `/admin/`, and "
            "health. PROTOCOL.md is the normative text. The reference wallet also serves every "
            "built-in real-world dialect under `/wallet/<dialect>/` over the same store "
            "(`x-croupier-dialects`); those are other providers' wire formats, mapped field by field "
            "in docs/dialects.md, not described here.",
        },
        "x-croupier-dialects": {name: f"/wallet/{name}/" for name in dialects.names() if name != "canonical"},
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "wallet protocol", "description": "Signed JSON POST per operation; integer minor units."},
            {"name": "admin", "description": "Not part of the protocol: players, launch tokens, reports."},
            {"name": "service", "description": "Health and this document."},
        ],
        "paths": {**_protocol_paths(), **_admin_paths(), **_service_paths()},
        "components": {
            "securitySchemes": {
                SIGNATURE_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": HEADER,
                    "description": f"`{HEADER}: t=<unix seconds>,v1=<hex>` where hex is the HMAC-SHA256, "
                    "keyed by the shared secret, of the bytes `<t>.<raw body>`. A missing, malformed or "
                    f"wrong signature, or a `t` more than {TOLERANCE_S} s from the wallet's clock, is "
                    "401 INVALID_SIGNATURE.",
                },
                ADMIN_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <admin token>`; else 401 UNAUTHORIZED.",
                },
            },
            "schemas": {**_protocol_schemas(), **_admin_schemas()},
        },
    }
