"""The proxy as aiohttp applications: the traffic port (provider → proxy → wallet) and the control port.

Every request is forwarded with the provider's own bytes (signatures stay valid), decoded with the dialect
both ways, and fed to :class:`~simulator.proxy.watch.Watch` — the ledger ``croupier run`` uses.  A fault
decided by :class:`~simulator.proxy.faults.ProxyFaults` bends the delivery; the ledger still sees every
answer the wallet gave, including the ones the provider never read.  The control port serves the fault
plan (``GET``/``PUT``/``DELETE /faults``), ``/metrics`` (Prometheus), ``/report`` and ``/healthz``.

The proxy never answers 500 for its own sake: an unreachable wallet is 502, a wallet that does not answer
in time 504 (both *outcome unknown* to the provider, as they are), a body over the proxy's limit 413.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, quote_plus

import aiohttp
import orjson
from aiohttp import web

from ..metrics.exposition import handler as metrics_handler
from ..metrics.families import HELD, IN_DOUBT, PLAYERS, Metrics
from ..protocol import dialects
from ..protocol.calls import Op, Outcome, Rejected, Unknown, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.dialects import Dialect, HttpRequest, HttpResponse
from ..wallet.http import read_bounded
from . import recording
from .faults import FaultConfigError, ProxyFault, ProxyFaults, parse
from .reconcile import report_json
from .watch import Watch

log = logging.getLogger("croupier.proxy")

MAX_BODY = 1024 * 1024
"""The proxy buffers a request to decode it; beyond this it answers 413 (the protocol's own limit is 64 KiB,
which the wallet enforces: a bigger body is forwarded for the wallet to refuse)."""

HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
                        "upgrade", "proxy-connection", "proxy-authorization"})
"""Headers of one connection, not of the message (RFC 9110 §7.6.1): each hop sets its own."""
DECODED = HOP_BY_HOP | {"content-encoding"}
"""An answer's headers once the client has decompressed its body (forwarded as the plain bytes)."""

PROXY: web.AppKey[Proxy] = web.AppKey("proxy")


@dataclass(slots=True)
class ProxyConfig:
    upstream: str
    """The wallet's protocol base URL (what the provider would call without the proxy)."""
    secret: str
    dialect: str = "canonical"
    faults: ProxyFaults = field(default_factory=ProxyFaults)
    record: Path | None = None
    """Append every exchange to this JSON-lines file (:mod:`simulator.proxy.recording`)."""
    timeout_s: float = 30.0
    """How long the proxy waits for the wallet (then 504: outcome unknown)."""
    upstream_ssl: ssl.SSLContext | None = None
    control_token: str | None = None
    """Bearer token that changing the fault plan needs (None: anyone who reaches the control port, on loopback)."""
    shared_players: bool = False
    """The players also play other providers' games at the same time (:class:`~simulator.proxy.watch.Watch`)."""


def _forwardable(headers: Any, drop: frozenset[str] = HOP_BY_HOP) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in drop}


def _error(status: int, message: str, code: str = "INTERNAL") -> web.Response:
    return web.json_response({"status": "error", "code": code, "message": message}, status=status)


