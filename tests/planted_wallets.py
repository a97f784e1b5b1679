"""Wallets with one planted bug each, for ``croupier check`` to find: the reference wallet, broken once.

Each bug is a small subclass of :class:`MemoryStore` (or of the canonical dialect)
served with the reference wallet's ``make_app``, so signatures, decoding and the
admin API stay correct and only the named rule of PROTOCOL.md is broken.
:data:`PLANTED` maps a bug's name to how to build it and the rule the checker must
report for it.

Serve one by hand::

    python -m tests.planted_wallets lost_update --port 8099
    croupier check --wallet http://127.0.0.1:8099/wallet --secret test-secret --admin-token test-admin
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiohttp import web

from simulator.protocol import signing
from simulator.protocol.calls import MONEY_OPS, Ok, Op, Outcome, Rejected, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import HttpRequest
from simulator.protocol.dialects.base import header
from simulator.protocol.dialects.canonical import FIELDS, CanonicalDialect, call_from_json, parse_object
from simulator.protocol.money import Money, currency
from simulator.wallet import engine, rules
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryRepo, MemoryStore
from simulator.wallet.records import RoundRow, SessionRow
from simulator.wallet.service import make_app
from tests.broken_wallets import IgnoresTombstones as NoTombstone
from tests.broken_wallets import RacyBalance, SecondRollbackRefunds
from tests.child_servers import serve_apps_forever, serve_from_child
from tests.support import ADMIN_TOKEN, SECRET

# -- helpers ------------------------------------------------------------------------------

Patch = Callable[[WalletCall, rules.Facts, rules.Decision], rules.Decision]


def _money_with(repo: MemoryRepo, call: WalletCall, now: float, patch: Patch) -> Outcome:
    """The reference engine's money path (engine._money), with one decision bent by ``patch``."""
    keys = engine.fact_keys(call)
    facts = rules.Facts(
        existing=repo.tx(keys.tx_id), player=repo.player(keys.player_id),
        session=repo.session(keys.session_token) if keys.session_token else None,
        round=repo.round(keys.player_id, keys.round_id),
        tombstoned=repo.is_tombstoned(keys.tombstone_key) if keys.tombstone_key else False,
        ref=repo.tx(keys.ref_tx_id) if keys.ref_tx_id else None,
    )
    decision = patch(call, facts, rules.decide(call, facts, now))
    if isinstance(decision, Rejected):
        return decision
    assert facts.player is not None
    if isinstance(decision, rules.Replay):
        return Ok(rules.ok_for(facts.player).balance, wallet_tx_id=decision.original.wallet_tx_id, replay=True)
    effects = engine.effects(call, facts, decision, now)
    wallet_tx_id = repo.insert_tx(effects.row)
    if effects.new_balance is not None:
        repo.set_balance(keys.player_id, effects.new_balance)
    if effects.roll_back:
        repo.mark_rolled_back(effects.roll_back)
    if effects.tombstone:
        repo.insert_tombstone(effects.tombstone, keys.tx_id, now)
    if effects.round is not None:
        repo.save_round(effects.round)
    return engine.applied(effects, wallet_tx_id)


class PatchedStore(MemoryStore):
    """The memory store whose money decisions go through :meth:`patch`."""

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        return decision

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op not in MONEY_OPS:
            return await super().execute(call, now)
        return await self.run(lambda repo: _money_with(repo, call, now, self.patch))


def _refused(decision: rules.Decision, code: ErrorCode) -> bool:
    return isinstance(decision, Rejected) and decision.code is code


# -- idempotency ----------------------------------------------------------------------------


class DoubleAppliedReplay(MemoryStore):
    """A replay (same tx_id, same fields) is applied again instead of answered from the record."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.tx_id and call.op in (Op.BET, Op.WIN):
            self.repo.by_tx_id.pop(call.tx_id, None)
        return await super().execute(call, now)


class ReplayNewWalletTxId(MemoryStore):
    """A replay changes nothing, but is answered with a new wallet_tx_id instead of the original one."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        out = await super().execute(call, now)
        if isinstance(out, Ok) and out.replay:
            return dataclasses.replace(out, wallet_tx_id=f"{out.wallet_tx_id}-again")
        return out


