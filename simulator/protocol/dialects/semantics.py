"""What a dialect's wire carries and means: the corners where real wallet APIs differ from PROTOCOL.md.

A wire format (fields, amounts, codes, signatures) is only half of a dialect.  The
other half is what the calls *mean*: on many real wallets the session identifies
the player and no call names one, bets carry no currency (the account's is
implied), there are no rounds, a win names the bet it pays, a ``tx_id`` is unique
per player rather than per wallet, a bet must be above zero.  A judge that
expected the canonical protocol's meaning from such a wallet would report every
difference as a bug.

So each dialect declares its :class:`Semantics`, and the judges (``check``'s model,
``run``'s ledger and rounds) expect only what they imply.  Every value other than
the canonical one has one sentence, :data:`STATEMENTS`, which docs/dialects.md
prints verbatim (a test checks it): a finding that rests on a dialect's
semantics quotes that sentence, as the others quote PROTOCOL.md.

Pure data, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

from ..codes import ErrorCode

PlayerBy = Literal["field", "session"]
CurrencyBy = Literal["field", "account"]
WinBet = Literal["round", "named", "none"]
RollbackBy = Literal["player", "tx", "round"]
TxScope = Literal["wallet", "player"]
Sessions = Literal["authenticate", "operator"]

AXES: Final[dict[str, tuple[object, ...]]] = {
    "player": ("field", "session"),
    "currency": ("field", "account"),
    "rounds": (True, False),
    "win_bet": ("round", "named", "none"),
    "rollback_by": ("player", "tx", "round"),
    "tx_scope": ("wallet", "player"),
    "zero_bet": (True, False),
    "rollback_amount": (False, True),
    "wins_need_live_session": (False, True),
    "sessions": ("authenticate", "operator"),
}
"""Each axis and its allowed values, the canonical protocol's first."""

STATEMENTS: Final[dict[tuple[str, object], str]] = {
    ("player", "session"): (
        "The session identifies the player: no call names a player, and a call whose session the wallet "
        "did not issue is refused with `INVALID_TOKEN`."),
    ("currency", "account"): (
        "Calls carry no currency: every amount is in the currency of the player's account."),
    ("rounds", False): (
        "There are no rounds: no call names a round and nothing closes one, so no call is `ROUND_CLOSED`."),
    ("win_bet", "named"): (
        "A `regular` win names the bet it pays: it needs that bet accepted from the same player, else "
        "`ROUND_NOT_FOUND`; after that bet was rolled back it is accepted or `ROUND_NOT_FOUND`."),
    ("win_bet", "none"): (
        "A win stands alone: it needs no bet before it."),
    ("rollback_by", "tx"): (
        "A rollback finds its bet by the transaction id alone: a round or game it names does not matter."),
    ("rollback_by", "round"): (
        "A rollback finds its bet by the transaction id within the round it names: naming another round, it "
        "does not find the bet, and is answered as a rollback of a bet never seen or refused with "
        "`ROLLBACK_NOT_ALLOWED`; it never refunds."),
    ("tx_scope", "player"): (
        "A `tx_id` is unique per player: the same `tx_id` from two players names two transactions, each "
        "judged on its own."),
    ("zero_bet", False): (
        "A bet is above zero: a bet of 0 is refused and changes nothing."),
    ("rollback_amount", True): (
        "A rollback carries the amount of the bet it cancels; the wallet refunds the bet it recorded."),
    ("wins_need_live_session", True): (
        "A `win` or `rollback` on a session that has ended may be refused with `SESSION_EXPIRED`; sent again "
        "on a live session, it is accepted."),
    ("sessions", "operator"): (
        "The operator makes the sessions: there is no `authenticate` call, and each player's session token "
        "is given to croupier (a players file, or the operator's test API)."),
}
"""The sentence each non-canonical value means, as docs/dialects.md prints it (findings quote it)."""

RULE_IDS: Final[dict[tuple[str, object], str]] = {
    key: f"dialect-{key[0].replace('_', '-')}-{str(key[1]).lower()}" for key in STATEMENTS
}
"""The finding rule id of each statement (``dialect-tx-scope-player`` ...)."""


