"""SIGINT and SIGTERM for the commands that keep their work (run, check, demo): the driver layer's part.

The core never sees a signal.  A command installs :class:`Interrupts` around its work; each
signal is recorded (which one, when) and handed to whoever listens — the run's ``Runner.interrupt``
through its event loop, the check's stop request, a parent's forwarding to its workers — as a
plain call.  The process-level handlers stay in place until the command has written its reports,
so a signal that comes while the reports are written is noted, never a traceback.

A terminal's Ctrl-C and a supervisor's SIGTERM (``docker stop``, Kubernetes, systemd, CI
cancelling a job) mean the same here: stop, keep what was measured, exit 130.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Self

EXIT_INTERRUPTED = 130
"""The exit code of an interrupted command (128 + SIGINT, what shells and CI expect)."""

SIGNALS = (signal.SIGINT, signal.SIGTERM)

Listener = Callable[[str, int], None]
"""Called with the signal's name ("SIGINT"/"SIGTERM") and how many signals have come so far (1, 2…)."""


class Interrupts:
    """``with Interrupts() as sig: sig.listen(fn) …``: SIGINT and SIGTERM recorded and passed on.

    Listeners run in the signal handler's context (the main thread, between two bytecodes): they
    must only hand the news on (``loop.call_soon_threadsafe``, a flag, ``os.kill``), or raise
    ``KeyboardInterrupt`` where that is how the work in progress is stopped (Hypothesis).
    Outside the main thread nothing is installed (Python allows handlers there only).
    """

    def __init__(self) -> None:
        self.received: list[str] = []
        """The signals received, in order."""
        self.first_at: float | None = None
        """``time.monotonic()`` of the first signal."""
        self._listeners: list[Listener] = []
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old.clear()

    @property
    def first(self) -> str | None:
        """The first signal's name (None: not interrupted)."""
        return self.received[0] if self.received else None

    def after_s(self, started: float) -> float:
        """Seconds from ``started`` (a ``time.monotonic()``) to the first signal."""
        return max(0.0, (self.first_at or started) - started)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Pass every later signal to ``listener``, and those already received (in order) now;
        returns the function that stops listening."""
        for n, name in enumerate(list(self.received), start=1):
            listener(name, n)
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        if self.first_at is None:
            self.first_at = time.monotonic()
        for listener in list(self._listeners):
            listener(name, len(self.received))


def terminate_as_interrupt() -> None:
    """Make SIGTERM end the process as Ctrl-C does (``KeyboardInterrupt``: one line, exit 130) until a
    command installs its own handling; the default would kill it silently with no report (exit -15)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
