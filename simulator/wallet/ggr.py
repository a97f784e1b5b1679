"""Gross gaming revenue by game, currency and day, from the transaction log alone.

Pure: it folds :class:`TxRow`s, so every store reports the same figures from the
same log.  GGR = stakes − refunds − wins, in minor units of each currency (never
summed across currencies).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from .records import TxRow


@dataclass(slots=True)
class GgrLine:
    game_id: str
    currency: str
    day: str
    bets: int = 0
    bet_amount: int = 0
    wins: int = 0
    win_amount: int = 0
    rollbacks: int = 0
    refund_amount: int = 0

    @property
    def ggr(self) -> int:
        return self.bet_amount - self.refund_amount - self.win_amount

    def to_json(self) -> dict[str, object]:
        return {
            "game_id": self.game_id,
            "currency": self.currency,
            "day": self.day,
            "bets": self.bets,
            "bet_amount": self.bet_amount,
            "wins": self.wins,
            "win_amount": self.win_amount,
            "rollbacks": self.rollbacks,
            "refund_amount": self.refund_amount,
            "ggr": self.ggr,
        }


class GgrReport:
    """Accumulates rows as they stream, so a large log never sits in memory."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str, str], GgrLine] = {}

    def add(self, row: TxRow) -> None:
        if row.op not in ("bet", "win", "rollback"):
            return
        day = datetime.fromtimestamp(row.created_at, UTC).strftime("%Y-%m-%d")
        key = (row.game_id or "", row.currency, day)
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = GgrLine(*key)
        if row.op == "bet":
            line.bets += 1
            line.bet_amount += -row.delta
        elif row.op == "win":
            line.wins += 1
            line.win_amount += row.delta
        else:
            line.rollbacks += 1
            line.refund_amount += row.delta

    def extend(self, rows: Iterable[TxRow]) -> GgrReport:
        for row in rows:
            self.add(row)
        return self

    def to_json(self) -> list[dict[str, object]]:
        return [self.lines[k].to_json() for k in sorted(self.lines)]
