"""The reference wallet as an aiohttp application: protocol, admin API, health, OpenAPI.

The handlers only move bytes: the dialect decodes and encodes, the store
decides and commits.  A handler answers after the store returns, so every
"ok" on the wire is already durable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..metrics.exposition import handler as metrics_handler
from ..metrics.families import Metrics
from ..protocol import dialects
from ..protocol.calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.dialects import Dialect, HttpRequest
from ..protocol.dialects.canonical import MAX_BODY, CanonicalDialect
from . import admin
from .http import CONFIG, DIALECT, LOG_INFO, STORE, WalletConfig, error_response, json_parser_errors, read_bounded
from .store import Store, StoreUnavailable

__all__ = ["WalletConfig", "make_app"]

log = logging.getLogger("croupier.wallet")


def protocol_handler(op: Op | None, other: Dialect | None = None,
                     metrics: Metrics | None = None) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The canonical handler of ``op``, or (``op`` None) the catch-all of another dialect's prefix.

    A real-world dialect names its operations its own way (``transaction/bet``,
    ``bet.html``, ``debit?authToken=…``): the path below the prefix, query included,
    goes to the dialect, which says what call it is.  With ``metrics`` (``--metrics``) each call
    is counted with its handling time; without, what it costs is a test of ``None``."""
    # The ``op`` label of a request its dialect could not read (a canonical route names its operation).
    unread = str(op) if op is not None else "undecoded"

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter() if metrics is not None else 0.0
        app = request.app
        config = app[CONFIG]
        dialect = other or app[DIALECT]
        path = str(op) if op is not None else request.match_info["tail"]
        if op is None and request.query_string:
            path = f"{path}?{request.rel_url.raw_query_string}"  # as sent: a signature may cover it
        info: dict[str, object] = {"op": str(op) if op is not None else f"{dialect.name}:{path.partition('?')[0][:64]}"}
        request[LOG_INFO] = info
        body = await read_bounded(request)
        now = config.clock()
        if body is None:
            outcome: object = Rejected(ErrorCode.BAD_REQUEST, f"body larger than {MAX_BODY} bytes")
            call = None
        else:
            req = HttpRequest(request.method, path, dict(request.headers), body)
            batching = dialects.batching(dialect)
            decoded = batching.decode_batch(req, now) if batching is not None else dialect.decode_request(req, now)
            if isinstance(decoded, list):
                assert batching is not None
                return await _batch(app, batching, decoded, now, info, metrics, started)
            if isinstance(decoded, Rejected):
                outcome, call = decoded, None
            else:
                call = decoded
                info["op"] = str(call.op)
                info["tx_id"] = call.tx_id
                info["player_id"] = call.player_id
                try:
                    outcome = await app[STORE].execute(call, now)
                except StoreUnavailable as exc:
                    log.warning("store unavailable on %s: %s", op, exc)
                    info["code"] = "UNAVAILABLE"
                    if metrics is not None:
                        metrics.call(str(call.op), dialect.name, "unknown", time.perf_counter() - started, "unknown")
                    return error_response(ErrorCode.UNAVAILABLE, "storage unavailable: outcome unknown, retry")
                except Exception:
                    log.exception("store failed on %s", op)
                    outcome = Unknown("store failure")
        if isinstance(outcome, Rejected):
            info["code"] = str(outcome.code)
        elif getattr(outcome, "replay", False):
            info["replay"] = True
        resp = dialect.encode_response(call, outcome)  # type: ignore[arg-type]
        if metrics is not None:
            metrics.answer(str(call.op) if call is not None else unread, dialect.name, outcome,  # type: ignore[arg-type]
                           time.perf_counter() - started)
        return web.Response(status=resp.status, body=resp.body, headers=resp.headers)

    return handle


