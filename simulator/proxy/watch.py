"""Judging real traffic: the ledger ``croupier run`` uses, fed with what the proxy saw both ways.

On real traffic the proxy knows no player's opening balance, and the player's money moves outside the
games it sees (the cashier, the operator's other providers).  So, as the mock provider does
(:meth:`simulator.provider.engine.Provider._forget_balance`), the expected balance is forgotten
whenever nothing about it is in doubt before a new round, a balance read or a launch, and the wallet's
next answer is taken as the opening; within a round every answer is judged exactly.  What cannot be
known is never flagged.

Beside the ledger, each player's money as each side saw it (:class:`Tally`): what the provider was
told (the answers it read) and what the wallet answered (every answer, read or not: a lost response
is one the provider never read), for the reconciliation report.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..judge.ledger import LIVE_SESSION, R5, Anomaly, Ledger, Seen
from ..play.faults import Due
from ..protocol.calls import MONEY_OPS, Ok, Op, Outcome, WalletCall
from ..protocol.dialects import Dialect, semantics_of
from .dues import due_of


@dataclass(slots=True)
class Side:
    """Money calls one side saw acknowledged, by tx_id (each counted once however often it was sent)."""

    bets: dict[str, int] = field(default_factory=dict)
    wins: dict[str, int] = field(default_factory=dict)
    rollbacks: dict[str, str] = field(default_factory=dict)
    """rollback tx_id → the bet it names."""

    def add(self, call: WalletCall) -> None:
        if call.tx_id is None:
            return
        if call.op is Op.BET and call.amount is not None:
            self.bets[call.tx_id] = call.amount.minor
        elif call.op is Op.WIN and call.amount is not None:
            self.wins[call.tx_id] = call.amount.minor
        elif call.op is Op.ROLLBACK and call.ref_tx_id is not None:
            self.rollbacks[call.tx_id] = call.ref_tx_id

    def to_json(self) -> dict[str, int]:
        """Charged, refunded (each bet this side saw charged, once, whatever the number of its rollbacks),
        paid and the net effect on the balance as this side understands it."""
        charged = sum(self.bets.values())
        refunded = sum(self.bets.get(bet, 0) for bet in set(self.rollbacks.values()))
        paid = sum(self.wins.values())
        return {"bets": len(self.bets), "charged": charged, "rollbacks": len(self.rollbacks), "refunded": refunded,
                "wins": len(self.wins), "paid": paid, "net": paid + refunded - charged}

    def tx_ids(self) -> set[str]:
        return {*self.bets, *self.wins, *self.rollbacks}


@dataclass(slots=True)
class Tally:
    """One player's money as the provider was told it and as the wallet answered it."""

    player_id: str
    currency: str | None = None
    provider: Side = field(default_factory=Side)
    wallet: Side = field(default_factory=Side)
    first_balance: int | None = None
    last_balance: int | None = None
    session_token: str | None = None
    """The last session token the provider used for the player (to read the balance at the end)."""
    calls: int = 0


