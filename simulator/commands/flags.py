"""Command-line pieces several commands share: argument types, the flags that name a wallet's wire and
credentials, and how those credentials are resolved (flag, then environment, then the development value).

Written once so that ``run``, ``load`` and ``check`` spell, document and resolve ``--secret`` and
``--admin-token`` alike; a change of default or wording reaches every command.
"""

from __future__ import annotations

import argparse
import os

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
