"""The security pass of ``croupier certify`` (simulator/certify/security.py) against real wallets on 127.0.0.1.

* The reference wallet passes every attack, through every built-in dialect (what a wire cannot carry is "not
  tested", and says why).
* Wallets that chose differently where PROTOCOL.md lets them also pass: the lenient wallet (tests/lenient_wallet.py)
  accepts every id string, NUL and control characters included; a strict one refuses every id that is not
  ``[A-Za-z0-9_-]``.
* Each planted bug (the reference wallet, and the lenient one, with one bug) fails exactly the attacks that show
  it, with the rule quoted from PROTOCOL.md and the evidence; no other attack fails on it.
* The judgement itself (pure): for any id string, accepted exactly or refused with nothing changed passes; no
  definitive answer, or a refusal that moved money, never does.

The wallets are served in this event loop with a fake clock, so the replay after the 300 s window costs no wait.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.certify.attacks import (
    ATTACK_STRINGS,
    CHECKLIST,
    GROUP_TITLES,
    Attack,
    Balances,
    Expect,
    Group,
    Observation,
    Sent,
    Sign,
    Status,
    Wire,
    catalogue,
    judge,
    quote_of,
    request,
)
from simulator.certify.security import SecurityReport, security_pass
from simulator.check.target import Target
from simulator.drive.client import AdminClient
from simulator.protocol import dialects
from simulator.protocol.calls import Ok, Rejected, Unknown, WalletCall
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import HttpRequest
from simulator.protocol.dialects.canonical import CanonicalDialect
from simulator.protocol.findings import RULES
from simulator.protocol.money import Money
from simulator.run import accounts as run_accounts
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryStore
from simulator.wallet.service import make_app
from tests.broken_wallets import serve_app
from tests.lenient_wallet import make_lenient_app
from tests.planted_wallets import PLANTED, StaleSignatureAccepted
from tests.support import ADMIN_TOKEN, ROOT, SECRET, FakeClock, free_port

PROTOCOL_DOC = ROOT / "docs" / "protocol.md"
GROUPS = {str(g) for g in Group}


# -- serving ---------------------------------------------------------------------------------------------------


def reference_app(clock: FakeClock, store: MemoryStore | None = None,
                  dialect: CanonicalDialect | None = None) -> web.Application:
    return make_app(store or MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN, 3600, clock), dialect)


async def run_pass(app_of: Callable[[FakeClock], web.Application], dialect: str = "canonical",
                   accounts: int = 0) -> SecurityReport:
    """The security pass against the app, on a fake clock both sides share (the window's wait costs nothing)."""
    clock = FakeClock(time.time())

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    async with serve_app(app_of(clock)) as base:
        prefix = "" if dialect == "canonical" else f"/{dialect}"
        target = Target(f"{base}/wallet{prefix}", SECRET, dialect=dialect, admin_url=base, admin_token=ADMIN_TOKEN)
        if accounts:
            target = dataclasses.replace(target, admin_url=None, admin_token=None,
                                         accounts=await _accounts(base, accounts))
        return await security_pass(target, clock=clock, sleep=sleep)


async def _accounts(base: str, balance: int) -> list[run_accounts.TestAccount]:
    out = []
    async with aiohttp.ClientSession() as http:
        admin = AdminClient(base, ADMIN_TOKEN, http)
        for pid in ("acct-one", "acct-two"):
            await admin.create_player(pid, "EUR", balance)
            out.append(run_accounts.TestAccount(pid, await admin.token(pid, 3600), "EUR"))
    return out


def statuses(report: SecurityReport) -> dict[str, str]:
    return {f"{i.group}/{i.name}": str(i.status) for i in report.items}


def failed(report: SecurityReport) -> set[str]:
    return {f"{i.group}/{i.name}" for i in report.failed}


def _flat(text: str) -> str:
    return " ".join(text.split())


def assert_well_formed(report: SecurityReport) -> None:
    """Every item: a group, a verdict, the evidence of what was sent and what came back; a failure quotes
    PROTOCOL.md verbatim; a "not tested" says why; the report is JSON."""
    assert not report.error, report.error
    assert {i.group for i in report.items} == GROUPS
    doc = _flat(PROTOCOL_DOC.read_text(encoding="utf-8"))
    for item in report.items:
        if item.status is Status.NOT_TESTED:
            assert item.message.startswith("not tested: "), item
            continue
        ev = item.evidence
        assert {"request", "answer", "balance_before", "balance_after"} <= set(ev), item
        assert ev["request"]["body_bytes"] >= 0 and "status" in ev["answer"]
        if item.status is Status.FAIL:
            rule = RULES[item.rule]
            assert item.quote == rule.text and item.quotes == list(rule.quotes)
            if rule.source == "PROTOCOL.md":
                for quote in item.quotes:  # verbatim, markdown included
                    assert _flat(quote) in doc
            assert item.severity in ("money", "contract")
    data = orjson.loads(orjson.dumps(report.to_json()))  # no lone surrogate anywhere (a report file is UTF-8)
    assert data["counts"] == report.counts()
    assert sum(data["counts"].values()) == len(report.items)


# -- correct wallets pass ----------------------------------------------------------------------------------------


async def test_reference_wallet_passes_every_attack() -> None:
    report = await run_pass(reference_app)
    assert_well_formed(report)
    assert report.failed == [], [(i.name, i.message) for i in report.failed]
    assert report.counts()["not tested"] == 0, [i.message for i in report.items if i.status is Status.NOT_TESTED]
    s = statuses(report)
    # 7 signature attacks, 8 attack strings in each of 7 id fields, 6 amounts, 4 bodies, 1 session
    assert len(s) == 7 + 8 * 7 + 6 + 4 + 1
    item = {f"{i.group}/{i.name}": i for i in report.items}
    assert item["signatures/tampered"].evidence["answer"]["status"] == 401
    assert item["signatures/tampered"].evidence["follow_up"]["answer"]["status"] == 200  # rule 3: judged again
    assert item["signatures/replay-after-window"].evidence["sent_again_after_s"] > 300
    assert item["ids/tx_id:nul"].evidence["answer"]["status"] == 400  # the reference refuses control characters
    assert item["ids/tx_id:sql-or"].evidence["answer"]["status"] == 200  # and takes quotes as ordinary ids
    assert item["bodies/oversized"].evidence["request"]["body_bytes"] > 64 * 1024
    assert report.to_json()["by_group"]["ids"]["pass"] == 56


@pytest.mark.parametrize("dialect", [d for d in dialects.names() if d != "canonical"])
async def test_reference_wallet_passes_through_every_dialect(dialect: str) -> None:
    report = await run_pass(reference_app, dialect)
    assert report.failed == [], [(i.name, i.message) for i in report.failed]
    s = statuses(report)
    wire = dialects.get(dialect, SECRET)
    if not wire.signature_has_time:
        for name in ("stale", "future", "replay-after-window"):
            item = next(i for i in report.items if i.name == name)
            assert item.message == f"not tested: the {dialect} dialect's signature binds no time"
    assert s["signatures/unsigned"] == "pass" and s["signatures/wrong-secret"] == "pass"
    assert s["bodies/nested-body"] == "not tested"  # raw bodies are the canonical wire's only
    assert sum(v == "pass" for v in s.values()) >= 60


async def test_lenient_wallet_that_accepts_every_id_passes() -> None:
    """The lenient wallet makes the other choice: every id string is an ordinary id, NUL included."""
    report = await run_pass(lambda clock: make_lenient_app(SECRET, ADMIN_TOKEN, clock=clock))
    assert_well_formed(report)
    assert report.failed == [], [(i.name, i.message) for i in report.failed]
    item = {f"{i.group}/{i.name}": i for i in report.items}
    for fld in ("tx_id", "round_id", "game_id"):
        for name in ATTACK_STRINGS:
            it = item[f"ids/{fld}:{name}"]
            assert it.status is Status.PASS and it.evidence["answer"]["status"] == 200, it
            assert it.note == "accepted as an ordinary call"
    # a win past 2^63: exact big integers, accepted with exactly its effect
    big = item["amounts/win-past-64-bits"]
    assert big.status is Status.PASS and big.evidence["balance_after"]["admin"] == 100 + 2**63


class StrictIds(CanonicalDialect):
    """Refuses every id that is not ``[A-Za-z0-9_-]{1,64}`` with BAD_REQUEST: stricter than PROTOCOL.md needs,
    and allowed (a refusal changes nothing)."""

    ok = re.compile(r"[A-Za-z0-9_-]{1,64}")

    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        decoded = super().decode_request(request, now)
        if isinstance(decoded, Rejected):
            return decoded
        for name in ("tx_id", "round_id", "game_id", "player_id", "session_token", "ref_tx_id", "token"):
            value = getattr(decoded, name)
            if value is not None and not self.ok.fullmatch(value):
                return Rejected(ErrorCode.BAD_REQUEST, f"{name} must be [A-Za-z0-9_-]{{1,64}}")
        return decoded


async def test_wallet_that_refuses_odd_ids_passes() -> None:
    report = await run_pass(lambda clock: reference_app(clock, dialect=StrictIds(SECRET)))
    assert_well_formed(report)
    assert report.failed == [], [(i.name, i.message) for i in report.failed]
    ids = [i for i in report.items if i.group == "ids"]
    assert all(i.evidence["answer"]["status"] in (400, 401, 404) for i in ids)


async def test_players_file_mode() -> None:
    """No admin API: balances are read through the protocol only; the 64-bit wins are not tested (they would
    leave a test account a balance it can never lose)."""
    report = await run_pass(reference_app, accounts=50_000)
    assert report.failed == [], [(i.name, i.message) for i in report.failed]
    assert report.notes == []
    s = statuses(report)
    assert s["amounts/balance-past-64-bits"] == "not tested" and s["amounts/win-past-64-bits"] == "not tested"
    assert s["sessions/other-players-session"] == "pass"
    tampered = next(i for i in report.items if i.name == "tampered")
    assert tampered.evidence["balance_before"]["admin"] is None
    assert tampered.evidence["balance_before"]["protocol"] is not None


async def test_a_poor_test_account_gives_no_false_finding() -> None:
    """An account with money for 5 bets: the rest are refused INSUFFICIENT_FUNDS (a refusal that passes), and a
    refused attack sent again correctly and refused for want of money is no finding; the report says so."""
    report = await run_pass(reference_app, accounts=500)
    assert report.failed == [], [(i.name, i.message) for i in report.failed]
    assert report.notes and "holds 500 minor units" in report.notes[0]
    assert "holds 500 minor units" in report.render_text()
    late = next(i for i in report.items if i.name == "replay-after-window")
    assert late.status is Status.PASS or "INSUFFICIENT_FUNDS" in late.message, late.message


async def test_unreachable_wallet_reports_why() -> None:
    target = Target(f"http://127.0.0.1:{free_port()}/wallet", SECRET, admin_url=f"http://127.0.0.1:{free_port()}",
                    admin_token=ADMIN_TOKEN, timeout_s=2)
    report = await security_pass(target)
    assert report.error.startswith("the security pass could not start")
    assert report.items and all(i.status is Status.NOT_TESTED for i in report.items)
    assert not report.passed
    unknown = await security_pass(dataclasses.replace(target, dialect="no-such-dialect"), groups={"sessions"})
    assert "unknown dialect 'no-such-dialect'" in unknown.error
    assert [i.status for i in unknown.items] == [Status.NOT_TESTED] and not unknown.passed


# -- planted bugs fail the attacks that show them, and no other ---------------------------------------------------

SIGNATURES = {"signatures/unsigned", "signatures/wrong-secret", "signatures/tampered", "signatures/stale",
              "signatures/future"}


def _quotes_in_ids(fields: tuple[str, ...]) -> set[str]:
    return {f"ids/{f}:{n}" for f in fields for n in ("sql-or", "sql-drop")}


REFERENCE_BUGS: dict[str, tuple[set[str], set[str]]] = {
    # bug: (the attacks that must fail, the rules they quote)
    "signature_not_checked": (SIGNATURES, {"transport-signature"}),
    "stale_signature_accepted": ({"signatures/stale", "signatures/future"}, {"transport-signature"}),
    "float_amounts_accepted": ({"amounts/fractional"}, {"money-minor-units"}),
    "crashes_on_quotes": (_quotes_in_ids(("tx_id", "round_id", "player_id", "ref_tx_id")),
                          {"errors-definitive", "errors-codes"}),
    "wraps_at_64_bits": ({"amounts/balance-past-64-bits"}, {"idempotency-7-never-negative"}),
    "bet_with_other_players_session": ({"sessions/other-players-session"}, {"sessions-bet-needs-live-session"}),
}


def _planted_app(bug: str) -> Callable[[FakeClock], web.Application]:
    def make(clock: FakeClock) -> web.Application:
        if bug == "stale_signature_accepted":
            return reference_app(clock, dialect=StaleSignatureAccepted(SECRET))
        spec = PLANTED[bug]
        return reference_app(clock, spec.store(), spec.dialect(SECRET) if spec.dialect else None)
    return make


@pytest.mark.parametrize("bug", list(REFERENCE_BUGS))
async def test_planted_bug_fails_its_attacks_only(bug: str) -> None:
    must, rules = REFERENCE_BUGS[bug]
    report = await run_pass(_planted_app(bug))
    assert_well_formed(report)
    assert failed(report) == must, [(i.name, i.message) for i in report.failed]
    assert {i.rule for i in report.failed} == rules
    text = report.render_text()
    for item in report.failed:
        assert item.evidence["answer"]["outcome"] in item.message
        assert f"FAIL {item.group}/{item.name}" in text and item.quote in text


async def test_stale_accepting_wallet_shows_the_evidence() -> None:
    """What a failure says: the attack, the rule's words, the bytes and the balances."""
    report = await run_pass(_planted_app("stale_signature_accepted"))
    stale = next(i for i in report.items if i.name == "stale")
    assert stale.status is Status.FAIL and stale.severity == "money"
    assert "a t more than 300 s away from its clock" in stale.quote
    assert "a `t` more than 300 s away from its clock" in stale.quotes[0]
    assert stale.to_json()["section"] == "Transport"
    t = int(stale.evidence["request"]["headers"]["X-Signature"].split(",")[0][2:])
    assert time.time() - t > 3000
    before, after = stale.evidence["balance_before"], stale.evidence["balance_after"]
    assert after["admin"] == before["admin"] - 100 and after["protocol"] == before["protocol"] - 100
    after_window = next(i for i in report.items if i.name == "replay-after-window")
    assert after_window.status is Status.PASS and "answered as a replay" in after_window.note


LENIENT_BUGS: dict[str, tuple[set[str], set[str]]] = {
    "signature_not_checked": (SIGNATURES, {"transport-signature"}),
    "float_amounts_accepted": ({"amounts/fractional"}, {"money-minor-units"}),
    "crashes_on_quotes": (_quotes_in_ids(("tx_id", "round_id", "ref_tx_id")), {"errors-definitive"}),
    "wraps_at_64_bits": ({"amounts/balance-past-64-bits", "amounts/win-past-64-bits"},
                         {"idempotency-7-never-negative"}),
    "bet_with_other_players_session": ({"sessions/other-players-session"}, {"sessions-bet-needs-live-session"}),
}


@pytest.mark.parametrize("bug", list(LENIENT_BUGS))
async def test_lenient_planted_bug_fails_its_attacks_only(bug: str) -> None:
    must, rules = LENIENT_BUGS[bug]
    report = await run_pass(lambda clock: make_lenient_app(SECRET, ADMIN_TOKEN, frozenset({bug}), clock=clock))
    assert_well_formed(report)
    assert failed(report) == must, [(i.name, i.message) for i in report.failed]
    assert {i.rule for i in report.failed} == rules


# -- the judgement, pure -------------------------------------------------------------------------------------------

WIRE = Wire()
BY_NAME = {a.key: a for a in catalogue(WIRE)}
MAY_BE_ACCEPTED = [a for a in BY_NAME.values() if a.group is Group.IDS and a.expect is Expect.REFUSE_OR_APPLY
                   and a.field != "ref_tx_id"]
MUST_BE_REFUSED = [a for a in BY_NAME.values() if a.expect is Expect.REFUSE]


def _ok(balance: int, wtx: str = "w1") -> Sent:
    return Sent(Ok(Money.of(balance, "EUR"), wallet_tx_id=wtx), 200, b"{}")


def _refused(code: ErrorCode = ErrorCode.BAD_REQUEST, status: int = 400) -> Sent:
    return Sent(Rejected(code), status, b"{}")


def _obs(sent: Sent, before: int, after: int, delta: int = -100, **kw: Any) -> Observation:
    return Observation(sent, Balances(before, before), Balances(after, after), delta, **kw)


@given(value=st.text(min_size=1, max_size=1200), attack=st.sampled_from(MAY_BE_ACCEPTED),
       balance=st.integers(100, 10**12))
def test_any_id_accepted_exactly_or_refused_unchanged_passes(value: str, attack: Attack, balance: int) -> None:
    attack = dataclasses.replace(attack, value=value)
    assert judge(attack, _obs(_ok(balance - 100), balance, balance - 100)).status is Status.PASS
    for code in (ErrorCode.BAD_REQUEST, ErrorCode.ROUND_NOT_FOUND, ErrorCode.UNMAPPED):
        assert judge(attack, _obs(_refused(code), balance, balance)).status is Status.PASS
    # 5xx, a timeout, an unreadable 4xx: never a pass
    for sent in (Sent(Unknown("HTTP 500", 500), 500, b"oops"), Sent(Unknown("timeout"), None, b""),
                 Sent(Unknown("HTTP 400 not a protocol error", 400), 400, b"<html>")):
        verdict = judge(attack, _obs(sent, balance, balance))
        assert verdict.status is Status.FAIL and verdict.rule == "errors-definitive"
    # refused, yet money moved; accepted, yet not exactly
    assert judge(attack, _obs(_refused(), balance, balance - 100)).rule == "errors-codes"
    assert judge(attack, _obs(_ok(balance - 200), balance, balance - 200)).status is Status.FAIL


@given(attack=st.sampled_from(MUST_BE_REFUSED), balance=st.integers(100, 10**12))
def test_a_due_refusal_never_passes_accepted_or_without_an_answer(attack: Attack, balance: int) -> None:
    for after in (balance, balance - 100):
        verdict = judge(attack, _obs(_ok(after), balance, after))
        assert verdict.status is Status.FAIL and verdict.rule == attack.rule
        assert verdict.severity == ("money" if after != balance else "contract")
    verdict = judge(attack, _obs(Sent(Unknown("HTTP 502", 502), 502, b""), balance, balance))
    assert verdict.status is Status.FAIL and verdict.rule == "errors-codes"
    code = next(iter(attack.codes)) if attack.codes else ErrorCode.INVALID_TOKEN
    ok = judge(attack, _obs(_refused(code, 401), balance, balance))
    assert ok.status is Status.PASS, ok


def test_the_codes_a_call_earns() -> None:
    """A bad signature on an otherwise valid bet breaks one rule: INVALID_SIGNATURE only; any other code is wrong."""
    tampered = BY_NAME["signatures/tampered"]
    assert judge(tampered, _obs(_refused(ErrorCode.INVALID_SIGNATURE, 401), 500, 500)).status is Status.PASS
    wrong = judge(tampered, _obs(_refused(ErrorCode.BAD_REQUEST), 500, 500))
    assert wrong.status is Status.FAIL and wrong.rule == "transport-signature"
    # a refused call sent again as it should have been must be judged again (rule 3)
    obs = _obs(_refused(ErrorCode.INVALID_SIGNATURE, 401), 500, 500, follow=_refused(ErrorCode.DUPLICATE_MISMATCH,
               409), follow_after=Balances(500, 500))
    assert judge(tampered, obs).rule == "idempotency-3-rejected-not-recorded"


def test_replays() -> None:
    within = BY_NAME["signatures/replay-in-window"]
    assert judge(within, _obs(_ok(400, "w1"), 400, 400, first=_ok(400, "w1"))).status is Status.PASS
    assert judge(within, _obs(_ok(300, "w2"), 400, 300, first=_ok(400, "w1"))).rule == "idempotency-1-no-change"
    assert judge(within, _obs(_ok(400, "w2"), 400, 400, first=_ok(400, "w1"))).rule == "idempotency-1-original-id"
    after = BY_NAME["signatures/replay-after-window"]
    refused = judge(after, _obs(_refused(ErrorCode.INVALID_SIGNATURE, 401), 400, 400, first=_ok(400)))
    assert refused.status is Status.PASS and not refused.note
    as_replay = judge(after, _obs(_ok(400, "w1"), 400, 400, first=_ok(400, "w1")))
    assert as_replay.status is Status.PASS and "A replay (rule 1) is always answered as one" in as_replay.note
    assert judge(after, _obs(_ok(300, "w9"), 400, 300, first=_ok(400, "w1"))).rule == "idempotency-1-no-change"


def test_quotes_are_verbatim() -> None:
    doc = _flat(PROTOCOL_DOC.read_text(encoding="utf-8"))
    for attack in BY_NAME.values():
        rule = RULES[attack.rule]
        if rule.source == "PROTOCOL.md":
            assert all(_flat(q) in doc for q in rule.quotes), attack.rule
        assert quote_of(attack.rule) == rule.text


@given(value=st.text(min_size=1, max_size=1100))
def test_any_id_string_can_be_sent(value: str) -> None:
    """Every attack string, whatever it holds, goes on the canonical wire signed over the bytes sent."""
    from simulator.certify.attacks import Seat, base_call
    from simulator.protocol import signing

    dialect, wrong = dialects.get("canonical", SECRET), dialects.get("canonical", "other")
    seat = Seat("p", "s", "EUR")
    for attack in (a for a in BY_NAME.values() if a.group is Group.IDS and a.name.endswith(":nul")):
        attack = dataclasses.replace(attack, value=value, name=attack.name.replace("nul", "any"))
        call = base_call(attack, seat, None, "t1", "r1", "g", "n")
        req = request(attack, dialect, wrong, SECRET, call, 1_800_000_000.0)
        assert signing.verify(SECRET, req.headers[signing.HEADER], req.body, 1_800_000_000.0)
        assert json.loads(req.body)[attack.field].endswith(value)


def test_every_group_has_a_title_and_checklist_items() -> None:
    assert set(GROUP_TITLES) == set(CHECKLIST) == set(Group)
    assert {g for a in catalogue(WIRE) for g in [a.group]} == set(Group)


def test_catalogue_says_what_a_wire_cannot_carry() -> None:
    untimed = {a.name: a.skip for a in catalogue(Wire(dialect="x", timed=False, canonical_json=False,
                                                      names_player=False, fresh_players=False,
                                                      authenticates=False))}
    assert untimed["token:nul"].startswith("not tested: the x dialect has no authenticate call")
    assert untimed["stale"] == untimed["future"] == "not tested: the x dialect's signature binds no time"
    assert untimed["nested-field"].startswith("not tested: the x dialect's body")
    assert untimed["other-players-session"] == "not tested: the x dialect's session names the player"
    assert untimed["player_id:sql-or"] == "not tested: the x dialect's calls name no player"
    assert untimed["balance-past-64-bits"].startswith("not tested: a win this large")
    assert all(a.sign is not Sign.OK or a.variant or a.field or a.group is Group.SESSIONS or a.big_win
               for a in catalogue(WIRE))


# -- real time, the curl evidence -----------------------------------------------------------------------------


@pytest.mark.slow
async def test_replay_after_the_window_in_real_time() -> None:
    """No fake clock: the bet is signed 298 s ago, sent, and sent again once 302 s old (about 4 s of waiting)."""
    async with serve_app(make_app(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN))) as base:
        target = Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)
        started = time.monotonic()
        report = await security_pass(target, margin_s=2, groups={"signatures"})
    assert time.monotonic() - started >= 3
    assert {i.group for i in report.items} == {"signatures"} and report.passed
    late = next(i for i in report.items if i.name == "replay-after-window")
    assert late.status is Status.PASS and late.evidence["first_answer"]["status"] == 200
    assert late.evidence["answer"]["status"] == 401 and late.evidence["sent_again_after_s"] > 300
    assert [i.name for i in report.items][-1] == "replay-after-window"  # the catalogue's order, kept


