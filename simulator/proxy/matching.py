"""Replaying a recording against another wallet: the pure parts (ids rewritten, openings, answers compared).

A replay sends last week's calls to a fresh wallet, so every id that names state is given a run prefix
(``player_id``, ``tx_id``, ``ref_tx_id``, ``bet_tx_id``, ``round_id``): two replays, or a replay and live
traffic, never collide.  Each player is opened with the balance the recording implies it had before its
first answer, so a correct wallet answers every call as the recorded wallet did: the same kind of
answer, the same balance, the same refusal code.

Two correct wallets may still differ where PROTOCOL.md lets a wallet choose (which code, when a call
breaks several rules...): a difference is a *difference*, for a person to read (the way to check an
upgrade), never by itself a finding.  The replay's ledger judges the new wallet's answers by the text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..protocol.calls import Ok, Op, Outcome, Rejected, WalletCall
from ..protocol.codes import ErrorCode
from .recording import Recorded

_IDS = ("player_id", "tx_id", "ref_tx_id", "bet_tx_id", "round_id")


def rewrite(call: WalletCall, prefix: str, tokens: Mapping[str, str], players: Mapping[str, str] | None = None,
            session_ref: str | None = None) -> WalletCall:
    """``call`` with its ids prefixed and its tokens (launch or session) mapped to the new wallet's.
    ``players``: recorded player → an account the new wallet has (a players file), whose id is kept as it is;
    ``session_ref``: that account's second session id, for wires that carry one."""
    changes: dict[str, Any] = {name: prefix + value for name in _IDS if (value := getattr(call, name)) is not None}
    if players is not None and call.player_id is not None and call.player_id in players:
        changes["player_id"] = players[call.player_id]
    for name in ("token", "session_token"):
        value = getattr(call, name)
        if value is not None:
            changes[name] = tokens.get(value, value)
    if session_ref is not None:
        changes["session_ref"] = session_ref
    return dataclasses.replace(call, **changes)


def player_of(call: WalletCall, outcome: Outcome) -> str | None:
    return call.player_id or (outcome.player_id if isinstance(outcome, Ok) else None)


def openings(records: Sequence[Recorded]) -> dict[str, tuple[str, int]]:
    """Each player's currency and the balance it must have before its first call, from its first readable
    answer: an authenticate or balance answer is the balance; a bet's or a win's is the balance after its
    amount moved.  A player whose first answers are only refusals takes a later one's."""
    out: dict[str, tuple[str, int]] = {}
    for rec in records:
        if not rec.forwarded:
            continue
        for call, outcome in zip(rec.calls, rec.outcomes, strict=False):
            player = player_of(call, outcome)
            if player is None or player in out or not isinstance(outcome, Ok) or "balance" in outcome.missing:
                continue
            balance = outcome.balance.minor
            if call.op in (Op.AUTHENTICATE, Op.BALANCE):
                out[player] = (outcome.balance.currency.code, balance)
            elif call.op in (Op.BET, Op.WIN) and call.amount is not None:
                delta = -call.amount.minor if call.op is Op.BET else call.amount.minor
                out[player] = (outcome.balance.currency.code, balance - delta)
    return out


def implied_before(call: WalletCall, outcome: Outcome) -> int | None:
    """The balance the wallet held just before ``call``, as its answer implies (None: it does not say)."""
    if not isinstance(outcome, Ok) or "balance" in outcome.missing:
        return None
    balance = outcome.balance.minor
    if call.op in (Op.AUTHENTICATE, Op.BALANCE):
        return balance
    if call.op in (Op.BET, Op.WIN) and call.amount is not None:
        return balance + call.amount.minor if call.op is Op.BET else balance - call.amount.minor
    return None


WITHDRAWN = ("money left the recorded player's account outside the traffic (a cashier withdrawal, another "
             "provider's game) and the reference wallet's admin API can only deposit")
ACCOUNT = "the players file's account holds another balance than the recorded player did (no admin API to set it)"
MOVED = "money moved outside the traffic and there is no admin API to repeat it (a players file)"
APART = "; then a bet only one side could afford moved the balances further apart"


