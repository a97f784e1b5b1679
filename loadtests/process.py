"""One Locust process's share of a croupier run, and the event hooks that tie the processes together.

Every process that runs users (the local runner, or each worker) has one :class:`Croupier`:
the scenario, one :class:`~simulator.judge.ledger.Ledger` for all its players (each player belongs to
exactly one user, so ledgers never need to agree across processes), the dialects, counters,
and the players seated so far.  Its snapshot travels to the master with every statistics
report (Locust's ``report_to_master``), so the master's latest copy is always complete.

The end of a run, in order (a round is never abandoned half-way; nothing stays in doubt):

1. users are stopped (``--stop-timeout`` lets a round in progress finish); each user's
   ``on_stop`` settles its players' calls still in doubt and reads their balances once more;
2. the process's ``test_stop`` sweeps up what a user killed in its ``on_stop`` left;
3. distributed: when the master stops it asks every worker to finish (``croupier_finish``) and
   waits for each worker's final report before it lets Locust send ``quit``;
4. the master (or the local runner) builds the report at ``quitting``, checks the thresholds,
   writes ``--croupier-summary`` and sets Locust's exit code: 0 pass, 1 fail.

Interrupted (``croupier load`` got SIGINT or SIGTERM and sent the master SIGTERM): the same end —
Locust's SIGTERM handler fires ``quitting``, which stops the users first, so rounds finish, calls in
doubt are settled and the report is written (and Locust's HTML report, which Locust itself writes only
on a normal end).  A second interrupt reaches every Locust process as SIGUSR1 (and the workers as a
``croupier_hurry`` message): settlement is skipped, every bounded wait ends at once, and what was still
in doubt is counted as ``left_in_doubt`` — never flagged as the wallet's fault.

While the test runs, the master writes ``--croupier-progress`` (a small JSON file, once a second): calls,
users, failures, findings so far and the phase, for ``croupier load``'s live progress line.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import sys
import time
import urllib.request
import zlib
from collections import Counter
from typing import Any

import gevent
import greenlet
import orjson
from gevent.event import Event
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import CatchResponseError
from locust.runners import (
    STATE_CLEANUP,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)
from locust.stats import CSV_STATS_INTERVAL_SEC, StatsError

from simulator.drive import endgame, evidence
from simulator.drive.evidence import EvidenceFile
from simulator.drive.session import Floor
from simulator.drive.tls import ClientTLS
from simulator.judge.ledger import FAILING, Anomaly, Ledger
from simulator.play import gameplay
from simulator.play.faults import FaultPlan, LateDuplicates
from simulator.play.players import PlayerProfile, make_players
from simulator.play.rounds import Seat, TxIds, player_ids
from simulator.play.scenario import ScenarioError
from simulator.protocol import dialects
from simulator.protocol.money import CURRENCIES, currency

from . import provisioning, report, sampler, verdict
from . import settings as cfg
from .driver import GeventDriver
from .hurry import hurried, hurry, join_bounded

log = logging.getLogger("croupier.load")

FINISH = "croupier_finish"
HURRY = "croupier_hurry"
PROGRESS_EVERY_S = 1.0
MAX_ERRORS = 1000
current: Croupier | None = None
"""This process's share of the running test (None before the first test starts)."""


class AnomalyFound(CatchResponseError):
    """What an ``ANOMALY`` row's failures say (the evidence is in croupier's summary)."""


def anomaly_row(environment: Any, kind: str, error: AnomalyFound) -> None:
    """One finding as a failure in the ``ANOMALY`` row of its kind, and in Locust's failures table.

    A finding is not a request: it has no latency (logged as ``None``, so it touches no percentile) and
    it stays out of the Aggregated row, which counts the protocol's calls only (the exchange the finding
    was made on is already a failure in its own operation's row).  Locust's ``log_error`` would add it
    to the Aggregated row too, so the row and the failures table are written here directly; the
    worker-to-master statistics carry rows, the Aggregated row and the failures table separately, so
    this holds in distributed runs as well."""
    stats = environment.runner.stats
    row = stats.get(kind, verdict.ANOMALY_TYPE)
    row.log(None, 0)  # counted, without a response time
    row.log_error(error)
    key = StatsError.create_key(verdict.ANOMALY_TYPE, kind, error)
    failure = stats.errors.get(key)
    if failure is None:
        failure = stats.errors[key] = StatsError(verdict.ANOMALY_TYPE, kind, error)
    failure.occurred()


