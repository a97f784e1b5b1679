"""The Hypothesis state machine of ``croupier check``: rules that make wallet calls, invariants after each.

Every rule builds steps and hands them to the example's :class:`~.checker.Checker`,
which sends them through the bridge, judges each answer by the model and raises
a :class:`~.protocol.Violation` on the first disagreement.  After every rule the
books are checked: each player's balance, as the wallet holds it, is the model's.

Each example starts from fresh players (admin API) or from the test accounts'
current balances, and every id it sends carries a prefix unique to the example,
so nothing leaks from one example into the next and Hypothesis can shrink.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ..money import INT64_MAX
from .checker import MUTATIONS, Checker
from .protocol import Violation
from .target import CheckError, Connection
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


def _calls(exc: Violation) -> int:
    return sum(1 for e in exc.evidence.get("entries", []) if e["kind"] == "call")


def _final_run() -> bool:
    """Whether Hypothesis is rerunning a minimal example to report it (that run must happen)."""
    from hypothesis.control import current_build_context

    try:
        return bool(current_build_context().is_final)
    except Exception:  # noqa: BLE001 - outside a Hypothesis run
        return False


class BudgetSpent(KeyboardInterrupt):
    """Raised at the start of an example once the budget is spent.

    Hypothesis stops at once on a KeyboardInterrupt without recording the cut example (any other
    exception would be a failure to shrink, or a "flaky data generation" error); the runner catches it."""


@dataclass
class RunContext:
    """What every example of one check shares: the connection, the options, and the clock of the run."""

    conn: Connection
    strict_codes: bool = False
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    examples: int = 0
    started: float = field(default_factory=time.monotonic)
    first_found: dict[str, tuple[float, int]] = field(default_factory=dict)
    """rule id → (seconds since the start, examples run) when a wallet first broke it."""
    best: dict[str, Any] = field(default_factory=dict)
    """rule id → the shortest violation seen so far (reported if the budget cuts shrinking short)."""
    deadline: float | None = None
    """monotonic time after which no new example starts (unless shrinking a counterexample, see shrink_s)"""
    shrink_s: float = 30.0
    """how long after the first counterexample examples may still run (to shrink it, to find other rules)"""
    enough: Callable[[dict[str, Violation]], bool] | None = None
    _ids: Any = field(default_factory=itertools.count)

    def out_of_budget(self) -> bool:
        if self.enough is not None and self.best and self.enough(self.best):
            return True
        now = time.monotonic()
        if self.first_found:
            first = self.started + min(t for t, _ in self.first_found.values())
            return now > first + self.shrink_s
        return self.deadline is not None and now >= self.deadline

    @property
    def admin(self) -> bool:
        return self.conn.admin is not None

    @property
    def canonical(self) -> bool:
        return self.conn.target.dialect == "canonical"

    @property
    def max_players(self) -> int:
        return MAX_PLAYERS if self.admin else min(MAX_PLAYERS, len(self.conn.target.accounts or []))

    def violated(self, exc: Violation) -> None:
        self.first_found.setdefault(exc.rule.id, (time.monotonic() - self.started, self.examples))
        old = self.best.get(exc.rule.id)
        if old is None or _calls(exc) <= _calls(old):
            if os.environ.get("CROUPIER_CHECK_TRACE") and (old is None or _calls(exc) < _calls(old)):
                print(f"  trace {time.monotonic() - self.started:6.2f}s {exc.rule.id} {_calls(exc)} calls", flush=True)
            self.best[exc.rule.id] = exc

    def checker(self) -> Checker:
        return Checker(self.conn, f"ck{self.run_id}e{next(self._ids)}-", self.strict_codes,
                       on_violation=self.violated)


class CheckMachine(RuleBasedStateMachine):
    """Bets, wins, rollbacks, replays, races, bursts and bad input against one wallet."""

    ctx: ClassVar[RunContext]

    def __init__(self) -> None:
        super().__init__()
        if self.ctx.out_of_budget() and not _final_run():
            raise BudgetSpent("budget spent")
        self.ctx.examples += 1
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

    # -- helpers ------------------------------------------------------------------------
    def fresh(self, kind: str, suffix: str = "") -> str:
        self.n += 1
        return f"{kind}{self.n}{suffix}"

    def _player(self, i: int) -> str:
        return self.players[i % len(self.players)]

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
            return limit - balance
        if amount == "past-limit":  # past the 64-bit limit: LIMIT_EXCEEDED (a narrower wire: skipped, see fits)
            return min(INT64_MAX - balance + 1, INT64_MAX)
        if amount == "max":
            return limit
        assert isinstance(amount, int)
        return amount

    def _bet(self, p: str, rnd: str, amount: int, tx: str | None = None, session: str | None = None) -> dict[str, Any]:
        return {"op": "bet", "tx": tx or self.fresh("t"), "player": p, "session": session or self.session[p],
                "round": rnd, "amount": amount, "currency": self.ck.currency(p)}

    def _win(self, p: str, rnd: str, amount: int, reason: str = "promo", closed: bool = False,
             tx: str | None = None, session: str | None = None) -> dict[str, Any]:
        return {"op": "win", "tx": tx or self.fresh("t"), "player": p, "session": session or self.session[p],
                "round": rnd, "amount": amount, "currency": self.ck.currency(p), "reason": reason, "closed": closed}

    def _rollback(self, p: str, ref: str, rnd: str, session: str | None = None) -> dict[str, Any]:
        return {"op": "rollback", "tx": self.fresh("t"), "ref": ref, "player": p,
                "session": session or self.session[p], "round": rnd}

    def _note(self, spec: dict[str, Any], what: str) -> str:
        n = self.numbers.get(spec["tx"])
        return f"{what} call {n}" if n else what

    def _send(self, spec: dict[str, Any], sign: str = "ok", note: str = "") -> None:
        if self.ck.fits([spec]):  # else a call the dialect's wire cannot carry (or whose answer it cannot)
            self.ck.call(spec, sign, note)
            self._remember(spec)

    def _remember(self, spec: dict[str, Any]) -> None:
        if spec["op"] != "balance" and spec["tx"] not in self.numbers:
            self.numbers[spec["tx"]] = self.ck.calls
            self.sent.append(spec)

    def _earlier(self, j: int, ops: tuple[str, ...], accepted: bool = True,
                 player: str | None = None, live: bool = False) -> dict[str, Any] | None:
        """An earlier call of ``ops`` (of ``player``), accepted by the wallet (and not rolled back) if there is one."""
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

    def _add(self, currency: str, balance: int, suffix: str) -> None:
        codes = self.wire.currencies
        if not codes:
            raise CheckError(f"the {self.ctx.conn.dialect.name} dialect carries none of {', '.join(CURRENCY_CODES)}")
        if currency not in codes:  # a currency the wire cannot carry: another one (the same on every run)
            currency = codes[CURRENCY_CODES.index(currency) % len(codes)]
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

    @precondition(lambda self: len(self.players) < self.ctx.max_players)
    @rule(currency=st.sampled_from(CURRENCY_CODES), balance=OPENING, suffix=PLAYER_IDS)
    def add_player(self, currency: str, balance: int, suffix: str) -> None:
        self._add(currency, balance, suffix)

    @precondition(lambda self: self.ctx.admin)
    @rule(i=INDEX, blocked=st.booleans())
    def block(self, i: int, blocked: bool) -> None:
        p = self._player(i)
        if blocked != self.ck.blocked(p):  # no-op steps would only clutter a minimal sequence
            self.ck.execute({"kind": "block", "player": p, "blocked": blocked})

    @precondition(lambda self: self.ctx.admin)
    @rule(i=INDEX, amount=st.integers(min_value=1, max_value=10_000))
    def deposit(self, i: int, amount: int) -> None:
        p = self._player(i)
        if self.ck.balance(p) + amount <= self._limit(p):
            self.ck.execute({"kind": "deposit", "player": p, "amount": amount})

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
        self._send(self._bet(p, self._round(rnd), self._stake(p, amount), tx=self.fresh("t", suffix)))

    @rule(a=st.tuples(INDEX, ROUNDS, PAYOUTS, REASONS, st.booleans(), IDS))
    def win(self, a: tuple[int, str, int | str, str, bool, str]) -> None:
        i, rnd, amount, reason, closed, suffix = a
        p = self._player(i)
        spec = self._win(p, self._round(rnd), self._payout(p, amount), reason, closed, tx=self.fresh("t", suffix))
        self._send(spec)
        if closed and self.ck.accepted(spec):
            self.closed.append((p, spec["round"]))

    @precondition(lambda self: any(s["op"] in ("bet", "win") for s in self.sent))
    @rule(j=INDEX, accepted=st.booleans())
    def rollback(self, j: int, accepted: bool) -> None:
        """Roll back an earlier bet (refunded once; a second time changes nothing) or win (ROLLBACK_NOT_ALLOWED)."""
        target = self._earlier(j, ("bet", "win"), accepted)
        if target is not None:
            self._send(self._rollback(target["player"], target["tx"], target["round"]),
                       note=self._note(target, "rolls back"))

    @rule(i=INDEX, rnd=ROUNDS, amount=STAKES)
    def rollback_unsent_then_bet(self, i: int, rnd: str, amount: int | str) -> None:
        """A rollback overtakes its bet: 200 and a tombstone; the late bet is TX_ROLLED_BACK."""
        p = self._player(i)
        ghost, round_id = self.fresh("t"), self._round(rnd)
        self._send(self._rollback(p, ghost, round_id), note="rolls back a bet never sent")
        self._send(self._bet(p, round_id, self._stake(p, amount), tx=ghost), note="the rolled-back bet arrives")

    @precondition(lambda self: self.sent)
    @rule(j=INDEX, accepted=st.booleans(), live_session=st.booleans())
    def replay(self, j: int, accepted: bool, live_session: bool) -> None:
        """The same call again (a provider's retry): a replay if it was accepted, judged anew if not."""
        spec = self._earlier(j, ("bet", "win", "rollback"), accepted)
        if spec is None:
            return
        if live_session:  # session_token takes no part in idempotency; a rejected call gets its fair retry
            spec = {**spec, "session": self.session[spec["player"]]}
        self._send(spec, note=self._note(spec, "the same as"))

    @precondition(lambda self: self.sent)
    @rule(j=INDEX, what=st.sampled_from(["amount", "round", "currency", "player", "ref", "op"]),
          delta=st.integers(min_value=1, max_value=100), k=INDEX)
    def replay_changed(self, j: int, what: str, delta: int, k: int) -> None:
        """The same tx_id with a field that takes part changed: DUPLICATE_MISMATCH once the first was accepted."""
        spec = self._earlier(j, ("bet", "win", "rollback"))
        if spec is None:
            return
        s = dict(spec)
        op = s["op"]
        if what in ("amount", "currency") and op == "rollback":
            what = "op"
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

    @precondition(lambda self: self.closed)
    @rule(k=INDEX, op=st.sampled_from(["bet", "win", "rollback"]), amount=SMALL, reason=REASONS, j=INDEX)
    def play_on_closed_round(self, k: int, op: str, amount: int, reason: str, j: int) -> None:
        """A bet, win or rollback on a round a win closed: ROUND_CLOSED (replays still pass)."""
        p, rnd = self.closed[k % len(self.closed)]
        if op == "bet":
            self._send(self._bet(p, rnd, amount), note="on a closed round")
        elif op == "win":
            self._send(self._win(p, rnd, amount, reason), note="on a closed round")
        else:
            bets = [s for s in self.sent if s["op"] == "bet" and s["player"] == p and s["round"] == rnd]
            ref = bets[j % len(bets)]["tx"] if bets else self.fresh("t")
            self._send(self._rollback(p, ref, rnd), note="on a closed round")

    @rule(i=INDEX, amount=SMALL)
    def regular_win_without_bet(self, i: int, amount: int) -> None:
        """A regular win needs a bet in its round: ROUND_NOT_FOUND."""
        p = self._player(i)
        self._send(self._win(p, self.fresh("r"), amount, "regular"), note="a regular win, no bet in the round")

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

    @rule(i=INDEX, op=st.sampled_from(["bet", "win", "rollback", "balance"]),
          mode=st.sampled_from(["forged", "other-player", "unknown-player"]), amount=SMALL)
    def bogus_session(self, i: int, op: str, mode: str, amount: int) -> None:
        """A session never issued, another player's, or a player the wallet does not know."""
        p = self._player(i)
        session, player = self.fresh("forged-session-"), p
        if mode == "other-player" and len(self.players) > 1:
            other = self.players[(self.players.index(p) + 1) % len(self.players)]
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

    @precondition(lambda self: self.ctx.admin)
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

    @precondition(lambda self: self.ctx.canonical)
    @rule(i=INDEX, mutation=st.sampled_from(list(MUTATIONS)), op=st.sampled_from(["bet", "win"]), amount=SMALL)
    def malformed(self, i: int, mutation: str, op: str, amount: int) -> None:
        """A float, string, negative or oversized amount, a missing field, a body that is not a JSON object..."""
        p = self._player(i)
        if mutation in ("bad-reason", "round-closed-not-boolean"):
            op = "win"
        spec = self._bet(p, "r1", amount) if op == "bet" else self._win(p, "r1", amount)
        self.ck.execute({"kind": "raw", "call": spec, "mutation": mutation})
        self._remember(spec)

    # -- the books ----------------------------------------------------------------------
    @invariant()
    def books(self) -> None:
        if self.players:
            self.ck.check()


def machine_for(ctx: RunContext) -> type[CheckMachine]:
    """A machine class bound to one run (Hypothesis instantiates it once per example)."""
    return type("WalletCheck", (CheckMachine,), {"ctx": ctx, "__module__": __name__})


Factory = Callable[[], CheckMachine]
