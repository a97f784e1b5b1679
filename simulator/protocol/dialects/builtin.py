"""The built-in real-world wallet shapes, each a description for the declarative engine.

Named by their shape, not by a vendor: each follows the public facts gathered in
the research notes (docs/dialects.md cites them), and each sits on a different
point of the axes real wallets differ on:

=============  ==============================  =====================  ===================  ===========================
dialect        transport                       authentication         amounts              errors / replay / rollback
=============  ==============================  =====================  ===================  ===========================
json-rsa       JSON POST ``user/info`` …       RSA-SHA256 of the      integers ×100 000    HTTP 200 + ``RS_*`` status;
               ``transaction/rollback``        body, both directions                       replay = original result
form-md5       form POST ``bet.html`` …        MD5 of sorted params   decimal, 2 places    HTTP 200 + ``error`` number;
               ``endRound.html``               + secret (``hash``)                         separate end-of-round call
token-query    JSON POST ``check`` ``debit``   static token in the    decimal numbers,     HTTP 200 + ``status``; replays
               ``credit`` ``cancel`` …         ``authToken`` query    6 places             and unknown cancels answered
                                                                                           with codes of their own
actions-hmac   JSON POST ``play`` with an      HMAC-SHA256 of the     integer subunits     HTTP status + ``code``
               ``actions`` list, ``rollback``  body in a header
=============  ==============================  =====================  ===================  ===========================

Where the public API has no field or code for something the canonical protocol
needs (a rollback's own id, a round-closed flag, a code for a closed round),
the description adds one and docs/dialects.md marks it "croupier extension".
"""

from __future__ import annotations

from typing import Any, Final

from .declarative import DeclarativeDialect
from .spec import Spec, load_spec

_ID = "request_id"

JSON_RSA: Final[dict[str, Any]] = {
    "name": "json-rsa",
    "description": "JSON per operation under user/ and transaction/, RSA-SHA256 body signatures both ways, "
                   "amounts as integers x100000, HTTP 200 with an RS_* status",
    "request": {"format": "json"},
    "amount": {"encoding": "scaled", "places": 5},
    "signature": {"scheme": "rsa-sha256", "header": "X-Hub88-Signature", "sign_responses": True},
    "operations": [
        {"op": "authenticate", "path": "user/info",
         "fields": {"token": "token", "game_code": "game_id", "request_uuid": _ID}},
        {"op": "balance", "path": "user/balance",
         "fields": {"user": "player_id", "token": "session_token", "request_uuid": _ID}},
        {"op": "bet", "path": "transaction/bet",
         "fields": {"user": "player_id", "transaction_uuid": "tx_id", "token": "session_token", "round": "round_id",
                    "request_uuid": _ID, "game_code": "game_id", "currency": "currency", "amount": "amount"}},
        {"op": "win", "path": "transaction/win",
         "fields": {"user": "player_id", "transaction_uuid": "tx_id", "token": "session_token", "round": "round_id",
                    "round_closed": "round_closed", "request_uuid": _ID, "game_code": "game_id",
                    "currency": "currency", "amount": "amount", "meta.reason": "reason"}},
        {"op": "rollback", "path": "transaction/rollback",
         "fields": {"user": "player_id", "transaction_uuid": "tx_id", "reference_transaction_uuid": "ref_tx_id",
                    "token": "session_token", "round": "round_id", "request_uuid": _ID, "game_code": "game_id"}},
    ],
    "response": {
        "success": "status-field",
        "ok": "RS_OK",
        "ok_fields": {"user": "player_id", "status": "status", "request_uuid": "request_id", "currency": "currency",
                      "balance": "balance", "token": "session_token"},
        "error_fields": {"status": "status", "request_uuid": "request_id"},
        "codes": {
            "BAD_REQUEST": "RS_ERROR_WRONG_SYNTAX",
            "INVALID_SIGNATURE": "RS_ERROR_INVALID_SIGNATURE",
            "INVALID_TOKEN": "RS_ERROR_INVALID_TOKEN",
            "SESSION_EXPIRED": "RS_ERROR_TOKEN_EXPIRED",
            "INSUFFICIENT_FUNDS": "RS_ERROR_NOT_ENOUGH_MONEY",
            "PLAYER_BLOCKED": "RS_ERROR_USER_DISABLED",
            "LIMIT_EXCEEDED": "RS_ERROR_LIMIT_REACHED",
            "PLAYER_NOT_FOUND": "RS_ERROR_USER_NOT_FOUND",
            "ROUND_NOT_FOUND": "RS_ERROR_TRANSACTION_DOES_NOT_EXIST",
            "DUPLICATE_MISMATCH": "RS_ERROR_DUPLICATE_TRANSACTION",
            "TX_ROLLED_BACK": "RS_ERROR_TRANSACTION_ROLLED_BACK",
            "ROLLBACK_NOT_ALLOWED": "RS_ERROR_ROLLBACK_NOT_ALLOWED",
            "ROUND_CLOSED": "RS_ERROR_ROUND_CLOSED",
            "CURRENCY_MISMATCH": "RS_ERROR_WRONG_CURRENCY",
        },
        "decode_codes": {"RS_ERROR_WRONG_TYPES": "BAD_REQUEST"},
        "unknown_codes": ["RS_ERROR_UNKNOWN", "RS_ERROR_TIMEOUT"],
    },
}