@dataclass(frozen=True, slots=True)
class Semantics:
    """What a dialect's calls carry and mean; the defaults are the canonical protocol's (PROTOCOL.md)."""

    player: PlayerBy = "field"
    """Who names the player: a field of every call, or the session alone."""
    currency: CurrencyBy = "field"
    """Whether bets and wins carry a currency, or every amount is in the account's currency."""
    rounds: bool = True
    """Whether calls name a round and a win may close it."""
    win_bet: WinBet = "round"
    """What a ``regular`` win needs: a bet in its round (PROTOCOL.md), the bet it names, or nothing."""
    rollback_by: RollbackBy = "player"
    """How a rollback finds its bet: by ``ref_tx_id`` and player (PROTOCOL.md), by the id alone, or
    by the id within the round it names."""
    tx_scope: TxScope = "wallet"
    """Whether a ``tx_id`` is unique per wallet (PROTOCOL.md) or per player."""
    zero_bet: bool = True
    """Whether a bet of 0 is a valid bet (PROTOCOL.md: amounts are ≥ 0)."""
    rollback_amount: bool = False
    """Whether a rollback carries the amount of the bet it cancels (informative; not compared)."""
    wins_need_live_session: bool = False
    """Whether a win or rollback on an ended session may be refused (PROTOCOL.md: it must be accepted)."""
    sessions: Sessions = "authenticate"
    """Where sessions come from: an ``authenticate`` call, or the operator (given to croupier)."""

    # -- what the wire carries ---------------------------------------------------------------
    @property
    def names_player(self) -> bool:
        return self.player == "field"

    @property
    def carries_currency(self) -> bool:
        return self.currency == "field"

    @property
    def names_bet(self) -> bool:
        return self.win_bet == "named"

    def statements(self) -> list[tuple[str, str]]:
        """(rule id, sentence) for every value that differs from the canonical protocol."""
        return [(RULE_IDS[k], STATEMENTS[k]) for k in self.differences()]

    def differences(self) -> list[tuple[str, object]]:
        canonical = Semantics()
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(canonical, f.name)]

    def declared(self) -> list[str]:
        """The axes that differ from PROTOCOL.md, as a ``[semantics]`` table writes them (``rounds = false``)."""
        return [f"{axis} = {_toml(value)}" for axis, value in self.differences()]

    def to_json(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> list[str]:
        """One line per axis, for ``croupier dialect sample`` and reports."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            sentence = STATEMENTS.get((f.name, value), "as PROTOCOL.md")
            out.append(f"{f.name} = {_toml(value)}: {sentence}")
        return out


CANONICAL: Final = Semantics()


def replaced_rules(sem: Semantics) -> dict[str, str]:
    """PROTOCOL.md rules a dialect's semantics replace, each with the ``dialect-*`` rule that speaks instead.

    What such a wire cannot express is not judged by PROTOCOL.md's sentence: a finding or a count under one of
    these rules is filed under the dialect's (whose quote is the dialect's documented sentence)."""
    out: dict[str, str] = {}
    if not sem.names_player:
        out["operations-unknown-player"] = RULE_IDS[("player", "session")]
        out["sessions-token-of-player"] = out["choice-session"] = RULE_IDS[("player", "session")]
    if not sem.carries_currency:
        out["money-currency"] = RULE_IDS[("currency", "account")]
    if not sem.rounds:
        out["operations-round-closed"] = RULE_IDS[("rounds", False)]
    if sem.win_bet != "round":
        out["operations-regular-win-needs-bet"] = out["choice-win-after-rollback"] = RULE_IDS[("win_bet", sem.win_bet)]
    if sem.rollback_by != "player":
        out["choice-rollback-round"] = RULE_IDS[("rollback_by", sem.rollback_by)]
    if sem.sessions == "operator":
        out["operations-authenticate"] = RULE_IDS[("sessions", "operator")]
    return out


def excluded_codes(sem: Semantics) -> dict[ErrorCode, str]:
    """Codes a dialect's semantics rule out, each with the rule that does: refusing a valid call with one of them
    breaks that rule (``CURRENCY_MISMATCH`` where amounts are in the account's currency...)."""
    out: dict[ErrorCode, str] = {}
    if not sem.names_player:
        out[ErrorCode.PLAYER_NOT_FOUND] = RULE_IDS[("player", "session")]
    if not sem.carries_currency:
        out[ErrorCode.CURRENCY_MISMATCH] = RULE_IDS[("currency", "account")]
    if not sem.rounds:
        out[ErrorCode.ROUND_CLOSED] = RULE_IDS[("rounds", False)]
    return out


def load(raw: object, problems: list[str]) -> Semantics:
    """A ``[semantics]`` table (TOML) or a dict in code; appends every problem to ``problems``."""
    if raw is None:
        return CANONICAL
    if not isinstance(raw, Mapping):
        problems.append("semantics: a table of axis = value")
        return CANONICAL
    values: dict[str, Any] = {}
    for key, value in raw.items():
        allowed = AXES.get(key)
        if allowed is None:
            problems.append(f"semantics.{key}: unknown axis (known: {', '.join(AXES)})")
        elif not any(value == a and type(value) is type(a) for a in allowed):
            problems.append(f"semantics.{key}: one of {', '.join(_toml(a) for a in allowed)}")
        else:
            values[key] = value
    sem = Semantics(**values)
    if not sem.rounds and sem.win_bet == "round":
        problems.append("semantics: without rounds a regular win cannot need a bet in its round; "
                        "set win_bet = \"named\" or \"none\"")
    if not sem.rounds and sem.rollback_by == "round":
        problems.append("semantics: without rounds a rollback cannot find its bet within a round")
    return sem


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"'
