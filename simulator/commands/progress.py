"""Live progress of a long job, for people and for pipes.

On a terminal a bar redraws in place; in a pipe or a CI log a bar would be either nothing or
thousands of carriage returns, so there a plain line is printed every few seconds (and whenever
the phase changes, e.g. to "settling…"), which a log keeps and a person can still read.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

PIPE_EVERY_S = 5.0
"""Seconds between two progress lines when the output is not a terminal."""


class LiveProgress:
    """``with LiveProgress("croupier run", 60, console) as p: p.update(elapsed, "120 calls …")``."""

    def __init__(self, title: str, total_s: float | None, console: Console, *, every_s: float = PIPE_EVERY_S,
                 enabled: bool = True) -> None:
        self.title = title
        self.total_s = total_s
        self.console = console
        self.every_s = every_s
        self.enabled = enabled
        self.terminal = console.is_terminal
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_line_at = -float("inf")
        self._phase = ""

    def __enter__(self) -> Self:
        if self.enabled and self.terminal:
            self._bar = Progress(TextColumn("[bold]{task.description}[/]"), BarColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[line]}"), console=self.console, transient=True)
            self._task = self._bar.add_task(self.title, total=self.total_s or None, line="")
            self._bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)
            self._bar = None

    def update(self, elapsed: float, line: str, phase: str = "") -> None:
        """Where the job is: seconds since it started, a short line of figures, and the phase
        ("" while the job runs; "settling…" and the like once its time is up, so a bar never
        sits at 100 % unexplained)."""
        if not self.enabled:
            return
        title = f"{self.title} · {phase}" if phase else self.title
        if self._bar is not None and self._task is not None:
            done = min(elapsed, self.total_s) if self.total_s else None
            self._bar.update(self._task, completed=done, line=line, description=title)
            return
        now = time.monotonic()
        if phase == self._phase and now - self._last_line_at < self.every_s:
            return
        self._phase = phase
        self._last_line_at = now
        of = f"/{self.total_s:g}" if self.total_s else ""
        self.console.print(f"{title}  {elapsed:.0f}{of} s  {line}", highlight=False, soft_wrap=True)
