"""The rules of PROTOCOL.md a wallet is judged by, and the failure raised when one is broken.

Every counterexample names exactly one rule.  Each rule has its own exception
class, so Hypothesis (which tells failures apart by exception type and place)
keeps one minimal sequence per broken rule: a wallet with two bugs gets two
reports, not one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    section: str
    """Where in PROTOCOL.md (a heading, and the rule number under Idempotency)."""
    title: str
    text: str
    """What PROTOCOL.md says, quoted or closely paraphrased."""


_RULES: Final = (
    Rule("idempotency-1-no-change", "Idempotency, rule 1", "a replay changes no balance",
         "A call whose tx_id was already accepted, with the same operation and the same player_id, round_id, "
         "amount, currency and ref_tx_id, is a replay: HTTP 200, the original wallet_tx_id, the current balance, "
         "and no change to any balance."),
    Rule("idempotency-1-original-id", "Idempotency, rule 1", "a replay answers the original wallet_tx_id",
         "A replay is answered with HTTP 200 and the original wallet_tx_id."),
    Rule("idempotency-2-mismatch", "Idempotency, rule 2", "a reused tx_id with other fields is DUPLICATE_MISMATCH",
         "The same tx_id with any of those fields different is DUPLICATE_MISMATCH and changes nothing."),
    Rule("idempotency-3-rejected-not-recorded", "Idempotency, rule 3", "a rejected call is judged again",
         "A rejected call is not recorded: sent again, it is judged again."),
    Rule("idempotency-4-rollback-once", "Idempotency, rule 4", "a rollback refunds its bet once",
         "rollback of a bet that was accepted refunds it once. A second rollback of the same bet (any tx_id) "
         "returns 200 and changes nothing."),
    Rule("idempotency-5-tombstone", "Idempotency, rule 5", "a rollback of an unseen bet leaves a tombstone",
         "rollback of a ref_tx_id the wallet has never seen returns 200, changes nothing, and leaves a tombstone: "
         "a later bet with that tx_id is TX_ROLLED_BACK and changes nothing."),
    Rule("idempotency-6-rollback-only-bets", "Idempotency, rule 6", "only a bet can be rolled back",
         "rollback may cancel only a bet: with ref_tx_id of a win it is ROLLBACK_NOT_ALLOWED."),
    Rule("idempotency-7-serialized", "Idempotency, rule 7", "concurrent calls never lose an update",
         "Calls for one player are serialized: concurrent calls never lose an update."),
    Rule("idempotency-7-concurrent-duplicates", "Idempotency, rules 1 and 7", "identical calls at once apply once",
         "Calls for one player are serialized, so copies of one call sent at once are one call and its replays: "
         "applied once, every answer with the same wallet_tx_id."),
    Rule("idempotency-7-never-negative", "Idempotency, rule 7", "a balance is never negative",
         "A balance is never negative: a bet larger than the balance is INSUFFICIENT_FUNDS and changes nothing."),
    Rule("sessions-bet-needs-live-session", "Sessions", "a bet needs a live session of its player",
         "bet needs a live session (INVALID_TOKEN, SESSION_EXPIRED)."),
    Rule("sessions-money-owed-is-paid", "Sessions", "wins and rollbacks are accepted with an expired session",
         "win and rollback must be accepted with an expired session: money owed to a player is never refused "
         "for a stale token."),
    Rule("sessions-token-of-player", "Sessions", "a session token belongs to one player",
         "Every call names its player's session: a token never issued, or another player's, is INVALID_TOKEN."),
    Rule("sessions-blocked-player", "Sessions", "a blocked player's bets are refused, wins still paid",
         "A blocked player's bets are PLAYER_BLOCKED, while wins and rollbacks are still accepted."),
    Rule("transport-signature", "Transport", "every request is signed",
         "The wallet rejects a missing or wrong signature, and a t more than 300 s away from its clock, "
         "with INVALID_SIGNATURE."),
    Rule("transport-bad-request", "Transport, Money", "malformed requests are BAD_REQUEST",
         "A JSON object body (UTF-8); amount a JSON integer of minor units, never a float or a string, >= 0; "
         "bodies over 64 KiB are rejected with BAD_REQUEST before they are parsed."),
    Rule("money-currency", "Money", "a call in another currency is CURRENCY_MISMATCH",
         "A player has exactly one currency; a call in another one is CURRENCY_MISMATCH."),
    Rule("money-minor-units", "Money", "amounts and balances are integers of minor units",
         "amount and balance are JSON integers of minor units of currency; never floats, never strings. "
         "Amounts are >= 0 (a zero win closes a losing round)."),
    Rule("money-64-bit", "Money", "balances stay within a signed 64-bit integer",
         "Amounts up to 2^63-1 are valid; a credit past the largest balance is refused (LIMIT_EXCEEDED) "
         "and changes nothing."),
    Rule("operations-effect", "Operations", "bet debits, win credits, by exactly the amount",
         "bet debits and win credits the amount; a success answers the balance after the call."),
    Rule("operations-regular-win-needs-bet", "Operations", "a regular win needs a bet in its round",
         "A regular win needs an accepted bet by the same player in the same round (else ROUND_NOT_FOUND); "
         "the other reasons may stand alone."),
    Rule("operations-round-closed", "Operations", "a closed round takes no more calls",
         "round_closed: true closes the round: later bets, wins and rollbacks on it are ROUND_CLOSED, "
         "except replays."),
    Rule("operations-authenticate", "Operations", "authenticate turns a launch token into a session",
         "authenticate turns a launch token into a session: returns player_id, currency, balance, session_token."),
    Rule("operations-unknown-player", "Errors", "an unknown player is PLAYER_NOT_FOUND",
         "A call for a player the wallet does not know is PLAYER_NOT_FOUND and changes nothing."),
    Rule("operations-success-shape", "Operations", "a success has the documented fields",
         "A success is HTTP 200 with {status: ok, balance: int, currency: str, wallet_tx_id: str}; "
         "a wallet_tx_id names one transaction."),
    Rule("errors-definitive", "Errors", "a valid call gets a definitive answer",
         "Definitive rejections are HTTP 4xx with {status: error, code, message} and change nothing; "
         "HTTP 5xx, a timeout or a reset mean outcome unknown, which a correct wallet never needs for a valid call."),
    Rule("errors-codes", "Errors", "a rejection carries a protocol code with its HTTP status",
         "Definitive rejections are HTTP 4xx with {status: error, code: CODE, message: str}; each CODE has the "
         "HTTP status of the table in PROTOCOL.md."),
)

RULES: Final[dict[str, Rule]] = {r.id: r for r in _RULES}


class Violation(AssertionError):
    """A wallet broke a rule; ``rule`` says which.  Subclassed once per rule (see :func:`violation_class`)."""

    rule: Rule = _RULES[0]

    def __init__(self, message: str, call_number: int | None = None) -> None:
        super().__init__(f"[{self.rule.id}] {message}")
        self.message = message
        self.call_number = call_number
        self.evidence: dict[str, Any] = {}
        """Filled by the checker: the transcript and the replayable steps of the sequence that failed."""


def _class_name(rule_id: str) -> str:
    return "Broke_" + rule_id.replace("-", "_")


VIOLATIONS: Final[dict[str, type[Violation]]] = {
    r.id: type(_class_name(r.id), (Violation,), {"rule": r, "__module__": __name__}) for r in _RULES
}
globals().update({cls.__name__: cls for cls in VIOLATIONS.values()})


def violation(rule_id: str, message: str, call_number: int | None = None) -> Violation:
    return VIOLATIONS[rule_id](message, call_number)
