"""Serving the proxy: the traffic port and the control port in one event loop, until SIGTERM or SIGINT.

On stop the proxy reads each player's balance through the protocol (the last session the provider
used for them), writes its report (JSON, JUnit, HTML as ``--report-*`` asks) and prints a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ..protocol.calls import Op, Outcome, Unknown, WalletCall
from ..protocol.dialects import HttpResponse
from ..wallet.server import configure_logs
from .service import Proxy, ProxyConfig, make_apps

log = logging.getLogger("croupier.proxy")


@dataclass(frozen=True, slots=True)
class ProxyServeOptions:
    config: ProxyConfig
    host: str = "127.0.0.1"
    port: int = 9000
    control_host: str = "127.0.0.1"
    control_port: int = 9001
    ssl_context: ssl.SSLContext | None = None
    report_json: Path | None = None


async def read_balances(proxy: Proxy) -> dict[str, Outcome]:
    """Each player's balance read through the protocol, with the last session token the provider used."""
    out: dict[str, Outcome] = {}
    for pid, tally in sorted(proxy.watch.tallies.items()):
        if not tally.session_token:
            continue
        call = WalletCall(Op.BALANCE, player_id=pid, session_token=tally.session_token, currency_hint=tally.currency)
        try:
            req = proxy.dialect.encode_call(call, time.time())
        except ValueError as exc:  # a DialectError: this wire reads no balance that way
            out[pid] = Unknown(f"cannot encode a balance call: {exc}")
            continue
        resp = await proxy.send(req)
        if isinstance(resp, HttpResponse):
            out[pid] = proxy.outcomes([call], resp)[0]
        else:
            out[pid] = Unknown(resp)
    return out


async def final_report(proxy: Proxy) -> dict[str, Any]:
    return proxy.report(await read_balances(proxy))


def summary_lines(report: dict[str, Any]) -> list[str]:
    calls = report["calls"]
    lines = [f"croupier proxy: {calls['forwarded']} requests forwarded ({calls['money']} money calls, "
             f"{calls['undecoded']} not decoded); faults injected: "
             + (", ".join(f"{k} {v}" for k, v in sorted(report["faults_injected"].items())) or "none"),
             f"verdict: {report['verdict'].upper()} — {report['anomaly_count']} anomalies, {report['notes']} notes"]
    for f in report["findings"][:20]:
        lines.append(f"  [{f['severity']}] {f['kind']} ({f['player_id']}): {f['message']} — {f['rule']}")
    for p in report["players"]:
        agree = "sides agree" if p["sides_agree"] else "SIDES DIFFER"
        end = p["balance_at_end"]
        read = "not read yet" if end is None else end.get("balance", f"unread ({end.get('error')})")
        unread = len(p["answers_not_read"])
        lines.append(f"  {p['player_id']}: provider net {p['provider']['net']}, wallet net {p['wallet']['net']} "
                     f"({agree}); {unread} acknowledged transactions the provider never read; balance at end {read}")
    return lines


async def _serve(opts: ProxyServeOptions) -> dict[str, Any]:
    traffic, control, proxy = make_apps(opts.config)
    runners = [web.AppRunner(traffic, access_log=None), web.AppRunner(control, access_log=None)]
    for r in runners:
        await r.setup()
    await web.TCPSite(runners[0], opts.host, opts.port, ssl_context=opts.ssl_context).start()
    await web.TCPSite(runners[1], opts.control_host, opts.control_port).start()
    log.info("croupier proxy on %s://%s:%d → %s (dialect %s); control on http://%s:%d (/faults, /metrics, /report)",
             "https" if opts.ssl_context else "http", opts.host, opts.port, opts.config.upstream,
             proxy.dialect.name, opts.control_host, opts.control_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    report = await final_report(proxy)
    for r in reversed(runners):
        await r.cleanup()
    return report


def serve(opts: ProxyServeOptions) -> int:
    """Run until stopped; then the report (written to ``report_json`` if given) and exit 1 on anomalies."""
    configure_logs("info", False, None)
    report = asyncio.run(_serve(opts))
    if opts.report_json is not None:
        opts.report_json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    for line in summary_lines(report):
        print(line, flush=True)
    return 1 if report["verdict"] == "fail" else 0