class MismatchAccepted(MemoryStore):
    """A reused tx_id with a different amount or round is answered as a replay, not DUPLICATE_MISMATCH."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        seen = self.repo.tx(call.tx_id) if call.tx_id else None
        if seen is not None and seen.replay_key() != call.replay_key():
            player = self.repo.player(seen.player_id)
            assert player is not None
            return Ok(Money(player.balance, currency(player.currency)), wallet_tx_id=seen.wallet_tx_id)
        return await super().execute(call, now)


class RejectionRecorded(MemoryStore):
    """A rejected call is remembered: sent again (now valid), it gets the first rejection back."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: dict[str, Rejected] = {}

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.tx_id and call.tx_id in self.refused:
            return self.refused[call.tx_id]
        out = await super().execute(call, now)
        if isinstance(out, Rejected) and call.tx_id:
            self.refused[call.tx_id] = out
        return out


class LostUpdate(RacyBalance):
    """Reads the balance, awaits (storage latency), then writes what it computed from what it read."""

    storage_latency_s = 0.002


class RollbackOfWinAllowed(PatchedStore):
    """A rollback naming a win takes the win back instead of answering ROLLBACK_NOT_ALLOWED."""

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        ref, player = facts.ref, facts.player
        if _refused(decision, ErrorCode.ROLLBACK_NOT_ALLOWED) and ref is not None and ref.op == "win" \
                and player is not None and ref.player_id == player.player_id and ref.amount is not None:
            return rules.Apply(delta=-ref.amount, new_balance=player.balance - ref.amount)
        return decision


class ConcurrentDuplicatesApplied(MemoryStore):
    """Looks the tx_id up, awaits, then applies: copies of one call in flight together are all applied.

    Sequential replays are recognised; only a burst of identical calls (a retry storm) shows it."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op in MONEY_OPS and call.tx_id and call.tx_id not in self.repo.by_tx_id:
            await asyncio.sleep(0.002)
            self.repo.by_tx_id.pop(call.tx_id, None)
        return await super().execute(call, now)


class OverdraftAllowed(PatchedStore):
    """A bet larger than the balance is accepted: the balance goes negative."""

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        if _refused(decision, ErrorCode.INSUFFICIENT_FUNDS) and facts.player and call.amount:
            return rules.Apply(delta=-call.amount.minor, new_balance=facts.player.balance - call.amount.minor,
                               open_bet=1)
        return decision


# -- sessions ---------------------------------------------------------------------------------


class WinRefusedOnExpiredSession(MemoryStore):
    """Refuses a win whose session has expired (money owed must be paid whatever the session)."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op is Op.WIN and call.session_token and call.tx_id not in self.repo.by_tx_id:
            session = self.repo.session(call.session_token)
            if session is not None and now >= session.expires_at:
                return Rejected(ErrorCode.SESSION_EXPIRED, "session expired")
        return await super().execute(call, now)


class _EndlessSessionsRepo(MemoryRepo):
    def session(self, session_token: str) -> SessionRow | None:
        row = super().session(session_token)
        return dataclasses.replace(row, expires_at=float("inf")) if row else None


class BetOnExpiredSession(MemoryStore):
    """Never looks at a session's expiry: bets on an expired session are accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.repo = _EndlessSessionsRepo()


class SignatureNotChecked(CanonicalDialect):
    """Decodes requests without verifying X-Signature: unsigned, wrongly signed and stale calls are served."""

    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        t = int(now)
        body = request.body
        headers = {**request.headers, signing.HEADER: signing.sign(self.secret, body, t)}
        return super().decode_request(dataclasses.replace(request, headers=headers), now)


class StaleSignatureAccepted(CanonicalDialect):
    """Checks X-Signature's MAC but never its time: a request signed an hour ago (or an hour ahead) is served,
    so a captured request can be sent again for ever.  (Not in :data:`PLANTED`: the security pass of
    ``croupier certify`` finds it, tests/test_security_pass.py.)"""

    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        given = header(request.headers, signing.HEADER)
        try:
            signing.verify(self.secret, given, request.body, now, tolerance=10**12)
        except signing.SignatureError:
            return super().decode_request(request, now)
        headers = {k: v for k, v in request.headers.items() if k.lower() != signing.HEADER.lower()}
        headers[signing.HEADER] = signing.sign(self.secret, request.body, int(now))
        return super().decode_request(dataclasses.replace(request, headers=headers), now)


# -- money and operations ---------------------------------------------------------------------


class WrongCurrencyAccepted(PatchedStore):
    """Takes a bet or win in any currency as if it were in the player's."""

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        if _refused(decision, ErrorCode.CURRENCY_MISMATCH) and facts.player and call.amount:
            same = dataclasses.replace(call, amount=Money(call.amount.minor, currency(facts.player.currency)))
            return rules.decide(same, facts, float("-inf"))
        return decision


