"""The ledger: the oracle that knows what a wallet must say, and every way it did not.

For each player it keeps the balance the wallet must hold (``expected``), the
transactions whose effect is in doubt (an Unknown outcome: the call may or may
not have landed, Jepsen's *info*), and the anomalies seen, each with its
evidence (the exact calls, answers and timings).  It is pure: drivers tell it
what was sent (:meth:`Ledger.begin`) and what came back (:meth:`Ledger.end`),
including answers the provider itself never read (a lost response), which only
make the oracle sharper.

A balance is compared exactly only when nothing about it can be in doubt: no
in-doubt effect, and no other transaction of the player in flight during the
call (a concurrent duplicate of the *same* transaction does not count).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

from .calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall
from .codes import ErrorCode


class Anomaly(StrEnum):
    DOUBLE_APPLY = "double_apply"
    LOST_UPDATE = "lost_update"
    BALANCE_MISMATCH = "balance_mismatch"
    NEGATIVE_BALANCE = "negative_balance"
    ROLLBACK_NOT_APPLIED = "rollback_not_applied"
    ROLLBACK_APPLIED_TWICE = "rollback_applied_twice"
    ACCEPTED_AFTER_ROLLBACK = "accepted_after_rollback"
    REPLAY_CONTRADICTS_ORIGINAL = "replay_contradicts_original"
    ACCEPTED_INVALID_CALL = "accepted_invalid_call"
    REFUSED_VALID_CALL = "refused_valid_call"
    PROTOCOL_VIOLATION = "protocol_violation"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One exchange as the report shows it."""

    call: dict[str, Any]
    outcome: str
    latency_ms: float | None = None
    status: int | None = None
    response: str | None = None
    visible: bool = True


Seen: TypeAlias = tuple[WalletCall, Outcome, float | None, int | None, bytes | None, bool]
"""One exchange as it happened: (call, outcome, latency_ms, status, response, visible).

The ledger keeps every exchange but renders one (:func:`render`) only when a finding shows it:
the call, the answer and the bytes are immutable, so the rendering is the same whenever it is done.
"""


def render(seen: Evidence | Seen) -> Evidence:
    """The report's form of an exchange kept by the ledger."""
    if isinstance(seen, Evidence):
        return seen
    call, outcome, latency_ms, status, response, visible = seen
    return Evidence(_call_json(call), describe(outcome), None if latency_ms is None else round(latency_ms, 3),
                    status, None if response is None else response[:500].decode("utf-8", "replace"), visible)


@dataclass(slots=True)
class Finding:
    kind: Anomaly
    player_id: str
    message: str
    evidence: list[Evidence] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "player_id": self.player_id,
            "message": self.message,
            "evidence": [dataclasses.asdict(e) for e in self.evidence],
        }


class TxState(StrEnum):
    DOUBT = "doubt"
    APPLIED = "applied"
    REFUSED = "refused"
    ROLLED_BACK = "rolled_back"
    """A bet whose effect a rollback has cancelled (it may or may not have landed)."""
    TOMBSTONED = "tombstoned"
    """A bet rolled back before it was (known to be) sent: it must never be accepted."""


@dataclass(slots=True)
class Tx:
    call: WalletCall
    state: TxState
    delta: int
    wallet_tx_id: str | None = None
    evidence: list[Seen] = field(default_factory=list)
    """Every exchange of this transaction, rendered (:func:`render`) only when a finding shows it."""
    expect: ErrorCode | None = None


@dataclass(slots=True)
class Book:
    """One player's account as the wallet must keep it."""

    player_id: str
    currency: str | None = None
    expected: int | None = None
    doubt: dict[str, int] = field(default_factory=dict)
    """tx_id → delta of transactions that may or may not have landed."""
    txs: dict[str, Tx] = field(default_factory=dict)
    rollbacks_of: dict[str, str] = field(default_factory=dict)
    """bet tx_id → tx_id of the first acknowledged rollback."""
    rollbacks_sent: set[str] = field(default_factory=set)
    """bet tx_ids a rollback has been sent for (acknowledged or not)."""
    in_flight: dict[int, str] = field(default_factory=dict)
    """token → tx_id (or "" for balance/authenticate)."""
    overlapped: set[int] = field(default_factory=set)
    batch_of: dict[int, int] = field(default_factory=dict)
    """token → the first token of its batch, for calls sent together in one request (not overlapping)."""
    tainted: bool = False
    """An accepted invalid call moved money we cannot account for: stop judging balances."""
    last_reported: int | None = None


