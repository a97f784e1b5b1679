"""Locust load shapes over the pure curves of :mod:`loadtests.curves`.

A shape runs on the master only (workers just spawn what they are told).  It reads Locust's
common options (``use_common_options``): the curve's peak is ``--users`` and its length is
``--run-time``; it asks for whatever spawn rate reaches each second's target within that
second, so a spike is a spike.  Choose one with the ``CROUPIER_SHAPE`` environment variable
of the master (``croupier load --shape NAME`` sets it).
"""

from __future__ import annotations

import math

from locust import LoadTestShape

from . import curves

DEFAULT_DURATION_S = 300.0


class CroupierShape(LoadTestShape):
    abstract = True
    use_common_options = True
    curve = "ramp"

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        peak = int(getattr(options, "num_users", None) or 1)
        duration = float(getattr(options, "run_time", None) or DEFAULT_DURATION_S)
        t = self.get_run_time()  # type: ignore[no-untyped-call]
        target = curves.users_at(self.curve, t, duration, peak)
        if target is None:
            return None
        now = self.get_current_user_count()  # type: ignore[no-untyped-call]
        rate = max(1.0, float(getattr(options, "spawn_rate", None) or 1), math.fabs(target - now))
        return target, rate


def named(name: str) -> type[CroupierShape]:
    """A concrete (non-abstract) shape class for the curve ``name``."""
    curves.check(name)
    cls_name = "".join(part.capitalize() for part in name.split("-")) + "Shape"
    return type(cls_name, (CroupierShape,), {"abstract": False, "curve": name, "__doc__": curves.DESCRIPTIONS[name]})
