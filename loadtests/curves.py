"""Load shapes as pure curves: users wanted at second ``t`` of a run of ``duration`` seconds.

Each curve scales to the run: ``peak`` is ``--users`` and ``duration`` is ``--run-time``, so
``croupier load steady --shape spike --users 200 --run-time 5m`` is a five-minute spike test
at up to 200 users.  The Locust wrappers are in :mod:`loadtests.shapes`; here there is no
Locust, so the command line and the tests can list and check the shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

Curve = Callable[[float, float, int], int]

STEPS: Final = 5
SPIKE_BASE: Final = 0.2
"""Users outside the spike, as a share of the peak."""
SPIKE_WINDOW: Final = (0.4, 0.55)
"""The spike, as shares of the run: it starts at 40% and ends at 55%."""
SOAK_RAMP_S: Final = 60.0

# Share of the evening peak per hour of the day (00:00 … 23:00): a casino's day, quiet in the
# small hours, rising through the afternoon, busiest from 20:00 to 22:00.  The run starts at
# 06:00 so the peak falls about 60% of the way through and the night's fall closes the run.
EVENING_DAY: Final = (
    0.40, 0.30, 0.22, 0.17, 0.14, 0.13, 0.14, 0.18, 0.24, 0.30, 0.36, 0.42,
    0.47, 0.50, 0.53, 0.57, 0.62, 0.70, 0.80, 0.90, 0.98, 1.00, 0.92, 0.65,
)
EVENING_START_HOUR: Final = 6


def _at_least_one(x: float) -> int:
    return max(1, math.ceil(x - 1e-9))


def ramp(t: float, duration: float, peak: int) -> int:
    """Linear from one user to ``peak`` over the first 90% of the run, then held: where is the knee?"""
    return min(peak, _at_least_one(peak * t / (0.9 * duration)))


def step(t: float, duration: float, peak: int) -> int:
    """Five equal plateaus, a fifth of ``peak`` more each: latency per level, read off the stats history."""
    level = min(STEPS, int(t / (duration / STEPS)) + 1)
    return _at_least_one(peak * level / STEPS)


def spike(t: float, duration: float, peak: int) -> int:
    """A fifth of ``peak``, then everyone at once (a live-table settlement burst), then back."""
    lo, hi = SPIKE_WINDOW
    if lo * duration <= t < hi * duration:
        return peak
    return _at_least_one(peak * SPIKE_BASE)


def soak(t: float, duration: float, peak: int) -> int:
    """A gentle ramp (a minute, or a tenth of the run if shorter), then ``peak`` until the end."""
    ramp_s = min(SOAK_RAMP_S, 0.1 * duration)
    if ramp_s <= 0 or t >= ramp_s:
        return peak
    return min(peak, _at_least_one(peak * t / ramp_s))


def evening_peak(t: float, duration: float, peak: int) -> int:
    """A day's traffic compressed into the run, interpolated hour by hour, 06:00 to 06:00."""
    hours = 24 * t / duration
    h = (EVENING_START_HOUR + hours) % 24
    i = int(h)
    frac = h - i
    share = EVENING_DAY[i] + (EVENING_DAY[(i + 1) % 24] - EVENING_DAY[i]) * frac
    return _at_least_one(peak * share)


SHAPES: Final[dict[str, Curve]] = {
    "ramp": ramp,
    "step": step,
    "spike": spike,
    "soak": soak,
    "evening-peak": evening_peak,
}

DESCRIPTIONS: Final = {name: (fn.__doc__ or "").strip() for name, fn in SHAPES.items()}


def users_at(name: str, t: float, duration: float, peak: int) -> int | None:
    """Users wanted at second ``t``; None once the run is over (Locust then stops the test)."""
    if t >= duration:
        return None
    return SHAPES[name](t, duration, max(1, peak))


def check(name: str) -> str:
    if name not in SHAPES:
        raise ValueError(f"unknown load shape {name!r} (known: {', '.join(SHAPES)})")
    return name
