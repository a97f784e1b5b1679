"""The ledger in constant memory: what a closed round leaves behind, and what it may not lose.

1. For any seed, fault rates and broken wallet, a ledger that drops its players' closed rounds
   (:meth:`simulator.judge.ledger.Ledger.retire`, their records to an evidence sink) reports the same
   findings, counts and balances as one keeping every transaction (Hypothesis).
2. A finding made after a round closed (a late duplicate answered other than its original) still
   cites the original exchange, and the retired transactions' records carry their evidence.
3. The memory the ledger holds after N closed rounds does not grow with N (tracemalloc).
"""

from __future__ import annotations

import dataclasses
import gc
import random
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.drive import session
from simulator.drive.inprocess import InProcessClient, InProcessWallet, SyncDriver
from simulator.judge import journal
from simulator.judge.ledger import Anomaly, Finding, Ledger, _seen_json, render
from simulator.play.faults import LateDuplicates
from simulator.play.players import make_players
from simulator.protocol.calls import Ok, WalletCall
from simulator.protocol.money import currency
from simulator.report.html import render as render_html
from simulator.run.result import result_json
from simulator.run.runner import run

from .broken_wallets import make_broken_app, serve_app
from .test_rounds_ledger import DoubleApplyReplay, IgnoresRoundClosed, NoTombstone, SecondRollbackRefunds
from .test_runner import _broken_scenario, explain, options
from .test_session import SECRET, Table, _plan, _scenario

WALLETS: list[type[InProcessWallet]] = [InProcessWallet, DoubleApplyReplay, NoTombstone, SecondRollbackRefunds,
                                        IgnoresRoundClosed]


@dataclasses.dataclass
class ForgetsReplays(InProcessWallet):
    """Answers a replay with a new wallet_tx_id: each duplicate, late ones too, contradicts its original."""

    seen: set[str] = dataclasses.field(default_factory=set)

    def execute(self, call: WalletCall, now: float) -> Any:
        out = super().execute(call, now)
        if isinstance(out, Ok) and call.tx_id in self.seen:
            return dataclasses.replace(out, wallet_tx_id=f"again-{out.wallet_tx_id}")
        if call.tx_id:
            self.seen.add(call.tx_id)
        return out


def _play(wallet_cls: type[InProcessWallet], rates: dict[str, float], seed: int, ledger: Ledger,
          rounds: int = 10) -> tuple[Table, SyncDriver]:
    """Two players' sessions and the end of play (:mod:`tests.test_session`'s world) on ``ledger``."""
    t = Table("canonical", _plan(rates=rates))
    t.wallet = wallet_cls(SECRET, wire=t.wallet.wire)
    t.ledger = ledger
    driver = SyncDriver(InProcessClient(t.wallet, t.good), t.ledger, InProcessClient(t.wallet, t.bad), plan=t.plan,
                        late=LateDuplicates(t.plan), provision=t.provision)
    scenario = _scenario(t.plan, rounds=rounds)
    for n, p in enumerate(make_players(seed, 2, currencies=("EUR",), id_prefix="s")):
        driver.run(session.player(driver.courier, t.floor(scenario), t.board, p, random.Random(seed + n), t.ids,
                                  scenario.rounds))
    for flow in t.end(driver.courier, t.board.seats):
        driver.run(flow)
    return t, driver


def _shown(f: Finding) -> tuple[Any, ...]:
    """A finding as the report shows it, but for the timings (measured, never the same twice)."""
    return (f.kind, f.player_id, f.message, f.rule,
            [dataclasses.replace(e, latency_ms=None) for e in f.evidence])


class KeepsAll(Ledger):
    """The ledger as it was: nothing ever leaves it."""

    def retire(self, player_id: str, keep: Any = ()) -> int:
        return 0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), wallet=st.sampled_from(WALLETS),
       late=st.sampled_from([0.0, 0.3]), invalid=st.sampled_from([0.0, 0.6]), reorder=st.sampled_from([0.0, 0.3]))
