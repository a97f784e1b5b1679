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
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeAlias

import orjson

from ..play.faults import CIRCUMSTANTIAL, Due, as_due
from ..protocol.calls import MONEY_OPS, Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from ..protocol.codes import ErrorCode
from ..protocol.dialects.semantics import CANONICAL, RULE_IDS, Semantics, replaced_rules
from ..protocol.findings import KINDS, RULE_OF_CODE, RULES, Severity


class Anomaly(StrEnum):
    """The kinds of :data:`simulator.protocol.findings.KINDS`, by name (one vocabulary for run, load and check)."""

    # money
    DOUBLE_APPLY = "double_apply"
    LOST_UPDATE = "lost_update"
    BALANCE_MISMATCH = "balance_mismatch"
    NEGATIVE_BALANCE = "negative_balance"
    ROLLBACK_NOT_APPLIED = "rollback_not_applied"
    ROLLBACK_APPLIED_TWICE = "rollback_applied_twice"
    ACCEPTED_AFTER_ROLLBACK = "accepted_after_rollback"
    REFUND_NOT_DUE = "refund_not_due"
    INVALID_CALL_MOVED_MONEY = "invalid_call_moved_money"
    # contract
    REPLAY_CONTRADICTS_ORIGINAL = "replay_contradicts_original"
    ACCEPTED_INVALID_CALL = "accepted_invalid_call"
    REFUSED_VALID_CALL = "refused_valid_call"
    WRONG_CODE = "wrong_code"
    NO_DEFINITIVE_ANSWER = "no_definitive_answer"
    UNDECODABLE_ANSWER = "undecodable_answer"
    PROTOCOL_VIOLATION = "protocol_violation"
    # notes
    WALLET_CHOICE = "wallet_choice"

    @property
    def severity(self) -> Severity:
        return KINDS[self.value].severity

    @property
    def rule(self) -> str:
        return KINDS[self.value].rule


if {str(a) for a in Anomaly} != set(KINDS):  # pragma: no cover - a kind added to findings.py only
    raise ImportError(f"ledger.Anomaly and findings.KINDS disagree: {sorted({str(a) for a in Anomaly} ^ set(KINDS))}")

FAILING: Final = frozenset(a for a in Anomaly if a.severity is not Severity.NOTE)
"""The kinds that fail a run by default (money and contract)."""

R1: Final = "idempotency-1-no-change"
R1_ID: Final = "idempotency-1-original-id"
R2: Final = "idempotency-2-mismatch"
R3: Final = "idempotency-3-rejected-not-recorded"
R4: Final = "idempotency-4-rollback-once"
R5: Final = "idempotency-5-tombstone"
R6: Final = "idempotency-6-rollback-only-bets"
R7: Final = "idempotency-7-serialized"
R7_DUP: Final = "idempotency-7-concurrent-duplicates"
R7_NEG: Final = "idempotency-7-never-negative"
LATE_PAID: Final = "sessions-money-owed-is-paid"
SETTLES: Final = "provider-settles"
LIVE_SESSION: Final = RULE_IDS[("wins_need_live_session", True)]
"""A dialect's: a win or rollback on an ended session may be refused SESSION_EXPIRED (sent again, accepted)."""
WIN_NAMED: Final = RULE_IDS[("win_bet", "named")]
WIN_ALONE: Final = RULE_IDS[("win_bet", "none")]
NO_ROUNDS: Final = RULE_IDS[("rounds", False)]
TX_PER_PLAYER: Final = RULE_IDS[("tx_scope", "player")]


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
    """What the ledger saw, the rule of PROTOCOL.md it breaks, and the exchanges that show it."""

    kind: Anomaly
    player_id: str
    message: str
    evidence: list[Evidence] = field(default_factory=list)
    rule: str = ""

    def __post_init__(self) -> None:
        if not self.rule:
            self.rule = self.kind.rule

    @property
    def severity(self) -> Severity:
        return self.kind.severity

    def to_json(self) -> dict[str, Any]:
        rule = RULES[self.rule]
        return {
            "kind": str(self.kind),
            "severity": str(self.severity),
            "rule": rule.id,
            "rule_title": rule.title,
            "section": rule.section,
            "quote": rule.text,
            "quotes": list(rule.quotes),
            "player_id": self.player_id,
            "message": self.message,
            "evidence": [dataclasses.asdict(e) for e in self.evidence],
        }


@dataclass(slots=True)
class Coverage:
    """How many calls exercised one rule, and what was found against it."""

    calls: int = 0
    findings: Counter[str] = field(default_factory=Counter)


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
    due: Due | None = None
    """The refusal due for its last send (an invalid call), if any."""
    rule: str | None = None
    """The rule its sending exercises besides the operation's own (a late win: money owed is paid)."""
    sends: int = 0
    refused_with: ErrorCode | None = None
    maybe_ended: bool = False
    """Its last send went on a session that may have ended, on a dialect whose wins need a live
    session (the round said so: ``rule`` :data:`LIVE_SESSION`): a SESSION_EXPIRED refusal is allowed."""
    """The code it was last refused with (sent again, it is judged again: rule 3)."""


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
    rollbacks_sent: dict[str, None] = field(default_factory=dict)
    """bet tx_ids a rollback has been sent for (acknowledged or not).  This and the other sets of a book
    are dicts (keys only): an empty set takes 216 bytes, an empty dict 64, and every player has a book."""
    refunds: Counter[str] = field(default_factory=Counter)
    """bet tx_id → how many rollbacks (distinct tx_ids) naming it the wallet acknowledged."""
    closed_rounds: dict[str, None] = field(default_factory=dict)
    """round_ids a win the wallet acknowledged has closed."""
    in_flight: dict[int, str] = field(default_factory=dict)
    """token → tx_id (or "" for balance/authenticate)."""
    overlapped: set[int] = field(default_factory=set)
    batch_of: dict[int, int] = field(default_factory=dict)
    """token → the first token of its batch, for calls sent together in one request (not overlapping)."""
    tainted: bool = False
    """An accepted invalid call moved money we cannot account for: stop judging balances."""
    last_reported: int | None = None
    circumstances: dict[ErrorCode, None] = field(default_factory=dict)
    """Codes the player's valid bets were refused with that say something about the player (blocked,
    a limit): a bet due to be refused may be refused with them too."""
    verified: bool = False
    """The last answer of the player's was compared exactly with ``expected`` (solo, nothing in doubt):
    every transaction's effect so far is in that balance, so none can explain a later difference."""
    retired: dict[str, Tx] = field(default_factory=dict)
    """Transactions of closed rounds no later call can name (:meth:`Ledger.retire`), when the ledger keeps
    them (``keep_all``): read by the transactions export and the cross-player comparison only."""


