"""One vocabulary for every verdict: the rules of the protocol (quoted), the kinds of finding, their severity.

``croupier check``, ``croupier run`` and ``croupier load`` judge a wallet by the same text, so they name
what they found with the same words.  A *rule* is a piece of PROTOCOL.md, quoted verbatim (a test
looks every quote up in the document: a judge must never put words in the protocol's mouth).  A
*kind* is what happened (a replay moved money, a valid call was refused...); each kind has one
severity:

* ``money``: a balance, a refund or a credit is wrong, or could be — the findings that cost players
  and operators money;
* ``contract``: a rule was broken while no money moved (a wrong code, a refused valid call, an answer
  that cannot be read);
* ``note``: a choice the protocol allows, or a habit stricter or looser than needed — never a failure
  unless the user asks for it (``--fail-on note``).

The module is pure data: no I/O, imported by the core (the ledger), the checker and the reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .codes import ErrorCode
from .dialects.semantics import RULE_IDS, STATEMENTS


class Severity(StrEnum):
    MONEY = "money"
    CONTRACT = "contract"
    NOTE = "note"


SEVERITY_ORDER: Final = (Severity.MONEY, Severity.CONTRACT, Severity.NOTE)


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    section: str
    """Where in PROTOCOL.md: a heading, and the rule's number under Idempotency."""
    title: str
    quotes: tuple[str, ...]
    """Sentences of PROTOCOL.md, verbatim (markdown included; only line breaks differ)."""
    source: str = "PROTOCOL.md"
    """The document the quotes are from: PROTOCOL.md, or docs/dialects.md for a dialect's semantics."""

    @property
    def text(self) -> str:
        """The quotes as one text, for a report (markdown's code and emphasis marks dropped)."""
        return " … ".join(q.replace("`", "").replace("**", "").replace("*", "") for q in self.quotes)


_R1 = ("A call whose `tx_id` was already accepted, with the same operation and the same `player_id`, "
       "`round_id`, `amount`, `currency` and `ref_tx_id`, is a **replay**: HTTP 200, the original "
       "`wallet_tx_id`, the current balance, and no change to any balance.")
_R7 = "Calls for one player are serialized: concurrent calls never lose an update, and a balance is never negative."
_CHOICE_CODES = ("Any code of a rule that the call breaks is correct, as long as nothing changes (for example "
                 "`PLAYER_NOT_FOUND` or `DUPLICATE_MISMATCH` for a reused `tx_id` naming a player that does not "
                 "exist). A replay (rule 1) is always answered as one.")
_CHOICE_SESSION = ("The wallet may ignore `session_token` there, or accept only tokens it issued to that player "
                   "(expired ones included) and answer `INVALID_TOKEN` to others.")
_CHOICE_ROLLBACK = ("The bet is found by `ref_tx_id` and the player; where the rollback names another round or game "
                    "the wallet may refund the bet all the same or answer `ROLLBACK_NOT_ALLOWED`.")
_CHOICE_WIN = "**A `regular` win after the round's only bet was rolled back.** Accepted, or `ROUND_NOT_FOUND`."
_DEFINITIVE = ("Definitive rejections are HTTP 4xx with `{\"status\": \"error\", \"code\": CODE, \"message\": str}` "
               "and change nothing.")
_UNKNOWN = ("HTTP 5xx, a timeout or a reset mean *outcome unknown*: the provider must retry (win, rollback) or roll "
            "back (bet).")
_SUCCESS = ("A success is HTTP 200 with `{\"status\": \"ok\", \"balance\": int, \"currency\": str, "
            "\"wallet_tx_id\": str}`")

