"""Locust users that are players: on the wallet directly, at a live table, or through the mock provider.

* :class:`WalletPlayer` — one player (provisioned through the reference wallet's admin API,
  then ``authenticate``), playing the scenario's game mix round after round with the core's
  round generators and faults, over Locust's fast HTTP client.  What ``croupier run`` does
  for one player, as one Locust user.
* :class:`LiveTable` — one live-roulette table: its seated players bet in one window and are
  settled in one burst (the core's ``live_round``).  A scenario's ``[live] tables`` become
  that many table users (``fixed_count``); the other users play alone.
* :class:`~loadtests.via_provider.ProviderPlayer` (its own module) — the real topology, player →
  provider → wallet.

A player who cannot afford their smallest stake leaves and a new one sits down (the user
keeps its place in the load); so does one who played the scenario's ``rounds``.  Leaving
means: calls still in doubt settled, balance read once more and reconciled.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Final

import gevent
from locust import FastHttpUser, task

from simulator.drive import session
from simulator.drive.delivery import Flow
from simulator.drive.session import Ending, Left
from simulator.play.rounds import TxIds

from . import process
from .admin import Admin
from .driver import GeventDriver, Paused
from .hurry import join_bounded
from .process import Croupier

PLACEHOLDER_HOST: Final = "http://croupier.invalid"
"""Locust wants a host per user class.  ``croupier load`` passes the wallet's (or the provider's) base URL
as Locust's ``--host``, which replaces this one, so Locust's report and web UI name the real target;
this is only seen when Locust is run by hand without ``--host``.  Every URL croupier requests is
absolute (--croupier-wallet), so the host never changes where a call goes."""
RETRY_SEAT_S: Final = 1.0


def guarded(user: Any, fn: Any) -> Any:
    """Run one task's work in a greenlet of its own and wait for it.

    Locust may kill a user's greenlet at any switch (a stop, a ramp-down, the end of the run),
    even mid-request when the user had just been sleeping.  A killed user stops waiting, but
    the round goes on to its end in its own greenlet, as a provider finishes a round: a round
    is never abandoned half-way, and ``on_stop`` (or the process's sweep) waits for it."""
    c: Croupier = user.c
    g = user.work = gevent.spawn(fn)
    c.inflight.add(g)
    g.link(c.inflight.discard)
    return g.get()


def finish_work(user: Any) -> None:
    """``on_stop``: wait for the user's round in progress (bounded: calls time out, retries are capped;
    a second interrupt stops the wait at once, see :func:`loadtests.hurry.join_bounded`)."""
    g = getattr(user, "work", None)
    if g is not None and not g.ready():
        join_bounded([g], max(60.0, user.c.scenario.timeout_s * 10))


class SessionUser(FastHttpUser):
    """A Locust user whose players play :mod:`simulator.drive.session`'s flows, as ``croupier run``'s do.

    Each task runs the session up to its next pause between rounds; Locust's own wait is the pause
    (so Locust may stop the user there, as any user between tasks).  A session that ends is closed
    (settled, reconciled: :meth:`Croupier.close`) and the next task seats a new one."""

    abstract = True
    host = PLACEHOLDER_HOST

    def __init__(self, environment: Any) -> None:
        process.user_tls(self)
        super().__init__(environment)
        self.pause = 0.0
        self.flow: Flow[Left] | None = None
        self.resume: bool | None = None
        """What the flow's pause is told when it resumes (None: a flow not started)."""

    def wait_time(self) -> float:
        return self.pause

    def on_start(self) -> None:
        self.c = process.require()
        self.driver = GeventDriver(self.c, self.client, provision=Admin(self.c).provision)

    def session(self) -> Flow[Left]:
        raise NotImplementedError

    @task
    def play(self) -> None:
        guarded(self, self._advance)

    def _advance(self) -> None:
        if self.flow is None:
            self.flow, self.resume = self.session(), None
        self._step(self.driver.advance(self.flow, self.resume))

    def _step(self, got: Left | Paused) -> None:
        if isinstance(got, Paused):
            self.pause, self.resume = got.seconds, True
            return
        self.flow = None
        self.c.close(self.driver, {s.player_id: s for s in got.seats})
        self.pause = RETRY_SEAT_S if got.why in (Ending.UNSEATED, Ending.LOST) else 0.0

    def on_stop(self) -> None:
        if not hasattr(self, "driver"):
            return
        self.driver.stopping = True
        finish_work(self)
        if self.flow is not None and self.resume is not None:  # paused between rounds: play stops there
            self._step(self.driver.advance(self.flow, False))


class WalletPlayer(SessionUser):
    """One player on the wallet directly: what ``croupier run`` does for one player, over FastHttpUser."""

    def session(self) -> Flow[Left]:
        profile, rng = self.c.new_profile()
        return session.player(self.driver.courier, self.c.floor, self.c, profile, rng, self.c.ids,
                              self.c.scenario.rounds)


_tables = itertools.count()


class LiveTable(SessionUser):
    """One live-roulette table of ``[live] seats`` players: a betting window, then one settlement burst."""

    def on_start(self) -> None:
        super().on_start()
        c, n = self.c, next(_tables)
        self.name = f"table{n}"
        self.rng = random.Random(f"{c.settings.seed}:{c.node}:table:{n}")
        self.ids = TxIds(f"{c.settings.run_id}-{c.node}-table{n}")

    def session(self) -> Flow[Left]:
        players = [(0, self.c.new_profile()[0]) for _ in range(self.c.scenario.live.seats)]
        return session.table(self.driver.courier, self.c.floor, self.c, self.name, players, self.rng, self.c.ids,
                             self.ids)
