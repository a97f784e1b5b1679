"""The croupier command line.

Exit codes: 0 success, 1 the job ran and found a problem, 2 bad usage or
configuration (what CI pipelines branch on), 130 interrupted (SIGINT or SIGTERM).  The top-level
help's description is :data:`DESCRIPTION`, plain text: a docstring's reST
markup would show in ``--help`` as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from .. import __version__
from . import flags


class HelpFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default, unless the help already says what the default is.

    Why not ``argparse.ArgumentDefaultsHelpFormatter``: it prints ``(default: None)`` and
    ``(default: False)`` for flags that have no default worth saying, which reads as noise."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (text and "%(default)" not in text and "default" not in text and has_default(action)
                and (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))):
            text += " (default: %(default)s)"
        return text


def has_default(action: argparse.Action) -> bool:
    """Whether ``action`` has a default a user should be told (not None, False, an empty list or suppressed)."""
    default = action.default
    return not (default is None or default is False or default == argparse.SUPPRESS
                or (isinstance(default, (list, tuple)) and not default))


class Parser(argparse.ArgumentParser):
    """croupier's parsers: every one, subcommands' included (argparse makes them of the parent's class),
    shows defaults with :class:`HelpFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


DESCRIPTION = ("croupier: a game-provider simulator, load-test harness and reference wallet for casino seamless "
               "wallets. Exit codes: 0 pass, 1 the job ran and found a problem, 2 bad usage or an error, "
               "130 interrupted.")


def _access_log_args(p: argparse.ArgumentParser) -> None:
    """The access-log flags ``wallet serve``, ``provider serve`` and ``sandbox`` share."""
    p.add_argument("--access-log", dest="access_log", action=argparse.BooleanOptionalAction, default=None,
                   help="one line per request: readable on a terminal, JSON in a pipe or a file; --no-access-log "
                        "for none (default: off on a terminal, JSON lines on stderr otherwise)")
    p.add_argument("--access-log-file", metavar="PATH",
                   help="append the access log as JSON lines to PATH instead of stderr (default: stderr, as "
                        "--access-log says)")


MODULE_COMMANDS: dict[str, tuple[str, str]] = {
    "run": (".runcmd", "add_run_parser"), "scenarios": (".runcmd", "add_run_parser"),
    "check": (".checkcmd", "add_check_parsers"), "replay": (".checkcmd", "add_check_parsers"),
    "load": (".loadcmd", "add_load_parser"), "load-worker": (".loadcmd", "add_load_worker_parser"),
    "certify": (".certifycmd", "add_certify_parser"),
    "dialect": (".dialectcmd", "add_dialect_parser"),
    "proxy": (".proxycmd", "add_proxy_parsers"), "replay-traffic": (".proxycmd", "add_proxy_parsers"),
}
"""The commands whose parsers live in their own module, which imports the command's engine (run's imports alone
cost a third of a second of CPU)."""

LOCAL_COMMANDS = ("wallet", "provider", "sandbox", "demo")
"""The commands :func:`parser` defines itself."""


def _command_modules(only: str | None) -> list[tuple[str, str]]:
    """The parser modules to import: all of them, or only ``only``'s when it names a command (a server started by
    ``croupier wallet serve`` should not pay for importing the load tester, the checker and the certifier)."""
    if only in LOCAL_COMMANDS:
        return []
    if only in MODULE_COMMANDS:
        return [MODULE_COMMANDS[only]]
    return list(dict.fromkeys(MODULE_COMMANDS.values()))


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` a command's name just that command's part (what :func:`main` parses
    with: the top-level help, a typo's "did you mean" and a bare ``croupier`` still see every command)."""
    p = Parser(prog="croupier", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"croupier {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    wallet = sub.add_parser("wallet", help="the reference wallet", description="The reference wallet.")
    wsub = wallet.add_subparsers(dest="wallet_command", required=True, metavar="COMMAND")
    serve = wsub.add_parser("serve", help="serve the reference wallet (canonical protocol + admin API)",
                            description="Serve the reference wallet: the canonical protocol under /wallet, every "
                                        "built-in dialect under /wallet/NAME/, the admin API under /admin.")
    serve.add_argument("--db", default="croupier-wallet.db", help="SQLite file, created and migrated on start")
    serve.add_argument("--memory", action="store_true", help="keep everything in memory (nothing survives)")
    serve.add_argument("--sync", choices=("normal", "full"), default="normal",
                       help="SQLite durability: normal survives a process crash, full also a power loss")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (beyond loopback needs --secret and --admin-token)")
    serve.add_argument("--port", type=flags.port, default=8080, help="port to listen on")
    serve.add_argument("--secret", help="HMAC secret shared with providers (default: env CROUPIER_SECRET, else the "
                                        "development secret, on loopback only)")
    serve.add_argument("--admin-token", help="bearer token of the admin API (default: env CROUPIER_ADMIN_TOKEN, "
                                             "else the development token, on loopback only)")
    serve.add_argument("--session-ttl", type=flags.positive_int, default=3600, help="session lifetime in seconds")
    _access_log_args(serve)
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                       help="the least severe of the wallet's own log lines to print")
    serve.add_argument("--shutdown-timeout", type=float, default=30.0,
                       help="seconds to let in-flight calls finish on SIGTERM")
    serve.add_argument("--dsn", default=None,
                       help="PostgreSQL DSN instead of SQLite, e.g. postgresql://user@host/db (default: env "
                            "CROUPIER_DSN, else SQLite)")
    serve.add_argument("--pg-schema", default="public", help="PostgreSQL schema to use")
    serve.add_argument("--workers", type=flags.positive_int, default=1,
                       help="wallet processes on one port (PostgreSQL only)")
    serve.add_argument("--metrics", action="store_true",
                       help="Prometheus metrics at GET /metrics on the wallet's port: calls, latency and errors by "
                            "operation and dialect, every worker's added up (docs/metrics.md)")
    flags.server_tls_args(serve, "the wallet (protocol and admin API)")
    serve.add_argument("--worker-of-pool", action="store_true", help=argparse.SUPPRESS)

    provider = sub.add_parser("provider", help="the mock game provider (operator-facing)",
                              description="The mock game provider.")
    psub = provider.add_subparsers(dest="provider_command", required=True, metavar="COMMAND")
    pserve = psub.add_parser("serve", help="serve the mock provider: catalog, launch, game page, play, reports",
                             description="Serve the mock provider an operator integrates with: the game catalog, "
                                         "launch, a game page, play, history and reports, against your wallet.")
    pserve.add_argument("--wallet", required=True, help="the operator wallet's protocol base URL (required)")
    pserve.add_argument("--dialect", default="canonical",
                        help="the wallet's wire dialect: a built-in name (`croupier dialect list`) or a .toml file")
    pserve.add_argument("--secret", help="HMAC secret shared with the wallet (default: env CROUPIER_SECRET, else the "
                                         "development secret, on loopback only)")
    pserve.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (beyond loopback needs --secret and --api-key)")
    pserve.add_argument("--port", type=flags.port, default=8081, help="port to listen on")
    pserve.add_argument("--seed", type=int, help="seeds every session's game draws (default: random)")
    pserve.add_argument("--api-key", help="bearer key of the operator-facing calls (default: env "
                                          "CROUPIER_PROVIDER_KEY, else the development key, on loopback only)")
    _access_log_args(pserve)
    pserve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                        help="the least severe of the provider's own log lines to print")
    pserve.add_argument("--shutdown-timeout", type=float, default=30.0,
                        help="seconds to let in-flight rounds finish on SIGTERM")
    pserve.add_argument("--metrics", action="store_true",
                        help="Prometheus metrics at GET /metrics on the provider's port: the wallet calls it makes, "
                             "rounds played, the anomalies its ledger sees (docs/metrics.md)")
    flags.client_tls_args(pserve)
    flags.server_tls_args(pserve, "the provider")

    for module, adder in _command_modules(only):
        getattr(import_module(module, __package__), adder)(sub)

    sandbox = sub.add_parser("sandbox", help="reference wallet + mock provider + a web lobby with playable games "
                             "and the wallet calls in view",
                             description="The reference wallet, the mock provider and a web lobby with playable "
                                         "games, on 127.0.0.1, until Ctrl-C.")
    sandbox.add_argument("--host", default="127.0.0.1", help="a loopback address (the lobby has no login)")
    sandbox.add_argument("--port", type=flags.port, default=8000,
                         help="the lobby's port; the wallet takes the next, the provider the one after "
                              "(0: any free ports; default: %(default)s)")
    sandbox.add_argument("--wallet", help="your wallet's protocol base URL instead of the embedded reference wallet "
                                          "(default: the embedded one)")
    sandbox.add_argument("--dialect", default="canonical", help="the wire dialect of --wallet (default: %(default)s)")
    sandbox.add_argument("--secret", help="HMAC secret shared with --wallet (default: env CROUPIER_SECRET, else the "
                                          "development secret)")
    sandbox.add_argument("--db", help="the embedded wallet's SQLite file (default: a temporary file)")
    sandbox.add_argument("--seed", type=int, help="seeds every game session's draws (default: random)")
    _access_log_args(sandbox)
    flags.server_tls_args(sandbox, "the lobby, the wallet and the provider")
    flags.client_tls_args(sandbox)

    demo = sub.add_parser("demo", help="reference wallet on a temporary SQLite file + the chaos scenario, then the "
                                       "summary",
                          description="Start the reference wallet on a temporary SQLite file, play a scenario at "
                                      "it, print the verdict.")
    demo.add_argument("--scenario", default="chaos", help="the scenario to play (`croupier scenarios` lists them)")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds of play (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=1, help="one seed reproduces the whole run")
    demo.add_argument("--db", help="keep the wallet's SQLite file here (default: a temporary file)")
    demo.add_argument("--json", dest="json_path", metavar="PATH", help="write the run's report as JSON to PATH")
    demo.add_argument("--junit", dest="junit_path", metavar="PATH", help="write a JUnit XML report to PATH")
    demo.add_argument("--html", dest="html_path", metavar="PATH", help="write an HTML report to PATH")
    return p


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``known``, else nothing."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dialect_problem(name: str, flag: str = "--dialect") -> str | None:
    """Why ``--dialect name`` cannot be used, in one sentence naming the fix; ``None`` if it can."""
    from ..protocol.dialects import names
    from ..protocol.dialects.spec import load_file

    known = names()
    if name in known:
        return None
    if name.endswith(".toml") or "/" in name:
        try:
            load_file(name)
        except OSError as exc:
            return f"cannot read dialect file {name}: {exc.strerror}: check {flag}"
        except ValueError as exc:
            return f"{name} is not a valid dialect ({exc}): run `croupier dialect check {name}` for every problem"
        return None
    return (f"unknown dialect {name!r}{did_you_mean(name, known)}: {flag} takes one of "
            f"{', '.join(known)}, or a .toml dialect file")


def scenario_problem(name: str) -> str | None:
    """Why the scenario ``name`` cannot be played, in one sentence; ``None`` if it can."""
    from ..play import scenario as scenarios

    p = Path(name)
    if not (p.suffix == ".toml" or os.sep in name):
        known = sorted(scenarios.builtin())
        if name not in known:
            return (f"no scenario named {name!r}{did_you_mean(name, known)}: `croupier scenarios` lists "
                    f"{', '.join(known) or 'none'}, or give a .toml file")
    try:
        scenarios.load(name)
    except (scenarios.ScenarioError, OSError, UnicodeDecodeError) as exc:
        return str(exc)
    return None


def sqlite_problem(db: str) -> str | None:
    """Why the SQLite file ``--db`` cannot hold a wallet; ``None`` if it can (opened and migrated once)."""
    import sqlite3

    from ..wallet.sqlite import connect, migrate

    try:
        conn = connect(db, "normal")
        try:
            migrate(conn)
        finally:
            conn.close()
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        return f"cannot open the wallet's SQLite file {db}: {exc}: check --db"
    return None


def preflight(args: argparse.Namespace) -> str | None:
    """Check the arguments every command shares before anything starts (a wallet, a server, Locust)."""
    for flag in ("--wallet", "--provider", "--admin-url"):
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if isinstance(value, str) and args.command != "wallet":
            problem = flags.url_problem(flag, value)
            if problem:
                return problem
    if args.command in ("run", "load"):
        problem = scenario_problem(args.scenario)
        if problem:
            return problem
    if args.command == "demo":
        problem = scenario_problem(args.scenario)
        if problem:
            return problem
        if not args.duration > 0:
            return "--duration must be a positive number of seconds"
    if args.command in ("demo", "sandbox") and args.db:
        problem = sqlite_problem(args.db)
        if problem:
            return problem
    dialect = getattr(args, "dialect", None)
    if args.command in ("run", "load", "check", "replay", "provider", "sandbox", "certify", "proxy",
                        "replay-traffic") and dialect:
        return dialect_problem(dialect)
    if args.command == "dialect" and getattr(args, "dialect_command", None) == "sample":
        return dialect_problem(args.dialect, "the dialect argument")
    return None


INTERRUPTIBLE = ("run", "check", "replay", "demo", "scenarios", "dialect", "load", "certify", "replay-traffic")
"""Commands whose SIGTERM is a Ctrl-C until they handle it themselves (run, check, demo and load do, and
keep their work; load saves and restores the handler it finds); the servers keep their own SIGTERM handling."""


def main(argv: Sequence[str] | None = None) -> int:
    """The ``croupier`` entry point: no traceback reaches the user (``CROUPIER_DEBUG=1`` shows them), and
    an interruption the command did not handle itself is one line and exit 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:
        name = str(exc) if str(exc) in ("SIGINT", "SIGTERM") else "SIGINT"
        print(f"croupier: interrupted ({name})", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort: one sentence, not a traceback
        if os.environ.get("CROUPIER_DEBUG"):
            raise
        print(f"croupier: unexpected error: {type(exc).__name__}: {exc} "
              "(CROUPIER_DEBUG=1 shows the traceback; please report it)", file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None = None) -> int:
    command = next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)
    if command in INTERRUPTIBLE:
        from .interrupt import terminate_as_interrupt

        terminate_as_interrupt()
    args = parser(command).parse_args(argv)
    problem = preflight(args)
    if problem:
        print(f"croupier: {problem}", file=sys.stderr)
        return 2
    if args.command == "wallet" and args.wallet_command == "serve":
        from ..drive.tls import TLSError
        from ..wallet.server import ConfigError, ServeOptions, serve, serve_workers

        try:
            server_ssl = flags.server_tls(args)
        except TLSError as exc:
            print(f"croupier: {exc}", file=sys.stderr)
            return 2
        opts = ServeOptions(
            host=args.host, port=args.port, db=args.db, memory=args.memory, sync=args.sync,
            secret=args.secret, admin_token=args.admin_token, session_ttl=args.session_ttl,
            access_log=args.access_log, access_log_file=args.access_log_file, log_level=args.log_level,
            shutdown_timeout=args.shutdown_timeout, dsn=args.dsn or os.environ.get("CROUPIER_DSN"), pg_schema=args.pg_schema,
            workers=1 if args.worker_of_pool else args.workers, reuse_port=args.worker_of_pool,
            ssl_context=server_ssl, metrics=args.metrics,
        )
        try:
            if args.workers > 1 and not args.worker_of_pool:
                argv = [a for a in (sys.argv[1:] if argv is None else list(argv))]
                return serve_workers(dataclasses.replace(opts, workers=args.workers), argv)
            serve(opts)
        except ConfigError as exc:
            print(f"croupier: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "provider" and args.provider_command == "serve":
        from ..provider.server import ConfigError as ProviderConfigError
        from ..provider.server import ProviderServeOptions
        from ..provider.server import serve as serve_provider

        try:
            wallet_tls, provider_ssl = flags.client_tls(args), flags.server_tls(args)
        except ValueError as exc:  # TLSError: a certificate or key file that cannot be used
            print(f"croupier: {exc}", file=sys.stderr)
            return 2
        popts = ProviderServeOptions(
            wallet=args.wallet, dialect=args.dialect, secret=args.secret, host=args.host, port=args.port,
            seed=args.seed, api_key=args.api_key, access_log=args.access_log, access_log_file=args.access_log_file,
            log_level=args.log_level, shutdown_timeout=args.shutdown_timeout,
            wallet_tls=wallet_tls, ssl_context=provider_ssl, metrics=args.metrics,
        )
        try:
            serve_provider(popts)
        except ProviderConfigError as exc:
            print(f"croupier: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"croupier: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
            return 2
        return 0
    if args.command == "proxy":
        from .proxycmd import proxy_command

        return proxy_command(args)
    if args.command == "replay-traffic":
        from .proxycmd import replay_traffic_command

        return replay_traffic_command(args)
    if args.command == "dialect":
        from .dialectcmd import dialect_command

        return dialect_command(args)
    if args.command == "run":
        from .runcmd import run_command

        return run_command(args)
    if args.command == "load":
        from .loadcmd import load_command

        return load_command(args)
    if args.command == "load-worker":
        from .loadcmd import load_worker_command

        return load_worker_command(args)
    if args.command == "certify":
        from .certifycmd import certify_command
        from .checkcmd import keep_hypothesis_out_of_cwd

        keep_hypothesis_out_of_cwd()
        return certify_command(args, list(sys.argv[2:] if argv is None else argv[1:]), main)
    if args.command in ("check", "replay"):
        from .checkcmd import keep_hypothesis_out_of_cwd

        keep_hypothesis_out_of_cwd()
    if args.command == "check":
        from .checkcmd import check_command

        return check_command(args)
    if args.command == "replay":
        from .checkcmd import replay_command

        return replay_command(args)
    if args.command == "scenarios":
        from .runcmd import list_scenarios

        return list_scenarios(args.json)
    if args.command == "sandbox":
        from ..drive.tls import TLSError
        from ..sandbox.server import SandboxOptions, run_sandbox

        try:
            wallet_tls = flags.client_tls(args)
        except TLSError as exc:
            print(f"croupier: {exc}", file=sys.stderr)
            return 2
        return run_sandbox(SandboxOptions(host=args.host, port=args.port, wallet=args.wallet, dialect=args.dialect,
                                          secret=args.secret, db=args.db, seed=args.seed,
                                          access_log=args.access_log, access_log_file=args.access_log_file,
                                          tls_cert=args.tls_cert, tls_key=args.tls_key, wallet_tls=wallet_tls))
    if args.command == "demo":
        from ..play.scenario import ScenarioError
        from .demo import run_demo

        try:
            return run_demo(db=args.db, scenario=args.scenario, duration=args.duration, seed=args.seed,
                            json_path=args.json_path, junit_path=args.junit_path, html_path=args.html_path)
        except ScenarioError as exc:
            print(f"croupier: {exc}", file=sys.stderr)
            return 2
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
