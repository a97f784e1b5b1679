"""The proxy's recording: one JSON line per request that reached the wallet (or was answered by a fault).

Each line keeps the bytes both ways (so a developer sees exactly what went over the wire) and what the
dialect decoded from them at the time (the calls and their outcomes): a replay cannot decode last
week's requests again, their signatures have gone stale, so it re-sends the decoded calls.

A line::

    {"croupier_traffic": 1, "seq": 7, "at": 1733350000.123, "method": "POST", "path": "bet",
     "request": {"headers": {...}, "body": "..."}, "status": 200, "response": {"headers": {...}, "body": "..."},
     "latency_ms": 3.2, "fault": null, "copy": 0, "forwarded": true, "visible": true,
     "calls": [{"op": "bet", ...}], "outcomes": [{"ok": {"balance": [990, "EUR"], "wallet_tx_id": "w1"}}]}

Bodies that are not UTF-8 are kept as ``body_b64``.  Pure: the server writes the lines, the replay reads them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from ..protocol.calls import Ok, Outcome, Rejected, Unknown, WalletCall, call_from_json, call_json
from ..protocol.codes import ErrorCode
from ..protocol.dialects import Dialect, HttpRequest, HttpResponse, batching
from ..protocol.money import Money

VERSION: Final = 1


class RecordingError(ValueError):
    """A recording that cannot be read, naming the line."""


def decode_calls(dialect: Dialect, req: HttpRequest, now: float) -> list[WalletCall] | Rejected:
    """The calls a request carries, as the dialect reads them at ``now`` (a signature's time is checked
    against it), or the dialect's refusal; raises what the dialect raises on bytes it cannot read."""
    batch = batching(dialect)
    got = batch.decode_batch(req, now) if batch is not None else dialect.decode_request(req, now)
    return got if isinstance(got, (list, Rejected)) else [got]


def decode_outcomes(dialect: Dialect, calls: Sequence[WalletCall], resp: HttpResponse) -> list[Outcome]:
    """What the wallet's answer means for each call; an answer the dialect cannot read is judged as what it
    is (outcome unknown), never raised."""
    try:
        if len(calls) > 1:
            batch = batching(dialect)
            assert batch is not None
            return list(batch.decode_batch_response(calls, resp))
        return [dialect.decode_response(calls[0], resp)]
    except Exception as exc:  # noqa: BLE001 - an answer that cannot be read
        return [Unknown(f"undecodable answer: {exc}", resp.status) for _ in calls]


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Ok):
        ok: dict[str, Any] = {"balance": [outcome.balance.minor, outcome.balance.currency.code]}
        for name in ("wallet_tx_id", "player_id", "session_token"):
            value = getattr(outcome, name)
            if value is not None:
                ok[name] = value
        if outcome.missing:
            ok["missing"] = sorted(outcome.missing)
        return {"ok": ok}
    if isinstance(outcome, Rejected):
        return {"rejected": {"code": str(outcome.code), "message": outcome.message}}
    return {"unknown": {"reason": outcome.reason, "status": outcome.status}}


def outcome_from_json(data: Mapping[str, Any]) -> Outcome:
    if "ok" in data:
        ok = data["ok"]
        return Ok(Money.of(int(ok["balance"][0]), str(ok["balance"][1])), ok.get("wallet_tx_id"), ok.get("player_id"),
                  ok.get("session_token"), missing=frozenset(ok.get("missing", ())))
    if "rejected" in data:
        return Rejected(ErrorCode(data["rejected"]["code"]), data["rejected"].get("message", ""))
    return Unknown(str(data["unknown"]["reason"]), data["unknown"].get("status"))


REDACTED: Final = "[redacted]"
SENSITIVE_HEADERS: Final = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret replaced (a static-token dialect sends the shared secret
    itself, in the query or a header: a recording must not spread it)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str]) -> dict[str, str]:
    return {str(k): REDACTED if str(k).lower() in SENSITIVE_HEADERS else redact(v, secrets) for k, v in headers.items()}


