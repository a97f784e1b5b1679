"""The storage interface of the reference wallet.

A store answers protocol calls and admin requests atomically and durably: when
one of its coroutines returns, what it decided is committed.  SQL and locking
live inside each store; the rules live in :mod:`.rules` and are shared.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from ..protocol.calls import Outcome, Rejected, WalletCall
from . import engine
from .records import PlayerRow, TxRow

T = TypeVar("T")


class StoreUnavailable(RuntimeError):
    """The store cannot be reached right now (database down, restarting): outcome unknown, answer 503."""


class Store(abc.ABC):
    """What the wallet service needs from storage."""

    name: str = "store"

    async def open(self) -> None:
        """Create or migrate the schema and get ready to serve."""

    async def close(self) -> None:
        """Finish what was submitted and release resources."""

    @abc.abstractmethod
    async def execute(self, call: WalletCall, now: float) -> Outcome:
        """Answer a protocol call; a success is durable when this returns."""

    @abc.abstractmethod
    async def create_player(self, player_id: str, currency: str, balance: int, now: float) -> PlayerRow | Rejected: ...

    @abc.abstractmethod
    async def get_player(self, player_id: str) -> PlayerRow | None: ...

    @abc.abstractmethod
    async def list_players(self, limit: int, after: str | None = None) -> list[PlayerRow]:
        """At most ``limit`` players whose id sorts after ``after`` (code-point order), in id order."""

    @abc.abstractmethod
    async def deposit(self, player_id: str, amount: int, now: float) -> PlayerRow | Rejected: ...

    @abc.abstractmethod
    async def set_blocked(self, player_id: str, blocked: bool) -> PlayerRow | Rejected: ...

    @abc.abstractmethod
    async def issue_token(self, player_id: str, ttl_s: int, now: float) -> str | Rejected: ...

    @abc.abstractmethod
    def transactions(
        self, player_id: str | None = None, since: float | None = None, until: float | None = None,
        after: int = 0,
    ) -> AsyncIterator[TxRow]:
        """Every recorded transaction in ``wallet_tx_id`` order, streamed in pages."""

    async def ready(self) -> bool:
        """Whether the store can serve right now (for ``/healthz``)."""
        return True


class RepoStore(Store):
    """A store whose writes run through :mod:`.engine` on a synchronous repository."""

    @abc.abstractmethod
    async def run(self, fn: Callable[[engine.Repo], T]) -> T:
        """Run ``fn`` in one committed transaction, serialized with every other write."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        return await self.run(lambda repo: engine.execute(repo, call, now))

    async def create_player(self, player_id: str, currency: str, balance: int, now: float) -> PlayerRow | Rejected:
        return await self.run(lambda repo: engine.create_player(repo, player_id, currency, balance, now))

    async def get_player(self, player_id: str) -> PlayerRow | None:
        return await self.run(lambda repo: repo.player(player_id))

    async def deposit(self, player_id: str, amount: int, now: float) -> PlayerRow | Rejected:
        return await self.run(lambda repo: engine.deposit(repo, player_id, amount, now))

    async def set_blocked(self, player_id: str, blocked: bool) -> PlayerRow | Rejected:
        return await self.run(lambda repo: engine.set_blocked(repo, player_id, blocked))

    async def issue_token(self, player_id: str, ttl_s: int, now: float) -> str | Rejected:
        return await self.run(lambda repo: engine.issue_token(repo, player_id, ttl_s, now))