@dataclass(slots=True)
class Cashier:
    """Money that moved outside the recorded traffic (the cashier, the operator's other games), put back in.

    Where the proxy took a new opening (a launch, a balance read, a new round), the recorded answer says
    what the player held before the call; the replayed wallet holds what the replay left.  More in the
    recording: the difference is deposited (``deposit``), so refusals for funds happen as they did.  Less:
    the admin API withdraws nothing (and without an admin API, ``can_deposit=False``, nothing moves at
    all), so the replay's answers are compared shifted by the difference, and ``why`` says why."""

    rounds: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    current: dict[str, int] = dataclasses.field(default_factory=dict)
    """The replayed wallet's last balance of each player."""
    offset: dict[str, int] = dataclasses.field(default_factory=dict)
    """Replayed balance minus recorded balance, per player (0 but after a withdrawal the replay cannot make)."""
    can_deposit: bool = True
    recorded: dict[str, int] = dataclasses.field(default_factory=dict)
    """The recorded wallet's last balance of each player, from the recorded answers."""
    why: dict[str, str] = dataclasses.field(default_factory=dict)
    """Why each player's comparison is shifted (while it is)."""

    def opening(self, call: WalletCall, player: str) -> bool:
        """Whether ``call`` starts something the proxy took a new opening for (as :mod:`simulator.proxy.watch`)."""
        if call.op in (Op.AUTHENTICATE, Op.BALANCE):
            return True
        if call.round_id is None:
            return False
        seen = self.rounds.setdefault(player, set())
        if call.round_id in seen:
            return False
        seen.add(call.round_id)
        return True

    def deposit(self, call: WalletCall, player: str, recorded: Outcome) -> int:
        """What to deposit before ``call`` (0: nothing), the offset set for what cannot be deposited."""
        if not self.opening(call, player):
            return 0
        before, now = implied_before(call, recorded), self.current.get(player)
        if before is None or now is None:
            return 0
        missing = max(before - now, 0) if self.can_deposit else 0
        self.current[player] = now + missing
        self._shift(player, now + missing - before, WITHDRAWN if self.can_deposit else MOVED)
        return missing

    def start(self, player: str, real: int, recorded: int) -> None:
        """A players file's account, whose balance (``real``, read through the protocol) stands for the
        recorded player's opening (``recorded``)."""
        self.current[player], self.recorded[player] = real, recorded
        self._shift(player, real - recorded, ACCOUNT)

    def _shift(self, player: str, offset: int, why: str) -> None:
        if offset != self.offset.get(player, 0):
            self.why[player] = why
        self.offset[player] = offset
        if not offset:
            self.why.pop(player, None)

    def answered(self, player: str, outcome: Outcome, recorded: Outcome | None = None) -> None:
        """The replayed answer (and the recorded one) to a player's request: the balances now."""
        if isinstance(outcome, Ok) and "balance" not in outcome.missing:
            self.current[player] = outcome.balance.minor
        if isinstance(recorded, Ok) and "balance" not in recorded.missing:
            self.recorded[player] = recorded.balance.minor

    def explains(self, call: WalletCall, player: str, recorded: Outcome, replayed: Outcome) -> bool:
        """Whether a bet's answers differ only because the balance is shifted: refused for funds on the side
        that held less than its amount, accepted on the other.  The balances are then taken afresh
        (:meth:`resync`); the call is not comparable."""
        offset, before = self.offset.get(player, 0), self.recorded.get(player)
        if not offset or before is None or call.op is not Op.BET or call.amount is None:
            return False
        amount = call.amount.minor
        if _funds(recorded) and isinstance(replayed, Ok):
            return before < amount <= before + offset
        if isinstance(recorded, Ok) and _funds(replayed):
            return before + offset < amount <= before
        return False

    def resync(self, player: str) -> None:
        """After a call the shift explains, the shift is whatever the two balances now differ by."""
        now, before = self.current.get(player), self.recorded.get(player)
        if now is not None and before is not None:
            why = self.why.get(player, MOVED).removesuffix(APART)
            self._shift(player, now - before, why + APART)


def _funds(outcome: Outcome) -> bool:
    return isinstance(outcome, Rejected) and outcome.code is ErrorCode.INSUFFICIENT_FUNDS


@dataclass(frozen=True, slots=True)
class Comparison:
    """One call's recorded answer beside the replayed one."""

    seq: int
    op: str
    tx_id: str | None
    recorded: str
    replayed: str
    same: bool | None
    """None: the recorded answer was unknown (a timeout, a 5xx), or the shift explains the difference."""
    shifted_by: int = 0
    """The replayed balance was compared with the recorded one plus this (:class:`Cashier`)."""
    why: str = ""
    """Why it was shifted, or why it could not be compared."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def show(outcome: Outcome) -> str:
    if isinstance(outcome, Ok):
        return f"ok {outcome.balance.minor} {outcome.balance.currency.code}"
    if isinstance(outcome, Rejected):
        return f"rejected {outcome.code}"
    return f"unknown ({outcome.reason})"


def same(recorded: Outcome, replayed: Outcome, balance_judged: bool = True, offset: int = 0) -> bool | None:
    """Whether two answers to the same call agree: both ok with the same balance (``offset`` more, in the
    replay: :class:`Cashier`) and currency, or both refused with the same code.  ``balance_judged=False``:
    an inner call of a batch, whose balance is derived rather than reported."""
    if not isinstance(recorded, (Ok, Rejected)):
        return None
    if isinstance(recorded, Ok):
        if not isinstance(replayed, Ok):
            return False
        if not balance_judged or "balance" in recorded.missing or "balance" in replayed.missing:
            return True
        return (recorded.balance.minor + offset, recorded.balance.currency.code) == \
            (replayed.balance.minor, replayed.balance.currency.code)
    return isinstance(replayed, Rejected) and replayed.code is recorded.code


EXPLAINED = "a refusal for funds on one side only, which the shifted balance explains"
IN_ROUND = "its round's bet was refused for funds on one side only (the shifted balance)"


def compare(rec: Recorded, outcomes: Sequence[Outcome], offset: int = 0, why: str = "",
            explained: str = "") -> list[Comparison]:
    """Each call's answers side by side; ``explained``: why the answers to this request may differ because of
    the shift (:meth:`Cashier.explains`, :data:`EXPLAINED`, :data:`IN_ROUND`): its calls are not comparable."""
    last = len(rec.calls) - 1
    if explained:
        note = f"{explained}; shifted by {offset}: {why}"
        return [Comparison(rec.seq, str(call.op), call.tx_id, show(old), show(new), None, offset, note)
                for call, old, new in zip(rec.calls, rec.outcomes, outcomes, strict=True)]
    return [Comparison(rec.seq, str(call.op), call.tx_id, show(old), show(new), same(old, new, i == last, offset),
                       offset, why if offset else "")
            for i, (call, old, new) in enumerate(zip(rec.calls, rec.outcomes, outcomes, strict=True))]
