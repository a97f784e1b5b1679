"""The small things a newcomer meets first (issue 15's "Deliver 3" and "small things").

* ``wallet serve``'s access log: off on a terminal unless ``--access-log`` (then one readable line
  per request), JSON lines in a pipe or to ``--access-log-file`` — a wallet under a real pty
  and under a pipe;
* ``croupier scenarios``: whole descriptions, duration and players, in text and ``--json``;
* ``croupier check`` leaves no ``.hypothesis/`` in the working directory;
* the games catalog: a plain ``croupier-stars`` beside the Mega one, unknown ids refused,
  ``/games`` RTPs readable;
* one sentence for a wrong ``--admin-token``; replay on a fixed wallet says what was recorded and
  what happens now; the curl script names no old ``wallet_tx_id``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.wallet import accesslog

from .support import ROOT, free_port, wait_serving

SERVE = [sys.executable, "-m", "simulator", "wallet", "serve", "--memory", "--secret", "s", "--admin-token", "t"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}


@contextlib.contextmanager
def wallet_on_a_terminal(*flags: str) -> Iterator[tuple[str, list[bytes]]]:
    """The wallet with stdout and stderr on a pseudo-terminal (what a shell gives ``croupier wallet serve &``);
    yields its base URL and the bytes it wrote, complete once the block ends (SIGTERM, then EOF)."""
    port = free_port()
    master, slave = pty.openpty()
    proc = subprocess.Popen([*SERVE, "--port", str(port), *flags], stdout=slave, stderr=slave, env=_env())
    os.close(slave)
    out: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError as exc:  # EIO once the child closed its end
                if exc.errno == errno.EIO:
                    return
                raise
            if not chunk:
                return
            out.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_serving(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}", out
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def _get(base: str, path: str, n: int = 1) -> None:
    for _ in range(n):
        try:
            with urllib.request.urlopen(base + path, timeout=5):
                pass
        except urllib.error.HTTPError:
            pass


def test_on_a_terminal_the_access_log_is_off_by_default() -> None:
    with wallet_on_a_terminal() as (base, out):
        _get(base, "/healthz", 20)
    text = b"".join(out).decode()
    assert "croupier wallet on" in text and "--access-log" in text, text  # says how to turn it on
    assert "/healthz" not in text and '{"' not in text, text


def test_on_a_terminal_access_log_is_one_readable_line_per_request() -> None:
    with wallet_on_a_terminal("--access-log") as (base, out):
        _get(base, "/healthz", 3)
        _get(base, "/no/such/path")
    lines = b"".join(out).decode().splitlines()
    assert not [ln for ln in lines if ln.lstrip().startswith("{")], lines
    health = [ln for ln in lines if re.fullmatch(r"\d\d:\d\d:\d\d GET /healthz 200 \d+\.\d ms", ln.strip())]
    assert len(health) >= 3, lines  # the readiness poll, then three
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d GET /no/such/path 404 \d+\.\d ms", ln.strip()) for ln in lines), lines


def test_access_log_file_takes_json_lines_and_the_terminal_stays_quiet(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    with wallet_on_a_terminal("--access-log-file", str(log)) as (base, out):
        _get(base, "/healthz", 2)
    assert "/healthz" not in b"".join(out).decode()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) >= 2 and all(r["path"] == "/healthz" and r["status"] == 200 for r in records), records


def test_in_a_pipe_the_access_log_is_json_lines_and_no_access_log_silences_it() -> None:
    for flags, logged in (((), True), (("--no-access-log",), False)):
        port = free_port()
        proc = subprocess.Popen([*SERVE, "--port", str(port), *flags], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=_env())
        try:
            wait_serving(f"http://127.0.0.1:{port}", proc)
            _get(f"http://127.0.0.1:{port}", "/healthz", 2)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        records = [json.loads(ln) for ln in err.decode().splitlines() if ln.startswith("{")]
        assert bool(records) == logged, err
        assert all(r["method"] == "GET" and r["path"] == "/healthz" for r in records)


def test_the_access_log_form_follows_the_flags_and_the_stream() -> None:
    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    tty, pipe = Stream(True), Stream(False)
    assert accesslog.choose(None, None, tty) is None  # type: ignore[arg-type]
    assert accesslog.choose(None, None, pipe) == "json"  # type: ignore[arg-type]
    assert accesslog.choose(True, None, tty) == "text"  # type: ignore[arg-type]
    assert accesslog.choose(True, None, pipe) == "json"  # type: ignore[arg-type]
    assert accesslog.choose(False, None, pipe) is None  # type: ignore[arg-type]
    assert accesslog.choose(None, "f.jsonl", tty) == "json"  # type: ignore[arg-type]
    line = accesslog.text_line({"ts": 0, "method": "POST", "path": "/wallet/bet", "status": 409, "ms": 1.234,
                                "op": "bet", "tx_id": "b1", "code": "TX_ROLLED_BACK", "replay": True})
    assert line.endswith("POST /wallet/bet 409 1.2 ms  bet tx b1 TX_ROLLED_BACK replay"), line


def test_an_access_log_file_that_cannot_be_written_is_one_sentence(tmp_path: Path) -> None:
    out = subprocess.run([*SERVE, "--port", str(free_port()), "--access-log-file", str(tmp_path / "no" / "x.log")],
                         capture_output=True, text=True, env=_env(), timeout=30, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "check --access-log-file" in out.stderr, out.stderr


@pytest.mark.parametrize("command", [["provider", "serve", "--wallet", "http://127.0.0.1:9/wallet"], ["sandbox"]])
def test_provider_and_sandbox_take_the_same_access_log_flags(command: list[str]) -> None:
    from simulator.commands import cli

    args = cli.parser().parse_args([*command, "--access-log", "--access-log-file", "a.jsonl"])
    assert args.access_log is True and args.access_log_file == "a.jsonl"
    assert cli.parser().parse_args([*command, "--no-access-log"]).access_log is False
    assert cli.parser().parse_args(command).access_log is None


# -- croupier scenarios -----------------------------------------------------------------------------

def test_scenarios_lists_whole_descriptions_with_duration_and_players(capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.commands import cli
    from simulator.play import scenario

    assert cli.main(["scenarios"]) == 0
    text = capsys.readouterr().out
    blocks = {b.splitlines()[0].split()[0]: b for b in text.strip().split("\n\n") if b and not b.startswith(" ")}
    assert set(blocks) == set(scenario.builtin())
    for name, path in scenario.builtin().items():
        block = text.split(f"\n{name}  (", 1)[-1] if not text.startswith(f"{name}  (") else text[len(name) + 3:]
        body = block.split("\n\n", 1)[0]
        head, *lines = body.splitlines()
        s = scenario.load(str(path))
        assert f"{s.duration_s:g} s" in head and (f"{s.players} players" in head or s.players == 0), head
        assert all(len(ln) <= 100 for ln in lines), lines
        # the whole description, word for word: wrapped, never cut
        assert " ".join(" ".join(lines).split()) == " ".join(scenario.description(path).split())
    assert "chaos  (20 s · 40 players" in text
    assert "replay. The demo plays this one." in " ".join(text.split()).replace("replay.  The", "replay. The")


def test_scenarios_json_has_description_duration_and_players(capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.commands import cli

    assert cli.main(["scenarios", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["chaos"]["duration_s"] == 20 and data["chaos"]["players"] == 40
    assert data["chaos"]["description"].endswith("The demo plays this one.")
    assert data["live-settlement-burst"]["live_tables"] == 4 and data["live-settlement-burst"]["players"] == 0
    assert all({"description", "duration_s", "rounds", "players", "model"} <= set(v) for v in data.values())


# -- croupier check: nothing left in the working directory; the shrink time said up front -----------

@contextlib.contextmanager
def reference_wallet(*flags: str) -> Iterator[str]:
    """``croupier wallet serve --memory`` (secret ``s``, admin token ``t``) in a child: yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([*SERVE, "--port", str(port), "--no-access-log", *flags], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env())
    try:
        wait_serving(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


def on_a_terminal(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal; its exit code and everything it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=slave, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    out = []
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out.append(chunk)
        return proc.wait(timeout), b"".join(out).decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_check_leaves_no_hypothesis_folder_and_says_shrinking_comes_on_top(tmp_path: Path) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {**_env(), "XDG_CACHE_HOME": str(cache)}
    with reference_wallet() as base:
        code, text = on_a_terminal([sys.executable, "-m", "simulator", "check", "--wallet", f"{base}/wallet",
                                    "--secret", "s", "--admin-token", "t", "--budget", "1", "--seed", "3"],
                                   work, env)
    assert code == 0, text
    assert "1 s of searching (+ up to 30 s of shrinking per broken rule found)" in " ".join(text.split()), text
    assert list(work.iterdir()) == [], list(work.rglob("*"))  # no .hypothesis/, no .croupier/ for a pass
    assert (cache / "croupier" / "hypothesis").is_dir()  # Hypothesis's own caches went to the user's cache


def test_check_help_says_shrinking_adds_to_the_budget() -> None:
    from simulator.commands import checkcmd

    from .test_cli_help import PARSERS

    check = dict(PARSERS)[("check",)]
    text = " ".join(check.format_help().split())
    assert "Shrinking is on top: each broken rule found adds up to --shrink-time seconds" in text
    assert str(checkcmd.user_cache_dir()) in text.replace("- ", "-")  # --db-dir's default: the per-user cache


# -- the curl script: no old wallet_tx_id, no secret nobody chose ----------------------------------

def _failure_with_a_replay() -> object:
    from simulator.check.runner import Failure
    from simulator.protocol.findings import RULES

    bet = {"op": "bet", "tx": "t1", "player": "P1", "session": "S1", "round": "r1", "amount": 100, "currency": "EUR"}
    steps = [{"kind": "player", "alias": "P1", "currency": "EUR", "balance": 1000, "suffix": ""},
             {"kind": "login", "player": "P1", "session": "S1", "ttl": 3600},
             {"kind": "call", "call": bet}, {"kind": "call", "call": bet}]
    entries = [{"kind": "call", "expected": "200 ok, session"},
               {"kind": "call", "expected": "200 ok, balance 900, a new wallet_tx_id"},
               {"kind": "call", "expected": "200 ok, balance 900, the original wallet_tx_id 'w-4f1c9e' (a replay)"}]
    return Failure(RULES["idempotency-1-original-id"], "a replay answered another wallet_tx_id", 3,
                   entries, steps)  # type: ignore[arg-type]


def test_the_curl_script_names_no_old_wallet_tx_id_and_says_when_the_secret_is_the_dev_one() -> None:
    from simulator.check.report import curl_script
    from simulator.protocol.signing import DEV_SECRET

    target = {"wallet": "http://127.0.0.1:1/wallet", "dialect": "canonical", "players": "admin API"}
    text = curl_script(_failure_with_a_replay(), target, "s3cret")  # type: ignore[arg-type]
    assert "w-4f1c9e" not in text
    assert "expected: 200 ok, balance 900, the wallet_tx_id its original call got above (a replay)" in text
    assert "development secret" not in text
    dev = curl_script(_failure_with_a_replay(), target, DEV_SECRET)  # type: ignore[arg-type]
    assert "the development secret, as no --secret was given" in dev


def test_the_request_helper_never_signs_with_a_secret_nobody_gave() -> None:
    env = {k: v for k, v in _env().items() if k != "CROUPIER_SECRET"}
    call = json.dumps({"op": "balance", "player_id": "p1", "session_token": "s1"})
    out = subprocess.run([sys.executable, "-m", "simulator.check.request", "encode", call], capture_output=True,
                         text=True, env=env, timeout=30, check=False)
    assert out.returncode == 2 and "CROUPIER_SECRET is not set" in out.stderr, out
    ok = subprocess.run([sys.executable, "-m", "simulator.check.request", "encode", call], capture_output=True,
                        text=True, env={**env, "CROUPIER_SECRET": "x"}, timeout=30, check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("METHOD="), ok


# -- croupier replay on a fixed wallet -------------------------------------------------------------

def test_replay_on_a_fixed_wallet_says_recorded_then_now(tmp_path: Path) -> None:
    from simulator.check.report import replay_document

    target = {"wallet": "http://127.0.0.1:1/wallet", "dialect": "canonical", "players": "admin API"}
    doc = replay_document(_failure_with_a_replay(), target)  # type: ignore[arg-type]
    replay_file = tmp_path / "idempotency-1-original-id.json"
    replay_file.write_text(json.dumps(doc))
    with reference_wallet() as base:
        out = subprocess.run([sys.executable, "-m", "simulator", "replay", str(replay_file), "--wallet",
                              f"{base}/wallet", "--secret", "s", "--admin-token", "t"],
                             capture_output=True, text=True, env=_env(), timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert lines[0].startswith(f"recorded failure ({replay_file}): idempotency-1-original-id — a replay answered"), lines
    assert lines[-1] == "now: no longer reproduces: fixed (the sequence passes now)", lines
    assert not any(ln.startswith("replaying ") for ln in lines)


# -- the games catalog: a plain croupier-stars, honest ids, readable RTPs ---------------------------

def test_the_lobby_offers_the_plain_slot_and_the_mega_one_each_by_its_own_id() -> None:
    import random
    from fractions import Fraction

    from simulator.play.games import catalog
    from simulator.provider import lobby

    plain, mega = lobby.resolve("croupier-stars"), lobby.resolve("croupier-stars-mega")
    assert plain is not None and mega is not None and plain != mega
    assert plain.declared_rtp == catalog.get("croupier-stars").declared_rtp  # the catalog's own math
    assert mega.declared_rtp > plain.declared_rtp  # the jackpot's share on top
    rng = random.Random(5)
    plain_rounds = [lobby.plan(plain, rng, 100, "EUR") for _ in range(50)]
    mega_rounds = [lobby.plan(mega, rng, 100, "EUR") for _ in range(50)]
    assert not any("jackpot" in r.detail for r in plain_rounds)
    assert all("jackpot" in r.detail for r in mega_rounds)
    assert lobby.resolve("croupier-star") is None and lobby.resolve("Croupier-Stars") is None
    assert lobby.rtp_basis_points(Fraction(36, 37)) == 9730 and lobby.short_fraction(Fraction(36, 37)) == "36/37"
    assert lobby.rtp_basis_points(Fraction(19999, 20000)) == 10000  # half up
    for g in lobby.games():
        data = g.to_json()
        assert data["rtp_fraction"] is None or len(data["rtp_fraction"]) <= 25, data
        assert data["rtp"] == f"{data['rtp_bp'] // 10000}.{data['rtp_bp'] % 10000:04d}"


# -- check --admin-token wrong: one sentence, the status, the answer as JSON -----------------------

def test_a_wrong_admin_token_is_one_sentence_with_the_status_and_the_json_answer(tmp_path: Path) -> None:
    with reference_wallet() as base:
        out = subprocess.run([sys.executable, "-m", "simulator", "check", "--wallet", f"{base}/wallet", "--secret",
                              "s", "--admin-token", "wrong", "--budget", "2"], capture_output=True, text=True,
                             env=_env(), timeout=60, check=False, cwd=tmp_path)
    assert out.returncode == 2, out
    text = out.stdout + out.stderr
    assert "Traceback" not in text and "{'" not in text, text  # no Python repr of the answer
    line = next(ln for ln in text.splitlines() if "refused the admin token" in ln)
    assert "POST /admin/players answered HTTP 401 " in line and line.endswith("check --admin-token (or "
                                                                             "CROUPIER_ADMIN_TOKEN)"), line
    answer = line.split("HTTP 401 ", 1)[1].split("; check --admin-token")[0]
    assert json.loads(answer)["code"] == "UNAUTHORIZED"


def test_an_admin_error_reads_as_the_answer_the_wallet_sent() -> None:
    from simulator.drive.client import AdminError

    exc = AdminError(401, {"status": "error", "code": "UNAUTHORIZED", "message": "needs a token"})
    assert str(exc) == 'admin API answered HTTP 401 {"status":"error","code":"UNAUTHORIZED","message":"needs a token"}'
    assert AdminError(502, "<html>\n  bad gateway\n</html>").answer_text() == "<html> bad gateway </html>"
    assert AdminError(500, "").answer_text() == "(an empty answer)"
    assert len(AdminError(500, "x" * 500).answer_text()) == 200


def test_launching_an_unknown_game_is_refused_with_the_nearest_id() -> None:
    from simulator.provider import service
    from simulator.provider.errors import ProviderError

    with pytest.raises(ProviderError) as caught:
        service._game("croupier-star")
    assert caught.value.status == 404 and caught.value.code == "GAME_NOT_FOUND"
    assert "unknown game 'croupier-star' (did you mean 'croupier-stars'?)" in caught.value.message
    assert "croupier-stars-mega" in caught.value.message  # the list, so the user can pick
    assert service._game("croupier-stars").game_id == "croupier-stars"
