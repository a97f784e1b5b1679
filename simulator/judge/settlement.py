"""The end of a run: how a provider settles the calls still in doubt (PROTOCOL.md).

One rule for every driver — the asyncio runner (``Runner._settle``) and Locust's gevent
driver (``loadtests.process.Croupier.settle_in_doubt``) both take their steps from here:

* wins (and rollbacks) first, re-sent as they are: a batch's win that stands closed its round;
* then bets: rolled back, except a bet whose round a standing win closed (it went in one
  request with that win, so it must have stood too, and its rollback would be refused with
  ``ROUND_CLOSED``): that bet is asked for again, as it is; so is an invalid bet on a closed
  round (its answer, a replay or a refusal, says whether it ever landed);
* a call due to be refused is sent again with the codes it may be refused with;
* each until a definitive answer, with patient retries and no injected faults; the drivers
  bound the whole settlement by a deadline (``[run] settle_timeout_s``).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Generator, Iterable

from ..play.faults import FaultPlan
from ..play.rounds import LIVE_SESSION, RetryPolicy, RoundContext, Seat, Send, Step, TxIds, settle
from ..protocol.calls import Op, Outcome, WalletCall
from ..protocol.dialects.semantics import CANONICAL, Semantics
from .ledger import SETTLES, Book, Tx, TxState

PATIENT = RetryPolicy(max_attempts=20, base_s=0.05, cap_s=2.0)
"""Settlement waits out a slow wallet."""
CALM = FaultPlan()
"""Settlement injects no faults."""


def in_order(doubtful: Iterable[tuple[Book, Tx]]) -> list[tuple[Book, Tx]]:
    """Wins and rollbacks before bets (a bet's settlement depends on whether a win closed its round)."""
    return sorted(doubtful, key=lambda bt: bt[1].call.op is Op.BET)


def closed_by_a_win(book: Book, round_id: str | None) -> bool:
    """Whether a win that closes round ``round_id`` stands (a batch's bet in doubt is then known to stand)."""
    return any(t.call.op is Op.WIN and t.call.round_closed and t.call.round_id == round_id
               and t.state is TxState.APPLIED for t in book.txs.values())


def settle_call(book: Book, tx: Tx, seat: Seat, ids: TxIds, semantics: Semantics = CANONICAL) -> WalletCall:
    """The call that settles ``tx``: a rollback of a bet, or the call itself again (on the seat's
    session of now where the dialect's wins need a live session: the game may have been launched
    again since; the session is none of the fields a replay is compared by)."""
    call = tx.call
    if call.op is Op.BET:
        if tx.due is not None:
            if call.round_id not in book.closed_rounds:
                return _rollback(call, seat, ids)
        elif not closed_by_a_win(book, call.round_id):
            return _rollback(call, seat, ids)
    elif semantics.wins_need_live_session and call.session_token != seat.session_token:
        return dataclasses.replace(call, session_token=seat.session_token, session_ref=seat.session_ref)
    return call


def _rollback(bet: WalletCall, seat: Seat, ids: TxIds) -> WalletCall:
    """The rollback of ``bet``, with its amount (a dialect whose rollbacks carry it sends it)."""
    return WalletCall(Op.ROLLBACK, player_id=seat.player_id, session_token=seat.session_token,
                      game_id=bet.game_id or "", tx_id=ids.tx(), round_id=bet.round_id or "", amount=bet.amount,
                      ref_tx_id=bet.tx_id or "", session_ref=seat.session_ref)


def settlement(book: Book, tx: Tx, seat: Seat, ids: TxIds,
               semantics: Semantics = CANONICAL) -> Generator[Step, object, Outcome]:
    """The steps that settle ``tx`` (for any driver's ``drive``).  Where the dialect's wins need a live
    session and the seat's may have ended, a win or rollback exercises that rule (a ``SESSION_EXPIRED``
    refusal is then allowed) rather than the settlement's."""
    ctx = RoundContext(seat, tx.call.game_id or "", random.Random(0), ids, CALM, PATIENT, semantics=semantics)
    call = settle_call(book, tx, seat, ids, semantics)
    due = tx.due if call.tx_id == tx.call.tx_id and call.op is tx.call.op else None
    rule = LIVE_SESSION if semantics.wins_need_live_session and call.op is not Op.BET and seat.maybe_expired() \
        else SETTLES
    return settle(ctx, Send(call, expect=due, purpose="settle", rule=rule))
