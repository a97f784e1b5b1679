"""The security pass of ``croupier certify``: every attack of :mod:`simulator.certify.attacks` sent to a wallet,
each judged, "nothing changed" checked by reading the player's balance before and after.

A thin asyncio driver: the catalogue, the requests and the judgement are pure (:mod:`.attacks`); here players are
made (the admin API) or taken from a players file, balances are read (a signed ``balance`` call, and
``GET /admin/players/{id}`` where the admin API is given), and the bytes are moved::

    report = await security_pass(Target(wallet_url, secret, dialect, admin_url, admin_token))
    report.counts()     # {"pass": 74, "fail": 0, "not tested": 0}
    report.to_json()    # {"verdict": "pass", "items": [{"group", "name", "status", "rule", "quote", "evidence"...}]}

    report = run_pass(wallet_url, dialect, secret, admin_url=..., admin_token=..., players_file=...)  # no event loop

The replay after the signature's window needs the window to pass: the request is signed ``margin_s`` seconds
inside it and sent at once (it must be accepted), the other attacks run meanwhile, and the same bytes go again
once they are ``margin_s`` seconds outside it (``2 × margin_s`` seconds after the first send at the least).
``clock`` and ``sleep`` are the pass's time (a test moves a fake clock instead of waiting).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from ..check.target import Target, admin_url_for
from ..check.wire import CURRENCY_CODES, wire_of
from ..drive.client import AdminClient, AdminError
from ..protocol import dialects
from ..protocol.calls import Ok, Op, Rejected, Unknown, WalletCall
from ..protocol.codes import ErrorCode
from ..protocol.dialects import Dialect, DialectError, HttpRequest, HttpResponse
from ..protocol.dialects.canonical import CanonicalDialect
from ..protocol.money import Money
from ..run.accounts import RunError, read_accounts
from .attacks import (
    BET_MINOR,
    CHECKLIST,
    GROUP_TITLES,
    OPENING_MINOR,
    WINDOW_S,
    Attack,
    AttackResult,
    Balances,
    Expect,
    Group,
    Observation,
    Seat,
    SecurityReport,
    Sent,
    Sign,
    Status,
    Wire,
    base_call,
    carries,
    catalogue,
    describe,
    effect,
    judge,
    not_tested,
    request,
    request_json,
    result,
    sent_json,
)

__all__ = ["CHECKLIST", "GROUP_TITLES", "AttackResult", "Expect", "Group", "SecurityError", "SecurityReport", "Status",
           "run_pass", "security_pass"]

NEEDED_MINOR = 100 * BET_MINOR
"""What the accepted bets of a pass cost at most (a players file's account should hold this much)."""


class SecurityError(RuntimeError):
    """The pass could not start (no players, an unreachable wallet): the report says why."""


@dataclass
class _Pass:
    target: Target
    dialect: Dialect
    wrong: Dialect
    http: aiohttp.ClientSession
    clock: Callable[[], float]
    nonce: str
    game_id: str = "croupier-security"
    admin: AdminClient | None = None
    seq: int = 0
    follow_ups: bool = True
    """A plain bet was accepted at the start: a refused attack sent again correctly can be judged (rule 3)."""

    # -- moving bytes --------------------------------------------------------------------------------------
    async def post(self, req: HttpRequest, call: WalletCall) -> Sent:
        url = f"{self.target.wallet_url.rstrip('/')}/{req.path}"
        try:
            async with self.http.request(req.method, url, data=req.body, headers=req.headers,
                                         timeout=aiohttp.ClientTimeout(total=self.target.timeout_s)) as resp:
                raw = await resp.read()
                status, headers = resp.status, dict(resp.headers)
        except TimeoutError:
            return Sent(Unknown("timeout"), None, b"")
        except aiohttp.ClientError as exc:
            return Sent(Unknown(f"{type(exc).__name__}: {exc}"), None, b"")
        return Sent(self.dialect.decode_response(call, HttpResponse(status, headers, raw)), status, raw)

    async def call(self, call: WalletCall) -> Sent:
        return await self.post(self.dialect.encode_call(call, self.clock()), call)

    async def balances(self, seat: Seat) -> Balances:
        """The player's balance through the protocol and through the admin API (None where a read failed)."""
        call = WalletCall(Op.BALANCE, player_id=seat.player_id, session_token=seat.session,
                          session_ref=seat.session_ref, currency_hint=seat.currency)
        sent = await self.call(call)
        out = sent.outcome
        protocol = out.balance.minor if isinstance(out, Ok) and "balance" not in out.missing else None
        return Balances(protocol, await self.admin_balance(seat.player_id))

    async def admin_balance(self, player_id: str) -> int | None:
        if self.admin is None:
            return None
        url = f"{self.admin.base_url.rstrip('/')}/admin/players/{quote(player_id, safe='')}"
        try:
            async with self.http.get(url, headers={"Authorization": f"Bearer {self.admin.admin_token}"},
                                     timeout=aiohttp.ClientTimeout(total=self.target.timeout_s)) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    return None
            data = json.loads(raw)  # exact: a balance past 2^64 is a JSON integer too
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        balance = data.get("balance") if isinstance(data, dict) else None
        return balance if type(balance) is int else None

    def fresh(self, what: str) -> str:
        self.seq += 1
        return f"sec-{self.nonce}-{what}{self.seq}"

    # -- players ----------------------------------------------------------------------------------------------
    async def seat(self, player_id: str, token: str, code: str, session: str | None = None,
                   session_ref: str | None = None) -> Seat:
        if dialects.semantics_of(self.dialect).sessions == "operator":
            return Seat(player_id, session or token, code, session_ref)
        call = WalletCall(Op.AUTHENTICATE, token=token, game_id=self.game_id, currency_hint=code,
                          session_ref=session_ref)
        sent = await self.call(call)
        out = sent.outcome
        if not isinstance(out, Ok):
            raise SecurityError(f"player {player_id}: authenticate answered {describe(sent)}")
        made = session or token if "session_token" in out.missing else out.session_token
        if not made:
            raise SecurityError(f"player {player_id}: authenticate gave no session")
        return Seat(player_id, made, code, session_ref)


def run_pass(
    wallet: str,
    dialect: str,
    secret: str,
    *,
    admin_url: str | None = None,
    admin_token: str | None = None,
    players_file: str | None = None,
    timeout_s: float = 10.0,
    margin_s: float = 10.0,
    groups: Collection[str] | None = None,
    on_result: Callable[[AttackResult], None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    game_id: str = "croupier-security",
) -> SecurityReport:
    """:func:`security_pass` from synchronous code (``croupier certify``): the wallet at ``wallet``, its players from
    the admin API (``admin_url``: the wallet's host when none is given, as ``croupier check`` does) or from
    ``players_file`` (``player_id,token,currency``).  A players file that cannot be read gives a report whose
    ``error`` says why."""
    accounts = None
    if players_file:
        try:
            accounts = read_accounts(players_file)
        except RunError as exc:
            report = SecurityReport(wallet, dialect, error=f"the security pass could not start: {exc}")
            report.items = [not_tested(a, report.error) for a in catalogue(Wire(dialect))
                            if groups is None or str(a.group) in groups]
            return report
    elif admin_url is None:
        admin_url = admin_url_for(wallet)
    target = Target(wallet, secret, dialect, admin_url if accounts is None else None,
                    admin_token if accounts is None else None, accounts, timeout_s)
    return asyncio.run(security_pass(target, margin_s=margin_s, groups=groups, on_result=on_result,
                                     ssl_context=ssl_context, game_id=game_id))


async def security_pass(
    target: Target,
    *,
    http: aiohttp.ClientSession | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    margin_s: float = 10.0,
    groups: Collection[str] | None = None,
    on_result: Callable[[AttackResult], None] | None = None,
    attacks: Sequence[Attack] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    game_id: str = "croupier-security",
) -> SecurityReport:
    """Send every attack of the catalogue to ``target``'s wallet and judge each (see the module's docstring).

    ``http``: an aiohttp session to use (else one of its own); ``groups``: only these groups (signatures, ids,
    amounts, bodies, sessions); ``on_result``: told each result as it is made (a progress display); ``attacks``:
    these instead of the catalogue (:func:`simulator.certify.attacks.catalogue`), sent as they are;
    ``ssl_context``: how an ``https://`` wallet is verified and which client certificate is shown (ignored when
    ``http`` is given: that session's connector decides); ``game_id``: the game the bets name (a wallet that knows
    its games refuses an unknown one).  The pass
    never raises for what the wallet does: a wallet it cannot reach or players it cannot make give a report
    whose ``error`` says why and whose items are all "not tested"."""
    started = time.monotonic()
    report = SecurityReport(target.wallet_url, target.dialect)
    try:
        dialect = dialects.get(target.dialect, target.secret)
        wrong = dialects.get(target.dialect, target.secret + "-not-the-secret")
    except ValueError as exc:
        report.error = f"the security pass could not start: {exc}"
        report.items = [not_tested(a, report.error) for a in catalogue(Wire(target.dialect))
                        if groups is None or str(a.group) in groups]
        return report
    own = http is None
    session = http or aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context or True))
    try:
        run = _Pass(target, dialect, wrong, session, clock, secrets.token_hex(4), game_id)
        await _run(run, report, sleep, margin_s, groups, on_result, attacks)
    finally:
        if own:
            await session.close()
    report.seconds = time.monotonic() - started
    return report


