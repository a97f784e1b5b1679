"""The canonical croupier v1 protocol (PROTOCOL.md) as pure functions for both sides.

Decoding is strict about the listed fields on purpose: the reference wallet must
show what a correct wallet refuses.  A missing field, floats or strings for amounts,
booleans where integers belong, control characters in ids and oversized values are
all ``BAD_REQUEST`` before any state is read.  Fields the protocol does not list are
ignored (PROTOCOL.md, Transport: providers add fields over time, and a win or
rollback refused for one would leave a player's money stuck); they are neither
echoed nor stored, and take no part in replay matching.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from .. import signing
from ..calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from ..codes import PROTOCOL_CODES, ErrorCode, http_status
from ..money import INT64_MAX, Money, UnknownCurrency, currency
from .base import DialectBase, DialectError, HttpRequest, HttpResponse, header
from .semantics import CANONICAL

MAX_BODY: Final = 64 * 1024
MAX_ID_LENGTH: Final = 1024
"""Ids (tx, round, player, game, tokens) up to this many characters are accepted."""

JSON_HEADERS: Final = {"Content-Type": "application/json"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

EXTRA_FIELDS: Final[dict[str, Any]] = {
    "x_provider_ref": "ext-7781", "bonus": {"campaign": "spring", "steps": [1, 2, {"k": None}]}, "jackpot_ids": [],
    "is_test": False, "note": None,
}
"""Fields no wallet knows, of every JSON shape: a wallet ignores them (PROTOCOL.md, Transport)."""

VARIANTS: Final = ("amount-float", "amount-string", "amount-negative", "amount-boolean", "amount-past-64-bit",
                   "missing-field", "unknown-currency", "bad-reason", "round-closed-not-boolean", "extra-field",
                   "not-json", "not-an-object", "oversized")
"""The defects ``croupier check`` sends (:meth:`CanonicalDialect.encode_variant`)."""

FIELDS: Final[dict[Op, tuple[str, ...]]] = {
    Op.AUTHENTICATE: ("token", "game_id"),
    Op.BALANCE: ("player_id", "session_token"),
    Op.BET: ("tx_id", "player_id", "session_token", "game_id", "round_id", "currency", "amount"),
    Op.WIN: (
        "tx_id",
        "player_id",
        "session_token",
        "game_id",
        "round_id",
        "currency",
        "amount",
        "reason",
        "round_closed",
    ),
    Op.ROLLBACK: ("tx_id", "ref_tx_id", "player_id", "session_token", "game_id", "round_id"),
}


class _Bad(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _id(body: Mapping[str, Any], name: str) -> str:
    return check_id(body[name], name)


def check_id(value: Any, name: str) -> str:
    """An id as PROTOCOL.md allows it (every dialect's ids obey the same rule): a non-empty string of at
    most MAX_ID_LENGTH characters, no control characters, valid Unicode; else BAD_REQUEST."""
    if not isinstance(value, str):
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} must be a string")
    if not value:
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} is longer than {MAX_ID_LENGTH} characters")
    if _CONTROL.search(value):
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(ErrorCode.BAD_REQUEST, f"{name} is not valid Unicode") from None
    return value


def _amount(body: Mapping[str, Any]) -> Money:
    code = body["currency"]
    if not isinstance(code, str):
        raise _Bad(ErrorCode.BAD_REQUEST, "currency must be a string")
    raw = body["amount"]
    if type(raw) is not int:
        raise _Bad(ErrorCode.BAD_REQUEST, "amount must be an integer of minor units")
    if raw < 0:
        raise _Bad(ErrorCode.BAD_REQUEST, "amount must not be negative")
    if raw > INT64_MAX:
        raise _Bad(ErrorCode.BAD_REQUEST, "amount does not fit a 64-bit balance")
    try:
        return Money(raw, currency(code))
    except UnknownCurrency:
        raise _Bad(ErrorCode.CURRENCY_MISMATCH, f"unknown currency {code[:16]!r}") from None


def parse_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object body or raise a BAD_REQUEST rejection reason."""
    if len(body) > MAX_BODY:
        raise _Bad(ErrorCode.BAD_REQUEST, f"body larger than {MAX_BODY} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Bad(ErrorCode.BAD_REQUEST, f"body is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise _Bad(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    return data


def _fields(op: Op, data: Mapping[str, Any]) -> None:
    """Every listed field of ``op`` is present; any other field is ignored (read by nobody)."""
    wanted = FIELDS[op]
    missing = [k for k in wanted if k not in data]
    if missing:
        raise _Bad(ErrorCode.BAD_REQUEST, f"missing field(s): {', '.join(missing)}")


def call_from_json(op: Op, data: Mapping[str, Any]) -> WalletCall:
    """Validate a decoded body for ``op`` into a call (raises ``_Bad``).  Only the fields of
    ``FIELDS[op]`` are read: the call carries nothing else, whatever else the body held."""
    _fields(op, data)
    if op is Op.AUTHENTICATE:
        return WalletCall.authenticate(_id(data, "token"), _id(data, "game_id"))
    if op is Op.BALANCE:
        return WalletCall.balance(_id(data, "player_id"), _id(data, "session_token"))
    common: dict[str, Any] = {
        "tx_id": _id(data, "tx_id"),
        "player_id": _id(data, "player_id"),
        "session_token": _id(data, "session_token"),
        "game_id": _id(data, "game_id"),
        "round_id": _id(data, "round_id"),
    }
    if op is Op.ROLLBACK:
        return WalletCall(Op.ROLLBACK, ref_tx_id=_id(data, "ref_tx_id"), **common)
    amount = _amount(data)
    if op is Op.BET:
        return WalletCall(Op.BET, amount=amount, **common)
    reason = data["reason"]
    if not isinstance(reason, str) or reason not in WinReason._value2member_map_:
        raise _Bad(ErrorCode.BAD_REQUEST, f"reason must be one of {', '.join(WinReason)}")
    closed = data["round_closed"]
    if not isinstance(closed, bool):
        raise _Bad(ErrorCode.BAD_REQUEST, "round_closed must be true or false")
    return WalletCall(Op.WIN, amount=amount, reason=WinReason(reason), round_closed=closed, **common)


def call_to_json(call: WalletCall) -> dict[str, Any]:
    """The canonical body of ``call`` (fields in PROTOCOL.md order)."""
    out: dict[str, Any] = {}
    for name in FIELDS[call.op]:
        if name == "amount":
            assert call.amount is not None
            out["amount"] = call.amount.minor
        elif name == "currency":
            assert call.amount is not None
            out["currency"] = call.amount.currency.code
        elif name == "reason":
            out["reason"] = str(call.reason or WinReason.REGULAR)
        elif name == "round_closed":
            out["round_closed"] = bool(call.round_closed)
        else:
            out[name] = getattr(call, name)
    return out


def malformed_canonical_body(call: WalletCall, variant: str) -> bytes:
    """The canonical body of ``call`` with one defect (``DialectError``: a variant this call has no field for)."""
    if variant not in VARIANTS:
        raise DialectError(f"unknown variant {variant!r}")
    if variant == "not-json":
        return b'{"tx_id": ' + orjson.dumps(call.tx_id) + b', "amount": '
    if variant == "not-an-object":
        return orjson.dumps([call_to_json(call)])
    body = call_to_json(call)
    amount = body.get("amount", 0)
    if variant == "amount-float":
        body["amount"] = amount + 0.5
    elif variant == "amount-string":
        body["amount"] = str(amount)
    elif variant == "amount-negative":
        body["amount"] = -1 - amount
    elif variant == "amount-boolean":
        body["amount"] = True
    elif variant == "amount-past-64-bit":
        body["amount"] = INT64_MAX + 1
    elif variant == "missing-field":
        if "round_id" not in body:
            raise DialectError(f"a {call.op} call has no round_id to leave out")
        del body["round_id"]
    elif variant == "unknown-currency":
        body["currency"] = "XTS"
    elif variant == "bad-reason":
        body["reason"] = "lucky"
    elif variant == "round-closed-not-boolean":
        body["round_closed"] = "yes"
    elif variant == "extra-field":
        body.update(EXTRA_FIELDS)
    data = orjson.dumps(body)
    if variant == "oversized":
        data += b" " * (64 * 1024 + 1 - len(data) + 16)
    return data


def outcome_to_json(call: WalletCall | None, outcome: Outcome) -> tuple[int, dict[str, Any]]:
    if isinstance(outcome, Ok):
        op = call.op if call else None
        if op is Op.AUTHENTICATE:
            body: dict[str, Any] = {
                "status": "ok",
                "player_id": outcome.player_id,
                "currency": outcome.balance.currency.code,
                "balance": outcome.balance.minor,
                "session_token": outcome.session_token,
            }
        elif op is Op.BALANCE:
            body = {"status": "ok", "balance": outcome.balance.minor, "currency": outcome.balance.currency.code}
        else:
            body = {
                "status": "ok",
                "balance": outcome.balance.minor,
                "currency": outcome.balance.currency.code,
                "wallet_tx_id": outcome.wallet_tx_id,
            }
        return 200, body
    if isinstance(outcome, Rejected):
        return http_status(outcome.code), {"status": "error", "code": str(outcome.code), "message": outcome.message}
    return 500, {"status": "error", "code": "INTERNAL", "message": outcome.reason}


class CanonicalDialect(DialectBase):
    """croupier v1: JSON POST per operation, HMAC-SHA256 header, integer minor units."""

    name = "canonical"
    semantics = CANONICAL
    """PROTOCOL.md's meaning on every axis (:mod:`simulator.protocol.dialects.semantics`)."""
    signature_has_time = True
    """``X-Signature`` binds ``t=``: a request an hour old is INVALID_SIGNATURE."""
    supports_variants = True
    """:meth:`encode_variant` sends every malformed-input variant of ``croupier check``."""
    reads_response_headers = False
    """An answer is its status and JSON body: PROTOCOL.md signs requests ("Every request is signed"), not answers."""

    def __init__(self, secret: str | bytes) -> None:
        self.secret = secret

    # -- simulator side -----------------------------------------------------------------
    def encode_call(self, call: WalletCall, now: float) -> HttpRequest:
        body = orjson.dumps(call_to_json(call))
        headers = dict(JSON_HEADERS)
        headers[signing.HEADER] = signing.sign(self.secret, body, int(now))
        return HttpRequest("POST", str(call.op), headers, body)

    def encode_variant(self, call: WalletCall, now: float, variant: str) -> HttpRequest:
        """The signed request of ``call`` with one defect (``croupier check``'s malformed input): the signature
        is over the defective body, so the defect is what the wallet judges."""
        body = malformed_canonical_body(call, variant)
        headers = dict(JSON_HEADERS)
        headers[signing.HEADER] = signing.sign(self.secret, body, int(now))
        return HttpRequest("POST", str(call.op), headers, body)

    def decode_response(self, call: WalletCall, response: HttpResponse) -> Outcome:
        if response.status >= 500:
            return Unknown(f"HTTP {response.status}", response.status)
        try:
            data = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            return Unknown(f"HTTP {response.status} with a body that is not JSON", response.status)
        if not isinstance(data, dict):
            return Unknown("answer is not a JSON object", response.status)
        if type(data.get("balance")) is float:
            # orjson reads an integer past 2^64 as a float; JSON has no such limit, and PROTOCOL.md sets no
            # largest balance: read it exactly (rare, so the slower parser is fine here). A real float stays one.
            exact = json.loads(response.body)
            if isinstance(exact, dict) and type(exact.get("balance")) is int:
                data = exact
        if response.status == 200 and data.get("status") == "ok":
            return _ok_from_json(call, data, response.status)
        if 400 <= response.status < 500 and data.get("status") == "error":
            code = data.get("code")
            if isinstance(code, str) and code in ErrorCode._value2member_map_:
                ec = ErrorCode(code)
                if ec in PROTOCOL_CODES and http_status(ec) == response.status:
                    msg = data.get("message")
                    return Rejected(ec, msg if isinstance(msg, str) else "")
            return Unknown(f"HTTP {response.status} with unexpected code {code!r}", response.status)
        return Unknown(f"HTTP {response.status} that is neither ok nor a protocol error", response.status)

    # -- wallet side --------------------------------------------------------------------
    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        try:
            op = Op(request.path)
        except ValueError:
            return Rejected(ErrorCode.BAD_REQUEST, f"unknown operation {request.path[:64]!r}")
        if len(request.body) > MAX_BODY:
            return Rejected(ErrorCode.BAD_REQUEST, f"body larger than {MAX_BODY} bytes")
        try:
            signing.verify(self.secret, header(request.headers, signing.HEADER), request.body, now)
        except signing.SignatureError as exc:
            return Rejected(ErrorCode.INVALID_SIGNATURE, str(exc))
        try:
            return call_from_json(op, parse_object(request.body))
        except _Bad as bad:
            return Rejected(bad.code, bad.message)

    def encode_response(self, call: WalletCall | None, outcome: Outcome) -> HttpResponse:
        status, body = outcome_to_json(call, outcome)
        return HttpResponse(status, dict(JSON_HEADERS), orjson.dumps(body))



def _ok_from_json(call: WalletCall, data: Mapping[str, Any], status: int) -> Outcome:
    """Read a success; a success we cannot read is ``Unknown`` (the ledger flags the violation)."""
    bal = data.get("balance")
    code = data.get("currency")
    if type(bal) is not int or not isinstance(code, str):
        return Unknown("success without an integer balance and a currency", status)
    try:
        balance = Money(bal, currency(code))
    except UnknownCurrency:
        return Unknown(f"success in unknown currency {code!r}", status)
    get: Callable[[str], Any] = data.get
    if call.op is Op.AUTHENTICATE:
        pid, tok = get("player_id"), get("session_token")
        if not isinstance(pid, str) or not isinstance(tok, str):
            return Unknown("authenticate success without player_id and session_token", status)
        return Ok(balance, player_id=pid, session_token=tok)
    if call.op is Op.BALANCE:
        return Ok(balance)
    wtx = get("wallet_tx_id")
    if not isinstance(wtx, str) or not wtx:
        return Unknown("success without a wallet_tx_id", status)
    return Ok(balance, wallet_tx_id=wtx)
