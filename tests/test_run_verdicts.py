"""Verdicts of ``croupier run`` a QA team can trust on wallets nobody here wrote.

* The ledger judges by PROTOCOL.md's text: an invalid call may be refused with any code of a rule
  it breaks (another one than the reference wallet's is a note, a code of no such rule is
  ``wrong_code``); an accepted invalid call is money or contract by what moved; a choice the
  protocol allows is a ``wallet_choice`` note, never a failure.
* A run that tested nothing — wrong base URL, wrong ``--secret`` or ``--admin-token``, an
  unreachable host, nobody seated, nothing judged — is the verdict ``error`` everywhere (summary,
  JSON, JUnit ``<error>``, HTML), exit 2, with the likely cause.
* ``--players FILE`` runs never collide: twice with the same accounts, both pass; no admin API needed.
* A wallet whose rollback answers cannot be read: ``run chaos`` ends in bounded time with the finding.
* ``late_duplicate``: a wallet whose idempotency memory is a cache is caught; the reference is not.
* The lenient wallet (tests/lenient_wallet.py: the other choice at every "Where a wallet may
  choose" point) passes ``run chaos`` with several seeds, and a short ``croupier load``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator.drive.inprocess import InProcessClient, InProcessWallet, SyncDriver
from simulator.judge.ledger import Anomaly, Ledger
from simulator.play import scenario as scenarios
from simulator.play.faults import Due, FaultPlan, FaultRates, Invalid
from simulator.play.rounds import Pay, Plan, RoundContext, Seat, Send, Stake, TxIds, play_round
from simulator.play.scenario import Scenario
from simulator.protocol.calls import Ok, Op, Outcome, Rejected, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects.canonical import CanonicalDialect
from simulator.protocol.findings import RULES, Severity
from simulator.protocol.money import Money, currency
from simulator.report import model
from simulator.run.runner import RunOptions, RunResult, run
from tests.broken_wallets import make_broken_app, serve_app, serve_in_thread
from tests.lenient_wallet import lenient_servers, make_lenient_app
from tests.planted_wallets import make_planted_app
from tests.support import ADMIN_TOKEN, SECRET, WalletProcess, free_port
from tests.test_runner import croupier, explain, one_line, secrets_args, shrink, warm_players

# -- 1. the ledger judges by the text (in memory, no network) --------------------------------

K = "k"


def _setup(wallet: InProcessWallet, balance: int = 10_000) -> tuple[SyncDriver, Seat]:
    ledger = Ledger()
    driver = SyncDriver(InProcessClient(wallet, CanonicalDialect(K)), ledger,
                        InProcessClient(wallet, CanonicalDialect("wrong")))
    wallet.create_player("p", "EUR", balance)
    ledger.open("p", "EUR", balance)
    out = driver.deliver(Send(WalletCall.authenticate(wallet.launch("p"), "g")))
    assert isinstance(out, Ok) and out.session_token
    return driver, Seat("p", out.session_token, currency("EUR"), balance)


class _Forced(FaultPlan):
    def __init__(self, kind: Invalid) -> None:
        super().__init__(FaultRates())
        self.kind = kind

    def invalid(self, rng: random.Random) -> Invalid | None:
        return self.kind


def _invalid_round(wallet: InProcessWallet, kind: Invalid, *, live: bool = False) -> SyncDriver:
    """One round then the invalid call ``kind`` against ``wallet``, then the final balance read."""
    driver, seat = _setup(wallet)
    if live:  # the provider knows the session is live for an hour: no session code is due
        seat.live_until = time.time() + 3600
    driver.drive(play_round(RoundContext(seat, "slot", random.Random(1), TxIds("t"), _Forced(kind)),
                            Plan((Stake(100),), (Pay(50),))))
    out = driver.client.exchange(WalletCall.balance("p", seat.session_token)).outcome
    assert isinstance(out, Ok)
    driver.ledger.reconcile("p", out)
    return driver


def _kinds(ledger: Ledger) -> dict[str, int]:
    return {str(k): n for k, n in ledger.counts.items() if n}


class RoundFirst(InProcessWallet):
    """Checks a closed round before idempotency: a mismatched replay on a closed round is ROUND_CLOSED
    (a code of another rule the call breaks: allowed, a note)."""

    def execute(self, call: WalletCall, now: float) -> Outcome:
        if call.op is Op.BET and call.player_id and call.round_id:
            r = self.repo.round(call.player_id, call.round_id)
            if r is not None and r.closed and (seen := self.repo.tx(call.tx_id or "")) is not None \
                    and seen.replay_key() != call.replay_key():
                return Rejected(ErrorCode.ROUND_CLOSED, "closed")
        return super().execute(call, now)


class BadRequestOnClosedRound(InProcessWallet):
    """Refuses a bet on a closed round with BAD_REQUEST: a code of no rule the call breaks."""

    def execute(self, call: WalletCall, now: float) -> Outcome:
        out = super().execute(call, now)
        if isinstance(out, Rejected) and out.code is ErrorCode.ROUND_CLOSED:
            return Rejected(ErrorCode.BAD_REQUEST, "no")
        return out


class ExpiredEverywhere(InProcessWallet):
    """Answers SESSION_EXPIRED to a bet on a closed round (as if the session had run out)."""

    def execute(self, call: WalletCall, now: float) -> Outcome:
        out = super().execute(call, now)
        if isinstance(out, Rejected) and out.code is ErrorCode.ROUND_CLOSED:
            return Rejected(ErrorCode.SESSION_EXPIRED, "expired")
        return out


class RefundsWins(InProcessWallet):
    """A rollback naming a win takes the win back."""

    def execute(self, call: WalletCall, now: float) -> Outcome:
        ref = self.repo.tx(call.ref_tx_id or "") if call.op is Op.ROLLBACK else None
        if ref is not None and ref.op == "win":
            player = self.repo.player("p")
            assert player is not None and ref.amount is not None
            self.repo.set_balance("p", player.balance - ref.amount)
            return Ok(Money(player.balance - ref.amount, currency("EUR")), wallet_tx_id="refund")
        return super().execute(call, now)


class AcceptsRollbackOfWin(InProcessWallet):
    """A rollback naming a win is answered 200 and changes nothing (rule 6 says ROLLBACK_NOT_ALLOWED)."""

    def execute(self, call: WalletCall, now: float) -> Outcome:
        ref = self.repo.tx(call.ref_tx_id or "") if call.op is Op.ROLLBACK else None
        if ref is not None and ref.op == "win":
            player = self.repo.player("p")
            assert player is not None
            return Ok(Money(player.balance, currency("EUR")), wallet_tx_id="noop")
        return super().execute(call, now)


class Overdraws(InProcessWallet):
    """Takes a bet larger than the balance."""

    def execute(self, call: WalletCall, now: float) -> Outcome:
        player = self.repo.player(call.player_id or "")
        if call.op is Op.BET and player is not None and call.amount and call.amount.minor > player.balance:
            self.repo.set_balance(player.player_id, player.balance - call.amount.minor)
            return Ok(Money(player.balance - call.amount.minor, currency("EUR")), wallet_tx_id="over")
        return super().execute(call, now)


def test_the_reference_order_is_one_choice_and_another_code_of_a_broken_rule_is_a_note() -> None:
    driver = _invalid_round(RoundFirst(K), Invalid.MISMATCHED_REPLAY)
    assert _kinds(driver.ledger) == {"wallet_choice": 1}, driver.ledger.findings
    note = driver.ledger.findings[0]
    assert note.severity is Severity.NOTE and note.rule == "choice-codes" and "ROUND_CLOSED" in note.message
    assert driver.ledger.anomaly_count == 0
    assert model.verdict(_kinds(driver.ledger)) == "pass" and model.verdict(_kinds(driver.ledger), Severity.NOTE) == "fail"


def test_a_code_of_no_rule_the_call_breaks_is_wrong_code() -> None:
    driver = _invalid_round(BadRequestOnClosedRound(K), Invalid.CLOSED_ROUND)
    assert _kinds(driver.ledger) == {"wrong_code": 1}, driver.ledger.findings
    f = driver.ledger.findings[0]
    assert f.severity is Severity.CONTRACT and f.rule == "operations-round-closed"
    assert "BAD_REQUEST" in f.message and "ROUND_CLOSED" in f.message
    assert f.to_json()["quote"] == RULES["operations-round-closed"].text


def test_a_session_code_is_allowed_only_when_the_session_may_have_run_out() -> None:
    assert _kinds(_invalid_round(ExpiredEverywhere(K), Invalid.CLOSED_ROUND).ledger) == {}
    live = _invalid_round(ExpiredEverywhere(K), Invalid.CLOSED_ROUND, live=True).ledger
    assert _kinds(live) == {"wrong_code": 1}, live.findings


@pytest.mark.parametrize(("wallet", "kind", "found"), [
    (RefundsWins, Invalid.ROLLBACK_OF_WIN, {"refund_not_due"}),
    (AcceptsRollbackOfWin, Invalid.ROLLBACK_OF_WIN, {"accepted_invalid_call"}),
    (Overdraws, Invalid.OVERDRAFT, {"negative_balance"}),
], ids=["refunds-a-win", "accepts-a-rollback-of-a-win", "overdraws"])
def test_an_accepted_invalid_call_is_money_when_money_moved_else_contract(
        wallet: type[InProcessWallet], kind: Invalid, found: set[str]) -> None:
    ledger = _invalid_round(wallet(K), kind).ledger
    # (Overdraws takes the bet without recording it, so the provider's rollback of it refunds nothing too.)
    assert found <= set(_kinds(ledger)) <= found | {"rollback_not_applied"}, ledger.findings
    f = ledger.findings[0]
    assert f.severity is (Severity.CONTRACT if found == {"accepted_invalid_call"} else Severity.MONEY)


def test_choices_of_the_protocol_are_notes_and_the_text_is_not_stretched() -> None:
    """A rollback naming another round refused ROLLBACK_NOT_ALLOWED, a regular win after its bet's rollback
    refused ROUND_NOT_FOUND: notes.  A rollback of a bet refused for the player's (expired) session: a
    failure of the rule that money owed is paid."""
    ledger = Ledger()
    ledger.open("p", "EUR", 1000)
    eur = currency("EUR")

    def send(call: WalletCall, outcome: Outcome, expect: Any = None) -> None:
        ledger.end(ledger.begin(call, expect), call, outcome, expect=expect)

    bet = WalletCall.bet("b1", "p", "s", "g", "r1", Money(100, eur))
    send(bet, Ok(Money(900, eur), "w1"))
    send(WalletCall.rollback("x1", "b1", "p", "s", "other-game", "r1"), Rejected(ErrorCode.ROLLBACK_NOT_ALLOWED))
    send(WalletCall.rollback("x2", "b1", "p", "s", "g", "r1"), Ok(Money(1000, eur), "w2"))
    send(WalletCall.win("w", "p", "s", "g", "r1", Money(50, eur), WinReason.REGULAR, True),
         Rejected(ErrorCode.ROUND_NOT_FOUND))
    assert ledger.count(Severity.NOTE) == 2 and ledger.anomaly_count == 0, ledger.findings
    assert {f.rule for f in ledger.findings} == {"choice-rollback-round", "choice-win-after-rollback"}
    send(WalletCall.bet("b2", "p", "s", "g", "r2", Money(100, eur)), Ok(Money(900, eur), "w3"))
    send(WalletCall.rollback("x3", "b2", "p", "s", "g", "r2"), Rejected(ErrorCode.SESSION_EXPIRED))
    assert ledger.counts[Anomaly.REFUSED_VALID_CALL] == 1
    assert ledger.findings[-1].rule == "sessions-money-owed-is-paid"


def test_every_finding_names_a_rule_quoted_from_the_protocol() -> None:
    due = Due.of(ErrorCode.ROUND_CLOSED, what="bet on a closed round")
    assert due.rule == "operations-round-closed" and due.codes == {ErrorCode.ROUND_CLOSED}
    for kind in Anomaly:
        f = Ledger()
        f.flag(kind, "p", "m", [])
        data = f.findings[0].to_json()
        assert data["severity"] == str(kind.severity) and data["rule"] in RULES and data["quote"]
        assert tuple(data["quotes"]) == RULES[data["rule"]].quotes  # verbatim, as tests/test_findings.py checks


# -- 2. a run that tested nothing is an error, never a pass -----------------------------------


@pytest.fixture(scope="module")
def wallet_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalletProcess]:
    with WalletProcess(tmp_path_factory.mktemp("wallet") / "wallet.db") as proc:
        yield proc


def _reports(tmp_path: Path) -> list[str]:
    return ["--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"), "--html", str(tmp_path / "r.html")]


def assert_error_everywhere(tmp_path: Path, proc: Any, says: str) -> None:
    """Exit 2; the summary, the JSON, the JUnit XML and the HTML all say ERROR and name the cause."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert report["verdict"] == "error" and says in report["error"], report["error"]
    assert says in one_line(proc.stderr) and "ERROR" in proc.stdout and "PASS" not in proc.stdout
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    error = suite.find(".//error")
    assert error is not None and says in str(error.get("message"))
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert ">ERROR<" in html and ">PASS<" not in html