_PP_COMMON = {"userId": "player_id", "gameId": "game_id", "roundId": "round_id", "providerId": {"const": "croupier"},
              "timestamp": "timestamp_ms", "token": "session_token", "currency": "currency"}

FORM_MD5: Final[dict[str, Any]] = {
    "name": "form-md5",
    "description": "form-encoded POST to <operation>.html, hash = MD5 of the sorted parameters + secret, "
                   "2-decimal amounts, JSON answers with an error number, a separate endRound.html",
    "request": {"format": "form"},
    "amount": {"encoding": "decimal-number", "places": 2},
    "signature": {"scheme": "md5-sorted-params", "param": "hash"},
    "operations": [
        {"op": "authenticate", "path": "authenticate.html",
         "fields": {"token": "token", "providerId": {"const": "croupier"}, "gameId": "game_id"}},
        {"op": "balance", "path": "balance.html",
         "fields": {"userId": "player_id", "token": "session_token", "providerId": {"const": "croupier"}}},
        {"op": "bet", "path": "bet.html",
         "fields": {**_PP_COMMON, "reference": "tx_id", "amount": "amount"}},
        {"op": "win", "path": "endRound.html", "when": {"reason": ["regular"], "amount_zero": True, "round_closed": True},
         "fields": {**_PP_COMMON, "reference": "tx_id"}},
        {"op": "win", "path": "result.html", "when": {"reason": ["regular", "free_spin"]},
         "fields": {**_PP_COMMON, "reference": "tx_id", "amount": "amount", "roundDetails": "reason",
                    "roundEnded": "round_closed"},
         "values": {"reason": {"regular": "spin", "free_spin": "freespin"}}},
        {"op": "win", "path": "bonusWin.html", "when": {"reason": ["bonus"]},
         "fields": {**_PP_COMMON, "reference": "tx_id", "amount": "amount", "roundEnded": "round_closed"}},
        {"op": "win", "path": "jackpotWin.html", "when": {"reason": ["jackpot"]},
         "fields": {**_PP_COMMON, "reference": "tx_id", "amount": "amount", "roundEnded": "round_closed"}},
        {"op": "win", "path": "promoWin.html", "when": {"reason": ["promo", "tournament", "cashback"]},
         "fields": {**_PP_COMMON, "reference": "tx_id", "amount": "amount", "campaignType": "reason",
                    "roundEnded": "round_closed"},
         "values": {"reason": {"tournament": "T", "cashback": "CB", "promo": "PROMO"}}},
        {"op": "rollback", "path": "refund.html",
         "fields": {"userId": "player_id", "gameId": "game_id", "roundId": "round_id",
                    "providerId": {"const": "croupier"}, "timestamp": "timestamp_ms", "token": "session_token",
                    "reference": "ref_tx_id", "refundReference": "tx_id"}},
    ],
    "response": {
        "success": "status-field",
        "ok": 0,
        "ok_fields": {"transactionId": "wallet_tx_id", "userId": "player_id", "token": "session_token",
                      "currency": "currency", "cash": "balance", "bonus": {"const": 0}, "error": "status",
                      "description": {"const": "Success"}},
        "error_fields": {"error": "status", "description": "message"},
        "codes": {
            "BAD_REQUEST": 7, "INVALID_SIGNATURE": 5, "INVALID_TOKEN": 4, "SESSION_EXPIRED": 1004,
            "INSUFFICIENT_FUNDS": 1, "PLAYER_BLOCKED": 6, "LIMIT_EXCEEDED": 50, "PLAYER_NOT_FOUND": 2,
            "ROUND_NOT_FOUND": 1009, "DUPLICATE_MISMATCH": 1010, "TX_ROLLED_BACK": 1011,
            "ROLLBACK_NOT_ALLOWED": 1012, "ROUND_CLOSED": 1013, "CURRENCY_MISMATCH": 1014,
        },
        "unknown_codes": [100, 120, 130],
    },
}

