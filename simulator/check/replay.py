"""``croupier replay FILE``: run a saved minimal sequence again, judged exactly as when it was found.

The file holds the sequence as steps (aliases and local ids, see :mod:`.checker`);
they run with a fresh id prefix, so a wallet that still holds the first run's
data sees new players and new transactions.  The verdict is the model's, as in
``croupier check``: the sequence still fails (exit 1) or now passes (exit 0).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import orjson

from .checker import Checker
from .protocol import Violation
from .report import REPLAY_VERSION
from .runner import CheckResult, Failure
from .target import CheckError, Connection, Target

STEP_KINDS = frozenset({"player", "account", "login", "reauth", "block", "deposit", "call", "raw", "race", "burst",
                        "check"})


def load(path: str | Path) -> dict[str, Any]:
    """A replay file, checked enough to fail with a clear message (CheckError) rather than half-way."""
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise CheckError(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CheckError(f"{path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("croupier_replay") != REPLAY_VERSION:
        raise CheckError(f"{path} is not a croupier replay file (version {REPLAY_VERSION})")
    steps = doc.get("steps")
    if not isinstance(steps, list) or not all(isinstance(s, dict) and s.get("kind") in STEP_KINDS for s in steps):
        raise CheckError(f"{path}: 'steps' must be a list of steps")
    return doc


def replay(doc: dict[str, Any], target: Target, strict_codes: bool = False) -> CheckResult:
    """Run the steps of ``doc`` once against ``target``."""
    result = CheckResult(target.describe(), examples=1)
    started = time.monotonic()
    if doc.get("players") == "admin" and not target.admin:
        result.errors.append("this sequence provisions players through the admin API: give --admin-url/--admin-token"
                             " instead of --players")
        return result
    if doc.get("players") == "accounts" and target.admin:
        result.errors.append("this sequence was found with test accounts: give --players FILE")
        return result
    if doc.get("dialect", "canonical") != target.dialect:
        result.errors.append(f"this sequence was found with the {doc.get('dialect')} dialect, not {target.dialect}")
        return result
    conn = None
    try:
        conn = Connection(target).open()
        ck = Checker(conn, f"rp{secrets.token_hex(3)}-", strict_codes)
        try:
            for step in doc["steps"]:
                ck.execute(step)
        except Violation as v:
            result.failures.append(Failure.from_violation(v))
    except CheckError as exc:
        result.errors.append(str(exc))
    except (KeyError, TypeError, ValueError) as exc:
        result.errors.append(f"the replay file has a step this version cannot run: {exc!r}")
    finally:
        if conn is not None:
            conn.close()
    result.elapsed_s = time.monotonic() - started
    result.stopped_by = "replayed"
    return result
