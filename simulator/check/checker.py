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
import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from ..protocol.calls import MONEY_OPS, Ok, Op, Rejected, Unknown, WalletCall, WinReason
from ..protocol.codes import ErrorCode, http_status
from ..protocol.dialects import DialectError, semantics_of
from ..protocol.dialects.canonical import EXTRA_FIELDS
from ..protocol.dialects.semantics import CANONICAL, RULE_IDS, Semantics, excluded_codes, replaced_rules
from ..protocol.findings import RULE_OF_CODE
from ..protocol.money import INT64_MAX, Money
from .model import Accept, Expected, Outcomes, TxKey, WalletModel
from .protocol import Violation, violation
from .target import CheckError, Connection, Sent
from .variants import MUTATIONS, POLICY, encode_variant, malformed_body, variant_fits

GAME = "g1"

_CODE_RULE: dict[ErrorCode, str] = {**RULE_OF_CODE, ErrorCode.INVALID_TOKEN: "sessions-token-of-player"}
"""The rule each refusal code stands for (:data:`simulator.protocol.findings.RULE_OF_CODE`); a token refused off a bet
is read as the player's own session refused (the bet's case is judged apart)."""

__all__ = ["EXTRA_FIELDS", "MUTATIONS", "Checker", "encode_variant", "malformed_body", "replaced_rules",
           "variant_fits"]

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
    out: Outcomes
    """Every answer a correct wallet may give (strict: the reference wallet's only)."""
    rule: str
    """The rule an acceptance breaks where only refusals are allowed (and a wrong code's, by default)."""
    ok_rule: str
    """The rule an acceptance with a wrong balance or id breaks."""
    refused_rule: str
    """The rule a refusal breaks where an acceptance was due (a win refused for an expired session...)."""
    before: int | None = None
    matched: Accept | None = None
    """The acceptance the wallet's answer matched (set by :meth:`Checker._problem`)."""

    @property
    def expected(self) -> Expected:
        return self.out.primary

    @property
    def alternatives(self) -> frozenset[ErrorCode]:
        return self.out.codes


@dataclass
class Problem:
    rule: str
    message: str
    kind: str = "decision"
    """decision (ok/rejected/code wrong), balance (right decision, wrong balance), id, wire"""
    finding: str = ""
    """The kind of finding (simulator.protocol.findings.KINDS): what happened, and so its severity."""


