"""A wallet dialect described by data (a TOML file, or a dict in code): both sides, pure.

Real wallet APIs differ along a few axes (transport, authentication, amounts,
errors, replay and unknown-rollback answers; see docs/dialects.md).  One engine
reads a description of those choices and becomes a :class:`~simulator.dialects.Dialect`:
the built-in real-world shapes are descriptions in :mod:`simulator.dialects.builtin`,
and a user's wallet is a TOML file with the same keys.  ``load_spec`` validates a
description and names every problem it finds, so ``croupier dialect check`` can
print them all at once.

The wallet side reads only the fields an operation lists and ignores every other
one, at any depth (PROTOCOL.md, Transport: providers add fields over time); a
listed field that is missing or of the wrong kind is still refused, and a list the
description indexes (``actions.0.…``) may not carry more entries than it names.
Signatures are checked over the body (or every form parameter) as sent, unknown
ones included; each scheme is a class of :mod:`simulator.dialects.signatures`.

A description also says what its calls *mean* (``[semantics]``,
:mod:`simulator.dialects.semantics`): which call fields the wire leaves out (a
session-identified player, the account's currency, no rounds) and which it adds (the
bet a win pays, a rollback's amount, a second session id); validation follows them.
Answers may read their code from several fields in precedence (``code_fields``), map
only some canonical codes (any other code is ``ErrorCode.UNMAPPED``, "some refusal"),
and leave out the currency (the call's, else the account's as the provider knows it).
An operation with ``method = "GET"`` carries its fields in the query string.

Money never goes through a float: decimal amounts are rendered from integer
minor units with :meth:`Money.to_decimal`-style exact arithmetic and parsed with
``json.loads(parse_float=Decimal)`` and :meth:`Money.from_decimal`.  A call the wire
cannot express (more decimals than the format carries) raises :class:`DialectError`
instead of being rounded.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from ..calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from ..codes import PROTOCOL_CODES, ErrorCode, http_status
from ..money import INT64_MAX, Currency, Money, MoneyError, UnknownCurrency, currency
from . import semantics as semantics_mod
from .base import DialectBase, DialectError, HttpRequest, HttpResponse
from .canonical import _Bad, check_id
from .semantics import CANONICAL, Semantics
from .signatures import SCHEMES as SCHEME_CLASSES
from .signatures import Message, Scheme, SigConfig, param_text

MAX_BODY: Final = 64 * 1024
QUERY_SAFE: Final = "!$'()*,/:@?"
"""Left unescaped in a GET's query: what HTTP clients (aiohttp's yarl) would unescape anyway, so the
query arrives byte for byte as it was signed."""
MAX_BATCH: Final = 100
"""Actions in one request, at most (a round's bets and wins; more is an abuse, not a round)."""
_REQUEST_NS: Final = uuid.UUID("6f1c1a52-7d0e-4c55-9a57-0a3c4b1f2e90")

SOURCES: Final = ("tx_id", "ref_tx_id", "player_id", "session_token", "token", "game_id", "round_id", "amount",
                  "currency", "reason", "round_closed", "request_id", "timestamp_ms", "timestamp_s", "bet_tx_id",
                  "session_ref")
"""What a request field may carry: a call's field, or a generated value.  ``bet_tx_id`` (a win: the
bet it pays) and ``session_ref`` (a second session id) are left out of a request whose call has none;
so is a rollback's ``amount``."""

REQUIRED: Final[dict[Op, tuple[str, ...]]] = {
    Op.AUTHENTICATE: ("token", "game_id"),
    Op.BALANCE: ("player_id", "session_token"),
    Op.BET: ("tx_id", "player_id", "session_token", "game_id", "round_id", "currency", "amount"),
    Op.WIN: ("tx_id", "player_id", "session_token", "game_id", "round_id", "currency", "amount", "reason",
             "round_closed"),
    Op.ROLLBACK: ("tx_id", "ref_tx_id", "player_id", "session_token", "game_id", "round_id"),
}
"""The call fields each operation must carry on the wire under PROTOCOL.md's semantics (a win's reason,
closing flag and amount may instead be implied by which operation it is sent as: ``when``); a
dialect's ``[semantics]`` take some away and add others (:func:`required_sources`)."""

OPTIONAL_SOURCES: Final = frozenset({"bet_tx_id", "session_ref"})
"""Sources a request carries only when its call has them (decoded as None when absent)."""

RESPONSE_SOURCES: Final = ("status", "message", "balance", "currency", "wallet_tx_id", "player_id",
                           "session_token", "request_id", "tx_id")
AMOUNT_ENCODINGS: Final = ("minor", "minor-string", "scaled", "decimal-string", "decimal-number")
SCHEMES: Final = tuple(SCHEME_CLASSES)
VARIANTS: Final = ("amount-float", "amount-string", "amount-negative", "amount-boolean", "amount-past-64-bit",
                   "missing-field", "unknown-currency", "bad-reason", "round-closed-not-boolean", "extra-field",
                   "not-json", "not-an-object", "oversized")
"""The defects :meth:`DeclarativeDialect.encode_variant` makes (the check's malformed-input mutations)."""
EXTRA_FIELDS: Final[dict[str, Any]] = {
    "x_provider_ref": "ext-7781", "x_bonus": {"campaign": "spring", "steps": [1, 2, {"k": None}]},
    "x_jackpot_ids": [], "x_is_test": False, "x_note": None,
}
"""Fields no wallet knows, of every JSON shape (the extra-field variant; flat wires get them as text)."""


class SpecError(ValueError):
    """A dialect description that cannot work; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# -- the description ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class Operation:
    """One wire endpoint and which calls go to it."""

    op: Op
    path: str
    method: str
    fields: tuple[tuple[str, str | Const], ...]
    when_reason: frozenset[WinReason] | None = None
    when_amount_zero: bool | None = None
    when_round_closed: bool | None = None
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def sources(self) -> set[str]:
        return {s for _, s in self.fields if isinstance(s, str)}

    def matches(self, call: WalletCall) -> bool:
        if call.op is not self.op:
            return False
        if self.when_reason is not None and (call.reason or WinReason.REGULAR) not in self.when_reason:
            return False
        if self.when_amount_zero is not None and (call.amount is not None and call.amount.minor == 0) != self.when_amount_zero:
            return False
        return self.when_round_closed is None or bool(call.round_closed) == self.when_round_closed


@dataclass(frozen=True)
class Spec:
    name: str
    format: str  # "json" | "form"
    amount: str
    places: int
    scheme: str
    sig_header: str | None
    sig_param: str | None
    sig_query: str | None
    sig_encoding: str
    sign_responses: bool
    operations: tuple[Operation, ...]
    success: str  # "status-field" | "http-200"
    status_field: str | None
    ok_value: Any
    ok_fields: tuple[tuple[str, str | Const], ...]
    error_fields: tuple[tuple[str, str | Const], ...]
    codes: Mapping[ErrorCode, Any]
    decode_codes: Mapping[Any, ErrorCode]
    http_status: Mapping[ErrorCode, int]
    unknown_codes: tuple[Any, ...]
    replay: Mapping[Op, Any]
    rollback_unknown: Any
    description: str = ""
    batch_list: str | None = None
    """The request field holding a list of actions: bet and win operations whose fields sit
    under ``<batch_list>.0.`` may go several to one request, applied in order."""
    batch_answers: str | None = None
    """The answer's list with one entry per action (``ok_fields`` under ``<batch_answers>.0.``)."""
    semantics: Semantics = CANONICAL
    """What the calls carry and mean (``[semantics]``; PROTOCOL.md's when absent)."""
    code_fields: tuple[str, ...] = ()
    """Where an answer's code is read, in precedence: the first present and not null
    (``[response] code_fields``; the status field when empty)."""
    sig_timestamp_header: str | None = None
    """The header a timestamped signature puts its unix seconds in."""

    def flat(self, o: Operation) -> bool:
        """Whether ``o``'s fields travel as text parameters (a form body, or a GET's query string)."""
        return self.format == "form" or o.method == "GET"

    def read_codes_from(self) -> tuple[str, ...]:
        return self.code_fields or ((self.status_field,) if self.status_field else ())

    def batchable(self) -> tuple[Operation, ...]:
        """The operations a batch may carry (none when the format has no batches)."""
        if self.batch_list is None:
            return ()
        prefix = f"{self.batch_list}.0."
        return tuple(o for o in self.operations
                     if o.op in (Op.BET, Op.WIN) and any(k.startswith(prefix) for k, _ in o.fields))

    def in_item(self, key: str) -> bool:
        return self.batch_list is not None and key.startswith(f"{self.batch_list}.0.")

    @property
    def max_exponent(self) -> int:
        """The largest currency exponent whose every amount the format carries exactly."""
        return 10**9 if self.amount in ("minor", "minor-string") else self.places

    def status_of(self, code: ErrorCode) -> int:
        if code in self.http_status:
            return self.http_status[code]
        return 200 if self.success == "status-field" else http_status(code)


# -- loading and validation ---------------------------------------------------------------------


def _fields(raw: Any, where: str, problems: list[str], allowed: tuple[str, ...]) -> tuple[tuple[str, str | Const], ...]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append(f"{where}: needs a table of wire field -> source")
        return ()
    out: list[tuple[str, str | Const]] = []
    for key, value in raw.items():
        if isinstance(value, str):
            if value not in allowed:
                problems.append(f"{where}.{key}: unknown source {value!r} (one of {', '.join(allowed)})")
            out.append((key, value))
        elif isinstance(value, Mapping) and set(value) == {"const"}:
            out.append((key, Const(value["const"])))
        else:
            problems.append(f"{where}.{key}: a source name or {{ const = VALUE }}")
    return tuple(out)


def _code_key(value: Any) -> Any:
    return value


def load_spec(data: Mapping[str, Any]) -> Spec:
    """Validate a dialect description (the parsed TOML) or raise :class:`SpecError` listing every problem."""
    try:
        return _load_spec(data)
    except (AttributeError, TypeError, KeyError) as exc:
        # A table where a list belongs (or the reverse) deep inside: name it rather than crash.
        raise SpecError([f"malformed description (a value of the wrong kind): {exc}"]) from None


def required_sources(o: Operation, sem: Semantics) -> tuple[str, ...]:
    """The sources ``o`` must carry under ``sem``: PROTOCOL.md's, less what the semantics leave out
    (a rollback found by its transaction id alone needs no round or game), plus a named bet (regular
    wins, ``win_bet = "named"``) and a rollback's amount (``rollback_amount``)."""
    gone = set()
    if not sem.names_player:
        gone.add("player_id")
    if not sem.carries_currency:
        gone.add("currency")
    if not sem.rounds:
        gone |= {"round_id", "round_closed"}
    if o.op is Op.ROLLBACK and sem.rollback_by == "tx":
        gone |= {"game_id", "round_id"}  # found by the transaction id alone: round and game do not matter
    need = [n for n in REQUIRED[o.op] if n not in gone]
    if o.op is Op.WIN and sem.names_bet and (o.when_reason is None or WinReason.REGULAR in o.when_reason):
        need.append("bet_tx_id")
    if o.op is Op.ROLLBACK and sem.rollback_amount:
        need.append("amount")
    return tuple(need)


def banned_sources(op: Op, sem: Semantics) -> dict[str, str]:
    """The sources an ``op`` operation must not carry under ``sem``, and why."""
    out: dict[str, str] = {}
    if not sem.names_player:
        out["player_id"] = 'the session identifies the player (semantics.player = "session")'
    if not sem.carries_currency:
        out["currency"] = 'calls carry no currency (semantics.currency = "account")'
    if not sem.rounds:
        out["round_id"] = out["round_closed"] = "there are no rounds (semantics.rounds = false)"
    if op is not Op.WIN:
        out["bet_tx_id"] = "only a win names the bet it pays"
    if op is Op.ROLLBACK and not sem.rollback_amount:
        out["amount"] = "a rollback carries no amount unless semantics.rollback_amount = true"
    return out


def _load_spec(data: Mapping[str, Any]) -> Spec:
    problems: list[str] = []
    known_top = {"name", "description", "request", "amount", "signature", "operations", "response", "batch",
                 "semantics"}
    for key in data:
        if key not in known_top:
            problems.append(f"unknown top-level key {key!r} (known: {', '.join(sorted(known_top))})")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", name):
        problems.append("name: lower-case letters, digits and dashes")
        name = "unnamed"
    sem = semantics_mod.load(data.get("semantics"), problems)
    req = data.get("request", {})
    fmt = req.get("format", "json") if isinstance(req, Mapping) else "json"
    if fmt not in ("json", "form"):
        problems.append("request.format: 'json' or 'form'")
    amt = data.get("amount", {})
    if not isinstance(amt, Mapping):
        amt = {}
    encoding = amt.get("encoding")
    places = amt.get("places", 0)
    if encoding not in AMOUNT_ENCODINGS:
        problems.append(f"amount.encoding: one of {', '.join(AMOUNT_ENCODINGS)}")
    if type(places) is not int or not 0 <= places <= 18:
        problems.append("amount.places: an integer 0..18")
        places = 0
    if encoding in ("minor", "minor-string") and places:
        problems.append("amount.places: minor units take no places")
    sig = data.get("signature", {})
    if not isinstance(sig, Mapping):
        sig = {}
    for k in sig:
        if k not in ("scheme", "header", "param", "query", "encoding", "timestamp_header", "sign_responses"):
            problems.append(f"signature.{k}: unknown key (scheme, header, param, query, encoding, "
                            "timestamp_header, sign_responses)")
    scheme = sig.get("scheme", "none")
    if scheme not in SCHEMES:
        problems.append(f"signature.scheme: one of {', '.join(SCHEMES)}")
    header, param, query = sig.get("header"), sig.get("param"), sig.get("query")
    ts_header = sig.get("timestamp_header")
    sig_encoding = sig.get("encoding", "base64" if scheme == "rsa-sha256" else "hex")
    if sig_encoding not in ("hex", "base64"):
        problems.append("signature.encoding: 'hex' or 'base64'")
    for key, value in (("header", header), ("param", param), ("query", query), ("timestamp_header", ts_header)):
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(f"signature.{key}: a name")
    sign_responses = bool(sig.get("sign_responses", False))
    if sign_responses and not (scheme in SCHEME_CLASSES and SCHEME_CLASSES[scheme].signs_bodies):
        problems.append("signature.sign_responses: only for header signatures of the body")

    ops: list[Operation] = []
    raw_ops = data.get("operations")
    if not isinstance(raw_ops, list) or not raw_ops:
        problems.append("operations: needs [[operations]] entries")
        raw_ops = []
    for i, o in enumerate(raw_ops):
        where = f"operations[{i}]"
        if not isinstance(o, Mapping):
            problems.append(f"{where}: a table")
            continue
        try:
            op = Op(str(o.get("op")))
        except ValueError:
            problems.append(f"{where}.op: one of {', '.join(Op)}")
            continue
        path = o.get("path")
        if not isinstance(path, str) or not path or path.startswith("/") or "?" in path:
            problems.append(f"{where}.path: relative to the wallet's base URL, no leading slash, no query")
            path = "?"
        method = o.get("method", "POST")
        if method not in ("POST", "PUT", "GET"):
            problems.append(f"{where}.method: POST, PUT or GET")
        where = f"{where} ({op} {path})"
        flds = _fields(o.get("fields"), f"{where}.fields", problems, SOURCES)
        if fmt == "form" or method == "GET":
            for key, _ in flds:
                if "." in key:
                    problems.append(f"{where}.fields.{key}: "
                                    f"{'form bodies' if fmt == 'form' else 'GET query strings'} are flat "
                                    "(no nested paths)")
        when = o.get("when", {})
        reasons = None
        if "reason" in when:
            try:
                reasons = frozenset(WinReason(r) for r in when["reason"])
            except (ValueError, TypeError):
                problems.append(f"{where}.when.reason: a list of {', '.join(WinReason)}")
        for k in when:
            if k not in ("reason", "amount_zero", "round_closed"):
                problems.append(f"{where}.when.{k}: unknown condition (reason, amount_zero, round_closed)")
        if when and op is not Op.WIN:
            problems.append(f"{where}.when: only win operations have variants")
        if "round_closed" in when and not sem.rounds:
            problems.append(f"{where}.when.round_closed: there are no rounds (semantics.rounds = false)")
        values = o.get("values", {})
        if not isinstance(values, Mapping):
            problems.append(f"{where}.values: a table source -> {{canonical value = wire value}}")
            values = {}
        for src, table in values.items():
            if src not in ("reason", "round_closed"):
                problems.append(f"{where}.values.{src}: only reason and round_closed take value maps")
            elif not isinstance(table, Mapping) or len(set(map(repr, table.values()))) != len(table):
                problems.append(f"{where}.values.{src}: distinct wire values (decoding must be exact)")
            elif src == "reason" and set(table) - set(WinReason):
                problems.append(f"{where}.values.reason: keys are {', '.join(WinReason)}")
            elif src == "round_closed" and set(table) != {"true", "false"}:
                problems.append(f"{where}.values.round_closed: keys 'true' and 'false'")
        operation = Operation(op, path, method, flds, reasons, when.get("amount_zero"), when.get("round_closed"),
                              values)
        have = operation.sources()
        for need in required_sources(operation, sem):
            implied = (need == "reason" and reasons is not None and len(reasons) == 1) or \
                (need == "round_closed" and operation.when_round_closed is not None) or \
                (need == "amount" and operation.when_amount_zero is True)
            if need not in have and not implied:
                problems.append(f"{where}: must carry {need} (a field whose source is {need!r})")
        for src, why in banned_sources(op, sem).items():
            if src in have:
                problems.append(f"{where}: carries {src}, but {why}")
        dup = [k for k in {k for k, _ in flds} if [x for x, _ in flds].count(k) > 1]
        if dup:
            problems.append(f"{where}: field(s) listed twice: {', '.join(dup)}")
        ops.append(operation)
    for op in Op:
        if op is Op.AUTHENTICATE and sem.sessions == "operator":
            if any(o.op is op for o in ops):
                problems.append('operations: no authenticate operation when the operator makes the sessions '
                                '(semantics.sessions = "operator")')
            continue
        if not any(o.op is op for o in ops):
            problems.append(f"operations: nothing for {op}")
    # Every win must find an operation, and decoding must find exactly one.
    for reason in WinReason:
        for zero in (False, True):
            for closed in (False, True):
                probe = WalletCall(Op.WIN, amount=Money(0 if zero else 1, currency("EUR")), reason=reason,
                                   round_closed=closed)
                if any(o.op is Op.WIN for o in ops) and not any(o.matches(probe) for o in ops):
                    problems.append(f"operations: no operation for a {reason} win (amount_zero={zero}, round_closed={closed})")
    seen: set[tuple[str, str, str]] = set()
    for o in ops:
        sig_key = (o.method, o.path, repr(sorted((k, repr(v.value)) for k, v in o.fields if isinstance(v, Const))))
        if sig_key in seen:
            problems.append(f"operations: {o.method} {o.path} twice with the same constants: "
                            "decoding could not tell them apart")
        seen.add(sig_key)
    cfg = SigConfig(header if isinstance(header, str) else None, param if isinstance(param, str) else None,
                    query if isinstance(query, str) else None, sig_encoding,
                    ts_header if isinstance(ts_header, str) else None)
    if scheme in SCHEME_CLASSES:
        flat = bool(ops) and all(fmt == "form" or o.method == "GET" for o in ops)
        problems.extend(SCHEME_CLASSES[scheme].problems(cfg, flat))

    resp = data.get("response")
    if not isinstance(resp, Mapping):
        problems.append("response: needs a [response] table")
        resp = {}
    success = resp.get("success", "status-field")
    if success not in ("status-field", "http-200"):
        problems.append("response.success: 'status-field' (HTTP 200 and a status value) or 'http-200'")
    ok_fields = _fields(resp.get("ok_fields"), "response.ok_fields", problems, RESPONSE_SOURCES)
    error_fields = _fields(resp.get("error_fields"), "response.error_fields", problems, RESPONSE_SOURCES)
    status_field = next((k for k, s in error_fields if s == "status"), None)
    if status_field is None:
        problems.append("response.error_fields: one field must carry the status (source 'status')")
    if success == "status-field" and not any(s == "status" for _, s in ok_fields):
        problems.append("response.ok_fields: with success = 'status-field' one field carries the status")
    if not any(s == "balance" for _, s in ok_fields):
        problems.append("response.ok_fields: must carry balance")
    code_fields = resp.get("code_fields", [])
    if not isinstance(code_fields, list) or not all(
            isinstance(f, str) and re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)*", f) for f in code_fields):
        problems.append("response.code_fields: a list of field names (dotted paths allowed), in precedence")
        code_fields = []
    elif code_fields and status_field is not None and status_field not in code_fields:
        problems.append(f"response.code_fields: must include the status field {status_field!r} "
                        "(where this dialect's answers put a code)")
    ok_value = resp.get("ok", 0 if success == "status-field" else None)
    raw_codes = resp.get("codes", {})
    codes: dict[ErrorCode, Any] = {}
    if not isinstance(raw_codes, Mapping):
        raw_codes = {}
        problems.append("response.codes: a table CANONICAL_CODE = wire code")
    for k, v in raw_codes.items():
        if k not in ErrorCode._value2member_map_ or ErrorCode(k) not in PROTOCOL_CODES or k == "INTERNAL":
            problems.append(f"response.codes.{k}: not a canonical rejection code")
        elif not isinstance(v, (str, int)) or isinstance(v, bool):
            problems.append(f"response.codes.{k}: a string or an integer")
        else:
            codes[ErrorCode(k)] = v
    values = [repr(v) for v in codes.values()]
    if len(set(values)) != len(values):
        problems.append("response.codes: two canonical codes share a wire code (decoding must be exact)")
    if ok_value is not None and repr(ok_value) in values:
        problems.append("response.ok: the success value is also an error code")
    decode_codes: dict[Any, ErrorCode] = {}
    for k, v in (resp.get("decode_codes") or {}).items():
        try:
            decode_codes[_wire_key(k)] = ErrorCode(v)
        except ValueError:
            problems.append(f"response.decode_codes.{k}: a canonical code")
    http_map: dict[ErrorCode, int] = {}
    for k, v in (resp.get("http_status") or {}).items():
        if k not in ErrorCode._value2member_map_ or type(v) is not int or not 200 <= v <= 499:
            problems.append(f"response.http_status.{k}: a canonical code = HTTP status 200..499")
        else:
            http_map[ErrorCode(k)] = v
    unknown = tuple(resp.get("unknown_codes", ()))
    if not unknown:
        problems.append("response.unknown_codes: at least one code meaning 'outcome unknown, retry'")
    replay: dict[Op, Any] = {}
    for k, v in (resp.get("replay") or {}).items():
        if k not in ("bet", "win", "rollback"):
            problems.append(f"response.replay.{k}: bet, win or rollback")
        else:
            replay[Op(k)] = v
    batch_list, batch_answers = _load_batch(data.get("batch"), fmt, ops, ok_fields, problems)
    if problems:
        raise SpecError(problems)
    return Spec(
        name=name, format=fmt, amount=encoding, places=places, scheme=scheme,
        sig_header=cfg.header, sig_param=cfg.param, sig_query=cfg.query, sig_encoding=sig_encoding,
        sign_responses=sign_responses, operations=tuple(ops), success=success, status_field=status_field,
        ok_value=ok_value, ok_fields=ok_fields, error_fields=error_fields, codes=codes,
        decode_codes=decode_codes, http_status=http_map, unknown_codes=unknown, replay=replay,
        rollback_unknown=resp.get("rollback_unknown"), description=str(data.get("description", "")),
        batch_list=batch_list, batch_answers=batch_answers, semantics=sem, code_fields=tuple(code_fields),
        sig_timestamp_header=cfg.timestamp_header,
    )


def _load_batch(raw: Any, fmt: str, ops: list[Operation], ok_fields: tuple[tuple[str, str | Const], ...],
                problems: list[str]) -> tuple[str | None, str | None]:
    """``[batch] list = FIELD, answers = FIELD``: several bet/win actions in one request."""
    if raw is None:
        return None, None
    if not isinstance(raw, Mapping):
        problems.append("batch: a table with list = FIELD and answers = FIELD")
        return None, None
    for k in raw:
        if k not in ("list", "answers"):
            problems.append(f"batch.{k}: unknown key (list, answers)")
    lst, answers = raw.get("list"), raw.get("answers")
    ok = True
    for key, value in (("list", lst), ("answers", answers)):
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", value):
            problems.append(f"batch.{key}: a field name (dotted path allowed, no list index)")
            ok = False
    if not ok:
        return None, None
    assert isinstance(lst, str) and isinstance(answers, str)
    if fmt != "json":
        problems.append("batch: only JSON requests carry a list of actions")
    prefix = f"{lst}.0."
    carried = [o for o in ops if any(k.startswith(prefix) for k, _ in o.fields)]
    batchable = [o for o in carried if o.op in (Op.BET, Op.WIN)]
    where = f"batch (list = {lst!r})"
    for o in carried:
        if o.op not in (Op.BET, Op.WIN) and o.path in {b.path for b in batchable}:
            problems.append(f"{where}: {o.op} on {o.path} also has fields under {prefix}; a batch carries bets and wins")
    if not any(o.op is Op.BET for o in batchable) or not any(o.op is Op.WIN for o in batchable):
        problems.append(f"{where}: needs a bet and a win operation with fields under {prefix} "
                        f"(e.g. {prefix}action_id = \"tx_id\")")
        return None, None
    if len({(o.method, o.path) for o in batchable}) != 1:
        problems.append(f"{where}: the operations with fields under {prefix} must share one path and method")
    envelopes = {frozenset(k for k, _ in o.fields if not k.startswith(prefix)) for o in batchable}
    if len(envelopes) != 1:
        problems.append(f"{where}: the batchable operations must have the same fields outside {prefix}")
    for o in batchable:
        if not any(k.startswith(prefix) and src == "tx_id" for k, src in o.fields):
            problems.append(f"{where}: {o.op} on {o.path} must carry tx_id inside the action ({prefix}...)")
        if any(k == lst or (k.startswith(f"{lst}.") and not k.startswith(prefix)) for k, _ in o.fields):
            problems.append(f"{where}: {o.op} on {o.path}: an action is {prefix}*; other entries of {lst} are not fields")
    items = [repr(sorted((k, repr(c.value)) for k, c in o.fields if isinstance(c, Const) and k.startswith(prefix)))
             for o in batchable]
    if len(set(items)) != len(items):
        problems.append(f"{where}: the constants inside each action (e.g. {prefix}action) must tell the "
                        "batchable operations apart")
    if not any(k.startswith(f"{answers}.0.") and src == "wallet_tx_id" for k, src in ok_fields):
        problems.append(f"batch.answers: response.ok_fields must carry wallet_tx_id under {answers}.0. "
                        "(one answer per action)")
    return lst, answers


def _wire_key(k: str) -> Any:
    """TOML keys are strings; a numeric key stands for an integer code."""
    return int(k) if k.isdigit() else k


def load_file(path: str) -> Spec:
    """Read and validate a TOML dialect file (``SpecError`` for an invalid one, ``OSError`` if unreadable)."""
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError([f"not valid TOML: {exc}"]) from None
    return load_spec(data)


# -- nested paths -------------------------------------------------------------------------------


def _split(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in path.split(".")]


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = _split(path)
    cur: Any = doc
    for here, nxt in itertools.pairwise(parts):
        if isinstance(here, int):
            while len(cur) <= here:
                cur.append({} if isinstance(nxt, str) else [])
            cur = cur[here]
        else:
            if here not in cur:
                cur[here] = [] if isinstance(nxt, int) else {}
            cur = cur[here]
    last = parts[-1]
    if isinstance(last, int):
        while len(cur) <= last:
            cur.append(None)
        cur[last] = value
    else:
        cur[last] = value


_MISSING: Final = object()
_OMIT: Final = object()
"""A field the call does not have (a free-spin win's bet, an unknown second session id): not sent."""


def _get(doc: Any, path: str) -> Any:
    cur = doc
    for part in _split(path):
        if isinstance(part, int):
            if not isinstance(cur, list) or part >= len(cur):
                return _MISSING
            cur = cur[part]
        else:
            if not isinstance(cur, dict) or part not in cur:
                return _MISSING
            cur = cur[part]
    return cur


def _same(value: Any, const: Any) -> bool:
    """``value`` is the constant ``const``: equal, and a boolean only where the constant is one
    (``0`` is not ``false``), all the way into lists and objects."""
    if isinstance(const, bool) or isinstance(value, bool):
        return type(value) is type(const) and value == const
    if isinstance(const, list):
        return isinstance(value, list) and len(value) == len(const) and all(
            _same(v, c) for v, c in zip(value, const, strict=True))
    if isinstance(const, dict):
        return isinstance(value, dict) and value.keys() == const.keys() and all(
            _same(value[k], c) for k, c in const.items())
    return bool(value == const) and not isinstance(value, (list, dict))


def _overlong_list(doc: Any, keys: Sequence[str]) -> str | None:
    """The first list the dotted ``keys`` index that holds more entries than they name.

    More entries are not unknown fields to ignore but more of the same (a second
    rollback action in ``actions``): reading only the first would drop the others."""
    named: dict[tuple[str | int, ...], int] = {}
    for key in keys:
        parts = _split(key)
        for i, part in enumerate(parts):
            if isinstance(part, int):
                prefix = tuple(parts[:i])
                named[prefix] = max(named.get(prefix, -1), part)
    for prefix, top in named.items():
        found = _get(doc, ".".join(str(p) for p in prefix))
        if isinstance(found, list) and len(found) > top + 1:
            return f"{'.'.join(str(p) for p in prefix)} carries {len(found)} entries; this operation takes {top + 1}"
    return None


# -- exact JSON with decimal numbers ------------------------------------------------------------


def _dump(value: Any) -> bytes:
    """JSON bytes where a Decimal is written as the number it is (no float on the way)."""
    if isinstance(value, Decimal):
        return str(value).encode()
    if isinstance(value, dict):
        return b"{" + b",".join(orjson.dumps(str(k)) + b":" + _dump(v) for k, v in value.items()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(_dump(v) for v in value) + b"]"
    if type(value) is int and not -(2**63) <= value < 2**64:
        return str(value).encode()  # JSON has no largest integer; orjson stops at 64 bits
    return orjson.dumps(value)


# -- the dialect --------------------------------------------------------------------------------


class DeclarativeDialect(DialectBase):
    """A :class:`~simulator.dialects.Dialect` driven by a :class:`Spec`.

    ``account_currency`` is the wallet side's assumption for a wire whose calls carry no currency
    (``semantics.currency = "account"``): their amounts are read in it.  Minor-unit wires lose
    nothing by it (a wallet reads the same units in its account's currency); a decimal wire is read
    at that currency's exponent."""

    supports_variants = True

    def __init__(self, spec: Spec, secret: str, account_currency: str = "EUR") -> None:
        self.spec = spec
        self.name = spec.name
        self.secret = secret
        self.max_exponent = spec.max_exponent
        self.semantics = spec.semantics
        self.account_currency = account_currency
        cfg = SigConfig(spec.sig_header, spec.sig_param, spec.sig_query, spec.sig_encoding, spec.sig_timestamp_header)
        self.scheme: Scheme = SCHEME_CLASSES[spec.scheme](secret, cfg)
        self.signature_has_time = self.scheme.has_time
        """Whether the signature binds a time (``hmac-md5-timestamp``): a stale or future request is refused."""
        self.supports_batches = spec.batch_list is not None
        """The description has a ``[batch]`` table: several money calls travel in one request."""

    # -- signatures ----------------------------------------------------------------------
    def warm(self) -> None:
        """Load or derive keys now (a driver calls this before its clock starts)."""
        self.scheme.warm()

    def _digest(self, body: bytes) -> str:
        """The provider's signature of ``body`` (body-signing schemes)."""
        return self.scheme.sign_bytes(body, "provider")

    def _sign_body(self, body: bytes, side: str) -> str:
        return self.scheme.sign_bytes(body, side)

    def _check_body_sig(self, signature: str | None, body: bytes, side: str) -> bool:
        """``side`` is who checks: the provider checks answers, the wallet requests."""
        return self.scheme.check_bytes(signature, body, side)

    # -- simulator side -------------------------------------------------------------------
    def operation_for(self, call: WalletCall) -> Operation:
        for o in self.spec.operations:
            if o.matches(call):
                return o
        raise DialectError(f"{self.name}: no operation for this {call.op}")

    def _amount_out(self, m: Money, limit: bool = True) -> Any:
        """``m`` in the wire's encoding (``limit``: refuse what a 64-bit integer of the wire's unit cannot hold)."""
        s = self.spec
        try:
            if s.amount in ("minor", "minor-string", "scaled"):
                value = m.scaled(s.places) if s.amount == "scaled" else m.minor
                if abs(value) > INT64_MAX and limit:
                    raise MoneyError(f"{value} does not fit the wire's 64-bit integer")
                return str(value) if s.amount == "minor-string" else value
            if m.currency.exponent > s.places:
                m.scaled(s.places)  # refuses digits the format cannot carry
            text = _fixed(m, s.places)
        except MoneyError as exc:
            raise DialectError(f"{self.name} cannot carry {m} exactly: {exc}") from None
        return text if s.amount == "decimal-string" else Decimal(text)

    def _amount_in(self, raw: Any, cur: Currency, text_ok: bool = False) -> Money:
        s = self.spec
        if s.amount == "minor-string":
            if not isinstance(raw, str) or not re.fullmatch(r"-?(0|[1-9][0-9]{0,39})", raw):
                raise MoneyError("amount must be a string of an integer of minor units")
            return Money(int(raw), cur)
        if text_ok and isinstance(raw, str):
            if s.amount in ("minor", "scaled"):
                if not re.fullmatch(r"-?(0|[1-9][0-9]{0,20})", raw):
                    raise MoneyError("amount must be an integer")
                raw = int(raw)
            elif s.amount == "decimal-number":
                raw = Decimal(raw) if re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", raw) else raw
        if s.amount in ("minor", "scaled"):
            if type(raw) is not int:
                raise MoneyError("amount must be an integer")
            return Money(raw, cur) if s.amount == "minor" else Money.from_scaled(raw, s.places, cur)
        if s.amount == "decimal-string":
            if not isinstance(raw, str):
                raise MoneyError("amount must be a decimal string")
            text = raw
        else:
            if not isinstance(raw, Decimal) and type(raw) is not int:
                raise MoneyError("amount must be a number")
            text = str(raw)
        if "." in text and len(text.partition(".")[2]) > s.places:
            raise MoneyError(f"more than {s.places} decimals")
        return Money.from_decimal(text, cur)

    def _value(self, o: Operation, source: str, call: WalletCall, now: float) -> Any:
        """The wire value of ``source`` for ``call`` (``_OMIT``: a field the call does not have)."""
        if source == "amount":
            if call.amount is None and call.op is Op.ROLLBACK:
                # A rollback of a bet never seen: no amount is known, the wire still wants one; 0 says
                # "nothing" (the wallet refunds the bet it recorded, if any: semantics.rollback_amount).
                return self._amount_out(Money(0, currency(call.currency_hint or self.account_currency)))
            assert call.amount is not None
            return self._amount_out(call.amount)
        if source == "currency":
            if call.amount is not None:
                return call.amount.currency.code
            return call.currency_hint if call.currency_hint is not None else _OMIT
        if source == "reason":
            reason = str(call.reason or WinReason.REGULAR)
            return o.values.get("reason", {}).get(reason, reason)
        if source == "round_closed":
            return self._closed_out(o, bool(call.round_closed))
        if source == "request_id":
            return request_id(call)
        if source == "timestamp_ms":
            return int(now * 1000) if not self.spec.flat(o) else str(int(now * 1000))
        if source == "timestamp_s":
            return int(now) if not self.spec.flat(o) else str(int(now))
        value = getattr(call, source)
        if value is None:
            if source in OPTIONAL_SOURCES:
                return _OMIT
            raise DialectError(f"{self.name}: a {call.op} needs {source}")
        return value

    def _closed_out(self, o: Operation, closed: bool) -> Any:
        table = o.values.get("round_closed")
        if table is not None:
            return table["true" if closed else "false"]
        return ("true" if closed else "false") if self.spec.flat(o) else closed

    def _items(self, o: Operation, call: WalletCall, now: float) -> list[tuple[str, str | Const, Any]]:
        """Each field ``o`` sends for ``call``: (key, source, value), fields the call lacks left out."""
        out = []
        for key, src in o.fields:
            value = src.value if isinstance(src, Const) else self._value(o, src, call, now)
            if value is not _OMIT:
                out.append((key, src, value))
        return out

    def _doc(self, o: Operation, call: WalletCall, now: float) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key, _, value in self._items(o, call, now):
            _put(doc, key, value)
        return doc

    def encode_call(self, call: WalletCall, now: float) -> HttpRequest:
        o = self.operation_for(call)
        if self.spec.flat(o):
            params = [(key, param_text(value))
                      for key, _, value in self._items(o, call, now)]
            return self._signed(o, now, params=params)
        doc = self._doc(o, call, now)
        return self._signed(o, now, body=_dump(doc), doc=doc)

    def _signed(self, o: Operation, now: float, *, params: list[tuple[str, str]] | None = None,
                body: bytes = b"", doc: Any = None) -> HttpRequest:
        """The request of ``o`` with its signature: ``params`` for a flat operation (a form body or a
        GET query), else the JSON ``body`` (``doc``: what it holds, for schemes that sign its fields)."""
        get = o.method == "GET"
        headers: dict[str, str] = {}
        if params is not None:
            signed = tuple(params)
            if not get:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            signed = tuple((str(k), param_text(v)) for k, v in doc.items()) \
                if isinstance(doc, dict) and self.scheme.uses_params else ()
            headers["Content-Type"] = "application/json"

        def render(pairs: Sequence[tuple[str, str]] | None) -> tuple[bytes, str]:
            if pairs is None:
                return body, ""
            if get:
                return b"", urlencode(list(pairs), quote_via=quote, safe=QUERY_SAFE)
            return urlencode(list(pairs)).encode(), ""

        raw, query = render(params)
        place = self.scheme.sign(Message(raw, query, signed, headers), now)
        if place.param is not None:
            assert params is not None
            raw, query = render([*params, place.param])
        headers.update(place.headers)
        if place.query is not None:
            query = "&".join(q for q in (query, urlencode([place.query])) if q)
        return HttpRequest(o.method, f"{o.path}?{query}" if query else o.path, headers, raw)

    def encode_variant(self, call: WalletCall, now: float, variant: str) -> HttpRequest:
        """The signed request of ``call`` with one defect, in this wire (the check's malformed inputs).

        The signature covers the defective request: the defect is what is judged.  A variant that
        means nothing on this wire raises :class:`DialectError`: ``amount-string`` where amounts are
        text already (a string encoding, a form or a query), ``unknown-currency`` where no currency is
        carried, ``bad-reason`` and ``round-closed-not-boolean`` where the operation implies them,
        ``not-json`` and ``not-an-object`` where the request is not JSON, ``oversized`` for a GET."""
        s = self.spec
        o = self.operation_for(call)
        flat = s.flat(o)
        items = [[key, src, value] for key, src, value in self._items(o, call, now)]

        def keys_of(source: str) -> list[int]:
            found = [i for i, (_, src, _v) in enumerate(items) if src == source]
            if not found:
                raise DialectError(f"{self.name}: {o.method} {o.path} carries no {source} ({variant})")
            return found

        def setall(source: str, value: Any) -> None:
            for i in keys_of(source):
                items[i][2] = value

        amount = call.amount.minor if call.amount is not None else 0
        cur = call.amount.currency if call.amount is not None else currency(self.account_currency)
        numeric = s.amount in ("minor", "scaled", "decimal-number")
        if variant == "amount-float":
            if s.amount in ("minor", "minor-string", "scaled"):
                unit = self._amount_out(Money(amount, cur), limit=False)
                text = f"{unit}.5"
            else:  # one decimal more than the wire carries: no amount of the wire is that
                text = f"{_fixed(Money(amount, cur), s.places) if cur.exponent <= s.places else amount}"
                text = f"{text}{'' if '.' in text else '.'}5"
            setall("amount", text if (flat or not numeric) else Decimal(text))
        elif variant == "amount-string":
            if flat or not numeric:
                raise DialectError(f"{self.name}: amounts are text on this wire already (amount-string)")
            setall("amount", str(self._amount_out(Money(amount, cur), limit=False)))
        elif variant == "amount-negative":
            setall("amount", self._amount_out(Money(-1 - amount, cur), limit=False))
        elif variant == "amount-boolean":
            setall("amount", True)
        elif variant == "amount-past-64-bit":
            setall("amount", self._amount_out(Money(INT64_MAX + 1, cur), limit=False))
        elif variant == "missing-field":
            prefer = ("amount", "ref_tx_id", "tx_id") if call.op is not Op.ROLLBACK else ("ref_tx_id", "tx_id")
            src = next((p for p in prefer if any(it[1] == p for it in items)), None)
            if src is None:
                raise DialectError(f"{self.name}: {o.path} has no field whose absence is a defect")
            del items[keys_of(src)[0]]
        elif variant == "unknown-currency":
            setall("currency", "XTS")
        elif variant == "bad-reason":
            setall("reason", "lucky")
        elif variant == "round-closed-not-boolean":
            taken = {repr(v) for v in o.values.get("round_closed", {}).values()}
            setall("round_closed", "yes" if repr("yes") not in taken else "maybe")
        elif variant == "extra-field":
            known = {str(it[0]).split(".")[0] for it in items}
            items.extend([k, Const(v), v] for k, v in EXTRA_FIELDS.items() if k not in known)
        elif variant not in ("not-json", "not-an-object", "oversized"):
            raise DialectError(f"unknown variant {variant!r} (one of {', '.join(VARIANTS)})")
        if flat:
            if variant in ("not-json", "not-an-object"):
                raise DialectError(f"{self.name}: {o.path} is not JSON ({variant})")
            params = [(str(k), v if isinstance(v, str) else param_text(v)) for k, _, v in items]
            if variant == "oversized":
                if o.method == "GET":
                    raise DialectError(f"{self.name}: a GET has no body to oversize")
                params.append(("x_padding", "x" * (MAX_BODY + 16)))
            return self._signed(o, now, params=params)
        doc: dict[str, Any] = {}
        for key, _, value in items:
            _put(doc, str(key), value)
        if variant == "not-json":
            first = next(iter(doc), "tx_id")
            return self._signed(o, now, body=b"{" + orjson.dumps(first) + b": ", doc=None)
        if variant == "not-an-object":
            return self._signed(o, now, body=b"[" + _dump(doc) + b"]", doc=None)
        body = _dump(doc)
        if variant == "oversized":
            body += b" " * (MAX_BODY + 16 - len(body))
        return self._signed(o, now, body=body, doc=doc)

    def encode_batch(self, calls: Sequence[WalletCall], now: float) -> HttpRequest:
        s = self.spec
        if s.batch_list is None:
            raise DialectError(f"{self.name} carries one call per request")
        if not calls:
            raise DialectError("an empty batch")
        if len(calls) == 1:
            return self.encode_call(calls[0], now)
        ops = [self.operation_for(c) for c in calls]
        allowed = s.batchable()
        for c, o in zip(calls, ops, strict=True):
            if o not in allowed:
                raise DialectError(f"{self.name}: a {c.op} cannot go in a batch")
        if any(c.round_closed for c in calls[:-1]):
            raise DialectError(f"{self.name}: only the last action of a batch may close the round")
        docs = [self._doc(o, c, now) for o, c in zip(ops, calls, strict=True)]
        merged = docs[-1]
        for o, d in zip(ops, docs, strict=True):
            for key, src in o.fields:
                if s.in_item(key) or isinstance(src, Const) or src in ("round_closed", "request_id", "timestamp_ms",
                                                                          "timestamp_s"):
                    continue
                if _get(d, key) != _get(merged, key):
                    raise DialectError(f"{self.name}: the actions of one batch must agree on {key} ({src})")
        _put(merged, s.batch_list, [_get(d, s.batch_list)[0] for d in docs])
        return self._signed(ops[-1], now, body=_dump(merged), doc=merged)

    def decode_batch_response(self, calls: Sequence[WalletCall], response: HttpResponse) -> list[Outcome]:
        """One outcome per call.  The wire carries only the final balance: an earlier action gets
        the balance the later ones imply.  On an error, the action it names is rejected; the ones
        before it were applied and the ones after were not tried, but the answer gives neither
        their ids nor balances, so they are Unknown (the provider rolls back or retries them)."""
        s = self.spec
        if len(calls) == 1:
            return [self.decode_response(calls[0], response)]
        overall = self.decode_response(calls[-1], response)
        if isinstance(overall, Unknown):
            return [overall] * len(calls)
        data = json.loads(response.body, parse_float=Decimal)  # decode_response read it already
        if isinstance(overall, Rejected):
            named = next((_get(data, k) for k, src in s.error_fields if src == "tx_id"), None)
            at = next((i for i, c in enumerate(calls) if c.tx_id == named), None)
            if at is None:
                return [Unknown(f"batch refused with {overall.code}; the answer does not say which action")] * len(calls)
            return [*(Unknown(f"applied before action {at} was refused; the answer carries no result for it")
                      for _ in range(at)),
                    overall,
                    *(Unknown(f"not tried: action {at} was refused") for _ in range(at + 1, len(calls)))]
        assert s.batch_answers is not None
        entries = _get(data, s.batch_answers)
        if not isinstance(entries, list) or len(entries) != len(calls):
            return [Unknown(f"a batch of {len(calls)} answered without one entry per action", response.status)] \
                * len(calls)
        outcomes: list[Outcome] = []
        later = 0
        for i in range(len(calls) - 1, -1, -1):
            call = calls[i]
            sub = copy.deepcopy(data)
            _put(sub, s.batch_answers, [entries[i]])
            one = self._ok(call, sub, response.status)
            named = next((_get(sub, k) for k, src in s.ok_fields if src == "tx_id"), _MISSING)
            if named is not _MISSING and named != call.tx_id:
                one = Unknown(f"answer entry {i} is for {str(named)[:64]!r}, not {call.tx_id!r}", response.status)
            if isinstance(one, Ok) and later:
                one = Ok(Money(one.balance.minor - later, one.balance.currency), one.wallet_tx_id)
            outcomes.append(one)
            if call.amount is not None:
                later += call.amount.minor if call.op is Op.WIN else -call.amount.minor
        return outcomes[::-1]

    def decode_response(self, call: WalletCall, response: HttpResponse) -> Outcome:
        """Success by the status field (or HTTP 200 without a code); otherwise the code of the first
        ``code_fields`` entry present: a mapped code is that refusal, an unknown code "outcome unknown",
        and any other code a refusal this dialect does not map (``ErrorCode.UNMAPPED``)."""
        s = self.spec
        if response.status >= 500:
            return Unknown(f"HTTP {response.status}", response.status)
        if s.sign_responses and response.status == 200:
            assert s.sig_header is not None
            if not self._check_body_sig(_header(response.headers, s.sig_header), response.body, "provider"):
                return Unknown("answer without a valid signature", response.status)
        try:
            data = json.loads(response.body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            return Unknown(f"HTTP {response.status} with a body that is not JSON", response.status)
        if not isinstance(data, dict):
            return Unknown("answer is not a JSON object", response.status)
        status_value = _get(data, s.status_field) if s.status_field else _MISSING
        where = s.read_codes_from()
        if s.success == "http-200":
            if response.status == 200 and all(_get(data, f) is _MISSING for f in where):
                return self._ok(call, data, response.status)
        elif response.status == 200 and status_value == s.ok_value and type(status_value) is type(s.ok_value):
            return self._ok(call, data, response.status)
        if response.status == 200 and status_value is not _MISSING:
            if call.op in s.replay and status_value == s.replay[call.op]:
                return self._ok(call, data, response.status)
            if call.op is Op.ROLLBACK and s.rollback_unknown is not None and status_value == s.rollback_unknown:
                return self._ok(call, data, response.status)
        code = next((v for v in (_get(data, f) for f in where) if v is not _MISSING and v is not None), _MISSING)
        if code is _MISSING:
            return Unknown(f"HTTP {response.status} without a status", response.status)
        if code in s.unknown_codes:
            return Unknown(f"wallet answered {code!r} (outcome unknown)", response.status)
        mapped = _inverse(s.codes).get(_hashable(code)) or s.decode_codes.get(_hashable(code))
        msg = next((_get(data, k) for k, src in s.error_fields if src == "message"), "")
        if mapped is not None:
            if response.status == s.status_of(mapped):
                return Rejected(mapped, msg if isinstance(msg, str) else "")
            return Unknown(f"HTTP {response.status} with unexpected status {code!r}", response.status)
        successes = (s.ok_value, s.rollback_unknown, *s.replay.values())
        if isinstance(code, bool) or not isinstance(code, (str, int)) or any(
                code == v and type(code) is type(v) for v in successes):
            # Not a code, or a success's value where no success can be: nothing this dialect explains.
            return Unknown(f"HTTP {response.status} with unexpected status {code!r}", response.status)
        return Rejected(ErrorCode.UNMAPPED, f"unmapped wire code {code!r}"
                        + (f": {msg[:200]}" if isinstance(msg, str) and msg else ""))

    def _ok(self, call: WalletCall, data: dict[str, Any], status: int) -> Outcome:
        """A success: the balance in the answer's currency, else the call's amount's, else the account
        currency the provider knows (``currency_hint``).  An authenticate answer may leave out the player
        id, session token and balance (``Ok.missing``; the balance is then a placeholder 0); every other
        success carries a balance."""
        s = self.spec
        got: dict[str, Any] = {}
        for key, src in s.ok_fields:
            if isinstance(src, str):
                value = _get(data, key)
                if value is not _MISSING and value is not None:
                    got[src] = value
        code = got.get("currency")
        if code is None:
            code = call.amount.currency.code if call.amount is not None else call.currency_hint
        if code is None:
            return Unknown("answer without currency and the account's currency is not known", status)
        if not isinstance(code, str):
            return Unknown("success with a currency that is not a string", status)
        try:
            cur = currency(code)
        except UnknownCurrency:
            return Unknown(f"success in unknown currency {code[:16]!r}", status)
        missing: set[str] = set()
        if "balance" in got:
            try:
                balance = self._amount_in(got["balance"], cur)
            except MoneyError as exc:
                return Unknown(f"success with an unreadable balance: {exc}", status)
        elif call.op is Op.AUTHENTICATE:
            balance, missing = Money(0, cur), {"balance"}
        else:
            return Unknown("success without a balance", status)
        if call.op is Op.AUTHENTICATE:
            pid, tok = got.get("player_id"), got.get("session_token")
            if (pid is not None and not isinstance(pid, str)) or (tok is not None and not isinstance(tok, str)):
                return Unknown("authenticate success with a player id or session token that is not a string", status)
            missing |= {name for name, v in (("player_id", pid), ("session_token", tok)) if v is None}
            return Ok(balance, player_id=pid, session_token=tok, missing=frozenset(missing))
        if call.op is Op.BALANCE:
            return Ok(balance)
        wtx = got.get("wallet_tx_id", call.tx_id)  # a wire without one: the provider's id stands in
        if not isinstance(wtx, str) or not wtx:
            return Unknown("success without a transaction id", status)
        return Ok(balance, wallet_tx_id=wtx)

    # -- wallet side ----------------------------------------------------------------------
    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        decoded = self._decode(request, now, batch=False)
        assert not isinstance(decoded, list)
        return decoded

    def decode_batch(self, request: HttpRequest, now: float) -> WalletCall | list[WalletCall] | Rejected:
        return self._decode(request, now, batch=True)

    def _decode(self, request: HttpRequest, now: float, batch: bool) -> WalletCall | list[WalletCall] | Rejected:
        s = self.spec
        path, _, query = request.path.partition("?")
        candidates = [o for o in s.operations if o.path == path]
        if not candidates:
            return Rejected(ErrorCode.BAD_REQUEST, f"unknown operation {path[:64]!r}")
        if request.method not in {o.method for o in candidates}:
            return Rejected(ErrorCode.BAD_REQUEST, f"{path[:64]} takes {candidates[0].method}")
        candidates = [o for o in candidates if o.method == request.method]
        if len(request.body) > MAX_BODY or len(query) > MAX_BODY:
            return Rejected(ErrorCode.BAD_REQUEST,
                            f"{'query' if len(query) > MAX_BODY else 'body'} larger than {MAX_BODY} bytes")
        get = request.method == "GET"
        flat = s.format == "form" or get
        try:
            doc, pairs = self._parse(query.encode() if get else request.body, candidates, flat)
            cfg = self.scheme.cfg
            if flat:
                signed = tuple((k, v) for k, v in pairs if k != cfg.param)
            elif self.scheme.uses_params:
                signed = tuple((str(k), param_text(v)) for k, v in doc.items())
            else:
                signed = ()
            token = dict(parse_qsl(query)).get(cfg.query) if cfg.query else None
            given = doc.get(cfg.param) if cfg.param and flat else None
            msg = Message(request.body, query, signed, request.headers, given if isinstance(given, str) else None,
                          token)
            refused = self.scheme.verify(msg, now)
            if refused is not None:
                raise _Bad(ErrorCode.INVALID_SIGNATURE, refused)
            if s.batch_list is not None and any(o in s.batchable() for o in candidates):
                actions = _get(doc, s.batch_list)
                if isinstance(actions, list) and len(actions) > 1:
                    if not batch:
                        raise _Bad(ErrorCode.BAD_REQUEST, f"{len(actions)} actions in one request: "
                                                          "this endpoint takes one")
                    return self._batch_from(doc, actions)
            for o in candidates:
                if all(_same(_get(doc, k), self._const_in(o, c.value)) for k, c in o.fields if isinstance(c, Const)):
                    return self._call_from(o, doc)
            raise _Bad(ErrorCode.BAD_REQUEST, f"no operation of {path[:64]} matches this "
                                              f"{'query' if get else 'body'}")
        except _Bad as bad:
            return Rejected(bad.code, bad.message)

    def _const_in(self, o: Operation, value: Any) -> Any:
        """A constant as it arrives: text on a flat operation (a GET's query; a form's are text already)."""
        return param_text(value) if o.method == "GET" and self.spec.format == "json" else value

    def _batch_from(self, doc: dict[str, Any], actions: list[Any]) -> list[WalletCall]:
        """The calls of a batch, in order.  Each action is decoded as a request of its own: the
        envelope (everything outside the list) with that one action.  The envelope's round-closed
        flag and constants are the last action's; an earlier action is read as not closing the round."""
        s = self.spec
        assert s.batch_list is not None
        if len(actions) > MAX_BATCH:
            raise _Bad(ErrorCode.BAD_REQUEST, f"more than {MAX_BATCH} actions in one request")
        prefix = f"{s.batch_list}.0."
        envelope = copy.deepcopy(doc)
        _put(envelope, s.batch_list, [])
        calls: list[WalletCall] = []
        for i, item in enumerate(actions):
            if not isinstance(item, dict):
                raise _Bad(ErrorCode.BAD_REQUEST, f"{s.batch_list}[{i}] must be an object")
            o = next((o for o in s.batchable()
                      if all(_same(_get(item, k[len(prefix):]), c.value) for k, c in o.fields
                             if isinstance(c, Const) and k.startswith(prefix))), None)
            if o is None:
                raise _Bad(ErrorCode.BAD_REQUEST, f"{s.batch_list}[{i}] is not an action a batch carries")
            sub = copy.deepcopy(envelope)
            _put(sub, s.batch_list, [item])
            if i < len(actions) - 1:
                for key, src in o.fields:
                    if key.startswith(prefix):
                        continue
                    if isinstance(src, Const):
                        _put(sub, key, src.value)
                    elif src == "round_closed":
                        _put(sub, key, self._closed_out(o, False))
            try:
                calls.append(self._call_from(o, sub))
            except _Bad as bad:
                raise _Bad(bad.code, f"{s.batch_list}[{i}]: {bad.message}") from None
        return calls

    def _parse(self, body: bytes, candidates: Sequence[Operation],
               flat: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The document, and (flat: a form body or a GET's query) its parameters in the order sent.  A
        listed parameter (or the signature's) given twice is ambiguous: BAD_REQUEST.  Another one is
        ignored, twice or not."""
        if flat:
            try:
                pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
            except (UnicodeDecodeError, ValueError):
                raise _Bad(ErrorCode.BAD_REQUEST,
                           "body is not a form" if self.spec.format == "form" else "query is not a form") from None
            listed = {k for o in candidates for k, _ in o.fields} | {self.spec.sig_param}
            out: dict[str, Any] = {}
            for k, v in pairs:
                if k in out and k in listed:
                    raise _Bad(ErrorCode.BAD_REQUEST, f"parameter {k[:64]!r} given twice")
                out.setdefault(k, v)
            return out, pairs
        try:
            data = json.loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise _Bad(ErrorCode.BAD_REQUEST, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _Bad(ErrorCode.BAD_REQUEST, "body must be a JSON object")
        return data, []

    def _call_from(self, o: Operation, doc: dict[str, Any]) -> WalletCall:
        """The call ``doc`` carries for ``o``: only ``o``'s fields are read, any other is ignored."""
        s = self.spec
        flat = s.flat(o)
        if not flat and (overlong := _overlong_list(doc, [k for k, _ in o.fields])):
            raise _Bad(ErrorCode.BAD_REQUEST, overlong)
        got: dict[str, Any] = {}
        for key, src in o.fields:
            value = _get(doc, key)
            if value is _MISSING:
                if isinstance(src, str) and (src in OPTIONAL_SOURCES or (src == "amount" and o.op is Op.ROLLBACK)
                                             or (src == "currency" and o.op not in (Op.BET, Op.WIN))):
                    continue  # a field a call may lack (a free-spin win names no bet)
                raise _Bad(ErrorCode.BAD_REQUEST, f"missing field {key}")
            if isinstance(src, str):
                got[src] = value
        args: dict[str, Any] = {}
        for name in ("tx_id", "ref_tx_id", "player_id", "session_token", "token", "game_id", "round_id",
                     "bet_tx_id", "session_ref"):
            if name in got:
                args[name] = check_id(got[name], name)
        if o.op in (Op.BET, Op.WIN) or (o.op is Op.ROLLBACK and "amount" in got):
            cur = self._currency_in(got.get("currency", _MISSING))
            if "amount" in got:
                try:
                    amount = self._amount_in(got["amount"], cur, text_ok=flat)
                except MoneyError as exc:
                    raise _Bad(ErrorCode.BAD_REQUEST, f"amount: {exc}") from None
                if amount.minor < 0:
                    raise _Bad(ErrorCode.BAD_REQUEST, "amount must not be negative")
                if amount.minor > INT64_MAX:
                    raise _Bad(ErrorCode.BAD_REQUEST, "amount does not fit a 64-bit balance")
                if o.when_amount_zero is not None and (amount.minor == 0) != o.when_amount_zero:
                    raise _Bad(ErrorCode.BAD_REQUEST, f"{o.path} takes {'only' if o.when_amount_zero else 'no'} zero amounts")
            else:
                amount = Money(0, cur)
            args["amount"] = amount
        if o.op is Op.WIN:
            if "reason" in got:
                table = {_hashable(param_text(v) if flat else v): k for k, v in o.values.get("reason", {}).items()}
                raw = table.get(_hashable(got["reason"]), got["reason"])
                if not isinstance(raw, str) or raw not in WinReason._value2member_map_:
                    raise _Bad(ErrorCode.BAD_REQUEST, "unknown win reason")
                reason = WinReason(raw)
                if o.when_reason is not None and reason not in o.when_reason:
                    raise _Bad(ErrorCode.BAD_REQUEST, f"{o.path} does not take {reason} wins")
            else:
                assert o.when_reason is not None
                (reason,) = o.when_reason
            if "round_closed" in got:
                closed = self._closed_in(o, got["round_closed"], flat)
                if o.when_round_closed is not None and closed != o.when_round_closed:
                    raise _Bad(ErrorCode.BAD_REQUEST, f"{o.path} round-closed flag contradicts the operation")
            else:
                closed = bool(o.when_round_closed)
            args["reason"], args["round_closed"] = reason, closed
        return WalletCall(o.op, **args)

    def _currency_in(self, code: Any) -> Currency:
        """A call's currency: the field's, or (a wire without one) the account currency assumed."""
        s = self.spec
        if code is _MISSING:
            code = self.account_currency
        if not isinstance(code, str):
            raise _Bad(ErrorCode.BAD_REQUEST, "currency must be a string")
        try:
            cur = currency(code)
        except UnknownCurrency:
            raise _Bad(ErrorCode.CURRENCY_MISMATCH, f"unknown currency {code[:16]!r}") from None
        if cur.exponent > s.max_exponent:
            raise _Bad(ErrorCode.CURRENCY_MISMATCH,
                       f"{s.name} carries {s.places} decimals; no {cur.code} account can be served exactly")
        return cur

    def _closed_in(self, o: Operation, raw: Any, flat: bool) -> bool:
        table = o.values.get("round_closed")
        if table is not None:
            for k, v in table.items():
                if (raw == param_text(v) and isinstance(raw, str)) if flat else (raw == v and type(raw) is type(v)):
                    return k == "true"
        elif flat and raw in ("true", "false"):
            return bool(raw == "true")
        elif isinstance(raw, bool):
            return raw
        raise _Bad(ErrorCode.BAD_REQUEST, "round-closed flag must be true or false")

    def encode_response(self, call: WalletCall | None, outcome: Outcome) -> HttpResponse:
        s = self.spec
        if isinstance(outcome, Ok) and outcome.balance.currency.exponent > s.max_exponent:
            # An account in a currency the wire cannot carry (KWD under 2 decimals): refused as its bets
            # are, whatever its balance happens to be (not 200 at 0.000 KWD and "unknown, retry" at 0.001).
            cur = outcome.balance.currency.code
            return self._refuse(call, ErrorCode.CURRENCY_MISMATCH,
                                f"{s.name} carries {s.places} decimals; no {cur} account can be served exactly")
        if isinstance(outcome, Ok):
            try:
                doc = self._fill(s.ok_fields, call, outcome, self._ok_status(call, outcome), "")
            except DialectError as exc:
                # A balance the format cannot carry: no answer would be true; say "unknown, retry".
                return self._error(call, s.unknown_codes[0], str(exc), 500)
            return self._respond(200, doc)
        if isinstance(outcome, Rejected):
            return self._refuse(call, outcome.code, outcome.message)
        return self._error(call, s.unknown_codes[0], outcome.reason, 500)

    def _refuse(self, call: WalletCall | None, code: ErrorCode, message: str) -> HttpResponse:
        """A refusal in this wire: its code, else BAD_REQUEST's, else (neither mapped) the first code
        meaning "outcome unknown" - the only answer left that is not false."""
        s = self.spec
        for c in (code, ErrorCode.BAD_REQUEST):
            if c in s.codes:
                return self._error(call, s.codes[c], message, s.status_of(c))
        return self._error(call, s.unknown_codes[0], f"{code}: {message}", 500)

    def _ok_status(self, call: WalletCall | None, outcome: Ok) -> Any:
        s = self.spec
        if call is not None and outcome.replay and call.op in s.replay:
            return s.replay[call.op]
        if call is not None and call.op is Op.ROLLBACK and outcome.unknown_ref and s.rollback_unknown is not None:
            return s.rollback_unknown
        return s.ok_value

    def encode_batch_response(self, calls: Sequence[WalletCall], outcomes: Sequence[Outcome]) -> HttpResponse:
        """All applied: the last action's answer with one entry per action in the answers list.
        Otherwise the answer of the action that failed (it names that action when the error
        fields carry ``tx_id``); the actions before it stay applied, the ones after were not tried."""
        s = self.spec
        if not outcomes or len(outcomes) > len(calls):
            raise ValueError("a batch answer needs one outcome per applied call")
        last = outcomes[-1]
        if len(outcomes) == 1 or not isinstance(last, Ok) or s.batch_answers is None:
            return self.encode_response(calls[len(outcomes) - 1], last)
        try:
            docs = [self._fill(s.ok_fields, c, o, self._ok_status(c, o), "")
                    for c, o in zip(calls, outcomes, strict=False) if isinstance(o, Ok)]
        except DialectError as exc:
            return self._error(calls[-1], s.unknown_codes[0], str(exc), 500)
        doc = docs[-1]
        entries = [_get(d, s.batch_answers) for d in docs]
        _put(doc, s.batch_answers, [e[0] for e in entries if isinstance(e, list) and e])
        return self._respond(200, doc)

    def _error(self, call: WalletCall | None, status_value: Any, message: str, http: int) -> HttpResponse:
        doc = self._fill(self.spec.error_fields, call, None, status_value, message)
        return self._respond(http, doc)

    def _fill(self, fields: tuple[tuple[str, str | Const], ...], call: WalletCall | None, ok: Ok | None,
              status_value: Any, message: str) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key, src in fields:
            if isinstance(src, Const):
                value: Any = src.value
            elif src == "status":
                if status_value is None:
                    continue
                value = status_value
            elif src == "message":
                value = message
            elif src == "balance":
                if ok is None:
                    continue
                value = self._amount_out(ok.balance)
            elif src == "currency":
                if ok is None:
                    continue
                value = ok.balance.currency.code
            elif src in ("player_id", "session_token"):
                if ok is None or call is None or call.op is not Op.AUTHENTICATE:
                    continue
                value = getattr(ok, src)
            elif src == "wallet_tx_id":
                if ok is None or ok.wallet_tx_id is None:
                    continue
                value = ok.wallet_tx_id
            elif src == "request_id":
                if call is None:
                    continue
                value = request_id(call)
            else:  # tx_id
                if call is None or call.tx_id is None:
                    continue
                value = call.tx_id
            _put(doc, key, value)
        return doc

    def _respond(self, status: int, doc: dict[str, Any]) -> HttpResponse:
        body = _dump(doc)
        headers = {"Content-Type": "application/json"}
        if self.spec.sign_responses:
            assert self.spec.sig_header is not None
            headers[self.spec.sig_header] = self._sign_body(body, "wallet")
        return HttpResponse(status, headers, body)


def request_id(call: WalletCall) -> str:
    """A per-call UUID derived from the call (so a wallet can echo it and a replay repeats it)."""
    key = "|".join(str(x) for x in (call.op, call.tx_id, call.player_id, call.token, call.session_token))
    return str(uuid.uuid5(_REQUEST_NS, key))


def _fixed(m: Money, places: int) -> str:
    """``m`` in major units with exactly ``places`` decimals (the caller checked it is exact)."""
    shift = places - m.currency.exponent
    units = m.minor * 10**shift if shift >= 0 else m.minor // 10**-shift
    sign = "-" if units < 0 else ""
    digits = str(abs(units))
    if places == 0:
        return sign + digits
    digits = digits.rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def _hashable(v: Any) -> Any:
    return v if isinstance(v, (str, int)) else repr(v)


def _inverse(codes: Mapping[ErrorCode, Any]) -> dict[Any, ErrorCode]:
    return {_hashable(v): k for k, v in codes.items()}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value
    return None
