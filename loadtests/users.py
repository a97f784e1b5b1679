"""Locust users that are players: on the wallet directly, at a live table, or through the mock provider.

* :class:`WalletPlayer` — one player (provisioned through the reference wallet's admin API,
  then ``authenticate``), playing the scenario's game mix round after round with the core's
  round generators and faults, over Locust's fast HTTP client.  What ``croupier run`` does
  for one player, as one Locust user.
* :class:`LiveTable` — one live-roulette table: its seated players bet in one window and are
  settled in one burst (the core's ``live_round``).  A scenario's ``[live] tables`` become
  that many table users (``fixed_count``); the other users play alone.
* :class:`ProviderPlayer` — the real topology, player → provider → wallet: launches a game
  on the mock provider (``POST /launch``) and plays it (``POST /play``); the provider calls the
  wallet and judges its answers with its own ledger, which the master reads at the end.

A player who cannot afford their smallest stake leaves and a new one sits down (the user
keeps its place in the load); so does one who played the scenario's ``rounds``.  Leaving
means: calls still in doubt settled, balance read once more and reconciled.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Final

import gevent
import orjson
from locust import FastHttpUser, task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import CatchResponseError

from simulator.drive import session
from simulator.drive.delivery import BENIGN, Flow, Provision, Provisioned, Unseated
from simulator.drive.session import Ending, Left
from simulator.judge.diagnosis import admin_cause
from simulator.play.players import PlayerProfile, choose_stake
from simulator.play.rounds import Launch, Seat, TxIds
from simulator.protocol.calls import Ok
from simulator.protocol.codes import ErrorCode
from simulator.protocol.money import Money, currency

from . import process
from .driver import GeventDriver, Paused
from .hurry import join_bounded
from .process import Croupier

PLACEHOLDER_HOST: Final = "http://croupier.invalid"
"""Locust wants a host per user class.  ``croupier load`` passes the wallet's (or the provider's) base URL
as Locust's ``--host``, which replaces this one, so Locust's report and web UI name the real target;
this is only seen when Locust is run by hand without ``--host``.  Every URL croupier requests is
absolute (--croupier-wallet), so the host never changes where a call goes."""
ADMIN: Final = "admin"
PROVIDER: Final = "provider"
VIA_PROVIDER: Final = "via-provider"
RETRY_SEAT_S: Final = 1.0


class AdminFailed(RuntimeError):
    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class Admin:
    """The reference wallet's admin API, over an HTTP session of its own whose request events go to the
    process's :class:`~loadtests.provisioning.Provisioning` instead of Locust's statistics: provisioning
    is set-up, not the protocol, and must not weigh in the per-operation rows or the Aggregated row."""

    def __init__(self, c: Croupier) -> None:
        settings = c.settings
        timeout = c.scenario.timeout_s
        self.http: Any = FastHttpSession(None, c.provisioning, None, network_timeout=timeout,
                                         connection_timeout=timeout, concurrency=4)
        self.url = settings.admin_url
        self.ttl_s = c.scenario.session_ttl_s
        self.headers = {"Authorization": f"Bearer {settings.admin_token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, name: str, body: Any = None) -> Any:
        with self.http.request(method, f"{self.url}{path}", name=name, headers=self.headers, catch_response=True,
                               data=orjson.dumps(body) if body is not None else None) as resp:
            resp.request_meta["request_type"] = ADMIN
            if not resp.status_code:
                resp.failure("admin API unreachable")
                raise AdminFailed(f"admin API unreachable at {self.url}: {getattr(resp, 'error', None)!r}",
                                  f"admin API unreachable at {self.url}")
            try:
                data = orjson.loads(resp.content or b"")
            except orjson.JSONDecodeError:
                data = (resp.content or b"").decode("utf-8", "replace")[:200]
            if resp.status_code >= 400:
                resp.failure(f"admin API answered {resp.status_code}")
                raise AdminFailed(f"admin API answered {resp.status_code}: {data}",
                                  admin_cause(resp.status_code, f"{method} {path.split('/players/')[0]}", self.url))
            resp.success()
            return data

    def create_player(self, player_id: str, code: str, balance: int) -> None:
        self.call("POST", "/admin/players", "create player", {"player_id": player_id, "currency": code, "balance": balance})

    def token(self, player_id: str, ttl_s: int) -> str:
        return str(self.call("POST", "/admin/tokens", "token", {"player_id": player_id, "ttl_s": ttl_s})["token"])

    def provision(self, p: Provision) -> Provisioned:
        """A player made and a launch token issued (or only a new token: a relaunch), for the sessions."""
        pid = p.profile.player_id if p.again is None else p.again.player_id
        try:
            if p.again is None:
                self.create_player(pid, p.profile.currency, p.profile.bankroll)
            token = self.token(pid, self.ttl_s)
        except AdminFailed as exc:
            return Unseated(exc.cause, str(exc))
        return Launch(pid, currency(p.profile.currency), token, balance=p.profile.bankroll)

    def balance(self, player_id: str) -> int:
        from urllib.parse import quote

        return int(self.call("GET", f"/admin/players/{quote(player_id, safe='')}", "player")["balance"])


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


# -- through the mock provider -------------------------------------------------------------
_lobby: dict[str, list[tuple[str, dict[str, int]]]] = {}
"""kind → [(game_id, min_stake by currency)], read once per process from ``GET /games``."""


@dataclass(slots=True)
class Launched:
    profile: PlayerProfile
    rng: random.Random
    session_id: str
    balance: int
    expected: int
    judged: bool = True
    """False once a round's effect is unknown (no answer, unresolved): the final check is skipped."""
    played: int = 0
    kinds: set[str] = field(default_factory=set)


