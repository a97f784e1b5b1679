"""How a dialect signs its requests: one small class per scheme, chosen by name in the TOML.

Real wallets authenticate the provider many ways (docs/dialects.md): an HMAC of the
raw body or of the body re-serialised, a hash of the sorted parameters, an HMAC over a
timestamp, an RSA signature, a static token.  Each scheme here is a class of a few
lines with the same two halves:

* ``sign`` (the provider): where the signature goes - headers, a parameter among the
  request's own, or a query parameter - for a request whose body and query are final;
* ``verify`` (the wallet): ``None`` when the request is signed with the secret, else why not.

A scheme sees a :class:`Message`: the body and query as sent, the flat parameters
(a form body, a GET query, or a JSON body's top-level fields) and the headers.  A
scheme whose signature is a parameter signs the other parameters; every other one
signs the *payload*: the body, or the query string when there is no body (a GET).
Everything is pure; keys are the shared secret (RSA: :mod:`simulator.protocol.dialects.keys`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Final

from .base import header

WINDOW_S: Final = 300
"""A timestamped signature older or newer than this many seconds is refused (the canonical protocol's window)."""


@dataclass(frozen=True)
class SigConfig:
    """The ``[signature]`` table: where a scheme puts what it computes."""

    header: str | None = None
    param: str | None = None
    query: str | None = None
    encoding: str = "hex"
    timestamp_header: str | None = None


@dataclass(frozen=True)
class Message:
    """What a signature covers, as sent (the provider) or as received (the wallet)."""

    body: bytes = b""
    query: str = ""
    """The query string as sent (percent-encoded), without a static token."""
    params: tuple[tuple[str, str], ...] = ()
    """The flat parameters in the order sent, without the signature's own."""
    headers: Mapping[str, str] = field(default_factory=dict)
    param_given: str | None = None
    """The wallet side: the value sent in the signature's own parameter, if any."""
    token_given: str | None = None
    """The wallet side: the value sent in the static token's query parameter, if any."""

    @property
    def payload(self) -> bytes:
        """What a body scheme signs: the body, or the query when there is none (a GET)."""
        return self.body if self.body else self.query.encode()

    def header(self, name: str | None) -> str | None:
        return header(self.headers, name)


@dataclass(frozen=True)
class Placement:
    """Where the provider's signature goes."""

    headers: dict[str, str] = field(default_factory=dict)
    param: tuple[str, str] | None = None
    """Appended to the flat parameters (the body or query is rendered again)."""
    query: tuple[str, str] | None = None
    """Appended to the query string."""


class Scheme:
    """A signature scheme; subclasses set ``name`` and override what they do."""

    name: ClassVar[str] = "none"
    has_time: ClassVar[bool] = False
    """The signature binds a time: a stale or future request is refused (``signature_has_time``)."""
    signs_bodies: ClassVar[bool] = False
    """It may sign answers too (``sign_responses``)."""
    needs: ClassVar[tuple[str, ...]] = ()
    """The ``[signature]`` keys it requires."""
    uses_params: ClassVar[bool] = False
    """It signs the flat parameters (:attr:`Message.params`); the others never read them."""

    def __init__(self, secret: str, cfg: SigConfig) -> None:
        self.secret = secret
        self.cfg = cfg

    def warm(self) -> None:
        """Load or derive what signing needs now (nothing but the secret, for most schemes)."""

    @classmethod
    def problems(cls, cfg: SigConfig, flat: bool) -> list[str]:
        """What is wrong with ``cfg`` for this scheme (``flat``: every request's fields are parameters)."""
        out = []
        for key in cls.needs:
            if not isinstance(getattr(cfg, key), str):
                where = {"header": "a header", "param": "a parameter", "timestamp_header": "a header"}[key]
                out.append(f"signature.{key}: {cls.name} puts {'the time' if key == 'timestamp_header' else 'the signature'}"
                           f" in {where}; name it")
        return out

    def sign(self, msg: Message, now: float) -> Placement:
        return Placement()

    def verify(self, msg: Message, now: float) -> str | None:
        return None

    # Answers (``signs_bodies`` schemes only): ``side`` is who acts, "provider" or "wallet".
    def sign_bytes(self, data: bytes, side: str) -> str:
        raise NotImplementedError(self.name)

    def check_bytes(self, signature: str | None, data: bytes, side: str) -> bool:
        return signature is not None and hmac.compare_digest(
            signature.encode("utf-8", "replace"), self.sign_bytes(data, side).encode())

    def _encode(self, raw: bytes) -> str:
        return raw.hex() if self.cfg.encoding == "hex" else base64.b64encode(raw).decode()


class NoSignature(Scheme):
    name = "none"


class _InHeader(Scheme):
    """A signature of the payload in a header (answers signed the same way where the scheme signs bodies)."""

    signs_bodies = True
    needs = ("header",)

    def sign(self, msg: Message, now: float) -> Placement:
        assert self.cfg.header is not None
        return Placement({self.cfg.header: self.sign_bytes(msg.payload, "provider")})

    def verify(self, msg: Message, now: float) -> str | None:
        if self.check_bytes(msg.header(self.cfg.header), msg.payload, "wallet"):
            return None
        return f"{self.cfg.header} does not sign this request"


class _HeaderDigest(_InHeader):
    """A digest of the payload in a header, keyed with the secret."""

    def digest(self, data: bytes) -> bytes:
        raise NotImplementedError

    def sign_bytes(self, data: bytes, side: str) -> str:
        return self._encode(self.digest(data))


class HmacSha256(_HeaderDigest):
    """HMAC-SHA256 of the raw body."""

    name = "hmac-sha256"

    def digest(self, data: bytes) -> bytes:
        return hmac.new(self.secret.encode(), data, hashlib.sha256).digest()


class HmacSha256Json(_HeaderDigest):
    """HMAC-SHA256 of the JSON body re-serialised: sorted keys, no spaces, UTF-8 as is.

    A wallet that parses the body and serialises it again signs this; whitespace and key
    order as sent do not matter, the values do.  A body that is not JSON signs as sent."""

    name = "hmac-sha256-json"

    def digest(self, data: bytes) -> bytes:
        return hmac.new(self.secret.encode(), canonical_json(data), hashlib.sha256).digest()


class Sha256BodySecret(_HeaderDigest):
    """SHA-256 of the body followed by the secret."""

    name = "sha256-body-secret"

    def digest(self, data: bytes) -> bytes:
        return hashlib.sha256(data + self.secret.encode()).digest()


class _SortedParams(Scheme):
    """A hash of the flat parameters sorted by name, ``k1=v1&k2=v2`` (values as sent, not encoded)."""

    uses_params = True

    def text(self, params: tuple[tuple[str, str], ...]) -> str:
        return "&".join(f"{k}={v}" for k, v in sorted(params))

    def digest(self, params: tuple[tuple[str, str], ...]) -> str:
        raise NotImplementedError

    def sign(self, msg: Message, now: float) -> Placement:
        value = self.digest(msg.params)
        if self.cfg.param is not None:
            return Placement(param=(self.cfg.param, value))
        assert self.cfg.header is not None
        return Placement({self.cfg.header: value})

    def verify(self, msg: Message, now: float) -> str | None:
        given = msg.param_given if self.cfg.param is not None else msg.header(self.cfg.header)
        if isinstance(given, str) and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                          self.digest(msg.params).encode()):
            return None
        return f"{self.cfg.param or self.cfg.header} does not match the parameters"


