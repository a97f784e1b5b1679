"""``croupier replay-traffic FILE --wallet URL``: a proxy recording re-sent against another wallet.

Players are provisioned through the reference wallet's admin API (prefixed ids, the opening balance the
recording implies); launch tokens are issued there, and each recorded session token is mapped to the
one the new wallet hands out for it.  A wallet with no admin API (an operator's staging wallet) has test
accounts instead (``--players FILE``, as ``croupier run`` reads it): each recorded player is given an
account of its currency of its own, in the order players first appear in the recording and the file
lists accounts; its balance is read through the protocol before the first call, and every balance is
compared shifted by what it differs from the recorded player's.  Calls go one at a time in the order the
recorded wallet received them, re-encoded and signed now (the recorded signatures have gone stale).
Requests the proxy answered itself (an injected 5xx) never reached the recorded wallet and are not sent.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..drive.accounts import TestAccount
from ..drive.client import AdminClient, WalletClient
from ..protocol.calls import Ok, Op, Outcome, Unknown, WalletCall
from ..protocol.dialects import Dialect, batching
from ..protocol.findings import Severity
from .matching import EXPLAINED, IN_ROUND, Cashier, Comparison, compare, openings, player_of, rewrite, show
from .recording import Recorded
from .watch import Watch


class ReplayError(RuntimeError):
    """The replay cannot start (too few accounts, an account the wallet does not know): exit code 2."""


@dataclass(slots=True)
class ReplayResult:
    prefix: str
    comparisons: list[Comparison] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    players: dict[str, tuple[str, int]] = field(default_factory=dict)
    watch: Watch | None = None
    deposits: Counter[str] = field(default_factory=Counter)
    """Money deposited per player where the recording shows it moved outside the traffic (the cashier)."""
    shifted: dict[str, int] = field(default_factory=dict)
    """Players whose balance left the traffic in a way the admin API cannot repeat: compared shifted by this."""
    accounts: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Recorded player → the players file's account it was replayed on, and that account's balance at the start."""

    @property
    def differences(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.same is False]

    @property
    def anomalies(self) -> int:
        if self.watch is None:
            return 0
        ledger = self.watch.ledger
        return ledger.count(Severity.MONEY) + ledger.count(Severity.CONTRACT)

    def to_json(self) -> dict[str, Any]:
        compared = [c for c in self.comparisons if c.same is not None]
        return {
            "croupier_replay_traffic": 1, "prefix": self.prefix,
            "verdict": "match" if not self.differences and not self.anomalies else "differ",
            "calls": len(self.comparisons), "compared": len(compared), "same": sum(1 for c in compared if c.same),
            "different": len(self.differences), "not_comparable": len(self.comparisons) - len(compared),
            "skipped": dict(self.skipped),
            "players": {p: {"currency": c, "opening": b, "deposited": self.deposits.get(p, 0),
                            "shifted_by": self.shifted.get(p, 0),
                            **({"account": self.accounts[p][0], "account_balance": self.accounts[p][1]}
                               if p in self.accounts else {})} for p, (c, b) in sorted(self.players.items())},
            "differences": [c.to_json() for c in self.differences],
            "shifted": [c.to_json() for c in self.comparisons if c.shifted_by or c.why],
            "anomaly_count": self.anomalies,
            "ledger": self.watch.summary() if self.watch is not None else {},
        }


def assign(players: dict[str, tuple[str, int]], accounts: Sequence[TestAccount]) -> dict[str, TestAccount]:
    """Each recorded player's account: the next unused one of its currency, players in the order they first
    answered in the recording, accounts in the file's order.  Never two players on one account: their
    money would mix and no answer could be compared with the recorded one."""
    free: dict[str, list[TestAccount]] = {}
    for acc in accounts:
        free.setdefault(acc.currency.upper(), []).append(acc)
    need = Counter(cur.upper() for cur, _ in players.values())
    short = [f"{n} players in {cur} but {len(free.get(cur, []))} accounts" for cur, n in sorted(need.items())
             if n > len(free.get(cur, []))]
    if short:
        raise ReplayError(f"the recording has {'; '.join(short)} in the players file: each recorded player needs an "
                          "account of its own (two players' money on one account cannot be compared call by call)")
    return {player: free[cur.upper()].pop(0) for player, (cur, _) in players.items()}