class RuleTally(Counter[str]):
    """rule id → count, filing a PROTOCOL.md rule the dialect's semantics replace under the dialect's rule."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        super().__init__()
        self.names = names or {}

    def __getitem__(self, key: str) -> int:
        return super().__getitem__(self.names.get(key, key))

    def __setitem__(self, key: str, value: int) -> None:
        super().__setitem__(self.names.get(key, key), value)

    def __reduce__(self) -> Any:
        return (Counter, (dict(self),))


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
    rejected: set[TxKey] = field(default_factory=set)
    wallet_tx_ids: set[str] = field(default_factory=set)
    launch_of: dict[str, str] = field(default_factory=dict)
    """session alias → the launch token it was made from"""
    exercised: Counter[str] = field(default_factory=Counter)
    """rule id → calls judged under it: what a pass actually tried (the coverage table)."""
    choices: Counter[str] = field(default_factory=Counter)
    """Choices PROTOCOL.md allows that the wallet was seen to make (notes, never failures)."""
    semantics: Semantics = CANONICAL
    """The dialect's declared semantics (set from the connection's dialect): the model judges by them."""
    session_refs: dict[str, str] = field(default_factory=dict)
    """session alias → the second session id a players file gave (sent where a wire carries one)."""

    def __post_init__(self) -> None:
        conn = getattr(self, "conn", None)
        dialect = getattr(conn, "dialect", None)
        self.semantics = semantics_of(dialect) if dialect is not None else CANONICAL
        self.model.semantics = self.semantics
        self.renamed = replaced_rules(self.semantics)
        self.excluded = excluded_codes(self.semantics)
        tally = RuleTally(self.renamed)
        tally.update(self.exercised)
        self.exercised = tally
        choices = RuleTally(self.renamed)
        choices.update(self.choices)
        self.choices = choices

    def rule_of(self, rule: str) -> str:
        """``rule``, or the dialect's rule that replaces it (:func:`replaced_rules`)."""
        return self.renamed.get(rule, rule)

    def note(self, choice: str) -> None:
        """A choice seen, headed by the rule that allows it (the dialect's where it replaces PROTOCOL.md's)."""
        head, _, rest = _noted(choice).partition(": ")
        self.choices[f"{self.rule_of(head)}: {rest}"] += 1

    def txk(self, m: WalletModel, call: WalletCall) -> TxKey:
        """What ``call``'s transaction is recorded (or was rejected) under."""
        return m.key(m.player_of(call), call.tx_id or "")

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
        return self.model.key(self.player_id(spec["player"]), self.cid(spec["tx"])) in self.model.txs

    def rolled_back(self, spec: dict[str, Any]) -> bool:
        tx = self.model.txs.get(self.model.key(self.player_id(spec["player"]), self.cid(spec["tx"])))
        return tx is not None and tx.rolled_back

    def concrete(self, spec: dict[str, Any]) -> WalletCall:
        op = Op(spec["op"])
        pid, sess = self.player_id(spec["player"]), self.session_token(spec["session"])
        players = getattr(self, "model", None)
        known = players.players.get(pid) if players is not None else None
        hint = spec.get("currency") or (known.currency if known is not None else None)
        ref = getattr(self, "session_refs", {}).get(spec["session"])
        if op is Op.BALANCE:
            return WalletCall(Op.BALANCE, player_id=pid, session_token=sess, session_ref=ref, currency_hint=hint)
        amount = Money.of(spec["amount"], spec["currency"]) if "amount" in spec else None
        return WalletCall(
            op, player_id=pid, session_token=sess, game_id=spec.get("game", GAME), tx_id=self.cid(spec["tx"]),
            round_id=self.cid(spec["round"]), amount=amount,
            ref_tx_id=self.cid(spec["ref"]) if "ref" in spec else None,
            reason=WinReason(spec["reason"]) if op is Op.WIN else None,
            round_closed=bool(spec.get("closed", False)) if op is Op.WIN else None,
            bet_tx_id=self.cid(spec["bet"]) if op is Op.WIN and "bet" in spec else None,
            session_ref=ref, currency_hint=hint,
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
        ref = self.conn.account_refs[step["account"]] if step["account"] < len(self.conn.account_refs) else None
        if ref:
            self.session_refs[sess] = ref
        call = WalletCall(Op.BALANCE, player_id=acc.player_id, session_token=token, session_ref=ref,
                          currency_hint=acc.currency)
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
        """A launch token from the admin API, exchanged by ``authenticate`` (the session lives ``ttl`` s).

        Where the operator makes the sessions (no ``authenticate``), the admin API's token is the session."""
        alias, sess, ttl = step["player"], step["session"], step["ttl"]
        pid = self.players[alias]
        token = self.conn.launch_token(pid, ttl)
        if self.semantics.sessions == "operator":
            self._admin_entry(f"session token for {alias} from the operator (lifetime {ttl} s)")
            self.exercised[RULE_IDS[("sessions", "operator")]] += 1
            self.model.record_session_direct(token, pid, ttl, self.clock())
            if ttl > 0:
                self.conn.sessions_of[pid] = token
            self.sessions[sess] = token
            self.session_player[sess] = alias
            return True
        self._admin_entry(f"launch token for {alias} (session lifetime {ttl} s)")
        self.model.issue_token(token, pid, ttl)
        self.launch_of[sess] = token
        note = f"session {sess}" + (" (already expired: lifetime 0 s)" if ttl == 0 else "")
        return self._authenticate(alias, token, sess, note)

    def _do_reauth(self, step: dict[str, Any]) -> bool:
        """The launch token of session ``of`` exchanged again (a provider's retry of authenticate)."""
        token = self.launch_of.get(step["of"])
        if token is None:
            return False
        self.launch_of[step["session"]] = token
        return self._authenticate(step["player"], token, step["session"], f"session {step['session']}: "
                                  f"the launch token of session {step['of']} again")

    def _authenticate(self, alias: str, token: str, sess: str, note: str) -> bool:
        pid = self.players[alias]
        call = dataclasses.replace(WalletCall.authenticate(token, GAME), currency_hint=self.model.players[pid].currency)
        now = self.clock()
        allowed = self.model.outcomes(call, now)
        if self.strict_codes:
            allowed = Outcomes(allowed.primary, frozenset({allowed.primary[1]}) if allowed.primary[0] == "rejected"
                               else frozenset(), allowed.accepts[:1] if allowed.primary[0] == "ok" else ())
        sent = self.conn.send(call)
        texts = [f"{_codes(c, frozenset())}" for c in sorted(allowed.codes, key=str)]
        if allowed.accepts:
            texts.insert(0 if allowed.primary[0] == "ok" else len(texts),
                         f"200 ok, player {alias}, balance {allowed.accepts[0].balance}, a session token")
        entry = self._entry(call, sent, " or ".join(texts))
        entry.note = note
        self.exercised["operations-authenticate"] += 1
        out = sent.outcome
        if isinstance(out, Rejected) and (out.code in allowed.codes
                                          or (out.code is ErrorCode.UNMAPPED and allowed.codes)):
            if choice := allowed.choice_of(out.code):
                self.note(choice)
            if out.code is ErrorCode.UNMAPPED:
                self.choices[f"errors-codes: {out.message or 'unmapped wire code'}"] += 1
            return False
        if isinstance(out, Ok) and out.missing:
            # An answer that carries only some of player, session and balance (a dialect's user-info call): the
            # player is the one the token was made for, the session the launch token itself, the balance unread.
            out = dataclasses.replace(out, player_id=out.player_id if "player_id" not in out.missing else pid,
                                      session_token=out.session_token if "session_token" not in out.missing
                                      else token)
        problem = None
        if not allowed.accepts and isinstance(out, Ok):
            problem = Problem(_CODE_RULE.get(allowed.primary[1], "operations-authenticate")
                              if allowed.primary[0] == "rejected" else "operations-authenticate",
                              f"authenticate: expected {' or '.join(texts)}, got {_outcome(sent)}",
                              finding="accepted_invalid_call")
        elif not isinstance(out, Ok):
            wire = _wire_problem(sent)
            problem = Problem("errors-definitive" if wire and (sent.status is None or sent.status >= 500)
                              else "operations-authenticate",
                              wire or f"expected {' or '.join(texts)}, got {_outcome(sent)}",
                              finding=(_wire_finding(sent) if wire else
                                       "refused_valid_call" if allowed.accepts else "wrong_code"))
        elif out.player_id != pid or not out.session_token or (
                "balance" not in out.missing and out.balance.minor != allowed.accepts[0].balance):
            problem = Problem("operations-authenticate",
                              f"answered player {out.player_id!r}, balance {out.balance.minor}, session "
                              f"{out.session_token!r}; the model holds {pid!r}, balance {allowed.accepts[0].balance}",
                              finding="balance_mismatch" if out.balance.minor != allowed.accepts[0].balance
                              else "protocol_violation")
        elif "balance" not in out.missing and self.semantics.carries_currency \
                and out.balance.currency.code != self.model.players[pid].currency:
            problem = Problem("operations-authenticate", f"answered currency {out.balance.currency.code}, the "
                              f"player's is {self.model.players[pid].currency}", finding="protocol_violation")
        if problem:
            entry.bad = True
            self._fail(problem, entry.n)
        assert isinstance(out, Ok) and out.session_token
        same = [a for a in allowed.accepts if a.original is not None and a.original == out.session_token]
        fresh = [a for a in allowed.accepts if a.new_session]
        if same:
            accept = same[0]
        elif fresh and out.session_token not in self.model.sessions:
            accept = fresh[0]
            self.model.record_session(token, out.session_token, now)
        else:
            entry.bad = True
            self._fail(Problem("operations-authenticate", f"answered session {out.session_token!r}, which is "
                               "another session the wallet handed out before", finding="protocol_violation"), entry.n)
        if accept.choice and len(allowed.accepts) + len(allowed.codes) > 1:
            self.note(accept.choice)
        self.sessions[sess] = out.session_token
        self.session_player[sess] = alias
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
    def _expect(self, m: WalletModel, call: WalletCall) -> _Judged:
        """What ``m`` allows ``call`` to get (``m`` does not move until :meth:`_settle`), and the rules."""
        now = self.clock()
        out = m.outcomes(call, now)
        if self.strict_codes:
            out = Outcomes(out.primary, frozenset({out.primary[1]}) if out.primary[0] == "rejected" else frozenset(),
                           out.accepts[:1] if out.primary[0] == "ok" else ())
        longest = max((len(v) for v in (call.tx_id, call.player_id, call.session_token, call.game_id, call.round_id,
                                        call.ref_tx_id, call.bet_tx_id) if v), default=0)
        if longest > LONG_ID and ErrorCode.BAD_REQUEST not in out.codes and not self.strict_codes:
            # PROTOCOL.md sets no largest id: refusing a very long one is the wallet's choice.
            why = f"transport-bad-request: an id of more than {LONG_ID} characters refused (PROTOCOL.md sets no largest id)"
            out = dataclasses.replace(out, codes=out.codes | {ErrorCode.BAD_REQUEST},
                                      choices=(*out.choices, (ErrorCode.BAD_REQUEST, why)))
        seen = m.tx_of(call) if call.op in MONEY_OPS else None
        player = m.players.get(m.player_of(call) or "")
        sess = m.sessions.get(call.session_token or "")
        expired = sess is not None and not sess.live(now)
        blocked = player is not None and player.blocked
        ref = m.ref_of(call) if call.op is Op.ROLLBACK else None
        primary = out.primary
        if call.op in MONEY_OPS and seen is not None:
            rule = ok_rule = "idempotency-1-no-change" if primary[0] == "ok" else "idempotency-2-mismatch"
        else:
            ok_rule = "operations-effect"
            if call.op is Op.ROLLBACK:
                ok_rule = "idempotency-4-rollback-once" if ref is not None else "idempotency-5-tombstone"
                if ref is not None and player is not None and ref.player_id != player.player_id:
                    ok_rule = "rollback-finds-bet-by-player"
            rule = ok_rule
            if primary[0] == "rejected":
                rule = _CODE_RULE.get(primary[1], "operations-effect")
                if primary[1] is ErrorCode.INVALID_TOKEN and call.op is Op.BET:
                    rule = "sessions-bet-needs-live-session"
                if call.op is Op.ROLLBACK and ref is not None and player is not None and ref.player_id != player.player_id:
                    rule = "rollback-finds-bet-by-player"
        refused = ok_rule
        if out.accepts and call.op in (Op.WIN, Op.ROLLBACK) and seen is None:
            refused = ("sessions-money-owed-is-paid" if expired else "sessions-blocked-player" if blocked else ok_rule)
        if out.rule:
            # The decision rests on the dialect's semantics: a finding about it quotes the dialect's sentence
            # (a win's balance stays the effect's: the named or absent bet decides only whether it is paid).
            # (a refusal for an ended session or a blocked player stays those rules')
            refused = out.rule if refused == ok_rule else refused
            rule = out.rule
            if out.rule not in (RULE_IDS[("win_bet", "named")], RULE_IDS[("win_bet", "none")]):
                ok_rule = out.rule
        if out.accepts and seen is None and self.txk(m, call) in self.rejected:
            rule = ok_rule = refused = "idempotency-3-rejected-not-recorded"
        return _Judged(call, out, rule, ok_rule, refused, player.balance if player else None)

    def _problem(self, j: _Judged, sent: Sent, ids: set[str]) -> Problem | None:
        """What is wrong with ``sent`` as the answer to ``j`` (None: nothing; ``j.matched`` is then set)."""
        out, allowed = sent.outcome, j.out
        j.matched = None
        wire = _wire_problem(sent)
        if wire is not None:
            return Problem(_wire_rule(sent, j), wire, "wire", _wire_finding(sent))
        if isinstance(out, Rejected):
            if out.code in allowed.codes or (out.code is ErrorCode.UNMAPPED and allowed.codes):
                return None  # an unmapped wire code is some refusal: right where a refusal is allowed
            if allowed.accepts:
                rule = j.refused_rule if out.code in _SESSION_CODES else j.ok_rule
                rule = self.excluded.get(out.code, rule)
                got = out.message or out.code if out.code is ErrorCode.UNMAPPED else out.code
                return Problem(rule, f"expected {_allowed_text(j)}, got {got}", finding="refused_valid_call")
            return Problem(self._invented(j, out.code), f"expected {_allowed_text(j)}, got {out.code}",
                           finding="wrong_code")
        assert isinstance(out, Ok)
        balance = out.balance.minor
        player = self._model_player(j)
        if player is not None and self.semantics.carries_currency and out.balance.currency.code != player:
            return Problem("money-currency", f"answered in {out.balance.currency.code}; the player's currency is {player}",
                           finding="protocol_violation")
        if balance < 0:
            return Problem("idempotency-7-never-negative", f"answered a negative balance {balance}",
                           finding="negative_balance")
        if not allowed.accepts:
            moved = j.before is not None and balance != j.before
            seen = self.model.tx_of(j.call) if j.call.op in MONEY_OPS else None
            as_replay = seen is not None and seen.wallet_tx_id == out.wallet_tx_id
            return Problem(j.rule, f"expected {_allowed_text(j)}, got 200 ok (balance {balance})", "decision",
                           self._accepted_kind(j, moved, as_replay))
        accept = allowed.accept(balance)
        if accept is None:
            want = " or ".join(str(a.balance) for a in allowed.accepts)
            return Problem(j.ok_rule, f"answered balance {balance}; the model holds {want}"
                                      + (f" (it was {j.before} before)" if j.before is not None else ""),
                           "balance", self._balance_kind(j, balance))
        if j.call.op in MONEY_OPS:
            original = accept.original
            if original is not None and out.wallet_tx_id != original:
                return Problem("idempotency-1-original-id",
                               f"a replay answered wallet_tx_id {out.wallet_tx_id!r}; the original was {original!r}",
                               "id", "replay_contradicts_original")
            if original is None and out.wallet_tx_id in ids:
                return Problem("operations-success-shape",
                               f"wallet_tx_id {out.wallet_tx_id!r} was already given to another transaction", "id",
                               "protocol_violation")
        j.matched = accept
        return None

    @staticmethod
    def _accepted_kind(j: _Judged, moved: bool, as_replay: bool = False) -> str:
        """A call due to be refused was accepted: money if money moved or could have (a bet, win or refund taken
        as a transaction of its own, whatever its amount, where PROTOCOL.md's rule is about money: a bet after its
        rollback, an overdraft, a refund not due, a changed call applied as new); the contract otherwise."""
        if not moved and (as_replay or j.call.op not in MONEY_OPS):
            return "accepted_invalid_call"
        codes = j.out.codes
        if ErrorCode.TX_ROLLED_BACK in codes:
            return "accepted_after_rollback"
        if ErrorCode.INSUFFICIENT_FUNDS in codes:
            return "negative_balance"
        if j.call.op is Op.ROLLBACK:
            return "refund_not_due"
        if j.rule.startswith("idempotency-2"):
            return "double_apply"
        return "invalid_call_moved_money" if moved else "accepted_invalid_call"

    @staticmethod
    def _balance_kind(j: _Judged, balance: int) -> str:
        if j.ok_rule == "rollback-finds-bet-by-player":
            return "refund_not_due"
        if j.ok_rule.startswith("idempotency-1"):
            return "double_apply"
        if j.call.op is Op.ROLLBACK and j.before is not None:
            return "rollback_applied_twice" if balance > max(a.balance for a in j.out.accepts) else "rollback_not_applied"
        return "balance_mismatch"

    def _invented(self, j: _Judged, code: ErrorCode) -> str:
        """The rule broken by answering ``code`` where its condition does not hold (another rejection was due)."""
        if j.rule == "idempotency-2-mismatch":
            # A reused tx_id is judged by the record first: whatever else is wrong with the call, the
            # wallet that answers another code did not look the tx_id up.
            return j.rule
        if j.call.tx_id and self.txk(self.model, j.call) in self.rejected:
            return "idempotency-3-rejected-not-recorded"
        if code in self.excluded:
            return self.excluded[code]
        if code is ErrorCode.SESSION_EXPIRED and j.call.op is not Op.BET:
            return "sessions-money-owed-is-paid"
        if code is ErrorCode.PLAYER_BLOCKED and j.call.op is not Op.BET:
            return "sessions-blocked-player"
        if code is ErrorCode.INVALID_TOKEN and j.call.op is Op.BET:
            return "sessions-bet-needs-live-session"
        return _CODE_RULE.get(code, j.rule)

    def _model_player(self, j: _Judged) -> str | None:
        p = self.model.players.get(self.model.player_of(j.call) or "")
        return p.currency if p else None

    def _cover(self, j: _Judged, sent: Sent) -> None:
        """Count what an answer that passed exercised, beyond the rule the call was judged under."""
        rules = {j.ok_rule, j.refused_rule}
        if j.ok_rule == "idempotency-1-no-change":
            rules.add("idempotency-1-original-id")
        rules.add("operations-success-shape" if isinstance(sent.outcome, Ok) else "errors-codes")
        rules.add("errors-definitive")
        out = j.out
        if len(out.codes) > 1:
            rules.add("choice-codes")
        texts = " ".join([a.choice for a in out.accepts] + [c for _, c in out.choices])
        for needle, rule in (("session", "choice-session"), ("its bet's round", "choice-rollback-round"),
                             ("another round or game", "choice-rollback-round"),
                             ("regular win after", "choice-win-after-rollback")):
            if needle in texts:
                rules.add(rule)
        sem, op = self.semantics, j.call.op
        for axis, value, ops in (("player", "session", frozenset(Op)), ("currency", "account", {Op.BET, Op.WIN}),
                                 ("rounds", False, MONEY_OPS), ("rollback_amount", True, {Op.ROLLBACK})):
            if getattr(sem, axis) == value and op in ops:
                rules.add(RULE_IDS[(axis, value)])  # judged as this dialect's wire carries it
        for rule in rules - {j.rule}:
            self.exercised[rule] += 1

    def _settle(self, m: WalletModel, j: _Judged, sent: Sent, ids: set[str]) -> None:
        """After an answer that matched: move the model as the wallet chose, remember what it cannot predict."""
        out = sent.outcome
        tx = j.call.tx_id
        self._cover(j, sent)
        if isinstance(out, Rejected):
            if tx:
                self.rejected.add(self.txk(m, j.call))
            choice = j.out.choice_of(out.code) if j.out.accepts or j.out.choices else ""
            if choice:
                self.note(choice)
            if out.code is ErrorCode.UNMAPPED:
                self.choices[f"errors-codes: {out.message or 'unmapped wire code'}"] += 1
            return
        if not isinstance(out, Ok) or j.matched is None:
            return
        accept = j.matched
        m.commit(j.call, accept, self.clock())
        if accept.choice and len(j.out.accepts) + len(j.out.codes) > 1:
            self.note(accept.choice)
        if j.call.op in MONEY_OPS and accept.original is None and any(e[0] == "tx" for e in accept.effects):
            assert tx is not None and out.wallet_tx_id is not None
            m.record_wallet_tx_id(tx, out.wallet_tx_id, m.player_of(j.call))
            ids.add(out.wallet_tx_id)

    # -- sending ----------------------------------------------------------------------
    def _entry(self, call: WalletCall, sent: Sent, expected: str, group: int | None = None) -> Entry:
        self.calls += 1
        request = _text(sent.request_body)
        if sent.path and (sent.method != "POST" or sent.path != str(call.op)):
            request = f"{sent.method} /{sent.path}" + (f" {request}" if request else "")
        e = Entry("call", self.calls, str(call.op), request, sent.sign, expected, sent.status,
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
        entry = self._entry(call, sent, _allowed_text(j))
        entry.note = step.get("note", "")
        self.exercised[j.rule] += 1
        problem = self._problem(j, sent, self.wallet_tx_ids)
        self.rule = j.ok_rule if isinstance(sent.outcome, Ok) else j.rule
        if problem:
            entry.bad = True
            self._fail(problem, entry.n)
        self._settle(self.model, j, sent, self.wallet_tx_ids)
        return sent

    def _judge_unsigned(self, call: WalletCall, sent: Sent, step: dict[str, Any]) -> Sent:
        entry = self._entry(call, sent, "401 INVALID_SIGNATURE (changes nothing)")
        entry.note = step.get("note", "")
        self.rule = "transport-signature"
        self.exercised[self.rule] += 1
        out = sent.outcome
        if isinstance(out, Rejected) and out.code is ErrorCode.UNMAPPED:
            self.choices[f"errors-codes: {out.message or 'unmapped wire code'}"] += 1
        elif not (isinstance(out, Rejected) and out.code is ErrorCode.INVALID_SIGNATURE):
            entry.bad = True
            moved = isinstance(out, Ok) and call.player_id in self.model.players \
                and out.balance.minor != self.model.players[call.player_id].balance
            finding = ("invalid_call_moved_money" if moved else "accepted_invalid_call" if isinstance(out, Ok)
                       else _wire_finding(sent) if _wire_problem(sent) else "wrong_code")
            self._fail(Problem("transport-signature", f"a call signed {_SIGN_TEXT[sent.sign]} got {_outcome(sent)}",
                               finding=finding), entry.n)
        if call.tx_id and self.model.tx_of(call) is None:
            self.rejected.add(self.txk(self.model, call))
        return sent

    def _do_raw(self, step: dict[str, Any]) -> Sent:
        """A variant of a valid call in the dialect's own wire: refused as PROTOCOL.md says, or judged as the call
        it is."""
        call = self.concrete(step["call"])
        mutation = step["mutation"]
        try:
            req = encode_variant(self.conn.dialect, call, self.clock(), mutation)
        except DialectError as exc:
            raise CheckError(f"the {self.conn.dialect.name} dialect cannot send {mutation}: {exc}") from None
        policy, rule = POLICY[mutation], MUTATIONS[mutation]
        if policy == "big" and call.amount is not None:
            call = dataclasses.replace(call, amount=Money(INT64_MAX + 1, call.amount.currency))
        sent = self.conn.raw(req, call)
        note = f"malformed: {mutation}" if policy != "valid" else "unknown fields added"
        self.exercised[rule] += 1
        if policy in ("valid", "big"):
            j = self._expect(self.model, call)
            if policy == "big":
                j.out = dataclasses.replace(j.out, codes=j.out.codes | {ErrorCode.BAD_REQUEST, ErrorCode.LIMIT_EXCEEDED})
            entry = self._entry(call, sent, _allowed_text(j))
            entry.note = note
            problem = self._problem(j, sent, self.wallet_tx_ids)
            out = sent.outcome
            if policy == "valid" and problem and isinstance(out, Rejected) and out.code is ErrorCode.BAD_REQUEST:
                problem = Problem(rule, f"a call with unknown fields got {_outcome(sent)}; the same call without them "
                                        f"must get {_allowed_text(j)}", finding="refused_valid_call")
            self.rule = j.ok_rule if isinstance(out, Ok) else j.rule
            if problem:
                entry.bad = True
                self._fail(problem, entry.n)
            self._settle(self.model, j, sent, self.wallet_tx_ids)
            return sent
        valid = self.model.outcomes(call, self.clock()).codes
        codes = ({ErrorCode.BAD_REQUEST} | valid if policy == "bad-request" else
                 {ErrorCode.CURRENCY_MISMATCH} | valid if policy == "currency" else set())
        if policy == "currency" and self.conn.dialect.name != "canonical":
            # Where an amount is not integer minor units (a decimal, a scaled integer), an unknown currency
            # leaves the amount unreadable too: BAD_REQUEST is as right as CURRENCY_MISMATCH.
            codes.add(ErrorCode.BAD_REQUEST)
        want = (" or ".join(f"{http_status(c)} {c}" for c in sorted(codes, key=str)) if codes
                else "a refusal (4xx)") + " (changes nothing)"
        entry = self._entry(call, sent, want)
        entry.note = note
        self.rule = rule
        out = sent.outcome
        if isinstance(out, Rejected) and out.code is ErrorCode.UNMAPPED:
            self.choices[f"errors-codes: {out.message or 'unmapped wire code'}"] += 1
        elif not (isinstance(out, Rejected) and (out.code in codes or not codes)):
            entry.bad = True
            moved = isinstance(out, Ok) and out.balance.minor != self.model.players[call.player_id or ""].balance
            finding = ("invalid_call_moved_money" if moved else "accepted_invalid_call" if isinstance(out, Ok)
                       else _wire_finding(sent) if _wire_problem(sent) else "wrong_code")
            self._fail(Problem(rule, f"a request with {mutation.replace('-', ' ')} got {_outcome(sent)}",
                               finding=finding), entry.n)
        if call.tx_id and self.model.tx_of(call) is None:
            self.rejected.add(self.txk(self.model, call))
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
            text = _allowed_text(j) if j else "(not reached)"
            self._entry(call, sent, text, self.groups)
        self.rule = "idempotency-7-serialized"
        self.exercised[self.rule] += 1
        if chosen is None:
            for e in self.entries[-len(calls):]:
                e.bad = True
            rule = self._race_rule(problems, where)
            finding = "lost_update" if rule == "idempotency-7-serialized" else \
                next((p.finding for p in problems if p.rule == rule and p.finding), "wrong_code")
            if rule == "idempotency-4-rollback-once" and all(p.kind == "balance" for p in problems):
                finding = "rollback_applied_twice"
            self._fail(Problem(rule, "the answers fit no serial order of the "
                               "calls sent at once: " + "; ".join(f"in order {n + 1}: {p.message}"
                                                                   for n, p in enumerate(problems)),
                               finding=finding),
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
        if rules in ({"idempotency-4-rollback-once"}, {"rollback-finds-bet-by-player"}):
            # every order fails on a second refund of one bet: whatever the timing, rule 4 (or the player's bet)
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
        replay = self.model.tx_of(call) is not None
        sents = self.conn.send_all([call] * n)
        self.groups += 1
        j = self._expect(self.model, call)
        for sent in sents:
            self._entry(call, sent, _allowed_text(j), self.groups)
        self.rule = "idempotency-7-concurrent-duplicates"
        self.exercised[self.rule] += 1
        problems = [self._problem(j, s, self.wallet_tx_ids) for s in sents]
        answers = {(s.status, s.outcome.wallet_tx_id if isinstance(s.outcome, Ok) else None) for s in sents}
        if any(problems) or len(answers) > 1:
            for e, p in zip(self.entries[-n:], problems, strict=True):
                e.bad = p is not None or not any(problems)  # answers that differ only in wallet_tx_id: all of them
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
            finding = ("double_apply" if any(p.kind == "balance" for p in found) else
                       found[0].finding if found and rule == found[0].rule else "replay_contradicts_original")
            self._fail(Problem(rule, f"{n} identical calls at once: {detail}", finding=finding), self.entries[-1].n)
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
                pid = self.players[a]
                sent = self.conn.send(WalletCall(Op.BALANCE, player_id=pid, session_token=self.sessions[sess],
                                                 session_ref=self.session_refs.get(sess),
                                                 currency_hint=self.model.players[pid].currency))
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
        more = any(g is not None and g > w for _, g, w in wrong)
        finding = ("negative_balance" if negative else "lost_update" if rule.startswith("idempotency-7") else
                   "double_apply" if rule.startswith(("idempotency-1", "idempotency-2")) else
                   ("rollback_applied_twice" if more else "rollback_not_applied") if rule.startswith("idempotency-4")
                   else "accepted_after_rollback" if rule.startswith("idempotency-5") else
                   "balance_mismatch" if rule in _EFFECT_RULES else "invalid_call_moved_money")
        self._fail(Problem(rule, f"after call {self.calls} the balances differ from the model's ({lines})",
                           finding=finding))

    # -- failing ----------------------------------------------------------------------
    def _fail(self, problem: Problem, call_number: int | None = None) -> None:
        exc = violation(self.rule_of(problem.rule), problem.message, call_number, problem.finding)
        exc.evidence = self.evidence()
        if self.on_violation is not None:
            self.on_violation(exc)
        raise exc

    def evidence(self) -> dict[str, Any]:
        return {"entries": [asdict(e) for e in self.entries], "steps": copy.deepcopy(self.steps),
                "prefix": self.prefix}


# -- helpers ------------------------------------------------------------------------------

_EFFECT_RULES = frozenset({"operations-effect", "idempotency-3-rejected-not-recorded", "sessions-money-owed-is-paid",
                           "sessions-blocked-player", "operations-authenticate", "transport-unknown-fields"})
"""Rules of calls that must move money: a wrong balance after one is a balance mismatch, after any other a
refused or refusable call that moved money."""
LONG_ID = 255
"""Ids longer than this (the machine sends some of about 1,000 characters) may be refused BAD_REQUEST: PROTOCOL.md
sets no largest id, so a wallet's limit (a VARCHAR(255) column) is its choice."""
_SESSION_CODES = frozenset({ErrorCode.SESSION_EXPIRED, ErrorCode.INVALID_TOKEN, ErrorCode.PLAYER_BLOCKED})
_SIGN_TEXT = {"wrong-secret": "with a wrong secret", "stale": "an hour ago", "future": "an hour ahead",
              "unsigned": "not at all", "ok": "correctly"}


def _codes(code: ErrorCode, alternatives: frozenset[ErrorCode]) -> str:
    others = sorted(str(c) for c in alternatives if c != code)
    return str(code) + (f" (or {', '.join(others)})" if others else "")


def _noted(choice: str) -> str:
    """A choice seen, headed by the rule of PROTOCOL.md that allows it (the coverage table files it there), or
    by the dialect's rule where its semantics allow it (the choice then starts with that rule's id)."""
    if choice.startswith(("dialect-", "transport-")):
        return choice
    if choice.startswith("authenticate"):
        rule = "operations-authenticate"
    elif "regular win after" in choice:
        rule = "choice-win-after-rollback"
    elif "its bet's round" in choice or "another round or game" in choice:
        rule = "choice-rollback-round"
    elif "session" in choice:
        rule = "choice-session"
    elif "2^63-1" in choice:
        rule = "money-minor-units"
    else:
        rule = "choice-codes"
    return f"{rule}: {choice}"


def _allowed_text(j: _Judged) -> str:
    """Every answer a correct wallet may give, the reference wallet's first."""
    out = j.out
    texts = [_expected_text(j.call, out.primary, out.codes)]
    if out.primary[0] == "ok":
        texts += [f"{_codes(c, frozenset())} (changes nothing)" for c in sorted(out.codes, key=str)]
        texts += [f"200 ok, balance {a.balance}" for a in out.accepts[1:] if a.balance != out.primary[1]]
    else:
        texts += [f"200 ok, balance {a.balance}" + (f" ({a.choice})" if a.choice else "") for a in out.accepts]
    return " or ".join(dict.fromkeys(texts))


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


def _wire_finding(sent: Sent) -> str:
    if sent.status is None or sent.status >= 500:
        return "no_definitive_answer"
    return "undecodable_answer" if sent.status == 200 else "protocol_violation"


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


def is_violation(exc: BaseException) -> bool:
    return isinstance(exc, Violation)
