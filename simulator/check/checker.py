"""Run steps against a wallet and judge every answer by the model; keep the evidence.

A *step* is a small JSON-able dict (``{"kind": "call", "call": {...}}``) that
names players, sessions, transactions and rounds by aliases and local ids.
The :class:`Checker` turns them into concrete calls (every id gets the
example's fresh prefix, so a sequence can run again on a wallet that still
holds the first run's data), sends them, asks :class:`~.model.WalletModel`
what a correct wallet must have answered, and raises a
:class:`~.protocol.Violation` naming the broken PROTOCOL.md rule when the two
differ.  The Hypothesis machine produces steps; ``croupier replay`` reads them
back from a file; both run through here, so a replay is judged exactly as the
original run was.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from ..calls import MONEY_OPS, Ok, Op, Rejected, Unknown, WalletCall, WinReason
from ..codes import ErrorCode, http_status
from ..dialects.canonical import call_to_json
from ..money import INT64_MAX, Money
from .model import Expected, WalletModel
from .protocol import Violation, violation
from .target import CheckError, Connection, Sent

GAME = "g1"

_CODE_RULE: dict[ErrorCode, str] = {
    ErrorCode.PLAYER_NOT_FOUND: "operations-unknown-player",
    ErrorCode.INVALID_TOKEN: "sessions-token-of-player",
    ErrorCode.SESSION_EXPIRED: "sessions-bet-needs-live-session",
    ErrorCode.CURRENCY_MISMATCH: "money-currency",
    ErrorCode.PLAYER_BLOCKED: "sessions-blocked-player",
    ErrorCode.TX_ROLLED_BACK: "idempotency-5-tombstone",
    ErrorCode.ROUND_CLOSED: "operations-round-closed",
    ErrorCode.INSUFFICIENT_FUNDS: "idempotency-7-never-negative",
    ErrorCode.ROUND_NOT_FOUND: "operations-regular-win-needs-bet",
    ErrorCode.LIMIT_EXCEEDED: "money-64-bit",
    ErrorCode.ROLLBACK_NOT_ALLOWED: "idempotency-6-rollback-only-bets",
    ErrorCode.DUPLICATE_MISMATCH: "idempotency-2-mismatch",
    ErrorCode.INVALID_SIGNATURE: "transport-signature",
    ErrorCode.BAD_REQUEST: "transport-bad-request",
}

MUTATIONS: dict[str, str] = {
    "amount-float": "money-minor-units",
    "amount-string": "money-minor-units",
    "amount-negative": "money-minor-units",
    "amount-boolean": "money-minor-units",
    "amount-past-64-bit": "money-minor-units",
    "missing-field": "transport-bad-request",
    "not-json": "transport-bad-request",
    "not-an-object": "transport-bad-request",
    "oversized": "transport-bad-request",
    "unknown-currency": "money-currency",
    "bad-reason": "transport-bad-request",
    "round-closed-not-boolean": "transport-bad-request",
}
"""Malformed variants of a valid bet or win (canonical dialect) and the rule each tests."""


@dataclass
class Entry:
    """One line of evidence: a numbered protocol call, an admin action, or a balance check."""

    kind: str
    """call | admin | check"""
    n: int | None = None
    op: str = ""
    request: str = ""
    sign: str = "ok"
    expected: str = ""
    status: int | None = None
    response: str = ""
    note: str = ""
    group: int | None = None
    """Calls sent at once share a group number."""
    bad: bool = False


@dataclass
class _Judged:
    call: WalletCall
    expected: Expected
    alternatives: frozenset[ErrorCode]
    rule: str
    """The rule an answer other than the expected one breaks."""
    player_balance: int | None = None
    refused_rule: str = ""
    """The rule a rejection breaks where a success was due (a win refused for an expired session...)."""


@dataclass
class Problem:
    rule: str
    message: str
    kind: str = "decision"
    """decision (ok/rejected/code wrong), balance (right decision, wrong balance), id, wire"""


def _text(body: bytes, limit: int = 4000) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(body)} bytes)"


@dataclass
class Checker:
    """One example's worth of state: the model, the aliases, and the evidence so far."""

    conn: Connection
    prefix: str
    strict_codes: bool = False
    clock: Callable[[], float] = time.time
    on_violation: Callable[[Violation], None] | None = None
    model: WalletModel = field(default_factory=WalletModel)
    players: dict[str, str] = field(default_factory=dict)
    """player alias → concrete player_id"""
    sessions: dict[str, str] = field(default_factory=dict)
    """session alias → session token"""
    session_player: dict[str, str] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    calls: int = 0
    groups: int = 0
    rule: str = "operations-effect"
    """The rule that governs the last step: a balance check after it that fails breaks this rule."""
    rejected: set[str] = field(default_factory=set)
    wallet_tx_ids: set[str] = field(default_factory=set)

    # -- aliases ----------------------------------------------------------------------
    def cid(self, local: str) -> str:
        return self.prefix + local

    def player_id(self, alias: str) -> str:
        return self.players.get(alias) or self.cid(alias)

    def session_token(self, alias: str) -> str:
        return self.sessions.get(alias) or self.cid(alias)

    def currency(self, alias: str) -> str:
        return self.model.players[self.players[alias]].currency

    def balance(self, alias: str) -> int:
        return self.model.players[self.players[alias]].balance

    def blocked(self, alias: str) -> bool:
        return self.model.players[self.players[alias]].blocked

    def live(self, session_alias: str) -> bool:
        s = self.model.sessions.get(self.sessions.get(session_alias, ""))
        return s is not None and s.live(self.clock())

    def accepted(self, spec: dict[str, Any]) -> bool:
        return self.cid(spec["tx"]) in self.model.txs

    def rolled_back(self, spec: dict[str, Any]) -> bool:
        tx = self.model.txs.get(self.cid(spec["tx"]))
        return tx is not None and tx.rolled_back

    def concrete(self, spec: dict[str, Any]) -> WalletCall:
        op = Op(spec["op"])
        pid, sess = self.player_id(spec["player"]), self.session_token(spec["session"])
        if op is Op.BALANCE:
            return WalletCall.balance(pid, sess)
        amount = Money.of(spec["amount"], spec["currency"]) if "amount" in spec else None
        return WalletCall(
            op, player_id=pid, session_token=sess, game_id=spec.get("game", GAME), tx_id=self.cid(spec["tx"]),
            round_id=self.cid(spec["round"]), amount=amount,
            ref_tx_id=self.cid(spec["ref"]) if "ref" in spec else None,
            reason=WinReason(spec["reason"]) if op is Op.WIN else None,
            round_closed=bool(spec.get("closed", False)) if op is Op.WIN else None,
        )

    def fits(self, specs: list[dict[str, Any]]) -> bool:
        """Whether the dialect's wire can carry ``specs`` and every answer the model expects for them.

        A currency or amount the wire cannot carry, or a success whose balance it cannot carry (in any
        order of the calls, for calls sent at once), is a call the machine must not make there (a wire
        with integers scaled by 100 000 never reaches the 64-bit limit). The canonical wire carries all."""
        wire = self.conn.wire
        for spec in specs:
            code = spec.get("currency")
            if code is not None and (code not in wire.limit or spec["amount"] > wire.limit[code]):
                return False
        if all(wire.full(c) for c in wire.currencies):
            return True
        now = self.clock()
        for order in itertools.permutations(specs):
            m = copy.deepcopy(self.model)
            for spec in order:
                m.apply(self.concrete(spec), now)
                if any(p.balance > wire.limit.get(p.currency, INT64_MAX) for p in m.players.values()):
                    return False
        return True

    # -- steps ------------------------------------------------------------------------
    def execute(self, step: dict[str, Any]) -> Any:
        self.steps.append(step)
        handler: Callable[[dict[str, Any]], Any] = getattr(self, "_do_" + step["kind"].replace("-", "_"))
        return handler(step)

    def add_player(self, alias: str, currency: str, balance: int, suffix: str = "") -> None:
        self.execute({"kind": "player", "alias": alias, "currency": currency, "balance": balance, "suffix": suffix})

    def use_account(self, alias: str, account: int, session: str) -> None:
        self.execute({"kind": "account", "alias": alias, "account": account, "session": session})

    def login(self, player: str, session: str, ttl: int) -> bool:
        return bool(self.execute({"kind": "login", "player": player, "session": session, "ttl": ttl}))

    def call(self, spec: dict[str, Any], sign: str = "ok", note: str = "") -> Sent:
        step: dict[str, Any] = {"kind": "call", "call": spec}
        if sign != "ok":
            step["sign"] = sign
        if note:
            step["note"] = note
        return self.execute(step)  # type: ignore[no-any-return]

    def check(self) -> None:
        self.execute({"kind": "check"})

    # -- players and sessions ---------------------------------------------------------
    def _admin_entry(self, text: str) -> None:
        self.entries.append(Entry("admin", request=text))

    def _do_player(self, step: dict[str, Any]) -> None:
        alias, code, balance = step["alias"], step["currency"], step["balance"]
        pid = self.cid(alias + step.get("suffix", ""))
        self.conn.create_player(pid, code, balance)
        self._admin_entry(f"create player {alias} = {pid!r}: {code}, balance {balance}")
        self.players[alias] = pid
        self.model.create_player(pid, code, balance)

    def _do_account(self, step: dict[str, Any]) -> None:
        """A test account: its session was made once per check; read its balance as the example's start."""
        accounts = self.conn.target.accounts
        if not accounts or step["account"] >= len(accounts):
            raise CheckError(f"step needs test account #{step['account'] + 1}; --players has {len(accounts or [])}")
        acc = accounts[step["account"]]
        token = self.conn.account_sessions[step["account"]]
        alias, sess = step["alias"], step["session"]
        self.players[alias] = acc.player_id
        call = WalletCall.balance(acc.player_id, token)
        sent = self.conn.send(call)
        entry = self._entry(call, sent, "200 ok (the account's balance, read as the example's start)")
        entry.note = f"test account {alias} = {acc.player_id!r}"
        if not isinstance(sent.outcome, Ok):
            entry.bad = True
            self._fail(Problem("sessions-token-of-player", f"the balance of test account {acc.player_id!r} "
                               f"could not be read with its session: {_outcome(sent)}"), entry.n)
        assert isinstance(sent.outcome, Ok)
        self.model.create_player(acc.player_id, acc.currency, sent.outcome.balance.minor)
        launch = f"account-{step['account']}"
        self.model.issue_token(launch, acc.player_id, 10 * 365 * 86400)
        self.model.record_session(launch, token, self.clock())
        self.sessions[sess] = token
        self.session_player[sess] = alias

    def _do_login(self, step: dict[str, Any]) -> bool:
        """A launch token from the admin API, exchanged by ``authenticate`` (the session lives ``ttl`` s)."""
        alias, sess, ttl = step["player"], step["session"], step["ttl"]
        pid = self.players[alias]
        token = self.conn.launch_token(pid, ttl)
        self._admin_entry(f"launch token for {alias} (session lifetime {ttl} s)")
        self.model.issue_token(token, pid, ttl)
        call = WalletCall.authenticate(token, GAME)
        now = self.clock()
        expected = self.model.apply(call, now)
        sent = self.conn.send(call)
        if expected[0] == "rejected":
            entry = self._entry(call, sent, _expected_text(call, expected, frozenset()))
            if not (isinstance(sent.outcome, Rejected) and sent.outcome.code == expected[1]):
                entry.bad = True
                self._fail(Problem(_CODE_RULE.get(expected[1], "sessions-blocked-player"),
                                   f"authenticate: expected {expected[1]}, got {_outcome(sent)}"), entry.n)
            return False
        entry = self._entry(call, sent, f"200 ok, player {alias}, balance {expected[1]}, a session token")
        out = sent.outcome
        problem = None
        if not isinstance(out, Ok):
            problem = _wire_problem(sent) or f"expected a session, got {_outcome(sent)}"
        elif out.player_id != pid or out.balance.minor != expected[1] or not out.session_token:
            problem = (f"answered player {out.player_id!r}, balance {out.balance.minor}, session "
                       f"{out.session_token!r}; the model holds {pid!r}, balance {expected[1]}")
        elif out.balance.currency.code != self.model.players[pid].currency:
            problem = f"answered currency {out.balance.currency.code}, the player's is {self.model.players[pid].currency}"
        if problem:
            entry.bad = True
            self._fail(Problem("operations-authenticate", problem), entry.n)
        assert isinstance(out, Ok) and out.session_token
        self.model.record_session(token, out.session_token, now)
        self.sessions[sess] = out.session_token
        self.session_player[sess] = alias
        entry.note = f"session {sess}" + (" (already expired: lifetime 0 s)" if ttl == 0 else "")
        return True

    def _do_block(self, step: dict[str, Any]) -> None:
        pid = self.players[step["player"]]
        self.conn.block(pid, step["blocked"])
        self.model.set_blocked(pid, step["blocked"])
        self._admin_entry(f"{'block' if step['blocked'] else 'unblock'} player {step['player']}")
        self.rule = "sessions-blocked-player"

    def _do_deposit(self, step: dict[str, Any]) -> None:
        pid = self.players[step["player"]]
        got = self.conn.deposit(pid, step["amount"])
        want = self.model.deposit(pid, step["amount"])
        self._admin_entry(f"deposit {step['amount']} to {step['player']}: balance {got} (model {want})")
        self.rule = "operations-effect"
        if got != want:
            self.entries[-1].bad = True
            self._fail(Problem("operations-effect", f"admin deposit answered balance {got}, the model holds {want}"))

    # -- expectations -----------------------------------------------------------------
    def _alternatives(self, m: WalletModel, call: WalletCall, now: float) -> frozenset[ErrorCode]:
        """Every rejection PROTOCOL.md allows for a new call (it does not fix the order of the checks)."""
        if self.strict_codes or call.op not in MONEY_OPS:
            return frozenset()
        assert call.tx_id and call.player_id and call.round_id and call.session_token
        if call.tx_id in m.txs:
            return frozenset()
        out: set[ErrorCode] = set()
        player = m.players.get(call.player_id)
        if player is None:
            return frozenset({ErrorCode.PLAYER_NOT_FOUND, ErrorCode.INVALID_TOKEN})
        sess = m.sessions.get(call.session_token)
        if sess is None or sess.player_id != player.player_id:
            out.add(ErrorCode.INVALID_TOKEN)
        elif call.op is Op.BET and not sess.live(now):
            out.add(ErrorCode.SESSION_EXPIRED)
        if call.amount is not None and call.amount.currency.code != player.currency:
            out.add(ErrorCode.CURRENCY_MISMATCH)
        closed = m._closed(player.player_id, call.round_id)
        if call.op is Op.BET:
            assert call.amount is not None
            if player.blocked:
                out.add(ErrorCode.PLAYER_BLOCKED)
            if call.tx_id in m.tombstones:
                out.add(ErrorCode.TX_ROLLED_BACK)
            if closed:
                out.add(ErrorCode.ROUND_CLOSED)
            if call.amount.minor > player.balance:
                out.add(ErrorCode.INSUFFICIENT_FUNDS)
        elif call.op is Op.WIN:
            assert call.amount is not None
            rnd = m.rounds.get((player.player_id, call.round_id))
            if closed:
                out.add(ErrorCode.ROUND_CLOSED)
            if call.reason is WinReason.REGULAR and (rnd is None or rnd.live_bets == 0):
                out.add(ErrorCode.ROUND_NOT_FOUND)
            if player.balance + call.amount.minor > INT64_MAX:
                out.add(ErrorCode.LIMIT_EXCEEDED)
        else:
            target = m.txs.get(call.ref_tx_id or "")
            if target is not None and (target.op is not Op.BET or target.player_id != player.player_id
                                       or target.round_id != call.round_id):
                out.add(ErrorCode.ROLLBACK_NOT_ALLOWED)
        return frozenset(out)

    def _expect(self, m: WalletModel, call: WalletCall) -> _Judged:
        """What ``m`` says ``call`` must get (``m`` moves), and the rule that governs it."""
        now = self.clock()
        alternatives = self._alternatives(m, call, now)
        seen = m.txs.get(call.tx_id) if call.tx_id else None
        player = m.players.get(call.player_id or "")
        sess = m.sessions.get(call.session_token or "")
        expired = sess is not None and not sess.live(now)
        blocked = player is not None and player.blocked
        ref_known = call.ref_tx_id in m.txs if call.ref_tx_id else False
        before = player.balance if player else None
        expected = m.apply(call, now)
        if call.op in MONEY_OPS and seen is not None:
            rule = "idempotency-1-no-change" if expected[0] == "ok" else "idempotency-2-mismatch"
        elif expected[0] == "rejected":
            rule = _CODE_RULE.get(expected[1], "operations-effect")
            if expected[1] is ErrorCode.INVALID_TOKEN and call.op is Op.BET:
                rule = "sessions-bet-needs-live-session"
        elif call.op is Op.ROLLBACK:
            rule = "idempotency-4-rollback-once" if ref_known else "idempotency-5-tombstone"
        else:
            rule = "operations-effect"
        refused = rule
        if expected[0] == "ok" and call.op in (Op.WIN, Op.ROLLBACK) and seen is None:
            refused = ("sessions-money-owed-is-paid" if expired else
                       "sessions-blocked-player" if blocked else rule)
        if expected[0] == "ok" and seen is None and call.tx_id in self.rejected:
            rule = refused = "idempotency-3-rejected-not-recorded"
        return _Judged(call, expected, alternatives | ({expected[1]} if expected[0] == "rejected" else set()),
                       rule, before, refused)

    def _problem(self, j: _Judged, sent: Sent, ids: set[str]) -> Problem | None:
        """What is wrong with ``sent`` as the answer to ``j`` (None: nothing)."""
        out, expected = sent.outcome, j.expected
        wire = _wire_problem(sent)
        if wire is not None:
            return Problem(_wire_rule(sent, j), wire, "wire")
        if expected[0] == "rejected":
            code = expected[1]
            if isinstance(out, Rejected):
                if out.code == code or out.code in j.alternatives:
                    return None
                return Problem(self._invented(j, out.code), f"expected {_codes(code, j.alternatives)}, got {out.code}")
            assert isinstance(out, Ok)
            return Problem(j.rule, f"expected {_codes(code, j.alternatives)}, got 200 ok (balance "
                                   f"{out.balance.minor})")
        _, balance, original = expected
        if isinstance(out, Rejected):
            refused = j.refused_rule if out.code in _SESSION_CODES else j.rule
            return Problem(refused, f"expected 200 ok with balance {balance}, got {out.code}")
        assert isinstance(out, Ok)
        player = self._model_player(j)
        if player is not None and out.balance.currency.code != player:
            return Problem("money-currency", f"answered in {out.balance.currency.code}; the player's currency is {player}")
        if out.balance.minor < 0:
            return Problem("idempotency-7-never-negative", f"answered a negative balance {out.balance.minor}")
        if out.balance.minor != balance:
            return Problem(j.rule, f"answered balance {out.balance.minor}; the model holds {balance}"
                                   + (f" (it was {j.player_balance} before)" if j.player_balance is not None else ""),
                           "balance")
        if j.call.op in MONEY_OPS:
            if original is not None and out.wallet_tx_id != original:
                return Problem("idempotency-1-original-id",
                               f"a replay answered wallet_tx_id {out.wallet_tx_id!r}; the original was {original!r}", "id")
            if original is None and out.wallet_tx_id in ids:
                return Problem("operations-success-shape",
                               f"wallet_tx_id {out.wallet_tx_id!r} was already given to another transaction", "id")
        return None

    def _invented(self, j: _Judged, code: ErrorCode) -> str:
        """The rule broken by answering ``code`` where its condition does not hold (another rejection was due)."""
        if j.rule == "idempotency-2-mismatch":
            # A reused tx_id is judged by the record first: whatever else is wrong with the call, the
            # wallet that answers another code did not look the tx_id up.
            return j.rule
        if j.call.tx_id in self.rejected:
            return "idempotency-3-rejected-not-recorded"
        if code is ErrorCode.SESSION_EXPIRED and j.call.op is not Op.BET:
            return "sessions-money-owed-is-paid"
        if code is ErrorCode.PLAYER_BLOCKED and j.call.op is not Op.BET:
            return "sessions-blocked-player"
        if code is ErrorCode.INVALID_TOKEN and j.call.op is Op.BET:
            return "sessions-bet-needs-live-session"
        return _CODE_RULE.get(code, j.rule)

    def _model_player(self, j: _Judged) -> str | None:
        p = self.model.players.get(j.call.player_id or "")
        return p.currency if p else None

    def _settle(self, m: WalletModel, j: _Judged, sent: Sent, ids: set[str]) -> None:
        """After an answer that matched: remember what the model cannot predict."""
        out = sent.outcome
        tx = j.call.tx_id
        if isinstance(out, Rejected) and tx:
            self.rejected.add(tx)
        if isinstance(out, Ok) and j.call.op in MONEY_OPS and j.expected[0] == "ok" and j.expected[2] is None:
            assert tx is not None and out.wallet_tx_id is not None
            m.record_wallet_tx_id(tx, out.wallet_tx_id)
            ids.add(out.wallet_tx_id)

    # -- sending ----------------------------------------------------------------------
    def _entry(self, call: WalletCall, sent: Sent, expected: str, group: int | None = None) -> Entry:
        self.calls += 1
        e = Entry("call", self.calls, str(call.op), _text(sent.request_body), sent.sign, expected, sent.status,
                  _text(sent.response_body) if sent.status is not None else str(sent.outcome), group=group)
        self.entries.append(e)
        return e

    def _do_call(self, step: dict[str, Any]) -> Sent:
        call = self.concrete(step["call"])
        sign = step.get("sign", "ok")
        sent = self.conn.send(call, sign)
        if sign != "ok":
            return self._judge_unsigned(call, sent, step)
        j = self._expect(self.model, call)
        entry = self._entry(call, sent, _expected_text(call, j.expected, j.alternatives))
        entry.note = step.get("note", "")
        self.rule = j.rule
        problem = self._problem(j, sent, self.wallet_tx_ids)
        if problem:
            entry.bad = True
            self._fail(problem, entry.n)
        self._settle(self.model, j, sent, self.wallet_tx_ids)
        return sent

    def _judge_unsigned(self, call: WalletCall, sent: Sent, step: dict[str, Any]) -> Sent:
        entry = self._entry(call, sent, "401 INVALID_SIGNATURE (changes nothing)")
        entry.note = step.get("note", "")
        self.rule = "transport-signature"
        out = sent.outcome
        if not (isinstance(out, Rejected) and out.code is ErrorCode.INVALID_SIGNATURE):
            entry.bad = True
            self._fail(Problem("transport-signature", f"a call signed {_SIGN_TEXT[sent.sign]} got {_outcome(sent)}"),
                       entry.n)
        if call.tx_id and call.tx_id not in self.model.txs:
            self.rejected.add(call.tx_id)
        return sent

    def _do_raw(self, step: dict[str, Any]) -> Sent:
        """A malformed variant of a valid call (canonical dialect): BAD_REQUEST, and nothing changes."""
        call = self.concrete(step["call"])
        mutation = step["mutation"]
        body = malformed_body(call, mutation)
        sent = self.conn.raw(call.op, body, call)
        code = ErrorCode.CURRENCY_MISMATCH if mutation == "unknown-currency" else ErrorCode.BAD_REQUEST
        rule = MUTATIONS[mutation]
        entry = self._entry(call, sent, f"{http_status(code)} {code} (changes nothing)")
        entry.note = f"malformed: {mutation}"
        self.rule = rule
        out = sent.outcome
        if not (isinstance(out, Rejected) and out.code is code):
            entry.bad = True
            self._fail(Problem(rule, f"a request with {mutation.replace('-', ' ')} got {_outcome(sent)}"), entry.n)
        if call.tx_id and call.tx_id not in self.model.txs:
            self.rejected.add(call.tx_id)
        return sent

    def _do_race(self, step: dict[str, Any]) -> list[Sent]:
        """Different calls for one player at once: the answers must fit some serial order of them."""
        calls = [self.concrete(s) for s in step["calls"]]
        sents = self.conn.send_all(calls)
        self.groups += 1
        problems: list[Problem] = []
        where: list[tuple[int, int]] = []
        """For each failed order: how many calls it judged right first, and the index of the call that failed."""
        chosen: tuple[WalletModel, dict[int, _Judged], set[str]] | None = None
        for order in itertools.permutations(range(len(calls))):
            m = copy.deepcopy(self.model)
            ids = set(self.wallet_tx_ids)
            judged: dict[int, _Judged] = {}
            problem = None
            for k, i in enumerate(order):
                judged[i] = self._expect(m, calls[i])
                problem = self._problem(judged[i], sents[i], ids)
                if problem:
                    where.append((k, i))
                    break
                self._settle(m, judged[i], sents[i], ids)
            if problem is None:
                chosen = (m, judged, ids)
                break
            problems.append(problem)
        shown = chosen[1] if chosen else self._expect_in_order(calls)
        for i, (call, sent) in enumerate(zip(calls, sents, strict=True)):
            j = shown.get(i)
            text = _expected_text(call, j.expected, j.alternatives) if j else "(not reached)"
            self._entry(call, sent, text, self.groups)
        self.rule = "idempotency-7-serialized"
        if chosen is None:
            for e in self.entries[-len(calls):]:
                e.bad = True
            self._fail(Problem(self._race_rule(problems, where), "the answers fit no serial order of the "
                               "calls sent at once: " + "; ".join(f"in order {n + 1}: {p.message}"
                                                                   for n, p in enumerate(problems))),
                       self.entries[-1].n)
        assert chosen is not None
        self.model, _, self.wallet_tx_ids = chosen
        return sents

    @staticmethod
    def _race_rule(problems: list[Problem], where: list[tuple[int, int]]) -> str:
        """Serialization, unless the answers show a bug that needs no race to break its own rule.

        That is: the order that got furthest fails on a wallet_tx_id (serializing never changes ids), or every
        order fails on the same call for the same rule (the other call does not matter), or every order fails
        on the same wrong decision."""
        rules = {p.rule for p in problems}
        furthest = max(range(len(problems)), key=lambda n: where[n][0])
        if problems[furthest].kind == "id":
            return problems[furthest].rule
        if len({i for _, i in where}) == 1 and len(rules) == 1:
            return next(iter(rules))
        if rules and all(r.startswith("idempotency-1-") for r in rules):
            # every order fails on the replay among the calls: a replay bug, which needs no race to show
            return "idempotency-1-no-change" if any(p.kind == "balance" for p in problems) else rules.pop()
        if len(rules) == 1 and all(p.kind != "balance" for p in problems) and "operations-effect" not in rules:
            return rules.pop()
        return "idempotency-7-serialized"

    def _expect_in_order(self, calls: list[WalletCall]) -> dict[int, _Judged]:
        m = copy.deepcopy(self.model)
        return {i: self._expect(m, c) for i, c in enumerate(calls)}

    def _do_burst(self, step: dict[str, Any]) -> list[Sent]:
        """Copies of one call at once: applied once, every copy answered alike (the same wallet_tx_id)."""
        call = self.concrete(step["call"])
        n = step["n"]
        # Copies of a call the wallet already accepted are replays of a settled call: no race is needed to
        # break rule 1 with them, so a failure is idempotency rule 1's, not rule 7's.
        replay = call.tx_id in self.model.txs
        sents = self.conn.send_all([call] * n)
        self.groups += 1
        j = self._expect(self.model, call)
        for sent in sents:
            self._entry(call, sent, _expected_text(call, j.expected, j.alternatives), self.groups)
        self.rule = "idempotency-7-concurrent-duplicates"
        problems = [self._problem(j, s, self.wallet_tx_ids) for s in sents]
        answers = {(s.status, s.outcome.wallet_tx_id if isinstance(s.outcome, Ok) else None) for s in sents}
        if any(problems) or len(answers) > 1:
            for e, p in zip(self.entries[-n:], problems, strict=True):
                e.bad = p is not None
            found = [p for p in problems if p]
            rules = {p.rule for p in found}
            alike = len(answers) == 1 and len(found) == n and len({p.message for p in found}) == 1
            if alike:
                rule = found[0].rule  # every copy answered alike (one call and its replays), just wrongly
            elif len(found) == n and len(rules) == 1 and all(p.kind != "balance" for p in found) \
                    and "operations-effect" not in rules:
                rule = rules.pop()  # every copy wrong alike: not a concurrency bug
            elif replay:
                rule = ("idempotency-1-original-id" if not found else
                        "idempotency-1-no-change" if any(p.kind == "balance" for p in found) else found[0].rule)
            else:
                rule = "idempotency-7-concurrent-duplicates"
            detail = "; ".join(f"copy {k + 1}: {p.message}" for k, p in enumerate(problems) if p)
            if not detail:
                detail = "the copies were answered with different wallet_tx_ids: " + ", ".join(
                    sorted(repr(a[1]) for a in answers))
            self._fail(Problem(rule, f"{n} identical calls at once: {detail}"), self.entries[-1].n)
        self._settle(self.model, j, sents[0], self.wallet_tx_ids)
        return sents

    # -- the books --------------------------------------------------------------------
    def _do_check(self, step: dict[str, Any]) -> None:
        """Every player's balance as the wallet holds it equals the model's (admin API, or signed balance calls)."""
        aliases = list(self.players)
        if not aliases:
            return
        pids = [self.players[a] for a in aliases]
        if self.conn.admin is not None:
            got: list[int | None] = self.conn.balances(pids)
            how = "admin API"
        else:
            got = []
            for a in aliases:
                sess = next(s for s, p in self.session_player.items() if p == a)
                sent = self.conn.send(WalletCall.balance(self.players[a], self.sessions[sess]))
                got.append(sent.outcome.balance.minor if isinstance(sent.outcome, Ok) else None)
            how = "balance calls"
        wrong = []
        for a, pid, g in zip(aliases, pids, got, strict=True):
            want = self.model.players[pid].balance
            if g != want:
                wrong.append((a, g, want))
        if not wrong:
            return
        lines = ", ".join(f"{a}: wallet {g}, model {w}" for a, g, w in wrong)
        self.entries.append(Entry("check", request=f"balances via {how}", expected="as the model holds",
                                  response=lines, bad=True))
        negative = any(g is not None and g < 0 for _, g, _ in wrong)
        rule = "idempotency-7-never-negative" if negative else self.rule
        self._fail(Problem(rule, f"after call {self.calls} the balances differ from the model's ({lines})"))

    # -- failing ----------------------------------------------------------------------
    def _fail(self, problem: Problem, call_number: int | None = None) -> None:
        exc = violation(problem.rule, problem.message, call_number)
        exc.evidence = self.evidence()
        if self.on_violation is not None:
            self.on_violation(exc)
        raise exc

    def evidence(self) -> dict[str, Any]:
        return {"entries": [asdict(e) for e in self.entries], "steps": copy.deepcopy(self.steps),
                "prefix": self.prefix}


