"""``croupier proxy`` (serve, or ``report`` of a running one) and ``croupier replay-traffic``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import orjson

from . import flags

RECORD_NOTE = "one JSON line per exchange, both ways' bytes and what the dialect decoded"


def add_proxy_parsers(sub: Any) -> None:
    p = sub.add_parser("proxy", help="stand between a real provider and a real wallet: judge their traffic live, "
                                     "inject faults, record it, expose metrics",
                       description="Forward a provider's calls to a wallet unchanged, decode both directions with "
                                   "the dialect and judge every answer with the ledger croupier run uses. Faults on "
                                   "purpose from --faults or the control API (PUT /faults); Prometheus metrics at "
                                   "/metrics and the live report at /report on the control address. On stop "
                                   "(Ctrl-C, SIGTERM) each player's balance is read through the protocol and the "
                                   "reconciliation printed; exit 1 if the wallet broke a rule. `croupier proxy "
                                   "report` prints a running proxy's report.")
    p.add_argument("action", nargs="?", choices=("serve", "report"), default="serve",
                   help="serve the proxy, or print the report of one running at --control")
    p.add_argument("--listen", type=flags.address, default="127.0.0.1:9000", metavar="HOST:PORT",
                   help="where the provider calls the proxy (give the provider http://HOST:PORT as its wallet URL)")
    p.add_argument("--upstream", help="the wallet's protocol base URL, as the provider would call it "
                                      "(required to serve)")
    p.add_argument("--control", type=flags.address, default="127.0.0.1:9001", metavar="HOST:PORT",
                   help="the control API: /faults, /metrics, /report, /healthz")
    p.add_argument("--control-token", help="bearer token that changing the fault plan needs; the control API beyond "
                                           "loopback needs one (default: env CROUPIER_PROXY_TOKEN, else none)")
    p.add_argument("--dialect", default="canonical",
                   help="the wallet's wire dialect: a built-in name (`croupier dialect list`) or a .toml file")
    p.add_argument("--secret", help="the HMAC secret provider and wallet share, to decode signed requests and read "
                                    "balances at the end (default: env CROUPIER_SECRET, else the development secret)")
    p.add_argument("--faults", metavar="FILE", help="a TOML file whose [faults] table sets rates (delay, "
                                                    "lost_response, duplicate, concurrent_duplicate, reorder, "
                                                    "server_error), delay_ms, hold_ms, status, seed and [[faults.rules]] "
                                                    "(default: no faults)")
    p.add_argument("--record", metavar="FILE", help=f"append the traffic to FILE: {RECORD_NOTE} (default: none)")
    p.add_argument("--har", metavar="FILE", help="on stop, write the --record file as an HTTP Archive (HAR 1.2) to "
                                                 "FILE, for browsers' and proxies' tools (default: none)")
    p.add_argument("--timeout", type=flags.positive_float, default=30.0,
                   help="seconds the proxy waits for the wallet before answering 504 (outcome unknown)")
    p.add_argument("--shared-players", action="store_true",
                   help="the players also play other providers' games while they play through the proxy: take each "
                        "call's balance afresh and judge only what needs no balance (default: their money moves "
                        "outside the traffic only between rounds, so a balance within a round is judged exactly)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="the least severe of the proxy's log lines to print (info: start-up and each fault injected)")
    p.add_argument("--report-json", metavar="FILE", help="write the final report as JSON to FILE (default: none)")
    p.add_argument("--report-junit", metavar="FILE", help="write the final report as JUnit XML to FILE, a test case "
                                                          "per kind of finding (default: none)")
    p.add_argument("--report-html", metavar="FILE", help="write the final report as an HTML page to FILE, with the "
                                                         "per-player reconciliation (default: none)")
    flags.client_tls_args(p)
    flags.server_tls_args(p, "the proxy's traffic port")

    r = sub.add_parser("replay-traffic", help="re-send a proxy recording against another wallet and compare the "
                                              "answers call by call",
                       description="Re-send the calls of a `croupier proxy --record` file (or a HAR: `croupier proxy "
                                   "--har`, a browser's devtools, mitmproxy) to another wallet, ids rewritten with a "
                                   "run prefix, players provisioned through the reference wallet's admin API with the "
                                   "opening balances the recording implies, or replayed on the test accounts of "
                                   "--players FILE (a wallet with no admin API: balances compared shifted by what each "
                                   "account holds); compare each answer with the recorded one and judge the new "
                                   "answers with the ledger. Exit 1 when an answer differs or a rule is broken, 2 when "
                                   "the replay cannot start (an unreadable file, too few accounts).")
    r.add_argument("recording", help="the JSON-lines file `croupier proxy --record` wrote, or a HAR file (by its .har "
                                     "extension or its content); a HAR entry that is no wallet call is skipped")
    r.add_argument("--wallet", required=True, help="the other wallet's protocol base URL (required)")
    flags.wire_and_credentials(r)
    r.add_argument("--players", metavar="FILE",
                   help="CSV of test accounts the wallet already has (player_id,token,currency[,session_token,"
                        "session_ref], as `croupier run --players` reads): no admin API is called; each recorded "
                        "player gets an account of its currency of its own, in order (default: the admin API)")
    r.add_argument("--prefix", help="put before every transaction and round id, and every player id the admin API "
                                    "provisions (default: replay-<unix time>-)")
    r.add_argument("--timeout", type=flags.positive_float, default=10.0, help="seconds to wait for each answer")
    r.add_argument("--json", dest="json_path", metavar="FILE", help="write the comparison as JSON to FILE "
                                                                    "(default: none)")
    flags.client_tls_args(r)


def _fail(message: str) -> int:
    print(f"croupier: {message}", file=sys.stderr)
    return 2


def proxy_command(args: argparse.Namespace) -> int:
    if args.action == "report":
        return _print_report(args)
    if not args.upstream:
        return _fail("croupier proxy needs --upstream: the wallet's protocol base URL")
    problem = flags.url_problem("--upstream", args.upstream)
    if problem:
        return _fail(problem)
    from ..drive.tls import TLSError
    from ..proxy.faults import FaultConfigError, ProxyFaults, parse
    from ..proxy.server import ProxyServeOptions, serve
    from ..proxy.service import ProxyConfig

    plan = ProxyFaults()
    if args.faults:
        try:
            data = tomllib.loads(Path(args.faults).read_text(encoding="utf-8"))
            plan = parse(data.get("faults", {}), f"{args.faults}: [faults]")
        except OSError as exc:
            return _fail(f"cannot read --faults file {args.faults}: {exc.strerror}")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            return _fail(f"--faults file {args.faults} is not valid TOML: {exc}")
        except FaultConfigError as exc:
            return _fail(str(exc))
    try:
        tls = flags.client_tls(args)
        server_ssl = flags.server_tls(args)
    except TLSError as exc:
        return _fail(str(exc))
    record = Path(args.record) if args.record else None
    import os

    from ..wallet.server import is_loopback

    control_token = args.control_token or os.environ.get("CROUPIER_PROXY_TOKEN")
    if control_token is None and not is_loopback(args.control[0]):
        return _fail("the control API beyond loopback needs --control-token (or CROUPIER_PROXY_TOKEN): anyone who "
                     "reaches it could inject faults")
    if args.har and not args.record:
        return _fail("--har converts the recording on stop: give --record FILE too")
    for flag, path in (("--record", args.record), ("--har", args.har), ("--report-json", args.report_json),
                       ("--report-junit", args.report_junit), ("--report-html", args.report_html)):
        if path:  # said now, not after hours of traffic
            try:
                Path(path).open("ab").close()
            except OSError as exc:
                return _fail(f"cannot write {flag} file {path}: {exc.strerror}")
    config = ProxyConfig(upstream=args.upstream, secret=flags.secret(args), dialect=args.dialect, faults=plan,
                         record=record, timeout_s=args.timeout, shared_players=args.shared_players,
                         control_token=control_token,
                         upstream_ssl=tls.context() if args.upstream.lower().startswith("https:") else None)
    opts = ProxyServeOptions(config, host=args.listen[0], port=args.listen[1], control_host=args.control[0],
                             control_port=args.control[1], ssl_context=server_ssl,
                             report_json=Path(args.report_json) if args.report_json else None,
                             report_junit=Path(args.report_junit) if args.report_junit else None,
                             report_html=Path(args.report_html) if args.report_html else None,
                             har=Path(args.har) if args.har else None, log_level=args.log_level)
    try:
        return serve(opts)
    except OSError as exc:
        return _fail(f"cannot listen on {args.listen[0]}:{args.listen[1]} or {args.control[0]}:{args.control[1]}: "
                     f"{exc.strerror or exc}")
    except ValueError as exc:  # an unknown dialect
        return _fail(str(exc))


def _print_report(args: argparse.Namespace) -> int:
    import aiohttp

    from ..proxy.server import summary_lines, write_reports

    host, port = args.control
    url = f"http://{host}:{port}/report"

    async def fetch() -> Any:
        async with aiohttp.ClientSession() as http, http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            return orjson.loads(await resp.read())

    try:
        report = asyncio.run(fetch())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        return _fail(f"no proxy answers at {url} ({type(exc).__name__}): is it running, and is --control right?")
    write_reports(report, *(Path(f) if f else None for f in (args.report_json, args.report_junit, args.report_html)))
    for line in summary_lines(report):
        print(line)
    return 1 if report.get("verdict") == "fail" else 0


def replay_traffic_command(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    import aiohttp

    from ..drive.accounts import PlayersFileError, read_accounts
    from ..drive.client import AdminError
    from ..drive.tls import TLSError
    from ..protocol import dialects
    from ..proxy.har import HarError, is_har, read_har
    from ..proxy.recording import RecordingError, read
    from ..proxy.replayer import ReplayError, replay, summary_lines

    if args.players and (args.admin_url or args.admin_token):
        return _fail("--players replays on a players file's accounts, --admin-url/--admin-token provision players: "
                     "give one or the other")
    try:
        raw = Path(args.recording).read_bytes()
    except OSError as exc:
        return _fail(f"cannot read the recording {args.recording}: {exc.strerror}")
    try:
        dialect = dialects.get(args.dialect, flags.secret(args))
    except ValueError as exc:
        return _fail(str(exc))
    skipped: dict[str, int] = {}
    try:
        if is_har(raw, args.recording):
            har = read_har(raw, dialect, flags.secret(args), args.recording)
            records, skipped = har.records, dict(har.skipped)
        else:
            records = read(raw.splitlines(), args.recording)
    except HarError as exc:
        return _fail(f"{exc}: give a HAR 1.2 file (a browser's devtools, mitmproxy, `croupier proxy --har`)")
    except RecordingError as exc:
        return _fail(f"{exc}: give a file `croupier proxy --record` (or --har) wrote")
    try:
        accounts = read_accounts(args.players) if args.players else None
    except PlayersFileError as exc:
        return _fail(str(exc))
    try:
        tls = flags.client_tls(args)
    except TLSError as exc:
        return _fail(str(exc))
    parts = urlsplit(args.wallet)
    admin_url = args.admin_url or f"{parts.scheme}://{parts.netloc}"
    prefix = args.prefix or f"replay-{int(time.time())}-"
    try:
        result = asyncio.run(replay(records, args.wallet, dialect, admin_url, flags.admin_token(args), prefix,
                                    args.timeout, tls.context() if args.wallet.lower().startswith("https:") else None,
                                    accounts))
    except ReplayError as exc:
        return _fail(f"{exc}")
    except AdminError as exc:
        return _fail(f"the admin API at {admin_url} refused to provision players: {exc}: check --admin-url and "
                     "--admin-token (or --prefix, if these ids exist already)")
    except (OSError, aiohttp.ClientError) as exc:
        return _fail(f"wallet unreachable at {args.wallet if accounts else admin_url}: {exc}: is the wallet running, "
                     "and is --wallet right?")
    result.skipped.update(skipped)
    for line in summary_lines(result):
        print(line)
    if args.json_path:
        Path(args.json_path).write_bytes(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2))
    return 0 if result.to_json()["verdict"] == "match" else 1
