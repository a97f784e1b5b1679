"""A pytest plugin that points the ``croupier check`` machine at your wallet from your own test suite.

Enable it (``-p simulator.check.pytest_plugin`` on the command line, or
``pytest_plugins = ["simulator.check.pytest_plugin"]`` in a conftest.py) and write::

    def test_wallet_keeps_the_money_right(croupier_check):
        croupier_check()                         # fails with every minimal sequence found

    def test_quick_smoke(croupier_check):
        result = croupier_check(max_examples=50, budget_s=10)
        assert result.examples >= 50

then run ``pytest --croupier-wallet http://127.0.0.1:8080/wallet --croupier-secret S
--croupier-admin-token T`` (or the CROUPIER_WALLET, CROUPIER_SECRET, CROUPIER_ADMIN_TOKEN
environment variables).  Without a wallet the tests that use the fixtures are skipped.
Replay files and curl scripts of failures go to ``--croupier-out`` (default ``.croupier/check``).
An ``https://`` wallet is verified as ``croupier check`` verifies it: ``--croupier-ca-bundle``,
``--croupier-client-cert``/``--croupier-client-key``, ``--croupier-insecure``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from ..drive.tls import ClientTLS, TLSError
from ..protocol.signing import DEV_ADMIN_TOKEN, DEV_SECRET
from ..run.accounts import RunError, read_accounts
from .report import render_text, write_failures
from .runner import DEFAULT_DB_DIR, CheckOptions, CheckResult, check, split_rules
from .target import Target, admin_url_for


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("croupier", "croupier check: the wallet protocol state machine")
    g.addoption("--croupier-wallet", help="the wallet's protocol base URL (env CROUPIER_WALLET)")
    g.addoption("--croupier-secret", help="shared HMAC secret (env CROUPIER_SECRET)")
    g.addoption("--croupier-admin-url", help="reference-wallet admin API (default: the wallet's host)")
    g.addoption("--croupier-admin-token", help="admin bearer token (env CROUPIER_ADMIN_TOKEN)")
    g.addoption("--croupier-players", help="CSV of test accounts player_id,token,currency instead of the admin API")
    g.addoption("--croupier-dialect", default="canonical")
    g.addoption("--croupier-budget", type=float, default=60.0, help="seconds to search (default: 60)")
    g.addoption("--croupier-max-examples", type=int, default=None, help="sequences to search at most (default: "
                                                                        "no limit, the budget decides)")
    g.addoption("--croupier-shrink-time", type=float, default=30.0, help="seconds to shrink each counterexample")
    g.addoption("--croupier-rules", help="comma list of rule ids or prefixes to judge and seek (default: all)")
    g.addoption("--croupier-skip-rules", help="comma list of rule ids or prefixes not to judge nor seek")
    g.addoption("--croupier-fail-on", choices=["money", "contract", "note"], default="contract",
                help="the mildest severity that fails the test (default: contract)")
    g.addoption("--croupier-seed", type=int, default=None)
    g.addoption("--croupier-db-dir", default=DEFAULT_DB_DIR)
    g.addoption("--croupier-out", default=".croupier/check", help="where replay files and curl scripts go")
    g.addoption("--croupier-ca-bundle", help="PEM CA certificates an https:// wallet's certificate is verified "
                                             "against (default: the system trust store)")
    g.addoption("--croupier-client-cert", help="PEM client certificate for a wallet that asks for one (mutual TLS)")
    g.addoption("--croupier-client-key", help="PEM private key of --croupier-client-cert (default: in its file)")
    g.addoption("--croupier-insecure", action="store_true", help="do not verify the wallet's TLS certificate "
                                                                 "(sandboxes only)")


def _opt(config: pytest.Config, name: str, env: str | None = None) -> Any:
    value = config.getoption(name)
    return value if value is not None else (os.environ.get(env) if env else None)


@pytest.fixture(scope="session")
def croupier_target(pytestconfig: pytest.Config) -> Target:
    """The wallet given by ``--croupier-wallet`` (the tests that use it are skipped without one)."""
    wallet = _opt(pytestconfig, "croupier_wallet", "CROUPIER_WALLET")
    if not wallet:
        pytest.skip("no wallet to check: pass --croupier-wallet URL (or set CROUPIER_WALLET)")
    players = _opt(pytestconfig, "croupier_players")
    tls = ClientTLS(_opt(pytestconfig, "croupier_ca_bundle"), _opt(pytestconfig, "croupier_client_cert"),
                    _opt(pytestconfig, "croupier_client_key"), bool(pytestconfig.getoption("croupier_insecure")))
    try:
        accounts = read_accounts(players) if players else None
        tls.context()  # a bad certificate file is a usage error, said once
    except (RunError, TLSError) as exc:
        raise pytest.UsageError(str(exc)) from None
    return Target(
        wallet, _opt(pytestconfig, "croupier_secret", "CROUPIER_SECRET") or DEV_SECRET,
        pytestconfig.getoption("croupier_dialect"),
        None if accounts else (_opt(pytestconfig, "croupier_admin_url") or admin_url_for(wallet)),
        None if accounts else (_opt(pytestconfig, "croupier_admin_token", "CROUPIER_ADMIN_TOKEN")
                               or DEV_ADMIN_TOKEN),
        accounts, tls=tls,
    )


@pytest.fixture
def croupier_options(pytestconfig: pytest.Config) -> CheckOptions:
    """The options from the command line; change them in a test or override the fixture."""
    return CheckOptions(
        max_examples=pytestconfig.getoption("croupier_max_examples"),
        budget_s=pytestconfig.getoption("croupier_budget") or None,
        seed=pytestconfig.getoption("croupier_seed"),
        db_dir=pytestconfig.getoption("croupier_db_dir") or None,
        shrink_s=pytestconfig.getoption("croupier_shrink_time"),
        rules=split_rules(pytestconfig.getoption("croupier_rules")),
        skip_rules=split_rules(pytestconfig.getoption("croupier_skip_rules")) or (),
        fail_on=pytestconfig.getoption("croupier_fail_on"),
    )


@pytest.fixture
def croupier_check(croupier_target: Target, croupier_options: CheckOptions,
                   pytestconfig: pytest.Config) -> Callable[..., CheckResult]:
    """Run the machine against the wallet; fails the test with every minimal sequence if a rule broke.

    Keyword arguments override fields of :class:`~simulator.check.runner.CheckOptions`
    (``max_examples``, ``budget_s``, ``seed``, ``steps``...); ``expect_pass=False`` returns the
    result instead of failing, for tests that look at it themselves.
    """

    def run(expect_pass: bool = True, **overrides: Any) -> CheckResult:
        import dataclasses

        result = check(croupier_target, dataclasses.replace(croupier_options, **overrides))
        if expect_pass and result.verdict != "pass":
            paths = (write_failures(result, pytestconfig.getoption("croupier_out"), croupier_target.secret,
                                     croupier_target.admin_url, croupier_target.admin_token, croupier_target.tls)
                     if result.failures else {})
            pytest.fail(render_text(result, paths), pytrace=False)
        return result

    return run
