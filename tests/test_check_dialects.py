"""``croupier check`` through the real-world dialects: the reference wallet passes, planted bugs are caught.

The machine's expectations are canonical outcomes, written once; each dialect maps its wire back to them
(``BET_ALREADY_EXIST`` is a replay, a refund of an unknown bet an ``RS_OK`` no-op...), and a rule a wire cannot
express is skipped there (a currency it cannot carry, an hour-old signature where no signature binds a time).
The planted wallets serve every built-in dialect on its ``/wallet/<dialect>/`` prefix over the buggy store, so
a store bug must be caught through any of them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from simulator.check import CheckOptions, Target, check
from simulator.check.protocol import Violation
from simulator.check.report import render_text
from simulator.check.wire import wire_of, without_signature
from simulator.protocol import dialects
from simulator.protocol.calls import Ok, WalletCall
from simulator.protocol.money import INT64_MAX
from tests.planted_wallets import PLANTED, planted_servers
from tests.support import ADMIN_TOKEN, ROOT, SECRET, write_test_accounts

SEED = 20261125
REAL = ["json-rsa", "form-md5", "token-query", "actions-hmac"]
BUGS = {  # bug → the dialects it is caught through here (the store's bug is the same behind every prefix)
    "double_applied_replay": ["form-md5", "json-rsa", "token-query"],
    "no_tombstone": ["form-md5", "json-rsa"],
    "second_rollback_refunds": ["actions-hmac"],
}
MAX_CALLS = {"double_applied_replay": 6, "no_tombstone": 3, "second_rollback_refunds": 7}
"""Minimal sequences (protocol calls): as in tests/test_check.py, but a replay bug may first show as a longer
sequence here (a replayed zero bet changes no balance, and two wires carry no wallet_tx_id to compare)."""


def target(base: str, dialect: str) -> Target:
    return Target(f"{base}/wallet/{dialect}", SECRET, dialect=dialect, admin_url=base, admin_token=ADMIN_TOKEN)


def _calls(v: Violation) -> int:
    return sum(1 for e in v.evidence.get("entries", []) if e["kind"] == "call")


@pytest.fixture(scope="module")
def wallets() -> Iterator[dict[str, str]]:
    with planted_servers(["reference", *BUGS]) as bases:
        yield bases


def test_what_each_wire_carries() -> None:
    """Currencies, amount limits and signature modes come from the dialects themselves."""
    codes = ("EUR", "JPY", "KWD", "USDT", "BTC")
    other = SECRET + "-not-the-secret"  # the checker's own wrong secret: json-rsa derives its keys once
    w = {n: wire_of(dialects.get(n, SECRET), dialects.get(n, other), codes) for n in dialects.names()}
    assert w["canonical"].currencies == codes and w["canonical"].timed and w["canonical"].full("BTC")
    assert w["form-md5"].currencies == ("EUR", "JPY") and w["form-md5"].full("EUR")
    assert w["token-query"].currencies == ("EUR", "JPY", "KWD", "USDT")
    assert w["actions-hmac"].currencies == codes and w["actions-hmac"].full("BTC")
    assert w["json-rsa"].currencies == ("EUR", "JPY", "KWD")
    assert w["json-rsa"].limit == {"EUR": INT64_MAX // 1000, "JPY": INT64_MAX // 100_000, "KWD": INT64_MAX // 100}
    assert not any(w[n].timed for n in REAL) and all(w[n].unsigned for n in w)


def test_an_unsigned_request_leaves_out_header_query_or_form_signature() -> None:
    call = WalletCall.balance("p1", "s1")
    for name, gone in [("form-md5", "hash="), ("token-query", "authToken="), ("actions-hmac", "X-REQUEST-SIGN")]:
        d, other = dialects.get(name, SECRET), dialects.get(name, SECRET + "-not-the-secret")
        req = without_signature(d.encode_call(call, 1.0), other.encode_call(call, 1.0))
        assert req is not None
        text = req.path + req.body.decode() + " ".join(req.headers)
        assert gone not in text and "p1" in text, (name, req)


@pytest.mark.parametrize("dialect", REAL)
def test_reference_wallet_passes_in_every_dialect(dialect: str, wallets: dict[str, str]) -> None:
    budget = 8.0 if dialect == "json-rsa" else 4.0  # RSA both ways: a slower wire (the wallet derives its keys first)
    result = check(target(wallets["reference"], dialect),
                   CheckOptions(budget_s=budget, max_examples=10**6, seed=SEED, db_dir=None))
    assert result.verdict == "pass", render_text(result)
    assert result.examples >= 15 and result.stopped_by == "budget"


@pytest.mark.parametrize(("bug", "dialect"), [(b, d) for b, ds in BUGS.items() for d in ds])
def test_planted_bug_is_caught_through_a_dialect(bug: str, dialect: str, wallets: dict[str, str]) -> None:
    rule, bound = PLANTED[bug].rule, MAX_CALLS[bug]

    def enough(best: dict[str, Violation]) -> bool:
        return rule in best and _calls(best[rule]) <= bound

    result = check(target(wallets[bug], dialect),
                   CheckOptions(seed=SEED, db_dir=None, budget_s=30, shrink_s=30, enough=enough))
    found = {f.rule.id: f for f in result.failures}
    assert rule in found, render_text(result)
    assert found[rule].length <= bound, render_text(result)
    assert not result.errors, render_text(result)
    assert f"/wallet/{dialect}" in render_text(result)


def test_players_file_mode_in_a_dialect(wallets: dict[str, str], tmp_path: Path) -> None:
    """--players FILE: test accounts (launch tokens) instead of the admin API, balances read with balance calls."""
    base = wallets["reference"]

    accounts = tmp_path / "accounts.csv"
    rows = write_test_accounts(base, accounts, [(f"acct-{os.getpid()}-{n}", cur, 1_000_000)
                                                for n, cur in enumerate(["EUR", "JPY"])])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "simulator", "check", "--wallet", f"{base}/wallet/token-query",
                           "--dialect", "token-query", "--secret", SECRET, "--players", str(accounts),
                           "--budget", "3", "--seed", "3", "--no-db", "--json", str(tmp_path / "c.json")],
                          capture_output=True, text=True, check=False, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no counterexample in" in proc.stdout and "2 test accounts" in proc.stdout, proc.stdout

    async def balance(pid: str, token: str) -> int:
        d = dialects.get("token-query", SECRET)
        async with aiohttp.ClientSession() as session:
            from simulator.drive.client import WalletClient

            client = WalletClient(f"{base}/wallet/token-query", d, session, 10)
            auth = await client.exchange(WalletCall.authenticate(token, "g"))
            assert isinstance(auth.outcome, Ok)
            return auth.outcome.balance.minor

    assert all(asyncio.run(balance(p, t)) >= 0 for p, t, _ in rows)


@pytest.mark.parametrize("minor", [0, 1, 1000])
def test_an_account_in_a_currency_the_wire_cannot_carry_is_refused_alike(minor: int) -> None:
    """Regression (found by check in form-md5): a KWD account's authenticate was 200 at a balance of 0.000
    or 1.000 KWD and HTTP 500 "unknown, retry" at 0.001 KWD; it is CURRENCY_MISMATCH whatever the balance."""
    from simulator.protocol.calls import Rejected
    from simulator.protocol.codes import ErrorCode
    from simulator.protocol.money import Money

    d = dialects.get("form-md5", SECRET)
    call = WalletCall.authenticate("launch", "g1")
    resp = d.encode_response(call, Ok(Money.of(minor, "KWD"), player_id="p", session_token="s"))
    out = d.decode_response(call, resp)
    assert isinstance(out, Rejected) and out.code is ErrorCode.CURRENCY_MISMATCH, (resp.status, resp.body)
    assert isinstance(d.decode_response(call, d.encode_response(call, Ok(Money.of(minor, "EUR"), player_id="p",
                                                                         session_token="s"))), Ok)
