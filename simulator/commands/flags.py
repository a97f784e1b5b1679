"""Command-line pieces several commands share: argument types, the flags that name a wallet's wire and
credentials, and how those credentials are resolved (flag, then environment, then the development value);
the TLS flags of the clients (``--ca-bundle``, ``--client-cert``, ``--client-key``, ``--insecure``) and of
the servers (``--tls-cert``, ``--tls-key``).

Written once so that ``run``, ``load`` and ``check`` spell, document and resolve ``--secret`` and
``--admin-token`` alike; a change of default or wording reaches every command.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys

from ..drive.tls import INSECURE_WARNING, ClientTLS, TLSError, server_context
from ..protocol.signing import DEV_ADMIN_TOKEN, DEV_SECRET


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return value


def address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets)."""
    host, sep, number = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT, got {text!r}")
    return host.strip("[]"), port(number)


def wire_and_credentials(p: argparse.ArgumentParser, admin_for: str = "to provision players") -> None:
    """``--dialect``, ``--secret``, ``--admin-url`` and ``--admin-token``: how a command reaches a wallet."""
    p.add_argument("--dialect", default="canonical",
                   help="the wallet's wire dialect: a built-in name (`croupier dialect list`) or a .toml file")
    p.add_argument("--secret", help="shared HMAC secret (default: env CROUPIER_SECRET, else the development secret)")
    p.add_argument("--admin-url", help=f"reference-wallet admin API {admin_for} (default: the wallet's host)")
    p.add_argument("--admin-token", help="admin bearer token (default: env CROUPIER_ADMIN_TOKEN, else the "
                                         "development token)")


def secret(args: argparse.Namespace) -> str:
    return str(args.secret or os.environ.get("CROUPIER_SECRET") or DEV_SECRET)


def admin_token(args: argparse.Namespace) -> str:
    return str(args.admin_token or os.environ.get("CROUPIER_ADMIN_TOKEN") or DEV_ADMIN_TOKEN)


def client_tls_args(p: argparse.ArgumentParser) -> None:
    """``--ca-bundle``, ``--client-cert``, ``--client-key`` and ``--insecure``: how a command verifies an
    ``https://`` wallet and which certificate it shows (:class:`simulator.drive.tls.ClientTLS`)."""
    p.add_argument("--ca-bundle", metavar="FILE",
                   help="PEM file of the CA certificates that sign the wallet's TLS certificate, trusted instead of "
                        "the system trust store (default: the system trust store)")
    p.add_argument("--client-cert", metavar="FILE",
                   help="PEM client certificate for a wallet that asks for one, mutual TLS (default: none)")
    p.add_argument("--client-key", metavar="FILE",
                   help="PEM private key of --client-cert, unencrypted (default: the key in --client-cert's file)")
    p.add_argument("--insecure", action="store_true",
                   help="do not verify the wallet's TLS certificate at all: sandboxes only, warned about on every "
                        "run (default: verify)")


def client_tls(args: argparse.Namespace, warn: bool = True) -> ClientTLS:
    """The TLS options of ``args``, checked (each file read and loaded once: :class:`TLSError`, exit code 2,
    for one that cannot be used); ``--insecure`` is said loudly on stderr unless ``warn`` is false (a
    worker process whose parent already said it)."""
    tls = ClientTLS(ca_bundle=getattr(args, "ca_bundle", None), client_cert=getattr(args, "client_cert", None),
                    client_key=getattr(args, "client_key", None), insecure=bool(getattr(args, "insecure", False)))
    tls.context()
    if tls.insecure and warn:
        print(f"croupier: {INSECURE_WARNING}", file=sys.stderr, flush=True)
    return tls


def server_tls_args(p: argparse.ArgumentParser, what: str) -> None:
    """``--tls-cert`` and ``--tls-key``: serve HTTPS instead of plain HTTP."""
    p.add_argument("--tls-cert", metavar="FILE",
                   help=f"serve {what} over HTTPS with this PEM certificate (chain) (default: plain HTTP)")
    p.add_argument("--tls-key", metavar="FILE",
                   help="PEM private key of --tls-cert, unencrypted (default: the key in --tls-cert's file)")


def server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server context of ``--tls-cert``/``--tls-key`` (None: plain HTTP); :class:`TLSError` for a bad file."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if key and not cert:
        raise TLSError("--tls-key needs --tls-cert (the certificate the key belongs to)")
    return server_context(cert, key) if cert else None


def url_problem(flag: str, url: str) -> str | None:
    """Why ``url`` (given as ``flag``) is not an http(s) base URL; ``None`` if it is."""
    from urllib.parse import urlsplit

    example = "http://127.0.0.1:8080" + ("/wallet" if flag in ("--wallet", "--upstream") else "")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"{flag} must be an http(s) URL such as {example}, got {url!r} ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{flag} must be an http(s) URL such as {example}, got {url!r}"
    return None
