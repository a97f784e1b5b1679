"""A second interrupt, for every part of a Locust process: the settlement is skipped and every
bounded wait ends at once.  Its own module so that the driver and the process both wait on it
without importing each other."""

from __future__ import annotations

import logging
import time

import gevent
from gevent.event import Event

log = logging.getLogger("croupier.load")

_hurry = Event()
"""Set by a second interrupt: skip the settlement, end every bounded wait now."""


def hurried() -> bool:
    """A second interrupt came: settle nothing more, finish and report what was seen."""
    return bool(_hurry.is_set())


def hurry() -> None:
    if not _hurry.is_set():
        log.info("croupier: second interrupt: the settlement is skipped; what is in doubt is left so")
        _hurry.set()


def join_bounded(greenlets: list[gevent.Greenlet], timeout: float | None) -> None:
    """``gevent.joinall`` with a bound that a second interrupt cuts short (checked every 0.2 s)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = [g for g in greenlets if not g.ready()]
    while pending and not _hurry.is_set():
        left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
        if left <= 0:
            return
        gevent.joinall(pending, timeout=left)
        pending = [g for g in pending if not g.ready()]
