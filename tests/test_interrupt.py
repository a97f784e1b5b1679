"""Interruptions keep the work: a real SIGINT or SIGTERM to a real ``croupier`` subprocess.

Each case starts ``python -m simulator run|check|demo`` against a reference wallet started here,
waits until the wallet has seen the command's bets (never a fixed sleep where the wallet can
say so), sends the signal and asserts what a user and a CI job rely on: exit 130 within a bound,
every report asked for on disk and marked ``interrupted`` with the signal, the summary's first and
last lines saying INTERRUPTED, no traceback anywhere, no worker process left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    ADMIN_TOKEN,
    ROOT,
    SECRET,
    WalletProcess,
    child_processes,
    free_port,
    still_running,
    until,
    valid_junit,
)

STOP_WITHIN_S = 15.0
"""How long a command may take to exit after the (first) signal: its wind-down is bounded at 9 s."""
"""How long a command may take to send its first bets (imports, provisioning; the machine is shared)."""


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = WalletProcess(tmp_path_factory.mktemp("wallet") / "w.db", "--memory", port=free_port()).start()
    try:
        yield proc.base
    finally:
        proc.kill()


def bets(base: str) -> int:
    """Bets the wallet has taken so far, over every player (its GGR report)."""
    req = urllib.request.Request(f"{base}/admin/reports/ggr", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return sum(int(line.get("bets") or 0) for line in json.load(resp)["lines"])


class Command:
    """``python -m simulator ARGV`` with stdout and stderr to files (a pipe could fill and block it)."""

    def __init__(self, tmp: Path, *argv: str) -> None:
        self.tmp = tmp
        self.out, self.err = tmp / "stdout.txt", tmp / "stderr.txt"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
        for name in ("CROUPIER_SECRET", "CROUPIER_ADMIN_TOKEN", "CROUPIER_DEBUG"):
            env.pop(name, None)
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "simulator", *argv], cwd=tmp, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)

    def signal(self, sig: int) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def wait(self, since: float) -> int:
        try:
            code = self.proc.wait(STOP_WITHIN_S + 5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"still running {STOP_WITHIN_S + 5} s after the signal\n{self.text()}") from None
        took = time.monotonic() - since
        assert took < STOP_WITHIN_S, f"took {took:.1f} s to stop\n{self.text()}"
        return code

    def text(self) -> str:
        return (f"--- stdout\n{self.out.read_text(errors='replace')[-4000:]}\n"
                f"--- stderr\n{self.err.read_text(errors='replace')[-4000:]}")

    def stdout_lines(self) -> list[str]:
        return [line for line in self.out.read_text().splitlines() if line.strip()]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def assert_clean(cmd: Command, code: int) -> None:
    text = cmd.text()
    assert code == 130, f"exit {code}\n{text}"
    assert "Traceback" not in text, text
    assert "unexpected error" not in text, text


def assert_reports(tmp: Path, sig: str, html: bool = True) -> dict[str, object]:
    """The JSON, JUnit (and HTML) reports are on disk, marked interrupted by ``sig``; returns the mark."""
    report = json.loads((tmp / "r.json").read_text())
    mark = report["interrupted"]
    assert mark["signal"] == sig
    assert set(mark) >= {"signal", "after_s", "settled", "unsettled", "note"}
    assert isinstance(mark["unsettled"], int) and mark["note"]
    assert report["verdict"] in ("pass", "fail", "error")
    suite = valid_junit((tmp / "r.xml").read_bytes()).find("testsuite")  # run's, check's or demo's
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["interrupted"] == sig
    done = [c for c in suite.iter("testcase") if c.get("name") == "run completed"]
    assert len(done) == 1 and done[0].find("error") is not None
    assert int(suite.get("tests", "0")) == len(list(suite.iter("testcase")))
    if html:
        assert (tmp / "r.html").stat().st_size > 0
    return dict(mark)


def assert_summary(lines: list[str]) -> None:
    """The summary's first line and the output's last line say INTERRUPTED with the verdict so far."""
    first = next((i for i, line in enumerate(lines) if line.startswith("INTERRUPTED")), None)
    assert first is not None, "\n".join(lines)
    for line in (lines[first], lines[-1]):
        assert re.match(r"INTERRUPTED by SIG(INT|TERM) after [\d.]+ s — verdict so far: (PASS|FAIL|ERROR)\b", line), line


def run_argv(wallet: str, *extra: str) -> list[str]:
    return ["run", "chaos", "--wallet", f"{wallet}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
            "--duration", "60", "--json", "r.json", "--junit", "r.xml", "--html", "r.html", *extra]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_interrupted_keeps_its_reports(wallet: str, tmp_path: Path, sig: signal.Signals) -> None:
    before = bets(wallet)
    cmd = Command(tmp_path, *run_argv(wallet))
    try:
        until("bets at the wallet", lambda: bets(wallet) > before + 100, cmd.proc)
        code = cmd.wait(cmd.signal(sig))
    finally:
        cmd.kill()
    assert_clean(cmd, code)
    mark = assert_reports(tmp_path, sig.name)
    assert mark["settled"] is True, mark  # a reference wallet settles within the bound
    assert_summary(cmd.stdout_lines())
    assert "stopping" in cmd.err.read_text()  # said at once what the signal does


def test_second_sigint_skips_the_settlement(wallet: str, tmp_path: Path) -> None:
    before = bets(wallet)
    cmd = Command(tmp_path, *run_argv(wallet))
    try:
        until("bets at the wallet", lambda: bets(wallet) > before + 100, cmd.proc)
        first = cmd.signal(signal.SIGINT)
        until("the first signal's message", lambda: "stopping" in cmd.err.read_text(), cmd.proc, 5)
        cmd.signal(signal.SIGINT)
        code = cmd.wait(first)
    finally:
        cmd.kill()
    assert_clean(cmd, code)
    mark = assert_reports(tmp_path, "SIGINT")
    assert mark["settled"] is False
    assert "a second SIGINT skipped the settlement" in str(mark["note"])
    assert f"{mark['unsettled']} call" in str(mark["note"])  # what was left unsettled, said
    assert re.search(r"SIGINT again: settlement skipped, \d+ calls? in doubt left unsettled", cmd.err.read_text())
    assert_summary(cmd.stdout_lines())


def test_run_interrupted_as_it_starts(wallet: str, tmp_path: Path) -> None:
    """A signal while players are still being seated: the same clean end, a verdict so far of whatever
    was (or was not) checked."""
    cmd = Command(tmp_path, *run_argv(wallet))
    try:
        until("the first progress line", lambda: "croupier run" in cmd.err.read_text(), cmd.proc)
        code = cmd.wait(cmd.signal(signal.SIGTERM))
    finally:
        cmd.kill()
    assert_clean(cmd, code)
    assert_reports(tmp_path, "SIGTERM")
    assert_summary(cmd.stdout_lines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_run_workers_sigterm_to_the_parent_alone(wallet: str, tmp_path: Path) -> None:
    before = bets(wallet)
    cmd = Command(tmp_path, *run_argv(wallet, "--workers", "2"))
    try:
        until("bets at the wallet", lambda: bets(wallet) > before + 100 and len(child_processes(cmd.proc.pid)) == 2,
              cmd.proc)
        workers = child_processes(cmd.proc.pid)
        code = cmd.wait(cmd.signal(signal.SIGTERM))  # the parent alone: not its process group
    finally:
        cmd.kill()
    assert_clean(cmd, code)
    deadline = time.monotonic() + 2
    while still_running(workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not still_running(workers), "a worker outlived the command"
    mark = assert_reports(tmp_path, "SIGTERM")
    assert "passed on to 2 workers" in str(mark["note"])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["workers"] == 2 and sum(report["calls"].values()) > 0
    assert_summary(cmd.stdout_lines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_run_workers_stop_when_the_parent_is_killed(wallet: str, tmp_path: Path) -> None:
    """SIGKILL leaves the parent no chance to pass anything on: its workers notice and stop by themselves."""
    before = bets(wallet)
    cmd = Command(tmp_path, *run_argv(wallet, "--workers", "2"))
    try:
        until("bets at the wallet", lambda: bets(wallet) > before + 100 and len(child_processes(cmd.proc.pid)) == 2,
              cmd.proc)
        workers = child_processes(cmd.proc.pid)
        cmd.signal(signal.SIGKILL)
        cmd.proc.wait(5)
        deadline = time.monotonic() + STOP_WITHIN_S
        while still_running(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        cmd.kill()
    left = still_running(workers)
    for w in left:  # not to leave them to the next test
        w.kill()
    assert not left, f"workers {left} played on after their parent was killed"
    assert "Traceback" not in cmd.text()


def test_check_interrupted_reports_what_it_found(wallet: str, tmp_path: Path) -> None:
    before = bets(wallet)
    cmd = Command(tmp_path, "check", "--wallet", f"{wallet}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
                  "--budget", "120", "--no-db", "--json", "r.json", "--junit", "r.xml")
    try:
        until("the check's bets at the wallet", lambda: bets(wallet) > before + 20, cmd.proc)
        code = cmd.wait(cmd.signal(signal.SIGINT))
    finally:
        cmd.kill()
    assert_clean(cmd, code)
    mark = assert_reports(tmp_path, "SIGINT", html=False)
    assert re.search(r"stopped the check while (searching|shrinking)", str(mark["note"])), mark
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["stopped_by"] == "interrupted" and report["examples"] > 0
    assert_summary(cmd.stdout_lines())


def test_demo_interrupted_stops_its_wallet_and_keeps_its_reports(tmp_path: Path) -> None:
    cmd = Command(tmp_path, "demo", "--duration", "60", "--json", "r.json", "--junit", "r.xml", "--html", "r.html")

    def playing() -> bool:  # a progress line with calls (one every 5 s in a pipe)
        return bool(re.search(r"\b[1-9][\d,]* calls", cmd.out.read_text()))

    try:
        until("the demo's progress", playing, cmd.proc)
        port = re.search(r"reference wallet on http://127\.0\.0\.1:(\d+)", cmd.out.read_text())
        assert port is not None
        code = cmd.wait(cmd.signal(signal.SIGINT))
    finally:
        cmd.kill()
    assert_clean(cmd, code)
    assert_reports(tmp_path, "SIGINT")
    assert_summary(cmd.stdout_lines())
    with pytest.raises(OSError):  # the demo's wallet is gone with it
        urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/healthz", timeout=2)


# -- the pieces, without a process ------------------------------------------------------------------

def _mark(**kw: object) -> dict[str, object]:
    return {"signal": "SIGINT", "after_s": 3.2, "settled": True, "unsettled": 0, "note": "n", **kw}


def test_summary_first_and_last_lines_say_interrupted() -> None:
    import io

    from rich.console import Console

    from simulator.report.summary import print_summary
    from tests.test_summary_readable import _report

    report = {**_report(), "interrupted": _mark(note="SIGINT after 3.2 s: play stopped")}
    out = io.StringIO()
    print_summary(report, Console(file=out, width=80, force_terminal=False, color_system=None))
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    assert lines[0] == lines[-1]
    assert lines[0].startswith("INTERRUPTED by SIGINT after 3.2 s — verdict so far: FAIL scenario invalid-calls")
    assert lines[1] == "interrupted: SIGINT after 3.2 s: play stopped"
    out = io.StringIO()
    print_summary(_report(), Console(file=out, width=80, force_terminal=False, color_system=None))
    assert "INTERRUPTED" not in out.getvalue()  # a finished run is not marked


def test_junit_has_the_interrupted_property_and_one_case_that_did_not_complete() -> None:
    from simulator.report.junit import junit_xml
    from tests.test_summary_readable import _report

    plain = ET.fromstring(junit_xml(_report())).find("testsuite")
    suite = ET.fromstring(junit_xml({**_report(), "interrupted": _mark(note="the note")})).find("testsuite")
    assert plain is not None and suite is not None
    assert int(suite.get("tests", "0")) == int(plain.get("tests", "0")) + 1 == len(list(suite.iter("testcase")))
    assert int(suite.get("errors", "0")) == int(plain.get("errors", "0")) + 1
    assert {p.get("name"): p.get("value") for p in suite.iter("property")}["interrupted"] == "SIGINT"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "run completed")
    error = case.find("error")
    assert error is not None and error.get("message") == "the note" and error.get("type") == "interrupted"


def test_workers_marks_merge_into_one() -> None:
    from simulator.commands.runcmd import merge_interrupted

    both = merge_interrupted([_mark(after_s=3.0, unsettled=1), _mark(after_s=3.4, unsettled=2)], "SIGTERM")
    assert both["signal"] == "SIGTERM" and both["after_s"] == 3.4 and both["unsettled"] == 3
    assert both["settled"] is True and "3 calls still without a definitive answer" in both["note"]
    cut = merge_interrupted([_mark(), _mark(settled=False, unsettled=4)])
    assert cut["settled"] is False and "cut short: 4 calls left in doubt" in cut["note"]
    skipped = merge_interrupted([_mark(settled=False, unsettled=1)], skipped=True)
    assert "a second signal skipped the settlement" in skipped["note"] and "1 call left" in skipped["note"]


def test_the_note_says_what_was_stopped_and_what_was_left() -> None:
    from simulator.run.runner import Interruption

    done = Interruption("SIGTERM", 0.0, after_s=4.25, settled=True)
    assert done.note == ("SIGTERM after 4.2 s: play stopped, no new round started; every call in doubt was settled "
                         "and every balance read again")
    cut = Interruption("SIGINT", 0.0, after_s=1.0, unsettled=2, cancelled_rounds=3, settle_bound_s=5.0)
    assert "3 rounds in flight cut off after 2 s" in cut.note
    assert "the settlement was cut short after 5 s: 2 calls left in doubt, not judged" in cut.note
    again = Interruption("SIGINT", 0.0, again="SIGINT", unsettled=1)
    assert "a second SIGINT skipped the settlement and the final balance reads: 1 call left in doubt" in again.note
    assert Interruption("SIGINT", 0.0, before_play=True).note.startswith("SIGINT before play started")
    assert set(done.to_json()) == {"signal", "after_s", "settled", "unsettled", "note"}


def test_a_stop_request_stops_hypothesis_at_once_only_while_it_searches() -> None:
    from simulator.check.runner import StopRequest

    idle = StopRequest()
    idle.request("SIGTERM")  # between two Hypothesis runs: noted, the search stops before the next
    assert idle.signal == "SIGTERM" and idle.at is not None
    busy = StopRequest(searching=True)
    with pytest.raises(KeyboardInterrupt):
        busy.request("SIGINT")
    busy.request("SIGTERM")  # a second one changes nothing
    assert busy.signal == "SIGINT"


def test_a_stop_python_swallowed_in_a_gc_callback_still_stops_the_search_and_prints_nothing() -> None:
    """Seen in CI: the KeyboardInterrupt of a stop request landed in a gc callback of Hypothesis's, where
    Python drops it with an "Exception ignored … Traceback" on stderr.  The stop must hold all the same
    (no new example starts) and nothing be printed."""
    import gc
    import io
    import sys

    from simulator.check.machine import RunContext
    from simulator.check.runner import StopRequest

    stop = StopRequest()
    ctx = RunContext(None)  # type: ignore[arg-type]  # no connection: only its clocks are asked
    ctx.interrupted = lambda: stop.signal is not None
    assert ctx.stop_reason() is None
    err, before = io.StringIO(), sys.stderr

    def callback(phase: str, info: dict[str, int]) -> None:
        stop.request("SIGINT")  # raises KeyboardInterrupt inside the gc callback: Python drops it

    gc.callbacks.append(callback)
    sys.stderr = err
    try:
        with stop.during_search():
            gc.collect()
    finally:
        gc.callbacks.remove(callback)
        sys.stderr = before
    assert stop.signal == "SIGINT" and "Traceback" not in err.getvalue(), err.getvalue()
    assert ctx.stop_reason() == "interrupted"  # the machine raises StopSearch before the next example


def test_a_check_call_given_up_on_is_cancelled_before_the_bridge_closes(caplog: pytest.LogCaptureFixture) -> None:
    """Ctrl-C lands in the wait for an admin or wallet call, not in the call: the call must end (cancelled) before
    its session closes, never fail later on a closed connector and print a traceback (seen: an interrupted check's
    balance read, 'Task exception was never retrieved ... Connector is closed')."""
    import asyncio
    import concurrent.futures
    import gc

    from simulator.check.target import Bridge

    ended: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(0.5)
            raise RuntimeError("the connector is closed")
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    bridge = Bridge()
    with pytest.raises(concurrent.futures.TimeoutError):
        bridge.run(slow(), timeout=0.05)  # the caller stops waiting, as on Ctrl-C
    bridge.close()
    gc.collect()
    assert ended == ["cancelled"]
    assert "never retrieved" not in caplog.text and "destroyed but it is pending" not in caplog.text