def test_a_base_url_without_wallet_is_an_error(wallet_proc: WalletProcess, tmp_path: Path) -> None:
    proc = croupier("smoke", "--wallet", wallet_proc.base, "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
                    "--rounds", "2", "--player-count", "2", *_reports(tmp_path))
    assert_error_everywhere(tmp_path, proc, "is the base URL right (…/wallet)?")


def test_a_wrong_secret_is_an_error(wallet_proc: WalletProcess, tmp_path: Path) -> None:
    proc = croupier("smoke", "--wallet", f"{wallet_proc.base}/wallet", "--secret", "not-it", "--admin-token",
                    ADMIN_TOKEN, "--rounds", "2", "--player-count", "2", *_reports(tmp_path))
    assert_error_everywhere(tmp_path, proc, "every call was refused INVALID_SIGNATURE: check --secret")


def test_a_wrong_admin_token_is_an_error(wallet_proc: WalletProcess, tmp_path: Path) -> None:
    proc = croupier("smoke", "--wallet", f"{wallet_proc.base}/wallet", "--secret", SECRET, "--admin-token",
                    "not-it", "--rounds", "2", "--player-count", "2", *_reports(tmp_path))
    assert_error_everywhere(tmp_path, proc, "admin API answered 401: check --admin-token")


def test_an_unreachable_host_is_an_error(tmp_path: Path) -> None:
    proc = croupier("smoke", "--wallet", f"http://127.0.0.1:{free_port()}/wallet", *_reports(tmp_path))
    assert_error_everywhere(tmp_path, proc, "unreachable")


