"""``croupier sandbox``: the reference wallet, the mock provider and the lobby, in one process.

Why one process: a developer wants one command and one Ctrl-C.  The three are
separate aiohttp applications on separate ports of 127.0.0.1 (the wallet and the
provider are exactly what ``croupier wallet serve`` and ``croupier provider
serve`` run), so the provider reaches the wallet over real signed HTTP and the
lobby reaches the provider's launch API as an operator would; the lobby only
shares the provider's engine in memory, to show its calls as they happen.

Ports: the lobby on ``--port`` (default 8000), the wallet on the next port and
the provider on the one after (``--port 0``: any free ports, for tests).  With
``--wallet URL`` no wallet is started and the provider plays against that one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ..drive.tls import ClientTLS, TLSError, pinned_context, server_context
from ..protocol import dialects
from ..protocol.signing import DEV_SECRET
from ..provider.server import ProviderServeOptions, config_from
from ..provider.service import PROVIDER
from ..provider.service import make_app as make_provider
from ..wallet.accesslog import AccessLogger, configure_access
from ..wallet.http import WalletConfig
from ..wallet.server import ConfigError, is_loopback
from ..wallet.service import make_app as make_wallet
from ..wallet.sqlite import SQLiteStore
from .app import SandboxState, make_lobby
from .panel import Panel

__all__ = ["ConfigError", "RunningSandbox", "SandboxOptions", "run_sandbox", "start"]

log = logging.getLogger("croupier.sandbox")


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    """The lobby's port; the wallet takes the next one and the provider the one after (0: any free)."""
    wallet: str | None = None
    """The user's wallet (protocol base URL) instead of the embedded reference wallet."""
    dialect: str = "canonical"
    secret: str | None = None
    """The HMAC secret shared with ``wallet`` (default: CROUPIER_SECRET, else the development secret)."""
    db: str | None = None
    """The embedded wallet's SQLite file (default: a temporary one, gone at exit)."""
    seed: int | None = None
    session_ttl: int = 3600
    access_log: bool | None = None
    """As ``wallet serve``'s: True on (readable on a terminal), False off, None off on a terminal, JSON elsewhere."""
    access_log_file: str | None = None
    """JSON access lines of all three servers to this file instead of stderr."""
    tls_cert: str | None = None
    """Serve all three over HTTPS with this PEM certificate (``--tls-cert``); None: plain HTTP."""
    tls_key: str | None = None
    """The private key of ``tls_cert`` (None: in the same file)."""
    wallet_tls: ClientTLS = field(default_factory=ClientTLS)
    """How an ``https://`` ``wallet`` of the user's is verified (``--ca-bundle``...)."""


@dataclass(slots=True)
class RunningSandbox:
    lobby_url: str
    provider_url: str
    wallet_url: str
    """The protocol base URL the provider calls."""
    admin_url: str | None
    admin_token: str | None
    api_key: str
    state: SandboxState
    runners: list[web.AppRunner] = field(default_factory=list)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    db: Path | None = None

    async def stop(self) -> None:
        """Lobby first (its event streams end), then the provider, then the wallet (its store closes)."""
        self.state.panel.close()
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.runners.clear()
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _url(host: str, sock: socket.socket, https: bool = False) -> str:
    port = sock.getsockname()[1]
    scheme = "https" if https else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _tls(opts: SandboxOptions) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """The servers' context (``--tls-cert``/``--tls-key``) and the one the sandbox's own clients (the provider
    calling the embedded wallet, the lobby calling both) verify them with: pinned to that very certificate,
    since the sandbox knows what it serves (the user's browser and tools verify it as they choose)."""
    if opts.tls_key and not opts.tls_cert:
        raise ConfigError("--tls-key needs --tls-cert (the certificate the key belongs to)")
    if not opts.tls_cert:
        return None, None
    try:
        return server_context(opts.tls_cert, opts.tls_key), pinned_context(opts.tls_cert)
    except TLSError as exc:
        raise ConfigError(str(exc)) from None


async def _serve(app: web.Application, sock: socket.socket, runners: list[web.AppRunner], logged: bool = False,
                 ssl_context: ssl.SSLContext | None = None) -> None:
    """``logged``: one access line per request (the form :func:`configure_access` set up); ``ssl_context``:
    serve HTTPS."""
    if logged:
        runner = web.AppRunner(app, access_log_class=AccessLogger, access_log=logging.getLogger("croupier.access"),
                               shutdown_timeout=5.0)
    else:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    runners.append(runner)
    await web.SockSite(runner, sock, ssl_context=ssl_context).start()