class _OpenRoundsRepo(MemoryRepo):
    def round(self, player_id: str, round_id: str) -> RoundRow | None:
        row = super().round(player_id, round_id)
        return dataclasses.replace(row, closed=False) if row else None


class ClosedRoundIgnored(MemoryStore):
    """round_closed: true is recorded but never enforced: bets and wins on a closed round are accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.repo = _OpenRoundsRepo()


class RegularWinWithoutBet(MemoryStore):
    """A regular win is paid even when its round has no bet."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op is Op.WIN and call.reason is WinReason.REGULAR:
            call = dataclasses.replace(call, reason=WinReason.PROMO)
        return await super().execute(call, now)


def wrap64(value: int) -> int:
    """``value`` as a signed 64-bit integer holds it (two's complement)."""
    return (value + 2**63) % 2**64 - 2**63


class WrapsAt64Bits(PatchedStore):
    """Keeps balances as signed 64-bit integers: a credit past 2^63-1 wraps to a negative balance.

    (A wallet with exact big integers is correct: PROTOCOL.md sets no limit; one that wraps is not.)"""

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        player, ref = facts.player, facts.ref
        if not _refused(decision, ErrorCode.LIMIT_EXCEEDED) or player is None:
            return decision
        if call.op is Op.WIN and call.amount:
            return rules.Apply(delta=call.amount.minor, new_balance=wrap64(player.balance + call.amount.minor),
                               close_round=bool(call.round_closed))
        if call.op is Op.ROLLBACK and ref is not None and ref.amount is not None:
            return rules.Apply(delta=ref.amount, new_balance=wrap64(player.balance + ref.amount), open_bet=-1,
                               roll_back=ref.tx_id)
        return decision


class FloatAmountsAccepted(CanonicalDialect):
    """Takes a float amount (10.5) and truncates it, instead of refusing it with BAD_REQUEST."""

    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        decoded = super().decode_request(request, now)  # the signature is checked before BAD_REQUEST
        if not (isinstance(decoded, Rejected) and decoded.code is ErrorCode.BAD_REQUEST):
            return decoded
        try:
            data = parse_object(request.body)
            if not isinstance(data.get("amount"), float):
                return decoded
            data["amount"] = int(data["amount"])
            return call_from_json(Op(request.path), data)
        except Exception:  # noqa: BLE001 - any other defect: the reference answer stands
            return decoded


class CrashesOnQuotes(MemoryStore):
    """Builds SQL by pasting ids into strings: an id with a quote makes it fail (HTTP 500, outcome unknown)."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        for value in (call.tx_id, call.round_id, call.player_id, call.ref_tx_id):
            if value and "'" in value:
                raise RuntimeError(f"syntax error at or near {value!r}")
        return await super().execute(call, now)


# -- more idempotency, sessions and transport bugs ------------------------------------------------


class SecondRollbackNewTxRefunds(PatchedStore):
    """A second rollback of an already refunded bet, under a new tx_id, refunds it again.

    Where :class:`SecondRollbackRefunds` forgets the bet's mark, this one reads it and still refunds."""

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        ref, player = facts.ref, facts.player
        if (call.op is Op.ROLLBACK and isinstance(decision, rules.Apply) and decision.delta == 0
                and ref is not None and ref.op == "bet" and ref.rolled_back and ref.amount is not None
                and player is not None):
            return rules.Apply(delta=ref.amount, new_balance=player.balance + ref.amount, roll_back=ref.tx_id)
        return decision


