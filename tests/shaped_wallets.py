"""Two wallets whose wires mean something else than PROTOCOL.md's, for ``croupier check`` and ``run``.

Written from the documents alone (issue 14's plan, docs/dialects.md "What a dialect's calls mean",
docs/protocol.md): it shares no code with the reference wallet (``simulator/wallet/``) nor with the
declarative dialect engine, only the error-code names of :mod:`simulator.protocol.codes` and the currency table
of :mod:`simulator.protocol.money`.  The point is that a dialect file (``dialects/session-wallet.toml``,
``dialects/query-wallet.toml``) must be enough for croupier to judge a wallet like these fairly: if
croupier and this file disagree, one of them misread the documents, and the tests say which.

One app serves both shapes over one set of players (one admin API), each shape under its own base path
and with its own transaction ledger (a wallet keeps each integration's ids apart):

**Shape A, ``session-wallet``** — ``/a/`` (base URL ``http://host:port/a``).  JSON ``POST getBalance``
``{sessionToken}``, ``debit`` ``{sessionToken, transactionId, gameId, amount}``, ``credit``
``{sessionToken, transactionId, relatedBetTransactionId, gameId, amount, type}``, ``rollback``
``{sessionToken, transactionId, refTransactionId, amount}``.  Header ``X-Hmac-Signature`` = hex
HMAC-SHA256 over the body re-serialised (sorted keys, separators ``,`` ``:``, UTF-8 unescaped).  Amounts
are integer minor units in a JSON string (``"1050"``).  What it means:

* the session identifies the player (no player id on the wire): a session this wallet did not issue is
  ``INVALID_TOKEN``; sessions are made by the operator (``POST /admin/tokens``: the token *is* the session
  token, living ``ttl_s`` seconds from its issue); there is no authenticate;
* no currency on the wire: every amount is in the account's currency; no rounds, nothing closes;
* a ``regular`` credit names the bet it pays (``relatedBetTransactionId``): that bet must be a debit
  accepted from the same player, else ``ROUND_NOT_FOUND``'s code; after that bet was rolled back the win is
  still paid (a choice).  Other credit types stand alone;
* a rollback finds its bet by the transaction id alone and carries the bet's amount; the wallet refunds
  the amount it recorded, once.  A rollback of an id it never saw: 200, no change, a tombstone (a later
  debit with that id is ``TX_ROLLED_BACK``).  Another player's debit, or a credit: ``ROLLBACK_NOT_ALLOWED``;
* a debit must be above zero; a ``transactionId`` is unique per wallet (this wire's ledger);
* success: HTTP 200 ``{"status": "OK", "balance": "1050", "transactionId": <wallet id>}`` (no currency);
  funds: HTTP 200 ``{"status": "INSUFFICIENT_FUNDS"}``; every other refusal HTTP 200
  ``{"status": "ERROR", "error": {"code": ..., "message": ...}}``; an unforeseen failure HTTP 500.

**Shape B, ``query-wallet``** — ``/b/``.  ``GET userinfo?token=&game=`` answers ``{user, currency}`` only
(no session token: the launch token is the session, which lives ``ttl_s`` seconds from its first use;
no balance), ``GET balance?user=&token=``; JSON ``POST bet`` ``{user, token, transaction, round, game,
currency, amount}``, ``win`` (+ ``reason``, ``roundClosed``), ``rollback`` ``{user, token, transaction,
reference, round, game}``.  Amounts are JSON numbers of major units with two decimals (read with
``Decimal``, never a float).  Headers ``X-Timestamp`` (unix seconds) and ``X-Signature`` = hex
HMAC-MD5(secret, timestamp + body, or + the raw query string of a GET), 300 s window.  Meaning:
PROTOCOL.md's, except that a ``transaction`` id is unique per player (the same id from two players is two
transactions; a tombstone is the player's).  Success: HTTP 200 ``{user, balance, currency,
transactionId}``; a refusal: PROTOCOL.md's HTTP status with ``{"code": N, "msg": ...}``.  Its free choices:
``token`` must be one issued to that player on wins, rollbacks and balances (expired ones included); a
rollback naming another round or game refunds all the same; a regular win after its round's bet was
rolled back is paid; ``userinfo`` answers for any issued token (expired, blocked player included).

The admin API is PROTOCOL.md's table (plus ``unblock``), at ``/admin/``.

:data:`SHAPED_PLANTED` names the bugs that can be switched on, each on one shape.  Serve by hand::

    python -m tests.shaped_wallets correct --port 8097
    croupier check --wallet http://127.0.0.1:8097/a --dialect dialects/session-wallet.toml \\
        --secret test-secret --admin-token test-admin
    croupier check --wallet http://127.0.0.1:8097/b --dialect dialects/query-wallet.toml \\
        --secret test-secret --admin-token test-admin
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from aiohttp import web

from simulator.protocol.codes import ErrorCode, http_status
from simulator.protocol.money import CURRENCIES
from tests.child_servers import serve_from_child, wallet_main

SECRET: Final = "test-secret"
ADMIN_TOKEN: Final = "test-admin"
MAX_BODY: Final = 64 * 1024
SIGNATURE_WINDOW_S: Final = 300
REASONS: Final = frozenset({"regular", "free_spin", "bonus", "jackpot", "promo", "tournament", "cashback"})
MAX_ID: Final = 255
"""Ids longer than this are BAD_REQUEST (PROTOCOL.md leaves the length to the wallet)."""
MAX_DIGITS: Final = 4000
"""Python refuses int(str) past 4,300 digits; a 64 KiB body bounds the rest."""

SHAPES: Final = {"session-wallet": "/a", "query-wallet": "/b"}
"""Each shape's dialect name and the base path it is served under."""

