"""The rows a wallet store keeps, as plain values shared by every store."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.calls import Op


@dataclass(frozen=True, slots=True)
class PlayerRow:
    player_id: str
    currency: str
    balance: int
    blocked: bool = False


@dataclass(frozen=True, slots=True)
class LaunchToken:
    token: str
    player_id: str
    ttl_s: int
    created_at: float
    session_token: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_token: str
    player_id: str
    game_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class RoundRow:
    player_id: str
    round_id: str
    game_id: str
    closed: bool
    live_bets: int
    """Accepted bets of the round that have not been rolled back."""


@dataclass(frozen=True, slots=True)
class TxRow:
    """One accepted transaction (or an admin deposit, whose ``tx_id`` is None).

    ``amount`` is the amount the *call* carried (None for a rollback); ``delta`` is
    what it did to the balance (a no-op rollback has delta 0).  Replays are judged
    on the first, reports are built from the second.
    """

    wallet_tx_id: str
    tx_id: str | None
    op: str
    player_id: str
    game_id: str | None
    round_id: str | None
    currency: str
    amount: int | None
    ref_tx_id: str | None
    reason: str | None
    round_closed: bool | None
    delta: int
    balance_after: int
    rolled_back: bool
    created_at: float

    def replay_key(self) -> tuple[object, ...]:
        """Comparable with :meth:`simulator.protocol.calls.WalletCall.replay_key`."""
        if self.op == Op.ROLLBACK:
            return (Op.ROLLBACK, self.player_id, self.round_id, None, None, self.ref_tx_id)
        return (Op(self.op), self.player_id, self.round_id, self.amount, self.currency, self.ref_tx_id)

    def to_json(self) -> dict[str, object]:
        return {
            "wallet_tx_id": self.wallet_tx_id,
            "tx_id": self.tx_id,
            "op": self.op,
            "player_id": self.player_id,
            "game_id": self.game_id,
            "round_id": self.round_id,
            "currency": self.currency,
            "amount": self.amount,
            "ref_tx_id": self.ref_tx_id,
            "reason": self.reason,
            "round_closed": self.round_closed,
            "delta": self.delta,
            "balance_after": self.balance_after,
            "rolled_back": self.rolled_back,
            "created_at": self.created_at,
        }


TX_COLUMNS = tuple(TxRow.__dataclass_fields__)
