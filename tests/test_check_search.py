"""``croupier check``'s search: it never aborts, it uses its whole budget, and it looks where it is told.

* **Draws never depend on the wallet.**  Every precondition of the machine reads only the run's fixed
  context (checked structurally: each is called on an object that has nothing but that context), and
  checks against wallets whose answers differ between two runs of one example — a wallet that makes a
  fresh random choice wherever PROTOCOL.md allows two answers, test accounts whose balances sit at the
  64-bit limit and move from example to example — end without a Hypothesis error.  Whatever Hypothesis
  raises that is not a rule broken is an honest one-line error in the report, never a traceback.
* **The whole budget.**  A wallet with two bugs, one found at once and one needing more: both are
  reported, each once, shrunk within ``shrink_s``, and the search goes on until the budget is spent;
  the report gives search time, shrink time and why it stopped.
* **--rules / --skip-rules.**  Ids and prefixes are validated (exit 2 with the list of ids); only the rules
  selected are judged and sought, and the steps that serve only other rules are never drawn.
* **What a wallet has.**  Without unblock, without ``GET /admin/players/{id}``, or with test accounts
  only, the check runs, skips what it cannot do and says so.
* **Reports.**  Severity and kind per failure, grouped; notes never fail unless ``fail_on="note"``; the
  coverage table in text, JSON and JUnit; JUnit counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from simulator.check import CheckOptions, Target, check, read_accounts
from simulator.check.machine import RunContext, machine_for
from simulator.check.protocol import RULES, Rule
from simulator.check.report import junit_xml, render_text, result_json
from simulator.check.runner import CheckResult, Failure, UnknownRule, select_rules
from simulator.drive.client import AdminClient
from simulator.protocol.calls import Op, WalletCall
from simulator.protocol.codes import ErrorCode
from simulator.protocol.money import INT64_MAX
from simulator.wallet import rules
from simulator.wallet.http import WalletConfig
from simulator.wallet.records import SessionRow
from simulator.wallet.service import make_app
from tests.broken_wallets import serve_in_thread
from tests.lenient_wallet import make_lenient_app
from tests.planted_wallets import PatchedStore
from tests.support import ADMIN_TOKEN, ROOT, SECRET, valid_junit

SEED = 20261126


def target(base: str) -> Target:
    return Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)


# -- draws never depend on the wallet ----------------------------------------------------------------


def test_preconditions_read_only_the_runs_fixed_context() -> None:
    """A precondition that read the example's state (what was sent, what the wallet accepted, balances)
    would enable different rules when a wallet answers differently, and Hypothesis would abort."""
    conn = SimpleNamespace(admin=object(), target=SimpleNamespace(dialect="canonical", accounts=None),
                           has=lambda endpoint: endpoint != "unblock")
    ctx = RunContext(conn)  # type: ignore[arg-type]
    machine = machine_for(ctx)
    bare = SimpleNamespace(ctx=ctx)  # nothing but the context: any other attribute is an AttributeError
    from hypothesis.stateful import RULE_MARKER

    checked = 0
    for name in dir(machine):
        r = getattr(getattr(machine, name), RULE_MARKER, None)
        if r is None:
            continue
        for pred in r.preconditions:
            assert isinstance(pred(bare), bool), name
            checked += 1
    assert checked >= 15


class CoinFlipWallet(PatchedStore):
    """The reference wallet that, wherever PROTOCOL.md lets a wallet choose, flips a coin on every call.

    Here: the session of a win or rollback ("The wallet may ignore session_token there, or accept only
    tokens it issued to that player"): a win or rollback with a forged or another player's session is
    accepted half of the time, refused INVALID_TOKEN the other half.  Two runs of one example then see
    different balances, different accepted transactions, and so different material for later steps."""

    rng = random.Random()
    now = 0.0

    async def execute(self, call: WalletCall, now: float) -> Any:
        self.now = now
        return await super().execute(call, now)

    def patch(self, call: WalletCall, facts: rules.Facts, decision: rules.Decision) -> rules.Decision:
        player = facts.player
        if (call.op in (Op.WIN, Op.ROLLBACK) and isinstance(decision, rules.Rejected)
                and decision.code is ErrorCode.INVALID_TOKEN and player is not None and facts.existing is None
                and self.rng.random() < 0.5):
            own = SessionRow(call.session_token or "", player.player_id, call.game_id or "g1", float("inf"))
            return rules.decide(call, dataclasses.replace(facts, session=own), self.now)
        return decision


def test_a_wallet_that_chooses_at_random_never_makes_the_search_abort() -> None:
    app = make_app(CoinFlipWallet(), WalletConfig(SECRET, ADMIN_TOKEN))
    with serve_in_thread(app) as base:
        for seed in (SEED, SEED + 1):
            result = check(target(base), CheckOptions(budget_s=6, seed=seed, db_dir=None, shrink_s=3))
            text = render_text(result)
            assert not result.errors, text
            assert "Traceback" not in text and "Flaky" not in text
            assert result.stopped_by == "budget" and result.examples >= 20, text


async def _accounts(base: str, balances: list[int], currency: str = "EUR") -> list[tuple[str, str, str]]:
    rows = []
    async with aiohttp.ClientSession() as session:
        admin = AdminClient(base, ADMIN_TOKEN, session)
        for n, balance in enumerate(balances):
            pid = f"acct-{os.getpid()}-{random.randrange(10**9)}-{n}"
            await admin.create_player(pid, currency, balance)
            rows.append((pid, await admin.token(pid, 3600), currency))
    return rows


def _accounts_file(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "accounts.csv"
    path.write_text("player_id,token,currency\n" + "".join(f"{p},{t},{c}\n" for p, t, c in rows))
    return path


def test_test_accounts_at_the_64_bit_limit_never_make_the_search_abort(tmp_path: Path) -> None:
    """Test accounts keep their balances from one example to the next: wins at the limit are refused in one
    run of an example and accepted in the next; nothing the machine draws may depend on it."""
    app = make_lenient_app(SECRET, ADMIN_TOKEN)
    with serve_in_thread(app) as base:
        rng = random.Random()
        rows = asyncio.run(_accounts(base, [INT64_MAX - rng.randrange(3000) for _ in range(3)]))
        accounts = read_accounts(str(_accounts_file(tmp_path, rows)))
        result = check(Target(f"{base}/wallet", SECRET, accounts=accounts),
                       CheckOptions(budget_s=6, seed=SEED, db_dir=None, shrink_s=3))
    text = render_text(result)
    assert not result.errors and result.verdict == "pass", text
    assert "test accounts (--players)" in text  # what this mode cannot do is said


def test_whatever_hypothesis_raises_is_an_honest_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from hypothesis.errors import FlakyStrategyDefinition

    from simulator.check import runner

    def flaky(*args: Any, **kwargs: Any) -> None:
        raise FlakyStrategyDefinition("Inconsistent data generation! Data generation behaved differently")

    app = make_lenient_app(SECRET, ADMIN_TOKEN)
    with serve_in_thread(app) as base:
        monkeypatch.setattr(runner, "run_machine", flaky)
        result = check(target(base), CheckOptions(budget_s=2, seed=1, db_dir=None))
        assert result.verdict == "error" and result.exit_code == 2 and result.stopped_by == "error"
        assert len(result.errors) == 1 and "\n" not in result.errors[0]
        assert "FlakyStrategyDefinition" in result.errors[0] and "bug of croupier check" in result.errors[0]
        monkeypatch.setattr(runner, "run_machine", _raising_run_machine(RuntimeError("boom in the machine")))
        result = check(target(base), CheckOptions(budget_s=2, seed=1, db_dir=None))
    text = render_text(result)
    assert result.verdict == "error" and "Traceback" not in text
    assert "RuntimeError: boom in the machine (at test_check_search.py:" in result.errors[0]


def _raising_run_machine(exc: BaseException) -> Any:
    def run(*args: Any, **kwargs: Any) -> None:
        raise exc

    return run


# -- the whole budget ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_bugs() -> Iterator[str]:
    """The lenient wallet with two bugs: overdrafts (found in the first examples) and a second refund."""
    app = make_lenient_app(SECRET, ADMIN_TOKEN, frozenset({"overdraft_allowed", "second_rollback_new_tx_refunds"}))
    with serve_in_thread(app) as base:
        yield base


def test_the_search_goes_on_after_a_counterexample_until_the_budget_is_spent(two_bugs: str) -> None:
    result = check(target(two_bugs), CheckOptions(budget_s=12, shrink_s=2, seed=SEED, db_dir=None))
    found = [f.rule.id for f in result.failures]
    text = render_text(result)
    assert "idempotency-7-never-negative" in found and "idempotency-4-rollback-once" in found, text
    assert len(found) == len(set(found))  # each rule once
    assert result.stopped_by == "budget", text
    assert 11.5 <= result.search_s <= 16, text
    assert 0 < result.shrink_s <= 2.5 * len(found) + 3, text  # each run's shrinking is cut at shrink_s
    assert result.elapsed_s == pytest.approx(result.setup_s + result.search_s + result.shrink_s, abs=0.5)
    assert result.quiet > 0  # examples that broke a rule already reported ended quietly, the search went on
    assert "search 1" in text and "shrink " in text and "stopped: the search budget was spent" in text
    report = result_json(result)
    assert report["stopped_by"] == "budget" and report["search_s"] > 0 and report["shrink_s"] > 0


def test_enough_still_stops_the_search_early(two_bugs: str) -> None:
    result = check(target(two_bugs), CheckOptions(budget_s=30, seed=SEED, db_dir=None,
                                                  enough=lambda best: "idempotency-7-never-negative" in best))
    assert result.stopped_by == "enough" and result.elapsed_s < 25, render_text(result)
    assert "idempotency-7-never-negative" in {f.rule.id for f in result.failures}


def test_max_examples_counts_the_search_not_the_shrinking(two_bugs: str) -> None:
    result = check(target(two_bugs), CheckOptions(budget_s=60, max_examples=40, shrink_s=1, seed=SEED, db_dir=None))
    assert result.stopped_by == "max-examples", render_text(result)
    assert 40 <= result.search_examples <= 45 and result.examples >= result.search_examples


# -- choosing rules -----------------------------------------------------------------------------------


def test_select_rules_takes_ids_and_prefixes() -> None:
    assert select_rules() == frozenset(RULES)
    assert select_rules(["idempotency-7"]) == {"idempotency-7-serialized", "idempotency-7-concurrent-duplicates",
                                               "idempotency-7-never-negative"}
    assert select_rules(["sessions-"], ["sessions-token-of-player"]) == {
        "sessions-bet-needs-live-session", "sessions-money-owed-is-paid", "sessions-blocked-player"}
    assert "transport-signature" not in select_rules(None, ["transport"])
    with pytest.raises(UnknownRule, match="idempotency-1-no-change"):  # the message lists the ids
        select_rules(["idempotency-9"])
    with pytest.raises(UnknownRule):
        select_rules(None, ["no-such-rule"])


def test_only_the_rules_selected_are_sought_and_judged(two_bugs: str) -> None:
    result = check(target(two_bugs), CheckOptions(budget_s=5, shrink_s=2, seed=SEED, db_dir=None,
                                                  rules=["idempotency-4-rollback-once", "transport-signature"]))
    assert [f.rule.id for f in result.failures] == ["idempotency-4-rollback-once"], render_text(result)
    # the overdraft is there, but not selected: its examples ended quietly; steps serving other rules only
    # (malformed bodies, wrong currencies, changed replays) were never drawn
    for rule_id in ("money-currency", "transport-bad-request", "transport-unknown-fields", "idempotency-2-mismatch"):
        assert result.exercised.get(rule_id, 0) == 0, (rule_id, result.exercised)
    assert result.exercised["transport-signature"] > 0
    rows = {r.rule.id: r for r in result.coverage()}
    assert rows["money-currency"].result == "skipped" and "not selected" in rows["money-currency"].why
    assert rows["idempotency-7-never-negative"].result == "skipped"


def croupier(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, check=False,
                          timeout=120, env=env, cwd=ROOT)


def test_cli_rejects_an_unknown_rule_with_the_list() -> None:
    proc = croupier("check", "--rules", "idempotency-1-no-change,idempotency-42", "--budget", "1")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "idempotency-42" in proc.stderr and "transport-signature" in proc.stderr
    proc = croupier("check", "--skip-rules", "nope")
    assert proc.returncode == 2 and "nope" in proc.stderr
    listed = croupier("check", "--list-rules")
    assert listed.returncode == 0 and all(r in listed.stdout for r in RULES)


# -- what a wallet has ------------------------------------------------------------------------------


def _without(app: web.Application, *routes: tuple[str, str]) -> web.Application:
    """``app`` answering 404 to the admin routes given (method, path suffix), as a wallet without them would."""

    @web.middleware
    async def missing(request: web.Request, handler: Any) -> web.StreamResponse:
        for method, suffix in routes:
            if request.method == method and request.path.startswith("/admin/players/") and (
                    request.path.endswith(suffix) if suffix else request.path.count("/") == 3):
                return web.json_response({"error": "not found"}, status=404)
        return await handler(request)

    app.middlewares.insert(0, missing)
    return app


def test_a_wallet_with_only_the_protocols_admin_table_is_checked_and_told_what_was_skipped() -> None:
    """The lenient wallet has PROTOCOL.md's admin table only: no unblock (nor player list, nor GGR)."""
    with serve_in_thread(make_lenient_app(SECRET, ADMIN_TOKEN)) as base:
        result = check(target(base), CheckOptions(budget_s=4, seed=SEED, db_dir=None))
    text = render_text(result)
    assert result.verdict == "pass" and not result.errors, text
    assert any(s.startswith("unblock: POST /admin/players/{id}/unblock answered 404") for s in result.skipped)
    assert "stays blocked for the rest of its example" in text
    assert result.exercised["sessions-blocked-player"] > 0  # blocking still works


def test_no_block_no_player_read_no_deposit_still_checks() -> None:
    app = _without(make_lenient_app(SECRET, ADMIN_TOKEN), ("GET", ""), ("POST", "/block"), ("POST", "/deposit"))
    with serve_in_thread(app) as base:
        result = check(target(base), CheckOptions(budget_s=4, seed=SEED, db_dir=None))
    text = render_text(result)
    assert result.verdict == "pass" and not result.errors, text
    skipped = "\n".join(result.skipped)
    assert "player: GET /admin/players/{id} answered 404" in skipped and "signed balance calls" in skipped
    assert "block: POST /admin/players/{id}/block answered 404" in skipped
    assert "deposit: POST /admin/players/{id}/deposit answered 404" in skipped
    rows = {r.rule.id: r for r in result.coverage()}
    assert rows["sessions-blocked-player"].result in ("skipped", "pass")
    assert result.exercised["operations-effect"] > 0


def test_without_the_admin_players_endpoint_the_check_cannot_run_and_says_why() -> None:
    @web.middleware
    async def no_admin(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/admin/"):
            return web.json_response({"error": "not found"}, status=404)
        return await handler(request)

    app = make_lenient_app(SECRET, ADMIN_TOKEN)
    app.middlewares.insert(0, no_admin)
    with serve_in_thread(app) as base:
        result = check(target(base), CheckOptions(budget_s=2, seed=SEED, db_dir=None))
    assert result.verdict == "error" and "POST /admin/players answered HTTP 404" in result.errors[0]
    assert "--players FILE" in result.errors[0]


# -- reports ----------------------------------------------------------------------------------------------


def _failure(rule_id: str, kind: str) -> Failure:
    entries = [{"kind": "call", "n": 1, "op": "bet", "request": "{}", "sign": "ok", "expected": "200 ok",
                "status": 200, "response": "{}", "note": "", "group": None, "bad": True}]
    return Failure(RULES[rule_id], "what went wrong", 1, entries, [], kind=kind)


def _result(*failures: Failure, fail_on: str = "contract") -> CheckResult:
    r = CheckResult({"wallet": "http://w/wallet", "dialect": "canonical", "players": "admin API"}, examples=10,
                    failures=list(failures), stopped_by="budget", fail_on=fail_on)
    r.exercised = Counter({"idempotency-4-rollback-once": 5, "transport-signature": 3, "choice-session": 1})
    r.choices = Counter({"choice-session: win with a forged session_token accepted": 2})
    r.rule_skips = {"sessions-money-owed-is-paid": "needs an expired session"}
    return r


def test_reports_group_by_severity_and_notes_never_fail_unless_asked(tmp_path: Path) -> None:
    money = _failure("idempotency-4-rollback-once", "rollback_applied_twice")
    contract = _failure("transport-signature", "accepted_invalid_call")
    note = _failure("choice-codes", "wallet_choice")
    result = _result(money, contract, note)
    assert result.verdict == "fail" and result.exit_code == 1
    text = render_text(result)
    assert text.index("── money") < text.index("── contract") < text.index("── notes")
    assert "[money] idempotency-4-rollback-once" in text and "a bet was refunded twice" in text
    assert RULES["idempotency-4-rollback-once"].text in text  # the rule quoted, as PROTOCOL.md says it
    assert "2 broken rule(s) (1 money, 1 contract)" in text

    report = result_json(result)
    assert [(f["rule"], f["severity"], f["kind"]) for f in report["failures"]] == [
        ("idempotency-4-rollback-once", "money", "rollback_applied_twice"),
        ("transport-signature", "contract", "accepted_invalid_call")]
    assert [n["rule"] for n in report["notes"]] == ["choice-codes"]
    assert report["by_severity"] == {"money": ["idempotency-4-rollback-once"], "contract": ["transport-signature"],
                                     "note": ["choice-codes"]}
    cov = {c["rule"]: c for c in report["coverage"]}
    assert cov["idempotency-4-rollback-once"]["result"] == "broken"
    assert cov["idempotency-4-rollback-once"]["severity"] == "money"
    assert cov["idempotency-1-no-change"]["result"] == "not exercised"
    assert cov["sessions-money-owed-is-paid"]["result"] == "skipped"
    assert cov["choice-session"]["choices"] == 2
    assert set(cov) == set(RULES)

    suite = valid_junit(junit_xml(result)).find("testsuite")  # the schema, and headers counted from the cases
    assert suite is not None
    assert suite.get("tests") == str(len(RULES) + 1) and suite.get("failures") == "2"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["idempotency-4-rollback-once"].find("failure") is not None
    assert cases["choice-codes"].find("failure") is None
    props = {p.get("name"): p.get("value") for p in suite.find("properties") or []}
    assert props["note.choice-codes"].startswith("[note]") and "choice.choice-session" in props
    assert cases["idempotency-1-no-change"].find("skipped") is not None

    only_notes = _result(note)
    assert only_notes.verdict == "pass" and only_notes.exit_code == 0
    assert "not failures: --fail-on note" in render_text(only_notes)
    strict = _result(note, fail_on="note")
    assert strict.verdict == "fail" and strict.exit_code == 1
    assert ET.fromstring(junit_xml(strict)).find("testsuite").get("failures") == "1"  # type: ignore[union-attr]


def test_every_report_has_the_coverage_table(two_bugs: str, tmp_path: Path) -> None:
    js, junit = tmp_path / "c.json", tmp_path / "c.xml"
    proc = croupier("check", "--wallet", f"{two_bugs}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
                    "--budget", "3", "--shrink-time", "2", "--seed", "3", "--no-db", "--out", str(tmp_path / "out"),
                    "--json", str(js), "--junit", str(junit))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "coverage (" in proc.stdout and "idempotency-7-never-negative" in proc.stdout
    report = json.loads(js.read_text())
    assert {c["rule"] for c in report["coverage"]} == set(RULES)
    assert all(f["severity"] in ("money", "contract") and f["kind"] for f in report["failures"])
    suite = valid_junit(junit.read_bytes()).find("testsuite")
    assert suite is not None and int(suite.get("failures", "0")) == len(report["failures"])
    exercised = [p for p in suite.iter("property") if (p.get("name") or "").startswith("exercised.")]
    assert len(exercised) == len(RULES)


def test_rule_quotes_in_reports_come_from_the_rules() -> None:
    """A report quotes rule.text: the PROTOCOL.md sentences of simulator.protocol.findings, never a paraphrase."""
    f = _failure("sessions-token-of-player", "wrong_code")
    text = render_text(_result(f))
    rule: Rule = RULES["sessions-token-of-player"]
    assert f'"{rule.text}"' in text