async def test_curl_evidence_sends_the_same_bytes() -> None:
    import asyncio

    async with serve_app(make_app(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN))) as base:
        target = Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)
        report = await security_pass(target, groups={"signatures", "bodies"}, margin_s=2)
        item = {i.name: i for i in report.items}
        for big in ("nested-body", "oversized"):  # 60 KB, 64 KiB: described, not spelled out
            assert "curl" not in item[big].evidence["request"]
        # the exact bytes, signed (a body that is no UTF-8 included): the same answer again, not INVALID_SIGNATURE
        for name, code in (("unsigned", "INVALID_SIGNATURE"), ("wrong-secret", "INVALID_SIGNATURE"),
                           ("invalid-utf8", "BAD_REQUEST")):
            proc = await asyncio.create_subprocess_exec(
                "bash", "-c", item[name].evidence["request"]["curl"] + " -w ' %{http_code}'",
                stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            body, _, status = out.decode().rpartition(" ")
            assert json.loads(body)["code"] == code and int(status) == item[name].evidence["answer"]["status"], name


# -- any id string, end to end: two wallets that chose differently both pass ---------------------------------------


@pytest.fixture(scope="module")
def two_wallets() -> Iterator[dict[str, str]]:
    """The reference wallet (refuses control characters and ids past 1,024 characters) and the lenient one
    (takes every string), each served from a thread of its own (Hypothesis's examples are synchronous)."""
    from tests.broken_wallets import serve_in_thread

    ref = make_app(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN))
    with serve_in_thread(ref) as r, serve_in_thread(make_lenient_app(SECRET, ADMIN_TOKEN)) as lenient:
        yield {"reference": r, "lenient": lenient}