_EVO_BASE = {"sid": "session_token", "userId": "player_id", "currency": "currency", "game.id": "round_id",
             "game.details.table.id": "game_id"}

TOKEN_QUERY: Final[dict[str, Any]] = {
    "name": "token-query",
    "description": "JSON POST check/balance/debit/credit/cancel/promo_payout, a static authToken query parameter, "
                   "decimal numbers with 6 places, HTTP 200 with a status; replays and cancels of unknown bets "
                   "answered with codes of their own",
    "request": {"format": "json"},
    "amount": {"encoding": "decimal-number", "places": 6},
    "signature": {"scheme": "static-token", "query": "authToken"},
    "operations": [
        {"op": "authenticate", "path": "check",
         "fields": {"sid": "token", "game.details.table.id": "game_id", "uuid": _ID}},
        {"op": "balance", "path": "balance", "fields": {"sid": "session_token", "userId": "player_id", "uuid": _ID}},
        {"op": "bet", "path": "debit",
         "fields": {**_EVO_BASE, "transaction.id": "tx_id", "transaction.amount": "amount", "uuid": _ID}},
        {"op": "win", "path": "credit", "when": {"reason": ["regular"]},
         "fields": {**_EVO_BASE, "transaction.id": "tx_id", "transaction.amount": "amount",
                    "roundClosed": "round_closed", "uuid": _ID}},
        {"op": "win", "path": "promo_payout",
         "when": {"reason": ["free_spin", "bonus", "jackpot", "promo", "tournament", "cashback"]},
         "fields": {**_EVO_BASE, "promoTransaction.type": "reason", "promoTransaction.id": "tx_id",
                    "promoTransaction.amount": "amount", "roundClosed": "round_closed", "uuid": _ID},
         "values": {"reason": {"free_spin": "FreeRoundPlayableSpent", "jackpot": "JackpotWin", "bonus": "Bonus",
                               "promo": "Promo", "tournament": "Tournament", "cashback": "Cashback"}}},
        {"op": "rollback", "path": "cancel",
         "fields": {"sid": "session_token", "userId": "player_id", "game.id": "round_id",
                    "game.details.table.id": "game_id", "transaction.id": "tx_id", "transaction.refId": "ref_tx_id",
                    "uuid": _ID}},
    ],
    "response": {
        "success": "status-field",
        "ok": "OK",
        "ok_fields": {"status": "status", "sid": "session_token", "userId": "player_id", "balance": "balance",
                      "bonus": {"const": 0}, "currency": "currency", "uuid": "request_id"},
        "error_fields": {"status": "status", "uuid": "request_id"},
        "codes": {
            "BAD_REQUEST": "INVALID_PARAMETER",
            "INVALID_SIGNATURE": "INVALID_TOKEN_ID",
            "INVALID_TOKEN": "INVALID_SID",
            "SESSION_EXPIRED": "SESSION_EXPIRED",
            "INSUFFICIENT_FUNDS": "INSUFFICIENT_FUNDS",
            "PLAYER_BLOCKED": "ACCOUNT_LOCKED",
            "LIMIT_EXCEEDED": "LIMIT_EXCEEDED",
            "PLAYER_NOT_FOUND": "PLAYER_NOT_FOUND",
            "ROUND_NOT_FOUND": "BET_DOES_NOT_EXIST",
            "DUPLICATE_MISMATCH": "TRANSACTION_MISMATCH",
            "TX_ROLLED_BACK": "FINAL_ERROR_ACTION_FAILED",
            "ROLLBACK_NOT_ALLOWED": "CANCEL_NOT_ALLOWED",
            "ROUND_CLOSED": "ROUND_CLOSED",
            "CURRENCY_MISMATCH": "INVALID_CURRENCY",
        },
        "http_status": {"INVALID_SIGNATURE": 401},
        "unknown_codes": ["TEMPORARY_ERROR", "UNKNOWN_ERROR", "OPERATION_IN_PROCESS"],
        "replay": {"bet": "BET_ALREADY_EXIST", "win": "BET_ALREADY_SETTLED", "rollback": "BET_ALREADY_SETTLED"},
        "rollback_unknown": "BET_DOES_NOT_EXIST",
    },
}