class ConcurrentRollbacksRefundTwice(MemoryStore):
    """Checks "already rolled back", then awaits (outside any lock) before refunding: several rollbacks of
    one bet at once (different tx_ids) all refund it."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        repo = self.repo
        if call.op is not Op.ROLLBACK or not call.ref_tx_id or not call.tx_id or call.tx_id in repo.by_tx_id:
            return await super().execute(call, now)
        bet = repo.tx(call.ref_tx_id)
        if bet is None or bet.op != "bet" or bet.rolled_back or bet.player_id != call.player_id:
            return await super().execute(call, now)
        await asyncio.sleep(0.002)  # "not rolled back yet": the refund follows, whatever happens meanwhile
        if call.tx_id not in repo.by_tx_id:  # copies of this very rollback are still recognised
            i = repo.by_tx_id[call.ref_tx_id]
            repo.txs[i] = dataclasses.replace(repo.txs[i], rolled_back=False)
        return await super().execute(call, now)


class TxIdReusedAcrossPlayers(MemoryStore):
    """Keys its idempotency record by (player_id, tx_id): another player's tx_id is answered 200 as if a
    replay, with nothing applied (PROTOCOL.md: the same tx_id with another player_id is DUPLICATE_MISMATCH)."""

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        seen = self.repo.tx(call.tx_id) if call.op in MONEY_OPS and call.tx_id else None
        player = self.repo.player(call.player_id) if call.player_id else None
        if seen is not None and player is not None and seen.player_id != player.player_id:
            return Ok(Money(player.balance, currency(player.currency)),
                      wallet_tx_id=f"{seen.wallet_tx_id}-{player.player_id}", replay=True)
        return await super().execute(call, now)


class BetWithOtherPlayersSession(PatchedStore):
    """Takes a bet with any live session, even another player's."""

    now = 0.0

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        self.now = now
        return await super().execute(call, now)

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        session, player = facts.session, facts.player
        if (call.op is Op.BET and _refused(decision, ErrorCode.INVALID_TOKEN) and session is not None
                and player is not None and session.player_id != player.player_id):
            mine = dataclasses.replace(session, player_id=player.player_id)
            return rules.decide(call, dataclasses.replace(facts, session=mine), self.now)
        return decision


class RollbackOfOtherPlayersBet(PatchedStore):
    """Finds a rollback's bet by ref_tx_id alone: another player's bet is refunded to the caller."""

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        ref, player = facts.ref, facts.player
        if (call.op is Op.ROLLBACK and _refused(decision, ErrorCode.ROLLBACK_NOT_ALLOWED) and ref is not None
                and player is not None and ref.op == "bet" and ref.player_id != player.player_id
                and ref.amount is not None and not (facts.round is not None and facts.round.closed)):
            if ref.rolled_back:
                return rules.Apply(delta=0, new_balance=player.balance)
            return rules.Apply(delta=ref.amount, new_balance=player.balance + ref.amount, roll_back=ref.tx_id)
        return decision


FORGET_AFTER = 200
"""How many tx_ids :class:`ForgetsOldTxIds` keeps in its index."""


class ForgetsOldTxIds(MemoryStore):
    """An idempotency index that is an LRU cache of the last 200 tx_ids: a call sent again after 200 others
    (a late duplicate) is applied again."""

    def __init__(self) -> None:
        super().__init__()
        self.recent: OrderedDict[str, None] = OrderedDict()

    async def execute(self, call: WalletCall, now: float) -> Outcome:
        out = await super().execute(call, now)
        if call.op in MONEY_OPS and call.tx_id and call.tx_id in self.repo.by_tx_id:
            self.recent[call.tx_id] = None
            self.recent.move_to_end(call.tx_id)
            while len(self.recent) > FORGET_AFTER:
                old, _ = self.recent.popitem(last=False)
                self.repo.by_tx_id.pop(old, None)
        return out


class RefusesUnknownFields(CanonicalDialect):
    """Refuses a request with a field it does not know (BAD_REQUEST), where PROTOCOL.md says to ignore it."""

    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        decoded = super().decode_request(request, now)
        if isinstance(decoded, Rejected):
            return decoded
        try:
            unknown = sorted(set(parse_object(request.body)) - set(FIELDS[decoded.op]))
        except Exception:  # noqa: BLE001 - the reference decoded it: nothing more to refuse
            return decoded
        if unknown:
            return Rejected(ErrorCode.BAD_REQUEST, f"unknown field(s): {', '.join(k[:64] for k in unknown)}")
        return decoded


# -- the catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planted:
    """A wallet with one bug: how to build it, and the rule of PROTOCOL.md the checker must report."""

    store: Callable[[], MemoryStore]
    rule: str
    dialect: Callable[[str], CanonicalDialect] | None = None