ID_TEMPLATES = [a for a in BY_NAME.values() if a.group is Group.IDS and a.name.endswith(":sql-or")]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=1100), template=st.sampled_from(ID_TEMPLATES))
def test_any_id_string_passes_on_wallets_that_chose_differently(two_wallets: dict[str, str], value: str,
                                                                 template: Attack) -> None:
    import asyncio

    attack = dataclasses.replace(template, value=value, name=f"{template.field}:drawn")
    for name, base in two_wallets.items():
        target = Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)
        report = asyncio.run(security_pass(target, attacks=[attack]))
        [item] = report.items
        assert item.status is Status.PASS, (name, item.message, item.evidence.get("answer"))


def test_catalogue_agrees_with_the_checks_variant_policy() -> None:
    """The malformed amounts and bodies are the check's variants: judged by the same reading of PROTOCOL.md."""
    from simulator.check.variants import MUTATIONS, POLICY

    for attack in BY_NAME.values():
        if attack.variant not in POLICY:
            continue
        policy = POLICY[attack.variant]
        if policy == "bad-request":
            assert attack.codes == {ErrorCode.BAD_REQUEST} and attack.expect is Expect.REFUSE, attack.key
        elif policy == "any":
            assert not attack.codes and attack.expect is Expect.REFUSE, attack.key
        elif policy == "big":
            assert attack.expect is (Expect.REFUSE if attack.op.value == "bet" else Expect.REFUSE_OR_APPLY)
        assert attack.rule in (MUTATIONS[attack.variant], "idempotency-7-never-negative", "operations-effect")