class ProviderPlayer(FastHttpUser):
    """One player through the mock provider: ``POST /launch``, then ``POST /play`` per round."""

    host = PLACEHOLDER_HOST

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.pause = 0.0
        self.player: Launched | None = None

    def wait_time(self) -> float:
        return self.pause

    def on_start(self) -> None:
        c = self.c = process.require()
        self.url = c.settings.provider_url
        self.admin = Admin(c)
        self.auth = {"Authorization": f"Bearer {c.settings.provider_key}", "Content-Type": "application/json"}
        if not self.url:
            c.error("ProviderPlayer needs --croupier-provider URL")
            self.pause = 3600.0
            return
        self._sit()

    def _request(self, method: str, path: str, name: str, body: Any = None, auth: bool = True) -> tuple[int, Any, Any]:
        """One provider call: (status, JSON answer, the response to mark)."""
        resp = self.client.request(method, f"{self.url}{path}", name=name, headers=self.auth if auth else None,
                                   data=orjson.dumps(body) if body is not None else None,  # type: ignore[arg-type]
                                   catch_response=True)
        resp.request_meta["request_type"] = PROVIDER
        try:
            data = orjson.loads(resp.content or b"") if resp.status_code else None
        except orjson.JSONDecodeError:
            data = None
        return resp.status_code or 0, data, resp

    def _games(self) -> dict[str, list[tuple[str, dict[str, int]]]]:
        if not _lobby:
            status, data, resp = self._request("GET", "/games", "games")
            with resp:
                if status != 200 or not isinstance(data, dict):
                    resp.failure(f"provider answered {status}")
                    return {}
                resp.success()
            for g in data.get("games", []):
                _lobby.setdefault(g["kind"], []).append((g["game_id"], g.get("min_stake", {})))
        return _lobby

    def _launch(self, profile: PlayerProfile, token: str, game_id: str) -> tuple[str, int] | None:
        body = {"player_id": profile.player_id, "currency": profile.currency, "token": token, "game_id": game_id,
                "language": profile.language}
        status, data, resp = self._request("POST", "/launch", "launch", body)
        with resp:
            if status == 200 and isinstance(data, dict):
                resp.success()
                return str(data["session_id"]), int(data["balance"])
            code = data.get("code") if isinstance(data, dict) else None
            resp.failure(f"launch refused: {code or status}")
        self.c.error(f"{profile.player_id}: launch failed: {status} {data}")
        return None

    def _sit(self) -> None:
        c = self.c
        lobby = self._games()
        profile, rng = c.new_profile()
        kinds = {k for k in lobby if k in c.scenario.game_mix and c.scenario.game_mix[k] > 0}
        kind = c.floor.kind(rng, kinds)
        if kind is None:
            c.error("the provider's lobby has none of the scenario's game kinds")
            self.player, self.pause = None, RETRY_SEAT_S
            return
        try:
            self.admin.create_player(profile.player_id, profile.currency, profile.bankroll)
            token = self.admin.token(profile.player_id, c.scenario.session_ttl_s)
        except AdminFailed as exc:
            c.causes[exc.cause] += 1
            c.error(f"{profile.player_id}: {exc}")
            self.player, self.pause = None, RETRY_SEAT_S
            return
        launched = self._launch(profile, token, lobby[kind][0][0])
        if launched is None:
            self.player, self.pause = None, RETRY_SEAT_S
            return
        session_id, balance = launched
        c.seats[profile.player_id] = Seat(profile.player_id, "", currency(profile.currency), balance)
        self.player = Launched(profile, rng, session_id, balance, profile.bankroll, kinds=kinds)
        self.pause = 0.0

    def _relaunch(self, p: Launched) -> bool:
        try:
            token = self.admin.token(p.profile.player_id, self.c.scenario.session_ttl_s)
        except AdminFailed as exc:
            self.c.error(f"{p.profile.player_id}: relaunch failed: {exc}")
            return False
        kind = next(iter(sorted(p.kinds)))
        launched = self._launch(p.profile, token, _lobby[kind][0][0])
        if launched is None:
            return False
        p.session_id, p.balance = launched
        self.c.rounds["relaunched"] += 1
        return True

    def _leave(self) -> None:
        """Read the balance through the operator's books and reconcile it with what the rounds did."""
        p, self.player = self.player, None
        if p is None:
            return
        c, pid = self.c, p.profile.player_id
        try:
            balance = self.admin.balance(pid)
        except AdminFailed as exc:
            c.error(f"{pid}: final balance read failed: {exc}")
            return
        finally:
            c.retired.add(pid)
        if p.judged:
            c.ledger.open(pid, p.profile.currency, p.expected)
            c.ledger.reconcile(pid, Ok(Money(balance, currency(p.profile.currency))))
            c.publish_anomalies()
        c.retire(pid)

    def _report_calls(self, calls: list[dict[str, Any]]) -> None:
        """The provider's wallet calls of this round, as rows of type ``via-provider`` (its timings)."""
        fire = self.environment.events.request.fire
        for call in calls:
            outcome = str(call.get("outcome"))
            benign = outcome == "ok" or outcome in {str(c) for c in BENIGN}
            fire(request_type=VIA_PROVIDER, name=str(call.get("op")), response_time=float(call.get("latency_ms") or 0),
                 response_length=0, context={},
                 exception=None if benign else CatchResponseError(f"wallet answered the provider: {outcome}"))
            self.c.count_call(str(call.get("op")), outcome)

    @task
    def play(self) -> None:
        guarded(self, self._play)

    def _play(self) -> None:
        if self.player is None:
            if self.url:
                self._sit()
            return
        c, p, sc = self.c, self.player, self.c.scenario
        stake = choose_stake(p.profile, p.rng, p.balance)
        if stake is None:
            c.rounds["player_broke"] += 1
            self._leave()
            self._sit()
            return
        playable = {k for k in p.kinds if any(ms.get(p.profile.currency, 1) <= stake for _, ms in _lobby.get(k, []))}
        kind = c.floor.kind(p.rng, playable)
        if kind is None:
            c.rounds["stake_too_small"] += 1
            self.pause = c.floor.think(p.profile, p.rng)
            return
        status, data, resp = self._request("POST", "/play", "play", {"session_id": p.session_id, "stake": stake,
                                                                     "kind": kind}, auth=False)
        expired = False
        with resp:
            code = data.get("code") if isinstance(data, dict) else None
            if status == 200 and isinstance(data, dict):
                c.rounds[str(data.get("status"))] += 1
                p.expected += int(data.get("paid", 0)) - int(data.get("staked", 0))
                if data.get("balance") is not None:
                    p.balance = int(data["balance"])
                self._report_calls(data.get("calls", []))
                if data.get("status") == "unresolved":
                    p.judged = False
                    resp.failure("round unresolved: the wallet never answered")
                else:
                    resp.success()
            elif code == str(ErrorCode.SESSION_EXPIRED):
                c.rounds["refused"] += 1
                expired = True
                resp.success()
            elif 400 <= status < 500 and code:
                c.rounds["refused"] += 1  # a wallet refusal: the round was rolled back, nothing moved
                resp.failure(f"refused {code}")
            else:
                p.judged = False  # the provider or the wallet failed mid-round: its effect is unknown
                resp.failure(f"provider answered {status or 'nothing'}" + (f" ({code})" if code else ""))
        if expired and not self._relaunch(p):
            self._leave()
            self.pause = RETRY_SEAT_S
            return
        p.played += 1
        self.pause = c.floor.think(p.profile, p.rng)
        if sc.rounds is not None and p.played >= sc.rounds:
            self._leave()
            self._sit()

    def on_stop(self) -> None:
        if hasattr(self, "c"):
            finish_work(self)
            self._leave()
