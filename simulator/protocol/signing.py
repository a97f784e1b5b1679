"""HMAC request signatures of the canonical protocol.

``X-Signature: t=<unix seconds>,v1=<hex>`` with hex = HMAC-SHA256 over
``<t>.<raw body>``.  Binding the timestamp into the MAC makes a captured request
useless after the tolerance window; comparing in constant time keeps the MAC
from leaking byte by byte.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

HEADER: Final = "X-Signature"
TOLERANCE_S: Final = 300
DEV_SECRET: Final = "croupier-dev-secret"
"""The shared secret every side uses when none is given (the reference wallet only on loopback): one
value here, so a provider, a check and a wallet started without ``--secret`` always agree."""
DEV_ADMIN_TOKEN: Final = "croupier-dev-admin"
"""The reference wallet's admin bearer token when none is given, for the same reason."""


def _mac(secret: bytes, t: int, body: bytes) -> str:
    return hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, t: int) -> str:
    """The header value for ``body`` signed at unix time ``t``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return f"t={t},v1={_mac(key, t, body)}"


class SignatureError(ValueError):
    """Why a signature was refused (for the error message, never for the client to branch on)."""


def verify(
    secret: str | bytes, header: str | None, body: bytes, now: float, tolerance: int = TOLERANCE_S
) -> int:
    """Check ``header`` against ``body``; return its timestamp or raise :class:`SignatureError`."""
    if not header:
        raise SignatureError("missing X-Signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed X-Signature header")
        parts.setdefault(key, []).append(value)
    ts = parts.get("t")
    if not ts or len(ts) != 1 or not ts[0].isascii() or not ts[0].isdigit() or len(ts[0]) > 12:
        raise SignatureError("X-Signature needs one numeric t=")
    t = int(ts[0])
    if abs(now - t) > tolerance:
        raise SignatureError(f"signature timestamp is more than {tolerance}s from the wallet's clock")
    raw_key: bytes = secret.encode() if isinstance(secret, str) else secret
    expected = _mac(raw_key, t, body)
    for candidate in parts.get("v1", []):
        if hmac.compare_digest(candidate.encode("ascii", "replace"), expected.encode()):
            return t
    raise SignatureError("signature does not match")