# -- an independent wallet whose wires mean something else (tests/shaped_wallets.py, TOML dialects) ---------------


def _shaped(shape: str, bugs: frozenset[str] = frozenset()) -> Callable[[FakeClock], web.Application]:
    from tests.shaped_wallets import make_shaped_app

    return lambda clock: make_shaped_app(SECRET, ADMIN_TOKEN, bugs, clock=clock)


async def run_shaped(shape: str, bugs: frozenset[str] = frozenset()) -> SecurityReport:
    from tests.shaped_wallets import SHAPES

    clock = FakeClock(time.time())

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    async with serve_app(_shaped(shape, bugs)(clock)) as base:
        target = Target(f"{base}{SHAPES[shape]}", SECRET, dialect=str(ROOT / "dialects" / f"{shape}.toml"),
                        admin_url=base, admin_token=ADMIN_TOKEN)
        return await security_pass(target, clock=clock, sleep=sleep)


async def test_session_wallet_through_its_dialect_file() -> None:
    """The session names the player, the operator makes the sessions, amounts are strings, no round, no time in
    the signature: what the wire cannot carry is not tested, and says why; everything else passes."""
    report = await run_shaped("session-wallet")
    assert report.failed == [], [(i.name, i.message) for i in report.failed]
    s = statuses(report)
    assert s["sessions/other-players-session"] == s["signatures/stale"] == s["amounts/string"] == "not tested"
    assert all(s[f"ids/{f}:nul"] == "not tested" for f in ("round_id", "player_id", "token"))
    assert all(s[f"ids/{f}:nul"] == "pass" for f in ("tx_id", "game_id", "session_token", "ref_tx_id"))
    assert s["signatures/tampered"] == s["amounts/negative"] == "pass"