class Watch:
    """The ledger over real traffic, plus each side's tallies."""

    def __init__(self, dialect: Dialect, shared_players: bool = False) -> None:
        self.shared_players = shared_players
        """The players' money may move through other providers *during* a round too: every call starts from
        the wallet's next answer, and only what needs no balance is judged (``--shared-players``)."""
        self.ledger = Ledger(semantics=semantics_of(dialect))
        self.dialect_name = dialect.name
        self.rounds: dict[str, set[str]] = {}
        self.tallies: dict[str, Tally] = {}
        self._dues: dict[int, Due] = {}
        """token → the refusal its call had earned when it was sent (:mod:`simulator.proxy.dues`)."""
        self.seen_txs: set[str] = set()
        """Every money call's tx_id the proxy saw requested, forwarded or not (an injected 5xx: the wallet never
        had it), from its arrival (a held call included)."""
        self.blind_rolled: dict[str, str] = {}
        """tx_id of a bet the proxy never saw → the rollback of it the wallet acknowledged (:meth:`_blind_bet`)."""
        self._blind_flight: dict[str, int] = {}
        """Calls not judged in flight, per player: a balance read while one is is not the player's alone."""
        self.blind: set[str] = set()
        """tx_ids of transactions that began before the proxy was there (:meth:`_blind`)."""
        self._stale: set[str] = set()
        """Players a call not judged moved money for, whose balance is to be taken afresh as soon as it can."""
        self._blind_start: dict[str, int | None] = {}
        """The balance the ledger expected when a call not judged began, if nothing else was going on."""
        self._sent: set[str] = set()
        """Every money call's tx_id sent to the wallet so far (a call sent again is no longer fresh)."""
        self._fresh: set[str] = set()
        """tx_ids of calls not judged, in flight, sent for the first time: each moves its amount or nothing."""

    def tally(self, player_id: str) -> Tally:
        t = self.tallies.get(player_id)
        if t is None:
            t = self.tallies[player_id] = Tally(player_id)
        return t

    def forget(self, player_id: str) -> bool:
        """The balance may have moved outside what the proxy sees: the next answer is the opening again
        (False: not now, something of the player's is in flight or in doubt)."""
        book = self.ledger.book(player_id)
        if not book.doubt and not book.in_flight:
            book.expected = None
            return True
        return False

    def _before(self, call: WalletCall) -> None:
        player = call.player_id
        if player is None:
            return
        tally = self.tally(player)
        tally.calls += 1
        if call.session_token:
            tally.session_token = call.session_token
        if call.op in MONEY_OPS and call.tx_id:
            self.seen_txs.add(call.tx_id)
        if player in self._stale and self.forget(player):
            self._stale.discard(player)
        if call.op is Op.BALANCE or self.shared_players:
            self.forget(player)
        elif call.op in MONEY_OPS and call.round_id is not None:
            rounds = self.rounds.setdefault(player, set())
            if call.round_id not in rounds:
                rounds.add(call.round_id)
                self.forget(player)

    def saw(self, calls: Sequence[WalletCall]) -> None:
        """Calls the proxy received (forwarded or not, held or not): a rollback of one of their bets is judged
        even when it reaches the wallet first; a rollback of a bet the proxy never saw is not (:meth:`_blind`)."""
        self.seen_txs.update(c.tx_id for c in calls if c.op in MONEY_OPS and c.tx_id)

    def _blind(self, call: WalletCall) -> bool:
        """Whether ``call`` belongs to a transaction that may have begun before the proxy was there: a rollback
        of a transaction it never saw (did the wallet have it? what does it refund?), that bet, that rollback
        sent again.  Such calls are judged only where both worlds agree (:meth:`_blind_bet`), and the player's
        balance is taken from their answers."""
        if call.tx_id is not None and call.tx_id in self.blind:
            return True
        if call.op is Op.ROLLBACK and call.ref_tx_id is not None and (
                call.ref_tx_id in self.blind or call.ref_tx_id not in self.seen_txs):
            self.blind.update(t for t in (call.ref_tx_id, call.tx_id) if t)
            return True
        return False

    def _session_rule(self, call: WalletCall) -> str | None:
        """On a dialect whose wins need a live session, a win or rollback may come after its session ended
        (the proxy cannot know when a session ends): a ``SESSION_EXPIRED`` refusal is then allowed.  Inside a
        batch too: "The actions are applied in the order listed, each as its own call under the normal rules
        (PROTOCOL.md)" (docs/dialects.md, Batches)."""
        if self.ledger.semantics.wins_need_live_session and call.op in (Op.WIN, Op.ROLLBACK):
            return LIVE_SESSION
        return None

    def begin(self, calls: Sequence[WalletCall]) -> list[int]:
        """Calls about to reach the wallet in one request; the tokens to pass to :meth:`end`."""
        for call in calls:
            self._before(call)
        blind = [self._blind(call) for call in calls]  # every call of a batch marked, not only up to the first
        sent = [c.tx_id for c in calls if c.op in MONEY_OPS and c.tx_id]
        if any(blind):
            self._fresh.update(t for t in sent if t not in self._sent)
            self._sent.update(sent)
            for player in {c.player_id for c in calls if c.player_id}:
                self._blind_flight[player] = self._blind_flight.get(player, 0) + 1
                book = self.ledger.book(player)
                solo = not book.in_flight and not book.doubt and self._blind_flight[player] == 1
                self._blind_start[player] = book.expected if solo else None
            return []
        self._sent.update(sent)
        dues = [due_of(self.ledger.books, call, self.ledger.semantics) for call in calls]
        tokens = self.ledger.begin_batch(calls, dues, [self._session_rule(c) for c in calls]) if len(calls) > 1 else \
            [self.ledger.begin(calls[0], expect=dues[0], rule=self._session_rule(calls[0]))]
        for token, due in zip(tokens, dues, strict=True):
            if due is not None:
                self._dues[token] = due
        return tokens

    def end(self, tokens: Sequence[int], calls: Sequence[WalletCall], outcomes: Sequence[Outcome], *,
            visible: bool, latency_ms: float | None, status: int | None, response: bytes | None) -> None:
        """What the wallet answered (``visible``: whether the provider got to read it)."""
        for call, outcome in zip(calls, outcomes, strict=True):
            self._after(call, outcome, visible)
        if not tokens:  # not judged (:meth:`_blind`) but where both worlds agree; the balance taken from its answer
            self._blind_end(calls, outcomes, visible, latency_ms, status, response)
            return
        if len(calls) > 1:
            dues = [self._dues.pop(t, None) for t in tokens]
            self.ledger.end_batch(tokens, calls, outcomes, visible=visible, latency_ms=latency_ms, status=status,
                                  response=response, expects=dues if any(dues) else None)
        else:
            self.ledger.end(tokens[0], calls[0], outcomes[0], expect=self._dues.pop(tokens[0], None),
                            visible=visible, latency_ms=latency_ms, status=status, response=response)

    def _blind_end(self, calls: Sequence[WalletCall], outcomes: Sequence[Outcome], visible: bool,
                   latency_ms: float | None, status: int | None, response: bytes | None) -> None:
        for player in {c.player_id for c in calls if c.player_id}:
            self._blind_flight[player] -= 1
            start = self._blind_start.pop(player, None)
            book = self.ledger.book(player)
            alone = not book.in_flight and not book.doubt and not self._blind_flight[player]
            last = outcomes[-1]
            if alone and start is not None and isinstance(last, Ok):
                self._blind_bet(calls, outcomes, last, start, (calls[-1], last, latency_ms, status, response, visible))
            if self.forget(player):
                self._stale.discard(player)
                if alone and isinstance(last, Ok) and "balance" not in last.missing and \
                        self._blind_flight[player] == 0:
                    book.expected = last.balance.minor  # the wallet's own word for the balance now
            else:
                self._stale.add(player)
        for call, outcome in zip(calls, outcomes, strict=True):
            if call.op is Op.ROLLBACK and isinstance(outcome, Ok) and call.ref_tx_id and call.tx_id:
                self.blind_rolled.setdefault(call.ref_tx_id, call.tx_id)
        fresh = self._fresh
        for call in calls:
            fresh.discard(call.tx_id or "")

    def _blind_bet(self, calls: Sequence[WalletCall], outcomes: Sequence[Outcome], answer: Ok, start: int,
                   seen: Seen) -> None:
        """A bet whose rollback the wallet acknowledged before the proxy ever saw the bet, now accepted.  Had the
        wallet taken it before the proxy was there, this is a replay: no change (rule 1); had it not, it is
        tombstoned: refused, no change (rule 5).  Either way the balance must not fall by its amount.

        In a batch only the last call's balance is on the wire; "The actions are applied in the order listed,
        each as its own call under the normal rules (PROTOCOL.md)" (docs/dialects.md, Batches), so the bet is
        judged where every other call of the batch was accepted and is a bet or a win sent for the first time
        (its amount moved, whatever the world): the balance must then not be the one the bet's debit gives."""
        rolled = [c for c in calls if c.op is Op.BET and c.amount is not None and c.amount.minor > 0
                  and c.tx_id in self.blind_rolled]
        if not rolled or "balance" in answer.missing or not all(isinstance(o, Ok) for o in outcomes):
            return
        moved = 0
        for call in calls:
            if call.op not in (Op.BET, Op.WIN) or call.amount is None:
                return
            if call not in rolled and call.tx_id not in self._fresh:
                return  # sent before: a replay may move nothing, what the balance should be is not known
            moved += -call.amount.minor if call.op is Op.BET else call.amount.minor
        if answer.balance.minor != start + moved:
            return
        for call in rolled:
            self.ledger.flag(Anomaly.ACCEPTED_AFTER_ROLLBACK, call.player_id or "",
                             f"bet {call.tx_id} taken (balance {start} → {answer.balance.minor}"
                             f"{' after the rest of its batch' if len(calls) > 1 else ''}) after the wallet "
                             f"acknowledged its rollback {self.blind_rolled[call.tx_id or '']}: a tombstoned bet is "
                             "refused and a replayed one changes nothing", [seen], R5)

    def _after(self, call: WalletCall, outcome: Outcome, visible: bool) -> None:
        if not isinstance(outcome, Ok):
            return
        player = call.player_id or outcome.player_id
        if player is None:
            return
        tally = self.tally(player)
        if call.op is Op.AUTHENTICATE:
            self.forget(player)  # a launch: the cashier may have moved the money since the last game
            if outcome.session_token:
                tally.session_token = outcome.session_token
            if "balance" in outcome.missing:
                return
        book = self.ledger.book(player)
        if book.currency is None and self.ledger.semantics.carries_currency:
            book.currency = outcome.balance.currency.code  # a player has exactly one currency (PROTOCOL.md, Money)
        tally.currency = tally.currency or outcome.balance.currency.code
        if tally.first_balance is None:
            tally.first_balance = outcome.balance.minor
        tally.last_balance = outcome.balance.minor
        if call.op in MONEY_OPS:
            tally.wallet.add(call)
            if visible:
                tally.provider.add(call)

    def summary(self) -> dict[str, Any]:
        return self.ledger.summary()
