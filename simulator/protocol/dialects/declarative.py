"""A wallet dialect described by data (a TOML file, or a dict in code): both sides, pure.

Real wallet APIs differ along a few axes (transport, authentication, amounts,
errors, replay and unknown-rollback answers; see docs/dialects.md).  One engine
reads a description of those choices and becomes a :class:`~simulator.protocol.dialects.Dialect`:
the built-in real-world shapes are descriptions in :mod:`simulator.protocol.dialects.builtin`,
and a user's wallet is a TOML file with the same keys.  The description and its
validation (``load_spec``, every problem named) are :mod:`simulator.protocol.dialects.spec`;
this module is the engine, and re-exports them.

The wallet side reads only the fields an operation lists and ignores every other
one, at any depth (PROTOCOL.md, Transport: providers add fields over time); a
listed field that is missing or of the wrong kind is still refused, and a list the
description indexes (``actions.0.…``) may not carry more entries than it names.
Signatures are checked over the body (or every form parameter) as sent, unknown
ones included; each scheme is a class of :mod:`simulator.protocol.dialects.signatures`.

A description also says what its calls *mean* (``[semantics]``,
:mod:`simulator.protocol.dialects.semantics`): which call fields the wire leaves out (a
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
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from ..calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from ..codes import ErrorCode
from ..money import INT64_MAX, Currency, Money, MoneyError, UnknownCurrency, currency
from .base import DialectBase, DialectError, HttpRequest, HttpResponse, header
from .canonical import _Bad, check_id
from .signatures import SCHEMES as SCHEME_CLASSES
from .signatures import Message, Scheme, SigConfig, param_text
from .spec import OPTIONAL_SOURCES, Const, Operation, Spec, SpecError, load_file, load_spec

__all__ = ["EXTRA_FIELDS", "MAX_BATCH", "MAX_BODY", "VARIANTS", "DeclarativeDialect", "Spec", "SpecError", "load_file",
           "load_spec", "request_id"]

MAX_BODY: Final = 64 * 1024
QUERY_SAFE: Final = "!$'()*,/:@?"
"""Left unescaped in a GET's query: what HTTP clients (aiohttp's yarl) would unescape anyway, so the
query arrives byte for byte as it was signed."""
MAX_BATCH: Final = 100
"""Actions in one request, at most (a round's bets and wins; more is an abuse, not a round)."""
_REQUEST_NS: Final = uuid.UUID("6f1c1a52-7d0e-4c55-9a57-0a3c4b1f2e90")

VARIANTS: Final = ("amount-float", "amount-string", "amount-negative", "amount-boolean", "amount-past-64-bit",
                   "missing-field", "unknown-currency", "bad-reason", "round-closed-not-boolean", "extra-field",
                   "not-json", "not-an-object", "oversized")
"""The defects :meth:`DeclarativeDialect.encode_variant` makes (the check's malformed-input mutations)."""
EXTRA_FIELDS: Final[dict[str, Any]] = {
    "x_provider_ref": "ext-7781", "x_bonus": {"campaign": "spring", "steps": [1, 2, {"k": None}]},
    "x_jackpot_ids": [], "x_is_test": False, "x_note": None,
}
"""Fields no wallet knows, of every JSON shape (the extra-field variant; flat wires get them as text)."""


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
    """A :class:`~simulator.protocol.dialects.Dialect` driven by a :class:`Spec`.

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
            if not self._check_body_sig(header(response.headers, s.sig_header), response.body, "provider"):
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