_SS_BASE = {"user_id": "player_id", "session_id": "session_token", "currency": "currency", "game": "game_id",
            "game_id": "round_id"}

ACTIONS_HMAC: Final[dict[str, Any]] = {
    "name": "actions-hmac",
    "description": "JSON POST play with a list of actions (none: a balance request) and rollback, "
                   "X-REQUEST-SIGN = HMAC-SHA256 of the body, integer subunits, HTTP status + code on errors",
    "request": {"format": "json"},
    "amount": {"encoding": "minor"},
    "signature": {"scheme": "hmac-sha256", "header": "X-REQUEST-SIGN", "encoding": "hex"},
    "operations": [
        {"op": "authenticate", "path": "session", "fields": {"token": "token", "game": "game_id"}},
        {"op": "balance", "path": "play",
         "fields": {"user_id": "player_id", "session_id": "session_token", "actions": {"const": []}}},
        {"op": "bet", "path": "play",
         "fields": {**_SS_BASE, "finished": {"const": False}, "actions.0.action": {"const": "bet"},
                    "actions.0.action_id": "tx_id", "actions.0.amount": "amount"}},
        {"op": "win", "path": "play",
         "fields": {**_SS_BASE, "finished": "round_closed", "actions.0.action": {"const": "win"},
                    "actions.0.action_id": "tx_id", "actions.0.amount": "amount", "actions.0.reason": "reason"}},
        {"op": "rollback", "path": "rollback",
         "fields": {"user_id": "player_id", "session_id": "session_token", "game": "game_id", "game_id": "round_id",
                    "actions.0.action": {"const": "rollback"}, "actions.0.action_id": "tx_id",
                    "actions.0.original_action_id": "ref_tx_id"}},
    ],
    # A play may carry several bets and wins, applied in order (docs/dialects.md).
    "batch": {"list": "actions", "answers": "transactions"},
    "response": {
        "success": "http-200",
        "ok_fields": {"user_id": "player_id", "session_id": "session_token", "balance": "balance",
                      "currency": "currency", "transactions.0.action_id": "tx_id",
                      "transactions.0.tx_id": "wallet_tx_id"},
        "error_fields": {"code": "status", "message": "message", "action_id": "tx_id"},
        "codes": {
            "BAD_REQUEST": 400, "INVALID_SIGNATURE": 403, "INVALID_TOKEN": 101, "SESSION_EXPIRED": 102,
            "INSUFFICIENT_FUNDS": 100, "PLAYER_BLOCKED": 110, "LIMIT_EXCEEDED": 106, "PLAYER_NOT_FOUND": 404,
            "ROUND_NOT_FOUND": 406, "DUPLICATE_MISMATCH": 409, "TX_ROLLED_BACK": 410, "ROLLBACK_NOT_ALLOWED": 405,
            "ROUND_CLOSED": 411, "CURRENCY_MISMATCH": 154,
        },
        "http_status": {"INSUFFICIENT_FUNDS": 412, "INVALID_SIGNATURE": 403},
        "unknown_codes": [500, 502, 503, 504],
    },
}

SPECS: Final[dict[str, dict[str, Any]]] = {
    d["name"]: d for d in (JSON_RSA, FORM_MD5, TOKEN_QUERY, ACTIONS_HMAC)
}
_LOADED: dict[str, Spec] = {}


def spec(name: str) -> Spec | None:
    """The validated description of a built-in shape (validated once, on first use)."""
    if name not in SPECS:
        return None
    if name not in _LOADED:
        _LOADED[name] = load_spec(SPECS[name])
    return _LOADED[name]


def builtin(name: str, secret: str) -> DeclarativeDialect | None:
    found = spec(name)
    return DeclarativeDialect(found, secret) if found is not None else None
