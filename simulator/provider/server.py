"""Serving the mock provider: configuration from flags and environment, the same rules as the wallet's.

Secrets (the wallet's HMAC secret, the operator's API key) come from flags,
then the environment, then development defaults — and the defaults only on a
loopback address, so a provider reachable from elsewhere is never guarded by a
published key.  A bad configuration is a :class:`ConfigError` (exit code 2).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from ..drive.tls import ClientTLS, TLSError, handshake_problem
from ..metrics.families import Metrics
from ..protocol.signing import DEV_SECRET
from ..wallet.accesslog import AccessLogger
from ..wallet.server import ConfigError, access_log_note, configure_logs, is_loopback
from .service import make_app
from .state import ProviderConfig

log = logging.getLogger("croupier.provider")

DEV_API_KEY = "croupier-dev-provider-key"

__all__ = ["DEV_API_KEY", "ConfigError", "ProviderServeOptions", "build", "config_from", "serve"]


@dataclass(frozen=True, slots=True)
class ProviderServeOptions:
    wallet: str
    dialect: str = "canonical"
    secret: str | None = None
    host: str = "127.0.0.1"
    port: int = 8081
    seed: int | None = None
    api_key: str | None = None
    access_log: bool | None = None
    """As the wallet's: True on, False off, None off on a terminal and JSON elsewhere."""
    access_log_file: str | None = None
    log_level: str = "info"
    shutdown_timeout: float = 30.0
    wallet_tls: ClientTLS = field(default_factory=ClientTLS)
    """How an ``https://`` wallet is verified, and the client certificate shown to it (``--ca-bundle``...)."""
    wallet_ssl: ssl.SSLContext | None = None
    """A ready context for the wallet's calls instead of one built from ``wallet_tls`` (the sandbox's, pinned
    to its own certificate)."""
    ssl_context: ssl.SSLContext | None = None
    """Serve HTTPS with this context (``--tls-cert``/``--tls-key``); None: plain HTTP."""
    metrics: bool = False
    """Count the wallet calls, rounds and findings and serve them at ``GET /metrics`` (``--metrics``)."""


def _public_url(host: str, port: int, https: bool = False) -> str | None:
    """Where a browser reaches us, when the listening address says so (not 0.0.0.0 or ::)."""
    try:
        if ipaddress.ip_address(host).is_unspecified:
            return None
    except ValueError:
        pass
    scheme = "https" if https else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def config_from(opts: ProviderServeOptions) -> ProviderConfig:
    parts = urlsplit(opts.wallet)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--wallet must be the wallet's http(s) base URL, got {opts.wallet!r}")
    secret = opts.secret or os.environ.get("CROUPIER_SECRET")
    api_key = opts.api_key or os.environ.get("CROUPIER_PROVIDER_KEY")
    if (secret is None or api_key is None) and not is_loopback(opts.host):
        raise ConfigError(
            "listening beyond loopback needs --secret and --api-key (or CROUPIER_SECRET and CROUPIER_PROVIDER_KEY)")
    if secret is None:
        log.warning("no --secret given: using the development secret %r (loopback only)", DEV_SECRET)
    if api_key is None:
        log.warning("no --api-key given: using the development key %r (loopback only)", DEV_API_KEY)
    wallet_ssl = opts.wallet_ssl
    if wallet_ssl is None:
        try:
            wallet_ssl = opts.wallet_tls.context()
        except TLSError as exc:
            raise ConfigError(str(exc)) from None
    return ProviderConfig(wallet_url=opts.wallet, secret=secret or DEV_SECRET, api_key=api_key or DEV_API_KEY,
                          dialect=opts.dialect, seed=opts.seed,
                          public_url=_public_url(opts.host, opts.port, opts.ssl_context is not None),
                          wallet_ssl=wallet_ssl)


def build(opts: ProviderServeOptions) -> web.Application:
    configure_logs(opts.log_level, opts.access_log, opts.access_log_file)
    config = config_from(opts)
    try:
        return make_app(config, Metrics("provider") if opts.metrics else None)
    except ValueError as exc:  # an unknown dialect
        raise ConfigError(str(exc)) from None


def serve(opts: ProviderServeOptions) -> None:
    """Run until SIGTERM/SIGINT; in-flight rounds get ``shutdown_timeout`` seconds to finish."""
    app = build(opts)

    async def announce(_: web.Application) -> None:
        log.info("croupier provider on %s://%s:%d (wallet: %s, dialect: %s; %s)",
                 "https" if opts.ssl_context else "http", opts.host, opts.port, opts.wallet, opts.dialect,
                 access_log_note(opts.access_log, opts.access_log_file))
        if opts.wallet.lower().startswith("https:"):
            problem = await asyncio.to_thread(_wallet_tls_problem, opts)
            if problem:  # said, not fatal: the wallet may be started after the provider
                log.warning("%s", problem)

    app.on_startup.append(announce)
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop | None = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is optional
        loop = None
    sock = socket.socket(socket.AF_INET6 if ":" in opts.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((opts.host, opts.port))
    web.run_app(app, sock=sock, access_log_class=AccessLogger, access_log=logging.getLogger("croupier.access"),
                shutdown_timeout=opts.shutdown_timeout, print=None, loop=loop, ssl_context=opts.ssl_context)


def _wallet_tls_problem(opts: ProviderServeOptions) -> str | None:
    """Why the provider cannot talk TLS with its ``https://`` wallet (an untrusted certificate...), at start-up."""
    parts = urlsplit(opts.wallet)
    assert parts.hostname is not None
    tls = opts.wallet_tls
    return handshake_problem(parts.hostname, parts.port or 443, parts.path, tls, opts.wallet_ssl or tls.context())