_RULES: Final = (
    Rule("idempotency-1-no-change", "Idempotency, rule 1", "a replay changes no balance", (_R1,)),
    Rule("idempotency-1-original-id", "Idempotency, rule 1", "a replay answers the original wallet_tx_id", (_R1,)),
    Rule("idempotency-2-mismatch", "Idempotency, rule 2", "a reused tx_id with other fields is DUPLICATE_MISMATCH",
         ("`tx_id` is unique per wallet across all operations.",
          "The same `tx_id` with any of those fields different is `DUPLICATE_MISMATCH` and changes nothing.")),
    Rule("idempotency-3-rejected-not-recorded", "Idempotency, rule 3", "a rejected call is judged again",
         ("A rejected call is not recorded: sent again, it is judged again.",)),
    Rule("idempotency-4-rollback-once", "Idempotency, rule 4", "a rollback refunds its bet once",
         (("`rollback` of a bet that was accepted refunds it once. A second rollback of the same bet (any `tx_id`) "
          "returns 200 and changes nothing."),)),
    Rule("idempotency-5-tombstone", "Idempotency, rule 5", "a rollback of an unseen bet leaves a tombstone",
         (("`rollback` of a `ref_tx_id` the wallet has never seen returns 200, changes nothing, and leaves a "
          "tombstone: a later `bet` with that `tx_id` is `TX_ROLLED_BACK` and changes nothing."),)),
    Rule("idempotency-6-rollback-only-bets", "Idempotency, rule 6", "only a bet can be rolled back",
         ("`rollback` may cancel only a bet: with `ref_tx_id` of a win it is `ROLLBACK_NOT_ALLOWED`.",)),
    Rule("rollback-finds-bet-by-player", "Where a wallet may choose", "a rollback refunds only its player's bet",
         (_CHOICE_ROLLBACK,)),
    Rule("idempotency-7-serialized", "Idempotency, rule 7", "concurrent calls never lose an update", (_R7,)),
    Rule("idempotency-7-concurrent-duplicates", "Idempotency, rules 1 and 7", "identical calls at once apply once",
         (_R7, _R1)),
    Rule("idempotency-7-never-negative", "Idempotency, rule 7", "a balance is never negative", (_R7,)),
    Rule("sessions-bet-needs-live-session", "Sessions", "a bet needs a live session of its own player",
         ("`bet` needs a live session of its own player (`INVALID_TOKEN`, `SESSION_EXPIRED`).",)),
    Rule("sessions-money-owed-is-paid", "Sessions", "wins and rollbacks are accepted with an expired session",
         (("`win` and `rollback` must be accepted with an expired session: money owed to a player is never refused "
          "for a stale token."),)),
    Rule("sessions-token-of-player", "Where a wallet may choose", "a session issued to the player is accepted",
         (_CHOICE_SESSION,)),
    Rule("sessions-blocked-player", "Sessions", "a blocked player's bets are refused, wins still paid",
         ("Likewise a blocked player's bets are `PLAYER_BLOCKED`, while wins and rollbacks are still accepted.",)),
    Rule("transport-signature", "Transport", "every request is signed",
         (("The wallet rejects a missing or wrong signature, and a `t` more than 300 s away from its clock, with "
          "`INVALID_SIGNATURE`."),)),
    Rule("transport-bad-request", "Transport", "malformed requests are BAD_REQUEST",
         ("A listed field that is missing or of the wrong type is `BAD_REQUEST`.",
          "Bodies over 64 KiB are rejected with `BAD_REQUEST` before they are parsed.")),
    Rule("transport-unknown-fields", "Transport", "unknown fields are ignored",
         (("A wallet ignores fields it does not know: providers add fields over time, and a `win` or `rollback` "
          "refused for an extra field leaves a player's money stuck."),)),
    Rule("money-currency", "Money", "a call in another currency is CURRENCY_MISMATCH",
         ("A player has exactly one currency; a call in another one is `CURRENCY_MISMATCH`.",)),
    Rule("money-minor-units", "Money", "amounts and balances are integers of minor units",
         ("`amount` and `balance` are JSON integers of **minor units** of `currency`; never floats, never strings.",
          "Amounts are ≥ 0 (a zero win closes a losing round).")),
    Rule("operations-effect", "Operations", "bet debits, win credits, rollback refunds",
         ("| bet | `tx_id`, `player_id`, `session_token`, `game_id`, `round_id`, `currency`, `amount` | debit |",
          ("| win | `tx_id`, `player_id`, `session_token`, `game_id`, `round_id`, `currency`, `amount`, `reason`, "
          "`round_closed` | credit |"),
          ("| rollback | `tx_id`, `ref_tx_id`, `player_id`, `session_token`, `game_id`, `round_id` | cancels the bet "
          "`ref_tx_id` |"))),
    Rule("operations-regular-win-needs-bet", "Operations", "a regular win needs a bet in its round",
         (("A `regular` win needs an accepted bet by the same player in the same round; the others may stand alone "
          "(a free-spin round, a tournament prize)."),)),
    Rule("operations-round-closed", "Operations", "a closed round takes no more calls",
         (("`round_closed: true` closes the round: later bets, wins and rollbacks on it are `ROUND_CLOSED`, except "
          "replays."),)),
    Rule("operations-authenticate", "Operations", "authenticate turns a launch token into a session",
         (("| authenticate | `token`, `game_id` | turns a launch token into a session: returns `player_id`, "
          "`currency`, `balance`, `session_token` |"),)),
    Rule("operations-unknown-player", "Errors", "an unknown player is refused",
         (_DEFINITIVE, "| PLAYER_NOT_FOUND, ROUND_NOT_FOUND | 404 |")),
    Rule("operations-success-shape", "Operations", "a success has the documented fields", (_SUCCESS,)),
    Rule("errors-definitive", "Errors", "a valid call gets a definitive answer", (_DEFINITIVE, _UNKNOWN)),
    Rule("errors-codes", "Errors", "a rejection carries a protocol code with its HTTP status", (_DEFINITIVE,)),
    Rule("choice-codes", "Where a wallet may choose", "which code, when a call breaks several rules",
         (_CHOICE_CODES,)),
    Rule("choice-session", "Where a wallet may choose", "the session on win, rollback and balance",
         (_CHOICE_SESSION,)),
    Rule("choice-rollback-round", "Where a wallet may choose", "round_id and game_id of a rollback",
         (_CHOICE_ROLLBACK,)),
    Rule("choice-win-after-rollback", "Where a wallet may choose",
         "a regular win after the round's only bet was rolled back", (_CHOICE_WIN,)),
    Rule("provider-settles", "How the provider side behaves", "a call in doubt is settled",
         (("A `bet` that gets no definitive answer is rolled back; the rollback is retried with the same `tx_id` "
          "until it gets one."),
          "A `win` that gets no definitive answer is sent again with the same `tx_id` until it gets one.")),
)

