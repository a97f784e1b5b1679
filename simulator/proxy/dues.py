"""Which refusals real traffic has earned, by PROTOCOL.md's text and what the proxy has seen.

``croupier run`` knows which of its calls are invalid on purpose; the proxy does not, so it works out
from the text which calls a wallet must refuse — only where what it saw makes that certain:

- a bet or win in another currency than the player's (the currency every answer for it carried):
  "A player has exactly one currency; a call in another one is `CURRENCY_MISMATCH`";
- a ``tx_id`` the wallet accepted with other fields (idempotency rule 2: `DUPLICATE_MISMATCH`);
- a rollback whose ``ref_tx_id`` is an accepted win (rule 6: `ROLLBACK_NOT_ALLOWED`);
- a bet whose rollback the wallet acknowledged before it arrived (rule 5: `TX_ROLLED_BACK`);
- a bet of 0 on a dialect whose bets are above zero ("a bet of 0 is refused": with any code);
- a bet or win on a round an acknowledged win closed ("later bets, wins and rollbacks on it are
  `ROUND_CLOSED`, except replays").

Each due refusal carries every code of a rule the call may break ("Where a wallet may choose": any code
of a rule that the call breaks is correct, as long as nothing changes): a bet's session may have run out
(the proxy cannot know), its round may be closed.  A call not known to be invalid is judged as valid, as
the ledger does: a refusal is then judged by what may be refused (funds, sessions, a block) and nothing
the proxy cannot know is flagged.  Pure.
"""

from __future__ import annotations

from ..judge.ledger import Book, TxState
from ..play.faults import SESSION_CODES, Due
from ..protocol.calls import Op, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.dialects.semantics import RULE_IDS, Semantics

ACCEPTED = frozenset({TxState.APPLIED, TxState.ROLLED_BACK})
"""States of a transaction the wallet certainly accepted (its answer was read, by someone)."""


def _accepted(books: dict[str, Book], book: Book, tx_id: str, wallet_wide: bool) -> WalletCall | None:
    """The call the wallet accepted under ``tx_id`` (the player's own, or — ids unique per wallet — anyone's)."""
    tx = book.txs.get(tx_id)
    if tx is not None and tx.sends and tx.wallet_tx_id is not None and tx.state in ACCEPTED:
        return tx.call
    if wallet_wide:
        for other in books.values():
            if other is not book:
                tx = other.txs.get(tx_id)
                if tx is not None and tx.sends and tx.wallet_tx_id is not None and tx.state in ACCEPTED:
                    return tx.call
    return None


def due_of(books: dict[str, Book], call: WalletCall, semantics: Semantics) -> Due | None:
    """The refusal ``call`` has certainly earned, with every code a wallet may answer it with (None: valid,
    or not known to be invalid)."""
    if call.player_id is None or call.tx_id is None or call.op not in (Op.BET, Op.WIN, Op.ROLLBACK):
        return None
    book = books.get(call.player_id)
    if book is None:
        return None
    rules: list[tuple[ErrorCode, str, str]] = []
    original = _accepted(books, book, call.tx_id, semantics.tx_scope != "player")
    if original is not None:
        if original.replay_key() == call.replay_key() and original.player_id == call.player_id:
            return None  # a replay (rule 1): answered as one, whatever else it meets
        rules.append((ErrorCode.DUPLICATE_MISMATCH, "idempotency-2-mismatch", f"{call.op} reusing an accepted tx_id"))
    if call.amount is not None and call.op is not Op.ROLLBACK and book.currency is not None \
            and semantics.carries_currency and call.amount.currency.code != book.currency:
        rules.append((ErrorCode.CURRENCY_MISMATCH, "money-currency", f"{call.op} in {call.amount.currency.code}"))
    if call.op is Op.ROLLBACK and call.ref_tx_id is not None:
        ref = book.txs.get(call.ref_tx_id)
        if ref is not None and ref.sends and ref.call.op is Op.WIN and ref.state in ACCEPTED:
            rules.append((ErrorCode.ROLLBACK_NOT_ALLOWED, "idempotency-6-rollback-only-bets", "rollback of a win"))
    if call.op is Op.BET:
        placeholder = book.txs.get(call.tx_id)
        if placeholder is not None and placeholder.state is TxState.TOMBSTONED and call.tx_id in book.rollbacks_of:
            rules.append((ErrorCode.TX_ROLLED_BACK, "idempotency-5-tombstone", "bet after its rollback"))
    zero = call.op is Op.BET and call.amount is not None and call.amount.minor == 0 and not semantics.zero_bet
    if zero:
        rules.append((ErrorCode.BAD_REQUEST, RULE_IDS[("zero_bet", False)], "bet of 0"))
    closed = semantics.rounds and call.round_id is not None and call.round_id in book.closed_rounds
    if closed and call.op is not Op.ROLLBACK:
        rules.append((ErrorCode.ROUND_CLOSED, "operations-round-closed", f"{call.op} on a closed round"))
    if not rules:
        return None
    codes = {code for code, _, _ in rules} | (set(ErrorCode) if zero else set())  # "refused": with any code
    if closed:
        codes.add(ErrorCode.ROUND_CLOSED)
    if call.op is Op.BET:
        codes |= SESSION_CODES  # its session may have run out: the proxy cannot know
    usual, rule, what = rules[0]
    return Due(frozenset(codes), usual, rule, what)