def test_dropping_closed_rounds_changes_no_finding(seed: int, wallet: type[InProcessWallet], late: float,
                                                   invalid: float, reorder: float) -> None:
    rates = {"late_duplicate": late, "invalid": invalid, "reorder": reorder}
    records: list[dict[str, Any]] = []
    kept = _play(wallet, rates, seed, KeepsAll())[0].ledger
    dropped = _play(wallet, rates, seed, Ledger(keep_all=False, retired_to=records.append))[0].ledger
    assert [_shown(f) for f in dropped.findings] == [_shown(f) for f in kept.findings]
    assert dropped.counts == kept.counts
    assert dropped.coverage_json() == kept.coverage_json()
    assert {p: b.expected for p, b in dropped.books.items()} == {p: b.expected for p, b in kept.books.items()}
    assert dropped.retired_n == len(records) > 0
    held = sum(len(b.txs) for b in dropped.books.values())
    assert held < sum(len(b.txs) for b in kept.books.values())


def test_a_late_duplicate_after_its_round_closed_still_cites_the_original() -> None:
    records: list[dict[str, Any]] = []
    quiet = {k: 0.0 for k in ("duplicate", "concurrent_duplicate", "timeout", "lost_response", "retry_storm",
                              "partial_batch", "reorder", "late_win", "invalid")}
    t, driver = _play(ForgetsReplays, quiet | {"late_duplicate": 0.5}, 3,
                      Ledger(keep_all=False, retired_to=records.append), rounds=12)
    ledger = t.ledger
    late = {s.call.tx_id for s, _ in driver.sent if s.purpose.startswith("late")}
    found = [f for f in ledger.findings if f.kind is Anomaly.REPLAY_CONTRADICTS_ORIGINAL]
    assert late and found, ledger.findings[:3]
    assert {f.evidence[0].call["tx_id"] for f in found} <= late  # only late duplicates were replayed
    for f in found:
        original, replay = f.evidence
        assert original.call["tx_id"] == replay.call["tx_id"]
        assert original.outcome.startswith("ok") and "again-" not in original.outcome and "again-" in replay.outcome
    assert records and all(r["evidence"] and r["evidence"][0]["call"]["tx_id"] == r["tx_id"] for r in records)
    assert {r["state"] for r in records} >= {"applied"}


def _held_after(rounds: int) -> int:
    """Bytes the ledger holds after ``rounds`` closed rounds of one player (a bet and its win each)."""
    eur = currency("EUR")
    gc.collect()
    tracemalloc.start()
    ledger = Ledger(keep_all=False)
    ledger.open("p", "EUR", 10**12)
    balance = 10**12
    for i in range(rounds):
        for call in (WalletCall.bet(f"t{i}b", "p", "s", "g", f"r{i}", _money(100, eur)),
                     WalletCall.win(f"t{i}w", "p", "s", "g", f"r{i}", _money(40, eur), round_closed=True)):
            token = ledger.begin(call)
            balance += -100 if call.tx_id and call.tx_id.endswith("b") else 40
            ledger.end(token, call, Ok(_money(balance, eur), wallet_tx_id=f"w{call.tx_id}"), latency_ms=1.0,
                       status=200, response=b'{"status":"ok"}')
        ledger.retire("p")
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert ledger.retired_n == 2 * rounds and ledger.anomaly_count == 0
    return held


def _money(minor: int, cur: Any) -> Any:
    from simulator.protocol.money import Money
    return Money(minor, cur)


def test_memory_held_does_not_grow_with_closed_rounds() -> None:
    small, large = _held_after(2_000), _held_after(4_000)
    # Kept whole, 2,000 more rounds would hold ~1.2 MB more (~314 bytes per call); allow a few KB of noise.
    assert large - small < 16_384, (small, large)


def test_a_ledger_keeping_all_still_moves_closed_rounds_aside() -> None:
    ledger = Ledger()
    ledger.open("p", "EUR", 1_000)
    eur = currency("EUR")
    bet = WalletCall.bet("t1", "p", "s", "g", "r1", _money(100, eur))
    ledger.end(ledger.begin(bet), bet, Ok(_money(900, eur), wallet_tx_id="w1"))
    assert ledger.retire("p") == 1
    assert not ledger.books["p"].txs and set(ledger.books["p"].retired) == {"t1"}
    assert [(r["tx_id"], r["state"]) for r in journal.records(ledger)] == [("t1", "applied")]  # --transactions


