"""The end of play, written once: late duplicates drained, what is in doubt settled, balances read again.

``croupier run`` ends its whole run with these flows (each step bounded, and cut shorter by an
interrupt); a Locust user ends each player it retires with them, and the process's sweep the
players no user finished.  What a provider must do with a call left in doubt is
:mod:`simulator.judge.settlement`'s; here it is carried out for many players: players at once, each
player's calls in order, passes until nothing is in doubt or the deadline comes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from ..judge import settlement
from ..judge.ledger import Book, Tx
from ..play.rounds import Seat, TxIds
from ..protocol.dialects.semantics import Semantics
from .delivery import Courier, Flow, Gather, Quiesce, held

PASSES = 3
"""Settlement passes: a rollback's answer may leave its bet in doubt again (a refusal that needs the
bet asked again), so what one pass leaves is settled by the next."""


def drain_late(courier: Courier, players: Iterable[str]) -> Flow[None]:
    """Every late duplicate still queued goes out now, each player's alone, players at once."""
    if courier.late is None:
        return
    yield Gather(tuple(held(courier.late_duplicates(pid, drain=True)) for pid in players))


def settle(courier: Courier, seats: Mapping[str, Seat], semantics: Semantics, ids: Callable[[str], TxIds],
           rounds: Counter[str], deadline: float, give_up: Callable[[], bool] = lambda: False) -> Flow[bool]:
    """Settle these players' calls still in doubt as a provider must: players at once, each player's
    calls in order (wins and rollbacks re-sent, then bets rolled back), then the answers left running
    awaited, in passes.  ``ids``: a player's transaction ids for the settlement's own calls; ``deadline``
    on ``courier.clock``; ``give_up``: stop now (a second interrupt).  True when nothing they had is in
    doubt any more, False when the deadline (or ``give_up``) cut it short."""

    def player(seat: Seat, txs: list[tuple[Book, Tx]]) -> Flow[None]:
        mine = ids(seat.player_id)
        for book, tx in txs:
            if courier.clock() >= deadline or give_up():
                return
            if tx.call.tx_id not in book.doubt:
                continue  # settled meanwhile (its rollback's answer settled the bet too)
            rounds["settled_at_end"] += 1
            yield from courier.drive(settlement.settlement(book, tx, seat, mine, semantics))

    for _ in range(PASSES):
        doubtful = in_doubt(courier, seats)
        if not doubtful:
            return True
        by_player: dict[str, list[tuple[Book, Tx]]] = {}
        for book, tx in settlement.in_order(doubtful):
            by_player.setdefault(book.player_id, []).append((book, tx))
        yield Gather(tuple(held(player(seats[pid], txs)) for pid, txs in by_player.items()))
        yield Quiesce(max(0.1, deadline - courier.clock()))
        if courier.clock() >= deadline or give_up():
            return not in_doubt(courier, seats)
    return not in_doubt(courier, seats)


def in_doubt(courier: Courier, seats: Mapping[str, Seat]) -> list[tuple[Book, Tx]]:
    """These players' calls still in doubt."""
    return [(b, tx) for b, tx in courier.ledger.in_doubt() if b.player_id in seats]


def flag_left(courier: Courier, seats: Mapping[str, Seat], why: str = "") -> int:
    """What is still in doubt after the settlement: a ``no_definitive_answer`` finding each; how many."""
    left = in_doubt(courier, seats)
    for book, tx in left:
        courier.ledger.flag_unsettled(book, tx, why)
    return len(left)


def reconcile(courier: Courier, seats: Iterable[Seat]) -> Flow[list[str]]:
    """Every player's balance read once more, alone for that player, players at once, and compared
    with what the wallet must hold; returns why reads failed (a mismatch is the ledger's finding)."""
    failed = yield Gather(tuple(held(courier.reconcile(seat)) for seat in seats))
    assert isinstance(failed, list)
    return [f for f in failed if f is not None]