class Croupier:
    def __init__(self, environment: Any, settings: cfg.Settings) -> None:
        self.env = environment
        self.settings = settings
        self.scenario = settings.scenario
        self.dialect = dialects.get(settings.dialect, settings.secret)
        self.bad_dialect = dialects.get(settings.dialect, settings.secret + "-not-the-secret")
        for d in (self.dialect, self.bad_dialect):  # derive json-rsa's development keys before users start
            d.warm()
        self.semantics = dialects.semantics_of(self.dialect)
        """What the dialect's calls mean: the rounds play it and the ledger judges by it (as in ``croupier run``)."""
        runner = environment.runner
        self.node = f"w{runner.worker_index}" if isinstance(runner, WorkerRunner) else "local"
        self.evidence = self._open_evidence(settings.summary_path)
        """Where closed rounds' transactions go (None: dropped, their findings kept in the ledger)."""
        self.ledger = Ledger(max_evidence_per_kind=report.MAX_FINDINGS_PER_KIND, semantics=self.semantics,
                             keep_all=False, retired_to=self.evidence.write if self.evidence is not None else None)
        """Closed rounds leave it between a player's rounds (as in ``croupier run``): a soak of any length
        stays in constant memory."""
        self.owed_unpaid = 0
        """Wins and rollbacks refused SESSION_EXPIRED (allowed by the dialect) that could not be sent again."""
        self.floor = Floor(self.scenario, self.semantics, gameplay.signs(self.dialect, self.bad_dialect),
                           dialects.batching(self.dialect) is not None, self.scenario.session_ttl_s,
                           settings.wallet_url, settings.dialect)
        """What every player's session shares (as in ``croupier run``)."""
        self.calls: Counter[str] = Counter()
        self.results: Counter[str] = Counter()
        self.rounds: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.errors: list[str] = []
        self.causes: Counter[str] = Counter()
        """Why players could not be seated, by likely cause (the verdict's message when nobody was)."""
        self.seats: dict[str, Seat] = {}
        self.retired: set[str] = set()
        self.unsettled = 0
        self.final = False
        self.finished = Event()
        self.inflight: set[gevent.Greenlet] = set()
        """Rounds in progress, each in its own greenlet (see :func:`loadtests.users.guarded`)."""
        self._published = {k: 0 for k in Anomaly}
        self._counts_seen: tuple[int, ...] = ()
        """The ledger's counts when :meth:`publish_anomalies` last looked (a call that found nothing
        leaves them as they were: one tuple compared instead of a scan of every kind)."""
        self.late = LateDuplicates(self.scenario.faults) if self.scenario.faults.rates.late_duplicate > 0 else None
        """The provider's retry queue for ``late_duplicate`` (one per process: each player is one user's)."""
        self.sent = 0
        """Calls sent by this process (a late duplicate waits for a number of them)."""
        self._settle_ids: dict[str, TxIds] = {}
        self.provisioning = provisioning.Provisioning()
        self.settlement_skipped = False
        """A second interrupt cut this process's settlement short (players left unsettled, unreconciled)."""
        """The admin API's calls, kept out of Locust's statistics (see :mod:`loadtests.provisioning`)."""

    def _open_evidence(self, summary_path: str | None) -> EvidenceFile | None:
        """This process's evidence file beside the report (:func:`simulator.drive.evidence.of_node`); none
        without a report, or where the path cannot be written (a worker on another machine): then closed
        rounds are dropped and only the findings keep their calls."""
        if not summary_path:
            return None
        path = evidence.of_node(summary_path, self.node)
        try:
            return EvidenceFile(path)
        except OSError as exc:
            log.error("croupier: no evidence file %s (%s): closed rounds are dropped, findings keep their calls",
                      path, exc)
            return None

    # -- players ----------------------------------------------------------------------------
    def new_profile(self) -> tuple[PlayerProfile, random.Random]:
        """The next player of this process: a pure function of (seed, node, n), unique by its id."""
        n = next(_player_numbers)
        s = self.settings
        codes = list(self.scenario.currencies) if self.scenario.currencies else None
        # Only currencies the dialect's wire carries exactly (×100 000 or 2 decimals cannot carry a satoshi).
        carried = [c for c in (codes or list(CURRENCIES)) if dialects.carries(self.dialect, currency(c))]
        if codes is not None or len(carried) < len(CURRENCIES):
            codes = carried or codes
        seed = zlib.crc32(f"{s.seed}:{self.node}:{n}".encode())
        profile = make_players(seed, 1, currencies=[codes[n % len(codes)]] if codes else None,
                               id_prefix=f"{s.run_id}-{self.node}-{n}")[0]
        return profile, random.Random(f"{s.seed}:{self.node}:{n}")

    def settle_ids(self, player_id: str) -> TxIds:
        ids = self._settle_ids.get(player_id)
        if ids is None:
            ids = self._settle_ids[player_id] = player_ids(f"{player_id}-settle", self.semantics,
                                                           f"{self.settings.run_id}-{self.node}-settle")
        return ids

    def ids(self, player_id: str) -> TxIds:
        """A player's transaction and round ids (:func:`simulator.play.rounds.player_ids`: shared transaction
        ids where a ``tx_id`` is unique per player, as in ``croupier run``)."""
        return player_ids(player_id, self.semantics, f"{self.settings.run_id}-{self.node}")

    @property
    def hurried(self) -> bool:
        return hurried()

    @property
    def plan(self) -> FaultPlan:
        """The scenario's fault plan (the driver's :class:`~loadtests.driver.Process`)."""
        return self.scenario.faults

    @property
    def wallet_url(self) -> str:
        return self.settings.wallet_url

    # -- statistics -------------------------------------------------------------------------
    def count_call(self, op: str, result: str) -> None:
        self.calls[op] += 1
        self.results[f"{op}:{result}"] += 1

    def publish_anomalies(self) -> None:
        """A failure in the ``ANOMALY`` row of each money or contract kind, once per finding of the ledger
        (notes — choices the protocol allows — are counted in the summary, never as failures)."""
        seen = tuple(self.ledger.counts.values())
        if seen == self._counts_seen:
            return
        self._counts_seen = seen
        for kind, n in self.ledger.counts.items():
            if kind not in FAILING:
                continue
            while self._published[kind] < n:
                self._published[kind] += 1
                anomaly_row(self.env, str(kind), AnomalyFound(f"{kind} (evidence in croupier's summary)"))

    def snapshot(self) -> dict[str, Any]:
        return {
            "node": self.node, "final": self.final, "players": len(self.seats),
            "calls": dict(self.calls), "results": dict(self.results), "rounds": dict(self.rounds),
            "faults": dict(self.faults), "anomalies": {str(k): v for k, v in self.ledger.counts.items() if v},
            "findings": [f.to_json() for f in self.ledger.findings], "unsettled": self.unsettled,
            "errors": self.errors[:50], "causes": dict(self.causes), "coverage": self.ledger.coverage_json(),
            "provisioning": self.provisioning.to_json(),
            # A second interrupt skipped the settlement: the calls still in doubt (less those flagged before).
            "left_in_doubt": max(0, len(self.ledger.in_doubt()) - self.unsettled) if hurried() else 0,
            "settlement_skipped": self.settlement_skipped,
            "evidence": str(self.evidence.path) if self.evidence is not None else None,
        }

    # -- what the sessions count (simulator.drive.session.Board) --------------------------
    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)

    def seated(self, seat: Seat) -> None:
        self.seats[seat.player_id] = seat

    def unseated(self, player_id: str, cause: str, detail: str) -> None:
        self.causes[cause] += 1
        self.error(f"{player_id}: {cause}" + (f" ({detail})" if detail else ""))

    def unpaid(self, player_id: str, n: int) -> None:
        self.owed_unpaid += n
        self.error(f"{player_id}: {n} wins or rollbacks refused SESSION_EXPIRED (allowed by the dialect) not sent "
                   "again: no new session")

    # -- the end of a player ----------------------------------------------------------------
    def close(self, driver: GeventDriver, seats: dict[str, Seat]) -> None:
        """Players leave (:mod:`simulator.drive.endgame`, as ``croupier run`` ends): their late duplicates
        sent, their calls in doubt settled, their balances read once more and reconciled — unless a second
        interrupt asked to skip the settlement: then nothing is sent, and what they had in doubt is counted
        as left unsettled (never blamed on the wallet).  Their books are kept then: a round still in flight
        may yet answer, and must find its player's book as it was."""
        if not seats:
            return
        if hurried():
            self.settlement_skipped = True
            return
        driver.quiesce()
        driver.run(endgame.drain_late(driver.courier, list(seats)))
        self.unsettled += self.settle_in_doubt(driver, seats)
        for failed in driver.run(endgame.reconcile(driver.courier, seats.values())):
            self.error(failed)
        for pid in seats:
            self.retire(pid)

    def settle_in_doubt(self, driver: GeventDriver, seats: dict[str, Seat]) -> int:
        """Settle these players' calls still in doubt as a provider must (PROTOCOL.md), within the
        scenario's ``settle_timeout_s``; returns what is still in doubt (each a finding)."""
        deadline = time.monotonic() + self.scenario.settle_timeout_s
        done = driver.run(endgame.settle(driver.courier, seats, self.semantics, self.settle_ids, self.rounds,
                                         deadline, hurried))
        if hurried():  # a second interrupt: what is left is counted as left, not as the wallet's fault
            self.settlement_skipped = True
            return 0
        if not done and time.monotonic() >= deadline:
            self.error(f"settlement stopped at its deadline ({self.scenario.settle_timeout_s:g} s)")
        left = endgame.flag_left(driver.courier, seats)
        self.publish_anomalies()
        return left

    # -- the end ----------------------------------------------------------------------------
    def retire(self, player_id: str) -> None:
        """A player has left, settled and reconciled: forget its transactions (long runs stay small;
        its anomalies and their evidence are kept in the ledger's counts and findings)."""
        self.retired.add(player_id)
        book = self.ledger.books.get(player_id)
        if book is not None and not book.doubt:  # what stayed in doubt is counted as unsettled, and kept
            self.ledger.retire(player_id)  # its last rounds to the evidence file, as every earlier one
            del self.ledger.books[player_id]
            self._settle_ids.pop(player_id, None)

    def wait_inflight(self) -> None:
        """Let rounds in progress finish (bounded: every call has a timeout, retries a cap)."""
        if self.inflight:
            join_bounded(list(self.inflight), max(60.0, self.scenario.timeout_s * 10))

    def sweep(self) -> None:
        """Settle and reconcile the players no user's ``on_stop`` finished with."""
        self.wait_inflight()
        left = {pid: seat for pid, seat in self.seats.items() if pid not in self.retired}
        if left and hurried():
            self.settlement_skipped = True
        if left and not self.settings.provider_url and not hurried():
            http = FastHttpSession(None, self.env.events.request, None,
                                   network_timeout=self.scenario.timeout_s, connection_timeout=self.scenario.timeout_s,
                                   **cfg.fast_http_tls(self.settings.tls))
            self.close(GeventDriver(self, http), left)
        if self.evidence is not None:
            self.evidence.close()  # flushed before the final snapshot names it
        self.final = True
        self.finished.set()