def _accounts(base: str, path: Path, n: int, balance: int, *, prefix: str) -> Path:
    """``n`` test accounts provisioned through the admin API, written as a --players CSV."""
    def admin(path_: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(f"{base}{path_}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["player_id", "token", "currency"])
        for i in range(n):
            pid = f"{prefix}-{i}"
            admin("/admin/players", {"player_id": pid, "currency": "EUR", "balance": balance})
            w.writerow([pid, admin("/admin/tokens", {"player_id": pid})["token"], "EUR"])
    return path


def test_launch_tokens_that_do_not_authenticate_are_an_error(wallet_proc: WalletProcess, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("player_id,token,currency\nqa-1,no-such-token,EUR\nqa-2,nor-this,EUR\n", encoding="utf-8")
    proc = croupier("smoke", "--wallet", f"{wallet_proc.base}/wallet", "--secret", SECRET, "--players", str(bad),
                    "--rounds", "2", *_reports(tmp_path))
    assert_error_everywhere(tmp_path, proc, "authenticate refused INVALID_TOKEN: the launch tokens of")


def test_players_who_cannot_stake_leave_nothing_judged_an_error(wallet_proc: WalletProcess, tmp_path: Path) -> None:
    broke = _accounts(wallet_proc.base, tmp_path / "broke.csv", 2, 0, prefix=f"broke{time.time_ns()}")
    proc = croupier("smoke", "--wallet", f"{wallet_proc.base}/wallet", "--secret", SECRET, "--players", str(broke),
                    "--rounds", "2", *_reports(tmp_path))
    assert_error_everywhere(tmp_path, proc, "no round was played: nothing was checked")


# -- 3. --players: runs never collide; no admin API needed ------------------------------------


def test_the_same_test_accounts_twice_both_pass(wallet_proc: WalletProcess, tmp_path: Path) -> None:
    """QA's way with a staging wallet: the same accounts, run after run (ids carry the run id)."""
    accounts = _accounts(wallet_proc.base, tmp_path / "qa.csv", 3, 50_000, prefix=f"qa{time.time_ns()}")
    run_ids = []
    for n in range(2):
        out = tmp_path / f"run{n}.json"
        # No admin API is used with --players: a wrong admin token changes nothing.
        proc = croupier("smoke", "--wallet", f"{wallet_proc.base}/wallet", "--secret", SECRET, "--admin-token",
                        "unused", "--players", str(accounts), "--rounds", "4", "--json", str(out), "--quiet")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        report = orjson.loads(out.read_bytes())
        assert report["verdict"] == "pass" and report["players"] == 3 and not any(report["anomalies"].values())
        assert any("--players" in s for s in report["skipped"])
        run_ids.append(report["run_id"])
    assert run_ids[0] != run_ids[1]
    req = urllib.request.Request(f"{wallet_proc.base}/admin/transactions?format=jsonl",
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        rows = [json.loads(line) for line in resp.read().splitlines() if line]
    mine = [r for r in rows if r.get("tx_id") and str(r["player_id"]).startswith(accounts.stem[:2])
            and r["player_id"] in accounts.read_text()]
    assert mine and all(r["tx_id"].split("-", 1)[0] in run_ids for r in mine)


# -- 4. never hangs, never blames the wallet for its own state ---------------------------------


def test_unreadable_rollback_answers_end_in_bounded_time_with_the_finding(tmp_path: Path) -> None:
    started = time.monotonic()
    with serve_in_thread(make_broken_app("garbles_rollbacks")) as base:
        proc = croupier("chaos", *secrets_args(base), "--duration", "1.5", "--player-count", "4",
                        "--settle-timeout", "3", "--json", str(tmp_path / "r.json"), "--quiet", timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert elapsed < 60, elapsed
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert report["verdict"] == "fail" and report["findings_by_severity"]["contract"]["undecodable_answer"] > 0
    garbled = next(f for f in report["findings"] if f["kind"] == "undecodable_answer")
    assert garbled["severity"] == "contract" and "<html>" in garbled["evidence"][0]["response"]
    assert garbled["evidence"][0]["status"] == 200


# -- 5. late duplicates ------------------------------------------------------------------------


def _late(rounds: int = 40, players: int = 6) -> Scenario:
    sc = scenarios.load("late-duplicates")
    faults = dataclasses.replace(sc.faults, late_duplicate_min_delay_s=0.0, late_duplicate_min_calls=300)
    return dataclasses.replace(sc, duration_s=None, rounds=rounds, players=players, faults=faults)


async def _run_at(app: Any, sc: Scenario, seed: int = 5, run_id: str = "late") -> RunResult:
    async with serve_app(app) as base:
        return await run(RunOptions(sc, f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN,
                                    seed=seed, run_id=run_id))


@pytest.mark.parametrize("base", ["reference", "lenient"])
async def test_late_duplicates_catch_an_idempotency_cache(base: str) -> None:
    """A wallet that remembers only its last 200 tx_ids applies a late duplicate again: double_apply."""
    app = make_planted_app("forgets_old_tx_ids") if base == "reference" else \
        make_lenient_app(SECRET, ADMIN_TOKEN, frozenset({"forgets_old_tx_ids"}))
    result = await _run_at(app, _late())
    assert result.verdict == "fail" and result.ledger.counts[Anomaly.DOUBLE_APPLY] > 0, explain(result)
    assert result.stats.faults["late_duplicate"] > 0
    f = next(f for f in result.ledger.findings if f.kind is Anomaly.DOUBLE_APPLY)
    assert f.rule == "idempotency-1-no-change" and f.severity is Severity.MONEY


@pytest.mark.parametrize("base", ["reference", "lenient"])
async def test_late_duplicates_are_replays_for_a_correct_wallet(base: str) -> None:
    app = make_planted_app("reference") if base == "reference" else make_lenient_app(SECRET, ADMIN_TOKEN)
    result = await _run_at(app, _late(rounds=25, players=4))
    assert result.verdict == "pass" and result.ledger.anomaly_count == 0, explain(result)
    assert result.stats.faults["late_duplicate"] > 0
    assert result.ledger.coverage["idempotency-1-no-change"].calls >= result.stats.faults["late_duplicate"]


# -- 6. the lenient wallet: the other choice everywhere, and still zero findings ----------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_chaos_finds_nothing_against_the_lenient_wallet(seed: int) -> None:
    sc = shrink(scenarios.load("chaos"))
    warm_players(sc, seed)
    result = await _run_at(make_lenient_app(SECRET, ADMIN_TOKEN), sc, seed=seed, run_id=f"lenient{seed}")
    assert result.verdict == "pass" and result.ledger.anomaly_count == 0, explain(result)
    assert result.error is None and result.unsettled == 0
    assert result.stats.results["bet:ok"] > 0 and result.stats.results["win:ok"] > 0
    rows = {r["rule"]: r for r in model.coverage_rows(result.ledger.coverage_json())}
    exercised = {r for r in model.RUN_RULES if rows[r]["calls"]}
    assert {"idempotency-1-no-change", "idempotency-4-rollback-once", "idempotency-5-tombstone",
            "idempotency-7-serialized", "idempotency-7-concurrent-duplicates", "sessions-money-owed-is-paid",
            "operations-regular-win-needs-bet"} <= exercised, sorted(set(model.RUN_RULES) - exercised)
    assert all(rows[r]["result"] == "pass" for r in exercised)


@pytest.mark.slow
def test_chaos_through_the_cli_passes_the_lenient_wallet_with_exit_0(tmp_path: Path) -> None:
    with lenient_servers(["lenient", "forgets_old_tx_ids"]) as bases:
        ok = croupier("chaos", *secrets_args(bases["lenient"]), "--duration", "1.5", "--player-count", "6",
                      "--seed", "4", "--json", str(tmp_path / "ok.json"))
        bad = croupier("late-duplicates", *secrets_args(bases["forgets_old_tx_ids"]), "--rounds", "40",
                       "--player-count", "6", "--seed", "5", "--json", str(tmp_path / "bad.json"), "--quiet")
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-2000:]
    report = orjson.loads((tmp_path / "ok.json").read_bytes())
    assert report["verdict"] == "pass" and not report["findings_by_severity"]["money"]
    assert not report["findings_by_severity"]["contract"]
    assert "coverage" in ok.stdout and "PASS" in ok.stdout
    assert bad.returncode == 1, bad.stderr[-2000:]
    assert orjson.loads((tmp_path / "bad.json").read_bytes())["anomalies"]["double_apply"] > 0


@pytest.mark.slow
def test_a_short_load_run_passes_the_lenient_wallet(tmp_path: Path) -> None:
    from tests.test_load import _croupier

    with lenient_servers(["lenient"]) as bases:
        proc = _croupier(tmp_path, "chaos", "--wallet", f"{bases['lenient']}/wallet", "--secret", SECRET,
                         "--admin-token", ADMIN_TOKEN, "--report-dir", str(tmp_path / "report"), "--users", "6",
                         "--run-time", "4s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rep = orjson.loads((tmp_path / "report" / "summary.json").read_bytes())
    assert rep["verdict"] == "pass" and not rep["findings_by_severity"]["money"]
    assert not rep["findings_by_severity"]["contract"] and rep["calls"].get("bet", 0) > 0