async def start(opts: SandboxOptions, logged: bool = False) -> RunningSandbox:
    """Bind every port first (a busy one is a ConfigError before anything starts), then start all three.

    ``logged``: each server writes an access line per request to ``croupier.access`` (set up by
    :func:`run_sandbox` from the options; in-process users such as tests leave it off)."""
    if not is_loopback(opts.host):
        raise ConfigError("the sandbox has no authentication: --host must be a loopback address (127.0.0.1, ::1)")
    if not 0 <= opts.port <= 65533:
        raise ConfigError("--port must leave room for the next two ports")
    embedded = opts.wallet is None
    if embedded and opts.dialect not in dialects.names():
        raise ConfigError(f"the embedded reference wallet serves the built-in dialects ({', '.join(dialects.names())}); "
                          "a dialect file describes your own wallet: pass it with --wallet URL")
    server_ssl, pinned = _tls(opts)
    https = server_ssl is not None
    ports = (opts.port, opts.port + 1, opts.port + 2) if opts.port else (0, 0, 0)
    socks: list[socket.socket] = []
    try:
        for port in ports if embedded else ports[::2]:
            socks.append(_bind(opts.host, port))
    except ConfigError:
        for s in socks:
            s.close()
        raise
    lobby_sock, *rest = socks
    wallet_sock, provider_sock = (rest[0], rest[1]) if embedded else (None, rest[0])
    runners: list[web.AppRunner] = []
    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        admin_url = admin_token = None
        if wallet_sock is not None:
            if opts.db:
                db = Path(opts.db)
            else:
                tmp = tempfile.TemporaryDirectory(prefix="croupier-sandbox-")
                db = Path(tmp.name) / "wallet.db"
            secret, admin_token = secrets.token_hex(16), secrets.token_hex(16)
            await _serve(make_wallet(SQLiteStore(db), WalletConfig(secret, admin_token, opts.session_ttl)),
                         wallet_sock, runners, logged, server_ssl)
            admin_url = _url(opts.host, wallet_sock, https)
            # The reference wallet serves every built-in dialect under its own prefix, over one store.
            wallet_url = f"{admin_url}/wallet" + ("" if opts.dialect == "canonical" else f"/{opts.dialect}")
        else:
            assert opts.wallet is not None
            db = None
            wallet_url = opts.wallet
            secret = opts.secret or os.environ.get("CROUPIER_SECRET") or DEV_SECRET
        api_key = secrets.token_hex(16)
        pconfig = config_from(ProviderServeOptions(
            wallet=wallet_url, dialect=opts.dialect, secret=secret, host=opts.host,
            port=provider_sock.getsockname()[1], seed=opts.seed, api_key=api_key, wallet_tls=opts.wallet_tls,
            wallet_ssl=pinned if embedded else None, ssl_context=server_ssl))
        try:
            provider_app = make_provider(pconfig)
        except ValueError as exc:  # an unknown dialect
            raise ConfigError(str(exc)) from None
        provider = provider_app[PROVIDER]
        provider_url = _url(opts.host, provider_sock, https)
        state = SandboxState(provider=provider, provider_url=provider_url, api_key=api_key, panel=Panel(provider),
                             wallet_url=wallet_url, admin_url=admin_url, admin_token=admin_token, client_ssl=pinned)
        await _serve(provider_app, provider_sock, runners, logged, server_ssl)
        await _serve(make_lobby(state), lobby_sock, runners, logged, server_ssl)
    except BaseException:
        for runner in reversed(runners):
            await runner.cleanup()
        for s in socks:
            s.close()
        if tmp is not None:
            tmp.cleanup()
        raise
    return RunningSandbox(_url(opts.host, lobby_sock, https), provider_url, wallet_url, admin_url, admin_token, api_key,
                          state, runners, tmp, db)


async def _main(opts: SandboxOptions, logged: bool) -> None:
    sandbox = await start(opts, logged)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"croupier sandbox: open {sandbox.lobby_url}/ in a browser", flush=True)
    if sandbox.admin_url is not None:
        where = f"SQLite {sandbox.db}" + (" (temporary)" if sandbox.tmp is not None else "")
        print(f"  reference wallet  {sandbox.wallet_url}  ({where}; admin API {sandbox.admin_url}/admin/, "
              f"token {sandbox.admin_token})", flush=True)
    else:
        print(f"  your wallet       {sandbox.wallet_url}  (dialect {opts.dialect})", flush=True)
    print(f"  mock provider     {sandbox.provider_url}  (operator API key {sandbox.api_key})", flush=True)
    if not logged and opts.access_log is None:
        print("  Access log off on a terminal (--access-log shows a line per request).", flush=True)
    print("  Ctrl-C stops all three.", flush=True)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("croupier sandbox: stopping", flush=True)
        await sandbox.stop()


def run_sandbox(opts: SandboxOptions) -> int:
    """Run until SIGINT/SIGTERM; 2 for a bad configuration (a busy port, a non-loopback host)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if opts.wallet is not None and not (opts.secret or os.environ.get("CROUPIER_SECRET")):
        log.warning("no --secret given for your wallet: signing with the development secret %r", DEV_SECRET)
    try:
        logged = configure_access(opts.access_log, opts.access_log_file) is not None
    except OSError as exc:
        print(f"croupier: cannot write the access log to {opts.access_log_file}: {exc.strerror}: "
              "check --access-log-file", file=sys.stderr, flush=True)
        return 2
    try:
        asyncio.run(_main(opts, logged))
    except ConfigError as exc:
        print(f"croupier: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0

