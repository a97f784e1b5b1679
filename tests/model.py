"""The protocol model the state machines judge the wallet by: it lives in :mod:`simulator.check.model`.

It moved there so that ``croupier check`` (the product) and these tests share one
model; this module re-exports it under its old name.
"""

from simulator.check.model import (
    Expected,
    ExpectedOk,
    ExpectedRejected,
    MLaunchToken,
    MPlayer,
    MRound,
    MSession,
    MTx,
    Totals,
    WalletModel,
    call_key,
)

__all__ = [
    "Expected", "ExpectedOk", "ExpectedRejected", "MLaunchToken", "MPlayer", "MRound", "MSession", "MTx",
    "Totals", "WalletModel", "call_key",
]
