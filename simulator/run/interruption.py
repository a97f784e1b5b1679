"""A run stopped from outside (SIGINT/SIGTERM, told by the command through ``Runner.interrupt``): the
bounds of its wind-down, and what its report says of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INTERRUPT_ROUNDS_S = 2.0
"""After SIGINT/SIGTERM: how long the rounds in flight may take to finish before they are cancelled
(their calls still in doubt are then settled like any the provider stopped waiting for)."""
INTERRUPT_SETTLE_S = 5.0
"""After SIGINT/SIGTERM: the most the settlement may take, from the signal or from its start if later
(the run's ``settle_timeout_s`` if that is shorter)."""
INTERRUPT_RECONCILE_S = 2.0
"""After SIGINT/SIGTERM: the most the final balance reads may take."""
# Why these bounds: an interrupted run must be gone, its reports written, before whoever interrupted it
# gives up — a person at a terminal, or a supervisor that sends SIGKILL after a grace period (docker stop:
# 10 s, the shortest common one; Kubernetes 30 s, systemd 90 s). 2 + 5 + 2 s leaves a second for the
# reports within docker's 10 s; the full settle_timeout_s (60 s by default) would not.  A wallet that
# needs longer gets its calls left in doubt said in the report (never judged), and a second signal
# skips what is left of it at once.


@dataclass
class Interruption:
    """A run stopped from outside (SIGINT/SIGTERM, told by the command through :meth:`Runner.interrupt`)."""

    signal: str
    """The first signal's name."""
    at: float
    """``time.monotonic()`` when it came."""
    again: str | None = None
    """A second signal: the settlement and the final balance reads were skipped."""
    after_s: float = 0.0
    """Seconds of run before the signal."""
    settled: bool = False
    """Whether the settlement ran to its end (False: cut short by its bound or skipped)."""
    unsettled: int = 0
    """Calls still in doubt at the end."""
    cancelled_rounds: int = 0
    """Rounds in flight that did not finish within :data:`INTERRUPT_ROUNDS_S` (a player's or a table's; the
    calls they had in flight were left in doubt, for the settlement)."""
    settle_bound_s: float = 0.0
    """How long the settlement ran."""
    before_play: bool = False
    """The signal came before the first round: nothing was sent."""

    @property
    def note(self) -> str:
        """One sentence: what was stopped, what was left unsettled."""
        calls = f"{self.unsettled} call{'' if self.unsettled == 1 else 's'}"
        if self.before_play:
            return f"{self.signal} before play started: no round was played, nothing is in doubt"
        text = f"{self.signal} after {self.after_s:.1f} s: play stopped, no new round started"
        if self.cancelled_rounds:
            text += f" ({self.cancelled_rounds} rounds in flight cut off" + (
                ")" if self.again else f" after {INTERRUPT_ROUNDS_S:g} s)")
        if self.again:
            return text + (f"; a second {self.again} skipped the settlement and the final balance reads: "
                           f"{calls} left in doubt, not judged")
        if not self.settled:
            return text + (f"; the settlement was cut short after {self.settle_bound_s:g} s: {calls} left in "
                           "doubt, not judged")
        if self.unsettled:
            return text + f"; settled, {calls} still without a definitive answer (findings)"
        return text + "; every call in doubt was settled and every balance read again"

    def to_json(self) -> dict[str, Any]:
        """The report's ``interrupted`` entry (the shared contract of every report)."""
        return {"signal": self.signal, "after_s": round(self.after_s, 3), "settled": self.settled,
                "unsettled": self.unsettled, "note": self.note}