_DIALECT_TITLES: Final = {
    ("player", "session"): "the session identifies the player",
    ("currency", "account"): "amounts are in the account's currency",
    ("rounds", False): "there are no rounds",
    ("win_bet", "named"): "a regular win needs the bet it names",
    ("win_bet", "none"): "a win needs no bet",
    ("rollback_by", "tx"): "a rollback finds its bet by transaction id alone",
    ("rollback_by", "round"): "a rollback finds its bet within the round it names",
    ("tx_scope", "player"): "a tx_id is unique per player",
    ("zero_bet", False): "a bet is above zero",
    ("rollback_amount", True): "a rollback carries its bet's amount",
    ("wins_need_live_session", True): "a win on an ended session may be refused",
    ("sessions", "operator"): "the operator makes the sessions",
}
_DIALECT_RULES: Final = tuple(
    Rule(RULE_IDS[key], "Dialect semantics", _DIALECT_TITLES[key], (STATEMENTS[key],), "docs/dialects.md")
    for key in STATEMENTS)
"""A dialect's declared semantics (simulator/protocol/dialects/semantics.py), quoted from docs/dialects.md."""

RULES: Final[dict[str, Rule]] = {r.id: r for r in (*_RULES, *_DIALECT_RULES)}

RULE_OF_CODE: Final[dict[ErrorCode, str]] = {
    ErrorCode.INVALID_SIGNATURE: "transport-signature",
    ErrorCode.CURRENCY_MISMATCH: "money-currency",
    ErrorCode.INSUFFICIENT_FUNDS: "idempotency-7-never-negative",
    ErrorCode.ROUND_CLOSED: "operations-round-closed",
    ErrorCode.DUPLICATE_MISMATCH: "idempotency-2-mismatch",
    ErrorCode.TX_ROLLED_BACK: "idempotency-5-tombstone",
    ErrorCode.ROLLBACK_NOT_ALLOWED: "idempotency-6-rollback-only-bets",
    ErrorCode.SESSION_EXPIRED: "sessions-bet-needs-live-session",
    ErrorCode.INVALID_TOKEN: "sessions-bet-needs-live-session",
    ErrorCode.PLAYER_BLOCKED: "sessions-blocked-player",
    ErrorCode.ROUND_NOT_FOUND: "operations-regular-win-needs-bet",
    ErrorCode.BAD_REQUEST: "transport-bad-request",
    ErrorCode.PLAYER_NOT_FOUND: "operations-unknown-player",
}
"""The rule of PROTOCOL.md whose code each error code is (findings name the rule by its id): the ledger's and
``croupier check``'s (which reads ``INVALID_TOKEN`` off a bet as this, off any other call as the player's own
session refused, ``sessions-token-of-player``).  ``LIMIT_EXCEEDED`` has none: PROTOCOL.md sets no largest
balance, so a refusal with it is judged by the rule of the call it refused."""


