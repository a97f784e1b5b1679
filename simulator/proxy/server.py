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
from ..report import html, junit
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
    report_junit: Path | None = None
    report_html: Path | None = None
    har: Path | None = None
    """On stop, the recording (``config.record``) as an HTTP Archive here."""
    log_level: str = "info"


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


def reconciliation_html(report: dict[str, Any]) -> str:
    """The per-player reconciliation as an HTML section (the run's page has no place for it)."""
    rows = []
    for p in report["players"]:
        end = p["balance_at_end"]
        rows.append([html.esc(p["player_id"]), html.esc(p["currency"] or ""),
                     *(html.esc(f"{side['charged']} / {side['refunded']} / {side['paid']} → {side['net']}")
                       for side in (p["provider"], p["wallet"])),
                     "yes" if p["sides_agree"] else "<b>no</b>", str(len(p["answers_not_read"])),
                     html.esc(str(p["first_balance"])), html.esc(str(p["last_balance"])),
                     html.esc(str(end.get("balance", end.get("error")) if end else "not read")),
                     {True: "yes", False: "<b>no</b>", None: "cannot tell"}[p["balance_agrees"]]])
    return ("<h2>Reconciliation (per player)</h2><p>What the provider was told (the answers it read) and what the "
            "wallet answered (every answer, read or not): charged / refunded / paid → net, in minor units; then "
            "the balances the wallet reported first and last, and its balance read through the protocol at the "
            "end beside the one the ledger expects.</p>"
            + html.table(["player", "currency", "provider saw", "wallet answered", "nets agree", "answers not read",
                          "first balance", "last balance", "balance at end", "as expected"], rows))


def write_reports(report: dict[str, Any], json_path: Path | None, junit_path: Path | None,
                  html_path: Path | None) -> None:
    """The report as JSON, JUnit XML and HTML, as ``croupier run`` writes its own."""
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if junit_path is not None:
        junit_path.write_bytes(junit.junit_xml(report, "croupier-proxy"))
    if html_path is not None:
        page = html.render(report)
        at = page.rfind("</body>")
        page = page[:at] + reconciliation_html(report) + page[at:] if at >= 0 else page + reconciliation_html(report)
        html_path.write_text(page, encoding="utf-8")


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
    configure_logs(opts.log_level, False, None)
    report = asyncio.run(_serve(opts))
    write_reports(report, opts.report_json, opts.report_junit, opts.report_html)
    if opts.har is not None and opts.config.record is not None:
        from .. import __version__
        from .recording import to_har

        with opts.config.record.open("rb") as lines:
            opts.har.write_bytes(orjson.dumps(to_har(lines, opts.config.upstream, __version__)))
    for line in summary_lines(report):
        print(line, flush=True)
    return 1 if report["verdict"] == "fail" else 0
