"""croupier's Locust file: players on a wallet (or through the mock provider), a load shape, a verdict.

    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 1m \
        --croupier-scenario steady --croupier-wallet http://127.0.0.1:8080/wallet

``croupier load`` runs this file for you (as a subprocess, so gevent never patches the
croupier process), with Locust's CSV and HTML reports, local workers and thresholds.
Settings are Locust custom arguments (``--croupier-*``, see ``locust -f … --help``): the
master sends them to every worker.  A load shape is chosen with ``CROUPIER_SHAPE=NAME`` on the
master (ramp, step, spike, soak, evening-peak).  See loadtests/README.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # the repository root: `simulator` and `loadtests` import from a checkout too
    sys.path.insert(0, _ROOT)

from locust import events

from loadtests import process, settings
from loadtests.users import LiveTable, WalletPlayer
from loadtests.via_provider import ProviderPlayer

__all__ = ["LiveTable", "ProviderPlayer", "WalletPlayer"]

if _shape := os.environ.get("CROUPIER_SHAPE", "").strip():
    from loadtests.shapes import named

    Shape = named(_shape)


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _arguments(parser: Any) -> None:
    settings.add_arguments(parser)


@events.init.add_listener  # type: ignore[untyped-decorator]
def _init(environment: Any, **_: Any) -> None:
    process.on_init(environment, {"WalletPlayer": WalletPlayer, "LiveTable": LiveTable,
                                  "ProviderPlayer": ProviderPlayer})