# -- shape A's wire ---------------------------------------------------------------------------------

A_SIGNATURE_HEADER: Final = "X-Hmac-Signature"
A_PATHS: Final = {"balance": "getBalance", "bet": "debit", "win": "credit", "rollback": "rollback"}
A_CODES: Final[dict[ErrorCode, str]] = {
    ErrorCode.BAD_REQUEST: "INVALID_REQUEST",
    ErrorCode.INVALID_SIGNATURE: "INVALID_SIGNATURE",
    ErrorCode.INVALID_TOKEN: "INVALID_SESSION",
    ErrorCode.SESSION_EXPIRED: "SESSION_EXPIRED",
    ErrorCode.PLAYER_BLOCKED: "PLAYER_BLOCKED",
    ErrorCode.ROUND_NOT_FOUND: "BET_NOT_FOUND",
    ErrorCode.DUPLICATE_MISMATCH: "DUPLICATE_TRANSACTION",
    ErrorCode.TX_ROLLED_BACK: "TRANSACTION_ROLLED_BACK",
    ErrorCode.ROLLBACK_NOT_ALLOWED: "ROLLBACK_NOT_ALLOWED",
    ErrorCode.INTERNAL: "INTERNAL_ERROR",
}
"""The ``error.code`` of each refusal shape A gives (INSUFFICIENT_FUNDS goes in ``status`` alone)."""
A_HTTP: Final[dict[ErrorCode, int]] = {ErrorCode.INTERNAL: 500}
"""HTTP status of shape A's refusals (200 unless listed)."""

# -- shape B's wire ---------------------------------------------------------------------------------

B_TIMESTAMP_HEADER: Final = "X-Timestamp"
B_SIGNATURE_HEADER: Final = "X-Signature"
B_CODES: Final[dict[ErrorCode, int]] = {
    ErrorCode.BAD_REQUEST: 100,
    ErrorCode.INVALID_SIGNATURE: 101,
    ErrorCode.INVALID_TOKEN: 102,
    ErrorCode.SESSION_EXPIRED: 103,
    ErrorCode.INSUFFICIENT_FUNDS: 104,
    ErrorCode.PLAYER_BLOCKED: 105,
    ErrorCode.LIMIT_EXCEEDED: 106,
    ErrorCode.PLAYER_NOT_FOUND: 107,
    ErrorCode.ROUND_NOT_FOUND: 108,
    ErrorCode.DUPLICATE_MISMATCH: 109,
    ErrorCode.TX_ROLLED_BACK: 110,
    ErrorCode.ROLLBACK_NOT_ALLOWED: 111,
    ErrorCode.ROUND_CLOSED: 112,
    ErrorCode.CURRENCY_MISMATCH: 113,
    ErrorCode.INTERNAL: 500,
}
"""The ``code`` of each refusal shape B gives, sent with PROTOCOL.md's HTTP status."""
B_PLACES: Final = 2


# -- the catalogue of planted bugs ---------------------------------------------------------------


@dataclass(frozen=True)
class ShapedBug:
    """One bug of a shaped wallet: the shape it lives on, the rule croupier must report, what it does."""

    shape: str
    rule: str
    doc: str


SHAPED_PLANTED: Final[dict[str, ShapedBug]] = {
    "string_amount_concatenated": ShapedBug(
        "query-wallet", "money-minor-units",
        "an amount that arrives as a JSON string is not refused: a win's is appended to the balance's digits "
        "as JavaScript's + would (100 + \"1.50\" = 1001.50), a bet's subtracted as JavaScript's - would"),
    "double_refund": ShapedBug(
        "session-wallet", "idempotency-4-rollback-once",
        "a refund is remembered under the rollback's transactionId, not the bet's: a second rollback of the "
        "same bet under a new transactionId refunds it again"),
    "cross_player_tx_reuse": ShapedBug(
        "query-wallet", "dialect-tx-scope-player",
        "transaction ids are keyed per wallet: another player's call with the same id is answered as a "
        "replay of the first player's transaction (200, nothing applied)"),
}


# -- state -----------------------------------------------------------------------------------------


@dataclass
class Player:
    player_id: str
    currency: str
    balance: int
    blocked: bool = False

    @property
    def exponent(self) -> int:
        return CURRENCIES[self.currency].exponent

    def to_json(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "currency": self.currency, "balance": self.balance,
                "blocked": self.blocked}


@dataclass
class Token:
    """A token from ``POST /admin/tokens``: shape A's session, shape B's launch token and session at once."""

    player_id: str
    ttl_s: int
    issued_at: float
    first_used_at: float | None = None
    """Shape B: its session's life starts at its first use."""

    def live_a(self, now: float) -> bool:
        return now < self.issued_at + self.ttl_s

    def live_b(self, now: float) -> bool:
        started = self.first_used_at if self.first_used_at is not None else now
        return now < started + self.ttl_s


@dataclass
class Tx:
    """An accepted money call (or an admin deposit), as the transaction log shows it."""

    wire: str
    wallet_tx_id: str
    tx_id: str | None
    op: str
    player_id: str
    key: tuple[Any, ...]
    """What decides replay versus DUPLICATE_MISMATCH (PROTOCOL.md rule 1, on this wire's fields)."""
    amount: int | None
    ref_tx_id: str | None
    round_id: str | None
    delta: int
    balance_after: int
    created_at: float
    rolled_back: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"wire": self.wire, "wallet_tx_id": self.wallet_tx_id, "tx_id": self.tx_id, "op": self.op,
                "player_id": self.player_id, "round_id": self.round_id, "amount": self.amount,
                "ref_tx_id": self.ref_tx_id, "delta": self.delta, "balance_after": self.balance_after,
                "rolled_back": self.rolled_back, "created_at": self.created_at}