RETIRED_IDS: Final = 1_000_000
"""How many retired (tx_id, wallet_tx_id) pairs a ledger that drops retired transactions remembers, where a
tx_id is unique per player: a wallet that takes one player's transaction for another's replay is named so
(rule ``tx_scope``) when the other's was among them (~100 MB at most; only such dialects keep any)."""


def retired_record(book: Book, tx: Tx) -> dict[str, Any]:
    """One line of the evidence file: a retired transaction as the transactions export shows it, with
    every exchange of it as a finding would cite it."""
    call = tx.call
    return {"player_id": book.player_id, "tx_id": call.tx_id, "op": str(call.op), "round_id": call.round_id,
            "ref_tx_id": call.ref_tx_id, "amount": call.amount.minor if call.amount is not None else None,
            "currency": call.amount.currency.code if call.amount is not None else book.currency,
            "state": str(tx.state), "wallet_tx_id": tx.wallet_tx_id, "delta": tx.delta, "sends": tx.sends,
            "evidence": [_seen_json(e) for e in tx.evidence]}


def _seen_json(seen: Evidence | Seen) -> dict[str, Any]:
    """An exchange as :meth:`Finding.to_json` shows its evidence (``dataclasses.asdict`` of :func:`render`),
    built directly: every retired exchange goes through here, and ``asdict`` deep-copies."""
    if isinstance(seen, Evidence):
        return dataclasses.asdict(seen)
    call, outcome, latency_ms, status, response, visible = seen
    return {"call": _call_json(call), "outcome": describe(outcome),
            "latency_ms": None if latency_ms is None else round(latency_ms, 3), "status": status,
            "response": None if response is None else response[:500].decode("utf-8", "replace"), "visible": visible}


def _call_json(call: WalletCall) -> dict[str, Any]:
    out: dict[str, Any] = {"op": str(call.op)}
    for name in ("tx_id", "ref_tx_id", "player_id", "round_id", "game_id", "reason", "round_closed",
                 "bet_tx_id"):
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


def _what(call: WalletCall, due: Due | None = None) -> str:
    """A call as a finding names it."""
    what = due.what if due is not None and due.what else str(call.op)
    return f"{what} {call.tx_id}" if call.tx_id else what


def _undecodable_rule(response: bytes | None) -> str:
    """The rule an unreadable answer breaks: money as floats or strings is a rule of its own."""
    try:
        data = orjson.loads(response or b"")
    except orjson.JSONDecodeError:
        return "operations-success-shape"
    if isinstance(data, dict) and "balance" in data and type(data["balance"]) is not int:
        return "money-minor-units"
    return "operations-success-shape"


def _code(outcome: Rejected) -> str:
    """A refusal's code as a finding names it (with the wire's code when the dialect maps it to none)."""
    if outcome.code is ErrorCode.UNMAPPED:
        return f"an unmapped code ({outcome.message})" if outcome.message else "an unmapped code"
    return str(outcome.code)


def _refusal_rule(call: WalletCall, code: ErrorCode, default: str) -> str:
    """The rule a refusal of a valid call breaks, by what it was refused with."""
    if call.op is not Op.BET:
        if code is ErrorCode.SESSION_EXPIRED:
            return LATE_PAID
        if code is ErrorCode.INVALID_TOKEN:
            return "sessions-token-of-player"
        if code is ErrorCode.PLAYER_BLOCKED:
            return "sessions-blocked-player"
    if code in (ErrorCode.DUPLICATE_MISMATCH, ErrorCode.TX_ROLLED_BACK, ErrorCode.INVALID_SIGNATURE,
                ErrorCode.CURRENCY_MISMATCH, ErrorCode.PLAYER_NOT_FOUND, ErrorCode.BAD_REQUEST):
        return RULE_OF_CODE[code]
    return default


