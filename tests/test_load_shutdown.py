"""``croupier load`` interrupted: real signals to a real ``croupier load`` against a real wallet.

What a user does — Ctrl-C (SIGINT) in a terminal, or SIGTERM from a CI runner or ``kill`` — must end
the run the way its normal end does: every Locust process gone (nothing left listening on the web UI's
port), croupier's summary and every report written and marked ``interrupted``, exit code 130, and not
one traceback.  Locust runs in child processes of ``croupier load`` only; this test process never
imports it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from tests.support import ADMIN_TOKEN, ROOT, SECRET, WalletProcess, child_processes, free_port, still_running, until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalletProcess]:
    with WalletProcess(tmp_path_factory.mktemp("wallet") / "unused.db", "--memory") as proc:
        yield proc


def _start(cwd: Path, wallet: WalletProcess, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "simulator", "load", *extra, "--wallet", f"{wallet.base}/wallet", "--secret", SECRET,
         "--admin-token", ADMIN_TOKEN, "--report-dir", str(cwd / "report")],
        cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _locust_children(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    return [p for p in child_processes(proc.pid, recursive=True) if "locust" in " ".join(p.cmdline())]


def _signal(proc: subprocess.Popen[str], *signals: signal.Signals, timeout: float = 60) -> tuple[str, str]:
    """Send ``signals`` in a row and collect the output; a command that does not end in time is killed
    (the test then fails on its exit code, not by hanging)."""
    try:
        for sig in signals:
            proc.send_signal(sig)
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def _playing(cwd: Path, calls: int = 200) -> bool:
    """The run is under way: the master's progress file counts protocol calls."""
    try:
        return int(orjson.loads((cwd / "report" / ".croupier-progress.json").read_bytes())["calls"]) >= calls
    except (OSError, ValueError, KeyError):
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _clean(out: str, err: str) -> None:
    for text in (out, err):
        assert "Traceback" not in text, text[-3000:]
        assert "KeyboardInterrupt" not in text, text[-3000:]
        assert "without croupier's report" not in text, text[-3000:]


