"""The mock game provider (operator-facing): what an operator's platform integrates with.

A game catalog, game launch against the operator's wallet (``authenticate``),
a playable game page, one round per ``POST /play`` through the same round
generators, driver and ledger as ``croupier run``, round history, and the
provider-side transaction log for reconciliation.  Modules: ``lobby`` (the
games), ``state`` (what is remembered), ``engine`` (launch and play),
``service`` (HTTP), ``pages`` (HTML), ``server`` (configuration and serving).
"""

from __future__ import annotations

from .service import make_app
from .state import ProviderConfig

__all__ = ["ProviderConfig", "make_app"]
