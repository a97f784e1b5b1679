"""Scenario files: TOML, validated with errors that name the bad key.

The same file means the same thing to the asyncio runner and to the Locust
users.  Built-in scenarios live in the repository's ``scenarios/`` folder; each
documents itself in its leading comment block.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..protocol.money import CURRENCIES
from .faults import FaultPlan, FaultRates
from .rounds import RetryPolicy

GAME_KINDS: Final = ("slot", "roulette", "crash")


class ScenarioError(ValueError):
    """A scenario that cannot be run, with the file and key at fault."""


@dataclass(frozen=True, slots=True)
class LiveSettings:
    tables: int = 0
    seats: int = 10
    bets_per_player: int = 2
    window_ms: int = 200


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str = ""
    duration_s: float | None = 10.0
    rounds: int | None = None
    players: int = 10
    model: str = "closed"
    arrival_rate: float = 5.0
    currencies: tuple[str, ...] | None = None
    game_mix: Mapping[str, int] = field(default_factory=lambda: {"slot": 6, "roulette": 3, "crash": 1})
    session_ttl_s: int = 3600
    think_time_ms: tuple[int, int] | None = None
    timeout_s: float = 5.0
    settle_timeout_s: float = 60.0
    """The whole end-of-run settlement's deadline: what is still in doubt then is reported as such."""
    faults: FaultPlan = field(default_factory=FaultPlan)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    live: LiveSettings = field(default_factory=LiveSettings)
    path: str | None = None


def _num(low: float, high: float | None = None, *, integer: bool = False) -> Callable[[str, Any], Any]:
    def check(key: str, v: Any) -> Any:
        ok_type = type(v) is int if integer else (isinstance(v, (int, float)) and not isinstance(v, bool))
        if not ok_type or v < low or (high is not None and v > high):
            kind = "an integer" if integer else "a number"
            bound = f" from {low} to {high}" if high is not None else f" ≥ {low}"
            raise ScenarioError(f"{key} must be {kind}{bound}, got {v!r}")
        return v

    return check


def _pair(key: str, v: Any) -> tuple[int, int]:
    if not (isinstance(v, list) and len(v) == 2 and all(type(x) is int and x >= 0 for x in v) and v[0] <= v[1]):
        raise ScenarioError(f"{key} must be [low, high] integers with 0 ≤ low ≤ high, got {v!r}")
    return (v[0], v[1])