def _game_of(records: Sequence[Recorded], player: str) -> str:
    """A game the recorded player played (an ``authenticate`` names one), else any of the recording's."""
    games = [(c.player_id, c.game_id) for rec in records for c in rec.calls if c.game_id]
    return next((g for p, g in games if p == player), next((g for _, g in games), "croupier-replay"))


async def _read_balance(client: WalletClient, acc: TestAccount, game_id: str, currency: str) -> tuple[int, str]:
    """An account's balance now, read through the protocol, and the session to play it on: the players file's
    session, else one a launch with its token makes."""
    if acc.session_token is not None or not acc.token or client.dialect.semantics.sessions == "operator":
        call = WalletCall.balance(acc.player_id, acc.session)
    else:
        call = WalletCall.authenticate(acc.token, game_id)
    outcome = (await client.exchange(dataclasses.replace(call, session_ref=acc.session_ref))).outcome
    if not isinstance(outcome, Ok) or "balance" in outcome.missing:
        raise ReplayError(f"account {acc.player_id} of the players file: the wallet answered {call.op} with "
                          f"{show(outcome)}: check its token and session in --players, and --dialect/--secret")
    if outcome.balance.currency.code != currency.upper():
        raise ReplayError(f"account {acc.player_id} of the players file holds {outcome.balance.currency.code}, not "
                          f"{currency} as the file says")
    return outcome.balance.minor, outcome.session_token or acc.session


async def replay(records: Sequence[Recorded], wallet: str, dialect: Dialect, admin_url: str | None,
                 admin_token: str | None, prefix: str, timeout_s: float = 10.0, ssl_context: Any = None,
                 accounts: Sequence[TestAccount] | None = None) -> ReplayResult:
    """``accounts``: the players file's (then no admin API is called); else players are provisioned through
    the admin API at ``admin_url``."""
    result = ReplayResult(prefix, players=openings(records), watch=Watch(dialect))
    watch = result.watch
    assert watch is not None
    mapped = assign(result.players, accounts) if accounts is not None else None
    ids = {p: acc.player_id for p, acc in mapped.items()} if mapped is not None else None
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True)
    async with aiohttp.ClientSession(connector=connector) as http:
        client = WalletClient(wallet, dialect, http, timeout_s=timeout_s)
        cashier = Cashier(can_deposit=mapped is None)
        sessions: dict[str, str] = {}
        admin: AdminClient | None = None
        if mapped is None:
            assert admin_url is not None and admin_token is not None, "no players file: the admin API is needed"
            admin = AdminClient(admin_url, admin_token, http)
            for player, (cur, balance) in result.players.items():
                await admin.create_player(prefix + player, cur, balance)
                cashier.current[player] = cashier.recorded[player] = balance
        else:
            for player, acc in mapped.items():
                cur, opening = result.players[player]
                real, sessions[player] = await _read_balance(client, acc, _game_of(records, player), cur)
                cashier.start(player, real, opening)
                result.accounts[player] = (acc.player_id, real)
        tokens: dict[str, str] = {}
        diverged: set[tuple[str, str]] = set()  # (player, round) of a bet the shift explains: the rest of it too
        # Every bet the recorded proxy saw, as it saw them on arrival: a rollback that reached the wallet
        # before its bet (reordered) is judged; one of a bet from before the recording is not.
        watch.saw([rewrite(c, prefix, {}, ids) for rec in records for c in rec.calls])
        for rec in records:
            if not rec.forwarded:
                result.skipped["answered by the proxy"] += 1
                continue
            if not rec.calls:
                result.skipped["not decoded when recorded"] += 1
                continue
            who = player_of(rec.calls[0], rec.outcomes[0])
            if who is None or who not in result.players:
                result.skipped["player unknown (no readable answer)"] += 1
                continue
            account = mapped[who] if mapped is not None else None
            for call in rec.calls:
                for old in (call.token, call.session_token):
                    if old is not None and old not in tokens:
                        if admin is not None:
                            tokens[old] = await admin.token(prefix + who)
                        else:
                            assert account is not None
                            tokens[old] = (account.token or account.session) if old == call.token else sessions[who]
            missing = cashier.deposit(rec.calls[0], who, rec.outcomes[0])
            if missing and admin is not None:
                await admin.deposit(prefix + who, missing)
                result.deposits[who] += missing
            offset, why = cashier.offset.get(who, 0), cashier.why.get(who, "")
            if offset:
                result.shifted[who] = offset
            calls = [rewrite(c, prefix, tokens, ids, account.session_ref if account else None) for c in rec.calls]
            outcomes = await _send(client, dialect, watch, calls)
            explained = EXPLAINED if cashier.explains(rec.calls[0], who, rec.outcomes[0], outcomes[0]) else ""
            round_key = (who, rec.calls[0].round_id or "")
            if explained and rec.calls[0].round_id:
                diverged.add(round_key)
            elif round_key in diverged:
                explained = IN_ROUND
            cashier.answered(who, outcomes[-1], rec.outcomes[-1])
            first, old_first = outcomes[0], rec.outcomes[0]
            if rec.calls[0].op is Op.AUTHENTICATE and isinstance(first, Ok) and isinstance(old_first, Ok) \
                    and old_first.session_token and first.session_token:
                tokens[old_first.session_token] = first.session_token
            result.comparisons.extend(compare(rec, outcomes, offset, why, explained))
            if explained:
                cashier.resync(who)
    return result


