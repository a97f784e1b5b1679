"""An in-memory store for tests and throwaway sandboxes (nothing survives the process)."""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from .records import LaunchToken, PlayerRow, RoundRow, SessionRow, TxRow
from .store import RepoStore

T = TypeVar("T")
_MISSING: Any = object()


class MemoryRepo:
    """Dicts with an undo journal, so a failed call leaves no half-written state."""

    def __init__(self) -> None:
        self.players: dict[str, PlayerRow] = {}
        self.launch_tokens: dict[str, LaunchToken] = {}
        self.sessions: dict[str, SessionRow] = {}
        self.txs: list[TxRow] = []
        self.by_tx_id: dict[str, int] = {}
        self.tombstones: dict[str, str] = {}
        self.rounds: dict[tuple[str, str], RoundRow] = {}
        self.journal: list[Callable[[], None]] = []

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        old = table.get(key, _MISSING)
        self.journal.append(lambda: table.__setitem__(key, old) if old is not _MISSING else table.pop(key))
        table[key] = value

    def player(self, player_id: str) -> PlayerRow | None:
        return self.players.get(player_id)

    def insert_player(self, row: PlayerRow, now: float) -> None:
        self._put(self.players, row.player_id, row)

    def set_balance(self, player_id: str, balance: int) -> None:
        self._put(self.players, player_id, dataclasses.replace(self.players[player_id], balance=balance))

    def set_blocked(self, player_id: str, blocked: bool) -> None:
        self._put(self.players, player_id, dataclasses.replace(self.players[player_id], blocked=blocked))

    def launch_token(self, token: str) -> LaunchToken | None:
        return self.launch_tokens.get(token)

    def insert_launch_token(self, row: LaunchToken) -> None:
        self._put(self.launch_tokens, row.token, row)

    def bind_session(self, token: str, session_token: str) -> None:
        row = self.launch_tokens[token]
        self._put(self.launch_tokens, token, dataclasses.replace(row, session_token=session_token))

    def session(self, session_token: str) -> SessionRow | None:
        return self.sessions.get(session_token)

    def insert_session(self, row: SessionRow) -> None:
        self._put(self.sessions, row.session_token, row)

    def tx(self, tx_id: str) -> TxRow | None:
        i = self.by_tx_id.get(tx_id)
        return None if i is None else self.txs[i]

    def insert_tx(self, row: TxRow) -> str:
        wallet_tx_id = str(len(self.txs) + 1)
        self.txs.append(dataclasses.replace(row, wallet_tx_id=wallet_tx_id))
        self.journal.append(self._drop_last_tx)
        if row.tx_id is not None:
            self._put(self.by_tx_id, row.tx_id, len(self.txs) - 1)
        return wallet_tx_id

    def _drop_last_tx(self) -> None:
        self.txs.pop()

    def mark_rolled_back(self, tx_id: str) -> None:
        i = self.by_tx_id[tx_id]
        old = self.txs[i]
        self.txs[i] = dataclasses.replace(old, rolled_back=True)
        self.journal.append(lambda: self.txs.__setitem__(i, old))

    def is_tombstoned(self, tx_id: str) -> bool:
        return tx_id in self.tombstones

    def insert_tombstone(self, tx_id: str, rollback_tx_id: str, now: float) -> None:
        self._put(self.tombstones, tx_id, rollback_tx_id)

    def round(self, player_id: str, round_id: str) -> RoundRow | None:
        return self.rounds.get((player_id, round_id))

    def save_round(self, row: RoundRow) -> None:
        self._put(self.rounds, (row.player_id, row.round_id), row)


class MemoryStore(RepoStore):
    """Serialized by the event loop itself: ``run`` never awaits between read and write."""

    name = "memory"

    def __init__(self) -> None:
        self.repo = MemoryRepo()

    async def run(self, fn: Callable[[MemoryRepo], T]) -> T:
        self.repo.journal.clear()
        try:
            return fn(self.repo)
        except BaseException:
            for undo in reversed(self.repo.journal):
                undo()
            raise
        finally:
            self.repo.journal.clear()

    async def list_players(self, limit: int, after: str | None = None) -> list[PlayerRow]:
        players = self.repo.players
        ids = heapq.nsmallest(limit, (k for k in players if after is None or k > after))
        return [players[k] for k in ids]

    async def transactions(
        self, player_id: str | None = None, since: float | None = None, until: float | None = None,
        after: int = 0,
    ) -> AsyncIterator[TxRow]:
        for row in list(self.repo.txs[after:]):
            if player_id is not None and row.player_id != player_id:
                continue
            if since is not None and row.created_at < since:
                continue
            if until is not None and row.created_at >= until:
                continue
            yield row