def _str(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ScenarioError(f"{key} must be a string")
    return v


def _model(key: str, v: Any) -> str:
    if v not in ("closed", "open"):
        raise ScenarioError(f"{key} must be \"closed\" or \"open\", got {v!r}")
    return str(v)


def _currencies(key: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not v or not all(isinstance(c, str) for c in v):
        raise ScenarioError(f"{key} must be a non-empty list of currency codes")
    unknown = [c for c in v if c not in CURRENCIES]
    if unknown:
        raise ScenarioError(f"{key}: unknown currency {', '.join(unknown)} (known: {', '.join(CURRENCIES)})")
    return tuple(v)


def _mix(key: str, v: Any) -> dict[str, int]:
    if not isinstance(v, dict) or not v:
        raise ScenarioError(f"{key} must be a table of game kind = weight")
    for kind, weight in v.items():
        if kind not in GAME_KINDS:
            raise ScenarioError(f"{key}.{kind}: unknown game kind (known: {', '.join(GAME_KINDS)}; live tables are [live])")
        if type(weight) is not int or weight < 0:
            raise ScenarioError(f"{key}.{kind} must be a non-negative integer weight")
    if not any(v.values()):
        raise ScenarioError(f"{key}: at least one weight must be positive")
    return dict(v)


SCHEMA: Final[dict[str, dict[str, Callable[[str, Any], Any]]]] = {
    "": {"name": _str, "description": _str},
    "run": {
        "duration_s": _num(0.1, 86400 * 7), "rounds": _num(1, integer=True), "players": _num(0, 1_000_000, integer=True),
        "model": _model, "arrival_rate": _num(0.01, 100_000), "session_ttl_s": _num(1, integer=True),
        "timeout_s": _num(0.01, 600), "settle_timeout_s": _num(0.1, 86400),
    },
    "players": {"currencies": _currencies, "think_time_ms": _pair},
    "games": {"mix": _mix},
    "faults": {**{name: _num(0.0, 1.0) for name in FaultRates.names()},
               "storm_size": _num(2, 1000, integer=True), "timeout_deadline_ms": _pair,
               "late_win_delay_s": _num(0.0, 86400), "late_duplicate_min_delay_s": _num(0.0, 86400),
               "late_duplicate_min_calls": _num(0, 100_000_000, integer=True)},
    "retry": {"max_attempts": _num(1, 1000, integer=True), "base_ms": _num(0, 60_000, integer=True),
              "cap_ms": _num(0, 600_000, integer=True)},
    "live": {"tables": _num(0, 1000, integer=True), "seats": _num(1, 10_000, integer=True),
             "bets_per_player": _num(1, 100, integer=True), "window_ms": _num(0, 60_000, integer=True)},
}


def parse(data: Mapping[str, Any], where: str) -> Scenario:
    """Validate a decoded TOML document into a :class:`Scenario`."""
    values: dict[str, dict[str, Any]] = {section: {} for section in SCHEMA}
    for key, value in data.items():
        if isinstance(value, dict) and key in SCHEMA and key:
            for sub, v in value.items():
                if sub not in SCHEMA[key]:
                    raise ScenarioError(f"{where}: unknown key {key}.{sub} (known: {', '.join(SCHEMA[key])})")
                try:
                    values[key][sub] = SCHEMA[key][sub](f"{key}.{sub}", v)
                except ScenarioError as exc:
                    raise ScenarioError(f"{where}: {exc}") from None
        elif key == "load" and isinstance(value, dict):
            continue  # Locust's table (users, shape, thresholds): validated by loadtests/settings.py
        elif key in SCHEMA[""]:
            values[""][key] = SCHEMA[""][key](key, value)
        else:
            raise ScenarioError(f"{where}: unknown key {key} (sections: {', '.join(s for s in SCHEMA if s)})")
    run, f, r, lv = values["run"], values["faults"], values["retry"], values["live"]
    try:
        rates = FaultRates(**{k: float(v) for k, v in f.items() if k in FaultRates.names()})
    except ValueError as exc:
        raise ScenarioError(f"{where}: [faults] {exc}") from None
    plan = FaultPlan(rates, storm_size=f.get("storm_size", 8), timeout_deadline_ms=f.get("timeout_deadline_ms", (0, 3)),
                     late_win_delay_s=float(f.get("late_win_delay_s", 0.0)),
                     late_duplicate_min_delay_s=float(f.get("late_duplicate_min_delay_s", 0.0)),
                     late_duplicate_min_calls=f.get("late_duplicate_min_calls", 0))
    retry = RetryPolicy(r.get("max_attempts", 8), r.get("base_ms", 20) / 1000, r.get("cap_ms", 1000) / 1000)
    if "duration_s" not in run and "rounds" not in run:
        run["duration_s"] = 10.0
    name = values[""].get("name") or Path(where).stem
    return Scenario(
        name=name, description=values[""].get("description", ""),
        duration_s=run.get("duration_s"), rounds=run.get("rounds"), players=run.get("players", 10),
        model=run.get("model", "closed"), arrival_rate=float(run.get("arrival_rate", 5.0)),
        currencies=values["players"].get("currencies"), game_mix=values["games"].get("mix") or {"slot": 6, "roulette": 3, "crash": 1},
        session_ttl_s=run.get("session_ttl_s", 3600), think_time_ms=values["players"].get("think_time_ms"),
        timeout_s=float(run.get("timeout_s", 5.0)), settle_timeout_s=float(run.get("settle_timeout_s", 60.0)),
        faults=plan, retry=retry, live=LiveSettings(**lv), path=where,
    )


def search_path() -> list[Path]:
    paths: list[Path] = []
    if env := os.environ.get("CROUPIER_SCENARIOS"):
        paths.extend(Path(p) for p in env.split(os.pathsep) if p)
    paths.append(Path.cwd() / "scenarios")
    paths.append(Path(__file__).resolve().parents[2] / "scenarios")
    seen: list[Path] = []
    for p in paths:
        if p not in seen:
            seen.append(p)
    return seen


def find(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or os.sep in name_or_path:
        if p.is_file():
            return p
        raise ScenarioError(f"no scenario file {name_or_path}")
    for folder in search_path():
        candidate = folder / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(builtin())) or "none found"
    raise ScenarioError(f"no scenario named {name_or_path!r} (known: {known})")


def load(name_or_path: str) -> Scenario:
    path = find(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, str(path))


def builtin() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in search_path():
        if folder.is_dir():
            for f in sorted(folder.glob("*.toml")):
                found.setdefault(f.stem, f)
    return found


def header(path: Path) -> str:
    """The leading comment block of a scenario file: its documentation."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            lines.append(line.lstrip("#").strip())
        elif line.strip():
            break
    return "\n".join(lines).strip()


def description(path: Path) -> str:
    """A scenario's documentation as one paragraph per blank-line-separated block, its leading
    ``name:`` dropped (the listing shows the name beside it)."""
    text = header(path)
    name = path.stem
    if text.startswith(f"{name}:"):
        text = text[len(name) + 1:].lstrip()
    paragraphs = [" ".join(block.split()) for block in text.split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def summary(s: Scenario) -> dict[str, Any]:
    """What a run of ``s`` is, in numbers: duration or rounds, players (the open model's arrival rate, a live
    table's seats), for ``croupier scenarios`` and its ``--json``."""
    return {"duration_s": s.duration_s, "rounds": s.rounds, "players": s.players, "model": s.model,
            "arrival_rate": s.arrival_rate if s.model == "open" else None,
            "live_tables": s.live.tables, "live_seats_per_table": s.live.seats if s.live.tables else 0}


def shape_text(s: Scenario) -> str:
    """``20 s · 40 players`` — the line under a scenario's name in ``croupier scenarios``."""
    length = []
    if s.duration_s is not None:
        length.append(f"{s.duration_s:g} s")
    if s.rounds is not None:
        length.append(f"{s.rounds} rounds per player")
    who = []
    if s.model == "open":
        who.append(f"players arriving at {s.arrival_rate:g}/s, one session each")
    elif s.players:
        who.append(f"{s.players} players")
    if s.live.tables:
        who.append(f"{s.live.tables} live table{'s' if s.live.tables > 1 else ''} × {s.live.seats} seats")
    return " · ".join([" or ".join(length) or "no time limit", ", ".join(who) or "no players"])


_UNIT = re.compile(r"(\d) (s|ms|%|×)(?=\W|$)")


def listing(width: int = 100) -> tuple[str, dict[str, dict[str, Any]]]:
    """``croupier scenarios``: the text (each name, its duration and players, then its whole description
    wrapped at ``width`` — never cut) and the same as JSON-able data.  A file that does not load is listed
    with why, not skipped: a user who added one wants to know."""
    import textwrap

    out: list[str] = []
    data: dict[str, dict[str, Any]] = {}
    for name, path in builtin().items():
        text = description(path)
        try:
            s = load(str(path))
        except (ScenarioError, OSError, UnicodeDecodeError) as exc:
            data[name] = {"description": text, "error": str(exc), "path": str(path)}
            out.append(f"{name}  (cannot be played: {exc})")
            continue
        data[name] = {"description": text, **summary(s), "path": str(path)}
        out.append(f"{name}  ({shape_text(s)})")
        for paragraph in text.split("\n\n"):
            glued = _UNIT.sub("\\1\u00a0\\2", paragraph)  # "4.5 s" never split over two lines
            out.extend(line.replace("\u00a0", " ") for line in textwrap.wrap(
                glued, width=max(40, width), initial_indent="    ", subsequent_indent="    ",
                break_on_hyphens=False) or [""])
        out.append("")
    return "\n".join(out).rstrip() + "\n", data