# -- helpers ------------------------------------------------------------------------------

_SESSION_CODES = frozenset({ErrorCode.SESSION_EXPIRED, ErrorCode.INVALID_TOKEN, ErrorCode.PLAYER_BLOCKED})
_SIGN_TEXT = {"wrong-secret": "with a wrong secret", "stale": "an hour ago", "future": "an hour ahead",
              "unsigned": "not at all", "ok": "correctly"}


def _codes(code: ErrorCode, alternatives: frozenset[ErrorCode]) -> str:
    others = sorted(str(c) for c in alternatives if c != code)
    return str(code) + (f" (or {', '.join(others)})" if others else "")


def _expected_text(call: WalletCall, expected: Expected, alternatives: frozenset[ErrorCode]) -> str:
    if expected[0] == "rejected":
        return f"{http_status(expected[1])} {_codes(expected[1], alternatives)} (changes nothing)"
    _, balance, original = expected
    text = f"200 ok, balance {balance}"
    if call.op in MONEY_OPS:
        text += f", the original wallet_tx_id {original!r} (a replay)" if original else ", a new wallet_tx_id"
    return text


def _outcome(sent: Sent) -> str:
    out = sent.outcome
    if isinstance(out, Ok):
        return f"200 ok (balance {out.balance.minor})"
    if isinstance(out, Rejected):
        return f"{sent.status} {out.code}"
    return f"no definitive answer ({out.reason})"


