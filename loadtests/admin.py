"""The reference wallet's admin API from a Locust process: players made and launch tokens issued.

Its HTTP session reports to the process's :class:`~loadtests.provisioning.Provisioning`, not to
Locust's statistics: provisioning is set-up, not the protocol under test.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

import orjson
from locust.contrib.fasthttp import FastHttpSession

from simulator.drive.delivery import Provision, Provisioned, Unseated
from simulator.judge.diagnosis import admin_cause
from simulator.play.rounds import Launch
from simulator.protocol.money import currency

from .process import Croupier
from .settings import fast_http_tls

ADMIN: Final = "admin"


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
                                         connection_timeout=timeout, concurrency=4,
                                         **fast_http_tls(settings.tls))
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
        return int(self.call("GET", f"/admin/players/{quote(player_id, safe='')}", "player")["balance"])
