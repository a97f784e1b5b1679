"""Every subcommand with every kind of bad input it takes: one sentence naming the fix, exit 2, no traceback.

A table of cases, each run as a real ``croupier`` subprocess (what a user types): an unknown scenario or
dialect (with "did you mean"), a missing, unreadable or malformed file, a bad number or duration, a wallet
on a closed 127.0.0.1 port, a wrong secret or admin token against a real reference wallet started here,
a bad PostgreSQL DSN.  Exit codes as documented in ``simulator/commands/cli.py``: 2 bad usage or configuration.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import ADMIN_TOKEN, PG_DSN, ROOT, SECRET, WalletProcess, free_port, skip_without_pg

TIMEOUT_S = 60


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    """``{wallet}`` (the reference wallet), ``{closed}`` (a closed port), ``{tmp}`` are filled in."""
    fix: str
    """A regular expression the output must match: the sentence naming what to fix."""
    code: int = 2
    needs_wallet: bool = False
    needs_pg: bool = False


def C(id: str, *argv: str, fix: str, code: int = 2) -> Case:
    return Case(id, argv, fix, code, needs_wallet=any("{wallet}" in a for a in argv),
                needs_pg=any("{pg_missing_db}" in a for a in argv))


CLOSED = "http://127.0.0.1:{closed}/wallet"
REF = "http://127.0.0.1:{wallet}/wallet"
RIGHT = ("--secret", SECRET, "--admin-token", ADMIN_TOKEN)

CASES = [
    # -- run ------------------------------------------------------------------------------------
    C("run-unknown-scenario", "run", "smok", fix=r"no scenario named 'smok' \(did you mean 'smoke'\?\)"),
    C("run-missing-scenario-file", "run", "{tmp}/nothere.toml", fix=r"no scenario file"),
    C("run-malformed-scenario", "run", "{tmp}/bad.toml", fix=r"not valid TOML"),
    C("run-unknown-dialect", "run", "smoke", "--dialect", "formmd5", "--wallet", CLOSED,
      fix=r"unknown dialect 'formmd5' \(did you mean 'form-md5'\?\)"),
    C("run-missing-dialect-file", "run", "smoke", "--dialect", "{tmp}/nothere.toml", fix=r"cannot read dialect file"),
    C("run-malformed-dialect-file", "run", "smoke", "--dialect", "{tmp}/bad.toml",
      fix=r"not a valid dialect .*croupier dialect check"),
    C("run-bad-duration", "run", "smoke", "--duration", "abc", fix=r"--duration: invalid float"),
    C("run-negative-duration", "run", "smoke", "--duration", "-1", fix=r"--duration must be positive"),
    C("run-zero-rounds", "run", "smoke", "--rounds", "0", fix=r"--rounds must be at least 1"),
    C("run-zero-workers", "run", "smoke", "--workers", "0", fix=r"--workers must be at least 1"),
    C("run-zero-concurrency", "run", "smoke", "--concurrency", "0", fix=r"--concurrency must be at least 1"),
    C("run-bad-fail-on", "run", "smoke", "--fail-on", "bogus",
      fix=r"--fail-on: cannot read threshold 'bogus'.*or a severity: money, contract, note"),
    C("run-missing-players", "run", "smoke", "--players", "{tmp}/nothere.csv", "--wallet", CLOSED,
      fix=r"cannot read .*nothere.csv"),
    C("run-players-is-dir", "run", "smoke", "--players", "{tmp}/adir", "--wallet", CLOSED, fix=r"cannot read"),
    C("run-malformed-players", "run", "smoke", "--players", "{tmp}/bad.csv", "--wallet", CLOSED,
      fix=r"bad.csv"),
    C("run-unreachable-wallet", "run", "smoke", "--duration", "1", "--quiet", "--wallet", CLOSED,
      fix=r"wallet unreachable .*is the wallet running, and is --wallet right"),
    C("run-not-a-url", "run", "smoke", "--duration", "1", "--quiet", "--wallet", "notaurl",
      fix=r"--wallet must be an http\(s\) URL such as"),
    C("run-wrong-secret", "run", "smoke", "--duration", "1", "--quiet", "--wallet", REF, "--secret", "wrong",
      "--admin-token", ADMIN_TOKEN, fix=r"INVALID_SIGNATURE: check --secret"),
    C("run-wrong-admin-token", "run", "smoke", "--duration", "1", "--quiet", "--wallet", REF, "--secret", SECRET,
      "--admin-token", "wrong", fix=r"check --admin-token"),
    # -- check / replay ---------------------------------------------------------------------------
    C("check-unknown-dialect", "check", "--dialect", "formmd5", "--wallet", CLOSED,
      fix=r"did you mean 'form-md5'"),
    C("check-unknown-rule", "check", "--rules", "nosuchrule", "--wallet", CLOSED, fix=r"no rule 'nosuchrule'"),
    C("check-bad-budget", "check", "--budget", "abc", fix=r"--budget: invalid float"),
    C("check-bad-timeout", "check", "--timeout", "0", fix=r"--timeout: must be positive"),
    C("check-missing-players", "check", "--players", "{tmp}/nothere.csv", "--wallet", CLOSED,
      fix=r"cannot read .*nothere.csv"),
    C("check-unreachable-wallet", "check", "--budget", "1", "--wallet", CLOSED, fix=r"wallet unreachable"),
    C("check-wrong-secret", "check", "--budget", "5", "--wallet", REF, "--secret", "wrong",
      "--admin-token", ADMIN_TOKEN, fix=r"refused croupier's signature on every call .*check --secret"),
    C("check-wrong-admin-token", "check", "--budget", "1", "--wallet", REF, "--secret", SECRET,
      "--admin-token", "wrong", fix=r"answered HTTP 401 \{.*\}; check --admin-token"),
    C("replay-missing-file", "replay", "{tmp}/nothere.json", "--wallet", CLOSED, fix=r"cannot read"),
    C("replay-not-json", "replay", "{tmp}/bad.json", "--wallet", CLOSED, fix=r"is not JSON"),
    C("replay-not-a-replay", "replay", "{tmp}/other.json", "--wallet", CLOSED, fix=r"not a croupier replay file"),
    C("replay-unreachable-wallet", "replay", "{tmp}/empty-replay.json", "--wallet", CLOSED,
      fix=r"wallet unreachable"),
    C("replay-wrong-secret", "replay", "{tmp}/empty-replay.json", "--wallet", REF, "--secret", "wrong",
      "--admin-token", ADMIN_TOKEN, fix=r"refused croupier's signature on every call .*check --secret"),
    C("replay-unknown-dialect", "replay", "{tmp}/other.json", "--dialect", "formmd5", fix=r"did you mean 'form-md5'"),
    # -- certify ----------------------------------------------------------------------------------
    C("certify-unreachable", "certify", "--wallet", CLOSED, fix=r"wallet unreachable at 127\.0\.0\.1:\d+"),
    C("certify-unknown-dialect", "certify", "--dialect", "formmd5", "--wallet", CLOSED,
      fix=r"unknown dialect 'formmd5' \(did you mean 'form-md5'\?\)"),
    C("certify-bad-sla", "certify", "--sla", "p50=3ms", fix=r"an SLA such as p99=500ms"),
    C("certify-bad-budget", "certify", "--budget", "xyz", fix=r"a duration such as 10m, 90s or 1m30s"),
    C("certify-short-budget", "certify", "--budget", "5", "--wallet", REF, *RIGHT, fix=r"--budget must be at least 30 s"),
    C("certify-unknown-phase", "certify", "--phases", "check,nope", fix=r"phases are a comma list of docs, check"),
    C("certify-bad-error-budget", "certify", "--error-budget", "200%", fix=r"a percentage such as 1%"),
    # -- load -------------------------------------------------------------------------------------
    C("load-unknown-scenario", "load", "smok", "--wallet", CLOSED, fix=r"did you mean 'smoke'"),
    C("load-unknown-dialect", "load", "smoke", "--dialect", "formmd5", "--wallet", CLOSED,
      fix=r"unknown dialect 'formmd5' \(did you mean 'form-md5'\?\)"),
    C("load-bad-run-time", "load", "smoke", "--run-time", "xyz", fix=r"not a duration such as 30s"),
    C("load-zero-users", "load", "smoke", "--users", "0", fix=r"--users: must be at least 1"),
    C("load-bad-threshold", "load", "smoke", "--fail-on", "garbage", "--wallet", CLOSED,
      fix=r"cannot read threshold 'garbage'"),
    C("load-bad-shape", "load", "smoke", "--shape", "nope", fix=r"--shape: invalid choice"),
    C("load-unreachable-wallet", "load", "smoke", "--run-time", "2s", "--wallet", CLOSED,
      fix=r"wallet unreachable .*is --wallet right"),
    C("load-unreachable-provider", "load", "smoke", "--run-time", "2s", "--wallet", REF,
      "--provider", "http://127.0.0.1:{closed}", fix=r"provider unreachable .*is --provider right"),
    C("load-port-out-of-range", "load", "smoke", "--wallet", "http://127.0.0.1:99999/wallet",
      fix=r"--wallet must be an http\(s\) URL .*Port out of range"),
    C("run-bad-ipv6-url", "run", "smoke", "--wallet", "http://[::1", fix=r"--wallet must be an http\(s\) URL"),
    C("run-bad-admin-url", "run", "smoke", "--admin-url", "notaurl", fix=r"--admin-url must be an http\(s\) URL"),
    C("check-ftp-url", "check", "--wallet", "ftp://x/wallet", fix=r"--wallet must be an http\(s\) URL"),
    C("provider-bad-ipv6-url", "provider", "serve", "--wallet", "http://[::1", "--port", "0",
      fix=r"--wallet must be an http\(s\) URL"),
    C("load-not-a-url", "load", "smoke", "--run-time", "2s", "--wallet", "notaurl",
      fix=r"--wallet must be an http\(s\) URL"),
    # -- demo -------------------------------------------------------------------------------------
    C("demo-unknown-scenario", "demo", "--scenario", "chaoss", fix=r"did you mean 'chaos'"),
    C("demo-bad-duration", "demo", "--duration", "abc", fix=r"--duration: invalid float"),
    C("demo-negative-duration", "demo", "--duration", "-1", fix=r"--duration must be a positive number"),
    C("demo-db-is-dir", "demo", "--db", "{tmp}/adir", fix=r"cannot open the wallet's SQLite file .*check --db"),
    # -- wallet serve -----------------------------------------------------------------------------
    C("wallet-mysql-dsn", "wallet", "serve", "--port", "0", "--dsn", "mysql://u@localhost/db",
      fix=r"--dsn must be a PostgreSQL URL"),
    C("wallet-dsn-no-scheme", "wallet", "serve", "--port", "0", "--dsn", "nonsense", fix=r"--dsn must be a PostgreSQL"),
    C("wallet-postgres-down", "wallet", "serve", "--port", "0", "--dsn", "postgresql://u@127.0.0.1:{closed}/db",
      fix=r"cannot reach PostgreSQL at 127.0.0.1:\d+/db .*is it running, and is --dsn right"),
    C("wallet-workers-postgres-down", "wallet", "serve", "--port", "0", "--workers", "2",
      "--dsn", "postgresql://u@127.0.0.1:{closed}/db", fix=r"cannot reach PostgreSQL .*is --dsn right"),
    C("wallet-missing-database", "wallet", "serve", "--port", "0", "--dsn", "{pg_missing_db}",
      fix=r"has no database 'croupier_no_such_db': create it .*or fix --dsn"),
    C("wallet-bad-schema", "wallet", "serve", "--port", "0", "--dsn", "postgresql://u@127.0.0.1:{closed}/db",
      "--pg-schema", "Bad-Name", fix=r"schema must be .*--pg-schema"),
    C("wallet-db-is-dir", "wallet", "serve", "--port", "0", "--db", "{tmp}/adir", fix=r"cannot open database"),
    C("wallet-bad-port", "wallet", "serve", "--port", "99999", fix=r"--port: must be 0..65535"),
    C("wallet-port-taken", "wallet", "serve", "--memory", "--port", "{wallet}", fix=r"cannot listen on"),
    C("wallet-zero-ttl", "wallet", "serve", "--session-ttl", "0", fix=r"--session-ttl: must be at least 1"),
    C("wallet-workers-without-pg", "wallet", "serve", "--workers", "2", "--memory", fix=r"--workers needs PostgreSQL"),
    C("wallet-public-without-secret", "wallet", "serve", "--host", "0.0.0.0", "--memory", "--port", "0",
      fix=r"needs --secret and --admin-token"),
    # -- provider serve / sandbox -----------------------------------------------------------------
    C("provider-unknown-dialect", "provider", "serve", "--wallet", CLOSED, "--dialect", "formmd5", "--port", "0",
      fix=r"did you mean 'form-md5'"),
    C("provider-not-a-url", "provider", "serve", "--wallet", "notaurl", "--port", "0",
      fix=r"--wallet must be an http\(s\) URL such as"),
    C("provider-bad-port", "provider", "serve", "--wallet", CLOSED, "--port", "99999", fix=r"must be 0..65535"),
    C("provider-no-wallet", "provider", "serve", fix=r"the following arguments are required: --wallet"),
    C("sandbox-unknown-dialect", "sandbox", "--wallet", CLOSED, "--dialect", "formmd5", "--port", "0",
      fix=r"did you mean 'form-md5'"),
    C("sandbox-db-is-dir", "sandbox", "--db", "{tmp}/adir", "--port", "0", fix=r"check --db"),
    C("sandbox-public-host", "sandbox", "--host", "10.1.2.3", "--port", "0", fix=r"--host must be a loopback"),
    # -- dialect / scenarios ----------------------------------------------------------------------
    C("dialect-check-missing", "dialect", "check", "{tmp}/nothere.toml", fix=r"cannot read"),
    C("dialect-check-malformed", "dialect", "check", "{tmp}/bad.toml", fix=r"invalid dialect .*not valid TOML"),
    C("dialect-check-dir", "dialect", "check", "{tmp}/adir", fix=r"cannot read .*Is a directory"),
    C("dialect-sample-unknown", "dialect", "sample", "formmd5", fix=r"did you mean 'form-md5'"),
    C("dialect-sample-missing", "dialect", "sample", "{tmp}/nothere.toml", fix=r"cannot read dialect file"),
    C("scenarios-bad-flag", "scenarios", "--bogus", fix=r"unrecognized arguments: --bogus"),
    # -- proxy / replay-traffic ---------------------------------------------------------------------
    C("proxy-no-upstream", "proxy", fix=r"croupier proxy needs --upstream"),
    C("proxy-not-a-url", "proxy", "--upstream", "notaurl", fix=r"--upstream must be an http\(s\) URL such as"),
    C("proxy-unknown-dialect", "proxy", "--upstream", CLOSED, "--dialect", "formmd5",
      fix=r"did you mean 'form-md5'"),
    C("proxy-bad-listen", "proxy", "--upstream", CLOSED, "--listen", "9000", fix=r"--listen: must be HOST:PORT"),
    C("proxy-bad-listen-port", "proxy", "--upstream", CLOSED, "--listen", "127.0.0.1:99999",
      fix=r"--listen: must be 0..65535"),
    C("proxy-missing-faults", "proxy", "--upstream", CLOSED, "--faults", "{tmp}/nothere.toml",
      fix=r"cannot read --faults file"),
    C("proxy-malformed-faults", "proxy", "--upstream", CLOSED, "--faults", "{tmp}/bad.toml", fix=r"not valid TOML"),
    C("proxy-bad-fault-rate", "proxy", "--upstream", CLOSED, "--faults", "{tmp}/faults.toml",
      fix=r"\[faults\]\.duplicate must be a rate from 0 to 1"),
    C("proxy-report-unwritable", "proxy", "--upstream", CLOSED, "--report-html", "{tmp}/adir",
      fix=r"cannot write --report-html file .*adir"),
    C("proxy-public-control-without-token", "proxy", "--upstream", CLOSED, "--control", "0.0.0.0:0",
      fix=r"the control API beyond loopback needs --control-token"),
    C("proxy-har-without-record", "proxy", "--upstream", CLOSED, "--har", "{tmp}/t.har",
      fix=r"--har converts the recording on stop: give --record FILE too"),
    C("proxy-report-nothing-running", "proxy", "report", "--control", "127.0.0.1:{closed}",
      fix=r"no proxy answers at .*is it running, and is --control right"),
    C("replay-traffic-missing", "replay-traffic", "{tmp}/nothere.jsonl", "--wallet", CLOSED,
      fix=r"cannot read the recording"),
    C("replay-traffic-malformed", "replay-traffic", "{tmp}/bad.json", "--wallet", CLOSED,
      fix=r"bad.json, line 1: .*croupier proxy --record"),
    C("replay-traffic-no-wallet", "replay-traffic", "{tmp}/bad.json",
      fix=r"the following arguments are required: --wallet"),
    C("replay-traffic-unknown-dialect", "replay-traffic", "{tmp}/bad.json", "--wallet", CLOSED, "--dialect",
      "formmd5", fix=r"did you mean 'form-md5'"),
    C("load-worker-bad-port", "load-worker", "--master-port", "70000", fix=r"master's port must be a TCP port"),
    C("unknown-command", "nosuchcommand", fix=r"invalid choice: 'nosuchcommand'"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "bad.toml").write_text("not toml [[[\n")
    (tmp / "bad.json").write_text("garbage\n")
    (tmp / "other.json").write_text('{"rule": 1}')
    (tmp / "empty-replay.json").write_text('{"croupier_replay": 1, "steps": [], "players": "admin", "rule": "x"}')
    (tmp / "bad.csv").write_text("player_id,token,currency\np1,t1,XXX\n")
    (tmp / "faults.toml").write_text("[faults]\nduplicate = 2\n")
    (tmp / "adir").mkdir()
    return tmp


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A port bound but never listened on, held for the module: connecting is refused, and no server another test
    starts meanwhile can take it (a port merely closed again was once taken by a wallet, which answered)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc = WalletProcess(tmp_path_factory.mktemp("wallet") / "w.db", "--memory", port=free_port()).start()
    try:
        yield proc.port
    finally:
        proc.kill()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, files: Path, closed_port: int, request: pytest.FixtureRequest) -> None:
    port = request.getfixturevalue("wallet") if case.needs_wallet else 0
    if case.needs_pg:
        skip_without_pg()
    missing_db = urlunsplit(urlsplit(PG_DSN)._replace(path="/croupier_no_such_db"))
    argv = [a.format(tmp=files, closed=closed_port, wallet=port, pg_missing_db=missing_db) for a in case.argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"}
    for name in ("CROUPIER_SECRET", "CROUPIER_ADMIN_TOKEN", "CROUPIER_DSN", "CROUPIER_DEBUG"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "simulator", *argv], check=False, capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=env, cwd=files, stdin=subprocess.DEVNULL)
    out = done.stdout + done.stderr
    where = f"croupier {' '.join(argv)} → exit {done.returncode}\n{out[-3000:]}"
    assert "Traceback" not in out, where
    assert "unexpected error" not in out, where
    assert done.returncode == case.code, where
    assert re.search(case.fix, " ".join(out.split())), where


def test_table_covers_every_subcommand() -> None:
    from simulator.commands.cli import parser

    sub = next(a for a in parser()._actions if a.dest == "command")
    commands = set(sub.choices or ())  # type: ignore[arg-type]
    tried = {c.argv[0] for c in CASES}
    assert commands - tried == set()