async def test_a_run_writes_its_evidence_file_and_its_findings_still_cite_closed_rounds(tmp_path: Path) -> None:
    """``croupier run`` against a wallet that forgets its tx_ids, late duplicates on: the late replays are
    judged (applied again, or refused: a replay is answered as the original) after the rest of their
    rounds left memory for the evidence file, and each finding still shows the original exchange."""
    sc = _broken_scenario("late-duplicates", rounds=8, players=3, late_duplicate=0.5, timeout=0.0,
                          late_duplicate_min_delay_s=0.0)
    sc = dataclasses.replace(sc, faults=dataclasses.replace(sc.faults, late_duplicate_min_calls=4))
    path = tmp_path / "report.evidence.jsonl"
    async with serve_app(make_broken_app("forgets_tx_ids")) as base:
        result = await run(dataclasses.replace(options(sc, base, run_id="ev"), evidence_path=str(path)))
    report = result_json(result)
    assert report["evidence"] == [str(path)] and str(path) in render_html(report)
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert records and len(records) == result.ledger.retired_n
    retired_rounds = {r["round_id"] for r in records}
    replays = [f for f in result.ledger.findings
               if f.kind in (Anomaly.DOUBLE_APPLY, Anomaly.REPLAY_CONTRADICTS_ORIGINAL)]
    assert replays, explain(result)
    closed = [f for f in replays if f.evidence[0].call.get("round_id") in retired_rounds]
    assert closed, [f.message for f in replays]  # a round gone from memory, its replay still judged
    for f in closed:
        original, replay = f.evidence[:2]
        assert original.call == replay.call and original.outcome.startswith("ok") and original.outcome != replay.outcome


def test_an_evidence_line_shows_an_exchange_as_a_finding_does() -> None:
    eur = currency("EUR")
    bet = WalletCall.bet("t1", "p", "s", "g", "r1", _money(100, eur))
    seen = (bet, Ok(_money(900, eur), wallet_tx_id="w1"), 1.23456, 200, b'{"status":"ok"}', True)
    assert _seen_json(seen) == dataclasses.asdict(render(seen))


def test_the_evidence_file_goes_beside_the_first_report_and_one_per_worker() -> None:
    from argparse import Namespace

    from simulator.commands.runcmd import _evidence_path
    from simulator.drive.evidence import shard_path

    def args(**kw: Any) -> Namespace:
        return Namespace(**({"evidence_path": None, "json_path": None, "html_path": None, "junit_path": None} | kw))

    assert _evidence_path(args(json_path="out/run.json", html_path="x/run.html")) == "out/run.evidence.jsonl"
    assert _evidence_path(args(junit_path="run.xml")) == "run.evidence.jsonl"
    assert _evidence_path(args(evidence_path="e.jsonl", json_path="r.json")) == "e.jsonl"
    assert _evidence_path(args()) is None
    assert shard_path("out/run.evidence.jsonl", (2, 4)) == "out/run.evidence.2.jsonl"
    assert shard_path("e.jsonl", (0, 1)) == "e.jsonl"


def test_an_evidence_file_named_gz_is_compressed_as_written_and_reads_back(tmp_path: Path) -> None:
    """A soak's evidence in gzip: the same lines, a fraction of the bytes; tags go before both suffixes."""
    import gzip

    from simulator.drive.evidence import EvidenceFile, of_node, shard_path

    record = {"tx_id": "t", "player_id": "p", "exchanges": [{"call": {"op": "bet", "amount": 100}, "answer": "ok"}]}
    plain, packed = EvidenceFile(tmp_path / "e.jsonl"), EvidenceFile(tmp_path / "e.jsonl.gz")
    for i in range(2000):
        for f in (plain, packed):
            f.write({**record, "tx_id": f"t{i}"})
    plain.close()
    packed.close()
    with gzip.open(tmp_path / "e.jsonl.gz", "rb") as z:
        assert z.read() == (tmp_path / "e.jsonl").read_bytes()
    assert (tmp_path / "e.jsonl.gz").stat().st_size * 5 < (tmp_path / "e.jsonl").stat().st_size
    assert shard_path("o/r.evidence.jsonl.gz", (2, 3)) == "o/r.evidence.2.jsonl.gz"
    assert shard_path("o/r.evidence.jsonl", (2, 3)) == "o/r.evidence.2.jsonl"
    assert of_node("o/summary.json", "w0") == "o/summary.evidence.w0.jsonl"