@dataclass
class Round:
    """Shape B: one player's round."""

    closed: bool = False
    live_bets: int = 0
    had_bet: bool = False


class Refusal(Exception):
    """A definitive rejection, in canonical terms; each wire writes it its own way.  Nothing changed."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _bad(message: str) -> Refusal:
    return Refusal(ErrorCode.BAD_REQUEST, message)


# -- reading fields ----------------------------------------------------------------------------------


def _parse_int(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise ValueError("integer too long")
    return int(text)


def _loads(raw: bytes, *, exact: bool) -> Any:
    """JSON of a request.  ``exact``: numbers with a fraction as Decimal (money); else as Python reads them
    (only to re-serialise a body for shape A's signature, which the sender computed the same way)."""
    try:
        text = raw.decode("utf-8")
        if exact:
            return json.loads(text, parse_float=Decimal, parse_int=_parse_int)
        return json.loads(text, parse_int=_parse_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad(f"body is not valid UTF-8 JSON: {type(exc).__name__}") from None


def _object(raw: bytes, *, exact: bool = True) -> dict[str, Any]:
    data = _loads(raw, exact=exact)
    if not isinstance(data, dict):
        raise _bad("body must be a JSON object")
    return data


def _id(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _bad(f"{name} must be a non-empty string")
    if len(value) > MAX_ID:
        raise _bad(f"{name} is longer than {MAX_ID} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(f"{name} is not valid Unicode") from None
    return value


def _optional_id(data: dict[str, Any], name: str) -> str | None:
    return None if data.get(name) is None else _id(data, name)


_MINOR_STRING = re.compile(r"(0|[1-9][0-9]*)")


def _minor_string(data: dict[str, Any], name: str) -> int:
    """Shape A: integer minor units written as a JSON string ("1050"); anything else is BAD_REQUEST."""
    value = data.get(name)
    if not isinstance(value, str) or len(value) > MAX_DIGITS or not _MINOR_STRING.fullmatch(value):
        raise _bad(f"{name} must be a string of integer minor units, e.g. \"1050\"")
    return int(value)


def _decimal_number(value: Any, exponent: int, name: str = "amount") -> int:
    """Shape B: a JSON number of major units with at most two decimals -> exact minor units."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise _bad(f"{name} must be a JSON number")
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise _bad(f"{name} must be a number >= 0")
    if amount != amount.quantize(Decimal(1).scaleb(-B_PLACES), rounding="ROUND_DOWN"):
        raise _bad(f"{name} has more than {B_PLACES} decimals")
    minor = amount.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise _bad(f"{name} has more decimals than the currency")
    return int(minor)


def _major(minor: int, exponent: int) -> str:
    """Minor units as a JSON number of major units with ``max(2, exponent)`` decimals, written exactly."""
    places = max(B_PLACES, exponent)
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor)).rjust(exponent + 1, "0")
    whole, frac = (digits[:-exponent], digits[-exponent:]) if exponent else (digits, "")
    return f"{sign}{whole}.{frac.ljust(places, '0')}"


# -- the wallet ------------------------------------------------------------------------------------


@dataclass
class ShapedWallet:
    """Players, tokens and one ledger per wire; the rules of both shapes; the bugs switched on."""

    secret: str
    admin_token: str
    bugs: frozenset[str] = frozenset()
    session_ttl: int = 3600
    clock: Callable[[], float] = time.time
    players: dict[str, Player] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    log: list[Tx] = field(default_factory=list)
    a_txs: dict[str, Tx] = field(default_factory=dict)
    """Shape A: transactionId -> transaction (unique per wallet)."""
    a_tombstones: set[str] = field(default_factory=set)
    a_refunded: set[str] = field(default_factory=set)
    """Shape A: the debits refunded (double_refund: the rollbacks that refunded)."""
    b_txs: dict[tuple[str, str], Tx] = field(default_factory=dict)
    """Shape B: (player, transaction) -> transaction (unique per player)."""
    b_by_id: dict[str, Tx] = field(default_factory=dict)
    """Shape B, cross_player_tx_reuse: transaction -> the first transaction with that id, any player."""
    b_tombstones: set[tuple[str, str]] = field(default_factory=set)
    b_rounds: dict[tuple[str, str], Round] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    admin_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    serial: int = 0

    def __post_init__(self) -> None:
        unknown = set(self.bugs) - set(SHAPED_PLANTED)
        if unknown:
            raise ValueError(f"unknown shaped-wallet bug(s): {', '.join(sorted(unknown))}")

    def bug(self, name: str) -> bool:
        return name in self.bugs

    def lock(self, player_id: str) -> asyncio.Lock:
        """One lock per player: a player's calls are serialized, other players' run alongside."""
        return self.locks.setdefault(player_id, asyncio.Lock())

    def _record(self, wire: str, tx_id: str | None, op: str, player: Player, key: tuple[Any, ...],
                amount: int | None, delta: int, now: float, ref_tx_id: str | None = None,
                round_id: str | None = None) -> Tx:
        self.serial += 1
        tx = Tx(wire, f"{wire}-{self.serial:08d}", tx_id, op, player.player_id, key, amount, ref_tx_id, round_id,
                delta, player.balance, now)
        self.log.append(tx)
        return tx

    # -- shape A -----------------------------------------------------------------------------------
    def a_session(self, data: dict[str, Any]) -> tuple[Token, Player]:
        token = self.tokens.get(_id(data, "sessionToken"))
        if token is None:
            raise Refusal(ErrorCode.INVALID_TOKEN, "unknown session")
        return token, self.players[token.player_id]

    async def a_call(self, op: str, data: dict[str, Any], now: float) -> dict[str, Any]:
        """One shape-A call (its signature already checked): the answer's fields, or a Refusal."""
        fields = self._a_fields(op, data)
        token, player = self.a_session(data)
        async with self.lock(player.player_id):
            if op == "balance":
                return {"balance": player.balance}
            tx_id = fields["tx_id"]
            key = (op, player.player_id, fields["amount"] if op != "rollback" else None, fields.get("ref"))
            seen = self.a_txs.get(tx_id)
            if seen is not None:
                if seen.key != key:
                    raise Refusal(ErrorCode.DUPLICATE_MISMATCH, "transactionId already used for another call")
                return {"balance": player.balance, "transactionId": seen.wallet_tx_id}
            if op == "bet":
                tx = self._a_debit(tx_id, token, player, key, fields["amount"], now)
            elif op == "win":
                tx = self._a_credit(tx_id, player, key, fields, now)
            else:
                tx = self._a_rollback(tx_id, player, key, fields["ref"], now)
            self.a_txs[tx_id] = tx
            return {"balance": player.balance, "transactionId": tx.wallet_tx_id}

    def _a_fields(self, op: str, data: dict[str, Any]) -> dict[str, Any]:
        """Every listed field present and of its type (BAD_REQUEST otherwise), before anything is looked up."""
        _id(data, "sessionToken")
        if op == "balance":
            return {}
        out: dict[str, Any] = {"tx_id": _id(data, "transactionId"), "amount": _minor_string(data, "amount")}
        if op in ("bet", "win"):
            _id(data, "gameId")
        if op == "bet" and out["amount"] == 0:
            raise _bad("a debit must be above zero")
        if op == "win":
            reason = data.get("type")
            if not isinstance(reason, str) or reason not in REASONS:
                raise _bad(f"type must be one of {', '.join(sorted(REASONS))}")
            out["reason"] = reason
            out["bet"] = _optional_id(data, "relatedBetTransactionId")
        if op == "rollback":
            out["ref"] = _id(data, "refTransactionId")
        return out

    def _a_debit(self, tx_id: str, token: Token, player: Player, key: tuple[Any, ...], amount: int,
                 now: float) -> Tx:
        if tx_id in self.a_tombstones:
            raise Refusal(ErrorCode.TX_ROLLED_BACK, "this transaction was rolled back before it arrived")
        if player.blocked:
            raise Refusal(ErrorCode.PLAYER_BLOCKED, "the player is blocked")
        if not token.live_a(now):
            raise Refusal(ErrorCode.SESSION_EXPIRED, "the session has expired")
        if amount > player.balance:
            raise Refusal(ErrorCode.INSUFFICIENT_FUNDS, "insufficient funds")
        player.balance -= amount
        return self._record("a", tx_id, "bet", player, key, amount, -amount, now)

    def _a_credit(self, tx_id: str, player: Player, key: tuple[Any, ...], fields: dict[str, Any],
                  now: float) -> Tx:
        if fields["reason"] == "regular":
            bet = self.a_txs.get(fields["bet"]) if fields["bet"] else None
            if bet is None or bet.op != "bet" or bet.player_id != player.player_id:
                raise Refusal(ErrorCode.ROUND_NOT_FOUND, "a regular credit needs the bet it pays")
        amount: int = fields["amount"]
        player.balance += amount
        return self._record("a", tx_id, "win", player, key, amount, amount, now, ref_tx_id=fields["bet"])

    def _a_rollback(self, tx_id: str, player: Player, key: tuple[Any, ...], ref_id: str, now: float) -> Tx:
        ref = self.a_txs.get(ref_id)
        if ref is None:
            self.a_tombstones.add(ref_id)
            return self._record("a", tx_id, "rollback", player, key, None, 0, now, ref_tx_id=ref_id)
        if ref.op != "bet" or ref.player_id != player.player_id:
            raise Refusal(ErrorCode.ROLLBACK_NOT_ALLOWED, "only the player's own debit can be rolled back")
        assert ref.amount is not None
        done = tx_id in self.a_refunded if self.bug("double_refund") else ref_id in self.a_refunded
        if done:
            return self._record("a", tx_id, "rollback", player, key, None, 0, now, ref_tx_id=ref_id)
        self.a_refunded.add(tx_id if self.bug("double_refund") else ref_id)
        ref.rolled_back = True
        player.balance += ref.amount  # the recorded bet, whatever amount the rollback carries
        return self._record("a", tx_id, "rollback", player, key, ref.amount, ref.amount, now, ref_tx_id=ref_id)

    # -- shape B -----------------------------------------------------------------------------------
    def b_userinfo(self, query: dict[str, str], now: float) -> dict[str, Any]:
        token = self.tokens.get(query.get("token", ""))
        if token is None:
            raise Refusal(ErrorCode.INVALID_TOKEN, "unknown token")
        if token.first_used_at is None:
            token.first_used_at = now
        player = self.players[token.player_id]
        return {"user": player.player_id, "currency": player.currency}

    def _b_player(self, data: dict[str, Any]) -> Player:
        user = data.get("user")
        player = self.players.get(user) if isinstance(user, str) else None
        if player is None:
            if not isinstance(user, str) or not user:
                raise _bad("user must be a non-empty string")
            raise Refusal(ErrorCode.PLAYER_NOT_FOUND, "no such user")
        return player

    def _b_token(self, data: dict[str, Any], player: Player, now: float) -> Token:
        """A token issued to this player (expired ones included), else INVALID_TOKEN."""
        token = self.tokens.get(data["token"])
        if token is None or token.player_id != player.player_id:
            raise Refusal(ErrorCode.INVALID_TOKEN, "the token was not issued to this user")
        if token.first_used_at is None:
            token.first_used_at = now
        return token

    async def b_balance(self, query: dict[str, str], now: float) -> dict[str, Any]:
        player = self._b_player(dict(query))
        _id(dict(query), "token")
        async with self.lock(player.player_id):
            self._b_token(dict(query), player, now)
            return {"user": player.player_id, "balance": player.balance, "currency": player.currency}

    async def b_call(self, op: str, data: dict[str, Any], now: float) -> dict[str, Any]:
        """One shape-B money call (signature checked): the answer's fields, or a Refusal."""
        player = self._b_player(data)
        fields = self._b_fields(op, data, player)
        async with self.lock(player.player_id):
            tx_id = fields["tx_id"]
            key = (op, fields["round"], fields.get("amount"), player.currency, fields.get("ref"))
            seen = self._b_seen(player, tx_id)
            if seen is not None:
                if seen.player_id != player.player_id:  # cross_player_tx_reuse: "a replay" of another's call
                    return self._b_ok(player, seen.wallet_tx_id)
                if seen.key != key:
                    raise Refusal(ErrorCode.DUPLICATE_MISMATCH, "transaction already used for another call")
                return self._b_ok(player, seen.wallet_tx_id)
            if op == "bet":
                tx = self._b_bet(tx_id, player, key, fields, now)
            elif op == "win":
                tx = self._b_win(tx_id, player, key, fields, now)
            else:
                tx = self._b_rollback(tx_id, player, key, fields, now)
            self.b_txs[(player.player_id, tx_id)] = tx
            self.b_by_id.setdefault(tx_id, tx)
            return self._b_ok(player, tx.wallet_tx_id)

    def _b_seen(self, player: Player, tx_id: str) -> Tx | None:
        if self.bug("cross_player_tx_reuse"):
            return self.b_by_id.get(tx_id)
        return self.b_txs.get((player.player_id, tx_id))

    @staticmethod
    def _b_ok(player: Player, wallet_tx_id: str) -> dict[str, Any]:
        return {"user": player.player_id, "balance": player.balance, "currency": player.currency,
                "transactionId": wallet_tx_id}

    def _b_fields(self, op: str, data: dict[str, Any], player: Player) -> dict[str, Any]:
        out: dict[str, Any] = {"tx_id": _id(data, "transaction"), "round": _id(data, "round"),
                               "token": _id(data, "token")}
        _id(data, "game")
        if op == "rollback":
            out["ref"] = _id(data, "reference")
            return out
        code = data.get("currency")
        if not isinstance(code, str):
            raise _bad("currency must be a string")
        raw = data.get("amount")
        if isinstance(raw, str) and self.bug("string_amount_concatenated"):
            out["text"] = raw
            out["amount"] = _js_number(raw, player.exponent)
        else:
            # An unknown currency is read with the account's digits: it is then CURRENCY_MISMATCH, below.
            out["amount"] = _decimal_number(raw, CURRENCIES[code].exponent if code in CURRENCIES else player.exponent)
        if op == "win":
            reason = data.get("reason")
            if not isinstance(reason, str) or reason not in REASONS:
                raise _bad(f"reason must be one of {', '.join(sorted(REASONS))}")
            closed = data.get("roundClosed")
            if not isinstance(closed, bool):
                raise _bad("roundClosed must be true or false")
            out["reason"], out["closed"] = reason, closed
        if code != player.currency:
            raise Refusal(ErrorCode.CURRENCY_MISMATCH, f"the user plays in {player.currency}")
        return out

    def _b_round(self, player: Player, round_id: str) -> Round:
        return self.b_rounds.setdefault((player.player_id, round_id), Round())

    def _b_closed(self, player_id: str, round_id: str | None) -> bool:
        r = self.b_rounds.get((player_id, round_id or ""))
        return r is not None and r.closed

    def _b_bet(self, tx_id: str, player: Player, key: tuple[Any, ...], fields: dict[str, Any], now: float) -> Tx:
        if (player.player_id, tx_id) in self.b_tombstones:
            raise Refusal(ErrorCode.TX_ROLLED_BACK, "this transaction was rolled back before it arrived")
        if self._b_closed(player.player_id, fields["round"]):
            raise Refusal(ErrorCode.ROUND_CLOSED, "the round is closed")
        if player.blocked:
            raise Refusal(ErrorCode.PLAYER_BLOCKED, "the user is blocked")
        token = self.tokens.get(fields["token"])
        if token is None or token.player_id != player.player_id:
            raise Refusal(ErrorCode.INVALID_TOKEN, "a bet needs a session of its own user")
        if token.first_used_at is None:
            token.first_used_at = now
        if not token.live_b(now):
            raise Refusal(ErrorCode.SESSION_EXPIRED, "the session has expired")
        amount: int = fields["amount"]
        if amount > player.balance:
            raise Refusal(ErrorCode.INSUFFICIENT_FUNDS, "insufficient funds")
        player.balance -= amount
        r = self._b_round(player, fields["round"])
        r.live_bets += 1
        r.had_bet = True
        return self._record("b", tx_id, "bet", player, key, amount, -amount, now, round_id=fields["round"])

    def _b_win(self, tx_id: str, player: Player, key: tuple[Any, ...], fields: dict[str, Any], now: float) -> Tx:
        round_id = fields["round"]
        self._b_token(fields, player, now)
        if self._b_closed(player.player_id, round_id):
            raise Refusal(ErrorCode.ROUND_CLOSED, "the round is closed")
        r = self.b_rounds.get((player.player_id, round_id))
        if fields["reason"] == "regular" and (r is None or not r.had_bet):
            raise Refusal(ErrorCode.ROUND_NOT_FOUND, "a regular win needs a bet in its round")
        amount: int = fields["amount"]
        if "text" in fields:  # string_amount_concatenated: balance + "1.50", as JavaScript adds
            new = _js_concatenated(player.balance, fields["text"], player.exponent)
            if new is None:
                raise _bad("amount is not a number")
            delta = new - player.balance
        else:
            delta = amount
        player.balance += delta
        if fields["closed"]:
            self._b_round(player, round_id).closed = True
        return self._record("b", tx_id, "win", player, key, amount, delta, now, round_id=round_id)

    def _b_rollback(self, tx_id: str, player: Player, key: tuple[Any, ...], fields: dict[str, Any],
                    now: float) -> Tx:
        ref_id, round_id = fields["ref"], fields["round"]
        self._b_token(fields, player, now)
        ref = self.b_txs.get((player.player_id, ref_id))
        if ref is not None and ref.op != "bet":
            raise Refusal(ErrorCode.ROLLBACK_NOT_ALLOWED, "only a bet can be rolled back")
        if self._b_closed(player.player_id, round_id) or (ref is not None and self._b_closed(ref.player_id,
                                                                                              ref.round_id)):
            raise Refusal(ErrorCode.ROUND_CLOSED, "the round is closed")
        if ref is None:
            self.b_tombstones.add((player.player_id, ref_id))
            return self._record("b", tx_id, "rollback", player, key, None, 0, now, ref_tx_id=ref_id,
                                round_id=round_id)
        if ref.rolled_back:
            return self._record("b", tx_id, "rollback", player, key, None, 0, now, ref_tx_id=ref_id,
                                round_id=round_id)
        assert ref.amount is not None
        ref.rolled_back = True
        player.balance += ref.amount
        r = self.b_rounds.get((player.player_id, ref.round_id or ""))
        if r is not None:
            r.live_bets -= 1
        return self._record("b", tx_id, "rollback", player, key, ref.amount, ref.amount, now, ref_tx_id=ref_id,
                            round_id=round_id)

    # -- admin -------------------------------------------------------------------------------------
    async def create_player(self, data: dict[str, Any], now: float) -> Player:
        player_id = data.get("player_id")
        if not isinstance(player_id, str) or not player_id:
            raise _bad("player_id must be a non-empty string")
        code = data.get("currency")
        if not isinstance(code, str) or code not in CURRENCIES:
            raise _bad(f"currency must be one of {', '.join(CURRENCIES)}")
        balance = data.get("balance", 0)
        if type(balance) is not int or balance < 0:
            raise _bad("balance must be an integer >= 0")
        async with self.admin_lock:
            if player_id in self.players:
                raise Refusal(ErrorCode.PLAYER_EXISTS, "a player with this id exists")
            player = self.players[player_id] = Player(player_id, code, balance)
            if balance:
                self._record("admin", None, "deposit", player, (), balance, balance, now)
            return player

    def admin_player(self, player_id: str) -> Player:
        player = self.players.get(player_id)
        if player is None:
            raise Refusal(ErrorCode.PLAYER_NOT_FOUND, "no such player")
        return player

    async def deposit(self, player_id: str, data: dict[str, Any], now: float) -> Player:
        amount = data.get("amount")
        if type(amount) is not int or amount < 1:
            raise _bad("amount must be an integer >= 1")
        player = self.admin_player(player_id)
        async with self.lock(player_id):
            player.balance += amount
            self._record("admin", None, "deposit", player, (), amount, amount, now)
            return player

    async def set_blocked(self, player_id: str, blocked: bool) -> Player:
        player = self.admin_player(player_id)
        async with self.lock(player_id):
            player.blocked = blocked
            return player

    async def issue_token(self, data: dict[str, Any], now: float) -> dict[str, Any]:
        player_id = data.get("player_id")
        if not isinstance(player_id, str):
            raise _bad("player_id must be a string")
        ttl = data.get("ttl_s", self.session_ttl)
        if type(ttl) is not int or ttl < 0:
            raise _bad("ttl_s must be an integer >= 0")
        self.admin_player(player_id)
        token = secrets.token_hex(16)
        self.tokens[token] = Token(player_id, ttl, now)
        return {"token": token, "player_id": player_id, "ttl_s": ttl}


# -- JavaScript's + and -, for string_amount_concatenated --------------------------------------------

_JS_PREFIX = re.compile(r"\s*-?[0-9]+(\.[0-9]+)?")


def _js_text(minor: int, exponent: int) -> str:
    """A balance as JavaScript prints the Number of its major units (100, 100.5: no trailing zeros)."""
    text = format(Decimal(minor).scaleb(-exponent).normalize(), "f")
    return text


def _js_float(text: str, exponent: int) -> int | None:
    """``parseFloat(text)`` in minor units (truncated to the currency's digits); None for NaN."""
    m = _JS_PREFIX.match(text)
    if m is None:
        return None
    try:
        value = Decimal(m.group(0).strip())
    except InvalidOperation:
        return None
    return int(value.scaleb(exponent).to_integral_value(rounding="ROUND_DOWN"))


def _js_number(text: str, exponent: int) -> int:
    """A string amount taken as JavaScript's ``-`` takes it (a bet: ``balance - "1.50"`` subtracts 1.50)."""
    value = _js_float(text, exponent)
    if value is None or value < 0 or not _JS_PREFIX.fullmatch(text):
        raise _bad("amount is not a number")
    return value


def _js_concatenated(balance: int, text: str, exponent: int) -> int | None:
    """``balance + "1.50"`` in JavaScript is the string "1001.50" (balance 100); stored back as a number."""
    return _js_float(_js_text(balance, exponent) + text, exponent)


# -- signatures ---------------------------------------------------------------------------------------


def canonical_json(data: Any) -> bytes:
    """Shape A's signed text: the body re-serialised with sorted keys, no spaces, UTF-8 unescaped."""
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError) as exc:
        raise _bad(f"body cannot be re-serialised: {type(exc).__name__}") from None


def sign_a(secret: str, data: Any) -> str:
    """The ``X-Hmac-Signature`` of a shape-A body (for tests and curl by hand)."""
    return hmac.new(secret.encode(), canonical_json(data), hashlib.sha256).hexdigest()


def sign_b(secret: str, timestamp: int, signed: str | bytes) -> str:
    """The ``X-Signature`` of a shape-B request: HMAC-MD5 over the timestamp then the body (or query)."""
    text = signed.encode() if isinstance(signed, str) else signed
    return hmac.new(secret.encode(), str(timestamp).encode() + text, hashlib.md5).hexdigest()


def _verify_a(secret: str, header: str | None, data: Any) -> None:
    if not header:
        raise Refusal(ErrorCode.INVALID_SIGNATURE, f"missing {A_SIGNATURE_HEADER}")
    if not hmac.compare_digest(header.strip().lower().encode("ascii", "replace"), sign_a(secret, data).encode()):
        raise Refusal(ErrorCode.INVALID_SIGNATURE, "signature does not match")


def _verify_b(secret: str, request: web.Request, signed: bytes, now: float) -> None:
    t, sig = request.headers.get(B_TIMESTAMP_HEADER), request.headers.get(B_SIGNATURE_HEADER)
    if not t or not sig:
        raise Refusal(ErrorCode.INVALID_SIGNATURE, f"missing {B_TIMESTAMP_HEADER} or {B_SIGNATURE_HEADER}")
    if not t.isascii() or not t.isdigit() or len(t) > 12:
        raise Refusal(ErrorCode.INVALID_SIGNATURE, f"{B_TIMESTAMP_HEADER} must be unix seconds")
    if abs(now - int(t)) > SIGNATURE_WINDOW_S:
        raise Refusal(ErrorCode.INVALID_SIGNATURE, f"timestamp more than {SIGNATURE_WINDOW_S}s from the clock")
    if not hmac.compare_digest(sig.strip().lower().encode("ascii", "replace"),
                               sign_b(secret, int(t), signed).encode()):
        raise Refusal(ErrorCode.INVALID_SIGNATURE, "signature does not match")


# -- HTTP --------------------------------------------------------------------------------------------

WALLET: Final = web.AppKey("shaped_wallet", ShapedWallet)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body, separators=(",", ":")).encode(),
                        content_type="application/json")


def _raw_json(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, body=text.encode(), content_type="application/json")


def _a_error(r: Refusal) -> web.Response:
    if r.code is ErrorCode.INSUFFICIENT_FUNDS:
        return _json({"status": "INSUFFICIENT_FUNDS"}, A_HTTP.get(r.code, 200))
    code = A_CODES.get(r.code, A_CODES[ErrorCode.BAD_REQUEST])
    return _json({"status": "ERROR", "error": {"code": code, "message": r.message}}, A_HTTP.get(r.code, 200))


def _b_error(r: Refusal) -> web.Response:
    code = r.code if r.code in B_CODES else ErrorCode.BAD_REQUEST
    return _json({"code": B_CODES[code], "msg": r.message}, http_status(code))


def _b_answer(wallet: ShapedWallet, fields: dict[str, Any]) -> web.Response:
    """Shape B's success: balances as JSON numbers of major units, written exactly (never through a float)."""
    parts = []
    for k, v in fields.items():
        if k == "balance":
            exponent = CURRENCIES[fields["currency"]].exponent
            parts.append(f"{json.dumps(k)}:{_major(v, exponent)}")
        else:
            parts.append(f"{json.dumps(k)}:{json.dumps(v)}")
    return _raw_json("{" + ",".join(parts) + "}")


async def _read(request: web.Request) -> bytes:
    """The body, refused (BAD_REQUEST) past 64 KiB before it is buffered or parsed."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _bad(f"body larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY + 1 - size):
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_BODY:
            raise _bad(f"body larger than {MAX_BODY} bytes")
    return b"".join(chunks)


def _guard(answer: Callable[[Refusal], web.Response], handler: Handler) -> Handler:
    """A wire's refusals in its own envelope; anything unforeseen is its 500 (outcome unknown)."""
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refusal as r:
            return answer(r)
        except Exception as exc:  # noqa: BLE001 - the answer that says "outcome unknown"
            return answer(Refusal(ErrorCode.INTERNAL, f"internal error: {type(exc).__name__}"))

    return guarded


def _a_handler(op: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        wallet = request.app[WALLET]
        raw = await _read(request)
        now = wallet.clock()
        _verify_a(wallet.secret, request.headers.get(A_SIGNATURE_HEADER), _object(raw, exact=False))
        fields = await wallet.a_call(op, _object(raw), now)
        body = {"status": "OK", "balance": str(fields["balance"])}
        if "transactionId" in fields:
            body["transactionId"] = fields["transactionId"]
        return _json(body)

    return _guard(_a_error, handle)


def _b_get(op: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        wallet = request.app[WALLET]
        now = wallet.clock()
        _verify_b(wallet.secret, request, request.rel_url.raw_query_string.encode(), now)
        query = {k: v for k, v in request.query.items()}
        if op == "userinfo":
            return _json(wallet.b_userinfo(query, now))
        return _b_answer(wallet, await wallet.b_balance(query, now))

    return _guard(_b_error, handle)


def _b_post(op: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        wallet = request.app[WALLET]
        raw = await _read(request)
        now = wallet.clock()
        _verify_b(wallet.secret, request, raw, now)
        return _b_answer(wallet, await wallet.b_call(op, _object(raw), now))

    return _guard(_b_error, handle)


def _admin(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        wallet = request.app[WALLET]
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, f"Bearer {wallet.admin_token}".encode()):
            return _json({"status": "error", "code": "UNAUTHORIZED", "message": "Authorization: Bearer <token>"},
                         401)
        try:
            return await handler(request)
        except Refusal as r:
            return _json({"status": "error", "code": str(r.code), "message": r.message}, http_status(r.code))

    return guarded


async def _admin_body(request: web.Request) -> dict[str, Any]:
    raw = await _read(request)
    return _object(raw) if raw.strip() else {}


@_admin
async def _create_player(request: web.Request) -> web.StreamResponse:
    wallet = request.app[WALLET]
    player = await wallet.create_player(await _admin_body(request), wallet.clock())
    return _json(player.to_json(), 201)


@_admin
async def _get_player(request: web.Request) -> web.StreamResponse:
    return _json(request.app[WALLET].admin_player(request.match_info["player_id"]).to_json())


@_admin
async def _deposit(request: web.Request) -> web.StreamResponse:
    wallet = request.app[WALLET]
    player = await wallet.deposit(request.match_info["player_id"], await _admin_body(request), wallet.clock())
    return _json(player.to_json())


def _blocker(blocked: bool) -> Handler:
    @_admin
    async def handle(request: web.Request) -> web.StreamResponse:
        await _admin_body(request)
        return _json((await request.app[WALLET].set_blocked(request.match_info["player_id"], blocked)).to_json())

    return handle


@_admin
async def _token(request: web.Request) -> web.StreamResponse:
    wallet = request.app[WALLET]
    return _json(await wallet.issue_token(await _admin_body(request), wallet.clock()), 201)


@_admin
async def _transactions(request: web.Request) -> web.StreamResponse:
    wallet = request.app[WALLET]
    player_id = request.query.get("player_id") or None
    rows = [t.to_json() for t in list(wallet.log) if player_id is None or t.player_id == player_id]
    return web.Response(body="".join(json.dumps(r) + "\n" for r in rows).encode(),
                        content_type="application/x-ndjson")


async def _healthz(request: web.Request) -> web.StreamResponse:
    return _json({"status": "ok", "store": "shaped-memory"})


def make_shaped_app(secret: str = SECRET, admin_token: str = ADMIN_TOKEN, bugs: frozenset[str] = frozenset(),
                    session_ttl: int = 3600, clock: Callable[[], float] = time.time) -> web.Application:
    """Both shapes (A under /a/, B under /b/) and the admin API, with the bugs named in ``bugs``."""
    app = web.Application(client_max_size=MAX_BODY)
    app[WALLET] = ShapedWallet(secret, admin_token, frozenset(bugs), session_ttl, clock)
    a, b = SHAPES["session-wallet"], SHAPES["query-wallet"]
    for op, path in A_PATHS.items():
        app.router.add_post(f"{a}/{path}", _a_handler(op))
    app.router.add_get(f"{b}/userinfo", _b_get("userinfo"))
    app.router.add_get(f"{b}/balance", _b_get("balance"))
    for op in ("bet", "win", "rollback"):
        app.router.add_post(f"{b}/{op}", _b_post(op))
    app.router.add_post("/admin/players", _create_player)
    app.router.add_get("/admin/players/{player_id}", _get_player)
    app.router.add_post("/admin/players/{player_id}/deposit", _deposit)
    app.router.add_post("/admin/players/{player_id}/block", _blocker(True))
    app.router.add_post("/admin/players/{player_id}/unblock", _blocker(False))
    app.router.add_post("/admin/tokens", _token)
    app.router.add_get("/admin/transactions", _transactions)
    app.router.add_get("/healthz", _healthz)
    return app


def bugs_of(name: str) -> frozenset[str]:
    """``"correct"``: no bug; otherwise one key of :data:`SHAPED_PLANTED`."""
    if name == "correct":
        return frozenset()
    if name not in SHAPED_PLANTED:
        raise ValueError(f"unknown shaped wallet {name!r}")
    return frozenset({name})


# -- serving -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def shaped_servers(names: list[str]) -> Iterator[dict[str, str]]:
    """Serve the named wallets (``"correct"`` and/or bugs) from one child process: {name: host URL}.

    Shape A's base URL is ``URL + "/a"``, shape B's ``URL + "/b"``, the admin API ``URL``."""
    with serve_from_child("tests.shaped_wallets", names) as bases:
        yield bases


def main() -> None:
    """Serve one shaped wallet until interrupted, or several (``--many``: one port each, printed as JSON)."""
    wallet_main(__doc__, ["correct", *sorted(SHAPED_PLANTED)], 8097, SECRET, ADMIN_TOKEN,
                lambda name, secret, token: make_shaped_app(secret, token, bugs_of(name)))

if __name__ == "__main__":
    main()