def _call_json(call: WalletCall) -> dict[str, Any]:
    out: dict[str, Any] = {"op": str(call.op)}
    for name in ("tx_id", "ref_tx_id", "player_id", "round_id", "game_id", "reason", "round_closed"):
        value = getattr(call, name)
        if value is not None:
            out[name] = str(value) if name == "reason" else value
    if call.amount is not None:
        out["amount"] = call.amount.minor
        out["currency"] = call.amount.currency.code
    return out


def describe(outcome: Outcome) -> str:
    if isinstance(outcome, Ok):
        extra = f" wallet_tx_id={outcome.wallet_tx_id}" if outcome.wallet_tx_id else ""
        return f"ok balance={outcome.balance.minor} {outcome.balance.currency.code}{extra}"
    if isinstance(outcome, Rejected):
        return f"rejected {outcome.code}: {outcome.message}"
    return f"unknown ({outcome.reason})"


class Ledger:
    """Expected balances, in-doubt transactions and anomalies for every player."""

    def __init__(self, max_evidence_per_kind: int = 20) -> None:
        self.books: dict[str, Book] = {}
        self.findings: list[Finding] = []
        self.counts: dict[Anomaly, int] = {a: 0 for a in Anomaly}
        self.max_evidence_per_kind = max_evidence_per_kind
        self._tokens = itertools.count(1)

    # -- set-up -----------------------------------------------------------------------
    def open(self, player_id: str, currency: str, balance: int) -> Book:
        """A player whose opening balance we know (provisioned, or read before play)."""
        book = self.book(player_id)
        book.currency = currency
        book.expected = balance
        return book

    def book(self, player_id: str) -> Book:
        book = self.books.get(player_id)
        if book is None:
            book = self.books[player_id] = Book(player_id)
        return book

    @property
    def anomaly_count(self) -> int:
        return sum(self.counts.values())

    def flag(self, kind: Anomaly, player_id: str, message: str, evidence: Sequence[Evidence | Seen]) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= self.max_evidence_per_kind:
            self.findings.append(Finding(kind, player_id, message, [render(e) for e in evidence]))

    # -- observation ------------------------------------------------------------------
    def begin_batch(self, calls: Sequence[WalletCall]) -> list[int]:
        """Calls about to be sent in one request; the tokens to pass to :meth:`end`, one per call.

        The wallet applies them in order, one after the other: they do not overlap each other
        (each still overlaps whatever else of the player's is in flight).  End them in order:
        only the last call's balance is on the wire (``end(..., inner=True)`` for the others)."""
        tokens: list[int] = []
        for call in calls:
            tokens.append(self.begin(call, batch=tokens[0] if tokens else None))
            if call.player_id is not None:
                book = self.books[call.player_id]
                book.batch_of[tokens[-1]] = tokens[0]
        return tokens

    def end_batch(
        self,
        tokens: Sequence[int],
        calls: Sequence[WalletCall],
        outcomes: Sequence[Outcome],
        *,
        visible: bool = True,
        latency_ms: float | None = None,
        status: int | None = None,
        response: bytes | None = None,
    ) -> Outcome:
        """What came back for a batch begun with :meth:`begin_batch`; returns the outcome that stands for
        the whole request (its first refusal, else its last answer), which drivers report.

        The wallet stops at the first refusal: every call after it is ``not_tried``; every call
        before the last is ``inner`` (only the last call's balance is on the wire)."""
        refused, last = False, len(tokens) - 1
        for i, (token, call, outcome) in enumerate(zip(tokens, calls, outcomes, strict=True)):
            self.end(token, call, outcome, visible=visible, latency_ms=latency_ms, status=status,
                     response=response, not_tried=refused, inner=i < last)
            refused = refused or isinstance(outcome, Rejected)
        return next((o for o in outcomes if isinstance(o, Rejected)), outcomes[-1])

    def begin(self, call: WalletCall, expect: ErrorCode | None = None, *, batch: int | None = None) -> int:
        """A call is about to be sent; returns the token to pass to :meth:`end`.

        A money call is in doubt from the moment it is sent: its answer may come
        after a later call's (another connection, another wallet process), or never.
        """
        token = next(self._tokens)
        if call.player_id is None:
            return token
        book = self.books.get(call.player_id) or self.book(call.player_id)
        key = call.tx_id or ""
        in_flight = book.in_flight
        if in_flight:  # most calls go out with nothing else of the player's in flight
            batch_of = book.batch_of
            for other, other_key in in_flight.items():
                if (other_key != key or not key) and (batch is None or batch_of.get(other) != batch):
                    book.overlapped.add(other)
                    book.overlapped.add(token)
        in_flight[token] = key
        if call.tx_id and call.tx_id not in book.txs and call.op in (Op.BET, Op.WIN, Op.ROLLBACK):
            if call.op is Op.ROLLBACK:
                assert call.ref_tx_id is not None
                book.rollbacks_sent.add(call.ref_tx_id)
                bet = book.txs.get(call.ref_tx_id)
                refund = -bet.delta if bet is not None and bet.state is TxState.APPLIED else 0
                book.txs[call.tx_id] = Tx(call, TxState.DOUBT, 0, expect=expect)
                book.doubt[call.tx_id] = refund
            elif call.amount is not None:
                delta = -call.amount.minor if call.op is Op.BET else call.amount.minor
                book.txs[call.tx_id] = Tx(call, TxState.DOUBT, delta, expect=expect)
                book.doubt[call.tx_id] = delta
        return token

    def end(
        self,
        token: int,
        call: WalletCall,
        outcome: Outcome,
        *,
        expect: ErrorCode | None = None,
        visible: bool = True,
        latency_ms: float | None = None,
        status: int | None = None,
        response: bytes | None = None,
        not_tried: bool = False,
        inner: bool = False,
    ) -> None:
        """What came back for the call sent under ``token`` (``visible=False``: the provider never read it).

        ``not_tried``: a call of a batch after the one the wallet refused; the wallet says it did
        not try it, so like a refused call it has no effect (a wallet that applied it all the same
        shows it in the balances that follow).  ``inner``: a call of a batch before its last one;
        the balance the answer implies for it is derived, not reported, so it is not judged."""
        ev: Seen = (call, outcome, latency_ms, status, response, visible)
        if call.player_id is None:  # authenticate: the player is in the answer
            if isinstance(outcome, Ok) and outcome.player_id:
                book = self.book(outcome.player_id)
                self._check_reported(book, outcome, ev, solo=not book.in_flight and not book.doubt)
            return
        book = self.books.get(call.player_id) or self.book(call.player_id)
        book.in_flight.pop(token, None)
        solo = token not in book.overlapped and not inner
        book.overlapped.discard(token)
        if book.batch_of:
            book.batch_of.pop(token, None)
        if not_tried:
            tx = book.txs.get(call.tx_id or "")
            if tx is not None:
                tx.evidence.append(ev)
                if tx.state is TxState.DOUBT and call.op is not Op.ROLLBACK:
                    tx.state = TxState.REFUSED
                    book.doubt.pop(call.tx_id or "", None)
            return
        if isinstance(outcome, Unknown) and outcome.status is not None and outcome.status < 500:
            self.flag(Anomaly.PROTOCOL_VIOLATION, book.player_id, f"unreadable answer: {outcome.reason}", [ev])
        if isinstance(outcome, Ok) and book.currency and outcome.balance.currency.code != book.currency:
            self.flag(Anomaly.PROTOCOL_VIOLATION, book.player_id,
                      f"answer in {outcome.balance.currency.code}, player's currency is {book.currency}", [ev])
        if call.op is Op.BALANCE:
            if isinstance(outcome, Ok):
                self._check_reported(book, outcome, ev, solo and not book.doubt)
            return
        if call.op is Op.AUTHENTICATE:
            return
        if expect is not None and expect is not ErrorCode.TX_ROLLED_BACK:
            self._invalid(book, call, outcome, expect, ev, solo)
            return
        if call.op is Op.ROLLBACK:
            self._rollback(book, call, outcome, ev, solo)
        else:
            self._debit_credit(book, call, outcome, ev, solo)

    # -- rules ------------------------------------------------------------------------
    def _check_reported(self, book: Book, ok: Ok, ev: Seen, solo: bool, *, hint: Anomaly | None = None,
                        hint_delta: int = 0, extra: list[Seen] | None = None) -> None:
        reported = ok.balance.minor
        book.last_reported = reported
        if reported < 0:
            self.flag(Anomaly.NEGATIVE_BALANCE, book.player_id, f"wallet reported a balance of {reported}", [ev])
        if book.expected is None:
            if solo and not book.doubt:
                book.expected = reported
            return
        if not solo or book.doubt or book.tainted or reported == book.expected:
            return
        diff = reported - book.expected
        kind = hint if hint is not None and diff == hint_delta else Anomaly.BALANCE_MISMATCH
        self.flag(kind, book.player_id, f"wallet reported {reported}, it must hold {book.expected} (off by {diff})",
                  [*(extra or []), ev])
        book.expected = reported  # judge what follows on its own, not as the same error again

    def _debit_credit(self, book: Book, call: WalletCall, outcome: Outcome, ev: Seen, solo: bool) -> None:
        assert call.tx_id is not None and call.amount is not None
        delta = -call.amount.minor if call.op is Op.BET else call.amount.minor
        tx = book.txs.get(call.tx_id)
        if tx is None:  # an answer for a call we were not told about: judge it all the same
            tx = book.txs[call.tx_id] = Tx(call, TxState.DOUBT, delta)
            book.doubt[call.tx_id] = delta
        tx.evidence.append(ev)
        if isinstance(outcome, Unknown):
            return
        if isinstance(outcome, Rejected):
            self._refused(book, tx, outcome, ev)
            return
        # Ok
        if tx.wallet_tx_id is not None:
            self._replay(book, tx, outcome, ev, solo)
            return
        tx.wallet_tx_id = outcome.wallet_tx_id
        if tx.state is TxState.TOMBSTONED:
            self.flag(Anomaly.ACCEPTED_AFTER_ROLLBACK, book.player_id,
                      f"bet {call.tx_id} accepted after its rollback was acknowledged", tx.evidence[-3:])
            tx.state = TxState.APPLIED
            tx.call, tx.delta = call, delta  # the placeholder the early rollback left knew no amount
            if book.expected is not None:
                book.expected += delta
            # The provider now rolls it back; that rollback is the first real refund.
            book.rollbacks_of.pop(call.tx_id, None)
            return
        if tx.state is TxState.ROLLED_BACK:
            return  # landed before its rollback: the rollback already cancelled it
        book.doubt.pop(call.tx_id, None)
        tx.state = TxState.APPLIED
        if book.expected is not None:
            book.expected += delta
        self._check_reported(book, outcome, ev, solo)

    def _replay(self, book: Book, tx: Tx, outcome: Ok, ev: Seen, solo: bool) -> None:
        """An answer for a transaction already acknowledged: must be the original, with no new effect."""
        if outcome.wallet_tx_id != tx.wallet_tx_id:
            double = solo and not book.doubt and book.expected is not None and \
                outcome.balance.minor == book.expected + tx.delta and tx.delta != 0
            kind = Anomaly.DOUBLE_APPLY if double else Anomaly.REPLAY_CONTRADICTS_ORIGINAL
            self.flag(kind, book.player_id,
                      f"replay of {tx.call.tx_id} answered wallet_tx_id {outcome.wallet_tx_id}, "
                      f"the original was {tx.wallet_tx_id}", [tx.evidence[0], ev])
            if double and book.expected is not None:
                book.expected += tx.delta
            return
        self._check_reported(book, outcome, ev, solo, hint=Anomaly.DOUBLE_APPLY, hint_delta=tx.delta,
                             extra=tx.evidence[:1])

    def _refused(self, book: Book, tx: Tx, outcome: Rejected, ev: Seen) -> None:
        call = tx.call
        assert call.tx_id is not None
        if tx.state is TxState.TOMBSTONED:
            if outcome.code not in (ErrorCode.TX_ROLLED_BACK, ErrorCode.SESSION_EXPIRED):
                self.flag(Anomaly.PROTOCOL_VIOLATION, book.player_id,
                          f"bet after its rollback refused with {outcome.code}, due: TX_ROLLED_BACK", [ev])
            return
        if tx.state is TxState.APPLIED:
            self.flag(Anomaly.REPLAY_CONTRADICTS_ORIGINAL, book.player_id,
                      f"replay of accepted {call.tx_id} refused with {outcome.code}", [tx.evidence[0], ev])
            return
        if tx.state is TxState.DOUBT and outcome.code is ErrorCode.TX_ROLLED_BACK and call.tx_id in book.rollbacks_sent:
            # Its rollback overtook it on the way (another connection): refused, as it must be.
            book.doubt.pop(call.tx_id, None)
            tx.state = TxState.TOMBSTONED
            return
        if tx.state is TxState.ROLLED_BACK:
            # Its rollback was acknowledged already: whatever refused it, it has no effect. Fine.
            return
        book.doubt.pop(call.tx_id, None)
        tx.state = TxState.REFUSED
        if call.op is Op.WIN:
            self.flag(Anomaly.REFUSED_VALID_CALL, book.player_id, f"win refused with {outcome.code}", tx.evidence[-2:])
        elif outcome.code is ErrorCode.INSUFFICIENT_FUNDS and book.expected is not None and not book.doubt \
                and call.amount is not None and call.amount.minor <= book.expected and not book.tainted:
            self.flag(Anomaly.REFUSED_VALID_CALL, book.player_id,
                      f"bet of {call.amount.minor} refused for funds; balance must be {book.expected}", [ev])
        elif outcome.code in (ErrorCode.TX_ROLLED_BACK, ErrorCode.DUPLICATE_MISMATCH, ErrorCode.ROLLBACK_NOT_ALLOWED,
                              ErrorCode.INVALID_SIGNATURE, ErrorCode.BAD_REQUEST, ErrorCode.CURRENCY_MISMATCH,
                              ErrorCode.ROUND_CLOSED, ErrorCode.ROUND_NOT_FOUND, ErrorCode.PLAYER_NOT_FOUND):
            self.flag(Anomaly.REFUSED_VALID_CALL, book.player_id, f"valid bet refused with {outcome.code}", [ev])

    def _rollback(self, book: Book, call: WalletCall, outcome: Outcome, ev: Seen, solo: bool) -> None:
        assert call.tx_id is not None and call.ref_tx_id is not None
        rb = book.txs.get(call.tx_id)
        if rb is None:
            rb = book.txs[call.tx_id] = Tx(call, TxState.DOUBT, 0)
        rb.evidence.append(ev)
        if isinstance(outcome, Unknown):
            return
        book.doubt.pop(call.tx_id, None)
        if isinstance(outcome, Rejected):
            if rb.state is TxState.DOUBT:
                rb.state = TxState.REFUSED
                self.flag(Anomaly.REFUSED_VALID_CALL, book.player_id,
                          f"rollback of bet {call.ref_tx_id} refused with {outcome.code}", [ev])
            return
        if rb.wallet_tx_id is not None:
            if outcome.wallet_tx_id != rb.wallet_tx_id:
                self.flag(Anomaly.REPLAY_CONTRADICTS_ORIGINAL, book.player_id,
                          f"replay of rollback {call.tx_id} answered {outcome.wallet_tx_id}, original {rb.wallet_tx_id}",
                          [rb.evidence[0], ev])
            bet = book.txs.get(call.ref_tx_id)
            refund = -bet.delta if bet is not None else 0
            self._check_reported(book, outcome, ev, solo, hint=Anomaly.ROLLBACK_APPLIED_TWICE, hint_delta=refund)
            return
        rb.wallet_tx_id = outcome.wallet_tx_id
        rb.state = TxState.APPLIED
        bet = book.txs.get(call.ref_tx_id)
        first = call.ref_tx_id not in book.rollbacks_of
        book.rollbacks_of.setdefault(call.ref_tx_id, call.tx_id)
        if bet is None:
            # Rollback before its bet: nothing to refund; the bet must now be refused.
            book.txs[call.ref_tx_id] = Tx(
                WalletCall(Op.BET, player_id=call.player_id, tx_id=call.ref_tx_id), TxState.TOMBSTONED, 0)
            self._check_reported(book, outcome, ev, solo)
            return
        refund = -bet.delta
        if bet.state is TxState.APPLIED and first:
            bet.state = TxState.ROLLED_BACK
            if book.expected is not None:
                book.expected += refund
            self._check_reported(book, outcome, ev, solo, hint=Anomaly.ROLLBACK_NOT_APPLIED, hint_delta=-refund,
                                 extra=bet.evidence[:1])
        elif bet.state is TxState.DOUBT:
            # Landed or not, the rollback leaves it with no effect.
            bet.state = TxState.ROLLED_BACK
            book.doubt.pop(call.ref_tx_id, None)
            self._check_reported(book, outcome, ev, solo, hint=Anomaly.ROLLBACK_NOT_APPLIED, hint_delta=-refund,
                                 extra=bet.evidence[:1])
        elif bet.state is TxState.REFUSED:
            bet.state = TxState.TOMBSTONED
            self._check_reported(book, outcome, ev, solo)
        else:  # already rolled back or tombstoned: must change nothing
            self._check_reported(book, outcome, ev, solo, hint=Anomaly.ROLLBACK_APPLIED_TWICE, hint_delta=refund,
                                 extra=bet.evidence[:1])

    def _invalid(self, book: Book, call: WalletCall, outcome: Outcome, expect: ErrorCode, ev: Seen,
                 solo: bool) -> None:
        """A call the wallet must refuse with ``expect``."""
        mine = expect is not ErrorCode.DUPLICATE_MISMATCH and call.tx_id is not None
        tx = book.txs.get(call.tx_id or "") if mine else None
        if tx is not None:
            tx.evidence.append(ev)
        if isinstance(outcome, Rejected):
            # An expired session refuses any bet first (docs/wallet-rules.md): still a refusal.
            if outcome.code is not expect and outcome.code is not ErrorCode.SESSION_EXPIRED:
                self.flag(Anomaly.PROTOCOL_VIOLATION, book.player_id,
                          f"refused with {outcome.code}, the protocol says {expect}", [ev])
            if tx is not None and tx.state is TxState.DOUBT:
                tx.state = TxState.REFUSED
                book.doubt.pop(tx.call.tx_id or "", None)
            return
        if isinstance(outcome, Unknown):
            return  # in doubt since it was sent; the provider rolls it back next
        if expect is ErrorCode.INSUFFICIENT_FUNDS and tx is not None and call.amount is not None:
            # "More than the balance" is only certain when nothing else of the player's was in
            # flight or in doubt: the provider chose the amount from the last balance it saw.
            others = any(t != call.tx_id for t in book.doubt)
            if not solo or others or book.expected is None or call.amount.minor <= book.expected:
                book.doubt.pop(call.tx_id or "", None)
                tx.state, tx.wallet_tx_id = TxState.APPLIED, outcome.wallet_tx_id
                if book.expected is not None:
                    book.expected += tx.delta
                self._check_reported(book, outcome, ev, solo)
                return
        self.flag(Anomaly.ACCEPTED_INVALID_CALL, book.player_id, f"accepted a call due to be refused with {expect}", [ev])
        if tx is None or call.op is not Op.BET or call.amount is None:
            book.tainted = True
            return
        book.doubt.pop(call.tx_id or "", None)
        same_currency = book.currency is None or call.amount.currency.code == book.currency
        if not same_currency:
            book.tainted = True
            tx.delta = 0
        tx.state = TxState.APPLIED
        tx.wallet_tx_id = outcome.wallet_tx_id
        if book.expected is not None:
            book.expected += tx.delta

    # -- the end of a run -------------------------------------------------------------
    def in_doubt(self) -> list[tuple[Book, Tx]]:
        """Transactions still in doubt, for the runner to settle (roll back bets, re-send wins)."""
        return [(b, b.txs[t]) for b in self.books.values() for t in b.doubt if t in b.txs]

    def reconcile(self, player_id: str, reported: Ok, ev_latency_ms: float | None = None) -> bool:
        """The final, solo balance read: True when it matches (or cannot be judged)."""
        book = self.book(player_id)
        ev = Evidence({"op": "balance", "player_id": player_id}, describe(reported), ev_latency_ms)
        before = self.counts[Anomaly.BALANCE_MISMATCH] + self.counts[Anomaly.LOST_UPDATE]
        if book.expected is not None and not book.doubt and not book.tainted \
                and reported.balance.minor != book.expected:
            diff = reported.balance.minor - book.expected
            concurrent = [t for t in book.txs.values() if t.state is TxState.APPLIED and t.delta == -diff]
            after_rb = [t for t in book.txs.values()
                        if t.state is TxState.ROLLED_BACK and t.delta == diff and t.wallet_tx_id is not None]
            if after_rb:
                kind = Anomaly.ACCEPTED_AFTER_ROLLBACK
                extra = after_rb[0].evidence[:3]
            elif concurrent:
                kind = Anomaly.LOST_UPDATE
                extra = concurrent[0].evidence[:2]
            else:
                kind = Anomaly.BALANCE_MISMATCH
                extra = []
            self.flag(kind, player_id,
                      f"final balance {reported.balance.minor}, it must be {book.expected} (off by {diff})", [*extra, ev])
            book.expected = reported.balance.minor
        if reported.balance.minor < 0:
            self.flag(Anomaly.NEGATIVE_BALANCE, player_id, f"final balance {reported.balance.minor}", [ev])
        return before == self.counts[Anomaly.BALANCE_MISMATCH] + self.counts[Anomaly.LOST_UPDATE]

    def summary(self) -> dict[str, Any]:
        return {
            "anomalies": {str(k): v for k, v in self.counts.items()},
            "findings": [f.to_json() for f in self.findings],
            "in_doubt": len(self.in_doubt()),
        }
