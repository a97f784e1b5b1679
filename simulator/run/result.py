"""A run's options, its result, and the machine-readable report (``--json``) made from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..drive.tls import ClientTLS
from ..judge.ledger import Ledger
from ..judge.stats import RunStats
from ..metrics.families import Metrics
from ..play.scenario import Scenario
from ..protocol.findings import Severity
from ..report import model, series
from .accounts import TestAccount
from .interruption import Interruption


@dataclass
class RunOptions:
    scenario: Scenario
    wallet_url: str
    secret: str
    dialect: str = "canonical"
    admin_url: str | None = None
    admin_token: str | None = None
    accounts: list[TestAccount] | None = None
    seed: int = 1
    run_id: str = "run"
    shard: tuple[int, int] = (0, 1)
    concurrency: int = 256
    on_tick: Callable[[RunStats, Ledger, float], None] | None = None
    fail_on: Severity = Severity.CONTRACT
    """Findings of this severity and worse fail the run (``--fail-on``)."""
    players_file: str | None = None
    """Where ``accounts`` came from (named in messages)."""
    tls: ClientTLS = field(default_factory=ClientTLS)
    """How an ``https://`` wallet is verified and which client certificate is shown (``--ca-bundle``...)."""
    evidence_path: str | None = None
    """Where closed rounds' transactions go, with every exchange of theirs (``--evidence``, JSON lines);
    None: they leave memory unwritten (no report was asked for)."""
    keep_all_evidence: bool = False
    """Keep every transaction in memory for the whole run (``--keep-all-evidence``, as before: memory
    grows with the calls; needed by ``--transactions``)."""
    metrics: Metrics | None = None
    """Count calls, faults, findings, rounds and players here while playing (``--metrics-listen``)."""


@dataclass
class RunResult:
    scenario: Scenario
    options: RunOptions
    stats: RunStats
    ledger: Ledger
    elapsed_s: float
    players: int
    unsettled: int
    provision_errors: list[str] = field(default_factory=list)
    unseated: int = 0
    """Players that could not be provisioned or authenticated (the run then checked fewer)."""
    error: str | None = None
    """Why the run could not test what it was asked to (the verdict is then ``error``), with the likely cause."""
    skipped: list[str] = field(default_factory=list)
    """What this run did not do, and why (no admin API, a dialect that cannot carry a currency...)."""
    settle_deadline_hit: bool = False
    interruption: Interruption | None = None
    """Set when the run was stopped by a signal (the report is then marked ``interrupted``)."""

    @property
    def counts(self) -> dict[str, int]:
        return {str(k): v for k, v in self.ledger.counts.items()}

    @property
    def verdict(self) -> str:
        return model.verdict(self.counts, self.options.fail_on, self.error)


def result_json(result: RunResult) -> dict[str, Any]:
    """The machine-readable report (``--json``)."""
    s = result.stats
    counts = result.counts
    fail_on = result.options.fail_on
    return {
        "verdict": result.verdict,
        "error": result.error,
        "fail_on": str(fail_on),
        "scenario": result.scenario.name,
        "wallet": result.options.wallet_url,
        "seed": result.options.seed,
        "run_id": result.options.run_id,
        "elapsed_s": round(result.elapsed_s, 3),
        "players": result.players,
        "calls": dict(s.calls),
        "batched": s.calls.get("batch", 0),
        "results": dict(s.results),
        "calls_per_s": round(sum(s.calls.values()) / result.elapsed_s, 1) if result.elapsed_s else 0.0,
        "rounds": dict(s.rounds),
        "faults": dict(s.faults),
        "latency_ms": {op: h.summary() for op, h in sorted(s.latency.items())},
        "findings_by_severity": model.by_severity(counts),
        "anomalies": counts,
        "findings": [f.to_json() for f in result.ledger.findings],
        "coverage": model.coverage_rows(result.ledger.coverage_json(), fail_on),
        "unsettled": result.unsettled,
        "unseated": result.unseated,
        "skipped": list(result.skipped),
        "errors": result.provision_errors[:50],
        "dialect": result.options.dialect,
        **_tls(result.options),
        "croupier_version": __version__,
        "series": series.build(s),
        **({"interrupted": result.interruption.to_json()} if result.interruption is not None else {}),
        **({"evidence": [result.options.evidence_path]}
           if result.options.evidence_path and not result.options.keep_all_evidence else {}),
    }


def _tls(options: RunOptions) -> dict[str, str]:
    """``tls``: how the wallet's certificate was checked, for an ``https://`` wallet or ``--insecure`` (the
    environment block says it, so a report made without verification never passes for one made with it)."""
    if options.tls.insecure or options.wallet_url.lower().startswith("https:"):
        return {"tls": options.tls.describe()}
    return {}