def test_sigterm_to_load_web_with_a_worker_leaves_no_process_and_no_open_port(
        wallet: WalletProcess, tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, wallet, "smoke", "--users", "2", "--web", "--web-port", str(port), "--workers", "1")
    try:
        until("the web UI", lambda: _port_open(port) or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            page = resp.read().decode()
        assert f"{wallet.base}/wallet" in page and "croupier.invalid" not in page  # the real host in the UI
        until("the worker", lambda: len(_locust_children(proc)) == 2)
        children = _locust_children(proc)
        out, err = _signal(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    until("the Locust processes to end", lambda: not still_running(children), timeout=5)
    assert not _port_open(port)
    _clean(out, err)
    rep = orjson.loads((tmp_path / "report" / "summary.json").read_bytes())
    assert rep["interrupted"]["signal"] == "SIGTERM" and rep["interrupted"]["note"]
    assert "no test was started" in rep["error"]
    assert "INTERRUPTED" in out.splitlines()[-1]


def test_sigint_mid_run_settles_writes_every_report_marked_interrupted_and_exits_130(
        wallet: WalletProcess, tmp_path: Path) -> None:
    proc = _start(tmp_path, wallet, "chaos", "--users", "4", "--run-time", "60s", "--workers", "1",
                  "--json", str(tmp_path / "run.json"), "--junit", str(tmp_path / "junit.xml"))
    try:
        until("calls", lambda: _playing(tmp_path) or proc.poll() is not None)
        children = _locust_children(proc)
        started = time.monotonic()
        out, err = _signal(proc, signal.SIGINT, timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    assert time.monotonic() - started < 30  # stopped, not played to the end of its 60 s
    until("the Locust processes to end", lambda: not still_running(children), timeout=5)
    _clean(out, err)
    rep = orjson.loads((tmp_path / "report" / "summary.json").read_bytes())
    stop = rep["interrupted"]
    assert stop["signal"] == "SIGINT" and stop["settled"] and stop["unsettled"] == rep["unsettled"] == 0
    assert rep["verdict"] == "pass" and sum(rep["calls"].values()) > 0 and rep["nodes"]["w0"]["final"]
    assert orjson.loads((tmp_path / "run.json").read_bytes())["interrupted"] == stop
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    completed = [c for c in junit.iter("testcase") if c.get("name") == "run completed"]
    assert len(completed) == 1 and completed[0].find("error") is not None
    assert (tmp_path / "report" / "locust.html").stat().st_size > 10_000  # Locust's report, written all the same
    lines = out.strip().splitlines()
    assert "INTERRUPTED" in lines[-1] and "verdict so far: PASS" in lines[-1]
    assert "interrupted: " in err  # the progress line said what was happening


def test_a_second_signal_skips_the_settlement_and_says_what_was_left(wallet: WalletProcess, tmp_path: Path) -> None:
    """Ctrl-C, then SIGTERM at once (two signals of one kind in a row may arrive as one): the second
    reaches the Locust processes before their players leave, so the settlement is skipped for sure."""
    proc = _start(tmp_path, wallet, "chaos", "--users", "6", "--run-time", "60s", "--workers", "1",
                  "--junit", str(tmp_path / "junit.xml"))
    try:
        until("calls", lambda: _playing(tmp_path) or proc.poll() is not None)
        children = _locust_children(proc)
        out, err = _signal(proc, signal.SIGINT, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out[-2000:] + err[-2000:]
    until("the Locust processes to end", lambda: not still_running(children), timeout=5)
    _clean(out, err)
    rep = orjson.loads((tmp_path / "report" / "summary.json").read_bytes())
    stop = rep["interrupted"]
    assert not stop["settled"] and "second interrupt skipped the settlement" in stop["note"]
    assert stop["unsettled"] == rep["left_in_doubt"] + rep["unsettled"]
    assert f"{stop['unsettled']} calls left in doubt" in stop["note"]
    assert not any(n for k, n in rep["anomalies"].items() if k == "no_definitive_answer")  # not the wallet's fault
    assert ET.parse(tmp_path / "junit.xml").getroot().find(".//testcase[@name='run completed']/error") is not None


def test_locust_does_not_outlive_a_killed_croupier_load(wallet: WalletProcess, tmp_path: Path) -> None:
    """SIGKILL (a CI job's hard timeout) gives ``croupier load`` no chance to tell anyone: Locust's
    processes notice they were orphaned and end themselves, the report still written."""
    proc = _start(tmp_path, wallet, "smoke", "--users", "2", "--run-time", "60s", "--workers", "1")
    children: list[psutil.Process] = []
    try:
        until("calls", lambda: _playing(tmp_path, 50) or proc.poll() is not None)
        children = _locust_children(proc)
        assert len(children) == 2
        proc.kill()
        proc.communicate(timeout=10)
        until("the orphaned Locust processes to end", lambda: not still_running(children), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for child in still_running(children):  # never leave a test's processes behind, even when it fails
            child.kill()
    assert (tmp_path / "report" / "summary.json").is_file()


def test_ctrl_c_after_the_web_uis_test_ended_is_the_sessions_normal_end(wallet: WalletProcess, tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, wallet, "smoke", "--users", "2", "--web", "--web-port", str(port))
    ui = f"http://127.0.0.1:{port}"
    try:
        until("the web UI", lambda: _port_open(port) or proc.poll() is not None)
        form = f"user_count=2&spawn_rate=2&host={wallet.base}/wallet".encode()
        urllib.request.urlopen(urllib.request.Request(f"{ui}/swarm", data=form), timeout=5).close()
        until("calls", lambda: _playing(tmp_path, 100))
        urllib.request.urlopen(urllib.request.Request(f"{ui}/stop", method="POST"), timeout=30).close()
        until("the test to stop", lambda: orjson.loads((tmp_path / "report" / ".croupier-progress.json")
                                                       .read_bytes())["state"] == "stopped")
        out, err = _signal(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    assert not _port_open(port)
    _clean(out, err)
    rep = orjson.loads((tmp_path / "report" / "summary.json").read_bytes())
    assert "interrupted" not in rep and rep["verdict"] == "pass" and rep["tests_started"] == 1
    assert out.strip().splitlines()[-1].startswith("verdict: PASS")
