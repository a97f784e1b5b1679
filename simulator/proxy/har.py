"""Reading an HTTP Archive (HAR 1.2) as a recording: ``croupier proxy --har`` files, and those a browser's
devtools, mitmproxy or another proxy saved while a provider talked to a wallet.

A HAR keeps the bytes both ways but not what they mean, so each entry is decoded again with the dialect,
at the time the entry says it was sent (a signature's time is checked against that, not against now).
Where a recording redacted the shared secret (``croupier proxy`` does), the secret given to the replay is
put back before decoding.  The wallet's base URL is not in a HAR: the path the dialect reads is the
shortest tail of the entry's URL path that it decodes.  An entry no tail of which decodes (a page, an
image, another API) is not a wallet call: it is skipped and counted.  Pure: the caller reads the file.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson

from ..protocol.calls import Outcome, Rejected, Unknown, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.dialects import Dialect, HttpRequest, HttpResponse
from .recording import REDACTED, Recorded, RecordingError, decode_calls, decode_outcomes

NOT_FORWARDED = "answered by the proxy, not forwarded"
"""The comment :func:`simulator.proxy.recording.to_har` gives an entry the wallet never received."""
MAX_TAIL = 4
"""Path segments tried, from the end of an entry's URL, as the dialect's operation path."""


class HarError(RecordingError):
    """A file that is not an HTTP Archive, or an entry that is not one, naming where."""


@dataclass(slots=True)
class HarRead:
    records: list[Recorded] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    """Entries that are no wallet call the dialect reads, by why."""


def is_har(raw: bytes, name: str) -> bool:
    """Whether a file is to be read as a HAR: by its extension, else by its content (one JSON document with a
    ``log``; a JSON-lines recording's first line is a ``croupier_traffic`` object)."""
    if name.lower().endswith(".har"):
        return True
    head = raw.lstrip()[:1]
    if head != b"{":
        return False
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False  # several lines: JSON lines
    return isinstance(doc, dict) and "log" in doc


def read_har(raw: bytes, dialect: Dialect, secret: str | None = None, where: str = "HAR") -> HarRead:
    """The wallet calls of a HAR file, in the order they were sent (:class:`HarError` names what is wrong)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HarError(f"{where}: not an HTTP Archive: not JSON ({exc})") from None
    log = doc.get("log") if isinstance(doc, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise HarError(f"{where}: not an HTTP Archive: no log.entries list")
    out = HarRead()
    timed: list[tuple[float, int, Recorded]] = []
    for n, entry in enumerate(entries, 1):
        try:
            got = _entry(entry, n, dialect, secret, out.skipped)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HarError(f"{where}, entry {n}: {type(exc).__name__}: {exc}") from None
        if got is not None:
            timed.append((got.at, n, got))
    timed.sort(key=lambda t: (t[0], t[1]))  # as sent: HAR gives each entry's start
    out.records = [rec for _, _, rec in timed]
    return out


def _entry(entry: Any, n: int, dialect: Dialect, secret: str | None, skipped: Counter[str]) -> Recorded | None:
    if not isinstance(entry, dict):
        raise TypeError("an entry must be an object")
    request, response = entry["request"], entry.get("response")
    if not isinstance(request, dict):
        raise TypeError("request must be an object")
    at = datetime.fromisoformat(str(entry["startedDateTime"])).timestamp()
    method, url = str(request["method"]), str(request["url"])
    parts = urlsplit(url)
    headers = _headers(request.get("headers", []), secret)
    post = request.get("postData") or {}
    if not isinstance(post, dict):
        raise TypeError("request.postData must be an object")
    body = _text(post, secret)
    segments = [s for s in parts.path.split("/") if s]
    query = _unredact(parts.query, quote(secret, safe="") if secret else None)
    refusal: Rejected | None = None
    for k in range(1, min(len(segments), MAX_TAIL) + 1):
        tail = "/".join(segments[-k:]) + (f"?{query}" if query else "")
        req = HttpRequest(method, tail, headers, body)
        try:
            calls = decode_calls(dialect, req, at)
        except Exception:  # noqa: BLE001, S112 - the dialect cannot read it as this path: try a longer one
            continue
        if isinstance(calls, Rejected):
            refusal = refusal or calls
            continue
        if calls:
            return _recorded(n, at, tail, calls, response, entry.get("comment"), dialect)
    skipped[f"refused by the dialect: {refusal.code} (check --dialect and --secret)"
            if refusal is not None and refusal.code is ErrorCode.INVALID_SIGNATURE
            else "not a wallet call (the dialect reads none of its URL)"] += 1
    return None


def _recorded(n: int, at: float, path: str, calls: list[WalletCall], response: Any, comment: Any,
              dialect: Dialect) -> Recorded:
    notes = [s.strip() for s in str(comment or "").split(";")]
    fault = next((s.removeprefix("fault:").strip() for s in notes if s.startswith("fault:")), None)
    forwarded = NOT_FORWARDED not in notes
    status = int(response["status"]) if isinstance(response, dict) else 0
    outcomes: list[Outcome]
    if status <= 0 or not isinstance(response, dict):  # HAR: 0 for a request that got no answer
        outcomes = [Unknown("no answer in the HAR") for _ in calls]
    else:
        content = response.get("content") or {}
        if not isinstance(content, dict):
            raise TypeError("response.content must be an object")
        resp = HttpResponse(status, _headers(response.get("headers", []), None), _text(content, None))
        outcomes = decode_outcomes(dialect, calls, resp)
    return Recorded(n, at, path, tuple(calls), tuple(outcomes), forwarded, fault, status or None)


def _headers(rows: Any, secret: str | None) -> dict[str, str]:
    if not isinstance(rows, list):
        raise TypeError("headers must be a list of {name, value}")
    out: dict[str, str] = {}
    for row in rows:
        if not isinstance(row, Mapping) or not isinstance(row.get("name"), str):
            raise TypeError("headers must be a list of {name, value}")
        name = row["name"]
        if name.startswith(":"):
            continue  # an HTTP/2 pseudo-header (devtools list them): not a header of the request
        out[name] = _unredact(str(row.get("value", "")), secret)
    return out


def _text(part: Mapping[str, Any], secret: str | None) -> bytes:
    """A body as HAR keeps it: ``text``, base64 when ``encoding`` says so; a form posted may come as
    ``params`` only (HAR 1.2: "text and params fields are mutually exclusive")."""
    text = part.get("text") or ""
    if not isinstance(text, str):
        raise TypeError("a body's text must be a string")
    if not text and isinstance(part.get("params"), list):
        text = urlencode([(str(p["name"]), str(p.get("value", ""))) for p in part["params"]])
    if part.get("encoding") == "base64":
        return base64.b64decode(text, validate=True)
    return _unredact(text, secret).encode("utf-8")


def _unredact(text: str, secret: str | None) -> str:
    return text.replace(REDACTED, secret) if secret and REDACTED in text else text
