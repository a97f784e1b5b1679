"""A dialect's description (a TOML file, or a dict in code): its model, and loading it with every problem named.

``load_spec`` validates a description part by part — the name, the request format, the amount encoding,
the signature, each operation and then the set of them, the answers and their codes, batches — and names
every problem it finds, so ``croupier dialect check`` can print them all at once.  The engine that
becomes a :class:`~simulator.protocol.dialects.Dialect` from a :class:`Spec` is :mod:`.declarative`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..calls import Op, WalletCall, WinReason
from ..codes import PROTOCOL_CODES, ErrorCode, http_status
from ..money import Money, currency
from . import semantics as semantics_mod
from .semantics import CANONICAL, Semantics
from .signatures import SCHEMES as SCHEME_CLASSES
from .signatures import SigConfig

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
    """Every part of the description in turn, each adding what is wrong with it to ``problems``."""
    problems: list[str] = []
    name = _load_name(data, problems)
    sem = semantics_mod.load(data.get("semantics"), problems)
    fmt = _load_format(data, problems)
    encoding, places = _load_amount(data, problems)
    sig = _load_signature(data, problems)
    ops = _load_operations(data, fmt, sem, problems)
    cfg = _signature_config(sig, fmt, ops, problems)
    resp = _load_response(data, problems)
    batch_list, batch_answers = _load_batch(data.get("batch"), fmt, ops, resp["ok_fields"], problems)
    if problems:
        raise SpecError(problems)
    return Spec(
        name=name, format=fmt, amount=encoding, places=places, scheme=sig.scheme,
        sig_header=cfg.header, sig_param=cfg.param, sig_query=cfg.query, sig_encoding=sig.encoding,
        sign_responses=sig.sign_responses, operations=tuple(ops), description=str(data.get("description", "")),
        batch_list=batch_list, batch_answers=batch_answers, semantics=sem, sig_timestamp_header=cfg.timestamp_header,
        **resp,
    )


def _load_name(data: Mapping[str, Any], problems: list[str]) -> str:
    known_top = {"name", "description", "request", "amount", "signature", "operations", "response", "batch",
                 "semantics"}
    for key in data:
        if key not in known_top:
            problems.append(f"unknown top-level key {key!r} (known: {', '.join(sorted(known_top))})")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", name):
        problems.append("name: lower-case letters, digits and dashes")
        name = "unnamed"
    return name


def _load_format(data: Mapping[str, Any], problems: list[str]) -> str:
    """``[request] format``: a JSON or a form body."""
    req = data.get("request", {})
    fmt = req.get("format", "json") if isinstance(req, Mapping) else "json"
    if fmt not in ("json", "form"):
        problems.append("request.format: 'json' or 'form'")
    return str(fmt)


def _load_amount(data: Mapping[str, Any], problems: list[str]) -> tuple[str, int]:
    """``[amount]``: the encoding of amounts, and its decimal places."""
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
    return encoding, places


@dataclass(frozen=True, slots=True)
class _Signature:
    """``[signature]`` as written (names not yet known to be strings)."""

    scheme: str
    header: Any
    param: Any
    query: Any
    timestamp_header: Any
    encoding: str
    sign_responses: bool


def _load_signature(data: Mapping[str, Any], problems: list[str]) -> _Signature:
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
    return _Signature(scheme, header, param, query, ts_header, sig_encoding, sign_responses)


def _signature_config(sig: _Signature, fmt: str, ops: list[Operation], problems: list[str]) -> SigConfig:
    """Where the signature goes, and what its scheme says of that (a form or GET wire signs flat parameters)."""
    def name(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    cfg = SigConfig(name(sig.header), name(sig.param), name(sig.query), sig.encoding, name(sig.timestamp_header))
    if sig.scheme in SCHEME_CLASSES:
        flat = bool(ops) and all(fmt == "form" or o.method == "GET" for o in ops)
        problems.extend(SCHEME_CLASSES[sig.scheme].problems(cfg, flat))
    return cfg


def _load_operations(data: Mapping[str, Any], fmt: str, sem: Semantics, problems: list[str]) -> list[Operation]:
    """``[[operations]]``: each one, then the set (every operation present, every win found, no twins)."""
    ops: list[Operation] = []
    raw_ops = data.get("operations")
    if not isinstance(raw_ops, list) or not raw_ops:
        problems.append("operations: needs [[operations]] entries")
        raw_ops = []
    for i, o in enumerate(raw_ops):
        operation = _load_operation(f"operations[{i}]", o, fmt, sem, problems)
        if operation is not None:
            ops.append(operation)
    _check_coverage(ops, sem, problems)
    return ops


def _load_operation(where: str, o: Any, fmt: str, sem: Semantics, problems: list[str]) -> Operation | None:
    if not isinstance(o, Mapping):
        problems.append(f"{where}: a table")
        return None
    try:
        op = Op(str(o.get("op")))
    except ValueError:
        problems.append(f"{where}.op: one of {', '.join(Op)}")
        return None
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
    reasons = _load_when(where, when, op, sem, problems)
    values = _load_values(where, o.get("values", {}), problems)
    operation = Operation(op, path, method, flds, reasons, when.get("amount_zero"), when.get("round_closed"),
                          values)
    _check_sources(where, operation, sem, problems)
    dup = [k for k in {k for k, _ in flds} if [x for x, _ in flds].count(k) > 1]
    if dup:
        problems.append(f"{where}: field(s) listed twice: {', '.join(dup)}")
    return operation


def _load_when(where: str, when: Any, op: Op, sem: Semantics, problems: list[str]) -> frozenset[WinReason] | None:
    """``when``: which wins an operation carries (by reason, zero amount, closing flag)."""
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
    return reasons


def _load_values(where: str, values: Any, problems: list[str]) -> Mapping[str, Mapping[str, Any]]:
    """``values``: the wire's words for a win's reason and closing flag."""
    if not isinstance(values, Mapping):
        problems.append(f"{where}.values: a table source -> {{canonical value = wire value}}")
        return {}
    for src, table in values.items():
        if src not in ("reason", "round_closed"):
            problems.append(f"{where}.values.{src}: only reason and round_closed take value maps")
        elif not isinstance(table, Mapping) or len(set(map(repr, table.values()))) != len(table):
            problems.append(f"{where}.values.{src}: distinct wire values (decoding must be exact)")
        elif src == "reason" and set(table) - set(WinReason):
            problems.append(f"{where}.values.reason: keys are {', '.join(WinReason)}")
        elif src == "round_closed" and set(table) != {"true", "false"}:
            problems.append(f"{where}.values.round_closed: keys 'true' and 'false'")
    return values


def _check_sources(where: str, operation: Operation, sem: Semantics, problems: list[str]) -> None:
    """What the operation must carry under the semantics, and what it must not."""
    have = operation.sources()
    reasons = operation.when_reason
    for need in required_sources(operation, sem):
        implied = (need == "reason" and reasons is not None and len(reasons) == 1) or \
            (need == "round_closed" and operation.when_round_closed is not None) or \
            (need == "amount" and operation.when_amount_zero is True)
        if need not in have and not implied:
            problems.append(f"{where}: must carry {need} (a field whose source is {need!r})")
    for src, why in banned_sources(operation.op, sem).items():
        if src in have:
            problems.append(f"{where}: carries {src}, but {why}")


def _check_coverage(ops: list[Operation], sem: Semantics, problems: list[str]) -> None:
    """Every operation is there once; every win finds its operation and decoding tells them apart."""
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


def _load_response(data: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """``[response]``: how a success and a refusal look, then the codes (:func:`_load_codes`); the fields of
    :class:`Spec` they fill, by name."""
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
    codes, decode_codes, http_map = _load_codes(resp, ok_value, problems)
    unknown = tuple(resp.get("unknown_codes", ()))
    if not unknown:
        problems.append("response.unknown_codes: at least one code meaning 'outcome unknown, retry'")
    replay: dict[Op, Any] = {}
    for k, v in (resp.get("replay") or {}).items():
        if k not in ("bet", "win", "rollback"):
            problems.append(f"response.replay.{k}: bet, win or rollback")
        else:
            replay[Op(k)] = v
    return {"success": success, "ok_fields": ok_fields, "error_fields": error_fields, "status_field": status_field,
            "code_fields": tuple(code_fields), "ok_value": ok_value, "codes": codes, "decode_codes": decode_codes,
            "http_status": http_map, "unknown_codes": unknown, "replay": replay,
            "rollback_unknown": resp.get("rollback_unknown")}


def _load_codes(resp: Mapping[str, Any], ok_value: Any, problems: list[str]
                ) -> tuple[dict[ErrorCode, Any], dict[Any, ErrorCode], dict[ErrorCode, int]]:
    """``codes`` (canonical code → wire code, one to one), ``decode_codes`` and ``http_status``."""
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
    return codes, decode_codes, http_map


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
