"""The ``croupier`` command line.

Exit codes: 0 success, 1 the job ran and found a problem, 2 bad usage or
configuration (what CI pipelines branch on), 130 interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="croupier", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--version", action="version", version=f"croupier {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    wallet = sub.add_parser("wallet", help="the reference wallet")
    wsub = wallet.add_subparsers(dest="wallet_command", required=True)
    serve = wsub.add_parser("serve", help="serve the reference wallet (canonical protocol + admin API)")
    serve.add_argument("--db", default="croupier-wallet.db", help="SQLite file (default: %(default)s)")
    serve.add_argument("--memory", action="store_true", help="keep everything in memory (nothing survives)")
    serve.add_argument("--sync", choices=("normal", "full"), default="normal",
                       help="SQLite durability: normal survives a process crash, full also a power loss")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8080)
    serve.add_argument("--secret", help="HMAC secret shared with providers (env CROUPIER_SECRET)")
    serve.add_argument("--admin-token", help="bearer token of the admin API (env CROUPIER_ADMIN_TOKEN)")
    serve.add_argument("--session-ttl", type=_positive_int, default=3600, help="session lifetime in seconds")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false", help="no JSON access lines")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--shutdown-timeout", type=float, default=30.0,
                       help="seconds to let in-flight calls finish on SIGTERM")
    serve.add_argument("--dsn", default=None,
                       help="PostgreSQL DSN instead of SQLite, e.g. postgresql://user@host/db (env CROUPIER_DSN)")
    serve.add_argument("--pg-schema", default="public", help="PostgreSQL schema to use (default: %(default)s)")
    serve.add_argument("--workers", type=_positive_int, default=1,
                       help="wallet processes on one port (PostgreSQL only)")
    serve.add_argument("--worker-of-pool", action="store_true", help=argparse.SUPPRESS)

    provider = sub.add_parser("provider", help="the mock game provider (operator-facing)")
    psub = provider.add_subparsers(dest="provider_command", required=True)
    pserve = psub.add_parser("serve", help="serve the mock provider: catalog, launch, game page, play, reports")
    pserve.add_argument("--wallet", required=True, help="the operator wallet's protocol base URL")
    pserve.add_argument("--dialect", default="canonical")
    pserve.add_argument("--secret", help="HMAC secret shared with the wallet (env CROUPIER_SECRET)")
    pserve.add_argument("--host", default="127.0.0.1")
    pserve.add_argument("--port", type=_port, default=8081)
    pserve.add_argument("--seed", type=int, help="seeds every session's game draws (default: random)")
    pserve.add_argument("--api-key", help="bearer key of the operator-facing calls (env CROUPIER_PROVIDER_KEY)")
    pserve.add_argument("--no-access-log", dest="access_log", action="store_false", help="no JSON access lines")
    pserve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    pserve.add_argument("--shutdown-timeout", type=float, default=30.0,
                        help="seconds to let in-flight rounds finish on SIGTERM")

    from .runcmd import add_run_parser

    add_run_parser(sub)

    from .checkcmd import add_check_parsers

    add_check_parsers(sub)

    from .loadcmd import add_load_parser

    add_load_parser(sub)

    from .dialectcmd import add_dialect_parser

    add_dialect_parser(sub)

    sandbox = sub.add_parser("sandbox", help="reference wallet + mock provider + a web lobby with playable games "
                             "and the wallet calls in view")
    sandbox.add_argument("--host", default="127.0.0.1", help="a loopback address (the lobby has no login)")
    sandbox.add_argument("--port", type=_port, default=8000,
                         help="the lobby's port; the wallet takes the next, the provider the one after "
                              "(0: any free ports; default: %(default)s)")
    sandbox.add_argument("--wallet", help="your wallet's protocol base URL instead of the embedded reference wallet")
    sandbox.add_argument("--dialect", default="canonical", help="the wire dialect of --wallet (default: %(default)s)")
    sandbox.add_argument("--secret", help="HMAC secret shared with --wallet (env CROUPIER_SECRET)")
    sandbox.add_argument("--db", help="the embedded wallet's SQLite file (default: a temporary file)")
    sandbox.add_argument("--seed", type=int, help="seeds every game session's draws (default: random)")

    demo = sub.add_parser("demo", help="reference wallet on a temporary SQLite file + the chaos scenario, then the summary")
    demo.add_argument("--scenario", default="chaos")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--db", help="keep the wallet's SQLite file here (default: a temporary file)")
    demo.add_argument("--json", dest="json_path")
    demo.add_argument("--junit", dest="junit_path")
    demo.add_argument("--html", dest="html_path")
    return p


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``known``, else nothing."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dialect_problem(name: str, flag: str = "--dialect") -> str | None:
    """Why ``--dialect name`` cannot be used, in one sentence naming the fix; ``None`` if it can."""
    from .dialects import names
    from .dialects.declarative import load_file

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
    from . import scenario as scenarios

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

    from .wallet.sqlite import connect, migrate

    try:
        conn = connect(db, "normal")
        try:
            migrate(conn)
        finally:
            conn.close()
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        return f"cannot open the wallet's SQLite file {db}: {exc}: check --db"
    return None


def url_problem(flag: str, url: str) -> str | None:
    """Why ``url`` (given as ``flag``) is not an http(s) base URL; ``None`` if it is."""
    from urllib.parse import urlsplit

    example = "http://127.0.0.1:8080" + ("/wallet" if flag == "--wallet" else "")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"{flag} must be an http(s) URL such as {example}, got {url!r} ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{flag} must be an http(s) URL such as {example}, got {url!r}"
    return None


def preflight(args: argparse.Namespace) -> str | None:
    """Check the arguments every command shares before anything starts (a wallet, a server, Locust)."""
    for flag in ("--wallet", "--provider", "--admin-url"):
        value = getattr(args, flag[2:].replace("-", "_"), None)
        if isinstance(value, str) and args.command != "wallet":
            problem = url_problem(flag, value)
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
    if args.command in ("run", "load", "check", "replay", "provider", "sandbox") and dialect:
        return dialect_problem(dialect)
    if args.command == "dialect" and getattr(args, "dialect_command", None) == "sample":
        return dialect_problem(args.dialect, "the dialect argument")
    return None


INTERRUPTIBLE = ("run", "check", "replay", "demo", "scenarios", "dialect")
"""Commands whose SIGTERM is a Ctrl-C until they handle it themselves (run, check and demo do, and keep
their work); the servers and ``load`` keep their own SIGTERM handling."""


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
    args = parser().parse_args(argv)
    problem = preflight(args)
    if problem:
        print(f"croupier: {problem}", file=sys.stderr)
        return 2
    if args.command == "wallet" and args.wallet_command == "serve":
        from .wallet.server import ConfigError, ServeOptions, serve, serve_workers

        opts = ServeOptions(
            host=args.host, port=args.port, db=args.db, memory=args.memory, sync=args.sync,
            secret=args.secret, admin_token=args.admin_token, session_ttl=args.session_ttl,
            access_log=args.access_log, log_level=args.log_level, shutdown_timeout=args.shutdown_timeout,
            dsn=args.dsn or os.environ.get("CROUPIER_DSN"), pg_schema=args.pg_schema,
            workers=1 if args.worker_of_pool else args.workers, reuse_port=args.worker_of_pool,
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
        from .provider.server import ConfigError as ProviderConfigError
        from .provider.server import ProviderServeOptions
        from .provider.server import serve as serve_provider

        popts = ProviderServeOptions(
            wallet=args.wallet, dialect=args.dialect, secret=args.secret, host=args.host, port=args.port,
            seed=args.seed, api_key=args.api_key, access_log=args.access_log, log_level=args.log_level,
            shutdown_timeout=args.shutdown_timeout,
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
    if args.command == "dialect":
        from .dialectcmd import dialect_command

        return dialect_command(args)
    if args.command == "run":
        from .runcmd import run_command

        return run_command(args)
    if args.command == "load":
        from .loadcmd import load_command

        return load_command(args)
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
        from .sandbox.server import SandboxOptions, run_sandbox

        return run_sandbox(SandboxOptions(host=args.host, port=args.port, wallet=args.wallet, dialect=args.dialect,
                                          secret=args.secret, db=args.db, seed=args.seed))
    if args.command == "demo":
        from .demo import run_demo
        from .scenario import ScenarioError

        try:
            return run_demo(db=args.db, scenario=args.scenario, duration=args.duration, seed=args.seed,
                            json_path=args.json_path, junit_path=args.junit_path, html_path=args.html_path)
        except ScenarioError as exc:
            print(f"croupier: {exc}", file=sys.stderr)
            return 2
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