class Md5SortedParams(_SortedParams):
    """MD5 of the sorted parameters followed by the secret, hex, in a parameter of its own."""

    name = "md5-sorted-params"
    needs = ("param",)

    def digest(self, params: tuple[tuple[str, str], ...]) -> str:
        return hashlib.md5((self.text(params) + self.secret).encode()).hexdigest()

    @classmethod
    def problems(cls, cfg: SigConfig, flat: bool) -> list[str]:
        out = super().problems(cfg, flat)
        if not flat:
            out.append("signature: md5-sorted-params signs form parameters (request.format = 'form')")
        return out


class HmacSha256SortedParams(_SortedParams):
    """HMAC-SHA256 (secret as key) of the sorted parameters, in a parameter (``param``) or a header.

    The parameters of a JSON body are its top-level fields, each as text (a string as is,
    ``true``/``false``, a number as written, anything else its sorted compact JSON)."""

    name = "hmac-sha256-sorted-params"

    def digest(self, params: tuple[tuple[str, str], ...]) -> str:
        return self._encode(hmac.new(self.secret.encode(), self.text(params).encode(), hashlib.sha256).digest())

    @classmethod
    def problems(cls, cfg: SigConfig, flat: bool) -> list[str]:
        if isinstance(cfg.param, str):
            why = f"signature.param: {cls.name} puts a parameter only among form or query parameters; " \
                "use header = ... for JSON bodies"
            return [] if flat else [why]
        if not isinstance(cfg.header, str):
            return [f"signature: {cls.name} goes in a parameter (param = ...) or a header (header = ...)"]
        return []


