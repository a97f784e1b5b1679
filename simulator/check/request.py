"""``python -m simulator.check.request``: one call as the dialect's own request, for the curl scripts of ``check``.

A reproduction script (``croupier check --out DIR``, ``RULE.sh``) must send what the
check sent: the dialect's paths, methods, fields, amounts and signature, signed now
with the check's secret.  Rather than re-implement every wire in bash, the script
asks croupier's own dialect encoder for each request, then sends it with curl:

    eval "$(python -m simulator.check.request encode CALL [MODE] [VARIANT])"
    curl -X "$METHOD" "$WALLET/$RPATH" "${HDR[@]}" --data-binary "$BODY"

``CALL`` is a call as :func:`call_json` writes it (ids already made fresh by the
script); the dialect and the secret come from the environment
(``CROUPIER_DIALECT``, ``CROUPIER_SECRET``), never from the command line.
``session CALL`` reads an answer to ``authenticate`` (the body, then a line
``  [HTTP nnn]``) and prints the session it gave (the launch token itself where
the answer carries none).
"""

from __future__ import annotations

import os
import shlex
import sys
import time

import orjson

from ..protocol.calls import Ok, WalletCall, call_from_json
from ..protocol.dialects import Dialect, DialectError, HttpRequest, HttpResponse, get
from .target import STALE_S
from .variants import encode_variant
from .wire import without_signature


def request(dialect: Dialect, wrong: Dialect, call: WalletCall, mode: str = "ok", variant: str = "",
            now: float | None = None) -> HttpRequest:
    """The request of ``call`` signed as ``mode`` says (ok, wrong-secret, stale, future, unsigned), or its
    ``variant`` (a malformed request, signed correctly)."""
    now = time.time() if now is None else now
    if variant:
        return encode_variant(dialect, call, now, variant)
    if mode == "wrong-secret":
        return wrong.encode_call(call, now)
    if mode in ("stale", "future"):
        return dialect.encode_call(call, now - STALE_S if mode == "stale" else now + STALE_S)
    req = dialect.encode_call(call, now)
    if mode == "unsigned":
        bare = without_signature(req, wrong.encode_call(call, now))
        if bare is None:
            raise DialectError(f"the {dialect.name} dialect cannot send a request without its signature")
        return bare
    return req


def shell(req: HttpRequest) -> str:
    """Bash assignments of the request: METHOD, RPATH, HDR (curl -H arguments), BODY."""
    headers = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in req.headers.items())
    return (f"METHOD={shlex.quote(req.method)}; RPATH={shlex.quote(req.path)}; HDR=({headers}); "
            f"BODY={shlex.quote(req.body.decode('utf-8', 'replace'))}")


def _dialects() -> tuple[Dialect, Dialect]:
    name = os.environ.get("CROUPIER_DIALECT", "canonical")
    secret = os.environ.get("CROUPIER_SECRET")
    if not secret:  # never sign with a secret nobody chose: the wallet would refuse it, and say why not
        raise ValueError("CROUPIER_SECRET is not set: export the wallet's shared secret (the check's curl "
                         "scripts set it to the secret the check was given)")
    return get(name, secret), get(name, secret + "-not-the-secret")


def session_of(dialect: Dialect, call: WalletCall, answer: str) -> str:
    """The session an answer to ``authenticate`` gave ("" when it gave none)."""
    body, _, status = answer.rpartition("  [HTTP ")
    code = int(status.strip().rstrip("]") or 0) if status.strip().rstrip("]").isdigit() else 0
    out = dialect.decode_response(call, HttpResponse(code, {}, body.encode()))
    if not isinstance(out, Ok):
        return ""
    if "session_token" in out.missing:
        return call.token or ""
    return out.session_token or ""


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("encode", "session"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        dialect, wrong = _dialects()
        call = call_from_json(orjson.loads(argv[1]))
        if argv[0] == "session":
            print(session_of(dialect, call, sys.stdin.read()))
            return 0
        mode = argv[2] if len(argv) > 2 and argv[2] else "ok"
        variant = argv[3] if len(argv) > 3 else ""
        print(shell(request(dialect, wrong, call, mode, variant)))
    except (DialectError, ValueError, KeyError, TypeError) as exc:
        print(f"croupier request: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