def _wire_problem(sent: Sent) -> str | None:
    if not isinstance(sent.outcome, Unknown):
        return None
    if sent.status is None:
        return f"no answer: {sent.outcome.reason}"
    return f"HTTP {sent.status}: {sent.outcome.reason}: {_text(sent.response_body, 300)}"


def _wire_rule(sent: Sent, j: _Judged) -> str:
    if sent.status is None or sent.status >= 500:
        return "errors-definitive"
    if sent.status == 200:
        try:
            data = orjson.loads(sent.response_body)
        except orjson.JSONDecodeError:
            return "operations-success-shape"
        if isinstance(data, dict) and "balance" in data and type(data["balance"]) is not int:
            return "money-minor-units"
        return "operations-success-shape"
    return "errors-codes"


def malformed_body(call: WalletCall, mutation: str) -> bytes:
    """The canonical body of ``call`` with one defect."""
    if mutation == "not-json":
        return b'{"tx_id": ' + orjson.dumps(call.tx_id) + b', "amount": '
    if mutation == "not-an-object":
        return orjson.dumps([call_to_json(call)])
    body = call_to_json(call)
    amount = body.get("amount", 0)
    if mutation == "amount-float":
        body["amount"] = amount + 0.5
    elif mutation == "amount-string":
        body["amount"] = str(amount)
    elif mutation == "amount-negative":
        body["amount"] = -1 - amount
    elif mutation == "amount-boolean":
        body["amount"] = True
    elif mutation == "amount-past-64-bit":
        body["amount"] = INT64_MAX + 1
    elif mutation == "missing-field":
        del body["round_id"]
    elif mutation == "unknown-currency":
        body["currency"] = "XTS"
    elif mutation == "bad-reason":
        body["reason"] = "lucky"
    elif mutation == "round-closed-not-boolean":
        body["round_closed"] = "yes"
    data = orjson.dumps(body)
    if mutation == "oversized":
        data += b" " * (64 * 1024 + 1 - len(data) + 16)
    return data


def is_violation(exc: BaseException) -> bool:
    return isinstance(exc, Violation)
