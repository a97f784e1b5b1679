"""The Hypothesis state machine of ``croupier check``: rules that make wallet calls, invariants after each.

Every rule builds steps and hands them to the example's :class:`~.checker.Checker`,
which sends them through the bridge, judges each answer by the model and raises
a :class:`~.protocol.Violation` on the first disagreement.  After every rule the
books are checked: each player's balance, as the wallet holds it, is the model's.

Each example starts from fresh players (admin API) or from the test accounts'
current balances, and every id it sends carries a prefix unique to the example,
so nothing leaks from one example into the next and Hypothesis can shrink.

**What is drawn never depends on the wallet.**  Hypothesis replays an example by
replaying its draws; if which rules are enabled, or what a rule draws, depended on
a live balance or on what the wallet accepted, a wallet that answers differently
(a free choice, test accounts whose balances moved) would make Hypothesis abort
with "inconsistent data generation".  So preconditions read only the run's fixed
context (the rules selected, what the wallet's admin API and wire offer, the rules
already reported), every rule draws its arguments first, and a rule with nothing
to act on (no earlier bet to roll back...) is a no-op decided after drawing.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ..protocol.dialects import semantics_of, variants
from ..protocol.dialects.semantics import CANONICAL, RULE_IDS, Semantics
from ..protocol.findings import RULES
from ..protocol.money import INT64_MAX
from .checker import Checker, replaced_rules
from .protocol import Violation
from .target import CheckError, Connection
from .variants import MUTATIONS, variant_fits
from .wire import CURRENCY_CODES, Wire

NORMAL_TTL = 3600
MAX_PLAYERS = 3

HOSTILE = (
    "",
    "'; DROP TABLE transactions; --",
    '" OR "1"="1',
    "<script>alert(1)</script>",
    "ü€漢字🎰",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "%27%00",
    "../../etc/passwd",
    "${jndi:ldap://x}",
    "L" * 960,
)
"""Suffixes of ids: SQL and script injection, non-ASCII, right-to-left, path tricks, about 1,000 characters."""

INDEX = st.integers(min_value=0, max_value=1 << 16)
"""Picks an element of a list that exists only at run time (shrinks to the first)."""
SMALL = st.integers(min_value=0, max_value=500)
STAKES = st.one_of(SMALL, st.sampled_from(["all", "over", "max"]))
"""A bet: a small amount, the whole balance, one minor unit more, or the largest amount there is."""
PAYOUTS = st.one_of(st.integers(min_value=0, max_value=2_000), st.sampled_from(["to-limit", "past-limit", "max"]))
"""A win: small, exactly up to the largest balance, one unit past it, or the largest amount."""
OPENING = st.one_of(st.integers(min_value=0, max_value=10_000), st.sampled_from([INT64_MAX, INT64_MAX - 1]))
ROUNDS = st.sampled_from(["r1", "r2", "new", "r'; DELETE FROM rounds; --", "r-ü-🎰"])
REASONS = st.sampled_from(["free_spin", "bonus", "jackpot", "promo", "tournament", "cashback", "regular"])
"""Stand-alone reasons first, so a counterexample shrinks to a win that needs no bet."""
IDS = st.sampled_from(HOSTILE)
PLAYER_IDS = st.sampled_from([h for h in HOSTILE if "{" not in h and "}" not in h])
"""The reference wallet's admin API cannot address a player id with braces (its route pattern excludes them)."""

AMOUNT_MUTATIONS = frozenset({"amount-float", "amount-string", "amount-negative", "amount-boolean",
                              "amount-past-64-bit", "unknown-currency"})
"""Variants that need an amount (sent on a bet when the draw said rollback)."""
WIN_MUTATIONS = frozenset({"bad-reason", "round-closed-not-boolean"})

ALWAYS = frozenset({"first_player", "add_player", "balance", "bet", "win", "deposit"})
"""Steps every check makes whatever rules are selected: they build the state every rule is judged on."""

STEP_RULES: dict[str, frozenset[str]] = {
    "block": frozenset({"sessions-blocked-player"}),
    "authenticate_blocked": frozenset({"sessions-blocked-player", "operations-authenticate"}),
    "reauthenticate": frozenset({"operations-authenticate"}),
    "rollback": frozenset({"idempotency-4-rollback-once", "idempotency-6-rollback-only-bets", "operations-effect",
                           "operations-round-closed"}),
    "rollback_again": frozenset({"idempotency-4-rollback-once"}),
    "rollback_burst": frozenset({"idempotency-4-rollback-once", "idempotency-7-serialized"}),
    "rollback_elsewhere": frozenset({"choice-rollback-round", "idempotency-4-rollback-once",
                                     "rollback-finds-bet-by-player", RULE_IDS[("rollback_by", "tx")],
                                     RULE_IDS[("rollback_by", "round")]}),
    "rollback_other_players_bet": frozenset({"rollback-finds-bet-by-player", "idempotency-6-rollback-only-bets"}),
    "rollback_unsent_then_bet": frozenset({"idempotency-5-tombstone"}),
    "replay": frozenset({"idempotency-1-no-change", "idempotency-1-original-id",
                         "idempotency-3-rejected-not-recorded"}),
    "replay_changed": frozenset({"idempotency-2-mismatch"}),
    "tx_id_of_other_player": frozenset({"idempotency-2-mismatch", RULE_IDS[("tx_scope", "player")]}),
    "race": frozenset({"idempotency-7-serialized", "idempotency-7-never-negative", "idempotency-4-rollback-once"}),
    "burst": frozenset({"idempotency-7-concurrent-duplicates", "idempotency-1-no-change",
                        "idempotency-1-original-id"}),
    "play_on_closed_round": frozenset({"operations-round-closed"}),
    "regular_win_without_bet": frozenset({"operations-regular-win-needs-bet", RULE_IDS[("win_bet", "named")],
                                          RULE_IDS[("win_bet", "none")]}),
    "win_after_rollback": frozenset({"choice-win-after-rollback", "operations-regular-win-needs-bet",
                                     RULE_IDS[("win_bet", "named")]}),
    "wrong_currency": frozenset({"money-currency"}),
    "bogus_session": frozenset({"sessions-token-of-player", "sessions-bet-needs-live-session",
                                "operations-unknown-player", "choice-session", "choice-codes",
                                RULE_IDS[("player", "session")]}),
    "bet_with_other_session": frozenset({"sessions-bet-needs-live-session"}),
    "expired_session": frozenset({"sessions-money-owed-is-paid", "sessions-bet-needs-live-session",
                                  "choice-session", RULE_IDS[("wins_need_live_session", True)]}),
    "bad_signature": frozenset({"transport-signature"}),
    "malformed": frozenset(MUTATIONS.values()) | {"transport-bad-request"},
    "unknown_fields": frozenset({"transport-unknown-fields"}),
    "retry_after_refusal": frozenset({"idempotency-3-rejected-not-recorded"}),
}
"""The rules each step (a rule of the machine) is there for: a step none of whose rules is sought is never drawn."""


