"""Two small probes of certify: the wallet's API document, and whether money calls travel only over TLS.

Each returns the report its checklist item is judged from (:mod:`.checklist`), never raises for what the
wallet does: a document that cannot be read or a plain-HTTP address that speaks the protocol is a result.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from ..protocol.calls import Op, WalletCall
from ..protocol.dialects import Dialect
from ..protocol.money import Money
from ..wallet.server import is_loopback

SAMPLE_CALLS = {
    Op.AUTHENTICATE: WalletCall.authenticate("certify-token", "certify-game"),
    Op.BALANCE: WalletCall(Op.BALANCE, player_id="certify-player", session_token="certify-session",
                           currency_hint="EUR"),
    Op.BET: WalletCall.bet("certify-probe-bet", "certify-player", "certify-session", "certify-game", "certify-round",
                           Money.of(100, "EUR")),
    Op.WIN: WalletCall.win("certify-probe-win", "certify-player", "certify-session", "certify-game", "certify-round",
                           Money.of(100, "EUR"), round_closed=True),
    Op.ROLLBACK: WalletCall.rollback("certify-probe-rb", "certify-probe-bet", "certify-player", "certify-session",
                                     "certify-game", "certify-round"),
}
"""One call of each operation, encoded by the dialect to learn the path each operation is sent to."""


def operation_paths(dialect: Dialect) -> dict[str, str]:
    """Each operation's path on the dialect's wire (``bet`` → ``bet``, or a single endpoint for all)."""
    return {str(op): dialect.encode_call(call, time.time()).path.split("?")[0] for op, call in SAMPLE_CALLS.items()}


def _documented(paths: dict[str, Any], path: str) -> bool:
    """Whether an OpenAPI ``paths`` table has ``path`` (at any base: the document may mount it under one)."""
    want = "/" + path.strip("/")
    return any(str(p).rstrip("/").endswith(want) for p in paths)


async def documentation(source: str | None, wallet_url: str, dialect: Dialect,
                        session: aiohttp.ClientSession) -> dict[str, Any] | None:
    """Read the OpenAPI document (a URL or a file; without one, ``/openapi.json`` beside the wallet) and
    say which of the dialect's operations it documents.  None: no document was given or found."""
    tried: list[str] = []
    text: bytes | None = None
    where = source
    if source is not None and not source.startswith(("http://", "https://")):
        try:
            text = Path(source).read_bytes()
        except OSError as exc:
            return {"source": source, "error": exc.strerror or str(exc)}
    else:
        parts = urlsplit(wallet_url)
        candidates = [source] if source else [
            urlunsplit((parts.scheme, parts.netloc, "/openapi.json", "", "")),
            wallet_url.rstrip("/") + "/openapi.json"]
        for url in candidates:
            assert url is not None
            tried.append(url)
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    if resp.status == 200:
                        text, where = await resp.read(), url
                        break
                    if source:
                        return {"source": url, "error": f"HTTP {resp.status}"}
            except (aiohttp.ClientError, TimeoutError) as exc:
                if source:
                    return {"source": url, "error": f"{type(exc).__name__}: {exc}"}
        if text is None:
            return None
    return judge_document(text, str(where), dialect)


def judge_document(text: bytes, source: str, dialect: Dialect) -> dict[str, Any]:
    """The document's title and version, and the dialect's operations it has no path for."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            import yaml  # an OpenAPI document is as often YAML; PyYAML comes with the project's dependencies

            doc = yaml.safe_load(text)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the document's, said as such
            return {"source": source, "error": f"neither JSON nor YAML ({type(exc).__name__})"}
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict) or not (
            "openapi" in doc or "swagger" in doc):
        return {"source": source, "error": "not an OpenAPI document (no openapi/swagger version and paths)"}
    info = doc["info"] if isinstance(doc.get("info"), dict) else {}
    ops = operation_paths(dialect)
    missing = sorted(op for op, path in ops.items() if not _documented(doc["paths"], path))
    return {"source": source, "title": info.get("title"), "version": info.get("version"),
            "openapi": doc.get("openapi") or doc.get("swagger"), "operations": sorted(set(ops) - set(missing)),
            "missing": missing}


async def encryption(wallet_url: str, plain_url: str | None, dialect: Dialect,
                     session: aiohttp.ClientSession) -> dict[str, Any]:
    """Whether money calls travel only over TLS: an ``https://`` wallet whose plain-HTTP address (``plain_url``,
    else the same host on port 80) does not speak the protocol — nothing listens, it redirects, or it
    refuses without a protocol answer.  A plain ``http://`` wallet on loopback is a local sandbox: not tested."""
    parts = urlsplit(wallet_url)
    host = parts.hostname or ""
    if parts.scheme == "http":
        if is_loopback(host):
            return {"status": "not tested", "wallet": wallet_url,
                    "why": "the wallet was reached over plain HTTP on loopback (a local sandbox): serve it over TLS "
                           "(croupier wallet serve --tls-cert/--tls-key) and give its https:// URL to test this"}
        return {"status": "fail", "wallet": wallet_url,
                "why": f"money calls go to {host} over plain HTTP: nothing protects them on the way"}
    plain = plain_url or urlunsplit(("http", parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc,
                                                parts.path, "", ""))
    req = dialect.encode_call(SAMPLE_CALLS[Op.BET], time.time())
    url = f"{plain.rstrip('/')}/{req.path}"
    probe: dict[str, Any] = {"wallet": wallet_url, "plain": plain, "sent": f"POST {url} (a signed bet for a player "
                             "that does not exist)"}
    try:
        async with session.request(req.method, url, data=req.body, headers=req.headers, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=10)) as resp:
            body = await resp.read()
            probe.update(status_code=resp.status, answer=body[:300].decode("utf-8", "replace"),
                         location=resp.headers.get("Location"))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return {**probe, "status": "pass", "why": f"nothing speaks the protocol at {plain} ({type(exc).__name__})"}
    code = probe["status_code"]
    if 300 <= code < 400:
        where = str(probe.get("location") or "")
        if where.startswith("https://"):
            return {**probe, "status": "pass", "why": f"{plain} redirects to {where}"}
        return {**probe, "status": "fail", "why": f"{plain} redirects to {where or 'nowhere'}, not to https://"}
    if _protocol_answer(body):
        return {**probe, "status": "fail",
                "why": f"{plain} answers the protocol over plain HTTP (HTTP {code}): money calls would be taken there"}
    return {**probe, "status": "pass", "why": f"{plain} refuses money calls without a protocol answer (HTTP {code})"}


def _protocol_answer(body: bytes) -> bool:
    """An answer of the wallet protocol (a JSON object with ``status``), not a web server's refusal page."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and ("status" in data or "code" in data or "balance" in data)