PLANTED: dict[str, Planted] = {
    "double_applied_replay": Planted(DoubleAppliedReplay, "idempotency-1-no-change"),
    "replay_new_wallet_tx_id": Planted(ReplayNewWalletTxId, "idempotency-1-original-id"),
    "mismatch_accepted": Planted(MismatchAccepted, "idempotency-2-mismatch"),
    "rejection_recorded": Planted(RejectionRecorded, "idempotency-3-rejected-not-recorded"),
    "second_rollback_refunds": Planted(SecondRollbackRefunds, "idempotency-4-rollback-once"),
    "no_tombstone": Planted(NoTombstone, "idempotency-5-tombstone"),
    "rollback_of_win_allowed": Planted(RollbackOfWinAllowed, "idempotency-6-rollback-only-bets"),
    "lost_update": Planted(LostUpdate, "idempotency-7-serialized"),
    "concurrent_duplicates_applied": Planted(ConcurrentDuplicatesApplied, "idempotency-7-concurrent-duplicates"),
    "overdraft_allowed": Planted(OverdraftAllowed, "idempotency-7-never-negative"),
    "win_refused_on_expired_session": Planted(WinRefusedOnExpiredSession, "sessions-money-owed-is-paid"),
    "bet_on_expired_session": Planted(BetOnExpiredSession, "sessions-bet-needs-live-session"),
    "signature_not_checked": Planted(MemoryStore, "transport-signature", SignatureNotChecked),
    "wrong_currency_accepted": Planted(WrongCurrencyAccepted, "money-currency"),
    "closed_round_ignored": Planted(ClosedRoundIgnored, "operations-round-closed"),
    "regular_win_without_bet": Planted(RegularWinWithoutBet, "operations-regular-win-needs-bet"),
    "wraps_at_64_bits": Planted(WrapsAt64Bits, "idempotency-7-never-negative"),
    "float_amounts_accepted": Planted(MemoryStore, "money-minor-units", FloatAmountsAccepted),
    "crashes_on_quotes": Planted(CrashesOnQuotes, "errors-definitive"),
    "second_rollback_new_tx_refunds": Planted(SecondRollbackNewTxRefunds, "idempotency-4-rollback-once"),
    "concurrent_rollbacks_refund_twice": Planted(ConcurrentRollbacksRefundTwice, "idempotency-4-rollback-once"),
    "tx_id_reused_across_players": Planted(TxIdReusedAcrossPlayers, "idempotency-2-mismatch"),
    "bet_with_other_players_session": Planted(BetWithOtherPlayersSession, "sessions-bet-needs-live-session"),
    "rollback_of_other_players_bet": Planted(RollbackOfOtherPlayersBet, "rollback-finds-bet-by-player"),
    "forgets_old_tx_ids": Planted(ForgetsOldTxIds, "idempotency-1-no-change"),
    "refuses_unknown_fields": Planted(MemoryStore, "transport-unknown-fields", RefusesUnknownFields),
}

CHECK_SKIPS: dict[str, str] = {
    "forgets_old_tx_ids": "shows only after 200 other transactions: a late duplicate, which `croupier run`'s "
                          "fault plan sends and a short `croupier check` sequence does not",
}
"""Bugs of :data:`PLANTED` that ``croupier check`` is not expected to find within its budget, and why."""


def make_planted_app(name: str, secret: str = SECRET, admin_token: str = ADMIN_TOKEN) -> web.Application:
    """The reference wallet app with the bug ``name`` (a key of :data:`PLANTED`); ``"reference"`` for none."""
    if name == "reference":
        return make_app(MemoryStore(), WalletConfig(secret, admin_token))
    spec = PLANTED[name]
    dialect = spec.dialect(secret) if spec.dialect else None
    return make_app(spec.store(), WalletConfig(secret, admin_token), dialect)


@contextlib.contextmanager
def planted_servers(names: list[str]) -> Iterator[dict[str, str]]:
    """Serve the named wallets from one child process (``--many``), each on its own port: {name: base URL}.

    A child process, not a thread of the caller: the wallets then run on another core than the checker,
    as a real wallet would, and their latency does not depend on the checker's GIL."""
    with serve_from_child("tests.planted_wallets", names) as bases:
        yield bases


def main() -> None:
    """Serve one planted wallet until interrupted, or several (``--many``: one port each, printed as JSON)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("bug", nargs="+", choices=["reference", *sorted(PLANTED)])
    p.add_argument("--port", type=int, default=8099)
    p.add_argument("--many", action="store_true",
                   help="serve every named wallet on a free port; print {name: port} as one JSON line")
    args = p.parse_args()
    if not args.many:
        web.run_app(make_planted_app(args.bug[0]), host="127.0.0.1", port=args.port, print=None)
        return

    serve_apps_forever({n: make_planted_app(n) for n in args.bug})


if __name__ == "__main__":
    main()
