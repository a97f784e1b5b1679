"""Live progress in a pipe: a plain line every few seconds and on a phase change, never a bar's control codes."""

from __future__ import annotations

import io

from rich.console import Console

from simulator.commands.progress import LiveProgress


def test_pipe_gets_a_line_per_interval_and_per_phase_change() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with LiveProgress("croupier run", 10, console, every_s=3600) as p:
        p.update(0.5, "1 calls")
        p.update(1.0, "2 calls")  # within the interval: nothing new
        p.update(10.2, "9 calls", "settling…")  # a new phase is always said
    lines = out.getvalue().splitlines()
    assert lines == ["croupier run  0/10 s  1 calls", "croupier run · settling…  10/10 s  9 calls"]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_disabled_prints_nothing() -> None:
    out = io.StringIO()
    with LiveProgress("croupier load", None, Console(file=out, force_terminal=False), enabled=False) as p:
        p.update(1.0, "x")
    assert out.getvalue() == ""
