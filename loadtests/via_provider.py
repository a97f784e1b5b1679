"""Players through the mock provider, the real topology: player → provider → wallet.

:class:`ProviderPlayer` launches a game on the mock provider (``POST /launch``) and plays it (``POST
/play``); the provider calls the wallet and judges its answers with its own ledger, which the master
reads at the end.  Leaving, a player's balance is read through the operator's books and reconciled
with what the provider said its rounds did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from locust import FastHttpUser, task
from locust.exception import CatchResponseError

from simulator.drive.delivery import BENIGN
from simulator.play.players import PlayerProfile, choose_stake
from simulator.play.rounds import Seat
from simulator.protocol.calls import Ok
from simulator.protocol.codes import ErrorCode
from simulator.protocol.money import Money, currency

from . import process
from .admin import Admin, AdminFailed
from .users import PLACEHOLDER_HOST, RETRY_SEAT_S, finish_work, guarded

PROVIDER: Final = "provider"
VIA_PROVIDER: Final = "via-provider"

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
        process.user_tls(self)
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