class Ledger:
    """Expected balances, in-doubt transactions, findings and coverage for every player."""

    def __init__(self, max_evidence_per_kind: int = 20, max_notes_per_rule: int = 3,
                 semantics: Semantics = CANONICAL, *, keep_all: bool = True,
                 retired_to: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.semantics = semantics
        self.keep_all = keep_all
        """Keep every transaction in memory for the whole run (True: a retired one moves to ``Book.retired``);
        False: a retired transaction leaves memory, its record and evidence to ``retired_to``."""
        self.retired_to = retired_to
        """Where a retired transaction's record goes (the run's evidence file, JSON lines): :func:`retired_record`."""
        self.retired_n = 0
        """Transactions retired so far."""
        self._retired_ids: dict[tuple[str, str], None] = {}
        """(tx_id, wallet_tx_id) of retired transactions where a tx_id is unique per player (the cross-player
        comparison, :meth:`_shared`), the latest :data:`RETIRED_IDS` only."""
        """What the dialect's calls mean (docs/dialects.md): the ledger expects only what they imply."""
        self.money_sent = 0
        """Money calls sent: each is judged by the dialect's semantics (their rows in the coverage table)."""
        self.books: dict[str, Book] = {}
        self.findings: list[Finding] = []
        self.counts: dict[Anomaly, int] = {a: 0 for a in Anomaly}
        self.coverage: dict[str, Coverage] = {}
        self.max_evidence_per_kind = max_evidence_per_kind
        self.max_notes_per_rule = max_notes_per_rule
        self._notes: Counter[str] = Counter()
        self._tokens = itertools.count(1)
        self.on_flag: Callable[[str], None] | None = None
        """Told each finding's kind as it is made (the run's per-second series; None: nobody listens)."""

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
        """Findings that fail a run by default (money and contract; notes are not counted)."""
        return sum(n for k, n in self.counts.items() if k in FAILING)

    def count(self, severity: Severity) -> int:
        return sum(n for k, n in self.counts.items() if k.severity is severity)

    def exercise(self, rule: str, n: int = 1) -> None:
        """``n`` calls exercised ``rule`` (the coverage table of the report)."""
        cov = self.coverage.get(rule)
        if cov is None:
            cov = self.coverage[rule] = Coverage()
        cov.calls += n

    def flag(self, kind: Anomaly, player_id: str, message: str, evidence: Sequence[Evidence | Seen],
             rule: str | None = None) -> None:
        rule = rule or kind.rule
        self.counts[kind] += 1
        if self.on_flag is not None:
            self.on_flag(str(kind))
        cov = self.coverage.get(rule)
        if cov is None:
            cov = self.coverage[rule] = Coverage()
        cov.findings[str(kind)] += 1
        if kind.severity is Severity.NOTE:
            self._notes[rule] += 1
            if self._notes[rule] > self.max_notes_per_rule:
                return
        elif self.counts[kind] > self.max_evidence_per_kind:
            return
        self.findings.append(Finding(kind, player_id, message, [render(e) for e in evidence], rule))

    def note(self, player_id: str, rule: str, message: str, evidence: Sequence[Evidence | Seen]) -> None:
        """A choice PROTOCOL.md allows ("Where a wallet may choose"): counted, a few examples kept."""
        self.flag(Anomaly.WALLET_CHOICE, player_id, message, evidence, rule)

    # -- observation ------------------------------------------------------------------
    def begin_batch(self, calls: Sequence[WalletCall], expects: Sequence[ErrorCode | Due | None] | None = None,
                    rules: Sequence[str | None] | None = None) -> list[int]:
        """Calls about to be sent in one request; the tokens to pass to :meth:`end`, one per call.

        The wallet applies them in order, one after the other: they do not overlap each other
        (each still overlaps whatever else of the player's is in flight).  End them in order:
        only the last call's balance is on the wire (``end(..., inner=True)`` for the others).
        ``expects``: the refusal due for each call, as :meth:`begin`'s ``expect`` (None: all valid);
        ``rules``: each call's ``rule``, as :meth:`begin`'s (a batch's calls are judged one by one)."""
        tokens: list[int] = []
        for i, call in enumerate(calls):
            tokens.append(self.begin(call, expects[i] if expects else None, batch=tokens[0] if tokens else None,
                                     rule=rules[i] if rules else None))
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
        read: int | None = None,
        latency_ms: float | None = None,
        status: int | None = None,
        response: bytes | None = None,
        expects: Sequence[ErrorCode | Due | None] | None = None,
    ) -> Outcome:
        """What came back for a batch begun with :meth:`begin_batch`; returns the outcome that stands for
        the whole request (its first refusal, else its last answer), which drivers report.

        The wallet stops at the first refusal: every call after it is ``not_tried``; every call
        before the last is ``inner`` (only the last call's balance is on the wire).  ``read``: the
        provider read the answers of the first ``read`` calls only (None: all); the others are judged
        all the same, and their evidence says the provider never saw them."""
        refused, last = False, len(tokens) - 1
        undecodable = False
        for i, (token, call, outcome) in enumerate(zip(tokens, calls, outcomes, strict=True)):
            seen = visible and (read is None or i < read)
            self.end(token, call, outcome, expect=expects[i] if expects else None, visible=seen,
                     latency_ms=latency_ms, status=status, response=response, not_tried=refused, inner=i < last,
                     judge_bytes=not undecodable)
            undecodable = undecodable or (isinstance(outcome, Unknown) and outcome.status is not None
                                          and outcome.status < 500)
            refused = refused or isinstance(outcome, Rejected)
        return next((o for o in outcomes if isinstance(o, Rejected)), outcomes[-1])

    def begin(self, call: WalletCall, expect: ErrorCode | Due | None = None, *, batch: int | None = None,
              rule: str | None = None) -> int:
        """A call is about to be sent; returns the token to pass to :meth:`end`.

        ``expect``: the refusal that is due (an invalid call); ``rule``: a rule the call exercises
        besides its operation's (a win sent after its session expired...).  A money call is in
        doubt from the moment it is sent: its answer may come after a later call's (another
        connection, another wallet process), or never.
        """
        token = next(self._tokens)
        if call.player_id is None:
            if call.op is Op.AUTHENTICATE:
                self.exercise("operations-authenticate")
            return token
        book = self.books.get(call.player_id) or self.book(call.player_id)
        key = call.tx_id or ""
        in_flight = book.in_flight
        if in_flight:  # most calls go out with nothing else of the player's in flight
            batch_of = book.batch_of
            same = other = False
            for t, other_key in in_flight.items():
                if batch is not None and batch_of.get(t) == batch:
                    continue
                if other_key == key and key:
                    same = True
                else:
                    book.overlapped.add(t)
                    book.overlapped.add(token)
                    other = True
            if same:
                self.exercise(R7_DUP)
            if other:
                self.exercise(R7)
        in_flight[token] = key
        if not call.tx_id or call.op not in MONEY_OPS:
            return token
        due = as_due(expect)
        self.money_sent += 1
        self.exercise("errors-definitive" if due is None else due.rule)
        if rule is not None:
            self.exercise(rule)
        tx = book.txs.get(call.tx_id)
        if due is not None and due.usual is ErrorCode.DUPLICATE_MISMATCH:
            return token  # another call under an accepted tx_id: the original's record is left as it is
        if tx is not None and tx.sends:  # the same call again: a retry, a duplicate, a late duplicate
            tx.sends += 1
            tx.due = due
            tx.maybe_ended = rule == LIVE_SESSION
            if tx.state is TxState.REFUSED:
                # Judged again (rule 3), and until then it may land: in doubt again.
                self.exercise(R3)
                if due is None:
                    tx.state = TxState.DOUBT
                    if call.op is Op.ROLLBACK:
                        bet = book.txs.get(call.ref_tx_id or "")
                        book.doubt[call.tx_id] = -bet.delta if bet is not None and bet.state is TxState.APPLIED \
                            else 0
                    else:
                        book.doubt[call.tx_id] = tx.delta
            else:
                self.exercise(R1)
                self.exercise(R1_ID)
            return token
        if call.op is Op.ROLLBACK:
            assert call.ref_tx_id is not None
            book.rollbacks_sent[call.ref_tx_id] = None
            bet = book.txs.get(call.ref_tx_id)
            if due is None:
                self.exercise(R4 if bet is not None and bet.sends else R5)
            refund = -bet.delta if bet is not None and bet.state is TxState.APPLIED else 0
            book.txs[call.tx_id] = Tx(call, TxState.DOUBT, 0, due=due, rule=rule, sends=1,
                                      maybe_ended=rule == LIVE_SESSION)
            book.doubt[call.tx_id] = refund
        elif call.amount is not None:
            delta = -call.amount.minor if call.op is Op.BET else call.amount.minor
            if due is None:
                self.exercise("operations-effect")
            if call.op is Op.WIN and call.reason is WinReason.REGULAR:
                self.exercise(self._win_bet_rule())
            if tx is not None:  # the placeholder an early rollback left: the bet is sent at last
                self.exercise(R5)
                tx.call, tx.delta, tx.due, tx.rule, tx.sends = call, delta, due, rule, 1
                if tx.state is TxState.DOUBT:
                    book.doubt[call.tx_id] = delta
            else:
                book.txs[call.tx_id] = Tx(call, TxState.DOUBT, delta, due=due, rule=rule, sends=1,
                                          maybe_ended=rule == LIVE_SESSION)
                book.doubt[call.tx_id] = delta
        return token

    def _win_bet_rule(self) -> str:
        """The rule of what a regular win needs: PROTOCOL.md's (a bet in its round), or the dialect's."""
        win_bet = self.semantics.win_bet
        return WIN_NAMED if win_bet == "named" else WIN_ALONE if win_bet == "none" else \
            "operations-regular-win-needs-bet"

    def end(
        self,
        token: int,
        call: WalletCall,
        outcome: Outcome,
        *,
        expect: ErrorCode | Due | None = None,
        visible: bool = True,
        latency_ms: float | None = None,
        status: int | None = None,
        response: bytes | None = None,
        not_tried: bool = False,
        inner: bool = False,
        judge_bytes: bool = True,
    ) -> None:
        """What came back for the call sent under ``token`` (``visible=False``: the provider never read it).

        ``not_tried``: a call of a batch after the one the wallet refused; the wallet says it did
        not try it, so like a refused call it has no effect (a wallet that applied it all the same
        shows it in the balances that follow).  ``inner``: a call of a batch before its last one;
        the balance the answer implies for it is derived, not reported, so it is not judged.
        ``judge_bytes=False``: the answer's bytes were judged already (another call of its batch)."""
        ev: Seen = (call, outcome, latency_ms, status, response, visible)
        if status is not None:
            self.exercise("operations-success-shape")
        if call.player_id is None:  # authenticate: the player is in the answer
            if isinstance(outcome, Ok) and outcome.player_id and "balance" not in outcome.missing:
                book = self.book(outcome.player_id)
                book.verified = False
                self._check_reported(book, outcome, ev, solo=not book.in_flight and not book.doubt)
            return
        book = self.books.get(call.player_id) or self.book(call.player_id)
        book.verified = False  # until this answer's balance is compared exactly (_check_reported)
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
        if isinstance(outcome, Unknown) and outcome.status is not None and outcome.status < 500 and judge_bytes:
            self.flag(Anomaly.UNDECODABLE_ANSWER, book.player_id,
                      f"{_what(call)}: HTTP {outcome.status} answer that cannot be read ({outcome.reason})", [ev],
                      _undecodable_rule(response))
        if isinstance(outcome, Ok) and book.currency and outcome.balance.currency.code != book.currency:
            self.flag(Anomaly.PROTOCOL_VIOLATION, book.player_id,
                      f"answer in {outcome.balance.currency.code}, player's currency is {book.currency}", [ev],
                      "money-currency")
        if call.op is Op.BALANCE:
            if isinstance(outcome, Ok):
                self._check_reported(book, outcome, ev, solo and not book.doubt)
            elif isinstance(outcome, Rejected) and book.expected is not None:
                # (Before the balance is known it is the read that seats the player: a refusal says its
                # session is not usable, which the run reports as a setup error, not a broken rule.)
                self.balance_refused(book.player_id, outcome, ev)
            return
        if call.op is Op.AUTHENTICATE:
            return
        due = as_due(expect)
        if due is not None and due.usual is not ErrorCode.TX_ROLLED_BACK:
            self._invalid(book, call, outcome, due, ev, solo)
        elif call.op is Op.ROLLBACK:
            self._rollback(book, call, outcome, ev, solo)
        else:
            self._debit_credit(book, call, outcome, ev, solo, due)

    # -- rules ------------------------------------------------------------------------
    def _check_reported(self, book: Book, ok: Ok, ev: Seen, solo: bool, *, hint: Anomaly | None = None,
                        hint_delta: int = 0, extra: list[Seen] | None = None) -> None:
        reported = ok.balance.minor
        book.last_reported = reported
        self.exercise(R7_NEG)
        if reported < 0:
            self.flag(Anomaly.NEGATIVE_BALANCE, book.player_id, f"wallet reported a balance of {reported}", [ev])
        exact = solo and not book.doubt
        if book.expected is None:
            if exact:
                book.expected = reported
                book.verified = True
            return
        if not exact or book.tainted:
            return
        book.verified = True
        if reported == book.expected:
            return
        diff = reported - book.expected
        kind = hint if hint is not None and diff == hint_delta else Anomaly.BALANCE_MISMATCH
        call = ev[0] if isinstance(ev, tuple) else None
        shared = call is not None and self._shared(book, call.tx_id, ok.wallet_tx_id)
        self.flag(kind, book.player_id, f"wallet reported {reported}, it must hold {book.expected} (off by {diff})"
                  + (f"; another player sent a transaction {call.tx_id} too" if shared and call else ""),
                  [*(extra or []), ev], TX_PER_PLAYER if shared else None)
        book.expected = reported  # judge what follows on its own, not as the same error again

    def _shared(self, book: Book, tx_id: str | None, wallet_tx_id: str | None) -> bool:
        """Where a tx_id is unique per player: whether the wallet answered this player's ``tx_id`` with the
        ``wallet_tx_id`` of another player's transaction of the same id (a wallet that keys them per
        wallet takes it for the other's replay).  Only names the rule of a finding made otherwise."""
        if self.semantics.tx_scope != "player" or not tx_id or wallet_tx_id is None:
            return False
        for other in self.books.values():
            if other is not book:
                tx = other.txs.get(tx_id) or other.retired.get(tx_id)
                if tx is not None and tx.wallet_tx_id == wallet_tx_id:
                    return True
        return (tx_id, wallet_tx_id) in self._retired_ids

    def _affordable(self, book: Book, call: WalletCall) -> bool:
        """Whether the balance certainly covers this bet (nothing else of the player's in doubt)."""
        if call.amount is None or book.expected is None or book.tainted:
            return False
        if book.currency is not None and call.amount.currency.code != book.currency:
            return False
        if any(t != call.tx_id for t in book.doubt):
            return False
        return call.amount.minor <= book.expected

    def _judge_refusal(self, book: Book, call: WalletCall, outcome: Rejected, due: Due, ev: Seen) -> None:
        """A call due to be refused was: with any code of a rule it breaks (a note when it is not the usual one)."""
        allowed = set(due.codes)
        if call.op is Op.BET:
            if not self._affordable(book, call):
                allowed.add(ErrorCode.INSUFFICIENT_FUNDS)
            allowed.update(book.circumstances)
        code = outcome.code
        if code is ErrorCode.UNMAPPED:
            self._unmapped(book, call, outcome, due.rule, ev, f"{_what(call, due)} was due to be refused")
            return
        if code not in allowed:
            self.flag(Anomaly.WRONG_CODE, book.player_id,
                      f"{_what(call, due)} refused with {code}; due: {' or '.join(sorted(allowed))} "
                      f"(a code of a rule the call breaks)", [ev], due.rule)
        elif code is not due.usual and code not in CIRCUMSTANTIAL:
            self.note(book.player_id, "choice-codes",
                      f"{_what(call, due)} refused with {code} (also a rule it breaks); the reference wallet "
                      f"answers {due.usual}", [ev])

    def _maybe_closed(self, book: Book, round_id: str | None) -> bool:
        """Whether round ``round_id`` is closed, or may be (a win that closes it is in doubt)."""
        if round_id is None:
            return False
        if round_id in book.closed_rounds:
            return True
        return any(t.call.op is Op.WIN and t.call.round_closed and t.call.round_id == round_id
                   and t.state is TxState.DOUBT for t in book.txs.values())

    def _debit_credit(self, book: Book, call: WalletCall, outcome: Outcome, ev: Seen, solo: bool,
                      due: Due | None = None) -> None:
        assert call.tx_id is not None and call.amount is not None
        delta = -call.amount.minor if call.op is Op.BET else call.amount.minor
        tx = book.txs.get(call.tx_id)
        if tx is None:  # an answer for a call we were not told about: judge it all the same
            tx = book.txs[call.tx_id] = Tx(call, TxState.DOUBT, delta, sends=1)
            book.doubt[call.tx_id] = delta
        tx.evidence.append(ev)
        if isinstance(outcome, Unknown):
            return
        if isinstance(outcome, Rejected):
            self._refused(book, tx, outcome, ev, due)
            return
        # Ok
        if call.op is Op.WIN and call.round_closed and call.round_id is not None:
            book.closed_rounds[call.round_id] = None
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
                      f"the original was {tx.wallet_tx_id}", [tx.evidence[0], ev], R1 if double else R1_ID)
            if double and book.expected is not None:
                book.expected += tx.delta
            return
        self._check_reported(book, outcome, ev, solo, hint=Anomaly.DOUBLE_APPLY, hint_delta=tx.delta,
                             extra=tx.evidence[:1])

    def _refused(self, book: Book, tx: Tx, outcome: Rejected, ev: Seen, due: Due | None) -> None:
        call = tx.call
        assert call.tx_id is not None
        code = outcome.code
        if tx.state is TxState.TOMBSTONED:
            self._judge_refusal(book, call, outcome, due or Due.of(ErrorCode.TX_ROLLED_BACK, what="bet after "
                                                                   "its rollback"), ev)
            return
        if tx.state is TxState.APPLIED:
            self.flag(Anomaly.REPLAY_CONTRADICTS_ORIGINAL, book.player_id,
                      f"replay of accepted {call.tx_id} refused with {code} (a replay is always answered as one)",
                      [tx.evidence[0], ev], R1_ID)
            return
        if tx.state is TxState.DOUBT and code is ErrorCode.TX_ROLLED_BACK and call.tx_id in book.rollbacks_sent:
            # Its rollback overtook it on the way (another connection): refused, as it must be.
            book.doubt.pop(call.tx_id, None)
            tx.state = TxState.TOMBSTONED
            return
        if tx.state is TxState.ROLLED_BACK:
            # Its rollback was acknowledged already: whatever refused it, it has no effect. Fine.
            return
        before, tx.refused_with = tx.refused_with, code
        book.doubt.pop(call.tx_id, None)
        tx.state = TxState.REFUSED
        if due is not None:  # a bet due to be refused whose early rollback got no answer
            self._judge_refusal(book, call, outcome, due, ev)
            return
        again = before is code and tx.sends > 1
        if call.op is Op.WIN:
            self._win_refused(book, tx, outcome, again)
            return
        if code is ErrorCode.INSUFFICIENT_FUNDS:
            if self._affordable(book, call):
                assert call.amount is not None
                self.flag(Anomaly.REFUSED_VALID_CALL, book.player_id,
                          f"bet of {call.amount.minor} refused for funds; balance must be {book.expected}", [ev],
                          R3 if again else "operations-effect")
            return
        if code is ErrorCode.UNMAPPED:
            # Some refusal: the wallet's word for a session that ran out, a block, a limit or the funds
            # (which a bet may always meet) is not one the dialect maps, so it cannot be judged.
            self._unmapped(book, call, outcome, "errors-codes", ev,
                           "a bet may be refused for its session, the player's block or limits")
            return
        if code in (ErrorCode.SESSION_EXPIRED, ErrorCode.INVALID_TOKEN, ErrorCode.PLAYER_BLOCKED,
                    ErrorCode.LIMIT_EXCEEDED):
            # A session that ran out, an operator's block or limit: not a rule the bet can be judged by,
            # and a circumstance later bets due to be refused may meet too.
            if code in (ErrorCode.PLAYER_BLOCKED, ErrorCode.LIMIT_EXCEEDED):
                book.circumstances[code] = None
            return
        if code is ErrorCode.ROUND_CLOSED and self._maybe_closed(book, call.round_id):
            return
        default = NO_ROUNDS if code is ErrorCode.ROUND_CLOSED and not self.semantics.rounds else "operations-effect"
        self.flag(Anomaly.REFUSED_VALID_CALL, book.player_id, f"valid bet {call.tx_id} refused with {code}",
                  tx.evidence[-2:] if again else [ev],
                  R3 if again else _refusal_rule(call, code, tx.rule or default))

    def _unmapped(self, book: Book, call: WalletCall, outcome: Rejected, rule: str, ev: Seen, why: str) -> None:
        """A refusal with a wire code the dialect maps to no protocol code, where a refusal may come:
        judged as some refusal, and noted (which code it stands for is not known)."""
        wire = outcome.message or "no message"
        self.note(book.player_id, rule, f"{_what(call)} refused with an unmapped code ({wire}): judged as a "
                  f"refusal ({why})", [ev])

    def _live_session_refusal(self, book: Book, tx: Tx, outcome: Rejected) -> bool:
        """A win or rollback refused because its session ended, on a dialect whose wins need a live
        session, while it may have: allowed (the provider sends it again on a fresh session)."""
        if not self.semantics.wins_need_live_session or not tx.maybe_ended:
            return False
        if outcome.code is ErrorCode.UNMAPPED:
            self._unmapped(book, tx.call, outcome, LIVE_SESSION, tx.evidence[-1],
                           "its session may have ended, and the dialect's wins need a live one")
            return True
        return outcome.code is ErrorCode.SESSION_EXPIRED

    def _refusal_default(self, call: WalletCall, code: ErrorCode, tx: Tx, default: str) -> str:
        """The rule a refusal of a valid win or rollback breaks, by the dialect's semantics."""
        sem = self.semantics
        if code is ErrorCode.SESSION_EXPIRED and sem.wins_need_live_session:
            return LIVE_SESSION  # "sent again on a live session, it is accepted"
        if code is ErrorCode.ROUND_CLOSED and not sem.rounds:
            return NO_ROUNDS
        return _refusal_rule(call, code, tx.rule if tx.rule not in (None, LIVE_SESSION) else default)

    def _win_refused(self, book: Book, tx: Tx, outcome: Rejected, again: bool) -> None:
        call, code = tx.call, outcome.code
        unmapped = code is ErrorCode.UNMAPPED
        if self._live_session_refusal(book, tx, outcome):
            return
        if code is ErrorCode.ROUND_NOT_FOUND or unmapped:
            betless, note = self._betless(book, call)
            if betless:
                if unmapped:
                    self._unmapped(book, call, outcome, self._win_bet_rule(), tx.evidence[-1],
                                   "its bet may not stand")
                elif note is not None:
                    self.note(book.player_id, note, f"regular win {call.tx_id} after its bet was rolled back: "
                              "ROUND_NOT_FOUND", tx.evidence[-1:])
                return  # its bet may never have landed: the wallet may not know the round
        if code is ErrorCode.ROUND_CLOSED and call.round_id in book.closed_rounds:
            return  # another win closed the round first (never sent by croupier; judged as the protocol says)
        if unmapped and call.round_id is not None and self._maybe_closed(book, call.round_id):
            self._unmapped(book, call, outcome, "operations-round-closed", tx.evidence[-1], "its round may be closed")
            return
        rule = R3 if again else self._refusal_default(
            call, code, tx, self._win_bet_rule() if code is ErrorCode.ROUND_NOT_FOUND else "operations-effect")
        if code is ErrorCode.ROUND_NOT_FOUND and self.semantics.tx_scope == "player" and any(
                self._shared(book, t.call.tx_id, t.wallet_tx_id) for t in book.txs.values()
                if t.call.op is Op.BET and t.call.round_id == call.round_id):
            rule = TX_PER_PLAYER  # its bet was taken for another player's transaction of the same id
        self.flag(Anomaly.REFUSED_VALID_CALL, book.player_id, f"win {call.tx_id} refused with {_code(outcome)}",
                  tx.evidence[-2:], rule)

    def _betless(self, book: Book, call: WalletCall) -> tuple[bool, str | None]:
        """Whether a regular win may find no bet to pay (its bet never landed, or was rolled back), and
        the rule of the choice to note when its bet was rolled back: by the round (PROTOCOL.md), by the
        bet the win names (a dialect's ``win_bet = "named"``); a win that stands alone never may."""
        win_bet = self.semantics.win_bet
        if call.reason is not WinReason.REGULAR or win_bet == "none":
            return False, None
        if win_bet == "named":
            bet = book.txs.get(call.bet_tx_id) if call.bet_tx_id else None
            if bet is None or bet.call.op is not Op.BET:
                return True, None  # it names no bet the wallet took
            if bet.state is TxState.APPLIED and call.bet_tx_id not in book.rollbacks_sent:
                return False, None
            rolled = bet.state in (TxState.ROLLED_BACK, TxState.TOMBSTONED)
            return True, WIN_NAMED if rolled else None
        bets = [t for t in book.txs.values() if t.call.op is Op.BET and t.call.round_id == call.round_id]
        if any(t.state is TxState.APPLIED and t.call.tx_id not in book.rollbacks_sent for t in bets):
            return False, None
        rolled = any(t.state in (TxState.ROLLED_BACK, TxState.TOMBSTONED) for t in bets)
        return True, "choice-win-after-rollback" if rolled else None

    def _rollback(self, book: Book, call: WalletCall, outcome: Outcome, ev: Seen, solo: bool) -> None:
        assert call.tx_id is not None and call.ref_tx_id is not None
        rb = book.txs.get(call.tx_id)
        if rb is None:
            rb = book.txs[call.tx_id] = Tx(call, TxState.DOUBT, 0, sends=1)
        rb.evidence.append(ev)
        if isinstance(outcome, Unknown):
            return
        book.doubt.pop(call.tx_id, None)
        if isinstance(outcome, Rejected):
            if rb.wallet_tx_id is not None:
                self.flag(Anomaly.REPLAY_CONTRADICTS_ORIGINAL, book.player_id,
                          f"replay of accepted rollback {call.tx_id} refused with {outcome.code}",
                          [rb.evidence[0], ev], R1_ID)
            elif rb.state in (TxState.DOUBT, TxState.REFUSED):
                again = rb.refused_with is outcome.code and rb.sends > 1
                rb.state, rb.refused_with = TxState.REFUSED, outcome.code
                self._rollback_refused(book, call, outcome, ev, rb, again)
            return
        if rb.wallet_tx_id is not None:
            if outcome.wallet_tx_id != rb.wallet_tx_id:
                self.flag(Anomaly.REPLAY_CONTRADICTS_ORIGINAL, book.player_id,
                          f"replay of rollback {call.tx_id} answered {outcome.wallet_tx_id}, original {rb.wallet_tx_id}",
                          [rb.evidence[0], ev], R1_ID)
            bet = book.txs.get(call.ref_tx_id)
            refund = -bet.delta if bet is not None else 0
            self._check_reported(book, outcome, ev, solo, hint=Anomaly.ROLLBACK_APPLIED_TWICE, hint_delta=refund)
            return
        rb.wallet_tx_id = outcome.wallet_tx_id
        rb.state = TxState.APPLIED
        book.refunds[call.ref_tx_id] += 1
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

    def _rollback_refused(self, book: Book, call: WalletCall, outcome: Rejected, ev: Seen, rb: Tx,
                          again: bool) -> None:
        """A rollback of one of the player's bets (or of one never sent) was refused."""
        code = outcome.code
        bet = book.txs.get(call.ref_tx_id or "")
        if self._live_session_refusal(book, rb, outcome):
            return
        if code is ErrorCode.ROUND_CLOSED and self._maybe_closed(book, call.round_id):
            return  # "later bets, wins and rollbacks on it are ROUND_CLOSED"
        if code is ErrorCode.UNMAPPED and self._maybe_closed(book, call.round_id):
            self._unmapped(book, call, outcome, "operations-round-closed", ev, "its round may be closed")
            return
        if code is ErrorCode.ROLLBACK_NOT_ALLOWED and bet is not None and bet.sends and \
                (bet.call.round_id != call.round_id or bet.call.game_id != call.game_id):
            self.note(book.player_id, "choice-rollback-round",
                      f"rollback {call.tx_id} names another round or game than its bet: ROLLBACK_NOT_ALLOWED", [ev])
            return
        if bet is None or not bet.sends:
            default = R5
        else:
            default = R4
        self.flag(Anomaly.REFUSED_VALID_CALL, book.player_id,
                  f"rollback {call.tx_id} of bet {call.ref_tx_id} refused with {_code(outcome)}",
                  rb.evidence[-2:] if again else [ev], R3 if again else self._refusal_default(call, code, rb, default))

    def _invalid(self, book: Book, call: WalletCall, outcome: Outcome, due: Due, ev: Seen, solo: bool) -> None:
        """A call the wallet must refuse with any code of ``due`` (and change nothing)."""
        own = due.usual is not ErrorCode.DUPLICATE_MISMATCH and call.tx_id is not None
        tx = book.txs.get(call.tx_id or "") if own else None
        if tx is not None:
            tx.evidence.append(ev)
        if isinstance(outcome, Rejected):
            self._judge_refusal(book, call, outcome, due, ev)
            if tx is not None and tx.state is TxState.DOUBT:
                tx.state, tx.refused_with = TxState.REFUSED, outcome.code
                book.doubt.pop(call.tx_id or "", None)
            return
        if isinstance(outcome, Unknown):
            return  # in doubt since it was sent; the provider rolls it back (or asks again) next
        # Accepted.
        others = any(t != call.tx_id for t in book.doubt)
        judged = solo and not others and book.expected is not None and not book.tainted
        reported = outcome.balance.minor
        book.last_reported = reported
        if due.usual is ErrorCode.INSUFFICIENT_FUNDS and tx is not None and (
                not judged or self._affordable(book, call)):
            # "More than the balance" is only certain when nothing else of the player's was in
            # flight or in doubt: the provider chose the amount from the last balance it saw.
            book.doubt.pop(call.tx_id or "", None)
            tx.state, tx.wallet_tx_id = TxState.APPLIED, outcome.wallet_tx_id
            if book.expected is not None:
                book.expected += tx.delta
            self._check_reported(book, outcome, ev, solo)
            return
        moved = reported - book.expected if judged and book.expected is not None else None
        what = _what(call, due)
        if reported < 0:
            kind, rule, why = Anomaly.NEGATIVE_BALANCE, R7_NEG, f"balance now {reported}"
        elif moved and call.op is Op.ROLLBACK:
            kind, rule, why = Anomaly.REFUND_NOT_DUE, due.rule, f"balance moved by {moved}"
        elif moved:
            kind, rule, why = Anomaly.INVALID_CALL_MOVED_MONEY, due.rule, f"balance moved by {moved}"
        else:
            kind, rule = Anomaly.ACCEPTED_INVALID_CALL, due.rule
            why = "nothing moved" if moved == 0 else "what it moved is judged with the final balance"
        self.flag(kind, book.player_id, f"{what} accepted ({why}); due: {' or '.join(sorted(due.codes))}",
                  [ev], rule)
        if tx is not None:
            book.doubt.pop(call.tx_id or "", None)
            tx.state, tx.wallet_tx_id = TxState.APPLIED, outcome.wallet_tx_id
            if call.op is Op.ROLLBACK:
                tx.delta = 0
            elif moved is not None:
                tx.delta = moved  # what its rollback must now refund
            elif call.op is Op.BET and call.amount is not None and book.currency is not None \
                    and call.amount.currency.code != book.currency:
                book.tainted = True  # a debit in another currency: what it took cannot be known
                tx.delta = 0
        if book.expected is not None and not book.tainted:
            if moved is not None:
                book.expected = reported
            elif tx is not None and call.op is Op.BET:
                book.expected += tx.delta

    # -- closed rounds ----------------------------------------------------------------
    def retire(self, player_id: str, keep: Iterable[WalletCall] = ()) -> int:
        """Between the player's rounds: its transactions no later call can name leave the books.

        The driver calls it where none of the player's rounds is open and nothing is owed; ``keep``:
        calls it will still send again (the late duplicates queued for the player), whose transactions
        (and a rollback's bet) stay, since their replay is judged against the original.  Nothing is
        retired while anything of the player's is in flight or in doubt, or before its balance was
        compared exactly after the last answer (:attr:`Book.verified`): then every effect so far is in
        that balance, and the final reconciliation can blame none of them for a later difference.
        Kept whole (``keep_all``) or written to ``retired_to`` (:func:`retired_record`) and dropped;
        either way a later call's lookups see the same books.  Returns how many were retired."""
        book = self.books.get(player_id)
        if book is None or book.in_flight or book.doubt or not book.verified or not book.txs:
            return 0
        pinned: set[str] = set()
        for call in keep:
            if call.player_id == player_id:
                pinned.update(i for i in (call.tx_id, call.ref_tx_id) if i)
        gone = [(k, t) for k, t in book.txs.items() if k not in pinned and t.state is not TxState.DOUBT]
        if not gone:
            return 0
        # Fresh containers with only what is left: a dict keeps its size when emptied, and an idle
        # player's book is most of what the ledger holds at 10,000 players.
        txs = book.txs = {k: t for k, t in book.txs.items() if k in pinned or t.state is TxState.DOUBT}
        rounds = {t.call.round_id for t in txs.values()}  # a kept replay's round stays closed
        book.closed_rounds = {r: None for r in book.closed_rounds if r in rounds}
        book.rollbacks_of = {k: v for k, v in book.rollbacks_of.items() if k in txs}
        book.refunds = Counter({k: n for k, n in book.refunds.items() if k in txs})
        book.rollbacks_sent = {k: None for k in book.rollbacks_sent if k in txs}
        book.in_flight, book.doubt, book.batch_of = {}, {}, {}  # empty: nothing in flight or in doubt
        self.retired_n += len(gone)
        if self.keep_all:
            book.retired.update(gone)
            return len(gone)
        shared = self.semantics.tx_scope == "player"
        for k, tx in gone:
            if shared and tx.wallet_tx_id is not None:
                self._retired_ids[(k, tx.wallet_tx_id)] = None
                if len(self._retired_ids) > RETIRED_IDS:
                    del self._retired_ids[next(iter(self._retired_ids))]
            if self.retired_to is not None:
                self.retired_to(retired_record(book, tx))
        return len(gone)

    # -- the end of a run -------------------------------------------------------------
    def in_doubt(self) -> list[tuple[Book, Tx]]:
        """Transactions still in doubt, for the runner to settle (roll back bets, re-send wins)."""
        return [(b, b.txs[t]) for b in self.books.values() for t in b.doubt if t in b.txs]

    def unsettled(self, why: str = "") -> int:
        """What is still in doubt after settlement: a ``no_definitive_answer`` finding each; returns how many."""
        left = self.in_doubt()
        for book, tx in left:
            self.flag_unsettled(book, tx, why)
        return len(left)

    def flag_unsettled(self, book: Book, tx: Tx, why: str = "") -> None:
        """``tx`` is still in doubt after the provider settled what it could: no definitive answer came."""
        self.flag(Anomaly.NO_DEFINITIVE_ANSWER, book.player_id,
                  f"{_what(tx.call, tx.due)} still without a definitive answer after {len(tx.evidence)} "
                  f"exchanges{why}", tx.evidence[-3:], SETTLES)

    def balance_refused(self, player_id: str, outcome: Rejected, ev: Evidence | Seen) -> None:
        """A balance read of the player's own session refused (the final read, or any)."""
        code = outcome.code
        rule = "sessions-token-of-player" if code in (ErrorCode.SESSION_EXPIRED, ErrorCode.INVALID_TOKEN) \
            else RULE_OF_CODE.get(code, "operations-effect")
        self.flag(Anomaly.REFUSED_VALID_CALL, player_id, f"balance read refused with {_code(outcome)}", [ev], rule)

    def reconcile(self, player_id: str, reported: Ok, ev_latency_ms: float | None = None) -> bool:
        """The final, solo balance read: True when it matches (or cannot be judged)."""
        book = self.book(player_id)
        ev = Evidence({"op": "balance", "player_id": player_id}, describe(reported), ev_latency_ms)
        self.exercise(R7_NEG)
        before = self.counts[Anomaly.BALANCE_MISMATCH] + self.counts[Anomaly.LOST_UPDATE]
        if book.expected is not None and not book.doubt and not book.tainted \
                and reported.balance.minor != book.expected:
            diff = reported.balance.minor - book.expected
            concurrent = [t for t in book.txs.values() if t.state is TxState.APPLIED and t.delta == -diff]
            after_rb = [t for t in book.txs.values()
                        if t.state is TxState.ROLLED_BACK and t.delta == diff and t.wallet_tx_id is not None]
            twice = [t for t in book.txs.values() if t.state is TxState.ROLLED_BACK and t.delta == -diff
                     and book.refunds[t.call.tx_id or ""] > 1]
            shared = [t for t in concurrent if self._shared(book, t.call.tx_id, t.wallet_tx_id)]
            rule = None
            if shared:  # taken for another player's transaction of the same id: it never moved money
                kind, rule = Anomaly.BALANCE_MISMATCH, TX_PER_PLAYER
                extra = shared[0].evidence[:2]
            elif twice:
                kind = Anomaly.ROLLBACK_APPLIED_TWICE
                extra = twice[0].evidence[:2]
            elif after_rb:
                kind = Anomaly.ACCEPTED_AFTER_ROLLBACK
                extra = after_rb[0].evidence[:3]
            elif concurrent:
                kind = Anomaly.LOST_UPDATE
                extra = concurrent[0].evidence[:2]
            else:
                kind = Anomaly.BALANCE_MISMATCH
                extra = []
            self.flag(kind, player_id,
                      f"final balance {reported.balance.minor}, it must be {book.expected} (off by {diff})", [*extra, ev],
                      rule)
            book.expected = reported.balance.minor
        if reported.balance.minor < 0:
            self.flag(Anomaly.NEGATIVE_BALANCE, player_id, f"final balance {reported.balance.minor}", [ev])
        return before == self.counts[Anomaly.BALANCE_MISMATCH] + self.counts[Anomaly.LOST_UPDATE]

    def coverage_json(self) -> dict[str, dict[str, Any]]:
        """Calls and findings per rule; each of the dialect's semantics that no call exercised by name
        counts every money call sent, each of which was judged by it."""
        out = {rule: {"calls": c.calls, "findings": dict(c.findings)} for rule, c in self.coverage.items()}
        if self.money_sent:
            for rule, _ in self.semantics.statements():
                entry = out.setdefault(rule, {"calls": 0, "findings": {}})
                if not entry["calls"]:
                    entry["calls"] = self.money_sent
        for rule, instead in replaced_rules(self.semantics).items():
            if rule in out and (out[rule]["calls"] or out[rule]["findings"]):
                continue
            out[rule] = {"calls": 0, "findings": {}, "replaced_by": instead}
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "anomalies": {str(k): v for k, v in self.counts.items()},
            "by_severity": {str(sev): {str(k): v for k, v in self.counts.items() if v and k.severity is sev}
                            for sev in Severity},
            "findings": [f.to_json() for f in self.findings],
            "coverage": self.coverage_json(),
            "in_doubt": len(self.in_doubt()),
        }