@dataclass(frozen=True, slots=True)
class Kind:
    id: str
    severity: Severity
    rule: str
    """The rule a finding of this kind breaks unless the finding names another."""
    title: str


_KINDS: Final = (
    # money: a balance, a refund or a credit is wrong, or could be
    Kind("double_apply", Severity.MONEY, "idempotency-1-no-change", "a replay moved money again"),
    Kind("lost_update", Severity.MONEY, "idempotency-7-serialized", "concurrent calls lost an update"),
    Kind("balance_mismatch", Severity.MONEY, "operations-effect", "a balance differs from what the calls imply"),
    Kind("negative_balance", Severity.MONEY, "idempotency-7-never-negative", "a balance went below zero"),
    Kind("rollback_not_applied", Severity.MONEY, "idempotency-4-rollback-once", "a rollback did not refund its bet"),
    Kind("rollback_applied_twice", Severity.MONEY, "idempotency-4-rollback-once", "a bet was refunded twice"),
    Kind("accepted_after_rollback", Severity.MONEY, "idempotency-5-tombstone", "a bet was taken after its rollback"),
    Kind("refund_not_due", Severity.MONEY, "idempotency-6-rollback-only-bets",
         "a rollback refunded what it must not (a win, another player's bet)"),
    Kind("invalid_call_moved_money", Severity.MONEY, "operations-effect", "a call due to be refused moved money"),
    # contract: a rule broken while no money moved
    Kind("replay_contradicts_original", Severity.CONTRACT, "idempotency-1-original-id",
         "a replay was answered unlike the original"),
    Kind("accepted_invalid_call", Severity.CONTRACT, "errors-codes", "a call due to be refused was accepted"),
    Kind("refused_valid_call", Severity.CONTRACT, "operations-effect", "a valid call was refused"),
    Kind("wrong_code", Severity.CONTRACT, "errors-codes", "refused with a code of no rule the call breaks"),
    Kind("no_definitive_answer", Severity.CONTRACT, "errors-definitive", "a valid call got 5xx or no answer"),
    Kind("undecodable_answer", Severity.CONTRACT, "operations-success-shape", "an answer that cannot be read"),
    Kind("protocol_violation", Severity.CONTRACT, "operations-success-shape", "an answer that breaks the protocol"),
    # notes: choices and habits, never a failure by default
    Kind("wallet_choice", Severity.NOTE, "choice-codes", "a choice the protocol allows"),
)

KINDS: Final[dict[str, Kind]] = {k.id: k for k in _KINDS}


def severity_of(kind: str) -> Severity:
    return KINDS[kind].severity


def fails(severity: Severity, fail_on: Severity = Severity.CONTRACT) -> bool:
    """Whether a finding of ``severity`` fails a run that fails on ``fail_on`` and anything worse."""
    return SEVERITY_ORDER.index(severity) <= SEVERITY_ORDER.index(fail_on)


def worst(severities: Iterable[Severity]) -> Severity | None:
    """The worst of ``severities``, None for none."""
    found = list(severities)
    return min(found, key=SEVERITY_ORDER.index) if found else None