async def _run(run: _Pass, report: SecurityReport, sleep: Callable[[float], Awaitable[None]], margin_s: float,
               groups: Collection[str] | None, on_result: Callable[[AttackResult], None] | None,
               chosen: Sequence[Attack] | None) -> None:
    target, dialect = run.target, run.dialect
    codes = (*CURRENCY_CODES, *dict.fromkeys(a.currency for a in target.accounts or []))
    probe = wire_of(dialect, run.wrong, codes)
    semantics = dialects.semantics_of(dialect)
    fresh = target.accounts is None
    try:
        seats = await _seats(run, probe.currencies)
    except (SecurityError, AdminError, aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        seats = []
        report.error = f"the security pass could not start: {exc}"
    code = seats[0].currency if seats else "EUR"
    wire = Wire(dialect.name, dialect.signature_has_time, isinstance(dialect, CanonicalDialect), semantics.names_player,
                fresh, len(seats) >= 2, semantics.sessions == "authenticate", probe.limit.get(code, 0))
    attacks = [a for a in (catalogue(wire) if chosen is None else chosen) if groups is None or str(a.group) in groups]
    report.players = [s.player_id for s in seats]

    def record(item: AttackResult) -> None:
        report.items.append(item)
        if on_result is not None:
            on_result(item)

    if report.error:
        for attack in attacks:
            record(not_tested(attack, report.error))
        return
    if not fresh:
        opening = await run.balances(seats[0])
        have = opening.admin if opening.admin is not None else opening.protocol
        if have is not None and have < NEEDED_MINOR:
            report.notes.append(
                f"the test account {seats[0].player_id} holds {have} minor units, less than the {NEEDED_MINOR} the "
                "pass bets: a bet it cannot cover is refused (INSUFFICIENT_FUNDS), which passes but tests less")
    control = await _control(run, seats[0])
    if control:
        run.follow_ups = False
        report.notes.append(control)
    late = next((a for a in attacks if a.sign is Sign.REPLAY_AFTER_WINDOW and not a.skip), None)
    pending = await _guarded(late, _replay_first(run, late, seats[0], margin_s)) if late is not None else None
    for attack in attacks:
        if attack is late:
            continue
        record(await _guarded(attack, _attack(run, attack, seats)))
    if late is not None:
        assert pending is not None
        record(pending if isinstance(pending, AttackResult) else
               await _guarded(late, _replay_second(run, late, seats[0], pending, sleep, margin_s)))
        order = {a.key: n for n, a in enumerate(attacks)}  # the catalogue's order, in the report too
        report.items.sort(key=lambda i: order[f"{i.group}/{i.name}"])


async def _control(run: _Pass, seat: Seat) -> str:
    """A plain bet, correctly signed, before any attack: "" when it is accepted, else what a reader should know
    (every attack the wallet refuses then passes without showing much, and a refused attack sent again correctly
    cannot be judged)."""
    call = WalletCall.bet(run.fresh("tx"), seat.player_id, seat.session, run.game_id, run.fresh("round"),
                          Money.of(BET_MINOR, seat.currency))
    call = replace(call, session_ref=seat.session_ref, currency_hint=seat.currency)
    sent = await run.call(call)
    if isinstance(sent.outcome, Ok):
        return ""
    return (f"a plain bet of {BET_MINOR} (game {run.game_id!r}) was {describe(sent)}: attacks the wallet refuses "
            "pass without showing much, and a refused attack is not sent again correctly (rule 3 not judged)")


T = TypeVar("T")


async def _guarded(attack: Attack, work: Coroutine[Any, Any, T]) -> T | AttackResult:
    """``work``, or the attack "not tested" when croupier itself could not carry it out (never a wallet's fault:
    what the wallet answers is judged, whatever it is)."""
    try:
        return await work
    except Exception as exc:  # noqa: BLE001 - one attack croupier could not build must not end the pass
        return not_tested(attack, f"croupier could not carry this attack out ({type(exc).__name__}: {exc})")


async def _seats(run: _Pass, currencies: tuple[str, ...]) -> list[Seat]:
    """The players of the pass: a, b (the sessions attack), c and d (the 64-bit wins; fresh players only)."""
    target = run.target
    if target.accounts is not None:
        out = []
        for acc in target.accounts[:2]:
            out.append(await run.seat(acc.player_id, acc.token, acc.currency, acc.session_token, acc.session_ref))
        return out
    if not (target.admin_url and target.admin_token):
        raise SecurityError("players come from the admin API (--admin-url, --admin-token) or a players file")
    if not currencies:
        raise SecurityError(f"the {run.dialect.name} dialect carries none of {', '.join(CURRENCY_CODES)}")
    code = "EUR" if "EUR" in currencies else currencies[0]
    run.admin = AdminClient(target.admin_url, target.admin_token, run.http)
    out = []
    for name, balance in (("a", OPENING_MINOR), ("b", OPENING_MINOR), ("c", BET_MINOR), ("d", BET_MINOR)):
        pid = f"sec-{run.nonce}-{name}"
        await run.admin.create_player(pid, code, balance)
        out.append(await run.seat(pid, await run.admin.token(pid, 3600), code))
    return out


def _seat_of(attack: Attack, seats: list[Seat]) -> tuple[Seat, Seat | None]:
    if attack.big_win:
        return seats[2 if attack.name == "balance-past-64-bits" else 3], None
    return seats[0], seats[1] if attack.group is Group.SESSIONS and len(seats) > 1 else None


def _call(run: _Pass, attack: Attack, seat: Seat, other: Seat | None) -> WalletCall:
    return base_call(attack, seat, other, run.fresh("tx"), run.fresh("round"), run.game_id, run.nonce)


async def _attack(run: _Pass, attack: Attack, seats: list[Seat]) -> AttackResult:
    if attack.skip:
        return not_tested(attack, attack.skip)
    seat, other = _seat_of(attack, seats)
    call = _call(run, attack, seat, other)
    if attack.field and not carries(run.dialect, call, attack.field):
        return not_tested(attack, f"the {run.dialect.name} dialect's {call.op} request does not carry {attack.field}")
    if attack.sign is Sign.REPLAY:
        return await _replay_now(run, attack, seat, call)
    try:
        req = request(attack, run.dialect, run.wrong, run.target.secret, call, run.clock())
    except DialectError as exc:
        return not_tested(attack, str(exc))
    before = await run.balances(seat)
    others_before = await run.balances(other) if other is not None else None
    sent = await run.post(req, call)
    after = await run.balances(seat)
    evidence: dict[str, Any] = {"request": request_json(req, run.target.wallet_url), "answer": sent_json(sent),
                                "balance_before": before.to_json(), "balance_after": after.to_json()}
    others: tuple[tuple[Balances, Balances], ...] = ()
    if other is not None and others_before is not None:
        others_after = await run.balances(other)
        others = ((others_before, others_after),)
        evidence["other_player"] = {"player_id": other.player_id, "balance_before": others_before.to_json(),
                                    "balance_after": others_after.to_json()}
    follow = follow_after = None
    if attack.follow_up and run.follow_ups and isinstance(sent.outcome, Rejected):
        valid = replace(call, session_token=seat.session) if other is not None else call
        freq = run.dialect.encode_call(valid, run.clock())
        follow = await run.post(freq, valid)
        follow_after = await run.balances(seat)
        evidence["follow_up"] = {"request": request_json(freq, run.target.wallet_url), "answer": sent_json(follow),
                                 "balance_after": follow_after.to_json()}
    obs = Observation(sent, before, after, effect(call, attack), None, others, follow, follow_after)
    # When a plain bet is refused too, the refusal may be the plain bet's: any code is then the one it earns.
    judged = attack if run.follow_ups else replace(attack, codes=frozenset())
    return result(attack, judge(judged, obs), evidence)


async def _replay_now(run: _Pass, attack: Attack, seat: Seat, call: WalletCall) -> AttackResult:
    """The same signed bytes twice at once: the second is a replay (rule 1)."""
    req = run.dialect.encode_call(call, run.clock())
    first = await run.post(req, call)
    if not isinstance(first.outcome, Ok):
        return not_tested(attack, f"the bet itself was {describe(first)}, so there is nothing to replay")
    before = await run.balances(seat)
    sent = await run.post(req, call)
    after = await run.balances(seat)
    evidence = {"request": request_json(req, run.target.wallet_url), "first_answer": sent_json(first),
                "answer": sent_json(sent), "balance_before": before.to_json(), "balance_after": after.to_json()}
    return result(attack, judge(attack, Observation(sent, before, after, 0, first)), evidence)


@dataclass(frozen=True)
class _Pending:
    call: WalletCall
    req: HttpRequest
    signed_at: int
    first: Sent | None
    why: str = ""


async def _replay_first(run: _Pass, attack: Attack, seat: Seat, margin_s: float) -> _Pending:
    """The bet signed ``margin_s`` inside the window, sent now: it must be accepted (else nothing to replay)."""
    call = _call(run, attack, seat, None)
    signed_at = int(run.clock() - (WINDOW_S - margin_s))
    req = run.dialect.encode_call(call, signed_at)
    first = await run.post(req, call)
    why = ""
    if isinstance(first.outcome, Rejected) and first.outcome.code is ErrorCode.INVALID_SIGNATURE:
        why = (f"the bet signed {WINDOW_S - margin_s:g} s ago was {describe(first)}: the wallet's clock may be more "
               f"than {margin_s:g} s ahead of croupier's, so a replay after the window cannot be told from a stale "
               "request")
    elif not isinstance(first.outcome, Ok):
        why = f"the bet itself was {describe(first)}, so there is nothing to replay"
    return _Pending(call, req, signed_at, first, why)


async def _replay_second(run: _Pass, attack: Attack, seat: Seat, pending: _Pending,
                         sleep: Callable[[float], Awaitable[None]], margin_s: float) -> AttackResult:
    if pending.why:
        return not_tested(attack, pending.why)
    due = pending.signed_at + WINDOW_S + margin_s
    while (left := due - run.clock()) > 0:
        await sleep(left)
    before = await run.balances(seat)
    sent = await run.post(pending.req, pending.call)
    after = await run.balances(seat)
    assert pending.first is not None
    evidence = {"request": request_json(pending.req, run.target.wallet_url), "first_answer": sent_json(pending.first),
                "signed_at": pending.signed_at, "sent_again_after_s": round(run.clock() - pending.signed_at, 1),
                "answer": sent_json(sent), "balance_before": before.to_json(), "balance_after": after.to_json()}
    return result(attack, judge(attack, Observation(sent, before, after, 0, pending.first)), evidence)