async def test_query_wallet_and_its_string_amount_bug() -> None:
    correct = await run_shaped("query-wallet")
    assert correct.failed == [] and correct.counts()["not tested"] == 3  # the raw bodies: canonical only
    buggy = await run_shaped("query-wallet", frozenset({"string_amount_concatenated"}))
    assert failed(buggy) == {"amounts/string"}
    [item] = buggy.failed
    assert item.rule == "money-minor-units" and "never floats, never strings" in item.quote


# -- run_pass: what `croupier certify` calls (synchronous) --------------------------------------------------------


def test_run_pass_from_synchronous_code(two_wallets: dict[str, str], tmp_path: Path) -> None:
    """The admin API by default on the wallet's host; a players file instead; a players file that is not there."""
    from simulator.certify.security import run_pass
    from tests.support import write_test_accounts

    base = two_wallets["reference"]
    seen: list[str] = []
    report = run_pass(f"{base}/wallet", "canonical", SECRET, admin_token=ADMIN_TOKEN, margin_s=2,
                      groups={"signatures", "sessions"}, on_result=lambda item: seen.append(item.name))
    data = report.to_json()
    assert data["verdict"] == "pass" and data["counts"] == {"pass": 8, "fail": 0, "not tested": 0}
    assert sorted(seen) == sorted(i["name"] for i in data["items"])
    assert all(i["evidence"]["balance_before"]["admin"] is not None for i in data["items"])

    players = tmp_path / "players.csv"
    write_test_accounts(base, players, [("file-one", "EUR", 50_000), ("file-two", "EUR", 50_000)])
    from_file = run_pass(f"{base}/wallet", "canonical", SECRET, players_file=str(players), margin_s=2,
                         groups={"sessions", "amounts"})
    assert from_file.verdict == "pass" and from_file.players == ["file-one", "file-two"]
    assert statuses(from_file)["amounts/balance-past-64-bits"] == "not tested"

    missing = run_pass(f"{base}/wallet", "canonical", SECRET, players_file=str(tmp_path / "none.csv"))
    assert missing.verdict == "error" and "cannot read" in missing.error
    assert missing.items and all(i.status is Status.NOT_TESTED for i in missing.items)


