"""croupier's own record of every transaction it sent, and what the wallet made of it.

A wallet's export (the reference wallet's ``GET /admin/transactions``, or an operator's report) is checked
against this record (``croupier certify``'s "Reporting verified"): what croupier knows as applied must be
in the export with its amount, what the wallet refused must not (PROTOCOL.md, Idempotency, rule 3: "A
rejected call is not recorded"), and a call still in doubt proves nothing either way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from ..protocol.calls import MONEY_OPS
from .ledger import Ledger


def records(ledger: Ledger) -> Iterator[dict[str, Any]]:
    """One plain dict per money transaction of every book: ids, operation, amount, and its state as the
    ledger judged it (``applied``, ``refused``, ``rolled_back``, ``tombstoned``, ``doubt``).  A ledger that
    drops what it retires (``keep_all=False``) has only the transactions still held: a run that exports
    them keeps them all."""
    for book in ledger.books.values():
        for tx in itertools.chain(book.retired.values(), book.txs.values()):
            call = tx.call
            if call.op not in MONEY_OPS:
                continue
            yield {"tx_id": call.tx_id, "player_id": call.player_id, "op": str(call.op),
                   "amount": call.amount.minor if call.amount is not None else None,
                   "currency": call.amount.currency.code if call.amount is not None else book.currency,
                   "round_id": call.round_id, "ref_tx_id": call.ref_tx_id, "state": str(tx.state),
                   "wallet_tx_id": tx.wallet_tx_id}