def _body(raw: bytes) -> dict[str, str]:
    try:
        return {"body": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(raw).decode("ascii")}


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def body_of(part: Mapping[str, Any]) -> bytes:
    if "body_b64" in part:
        return base64.b64decode(part["body_b64"])
    return str(part.get("body", "")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Recorded:
    """One line of a recording, as the replay needs it."""

    seq: int
    at: float
    path: str
    calls: tuple[WalletCall, ...]
    outcomes: tuple[Outcome, ...]
    forwarded: bool
    fault: str | None
    status: int | None


def line(*, seq: int, at: float, method: str, path: str, request_headers: Mapping[str, str], request_body: bytes,
         status: int | None, response_headers: Mapping[str, str] | None, response_body: bytes | None,
         latency_ms: float | None, fault: str | None, copy: int, forwarded: bool, visible: bool,
         calls: Sequence[WalletCall], outcomes: Sequence[Outcome], secrets: Sequence[str] = ()) -> bytes:
    """One exchange as a line of the recording (with its newline); ``secrets`` are redacted wherever they
    appear (the path, a header, a body)."""
    request_body = redact(request_body.decode("utf-8"), secrets).encode() if secrets and _utf8(request_body) \
        else request_body
    doc: dict[str, Any] = {
        "croupier_traffic": VERSION, "seq": seq, "at": round(at, 6), "method": method, "path": redact(path, secrets),
        "request": {"headers": redact_headers(request_headers, secrets), **_body(request_body)}, "status": status,
        "response": None if response_body is None else {"headers": redact_headers(response_headers or {}, secrets),
                                                        **_body(response_body)},
        "latency_ms": None if latency_ms is None else round(latency_ms, 3), "fault": fault, "copy": copy,
        "forwarded": forwarded, "visible": visible,
        "calls": [call_json(c) for c in calls], "outcomes": [outcome_json(o) for o in outcomes],
    }
    return orjson.dumps(doc) + b"\n"


def read(lines: Iterable[bytes], where: str = "recording") -> list[Recorded]:
    """The exchanges of a recording, in the order they were sent (``RecordingError`` names a bad line)."""
    out: list[Recorded] = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict) or doc.get("croupier_traffic") != VERSION:
                raise ValueError("not a line of a croupier proxy recording (croupier_traffic: 1)")
            out.append(Recorded(
                int(doc["seq"]), float(doc["at"]), str(doc["path"]),
                tuple(call_from_json(c) for c in doc["calls"]), tuple(outcome_from_json(o) for o in doc["outcomes"]),
                bool(doc["forwarded"]), doc.get("fault"), doc.get("status")))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise RecordingError(f"{where}, line {n}: {exc}") from None
    out.sort(key=lambda r: r.seq)  # numbered as they were sent to the wallet
    return out


def to_har(lines: Iterable[bytes], base_url: str, creator_version: str = "") -> dict[str, Any]:
    """A recording as an HTTP Archive (HAR 1.2) for browsers' and proxies' tools: one entry per request
    that reached the wallet; what the proxy did to it (a fault, an answer the provider never read) in the
    entry's comment.  Requests answered by the proxy itself have no response (status 0, as HAR says)."""
    from datetime import UTC, datetime

    entries = []
    for raw in lines:
        if not raw.strip():
            continue
        doc = orjson.loads(raw)
        request, response = doc["request"], doc.get("response")
        req_body, resp_body = body_of(request), body_of(response) if response else b""
        notes = [f"fault: {doc['fault']}"] if doc.get("fault") else []
        if not doc.get("forwarded", True):
            notes.append("answered by the proxy, not forwarded")
        elif not doc.get("visible", True):
            notes.append("the provider never read this answer")
        mime = next((v for k, v in request["headers"].items() if k.lower() == "content-type"), "application/json")
        entries.append({
            "startedDateTime": datetime.fromtimestamp(float(doc["at"]), UTC).isoformat(timespec="milliseconds"),
            "time": doc.get("latency_ms") or 0,
            "request": {"method": doc["method"], "url": f"{base_url.rstrip('/')}/{doc['path']}", "httpVersion": "HTTP/1.1",
                        "headers": [{"name": k, "value": v} for k, v in request["headers"].items()],
                        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": len(req_body),
                        "postData": {"mimeType": mime, "text": req_body.decode("utf-8", "replace")}},
            "response": {"status": doc.get("status") or 0, "statusText": "", "httpVersion": "HTTP/1.1",
                         "headers": [{"name": k, "value": v} for k, v in (response or {}).get("headers", {}).items()],
                         "cookies": [], "content": {"size": len(resp_body), "mimeType": "application/json",
                                                    "text": resp_body.decode("utf-8", "replace")},
                         "redirectURL": "", "headersSize": -1, "bodySize": len(resp_body) if response else -1},
            "cache": {}, "timings": {"send": 0, "wait": doc.get("latency_ms") or 0, "receive": 0},
            "comment": "; ".join(notes),
        })
    return {"log": {"version": "1.2", "creator": {"name": "croupier proxy", "version": creator_version},
                    "entries": entries}}