async def _send(client: WalletClient, dialect: Dialect, watch: Watch, calls: list[WalletCall]) -> list[Outcome]:
    tokens = watch.begin(calls)
    started = time.perf_counter()
    if len(calls) > 1 and batching(dialect) is not None:
        ex = await client.exchange_batch(calls)
        outcomes: list[Outcome] = list(ex.outcome)
        status, body = ex.status, ex.response_body
    else:
        one = await client.exchange(calls[0])
        outcomes, status, body = [one.outcome], one.status, one.response_body
    latency_ms = (time.perf_counter() - started) * 1000
    if len(outcomes) != len(calls):  # pragma: no cover - a dialect's batch answer always has one per call
        outcomes = [Unknown("batch answer of another length") for _ in calls]
    watch.end(tokens, calls, outcomes, visible=True, latency_ms=latency_ms, status=status, response=body or None)
    return outcomes


def summary_lines(result: ReplayResult) -> list[str]:
    doc = result.to_json()
    explained = sum(1 for c in result.comparisons if c.same is None and c.why)
    lines = [f"croupier replay-traffic: {doc['calls']} calls replayed with prefix {result.prefix!r}: {doc['same']} "
             f"answered as recorded, {doc['different']} differently, {doc['not_comparable']} not comparable "
             f"({doc['not_comparable'] - explained} recorded outcome unknown, {explained} the shift explains)" + (f"; skipped {sum(result.skipped.values())} "
                                                f"({', '.join(f'{k}: {v}' for k, v in result.skipped.items())})"
                                                if result.skipped else ""),
             f"verdict: {doc['verdict'].upper()} — {doc['anomaly_count']} anomalies judged on the new wallet's answers"]
    for player, (account, balance) in sorted(result.accounts.items()):
        lines.append(f"  player {player} replayed on account {account} (balance {balance} at the start, the recording's "
                     f"opening {result.players[player][1]})")
    shifted = Counter((c.shifted_by, c.why) for c in result.comparisons if c.shifted_by or c.why)
    for (by, why), n in sorted(shifted.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n} not comparable: {why}" if why.startswith((EXPLAINED, IN_ROUND)) else
                     f"  {n} comparisons shifted by {by}: {why}")
    for c in result.differences[:20]:
        lines.append(f"  #{c.seq} {c.op} {c.tx_id or ''}: recorded {c.recorded}, now {c.replayed}")
    if result.watch is not None:
        for f in result.watch.ledger.findings[:10]:
            if f.severity is not Severity.NOTE:
                lines.append(f"  [{f.severity}] {f.kind} ({f.player_id}): {f.message} — {f.rule}")
    return lines