# -- over HTTPS ----------------------------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, made here (no network, no fixture files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "croupier test wallet")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "wallet.pem", tmp / "wallet.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_over_https_with_the_wallets_certificate(tmp_path: Path) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = TestServer(make_app(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN)), host="127.0.0.1",
                        port=free_port())
    await server.start_server(ssl=server_ctx)
    base = f"https://127.0.0.1:{server.port}"
    try:
        target = Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)
        trusted = await security_pass(target, groups={"signatures", "sessions"}, margin_s=2,
                                      ssl_context=ssl.create_default_context(cafile=str(cert)))
        assert trusted.passed and trusted.counts()["pass"] == 8, trusted.render_text()
        untrusted = await security_pass(target, groups={"sessions"})  # the system's trust store: not this one
        assert untrusted.verdict == "error" and "certificate" in untrusted.error.lower(), untrusted.error
    finally:
        await server.close()


class KnownGames(CanonicalDialect):
    """Takes bets of the games it knows only (BAD_REQUEST for any other, before the signature is checked): a
    plain bet of the pass's default game is refused, which the report says, and no attack fails for it."""

    def decode_request(self, request: HttpRequest, now: float) -> WalletCall | Rejected:
        try:
            game = orjson.loads(request.body).get("game_id")
        except (orjson.JSONDecodeError, AttributeError):  # (json.loads would recurse past its limit: a 500)
            game = None
        if request.path == "bet" and game not in (None, "slots-1"):
            return Rejected(ErrorCode.BAD_REQUEST, "unknown game")
        return super().decode_request(request, now)