class HmacMd5Timestamp(Scheme):
    """Unix seconds in ``timestamp_header``; the signature header is hex HMAC-MD5(secret, time + payload).

    It binds the time: the wallet refuses a request more than :data:`WINDOW_S` seconds old or ahead."""

    name = "hmac-md5-timestamp"
    has_time = True
    needs = ("header", "timestamp_header")

    def _mac(self, t: str, payload: bytes) -> str:
        return self._encode(hmac.new(self.secret.encode(), t.encode() + payload, hashlib.md5).digest())

    def sign(self, msg: Message, now: float) -> Placement:
        assert self.cfg.header is not None and self.cfg.timestamp_header is not None
        t = str(int(now))
        return Placement({self.cfg.timestamp_header: t, self.cfg.header: self._mac(t, msg.payload)})

    def verify(self, msg: Message, now: float) -> str | None:
        t, given = msg.header(self.cfg.timestamp_header), msg.header(self.cfg.header)
        if t is None or not t.isascii() or not t.isdigit() or len(t) > 12:
            return f"{self.cfg.timestamp_header} must hold unix seconds"
        if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"),
                                                    self._mac(t, msg.payload).encode()):
            return f"{self.cfg.header} does not sign this request"
        if abs(now - int(t)) > WINDOW_S:
            return f"{self.cfg.timestamp_header} is more than {WINDOW_S} s from now"
        return None


class RsaSha256(_InHeader):
    """RSA-SHA256 (PKCS#1 v1.5) of the payload, base64 by default, in a header; keys from the secret."""

    name = "rsa-sha256"

    def __init__(self, secret: str, cfg: SigConfig) -> None:
        super().__init__(secret, cfg)
        self._keys: Any = None

    def warm(self) -> None:
        self.keys("provider")

    def keys(self, side: str) -> Any:
        if self._keys is None:
            from .keys import keys_for

            self._keys = keys_for(self.secret)
        return self._keys.provider if side == "provider" else self._keys.wallet

    def sign_bytes(self, data: bytes, side: str) -> str:
        return str(self.keys(side).sign(data))

    def check_bytes(self, signature: str | None, data: bytes, side: str) -> bool:
        return bool(self.keys(side).verify(signature, data))


class StaticToken(Scheme):
    """The secret itself, in a query parameter (``query``) or a header: says who sends, not what."""

    name = "static-token"

    @classmethod
    def problems(cls, cfg: SigConfig, flat: bool) -> list[str]:
        if isinstance(cfg.query, str) or isinstance(cfg.header, str):
            return []
        return ["signature: static-token goes in a query parameter (query = ...) or a header (header = ...)"]

    def sign(self, msg: Message, now: float) -> Placement:
        if self.cfg.query:
            return Placement(query=(self.cfg.query, self.secret))
        assert self.cfg.header is not None
        return Placement({self.cfg.header: self.secret})

    def verify(self, msg: Message, now: float) -> str | None:
        given = msg.token_given if self.cfg.query else msg.header(self.cfg.header)
        if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), self.secret.encode()):
            return "missing or wrong token"
        return None


SCHEMES: Final[dict[str, type[Scheme]]] = {c.name: c for c in (
    NoSignature, HmacSha256, HmacSha256Json, Sha256BodySecret, Md5SortedParams, HmacSha256SortedParams,
    HmacMd5Timestamp, RsaSha256, StaticToken)}
"""Every scheme by its TOML name."""


def canonical_json(data: bytes) -> bytes:
    """``data`` parsed and written again with sorted keys, ``,``/``:`` separators and UTF-8 as is;
    ``data`` itself when it is not JSON.

    Numbers are written as a wallet that parses and re-serialises writes them: ``1.50`` becomes
    ``1.5`` and ``2.0`` becomes ``2`` (JavaScript's ``JSON.stringify``, and Python's ``json.dumps``
    for the amounts a wire carries), computed from the exact decimal, never through a float."""
    try:
        value = json.loads(data, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return data
    return dump_sorted(value, reserialise=True).encode()


def js_number(d: Decimal) -> str:
    """``d`` as ECMAScript's Number::toString writes it (shortest digits; exponent below 1e-6 or from 1e21)."""
    if not d.is_finite():
        return "null"
    if d.is_zero():
        return "0"
    sign, digits, exp = d.normalize().as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, digits))
    k = len(text)
    n = k + exp
    if k <= n <= 21:
        out = text + "0" * (n - k)
    elif 0 < n <= 21:
        out = f"{text[:n]}.{text[n:]}"
    elif -6 < n <= 0:
        out = "0." + "0" * -n + text
    else:
        e = n - 1
        out = text[0] + (f".{text[1:]}" if k > 1 else "") + f"e{'+' if e > 0 else '-'}{abs(e)}"
    return ("-" if sign else "") + out


def dump_sorted(value: Any, reserialise: bool = False) -> str:
    """Compact JSON with sorted keys; a Decimal is written as the number it is (no float), or, with
    ``reserialise``, as a parser that holds it as a number writes it again (:func:`js_number`)."""
    if isinstance(value, Decimal):
        return js_number(value) if reserialise else str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + dump_sorted(value[k], reserialise)
                              for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump_sorted(v, reserialise) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def param_text(value: Any) -> str:
    """A field's value as a flat parameter: a string as is, ``true``/``false``, a number as written,
    nothing for null, anything else its sorted compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, Decimal)):
        return str(value)
    return dump_sorted(value)