class Proxy:
    """One proxy's state: the dialect, the watch, the fault plan, the metrics and the recording."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.upstream = config.upstream.rstrip("/")
        self.dialect: Dialect = dialects.get(config.dialect, config.secret)
        self.watch = Watch(self.dialect, config.shared_players)
        self.metrics = Metrics("proxy")
        self.watch.ledger.on_flag = self.metrics.anomaly
        self.faults = config.faults
        self.rng = random.Random(config.faults.seed)
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self.undecoded = 0
        self.started = time.time()
        self.http: aiohttp.ClientSession | None = None
        self._held: dict[str, list[asyncio.Event]] = {}
        self._seq = itertools.count(1)
        self._record: IO[bytes] | None = None
        self._tasks: set[asyncio.Future[web.StreamResponse]] = set()
        self._warned_signature = False
        self.secrets = tuple(sorted({config.secret, quote(config.secret, safe=""), quote_plus(config.secret)}, key=len,
                                    reverse=True)) if len(config.secret) >= 6 else ()
        """The shared secret as it may appear on the wire, redacted from the recording (a shorter one would
        garble it: said at start-up instead)."""
        self.metrics.gauge_function(IN_DOUBT, lambda: len(self.watch.ledger.in_doubt()))
        self.metrics.gauge_function(HELD, lambda: sum(len(w) for w in self._held.values()))
        self.metrics.gauge_function(PLAYERS, lambda: len(self.watch.tallies))

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, ssl=self.config.upstream_ssl or True),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s), auto_decompress=True)
        if self.config.record is not None:
            self._record = self.config.record.open("ab")
            if not self.secrets:
                log.warning("the secret is too short to redact from %s without garbling it: keep the recording "
                            "private", self.config.record)

    async def close(self) -> None:
        if self._tasks:  # calls still held or on their way: let them land (and be judged and recorded)
            await asyncio.wait(list(self._tasks), timeout=self.faults.hold_ms / 1000 + self.config.timeout_s)
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self._record is not None:
            self._record.close()
            self._record = None

    # -- decoding --------------------------------------------------------------------------
    def decode(self, req: HttpRequest) -> list[WalletCall]:
        """The calls the request carries ([] when the dialect cannot read it: forwarded, not judged)."""
        try:
            got = recording.decode_calls(self.dialect, req, time.time())
        except Exception:
            log.debug("undecodable request to %s", req.path, exc_info=True)
            return []
        if isinstance(got, Rejected):
            if got.code is ErrorCode.INVALID_SIGNATURE and not self._warned_signature:
                self._warned_signature = True  # said once: every request would say it
                log.warning("cannot check a request's signature (%s): forwarded, not judged; if every request says "
                            "so, check --secret and --dialect", got.message)
            return []
        return got

    def outcomes(self, calls: Sequence[WalletCall], resp: HttpResponse | str) -> list[Outcome]:
        if isinstance(resp, str):
            return [Unknown(resp) for _ in calls]
        return recording.decode_outcomes(self.dialect, calls, resp)

    # -- delivery --------------------------------------------------------------------------
    async def send(self, req: HttpRequest) -> HttpResponse | str:
        """The wallet's answer, or why there is none (the outcome is then unknown)."""
        assert self.http is not None, "the proxy has not started"
        url = f"{self.upstream}/{req.path}"
        try:
            async with self.http.request(req.method, url, data=req.body, headers=_forwardable(req.headers),
                                         allow_redirects=False) as resp:
                return HttpResponse(resp.status, _forwardable(resp.headers, DECODED), await resp.read())
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"

    async def forward(self, request: web.Request | None, req: HttpRequest, calls: Sequence[WalletCall],
                      fault: ProxyFault | None, copy: int = 0, read: bool = True) -> HttpResponse | str:
        """One copy of the request to the wallet, judged; ``read``: the provider is meant to read its answer
        (it does only if its connection is still open when the answer comes)."""
        tokens = self.watch.begin(calls) if calls else []
        seq, at = next(self._seq), time.time()
        started = time.perf_counter()
        resp = await self.send(req)
        latency_s = time.perf_counter() - started
        self.forwarded += 1
        outcomes = self.outcomes(calls, resp)
        visible = read and fault is not ProxyFault.LOST_RESPONSE and request is not None \
            and request.transport is not None and not request.transport.is_closing()
        status = None if isinstance(resp, str) else resp.status
        body = None if isinstance(resp, str) else resp.body
        if calls:
            self.watch.end(tokens, calls, outcomes, visible=visible, latency_ms=latency_s * 1000, status=status,
                           response=body)
            for call, outcome in zip(calls, outcomes, strict=True):
                self._count(call.op, outcome, latency_s)
            self._release(calls[0], copy)
        else:
            self.undecoded += 1
            self.metrics.call("undecoded", self.dialect.name, "undecoded", latency_s)
        self._write(seq, at, req, resp, latency_s, fault, copy, True, visible, calls, outcomes)
        return resp

    def _count(self, op: Op, outcome: Outcome, latency_s: float) -> None:
        self.metrics.answer(str(op), self.dialect.name, outcome, latency_s)

    def _write(self, seq: int, at: float, req: HttpRequest, resp: HttpResponse | str | None, latency_s: float | None,
               fault: ProxyFault | None, copy: int, forwarded: bool, visible: bool, calls: Sequence[WalletCall],
               outcomes: Sequence[Outcome]) -> None:
        if self._record is None:
            return
        answered = isinstance(resp, HttpResponse)
        try:
            self._record.write(self._line(seq, at, req, resp, latency_s, fault, copy, forwarded, visible and answered,
                                          calls, outcomes, self.secrets))
            self._record.flush()
        except (OSError, TypeError, ValueError):  # the traffic goes on; the recording says nothing false
            log.exception("cannot record exchange %d", seq)

    @staticmethod
    def _line(seq: int, at: float, req: HttpRequest, resp: HttpResponse | str | None, latency_s: float | None,
              fault: ProxyFault | None, copy: int, forwarded: bool, visible: bool, calls: Sequence[WalletCall],
              outcomes: Sequence[Outcome], secrets: Sequence[str]) -> bytes:
        return recording.line(
            seq=seq, at=at, method=req.method, path=req.path, request_headers=req.headers, request_body=req.body,
            status=resp.status if isinstance(resp, HttpResponse) else None,
            response_headers=resp.headers if isinstance(resp, HttpResponse) else None,
            response_body=resp.body if isinstance(resp, HttpResponse) else None,
            latency_ms=None if latency_s is None else latency_s * 1000, fault=None if fault is None else str(fault),
            copy=copy, forwarded=forwarded, visible=visible, calls=calls, outcomes=outcomes, secrets=secrets)

    # -- reorder -----------------------------------------------------------------------------
    async def hold(self, player_id: str) -> None:
        """Wait until a later call of ``player_id`` has been forwarded (at most ``hold_ms``)."""
        event = asyncio.Event()
        waiting = self._held.setdefault(player_id, [])
        waiting.append(event)
        try:
            await asyncio.wait_for(event.wait(), self.faults.hold_ms / 1000)
        except TimeoutError:
            pass
        finally:
            waiting.remove(event)

    def _release(self, call: WalletCall, copy: int) -> None:
        if call.player_id is not None and copy == 0:
            for event in self._held.get(call.player_id, ()):
                event.set()

    # -- the traffic port ----------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One provider request; a failure of the proxy's own is a 502 (outcome unknown), never a 500."""
        try:
            return await self._handle(request)
        except Exception as exc:
            log.exception("croupier proxy failed on %s", request.path)
            return _error(502, f"croupier proxy failed: {type(exc).__name__} (outcome unknown)")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        if request.query_string:
            path = f"{path}?{request.rel_url.raw_query_string}"  # as sent: a signature may cover it
        body = await read_bounded(request, MAX_BODY)
        if body is None:
            return _error(413, f"body larger than the proxy's limit of {MAX_BODY} bytes: not forwarded",
                          "BAD_REQUEST")
        req = HttpRequest(request.method, path, dict(request.headers), body)
        calls = self.decode(req)
        self.watch.saw(calls)
        first = calls[0] if calls else None
        fault = self.faults.decide(calls, self.rng) if self.faults.active else None
        if fault is not None:
            op = str(first.op) if first is not None else "undecoded"
            self.injected[str(fault)] += 1
            self.metrics.fault(str(fault), op)
            log.info("fault %s on %s %s", fault, op, first.tx_id if first is not None and first.tx_id else "")
        if fault is ProxyFault.SERVER_ERROR:
            outcome = Unknown("injected by the proxy", self.faults.status)
            self._write(next(self._seq), time.time(), req, None, None, fault, 0, False, False, calls,
                        [outcome for _ in calls])
            return _error(self.faults.status, "injected by croupier proxy: not forwarded to the wallet")
        # Shielded: a provider that stops waiting (its deadline, a reset) must not stop a held or delayed call
        # from reaching the wallet, nor the ledger from seeing the answer.
        task = asyncio.ensure_future(self._deliver(request, req, calls, fault))
        self._tasks.add(task)
        task.add_done_callback(self._delivered)
        return await asyncio.shield(task)

    def _delivered(self, task: asyncio.Future[web.StreamResponse]) -> None:
        """A delivery ended; one whose provider had hung up has nobody to tell of a failure but the log."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery failed", exc_info=task.exception())

    async def _deliver(self, request: web.Request, req: HttpRequest, calls: list[WalletCall],
                       fault: ProxyFault | None) -> web.StreamResponse:
        first = calls[0] if calls else None
        if fault is ProxyFault.DELAY:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        elif fault is ProxyFault.REORDER and first is not None and first.player_id is not None:
            await self.hold(first.player_id)
        if fault is ProxyFault.CONCURRENT_DUPLICATE:
            resp, _ = await asyncio.gather(self.forward(request, req, calls, fault),
                                           self.forward(request, req, calls, fault, copy=1, read=False))
        else:
            resp = await self.forward(request, req, calls, fault)
            if fault is ProxyFault.DUPLICATE:
                await self.forward(request, req, calls, fault, copy=1, read=False)
        if fault is ProxyFault.LOST_RESPONSE:
            if request.transport is not None:
                request.transport.abort()  # the wallet committed; the provider sees its connection reset
            return web.Response(status=502)  # written nowhere: the connection is gone
        if isinstance(resp, str):
            if resp == "timeout":
                return _error(504, f"the wallet did not answer within {self.config.timeout_s} s (outcome unknown)")
            return _error(502, f"the wallet could not be reached: {resp} (outcome unknown)")
        return web.Response(status=resp.status, body=resp.body, headers=resp.headers)

    # -- the control port -------------------------------------------------------------------------
    async def get_faults(self, _: web.Request) -> web.Response:
        return web.json_response({"faults": self.faults.to_json(), "injected": dict(self.injected)})

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        token = self.config.control_token
        if token is None or hmac.compare_digest(request.headers.get("Authorization", "").encode(),
                                                f"Bearer {token}".encode()):
            return None
        return _error(401, "changing the fault plan needs Authorization: Bearer <the proxy's --control-token>",
                      "UNAUTHORIZED")

    async def put_faults(self, request: web.Request) -> web.Response:
        """Replace (PUT) or change (POST, PATCH) the fault plan from a JSON object shaped as ``[faults]``."""
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        raw = await read_bounded(request, 64 * 1024)
        try:
            data = orjson.loads(raw or b"")
            plan = parse(data, "faults", base=None if request.method == "PUT" else self.faults)
        except orjson.JSONDecodeError as exc:
            return _error(400, f"the body must be a JSON object shaped as [faults]: {exc}", "BAD_REQUEST")
        except FaultConfigError as exc:
            return _error(400, str(exc), "BAD_REQUEST")
        if plan.seed is not None and plan.seed != self.faults.seed:
            self.rng = random.Random(plan.seed)
        self.faults = plan
        log.info("fault plan now %s", plan.to_json())
        return web.json_response({"faults": plan.to_json(), "injected": dict(self.injected)})

    async def delete_faults(self, request: web.Request) -> web.Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        self.faults = ProxyFaults(delay_ms=self.faults.delay_ms, hold_ms=self.faults.hold_ms,
                                  status=self.faults.status, seed=self.faults.seed)
        return web.json_response({"faults": self.faults.to_json(), "injected": dict(self.injected)})

    async def get_report(self, _: web.Request) -> web.Response:
        return web.json_response(self.report(), dumps=lambda d: orjson.dumps(d).decode())

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "upstream": self.upstream, "dialect": self.dialect.name})

    def report(self, balances: dict[str, Outcome] | None = None) -> dict[str, Any]:
        return report_json(self, balances)


def make_apps(config: ProxyConfig) -> tuple[web.Application, web.Application, Proxy]:
    """The traffic application, the control application and the proxy they share."""
    proxy = Proxy(config)
    traffic = web.Application(client_max_size=MAX_BODY + 1)
    traffic[PROXY] = proxy
    traffic.router.add_route("*", "/{tail:.*}", proxy.handle)

    async def start(_: web.Application) -> None:
        await proxy.start()

    async def stop(_: web.Application) -> None:
        await proxy.close()

    traffic.on_startup.append(start)
    traffic.on_cleanup.append(stop)
    control = web.Application()
    control[PROXY] = proxy
    control.router.add_get("/faults", proxy.get_faults)
    control.router.add_put("/faults", proxy.put_faults)
    control.router.add_post("/faults", proxy.put_faults)
    control.router.add_patch("/faults", proxy.put_faults)
    control.router.add_delete("/faults", proxy.delete_faults)
    control.router.add_get("/metrics", metrics_handler(proxy.metrics))
    control.router.add_get("/report", proxy.get_report)
    control.router.add_get("/healthz", proxy.healthz)
    return traffic, control, proxy
