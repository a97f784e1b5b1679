"""Faults the proxy injects on purpose into real traffic: what to do to one call, decided as data.

The proxy stands between a real provider and a real wallet, so its faults are the ones the network
and the provider's infrastructure produce, named as :mod:`simulator.play.faults` names them where
they mean the same:

- ``delay``: the call is forwarded late (``delay_ms``); a provider with a short deadline times out.
- ``lost_response``: forwarded, the wallet answers (and commits), the provider's connection is cut:
  it sees a reset, outcome unknown, and must roll back (a bet) or send again (a win, a rollback).
- ``duplicate``: the same request bytes again after the first answer (the provider reads the first).
- ``concurrent_duplicate``: the same request bytes twice at once.
- ``reorder``: held until a later call of the same player has been forwarded (at most ``hold_ms``),
  then forwarded: the rollback a provider sends for a timed-out bet overtakes it.
- ``server_error``: answered 5xx by the proxy without forwarding (``5xx`` in a file means the same).

Faults come from rates (per money call) or from rules (``[[faults.rules]]``: a fault for calls of one
operation or player, every n-th, at most n times).  The plan is pure: :meth:`ProxyFaults.decide`
takes the call and the seeded RNG; the server carries the decision out.  Signatures stay valid
because the proxy forwards the provider's bytes and never re-encodes them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from ..protocol.calls import MONEY_OPS, Op, WalletCall


class ProxyFault(StrEnum):
    DELAY = "delay"
    LOST_RESPONSE = "lost_response"
    DUPLICATE = "duplicate"
    CONCURRENT_DUPLICATE = "concurrent_duplicate"
    REORDER = "reorder"
    SERVER_ERROR = "server_error"


ALIASES: Final = {"5xx": ProxyFault.SERVER_ERROR, "timeout": ProxyFault.DELAY}
"""Other names a file or the control API may use (``timeout``: a delay past the provider's deadline)."""

SETTINGS: Final = {"delay_ms": (0, 600_000), "hold_ms": (0, 600_000), "status": (500, 599), "seed": (0, 2**63)}
"""The numeric settings beside the rates, with their bounds."""


class FaultConfigError(ValueError):
    """A ``[faults]`` table (file or control API) that cannot be used, naming the key at fault."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A fault for the calls that match: an operation and/or a player, every n-th of them, at most n times."""

    fault: ProxyFault
    op: Op | None = None
    player_id: str | None = None
    every: int = 1
    times: int | None = None

    def matches(self, call: WalletCall | None) -> bool:
        if call is None:
            return self.op is None and self.player_id is None
        if self.op is not None and call.op is not self.op:
            return False
        return self.player_id is None or call.player_id == self.player_id

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fault": str(self.fault), "every": self.every}
        if self.op is not None:
            out["op"] = str(self.op)
        if self.player_id is not None:
            out["player_id"] = self.player_id
        if self.times is not None:
            out["times"] = self.times
        return out


@dataclass(slots=True)
class ProxyFaults:
    """Rates and rules, with the counters the rules' ``every`` and ``times`` need."""

    rates: dict[ProxyFault, float] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    delay_ms: int = 1000
    hold_ms: int = 10_000
    status: int = 503
    seed: int | None = None
    _seen: list[int] = field(default_factory=list)
    _fired: list[int] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.rules) or any(self.rates.values())

    def decide(self, calls: Sequence[WalletCall], rng: random.Random) -> ProxyFault | None:
        """The fault for one request (None: forward it as it is), by the calls it carries (several: a batch,
        which a rule matches if any of its calls does; none: a request the dialect could not read).  Rules
        first, in order; then the rates, which apply to money calls only (a broken ``authenticate`` would
        stop the game, not test the wallet)."""
        if len(self._seen) != len(self.rules):
            self._seen = [0] * len(self.rules)
            self._fired = [0] * len(self.rules)
        for i, rule in enumerate(self.rules):
            if not (any(rule.matches(c) for c in calls) if calls else rule.matches(None)):
                continue
            if rule.times is not None and self._fired[i] >= rule.times:
                continue
            self._seen[i] += 1
            if self._seen[i] % rule.every == 0:
                self._fired[i] += 1
                return rule.fault
        if not self.rates or not any(c.op in MONEY_OPS for c in calls):
            return None
        draw = rng.random()
        for fault in ProxyFault:
            rate = self.rates.get(fault, 0.0)
            if draw < rate:
                return fault
            draw -= rate
        return None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {str(f): r for f, r in self.rates.items() if r}
        out.update(delay_ms=self.delay_ms, hold_ms=self.hold_ms, status=self.status)
        if self.seed is not None:
            out["seed"] = self.seed
        out["rules"] = [r.to_json() for r in self.rules]
        return out


def _fault(name: object, where: str) -> ProxyFault:
    if isinstance(name, str):
        if name in ALIASES:
            return ALIASES[name]
        try:
            return ProxyFault(name)
        except ValueError:
            pass
    known = ", ".join([*ProxyFault, *ALIASES])
    raise FaultConfigError(f"{where}: unknown fault {name!r} (known: {known})")


def _int(value: object, where: str, low: int, high: int | None = None) -> int:
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f"at least {low}"
        raise FaultConfigError(f"{where} must be an integer {bound}, got {value!r}")
    return value


def _rule(data: object, where: str) -> Rule:
    if not isinstance(data, Mapping):
        raise FaultConfigError(f"{where} must be a table (fault, op, player_id, every, times)")
    unknown = set(data) - {"fault", "op", "player_id", "every", "times"}
    if unknown:
        raise FaultConfigError(f"{where}: unknown key {min(unknown)} (known: fault, op, player_id, every, times)")
    if "fault" not in data:
        raise FaultConfigError(f"{where}: a rule needs a fault")
    op = data.get("op")
    if op is not None:
        try:
            op = Op(op)
        except ValueError:
            raise FaultConfigError(f"{where}.op: unknown operation {op!r} (known: {', '.join(Op)})") from None
    player = data.get("player_id")
    if player is not None and not isinstance(player, str):
        raise FaultConfigError(f"{where}.player_id must be a string")
    times = data.get("times")
    return Rule(_fault(data["fault"], f"{where}.fault"), op, player, _int(data.get("every", 1), f"{where}.every", 1),
                None if times is None else _int(times, f"{where}.times", 0))


def parse(data: object, where: str = "[faults]", base: ProxyFaults | None = None) -> ProxyFaults:
    """A ``[faults]`` table: rates by fault name (0..1, adding up to at most 1), ``delay_ms``, ``hold_ms``,
    ``status`` (of ``server_error``), ``seed`` and ``rules`` (a list of tables).  ``base``: the settings
    a partial table (the control API's) leaves as they were."""
    if not isinstance(data, Mapping):
        raise FaultConfigError(f"{where} must be a table")
    out = replace(base, rates=dict(base.rates), rules=list(base.rules), _seen=[], _fired=[]) if base \
        else ProxyFaults()
    for key, value in data.items():
        at = f"{where}.{key}"
        if key == "rules":
            if not isinstance(value, list):
                raise FaultConfigError(f"{at} must be a list of tables")
            out.rules = [_rule(r, f"{at}[{i}]") for i, r in enumerate(value)]
        elif key in SETTINGS:
            low, high = SETTINGS[key]
            setattr(out, key, _int(value, at, low, high))
        else:
            fault = _fault(key, where)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise FaultConfigError(f"{at} must be a rate from 0 to 1, got {value!r}")
            out.rates[fault] = float(value)
    if sum(out.rates.values()) > 1.0:
        raise FaultConfigError(f"{where}: fault rates add up to more than 1")
    return out