_player_numbers = itertools.count()


def user_tls(user: Any) -> None:
    """Before a ``FastHttpUser``'s ``__init__`` builds its client: verify ``https://`` targets as the run's
    settings say (``--croupier-ca-bundle``...) rather than Locust's default of not verifying at all."""
    tls = current.settings.tls if current is not None else master.settings.tls if master is not None else None
    if tls is None:  # pragma: no cover - Locust fires test_start, which sets ``current``, before it spawns users
        tls = ClientTLS()
    for name, value in cfg.fast_http_tls(tls).items():
        setattr(user, name, value)


def require() -> Croupier:
    if current is None:  # pragma: no cover - Locust fires test_start before it spawns users
        raise RuntimeError("croupier: no test running in this process")
    return current


# -- the master's side ------------------------------------------------------------------
class Master:
    """What the master (or the local runner) gathers: workers' snapshots, the provider's findings."""

    def __init__(self, environment: Any, settings: cfg.Settings) -> None:
        self.env = environment
        self.settings = settings
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.provider_baseline: dict[str, int] | None = None
        self.provider_extra: dict[str, Any] = {"anomalies": {}, "findings": [], "errors": []}
        self.workers_seen: set[str] = set()
        self.phase = ""
        """What the test is doing, for the progress line: "" (playing), "settling…", "reporting…"."""
        self.started = time.monotonic()
        self.reported = False
        self.tests = 0
        """Tests started (in the web UI there may be none, or several)."""
        self.quit_while_running = False
        """Locust was told to quit while a test ran (an interruption), not after it ended."""

    def provider_report(self) -> dict[str, Any] | None:
        url = f"{self.settings.provider_url}/reports/anomalies"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.settings.provider_key}"})
        try:
            with urllib.request.urlopen(req, timeout=10, context=cfg.tls_context(self.settings.tls)) as resp:
                return orjson.loads(resp.read())  # type: ignore[no-any-return]
        except (OSError, ValueError) as exc:
            self.provider_extra["errors"].append(f"provider anomaly report unavailable: {exc}")
            return None

    def collect_provider(self) -> None:
        """What the provider's own ledger found during this run (counts since the start)."""
        if not self.settings.provider_url or self.provider_baseline is None:
            return
        data = self.provider_report()
        if data is None:
            return
        counts = {k: int(v) - self.provider_baseline.get(k, 0) for k, v in data.get("anomalies", {}).items()}
        counts = {k: v for k, v in counts.items() if v > 0}
        prefix = f"{self.settings.run_id}-"
        findings = [f for f in data.get("findings", []) if str(f.get("player_id", "")).startswith(prefix)]
        self.provider_extra = {"anomalies": counts, "findings": findings, "errors": self.provider_extra["errors"]}
        for kind, n in counts.items():
            for _ in range(n):
                anomaly_row(self.env, kind, AnomalyFound(f"{kind} (found by the provider's ledger)"))

    def wait_for_workers(self, runner: MasterRunner) -> None:
        """Ask every worker to finish (stop users, settle, reconcile) and wait for its final report."""
        ids = [c.id for c in runner.clients.values() if c.state != STATE_MISSING]
        for cid in ids:
            runner.send_message(FINISH, None, client_id=cid)
        deadline = time.monotonic() + (self.env.stop_timeout or 0) + 120
        hurried_at: float | None = None
        while time.monotonic() < deadline:
            if all(self.snapshots.get(cid, {}).get("final") for cid in ids):
                return
            if hurried() and hurried_at is None:  # the workers skip their settlement: a short wait for their word
                hurried_at = time.monotonic()
                for cid in ids:
                    runner.send_message(HURRY, None, client_id=cid)
                deadline = min(deadline, hurried_at + 10)
            gevent.sleep(0.1)
        missing = [cid for cid in ids if not self.snapshots.get(cid, {}).get("final")]
        log.error("croupier: no final report from %d worker(s); their last reports are used", len(missing))

    def stats(self) -> dict[str, Any]:
        st = self.env.runner.stats
        entries = [verdict.entry(e.method or "", e.name, e.num_requests, e.num_failures, e.response_times,
                                 e.total_response_time, e.max_response_time, e.min_response_time or 0.0)
                   for e in st.entries.values()]
        total = st.total
        duration = max(0.0, (total.last_request_timestamp or 0) - (total.start_time or 0))
        errors = [{"type": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
                  for e in st.errors.values()]
        return {"entries": entries, "duration_s": duration, "errors": errors}

    def finalize(self) -> dict[str, Any]:
        snaps = list(self.snapshots.values())
        if current is not None and not isinstance(self.env.runner, MasterRunner):
            snaps = [current.snapshot()]
        merged = report.merge_snapshots(snaps)
        extra = self.provider_extra
        for k, v in extra["anomalies"].items():
            merged["anomalies"][k] = merged["anomalies"].get(k, 0) + v
        merged["findings"].extend(extra["findings"][:report.MAX_FINDINGS_PER_KIND * 4])
        merged["errors"].extend(extra["errors"])
        s = self.settings
        runner = self.env.runner
        workers = len(self.workers_seen) if isinstance(runner, MasterRunner) else 0
        lost: list[str] = []
        if isinstance(runner, MasterRunner):  # a worker that joined but died before its first report counts too
            for cid in set(runner.clients) | set(self.snapshots):
                snap = self.snapshots.get(cid, {})
                if not snap.get("final"):
                    lost.append(str(snap.get("node") or cid))
        result = report.build(
            self.stats(), merged, s.thresholds, scenario=s.scenario.name,
            target=s.provider_url or s.wallet_url, seed=s.seed, run_id=s.run_id, workers=workers,
            topology="provider" if s.provider_url else "wallet", exceptions=len(runner.exceptions),
            fail_on=s.severity, series=sampler.series(), dialect=s.dialect, lost=lost)
        result["provisioning"] = provisioning.summary(provisioning.merge(snap.get("provisioning") for snap in snaps))
        result["left_in_doubt"] = sum(int(snap.get("left_in_doubt", 0)) for snap in snaps)
        result["settlement_skipped"] = any(bool(snap.get("settlement_skipped")) for snap in snaps)
        # each process's closed rounds, in its own file (as ``croupier run --workers``'s report names its workers')
        result["evidence"] = sorted(str(snap["evidence"]) for snap in snaps if snap.get("evidence"))
        for snap in snaps:
            node = result["nodes"].get(snap.get("node", "?"))
            if node is not None:
                node["evidence"] = snap.get("evidence")
        result["tests_started"] = self.tests
        result["quit_while_running"] = self.quit_while_running
        if not self.tests and result["verdict"] == "error":  # the web UI, closed before anyone pressed Start
            result["error"] = "no test was started (with --web, start one in Locust's web UI)"
            result["reasons"] = [result["error"]]
        return result

    def progress(self) -> dict[str, Any]:
        """The figures of the live progress line: protocol calls (provisioning and ANOMALY rows aside),
        their failures, users, findings so far (workers' as of their last report) and the phase."""
        runner = self.env.runner
        calls = failures = 0
        for e in runner.stats.entries.values():
            if e.method != verdict.ANOMALY_TYPE:
                calls += e.num_requests
                failures += e.num_failures
        snaps = list(self.snapshots.values())
        if current is not None and not isinstance(runner, MasterRunner):
            findings = sum(current.ledger.counts.values())
        else:
            findings = sum(sum(snap.get("anomalies", {}).values()) for snap in snaps)
        return {"t": round(time.monotonic() - self.started, 3), "state": runner.state, "users": runner.user_count,
                "calls": calls, "failures": failures, "findings": findings, "phase": self.phase}


def _write_progress(path: str) -> None:
    """The master's progress file, rewritten once a second (atomically: croupier load may read it any time)."""
    tmp = f"{path}.tmp"
    while True:
        gevent.sleep(PROGRESS_EVERY_S)
        if master is None:
            continue
        try:
            with open(tmp, "wb") as f:
                f.write(orjson.dumps(master.progress()))
            os.replace(tmp, path)
        except OSError as exc:  # a progress line is not worth failing a run for
            log.debug("croupier: progress file: %s", exc)


master: Master | None = None


# -- hooks ------------------------------------------------------------------------------
def on_init(environment: Any, user_classes: dict[str, Any]) -> None:
    """Wire croupier into Locust: choose the users, listen for the run's events."""
    global master
    runner = environment.runner
    options = environment.parsed_options
    if options is None:  # pragma: no cover - Locust as a library
        return
    if environment.host:  # the real target, also where the web UI lists the user classes
        for cls in user_classes.values():
            cls.host = environment.host
    if not isinstance(runner, WorkerRunner):
        try:
            settings = cfg.from_options(options, environment.host)
        except (ScenarioError, verdict.ThresholdError, ValueError) as exc:
            log.error("croupier: %s", exc)
            sys.exit(2)
        master = Master(environment, settings)
        _choose_users(environment, settings, user_classes)
        path = getattr(options, "croupier_progress", "")
        if path:
            gevent.spawn(_write_progress, path)
    gevent.signal_handler(signal.SIGUSR1, hurry)
    parent = os.environ.get("CROUPIER_PARENT_PID", "")
    if parent.isdigit():
        gevent.spawn(_orphan_watch, int(parent))
    _listen(environment)
    sampler.listen(environment, _call_type, lambda: _counters(environment))  # the report's per-second series


def _orphan_watch(parent: int) -> None:
    """``croupier load`` died without a word (SIGKILL, a crash): end this Locust process as if interrupted
    (its report still written), rather than run on orphaned — still playing against a wallet nobody is
    watching, still listening on the web UI's port."""
    while True:
        gevent.sleep(1.0)
        if os.getppid() != parent:
            log.warning("croupier: croupier load (pid %d) is gone: ending this Locust process", parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _choose_users(environment: Any, settings: cfg.Settings, user_classes: dict[str, Any]) -> None:
    """The scenario decides who plays, unless users were named on the command line."""
    if environment.parsed_options.user_classes:
        return
    sc = settings.scenario
    if settings.provider_url:
        chosen = [user_classes["ProviderPlayer"]]
        if sc.live.tables:
            log.warning("croupier: live tables are played on the wallet directly; through the provider they are skipped")
        if any(getattr(sc.faults.rates, n) for n in type(sc.faults.rates).names()):
            log.warning("croupier: the mock provider injects no faults; the scenario's [faults] apply to the wallet directly")
    else:
        chosen = []
        if sc.players or not sc.live.tables:
            chosen.append(user_classes["WalletPlayer"])
        if sc.live.tables:
            table = user_classes["LiveTable"]
            if chosen:
                table.fixed_count = sc.live.tables  # the rest of the users play alone
            chosen.append(table)
    environment.user_classes = chosen


def _call_type() -> str:
    """The statistics rows of croupier's calls: to the wallet, or through the provider."""
    provider = master is not None and bool(master.settings.provider_url)
    return "via-provider" if provider else "wallet"


def _counters(environment: Any) -> sampler.Counters:
    """croupier's results, faults and findings so far: this process's, or the workers' latest."""
    if isinstance(environment.runner, MasterRunner):
        results: Counter[str] = Counter()
        faults: Counter[str] = Counter()
        anomalies: Counter[str] = Counter()
        for snap in list(master.snapshots.values()) if master else []:
            results.update(snap.get("results", {}))
            faults.update(snap.get("faults", {}))
            anomalies.update(snap.get("anomalies", {}))
        return results, faults, anomalies
    if current is None:
        return {}, {}, {}
    return current.results, current.faults, {str(k): v for k, v in current.ledger.counts.items() if v}


def _listen(environment: Any) -> None:
    events = environment.events
    runner = environment.runner

    def test_start(environment: Any, **_: Any) -> None:
        global current
        if isinstance(runner, MasterRunner):
            assert master is not None
            try:
                master.settings = cfg.from_options(environment.parsed_options, environment.host)
            except (ScenarioError, ValueError) as exc:
                log.error("croupier: %s (keeping the previous settings)", exc)
            master.snapshots.clear()
            master.workers_seen.clear()
            master.phase = ""
            master.tests += 1
            if master.settings.provider_url:
                data = master.provider_report()
                master.provider_baseline = {k: int(v) for k, v in (data or {}).get("anomalies", {}).items()}
            return
        if master is not None:  # the local runner: the options may have changed in the web UI
            try:
                master.settings = cfg.from_options(environment.parsed_options, environment.host)
            except (ScenarioError, ValueError) as exc:
                log.error("croupier: %s (keeping the previous settings)", exc)
            settings = master.settings
            master.phase = ""
            master.tests += 1
        else:
            settings = cfg.from_options(environment.parsed_options, environment.host)
        current = Croupier(environment, settings)
        _size_users(environment, settings)
        if master is not None and settings.provider_url:
            data = master.provider_report()
            master.provider_baseline = {k: int(v) for k, v in (data or {}).get("anomalies", {}).items()}

    def test_stop(environment: Any, **_: Any) -> None:
        if master is not None:
            master.phase = "settling…"
        if isinstance(runner, MasterRunner):
            assert master is not None
            master.wait_for_workers(runner)
            master.collect_provider()
            return
        if current is not None:
            current.sweep()
            if master is not None:
                master.collect_provider()

    def report_to_master(client_id: str, data: dict[str, Any]) -> None:
        if current is not None:
            data["croupier"] = current.snapshot()

    def worker_report(client_id: str, data: dict[str, Any]) -> None:
        if master is not None and "croupier" in data:
            master.snapshots[client_id] = data["croupier"]
            master.workers_seen.add(client_id)

    def finish(environment: Any, msg: Any, **_: Any) -> None:
        """A worker, asked by the master to finish: stop users, settle, reconcile, report."""
        if runner.state not in (STATE_CLEANUP, STATE_STOPPING, STATE_STOPPED):
            runner.stop()
        if current is not None:
            deadline = time.monotonic() + (environment.stop_timeout or 0) + 90
            while not current.finished.wait(0.2) and time.monotonic() < deadline and not hurried():
                pass
            if hurried():
                current.finished.wait(5)  # a hurried sweep settles nothing: it ends at once
        send_stats = getattr(runner, "_send_stats", None)  # Locust's own flush of a worker's statistics
        if send_stats is not None:
            send_stats()  # the final report, with the final snapshot

    def hurry_message(environment: Any, msg: Any, **_: Any) -> None:
        hurry()

    def quitting(environment: Any, **_: Any) -> None:
        if isinstance(runner, WorkerRunner) or master is None or master.reported:
            return  # (on SIGTERM, Locust may run its shutdown twice: the report is made once)
        master.reported = True
        if runner.state in (STATE_SPAWNING, STATE_RUNNING):
            master.quit_while_running = True
            runner.stop()  # interrupted (web UI, SIGTERM): finish the test properly first
        master.phase = "reporting…"
        result = master.finalize()
        path = master.settings.summary_path
        if path:
            with open(path, "wb") as f:
                f.write(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        for r in result["thresholds"]:
            (log.info if r["passed"] else log.error)("croupier threshold %s", r["message"])
        anomalies = {k: v for k, v in result["anomalies"].items() if v}
        log.log(logging.INFO if result["verdict"] == "pass" else logging.ERROR,
                "croupier verdict: %s%s (anomalies: %s)", result["verdict"].upper(),
                f" — {', '.join(result['reasons'])}" if result["reasons"] else "", anomalies or "none")
        environment.process_exit_code = {"pass": 0, "fail": 1}.get(result["verdict"], 2)
        if getattr(environment.parsed_options, "csv_prefix", None):
            # Locust rewrites its CSV files once a second: let it write them once more, with the
            # final figures (the settlement's calls and the last anomalies came after its last write).
            gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.25)
        html = getattr(environment.parsed_options, "html_file", None)
        if html and greenlet.getcurrent().parent is not None:
            # Not in Locust's main greenlet: a SIGTERM's shutdown, after which Locust writes no HTML report.
            _save_html(environment, html)

    events.test_start.add_listener(test_start)
    events.test_stop.add_listener(test_stop)
    events.report_to_master.add_listener(report_to_master)
    events.worker_report.add_listener(worker_report)
    events.quitting.add_listener(quitting)
    if isinstance(runner, WorkerRunner):
        runner.register_message(FINISH, finish, concurrent=True)
        runner.register_message(HURRY, hurry_message, concurrent=True)


def _save_html(environment: Any, path: str) -> None:
    """Locust's HTML report, as Locust writes it at a normal end."""
    from locust.html import get_html_report

    try:
        text = get_html_report(environment, show_download_link=False)  # type: ignore[no-untyped-call]
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except (OSError, ValueError) as exc:
        log.error("croupier: Locust's HTML report could not be written to %s: %s", path, exc)


def _size_users(environment: Any, settings: cfg.Settings) -> None:
    """Timeouts and connection pools from the scenario (before this test's users are made)."""
    sc = settings.scenario
    for cls in environment.user_classes:
        cls.network_timeout = sc.timeout_s
        cls.connection_timeout = sc.timeout_s
        cls.concurrency = max(10, sc.faults.storm_size + 2, sc.live.seats + 2 if cls.__name__ == "LiveTable" else 0)