def _calls(exc: Violation) -> int:
    return sum(1 for e in exc.evidence.get("entries", []) if e["kind"] == "call")


def _final_run() -> bool:
    """Whether Hypothesis is rerunning a minimal example to report it (that run must happen)."""
    from hypothesis.control import current_build_context

    try:
        return bool(current_build_context().is_final)
    except Exception:  # noqa: BLE001 - outside a Hypothesis run
        return False


class StopSearch(KeyboardInterrupt):
    """Raised at the start of an example to end the current Hypothesis run; ``reason`` says why.

    Hypothesis stops at once on a KeyboardInterrupt without recording the cut example (any other
    exception would be a failure to shrink, or a "flaky data generation" error); the runner catches it.
    Reasons: ``shrink-time`` (the counterexamples of this run were shrunk long enough: report them and
    search on), ``budget`` (the search time is spent), ``enough`` (CheckOptions.enough said so), ``interrupted``
    (a stop asked by SIGINT/SIGTERM whose own KeyboardInterrupt Python swallowed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


BudgetSpent = StopSearch
"""The former name (the budget is one of the reasons a search stops)."""


@dataclass
class RunContext:
    """What every example of one check shares: the connection, the options, the clocks and the tallies."""

    conn: Connection
    strict_codes: bool = False
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    examples: int = 0
    """Examples started, shrinking included."""
    search_examples: int = 0
    """Examples started while searching (not while shrinking a counterexample)."""
    quiet: int = 0
    """Examples ended quietly: they broke a rule already reported, or one not selected."""
    started: float = field(default_factory=time.monotonic)
    budget_s: float | None = None
    """Seconds of searching (shrinking not counted); None: no limit."""
    shrink_s: float = 30.0
    """How long each Hypothesis run may shrink (and look on) once it found a counterexample."""
    enough: Callable[[dict[str, Violation]], bool] | None = None
    interrupted: Callable[[], bool] = lambda: False
    """Whether a stop was asked from outside (SIGINT/SIGTERM): no new example starts once it was, even if
    the KeyboardInterrupt the request raised was swallowed (Python drops one raised inside a gc callback)."""
    selected: frozenset[str] = frozenset(RULES)
    """The rules judged and sought (--rules / --skip-rules); a violation of another ends its example quietly."""
    reported: set[str] = field(default_factory=set)
    """Rules broken and reported by an earlier Hypothesis run of this check: not sought again."""
    first_found: dict[str, tuple[float, int]] = field(default_factory=dict)
    """rule id → (seconds since the start, examples run) when a wallet first broke it."""
    best: dict[str, Violation] = field(default_factory=dict)
    """rule id → the shortest violation seen so far (reported if shrinking is cut short)."""
    shrink_started: float | None = None
    """When the current Hypothesis run found its first counterexample (None: it is still searching)."""
    shrink_until: float = 0.0
    """When the current run's shrinking ends: ``shrink_s`` after the last new rule it found."""
    shrink_spent: float = 0.0
    """Seconds spent shrinking by earlier runs."""
    exercised: Counter[str] = field(default_factory=Counter)
    """rule id → calls judged under it, over every example (the coverage table)."""
    choices: Counter[str] = field(default_factory=Counter)
    """Choices PROTOCOL.md allows that the wallet was seen to make, over every example."""
    _ids: Any = field(default_factory=itertools.count)

    # -- clocks -----------------------------------------------------------------------
    def shrink_time(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return self.shrink_spent + (now - self.shrink_started if self.shrink_started is not None else 0.0)

    def search_time(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return now - self.started - self.shrink_time(now)

    def stop_reason(self) -> str | None:
        """Why no new example should start now (None: go on)."""
        if self.interrupted():
            return "interrupted"
        if self.enough is not None and self.best and self.enough(self.best):
            return "enough"
        now = time.monotonic()
        if self.shrink_started is not None:  # shrinking goes on for its own time, whatever the search budget
            return "shrink-time" if now >= self.shrink_until else None
        if self.budget_s is not None and self.search_time(now) >= self.budget_s:
            return "budget"
        return None

    def end_run(self) -> list[str]:
        """A Hypothesis run ended: close its shrink window; the rules it found are reported from now on."""
        if self.shrink_started is not None:
            self.shrink_spent += time.monotonic() - self.shrink_started
            self.shrink_started = None
        new = [r for r in self.best if r not in self.reported]
        self.reported.update(new)
        return new

    # -- rules --------------------------------------------------------------------------
    def sought(self, rule_id: str) -> bool:
        return rule_id in self.selected and rule_id not in self.reported

    def enabled(self, step: str) -> bool:
        """Whether the machine may draw ``step`` in this Hypothesis run (fixed for the run: never live state)."""
        if not self.can(step):
            return False
        if step in ALWAYS:
            return True
        sem = self.semantics
        renamed = replaced_rules(sem)
        declared = {rule for rule, _ in sem.statements()}
        rules = {renamed.get(r, r) for r in STEP_RULES[step]}
        return any(self.sought(r) for r in rules if not r.startswith("dialect-") or r in declared)

    def can(self, step: str) -> bool:
        """Whether the wallet and its wire offer what ``step`` needs (probed once, before the search)."""
        conn, sem = self.conn, self.semantics
        if step in ("block", "authenticate_blocked"):
            return conn.has("block")
        if step == "reauthenticate":
            return self.admin and sem.sessions == "authenticate"  # the operator's sessions: no authenticate
        if step == "expired_session":
            return self.admin
        if step == "deposit":
            return conn.has("deposit")
        if step in ("malformed", "unknown_fields"):
            dialect = getattr(conn, "dialect", None)
            return variants(dialect) is not None if dialect is not None else self.canonical
        if step == "wrong_currency":
            return sem.carries_currency  # a wire without currencies cannot name another one
        if step == "play_on_closed_round":
            return sem.rounds
        if step == "bet_with_other_session":
            return sem.names_player  # where the session names the player, it is simply the other's bet
        return True

    # -- counterexamples ------------------------------------------------------------------
    def violated(self, exc: Violation) -> None:
        """Called by the checker before it raises: remember the violation, or end the example quietly."""
        rule_id = exc.rule.id
        if not self.sought(rule_id):
            self.quiet += 1
            reject()  # a rule not selected, or reported already: the search goes on elsewhere
        now = time.monotonic()
        if self.shrink_started is None:
            self.shrink_started = now
        if rule_id not in self.first_found:  # each counterexample gets its own shrink time
            self.first_found[rule_id] = (now - self.started, self.examples)
            self.shrink_until = max(self.shrink_until, now + self.shrink_s)
        old = self.best.get(rule_id)
        if old is None or _calls(exc) <= _calls(old):
            if os.environ.get("CROUPIER_CHECK_TRACE") and (old is None or _calls(exc) < _calls(old)):
                print(f"  trace {now - self.started:6.2f}s {rule_id} {_calls(exc)} calls", flush=True)
            self.best[rule_id] = exc

    def tally(self, ck: Checker) -> None:
        """An example ended: add what it exercised and the choices it saw."""
        self.exercised.update(getattr(ck, "exercised", Counter()))
        self.choices.update(getattr(ck, "choices", Counter()))

    @property
    def admin(self) -> bool:
        return self.conn.admin is not None

    @property
    def semantics(self) -> Semantics:
        """The dialect's declared semantics: what its calls carry and mean."""
        dialect = getattr(self.conn, "dialect", None)
        return semantics_of(dialect) if dialect is not None else CANONICAL

    @property
    def canonical(self) -> bool:
        return self.conn.target.dialect == "canonical"

    @property
    def max_players(self) -> int:
        return MAX_PLAYERS if self.admin else min(MAX_PLAYERS, len(self.conn.target.accounts or []))

    def checker(self) -> Checker:
        return Checker(self.conn, f"ck{self.run_id}e{next(self._ids)}-", self.strict_codes,
                       on_violation=self.violated)


def _step(name: str) -> Callable[[Any], Any]:
    """A precondition that reads only the run's fixed context (see the module's docstring)."""
    return precondition(lambda self: self.ctx.enabled(name))


class CheckMachine(RuleBasedStateMachine):
    """Bets, wins, rollbacks, replays, races, bursts and bad input against one wallet."""

    ctx: ClassVar[RunContext]

    def __init__(self) -> None:
        super().__init__()
        if not _final_run() and (reason := self.ctx.stop_reason()):
            raise StopSearch(reason)
        self.ctx.examples += 1
        if self.ctx.shrink_started is None:
            self.ctx.search_examples += 1
        self.ck = self.ctx.checker()
        self.players: list[str] = []
        self.session: dict[str, str] = {}
        """player alias → a live session alias"""
        self.expired: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []
        """Every bet, win and rollback sent (whatever came back): material for replays and rollbacks."""
        self.numbers: dict[str, int] = {}
        self.closed: list[tuple[str, str]] = []
        self.n = 0
        self.zero_probed = False
        """Whether this example sent its bet of 0 (a dialect whose bets are above zero: one probe)."""

    def teardown(self) -> None:
        self.ctx.tally(self.ck)

    # -- helpers ------------------------------------------------------------------------
    def fresh(self, kind: str, suffix: str = "") -> str:
        self.n += 1
        return f"{kind}{self.n}{suffix}"

    def _player(self, i: int) -> str:
        return self.players[i % len(self.players)]

    def _other(self, p: str) -> str | None:
        """Another player than ``p``: an existing one, else a new one (None when there can be no other)."""
        others = [q for q in self.players if q != p]
        if others:
            return others[0]
        if len(self.players) >= self.ctx.max_players:
            return None
        self._add(self.ck.currency(p), 1_000, "")
        return self.players[-1]

    @property
    def wire(self) -> Wire:
        return self.ctx.conn.wire

    def _limit(self, p: str) -> int:
        """The largest balance and amount of ``p``'s currency the wire carries (2⁶³−1 on the canonical one)."""
        return self.wire.limit[self.ck.currency(p)]

    def _round(self, rnd: str) -> str:
        return self.fresh("r") if rnd == "new" else rnd

    def _stake(self, p: str, amount: int | str) -> int:
        balance = self.ck.balance(p)
        if amount == "all":
            return balance
        if amount == "over":
            return min(balance + 1, self._limit(p))
        if amount == "max":
            return self._limit(p)
        assert isinstance(amount, int)
        return amount

    def _payout(self, p: str, amount: int | str) -> int:
        balance, limit = self.ck.balance(p), self._limit(p)
        if amount == "to-limit":
            return max(limit - balance, 0)
        if amount == "past-limit":  # past 2^63-1 (a narrower wire: skipped, see fits)
            return min(max(INT64_MAX - balance + 1, 0), INT64_MAX)
        if amount == "max":
            return limit
        assert isinstance(amount, int)
        return amount

    def _bet(self, p: str, rnd: str, amount: int, tx: str | None = None, session: str | None = None,
             zero: bool = False) -> dict[str, Any]:
        """A bet; above zero where the dialect's bets must be (``zero``: the one probe of a bet of 0)."""
        if amount == 0 and not zero and not self.ctx.semantics.zero_bet:
            amount = 1
        return {"op": "bet", "tx": tx or self.fresh("t"), "player": p, "session": session or self.session[p],
                "round": rnd, "amount": amount, "currency": self.ck.currency(p)}

    def _win(self, p: str, rnd: str, amount: int, reason: str = "promo", closed: bool = False,
             tx: str | None = None, session: str | None = None) -> dict[str, Any]:
        """A win; it names the round's first accepted bet of ``p`` (a wire whose wins name their bet sends it; a
        regular win with no bet there names one never sent, which such a wallet must not find)."""
        spec = {"op": "win", "tx": tx or self.fresh("t"), "player": p, "session": session or self.session[p],
                "round": rnd, "amount": amount, "currency": self.ck.currency(p), "reason": reason, "closed": closed}
        bets = [s["tx"] for s in self.sent if s["op"] == "bet" and s["player"] == p and s["round"] == rnd
                and self.ck.accepted(s)]
        if bets:
            spec["bet"] = bets[0]
        elif reason == "regular" and self.ctx.semantics.names_bet:
            spec["bet"] = self.fresh("t")
        return spec

    def _rollback(self, p: str, ref: str, rnd: str, session: str | None = None,
                  amount: int | None = None) -> dict[str, Any]:
        """A rollback; it carries the amount of the bet it cancels (a wire whose rollbacks carry one sends it;
        ``amount``: for a bet not sent yet)."""
        spec: dict[str, Any] = {"op": "rollback", "tx": self.fresh("t"), "ref": ref, "player": p,
                                "session": session or self.session[p], "round": rnd}
        bet = next((s for s in self.sent if s["op"] == "bet" and s["tx"] == ref), None)
        if bet is not None:
            spec.update(amount=bet["amount"], currency=bet["currency"])
        else:
            spec.update(amount=amount if amount is not None else 1, currency=self.ck.currency(p))
        return spec

    def _note(self, spec: dict[str, Any], what: str) -> str:
        n = self.numbers.get(spec["tx"])
        return f"{what} call {n}" if n else what

    def _send(self, spec: dict[str, Any], sign: str = "ok", note: str = "") -> bool:
        """Send ``spec`` if the dialect's wire can carry it (and every answer the model allows); whether it went."""
        if not self.ck.fits([spec]):
            return False
        self.ck.call(spec, sign, note)
        self._remember(spec)
        return True

    def _remember(self, spec: dict[str, Any]) -> None:
        if spec["op"] != "balance" and spec["tx"] not in self.numbers:
            self.numbers[spec["tx"]] = self.ck.calls
            self.sent.append(spec)

    def _earlier(self, j: int, ops: tuple[str, ...], accepted: bool = True,
                 player: str | None = None, live: bool = False) -> dict[str, Any] | None:
        """An earlier call of ``ops`` (of ``player``), accepted by the wallet (and not rolled back) if there is one.

        The index ``j`` was drawn before the list was known: the list may differ from one run of an example
        to the next (what the wallet accepted), the draw never does."""
        mine = [s for s in self.sent if s["op"] in ops and s["player"] in self.session
                and (player is None or s["player"] == player)]
        pools: list[list[dict[str, Any]]] = []
        if accepted:
            ok = [s for s in mine if self.ck.accepted(s)]
            pools.append([s for s in ok if not self.ck.rolled_back(s)] if live else ok)
        pools.append(mine)
        for pool in pools:
            if pool:
                return pool[j % len(pool)]
        return None

    def _live_bet(self, p: str, j: int, amount: int) -> dict[str, Any] | None:
        """An accepted bet of ``p`` not rolled back: an earlier one, else one placed now (None: refused)."""
        mine = [s for s in self.sent if s["op"] == "bet" and s["player"] == p and self.ck.accepted(s)
                and not self.ck.rolled_back(s)]
        if mine:
            return mine[j % len(mine)]
        spec = self._bet(p, self.fresh("r"), min(amount, self.ck.balance(p)))
        return spec if self._send(spec) and self.ck.accepted(spec) else None

    def _add(self, currency: str, balance: int, suffix: str) -> None:
        codes = self.wire.currencies
        if not codes:
            raise CheckError(f"the {self.ctx.conn.dialect.name} dialect carries none of {', '.join(CURRENCY_CODES)}")
        if currency not in codes:  # a currency the wire cannot carry: another one (the same on every run)
            currency = codes[CURRENCY_CODES.index(currency) % len(codes)] if currency in CURRENCY_CODES else codes[0]
        limit = self.wire.limit[currency]
        if balance > limit:  # 2^63-1 and 2^63-2: the largest balances the wire carries
            balance = limit - (INT64_MAX - balance)
        alias = f"P{len(self.players) + 1}"
        sess = self.fresh("S")
        if self.ctx.admin:
            self.ck.add_player(alias, currency, balance, suffix)
            self.ck.login(alias, sess, NORMAL_TTL)
        else:
            self.ck.use_account(alias, len(self.players), sess)
        self.players.append(alias)
        self.session[alias] = sess

    # -- players ------------------------------------------------------------------------
    @initialize(currency=st.sampled_from(CURRENCY_CODES), balance=OPENING, suffix=PLAYER_IDS)
    def first_player(self, currency: str, balance: int, suffix: str) -> None:
        self._add(currency, balance, suffix)

    @rule(currency=st.sampled_from(CURRENCY_CODES), balance=OPENING, suffix=PLAYER_IDS)
    def add_player(self, currency: str, balance: int, suffix: str) -> None:
        if len(self.players) < self.ctx.max_players:
            self._add(currency, balance, suffix)

    @_step("block")
    @rule(i=INDEX, blocked=st.booleans())
    def block(self, i: int, blocked: bool) -> None:
        p = self._player(i)
        if blocked == self.ck.blocked(p):
            return  # no-op steps would only clutter a minimal sequence
        if not blocked and not self.ctx.conn.has("unblock"):
            return  # no unblock endpoint: a blocked player stays blocked for the rest of its example
        self.ck.execute({"kind": "block", "player": p, "blocked": blocked})

    @_step("deposit")
    @rule(i=INDEX, amount=st.integers(min_value=1, max_value=10_000))
    def deposit(self, i: int, amount: int) -> None:
        p = self._player(i)
        if self.ck.balance(p) + amount <= self._limit(p):
            self.ck.execute({"kind": "deposit", "player": p, "amount": amount})

    @_step("reauthenticate")
    @rule(i=INDEX, again=st.booleans())
    def reauthenticate(self, i: int, again: bool) -> None:
        """The launch token of the player's session exchanged again (a provider retrying authenticate)."""
        p = self._player(i)
        sess = self.fresh("S")
        if self.ck.execute({"kind": "reauth", "player": p, "session": sess, "of": self.session[p]}) and again:
            self.session[p] = sess  # play on with the session the second exchange gave

    @_step("authenticate_blocked")
    @rule(i=INDEX, ttl=st.sampled_from([NORMAL_TTL, 0]))
    def authenticate_blocked(self, i: int, ttl: int) -> None:
        """A blocked player's launch token exchanged: PLAYER_BLOCKED, or a session whose bets are refused."""
        p = self._player(i)
        if not self.ck.blocked(p):
            self.ck.execute({"kind": "block", "player": p, "blocked": True})
        self.ck.login(p, self.fresh("S"), ttl)

    # -- money --------------------------------------------------------------------------
    @rule(i=INDEX)
    def balance(self, i: int) -> None:
        p = self._player(i)
        self.ck.call({"op": "balance", "player": p, "session": self.session[p]})

    # Hypothesis orders rules by their number of arguments (fewest first), and shrinks towards the first
    # ones: bet and win take one argument (a tuple) so that a minimal sequence uses them rather than a rule
    # that makes more calls (an expired session, a race, a burst) when both would show the bug.
    @rule(a=st.tuples(INDEX, ROUNDS, STAKES, IDS))
    def bet(self, a: tuple[int, str, int | str, str]) -> None:
        i, rnd, amount, suffix = a
        p = self._player(i)
        stake = self._stake(p, amount)
        if stake == 0 and not self.ctx.semantics.zero_bet and not self.zero_probed:
            # Where bets are above zero, the first bet of 0 an example draws is sent as it is: it must be refused.
            # (No rule of its own: a new rule would change every draw of the canonical search.)
            self.zero_probed = True
            self._send(self._bet(p, self._round(rnd), 0, tx=self.fresh("t", suffix), zero=True), note="a bet of 0")
            return
        self._send(self._bet(p, self._round(rnd), stake, tx=self.fresh("t", suffix)))

    @rule(a=st.tuples(INDEX, ROUNDS, PAYOUTS, REASONS, st.booleans(), IDS))
    def win(self, a: tuple[int, str, int | str, str, bool, str]) -> None:
        i, rnd, amount, reason, closed, suffix = a
        p = self._player(i)
        spec = self._win(p, self._round(rnd), self._payout(p, amount), reason, closed, tx=self.fresh("t", suffix))
        if self._send(spec) and closed and self.ck.accepted(spec):
            self.closed.append((p, spec["round"]))

    @_step("rollback")
    @rule(j=INDEX, accepted=st.booleans())
    def rollback(self, j: int, accepted: bool) -> None:
        """Roll back an earlier bet (refunded once; a second time changes nothing) or win (ROLLBACK_NOT_ALLOWED)."""
        target = self._earlier(j, ("bet", "win"), accepted)
        if target is not None:
            self._send(self._rollback(target["player"], target["tx"], target["round"]),
                       note=self._note(target, "rolls back"))

    @_step("rollback_again")
    @rule(i=INDEX, j=INDEX, amount=SMALL)
    def rollback_again(self, i: int, j: int, amount: int) -> None:
        """A bet rolled back, then rolled back again under a new tx_id: the second refund must not happen."""
        p = self._player(i)
        refunded = [s for s in self.sent if s["op"] == "bet" and s["player"] == p and self.ck.rolled_back(s)]
        bet = refunded[j % len(refunded)] if refunded else self._live_bet(p, j, amount)
        if bet is None:
            return
        if not self.ck.rolled_back(bet):
            self._send(self._rollback(p, bet["tx"], bet["round"]), note=self._note(bet, "rolls back"))
        self._send(self._rollback(p, bet["tx"], bet["round"]),
                   note=self._note(bet, "rolls back again (a new tx_id)"))

    @_step("rollback_burst")
    @rule(i=INDEX, j=INDEX, n=st.integers(min_value=2, max_value=4), amount=SMALL)
    def rollback_burst(self, i: int, j: int, n: int, amount: int) -> None:
        """Several rollbacks of one bet, each its own tx_id, in flight at once: one refund in all."""
        p = self._player(i)
        bet = self._live_bet(p, j, amount)
        if bet is None:
            return
        specs = [self._rollback(p, bet["tx"], bet["round"]) for _ in range(n)]
        if not self.ck.fits(specs):
            return
        self.ck.execute({"kind": "race", "calls": specs})
        for s in specs:
            self._remember(s)

    @_step("rollback_elsewhere")
    @rule(i=INDEX, j=INDEX, where=st.sampled_from(["round", "game", "both"]), amount=SMALL)
    def rollback_elsewhere(self, i: int, j: int, where: str, amount: int) -> None:
        """A rollback naming its bet but another round_id or game_id: refunded, or ROLLBACK_NOT_ALLOWED."""
        p = self._player(i)
        bet = self._live_bet(p, j, amount)
        if bet is None:
            return
        spec = self._rollback(p, bet["tx"], bet["round"] + "x" if where != "game" else bet["round"])
        if where != "round":
            spec["game"] = "g2"
        self._send(spec, note=self._note(bet, f"rolls back, naming another {where.replace('both', 'round and game')}"))

    @_step("rollback_other_players_bet")
    @rule(i=INDEX, j=INDEX, amount=SMALL, same_round=st.booleans())
    def rollback_other_players_bet(self, i: int, j: int, amount: int, same_round: bool) -> None:
        """A rollback by one player naming another player's bet: that bet is not this player's to refund."""
        p = self._player(i)
        q = self._other(p)
        if q is None:
            return
        bet = self._live_bet(p, j, amount)
        if bet is None:
            return
        rnd = bet["round"] if same_round else self.fresh("r")
        self._send(self._rollback(q, bet["tx"], rnd), note=self._note(bet, f"{q} rolls back {p}'s bet,"))

    @_step("rollback_unsent_then_bet")
    @rule(i=INDEX, rnd=ROUNDS, amount=STAKES)
    def rollback_unsent_then_bet(self, i: int, rnd: str, amount: int | str) -> None:
        """A rollback overtakes its bet: 200 and a tombstone; the late bet is TX_ROLLED_BACK."""
        p = self._player(i)
        ghost, round_id = self.fresh("t"), self._round(rnd)
        stake = self._stake(p, amount)
        self._send(self._rollback(p, ghost, round_id, amount=max(stake, 1)), note="rolls back a bet never sent")
        self._send(self._bet(p, round_id, stake, tx=ghost), note="the rolled-back bet arrives")

    @_step("replay")
    @rule(j=INDEX, accepted=st.booleans(), live_session=st.booleans())
    def replay(self, j: int, accepted: bool, live_session: bool) -> None:
        """The same call again (a provider's retry): a replay if it was accepted, judged anew if not."""
        spec = self._earlier(j, ("bet", "win", "rollback"), accepted)
        if spec is None:
            return
        if live_session:  # session_token takes no part in idempotency; a rejected call gets its fair retry
            spec = {**spec, "session": self.session[spec["player"]]}
        self._send(spec, note=self._note(spec, "the same as"))

    @_step("replay_changed")
    @rule(j=INDEX, what=st.sampled_from(["amount", "round", "currency", "player", "ref", "op"]),
          delta=st.integers(min_value=1, max_value=100), k=INDEX)
    def replay_changed(self, j: int, what: str, delta: int, k: int) -> None:
        """The same tx_id with a field that takes part changed: DUPLICATE_MISMATCH once the first was accepted."""
        spec = self._earlier(j, ("bet", "win", "rollback"))
        if spec is None:
            return
        s = dict(spec)
        op = s["op"]
        sem = self.ctx.semantics
        if what in ("amount", "currency") and op == "rollback":
            what = "op"
        if (what == "currency" and not sem.carries_currency) or (what == "round" and not sem.rounds) \
                or (what == "player" and not sem.names_player):
            what = "op"  # the wire does not carry it: changing it changes nothing the wallet sees
        if what == "amount":
            limit = self.wire.limit.get(s["currency"], INT64_MAX)
            s["amount"] = s["amount"] + delta if s["amount"] <= limit - delta else s["amount"] - delta
        elif what == "currency":
            others = [c for c in self.wire.currencies if c != s["currency"]] or ["XTS"]
            s["currency"] = others[k % len(others)]
        elif what == "round":
            s["round"] = s["round"] + "x"
        elif what == "player":
            others = [q for q in self.players if q != s["player"]]
            s["player"] = others[k % len(others)] if others else "nobody"
        elif what == "ref":
            if op == "rollback":
                s["ref"] = s["ref"] + "x"
            else:
                s = {"op": "rollback", "tx": s["tx"], "ref": self.fresh("t"), "player": s["player"],
                     "session": s["session"], "round": s["round"]}
        elif op == "bet":
            s.update(op="win", reason="promo", closed=False)
        elif op == "win":
            s = {k2: v for k2, v in s.items() if k2 not in ("reason", "closed")}
            s["op"] = "bet"
        else:
            s = self._bet(s["player"], s["round"], delta, tx=s["tx"], session=s["session"])
        if self.ck.fits([s]):
            self.ck.call(s, note=f"the tx_id of {self._note(spec, 'an earlier call').replace('call call', 'call')} "
                                 f"with another {what}")

    @_step("tx_id_of_other_player")
    @rule(i=INDEX, j=INDEX, op=st.sampled_from(["bet", "win"]), amount=SMALL)
    def tx_id_of_other_player(self, i: int, j: int, op: str, amount: int) -> None:
        """A tx_id one player's call was accepted under, sent again by another player (own session, own
        currency): DUPLICATE_MISMATCH, nothing debited or credited."""
        p = self._player(i)
        q = self._other(p)
        if q is None:
            return
        mine = [s for s in self.sent if s["op"] in ("bet", "win") and s["player"] == p and self.ck.accepted(s)]
        first = mine[j % len(mine)] if mine else self._bet(p, self.fresh("r"), min(amount, self.ck.balance(p)))
        if not mine and not (self._send(first) and self.ck.accepted(first)):
            return
        again = (self._bet(q, self.fresh("r"), amount, tx=first["tx"]) if op == "bet"
                 else self._win(q, self.fresh("r"), amount, tx=first["tx"]))
        self._send(again, note=self._note(first, f"the tx_id of {p}'s") + f", sent by {q}")

    @_step("race")
    @rule(i=INDEX, a=st.sampled_from(["bet", "win", "rollback", "replay"]),
          b=st.sampled_from(["bet", "win", "rollback", "replay"]), x=SMALL, y=SMALL, j=INDEX)
    def race(self, i: int, a: str, b: str, x: int, y: int, j: int) -> None:
        """Two calls for one player in flight at once: the answers and the books fit one order of the two."""
        p = self._player(i)
        specs = [self._concurrent(p, a, x, j), self._concurrent(p, b, y, j + 1)]
        if specs[0]["tx"] == specs[1]["tx"]:
            specs[1] = self._bet(p, self.fresh("r"), y)
        if not self.ck.fits(specs):
            return
        self.ck.execute({"kind": "race", "calls": specs})
        for s in specs:
            self._remember(s)

    def _concurrent(self, p: str, kind: str, amount: int, j: int) -> dict[str, Any]:
        if kind == "rollback" and (bet := self._earlier(j, ("bet",), True, p, live=True)) is not None:
            return self._rollback(p, bet["tx"], bet["round"])
        if kind == "replay" and (earlier := self._earlier(j, ("bet", "win", "rollback"), True, p)) is not None:
            return earlier
        if kind == "win":
            return self._win(p, self.fresh("r"), amount)
        return self._bet(p, self.fresh("r"), amount)

    @_step("burst")
    @rule(i=INDEX, what=st.sampled_from(["bet", "win", "earlier", "rollback"]),
          n=st.integers(min_value=2, max_value=5), amount=SMALL, j=INDEX)
    def burst(self, i: int, what: str, n: int, amount: int, j: int) -> None:
        """Copies of one call at once (a retry storm): applied once, every copy answered alike."""
        p = self._player(i)
        spec: dict[str, Any] | None = None
        if what == "earlier":
            spec = self._earlier(j, ("bet", "win", "rollback"), True, p)
        elif what == "rollback" and (bet := self._earlier(j, ("bet",), True, p, live=True)) is not None:
            spec = self._rollback(p, bet["tx"], bet["round"])
        elif what == "win":
            spec = self._win(p, self.fresh("r"), amount)
        spec = spec or self._bet(p, self.fresh("r"), amount)
        if not self.ck.fits([spec]):
            return
        self.ck.execute({"kind": "burst", "call": spec, "n": n})
        self._remember(spec)

    @_step("play_on_closed_round")
    @rule(k=INDEX, op=st.sampled_from(["bet", "win", "rollback"]), amount=SMALL, reason=REASONS, j=INDEX)
    def play_on_closed_round(self, k: int, op: str, amount: int, reason: str, j: int) -> None:
        """A bet, win or rollback on a round a win closed: ROUND_CLOSED (replays still pass).

        With no closed round yet, one is closed first (a zero win with round_closed), on the k-th player."""
        if self.closed:
            p, rnd = self.closed[k % len(self.closed)]
        else:
            p, rnd = self._player(k), self.fresh("r")
            closing = self._win(p, rnd, 0, closed=True)
            if not (self._send(closing, note="closes its round") and self.ck.accepted(closing)):
                return
            self.closed.append((p, rnd))
        if op == "bet":
            self._send(self._bet(p, rnd, amount), note="on a closed round")
        elif op == "win":
            self._send(self._win(p, rnd, amount, reason), note="on a closed round")
        else:
            bets = [s for s in self.sent if s["op"] == "bet" and s["player"] == p and s["round"] == rnd]
            ref = bets[j % len(bets)]["tx"] if bets else self.fresh("t")
            self._send(self._rollback(p, ref, rnd), note="on a closed round")

    @_step("regular_win_without_bet")
    @rule(i=INDEX, amount=SMALL)
    def regular_win_without_bet(self, i: int, amount: int) -> None:
        """A regular win needs a bet in its round: ROUND_NOT_FOUND."""
        p = self._player(i)
        self._send(self._win(p, self.fresh("r"), amount, "regular"), note="a regular win, no bet in the round")

    @_step("win_after_rollback")
    @rule(i=INDEX, stake=SMALL, amount=SMALL)
    def win_after_rollback(self, i: int, stake: int, amount: int) -> None:
        """A regular win in a round whose only bet was rolled back: accepted, or ROUND_NOT_FOUND."""
        p = self._player(i)
        rnd = self.fresh("r")
        bet = self._bet(p, rnd, min(stake, self.ck.balance(p)))
        if not (self._send(bet) and self.ck.accepted(bet)):
            return
        self._send(self._rollback(p, bet["tx"], rnd), note=self._note(bet, "rolls back"))
        self._send(self._win(p, rnd, amount, "regular", closed=True), note="a regular win, its bet rolled back")

    @_step("wrong_currency")
    @rule(i=INDEX, op=st.sampled_from(["bet", "win"]), k=INDEX, amount=SMALL)
    def wrong_currency(self, i: int, op: str, k: int, amount: int) -> None:
        """A call in a currency that is not the player's: CURRENCY_MISMATCH."""
        p = self._player(i)
        others = [c for c in self.wire.currencies if c != self.ck.currency(p)]
        if not others:
            return
        spec = self._bet(p, "r1", amount) if op == "bet" else self._win(p, "r1", amount)
        spec["currency"] = others[k % len(others)]
        self._send(spec, note="in another currency than the player's")

    @_step("bogus_session")
    @rule(i=INDEX, op=st.sampled_from(["bet", "win", "rollback", "balance"]),
          mode=st.sampled_from(["forged", "other-player", "unknown-player"]), amount=SMALL)
    def bogus_session(self, i: int, op: str, mode: str, amount: int) -> None:
        """A session never issued, another player's, or a player the wallet does not know."""
        p = self._player(i)
        if mode != "forged" and not self.ctx.semantics.names_player:
            return  # the session names the player: another's session is that player's call, no player is named
        session, player = self.fresh("forged-session-"), p
        if mode == "other-player":
            other = self._other(p)
            if other is not None:
                session = self.session[other]
        elif mode == "unknown-player":
            player, session = self.fresh("nobody-"), self.session[p]
        if op == "balance":
            self.ck.call({"op": "balance", "player": player, "session": session}, note=mode)
            return
        currency = self.ck.currency(p)
        if op == "bet":
            spec = self._bet(p, "r1", amount)
        elif op == "win":
            spec = self._win(p, "r1", amount)
        else:
            spec = self._rollback(p, self.fresh("t"), "r1")
        spec.update(player=player, session=session)
        if "currency" in spec:
            spec["currency"] = currency
        self._send(spec, note=f"session: {mode}")

    @_step("bet_with_other_session")
    @rule(i=INDEX, amount=SMALL, rnd=ROUNDS)
    def bet_with_other_session(self, i: int, amount: int, rnd: str) -> None:
        """A bet naming its player but another player's live session: INVALID_TOKEN, nothing debited."""
        p = self._player(i)
        q = self._other(p)
        if q is None:
            return
        self._send(self._bet(p, self._round(rnd), min(amount, self.ck.balance(p)), session=self.session[q]),
                   note=f"with {q}'s live session")

    @_step("expired_session")
    @rule(i=INDEX, op=st.sampled_from(["win", "bet", "rollback"]), amount=SMALL, reason=REASONS, j=INDEX)
    def expired_session(self, i: int, op: str, amount: int, reason: str, j: int) -> None:
        """With a session already expired: a bet is SESSION_EXPIRED, a win or rollback is still accepted."""
        p = self._player(i)
        if p not in self.expired:
            if self.ck.blocked(p):
                return
            sess = self.fresh("S")
            if not self.ck.login(p, sess, 0):
                return
            self.expired[p] = sess
        sess = self.expired[p]
        if op == "bet":
            self._send(self._bet(p, "r1", amount, session=sess), note="expired session")
        elif op == "win":
            self._send(self._win(p, "r1", amount, reason, session=sess), note="expired session")
        else:
            bet = self._earlier(j, ("bet",), True, p, live=True)
            ref, rnd = (bet["tx"], bet["round"]) if bet else (self.fresh("t"), "r1")
            self._send(self._rollback(p, ref, rnd, session=sess), note="expired session")

    @_step("bad_signature")
    @rule(i=INDEX, j=INDEX, mode=st.sampled_from(["wrong-secret", "stale", "future", "unsigned"]),
          what=st.sampled_from(["bet", "win", "earlier"]), amount=SMALL)
    def bad_signature(self, i: int, j: int, mode: str, what: str, amount: int) -> None:
        """Signed with a wrong secret, an hour off, or not at all: INVALID_SIGNATURE, and nothing changes."""
        if mode in ("stale", "future") and not self.wire.timed:
            return  # the wire's signature binds no time: an hour-old one is as good as a fresh one
        if mode == "unsigned" and not self.wire.unsigned:
            return  # the signature is woven into the body: there is no request without it
        p = self._player(i)
        spec = self._earlier(j, ("bet", "win", "rollback"), True) if what == "earlier" else None
        if spec is None:
            spec = self._win(p, "r1", amount) if what == "win" else self._bet(p, "r1", amount)
        self._send(spec, sign=mode)

    @_step("malformed")
    @rule(i=INDEX, mutation=st.sampled_from(list(MUTATIONS)), op=st.sampled_from(["bet", "win", "rollback"]),
          amount=SMALL, j=INDEX)
    def malformed(self, i: int, mutation: str, op: str, amount: int, j: int) -> None:
        """A float, string, negative or oversized amount, a missing field, a body that is not a JSON object,
        unknown extra fields..."""
        if op == "rollback" and mutation in AMOUNT_MUTATIONS:
            op = "bet"
        if mutation in WIN_MUTATIONS:
            op = "win"
        self._raw(self._player(i), op, mutation, amount, j)

    @_step("unknown_fields")
    @rule(i=INDEX, op=st.sampled_from(["rollback", "win", "bet"]), amount=SMALL, j=INDEX)
    def unknown_fields(self, i: int, op: str, amount: int, j: int) -> None:
        """A bet, a win or the rollback of a live bet with fields no wallet knows: judged as the call it is
        (a refund refused for an extra field leaves a player's money stuck)."""
        self._raw(self._player(i), op, "extra-field", amount, j)

    def _raw(self, p: str, op: str, mutation: str, amount: int, j: int) -> None:
        if op == "rollback":
            bet = self._live_bet(p, j, amount)
            spec = self._rollback(p, bet["tx"], bet["round"]) if bet else self._rollback(p, self.fresh("t"), "r1")
        elif op == "bet":
            spec = self._bet(p, "r1", amount)
        else:
            spec = self._win(p, "r1", amount)
        if not self.ck.fits([spec]) or not variant_fits(self.ctx.conn.dialect, self.ck.concrete(spec), mutation):
            return  # the wire cannot carry this variant (a string amount where amounts are strings...)
        self.ck.execute({"kind": "raw", "call": spec, "mutation": mutation})
        self._remember(spec)

    @_step("retry_after_refusal")
    @rule(i=INDEX, over=SMALL, rnd=ROUNDS)
    def retry_after_refusal(self, i: int, over: int, rnd: str) -> None:
        """A bet refused for want of funds, the funds then paid in, the same bet again: a rejected call is not
        recorded, so it is judged anew and accepted."""
        p = self._player(i)
        stake = self.ck.balance(p) + 1 + over
        bet = self._bet(p, self._round(rnd), stake)
        if not self._send(bet, note="more than the balance") or self.ck.accepted(bet):
            return
        need = stake - self.ck.balance(p)
        if self.ctx.conn.has("deposit") and self.ck.balance(p) + need <= self._limit(p):
            self.ck.execute({"kind": "deposit", "player": p, "amount": need})
        else:
            self._send(self._win(p, self.fresh("r"), need), note="the funds arrive")
        self._send(bet, note=self._note(bet, "the same as") + ", the funds there now")

    # -- the books ----------------------------------------------------------------------
    @invariant()
    def books(self) -> None:
        if self.players:
            self.ck.check()


def machine_for(ctx: RunContext) -> type[CheckMachine]:
    """A machine class bound to one run (Hypothesis instantiates it once per example)."""
    return type("WalletCheck", (CheckMachine,), {"ctx": ctx, "__module__": __name__})


Factory = Callable[[], CheckMachine]
