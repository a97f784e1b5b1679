"""The wallet's own export against croupier's record of what it sent (``--export``).

An export is JSON lines or CSV with, at least, the columns ``tx_id``, ``player_id``, ``op`` and ``amount``
(the reference wallet's ``GET /admin/transactions`` has them; ``currency`` and ``rolled_back`` are read
where present; other columns are ignored).  Only the players croupier played are compared, so an export
of the whole wallet will do.

What must hold, transaction by transaction:

* what the wallet accepted (``applied``) is in the export, as the same operation, amount and currency;
* what the wallet refused is not: PROTOCOL.md, Idempotency, rule 3 ("A rejected call is not recorded");
* a bet rolled back before it landed (a tombstone) never appears as a bet;
* the export names no bet or win of these players that croupier never sent.

A call still in doubt proves nothing either way and is not compared.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ..protocol.findings import RULES

MONEY = frozenset({"bet", "win", "rollback"})


class ExportError(ValueError):
    """An export that cannot be read (said as the item's failure, never a traceback)."""


def parse(data: bytes) -> list[dict[str, Any]]:
    """JSON lines or CSV (told apart by the first character), as dicts."""
    text = data.decode("utf-8-sig", "replace").strip()
    if not text:
        return []
    if text.startswith("{"):
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ExportError(f"line {n} is not JSON ({exc})") from None
            if not isinstance(row, dict):
                raise ExportError(f"line {n} is not a JSON object")
            rows.append(row)
        return rows
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"tx_id", "player_id", "op", "amount"} <= {f.strip() for f in reader.fieldnames}:
        raise ExportError("a CSV export needs the columns tx_id, player_id, op and amount")
    return [{k.strip(): v for k, v in row.items() if k is not None} for row in reader]


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _yes(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def compare(sent: Iterable[Mapping[str, Any]], exported: Iterable[Mapping[str, Any]], source: str) -> dict[str, Any]:
    """The comparison's report (:func:`simulator.certify.checklist.reporting` judges it)."""
    mine = [r for r in sent if r.get("op") in MONEY]
    players = {str(r["player_id"]) for r in mine}
    rows: dict[tuple[str, str], Mapping[str, Any]] = {}
    for line in exported:
        if str(line.get("player_id")) in players and str(line.get("op")) in MONEY and line.get("tx_id"):
            rows[(str(line["player_id"]), str(line["tx_id"]))] = line
    problems: list[dict[str, Any]] = []
    matched = missing = different = 0
    known = set()
    for tx in mine:
        key = (str(tx["player_id"]), str(tx["tx_id"]))
        known.add(key)
        row = rows.get(key)
        state = tx.get("state")
        if state == "applied":
            if row is None:
                missing += 1
                problems.append({"problem": "missing", "tx": dict(tx),
                                 "why": "the wallet accepted it, the export does not have it"})
                continue
            diff = _differs(tx, row)
            if diff:
                different += 1
                problems.append({"problem": "different", "tx": dict(tx), "export": dict(row), "why": diff})
            else:
                matched += 1
        elif state == "refused" and row is not None:
            problems.append({"problem": "refused but recorded", "tx": dict(tx), "export": dict(row),
                             "rule": "idempotency-3-rejected-not-recorded",
                             "quote": RULES["idempotency-3-rejected-not-recorded"].text,
                             "why": "the wallet refused it, yet its export records it"})
        elif state == "tombstoned" and row is not None and str(row.get("op")) == "bet" and not _yes(
                row.get("rolled_back")):
            problems.append({"problem": "tombstoned bet recorded", "tx": dict(tx), "export": dict(row),
                             "rule": "idempotency-5-tombstone", "quote": RULES["idempotency-5-tombstone"].text,
                             "why": "a bet rolled back before it landed appears in the export as a bet that stands"})
    unexpected = [dict(r) for key, r in rows.items() if key not in known and str(r.get("op")) in ("bet", "win")]
    for extra in unexpected[:50]:
        problems.append({"problem": "unexpected", "export": extra,
                         "why": "the export has a bet or win of croupier's players that croupier never sent"})
    return {"source": source, "rows": len(rows), "players": len(players), "matched": matched, "missing": missing,
            "different": different, "unexpected": len(unexpected), "problems": problems}


def _differs(tx: Mapping[str, Any], row: Mapping[str, Any]) -> str | None:
    """Why the export's row is not the transaction croupier knows (None: it is)."""
    if str(row.get("op")) != tx["op"]:
        return f"exported as {row.get('op')}, sent as {tx['op']}"
    if tx["op"] in ("bet", "win"):
        amount = _int(row.get("amount"))
        if amount != tx.get("amount"):
            return f"amount {row.get('amount')!r} in the export, {tx.get('amount')} sent and accepted"
    if row.get("currency") not in (None, "") and tx.get("currency") and str(row["currency"]) != tx["currency"]:
        return f"currency {row['currency']} in the export, {tx['currency']} sent"
    return None
