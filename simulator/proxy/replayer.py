"""``croupier replay-traffic FILE --wallet URL``: a proxy recording re-sent against another wallet.

Players are provisioned through the reference wallet's admin API (prefixed ids, the opening balance the
recording implies); launch tokens are issued there, and each recorded session token is mapped to the
one the new wallet hands out for it.  Calls go one at a time in the order the recorded wallet received
them, re-encoded and signed now (the recorded signatures have gone stale).  Requests the proxy answered
itself (an injected 5xx) never reached the recorded wallet and are not sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..drive.client import AdminClient, WalletClient
from ..protocol.calls import Ok, Op, Outcome, Unknown, WalletCall
from ..protocol.dialects import Dialect, batching
from ..protocol.findings import Severity
from .matching import Cashier, Comparison, compare, openings, player_of, rewrite
from .recording import Recorded
from .watch import Watch


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
                            "shifted_by": self.shifted.get(p, 0)} for p, (c, b) in sorted(self.players.items())},
            "differences": [c.to_json() for c in self.differences],
            "anomaly_count": self.anomalies,
            "ledger": self.watch.summary() if self.watch is not None else {},
        }


async def replay(records: Sequence[Recorded], wallet: str, dialect: Dialect, admin_url: str, admin_token: str,
                 prefix: str, timeout_s: float = 10.0, ssl_context: Any = None) -> ReplayResult:
    result = ReplayResult(prefix, players=openings(records), watch=Watch(dialect))
    watch = result.watch
    assert watch is not None
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True)
    async with aiohttp.ClientSession(connector=connector) as http:
        client = WalletClient(wallet, dialect, http, timeout_s=timeout_s)
        admin = AdminClient(admin_url, admin_token, http)
        cashier = Cashier()
        for player, (cur, balance) in result.players.items():
            await admin.create_player(prefix + player, cur, balance)
            cashier.current[player] = balance
        tokens: dict[str, str] = {}
        # Every bet the recorded proxy saw, as it saw them on arrival: a rollback that reached the wallet
        # before its bet (reordered) is judged; one of a bet from before the recording is not.
        watch.saw([rewrite(c, prefix, {}) for rec in records for c in rec.calls])
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
            for call in rec.calls:
                for old in (call.token, call.session_token):
                    if old is not None and old not in tokens:
                        tokens[old] = await admin.token(prefix + who)
            missing = cashier.deposit(rec.calls[0], who, rec.outcomes[0])
            if missing:
                await admin.deposit(prefix + who, missing)
                result.deposits[who] += missing
            if cashier.offset.get(who):
                result.shifted[who] = cashier.offset[who]
            calls = [rewrite(c, prefix, tokens) for c in rec.calls]
            outcomes = await _send(client, dialect, watch, calls)
            cashier.answered(who, outcomes[-1])
            first, old_first = outcomes[0], rec.outcomes[0]
            if rec.calls[0].op is Op.AUTHENTICATE and isinstance(first, Ok) and isinstance(old_first, Ok) \
                    and old_first.session_token and first.session_token:
                tokens[old_first.session_token] = first.session_token
            result.comparisons.extend(compare(rec, outcomes, cashier.offset.get(who, 0)))
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
    lines = [f"croupier replay-traffic: {doc['calls']} calls replayed with prefix {result.prefix!r}: {doc['same']} "
             f"answered as recorded, {doc['different']} differently, {doc['not_comparable']} not comparable "
             f"(recorded outcome unknown)" + (f"; skipped {sum(result.skipped.values())} "
                                                f"({', '.join(f'{k}: {v}' for k, v in result.skipped.items())})"
                                                if result.skipped else ""),
             f"verdict: {doc['verdict'].upper()} — {doc['anomaly_count']} anomalies judged on the new wallet's answers"]
    for c in result.differences[:20]:
        lines.append(f"  #{c.seq} {c.op} {c.tx_id or ''}: recorded {c.recorded}, now {c.replayed}")
    if result.watch is not None:
        for f in result.watch.ledger.findings[:10]:
            if f.severity is not Severity.NOTE:
                lines.append(f"  [{f.severity}] {f.kind} ({f.player_id}): {f.message} — {f.rule}")
    return lines
