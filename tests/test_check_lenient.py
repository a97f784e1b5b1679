"""``croupier check`` against the lenient wallet: a correct wallet that chose otherwise passes; its bugs are caught.

The lenient wallet (:mod:`tests.lenient_wallet`) is written from PROTOCOL.md alone and makes the other
choice at every point of "Where a wallet may choose" (player first, sessions ignored on wins, rollbacks
and balances, rollbacks found by tx_id and player only, a regular win after a rollback accepted, a new
session on re-authenticate, PROTOCOL.md's admin table only: no unblock).  A judge of wallets must:

* give it no money or contract finding (several seeds, and once with ``--players`` test accounts
  provisioned through its admin API), exit 0 — the choices it made are listed as notes;
* report every bug planted on it (:data:`tests.lenient_wallet.LENIENT_PLANTED`) as that bug's own rule,
  within the default budget, exactly as on the reference wallet (``tests/test_check.py``).

The searches use fixed seeds and stop as soon as the bug's rule is seen (``CheckOptions.enough``); the
wallets are served from one child process (:func:`tests.lenient_wallet.lenient_servers`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.check import CheckOptions, Target, check
from simulator.check.protocol import Violation
from simulator.check.report import render_text
from simulator.protocol.findings import Severity
from tests.lenient_wallet import ADMIN_TOKEN, LENIENT_PLANTED, SECRET, lenient_servers
from tests.planted_wallets import CHECK_SKIPS
from tests.support import ROOT, write_test_accounts

SEEDS = (20261127, 7, 1234)
BUGS = [b for b in LENIENT_PLANTED if b not in CHECK_SKIPS]


def target(base: str) -> Target:
    return Target(f"{base}/wallet", SECRET, admin_url=base, admin_token=ADMIN_TOKEN)


@pytest.fixture(scope="module")
def wallets() -> Iterator[dict[str, str]]:
    with lenient_servers(["lenient", *BUGS]) as bases:
        yield bases


@pytest.mark.parametrize("seed", SEEDS)
def test_the_lenient_wallet_passes(seed: int, wallets: dict[str, str]) -> None:
    result = check(target(wallets["lenient"]), CheckOptions(budget_s=5, seed=seed, db_dir=None, shrink_s=5))
    text = render_text(result)
    failing = [f for f in result.failures if f.severity in (Severity.MONEY, Severity.CONTRACT)]
    assert not failing and not result.errors, text
    assert result.verdict == "pass" and result.exit_code == 0, text
    assert result.stopped_by == "budget" and result.examples >= 20, text
    assert result.choices, text  # its choices are seen, and listed as notes
    assert any("unblock" in s for s in result.skipped), text  # no unblock endpoint: said, not an error


def test_the_lenient_wallet_passes_with_test_accounts(wallets: dict[str, str], tmp_path: Path) -> None:
    base = wallets["lenient"]

    accounts = tmp_path / "accounts.csv"
    write_test_accounts(base, accounts, [(f"lenient-acct-{os.getpid()}-{n}", cur, 5_000_000)
                                         for n, cur in enumerate(["EUR", "JPY", "BTC"])])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "simulator", "check", "--wallet", f"{base}/wallet",
                           "--secret", SECRET, "--players", str(accounts), "--budget", "5", "--seed", "3",
                           "--no-db", "--json", str(tmp_path / "c.json")],
                          capture_output=True, text=True, check=False, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no counterexample in" in proc.stdout and "3 test accounts" in proc.stdout, proc.stdout
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["verdict"] == "pass" and report["failures"] == [] and not report["errors"]
    assert any("--players" in s for s in report["skipped"])
    cov = {c["rule"]: c for c in report["coverage"]}
    assert cov["sessions-money-owed-is-paid"]["result"] == "skipped"  # no expired sessions without the admin API


@pytest.mark.parametrize("bug", BUGS)
def test_a_bug_planted_on_the_lenient_wallet_is_reported_as_its_rule(bug: str, wallets: dict[str, str]) -> None:
    rule = LENIENT_PLANTED[bug].rule

    def enough(best: dict[str, Violation]) -> bool:
        return rule in best

    defaults = CheckOptions()
    result = check(target(wallets[bug]), CheckOptions(seed=SEEDS[0], db_dir=None, enough=enough))
    found = {f.rule.id: f for f in result.failures}
    assert rule in found, render_text(result)
    f = found[rule]
    assert defaults.budget_s is not None and f.found_after_s is not None and f.found_after_s < defaults.budget_s
    assert f.severity in (Severity.MONEY, Severity.CONTRACT)
    assert not result.errors, render_text(result)
