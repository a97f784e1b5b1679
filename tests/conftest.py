"""Hypothesis profiles: `dev` (default) explores more, `ci` bounds the suite's time.

Both keep every rule and invariant; `ci` runs fewer examples and shorter
sequences so the whole suite stays within minutes on two cores.
Choose with HYPOTHESIS_PROFILE=ci|dev (``.ci/run`` sets ci).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
