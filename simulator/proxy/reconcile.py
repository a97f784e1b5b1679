"""The proxy's report: the ledger's findings and, per player, each side's view of the money.

Per player: what the provider was told (the answers it read: bets charged, refunds, wins paid), what
the wallet answered (every answer, read or not), the balances the wallet reported first and last, and —
at the end — its balance read through the protocol.  Where the two sides' views differ, a response was
lost on the way (a fault, or the network): that is what the provider's rollbacks and retries must
settle, and the ledger judges whether they did.  Pure: the server reads the balances, this shapes them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from .. import __version__
from ..protocol.calls import Ok, Outcome, Rejected
from ..protocol.findings import Severity
from ..report import model
from .watch import Watch

VERSION = 1


class Observed(Protocol):
    """What the report reads of a running proxy."""

    watch: Watch
    upstream: str
    started: float
    forwarded: int
    undecoded: int

    @property
    def injected(self) -> Mapping[str, int]: ...


def _balance(outcome: Outcome | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    if isinstance(outcome, Ok):
        return {"balance": outcome.balance.minor, "currency": outcome.balance.currency.code}
    if isinstance(outcome, Rejected):
        return {"error": str(outcome.code), "message": outcome.message}
    return {"error": "unknown", "message": outcome.reason}


def players_json(watch: Watch, balances: Mapping[str, Outcome] | None = None) -> list[dict[str, Any]]:
    out = []
    for pid in sorted(watch.tallies):
        t = watch.tallies[pid]
        if not t.calls and t.last_balance is None:
            continue
        book = watch.ledger.books.get(pid)
        provider, wallet = t.provider.to_json(), t.wallet.to_json()
        read = (balances or {}).get(pid)
        expected = None if book is None or book.doubt or book.tainted else book.expected
        out.append({
            "player_id": pid, "currency": t.currency, "provider": provider, "wallet": wallet,
            "sides_agree": provider["net"] == wallet["net"],
            "answers_not_read": sorted(t.wallet.tx_ids() - t.provider.tx_ids()),
            "first_balance": t.first_balance, "last_balance": t.last_balance, "expected_balance": expected,
            "in_doubt": sorted(book.doubt) if book is not None else [],
            "balance_at_end": _balance(read),
            "balance_agrees": None if expected is None or not isinstance(read, Ok) else read.balance.minor == expected,
        })
    return out


def report_json(proxy: Observed, balances: Mapping[str, Outcome] | None = None) -> dict[str, Any]:
    """The report as JSON, in the shape of ``croupier run``'s (:func:`simulator.run.result.result_json`) where
    they share a meaning — verdict, anomalies, findings, coverage — so the same JUnit and HTML renderers
    read it; plus the proxy's own: requests, faults injected and each player's reconciliation."""
    ledger = proxy.watch.ledger
    counts = {str(k): v for k, v in ledger.counts.items()}
    return {
        "croupier_proxy_report": VERSION,
        "verdict": model.verdict(counts, Severity.CONTRACT),
        "error": None,
        "fail_on": str(Severity.CONTRACT),
        "scenario": "proxy",
        "wallet": proxy.upstream,
        "dialect": proxy.watch.dialect_name,
        "started": proxy.started,
        "elapsed_s": round(time.time() - proxy.started, 3),
        "calls": {"forwarded": proxy.forwarded, "undecoded": proxy.undecoded, "money": ledger.money_sent},
        "faults_injected": dict(proxy.injected),
        "anomaly_count": model.failing(counts, Severity.CONTRACT),
        "notes": ledger.count(Severity.NOTE),
        "findings_by_severity": model.by_severity(counts),
        "anomalies": counts,
        "findings": [f.to_json() for f in ledger.findings],
        "coverage": model.coverage_rows(ledger.coverage_json(), Severity.CONTRACT),
        "in_doubt": len(ledger.in_doubt()),
        "croupier_version": __version__,
        "players": players_json(proxy.watch, balances),
    }