async def _batch(app: web.Application, dialect: dialects.BatchDialect, calls: list[WalletCall], now: float,
                 info: dict[str, object], metrics: Metrics | None, started: float) -> web.StreamResponse:
    """Several calls in one request: applied in order, each under the normal rules (its own
    transaction, idempotent by its own tx_id); the first that is not a success stops the rest.
    Counted as the calls it applied, each with the request's handling time."""
    info["op"] = "batch:" + ",".join(str(c.op) for c in calls)
    info["tx_id"] = ",".join(c.tx_id or "" for c in calls)
    info["player_id"] = calls[0].player_id
    outcomes: list[Outcome] = []
    for call in calls:
        try:
            outcome: Outcome = await app[STORE].execute(call, now)
        except StoreUnavailable as exc:
            log.warning("store unavailable in a batch: %s", exc)
            info["code"] = "UNAVAILABLE"
            outcomes.append(Unknown("store unavailable"))
            _count_batch(metrics, dialect.name, calls, outcomes, started)
            return error_response(ErrorCode.UNAVAILABLE, "storage unavailable: outcome unknown, retry")
        except Exception:
            log.exception("store failed in a batch")
            outcome = Unknown("store failure")
        outcomes.append(outcome)
        if not isinstance(outcome, Ok):
            if isinstance(outcome, Rejected):
                info["code"] = str(outcome.code)
            break
    if all(getattr(o, "replay", False) for o in outcomes):
        info["replay"] = True
    resp = dialect.encode_batch_response(calls, outcomes)
    _count_batch(metrics, dialect.name, calls, outcomes, started)
    return web.Response(status=resp.status, body=resp.body, headers=resp.headers)


def _count_batch(metrics: Metrics | None, dialect: str, calls: list[WalletCall], outcomes: list[Outcome],
                 started: float) -> None:
    if metrics is not None:
        latency_s = time.perf_counter() - started
        for call, outcome in zip(calls, outcomes, strict=False):  # the calls after a failure were not applied
            metrics.answer(str(call.op), dialect, outcome, latency_s)


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error the framework raises becomes a JSON error with a code; nothing leaks as HTML."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return error_response(ErrorCode.NOT_FOUND, f"no route {request.method} {request.path[:200]}")
    except web.HTTPMethodNotAllowed as exc:
        resp = error_response(ErrorCode.BAD_REQUEST, f"method {request.method} not allowed")
        resp.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        resp.set_status(405)
        return resp
    except web.HTTPRequestEntityTooLarge:
        return error_response(ErrorCode.BAD_REQUEST, "body too large")
    except StoreUnavailable as exc:
        log.warning("store unavailable on %s %s: %s", request.method, request.path, exc)
        return error_response(ErrorCode.UNAVAILABLE, "storage unavailable, retry")
    except web.HTTPException as exc:
        if exc.status >= 400:
            code = ErrorCode.UNAVAILABLE if exc.status >= 500 else ErrorCode.BAD_REQUEST
            resp = error_response(code, exc.reason)
            resp.set_status(exc.status)
            return resp
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ErrorCode.INTERNAL, "internal error: outcome unknown")


async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    ready = await store.ready()
    return web.json_response(
        {"status": "ok" if ready else "unavailable", "store": store.name}, status=200 if ready else 503
    )


async def openapi_json(request: web.Request) -> web.Response:
    from . import openapi

    return web.json_response(openapi.document())


def make_app(store: Store, config: WalletConfig, dialect: Dialect | None = None,
             metrics: Metrics | None = None) -> web.Application:
    """The wallet application; the store is opened on startup and closed on cleanup.  ``metrics``: count the
    protocol's calls and serve them at ``GET /metrics`` (docs/metrics.md)."""
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY)
    app[STORE] = store
    app[CONFIG] = config
    app[DIALECT] = dialect or CanonicalDialect(config.secret)
    for op in Op:
        app.router.add_post(f"/wallet/{op}", protocol_handler(op, metrics=metrics))
    # Every built-in real-world dialect on its own prefix, over the same store.
    for name in dialects.names():
        if name != "canonical":
            app.router.add_route("*", f"/wallet/{name}/{{tail:.+}}", protocol_handler(None, dialects.get(name, config.secret), metrics))
    admin.add_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi_json)
    if metrics is not None:
        app.router.add_get("/metrics", metrics_handler(metrics))

    async def open_store(_: web.Application) -> None:
        await store.open()

    async def close_store(_: web.Application) -> None:
        await store.close()

    app.on_startup.append(open_store)
    app.on_cleanup.append(close_store)
    return json_parser_errors(app)