async def test_a_wallet_that_knows_its_games() -> None:
    refused = await run_pass(lambda clock: reference_app(clock, dialect=KnownGames(SECRET)))
    assert refused.failed == [], [(i.name, i.message) for i in refused.failed]
    assert refused.notes and "a plain bet of 100 (game 'croupier-security') was refused with BAD_REQUEST" \
        in refused.notes[0]
    assert all("follow_up" not in i.evidence for i in refused.items)

    clock = FakeClock(time.time())

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    async with serve_app(reference_app(clock, dialect=KnownGames(SECRET))) as base:
        target = Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)
        named = await security_pass(target, clock=clock, sleep=sleep, game_id="slots-1")
    assert named.notes == [] and named.failed == [], [(i.name, i.message) for i in named.failed]
    assert statuses(named)["signatures/replay-in-window"] == "pass"


async def test_a_wallet_clock_ahead_of_croupiers() -> None:
    """30 s ahead (inside the window, more than the margin): the replay after the window cannot be told from a
    stale request, so it is not tested, and says why; nothing fails."""
    ours = FakeClock(time.time())
    theirs = FakeClock(ours.now + 30)

    async def sleep(seconds: float) -> None:
        ours.advance(seconds)
        theirs.advance(seconds)

    async with serve_app(reference_app(theirs)) as base:
        target = Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)
        report = await security_pass(target, clock=ours, sleep=sleep, groups={"signatures"})
    assert report.failed == []
    late = next(i for i in report.items if i.name == "replay-after-window")
    assert late.status is Status.NOT_TESTED and "clock may be more than 10 s ahead" in late.message
