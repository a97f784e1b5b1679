"""The per-second series of a report (``report["series"]``): built from RunStats (run) and from the
Locust master's readings (load), merged across ``--workers`` shards exactly, adding up to the totals."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from loadtests import report as load_report
from simulator.judge.stats import RunStats
from simulator.report import series

OPS = ("authenticate", "bet", "win", "rollback", "balance", "batch")
RESULTS = ("ok", "ok", "ok", "unknown", "INSUFFICIENT_FUNDS", "INVALID_SIGNATURE", "ROUND_CLOSED")
T0 = 1_796_000_000.0

calls = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(OPS), st.sampled_from(RESULTS),
                           st.floats(0.0, 5_000.0, allow_nan=False), st.integers(0, 40)), max_size=120)
events = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["timeout", "duplicate", "double_apply", "lost_update"]),
                            st.integers(0, 40)), max_size=30)


def _feed(stats: RunStats, rows: list[tuple[int, str, str, float, int]], evs: list[tuple[int, str, int]]) -> None:
    for _, op, result, ms, second in rows:
        stats.record(op, result, ms, second)
    for _, kind, second in evs:
        if kind in ("timeout", "duplicate"):
            stats.fault(kind, second=second)
        else:
            stats.anomaly(kind, second=second)


@given(calls, events, st.one_of(st.none(), st.integers(0, 40)))
def test_merged_shards_give_the_series_of_one_process_that_saw_everything(
        rows: list[tuple[int, str, str, float, int]], evs: list[tuple[int, str, int]], settling: int | None) -> None:
    whole = RunStats(t0=T0, settling_from=settling)
    _feed(whole, rows, evs)
    shards = [RunStats(t0=T0, settling_from=settling) for _ in range(4)]
    for k, shard in enumerate(shards):
        _feed(shard, [r for r in rows if r[0] == k], [e for e in evs if e[0] == k])
    merged = RunStats()
    for shard in shards:  # through JSON, as --workers does
        merged.merge(RunStats.from_json(shard.to_json()))
    assert series.build(merged) == series.build(whole)


@given(calls, events)
def test_counts_add_up_to_the_totals(rows: list[tuple[int, str, str, float, int]],
                                     evs: list[tuple[int, str, int]]) -> None:
    stats = RunStats(t0=T0)
    _feed(stats, rows, evs)
    got = series.build(stats)
    assert series.valid(got)
    assert series.totals(got, "calls") == {op: n for op, n in stats.calls.items() if n}
    assert series.totals(got, "faults") == dict(stats.faults)
    refused = Counter(r for _, _, r, _, _ in rows if r not in ("ok", "unknown"))
    assert series.totals(got, "refusals") == dict(refused)
    assert series.totals(got, "anomalies") == dict(Counter(k for _, k, _ in evs if k not in ("timeout", "duplicate")))
    for op, lat in got["latency_ms"].items():  # a latency exactly where there were calls, p50 <= p99
        for n, p50, p99 in zip(got["calls"][op], lat["p50"], lat["p99"], strict=True):
            assert (p50 is None) == (n == 0) and (p99 is None) == (n == 0)
            assert p50 is None or p99 is None or p50 <= p99


def test_shards_started_at_different_times_line_up_on_the_wall_clock() -> None:
    early, late = RunStats(t0=T0), RunStats(t0=T0 + 2.0)
    early.record("bet", "ok", 1.0, 0)
    late.record("bet", "ok", 1.0, 0)  # its second 0 is the early shard's second 2
    late.settling_from = 3
    for a, b in ((early, late), (late, early)):  # whichever merges first
        merged = RunStats()
        merged.merge(RunStats.from_json(a.to_json()))
        merged.merge(RunStats.from_json(b.to_json()))
        got = series.build(merged)
        assert got["calls"]["bet"] == [1, 0, 1, 0, 0, 0] and got["settling_from"] == 5
        assert got["t0"] == series.iso_utc(T0) and got["seconds"] == list(range(6))


def test_the_shape_of_an_empty_run_and_of_the_contract() -> None:
    got = series.build(RunStats())
    assert list(got) == list(series.KEYS) and got["seconds"] == [] and got["t0"] is None
    assert series.valid(got) and series.valid(series.empty())
    assert not series.valid({"seconds": [0, 2]}) and not series.valid(None)
    stats = RunStats(t0=T0)
    stats.record("bet", "ok", 12.5, 2)
    got = series.build(stats)
    assert got["t0"] == "2026-11-30T00:53:20Z" and got["seconds"] == [0, 1, 2]
    assert got["calls"] == {"bet": [0, 0, 1]}
    assert got["latency_ms"]["bet"]["p50"][:2] == [None, None] and 12.0 <= got["latency_ms"]["bet"]["p50"][2] <= 12.5


# -- load: the master's readings ---------------------------------------------------------------------
readings = st.lists(st.tuples(st.sampled_from(("bet", "win")), st.integers(1, 200), st.sampled_from(("ok", "ROUND_CLOSED")),
                              st.sampled_from(("timeout", "duplicate", None))), max_size=60)


@given(readings, st.integers(1, 6), st.integers(1, 4))
def test_load_steps_add_up_to_the_last_cumulative_reading(calls_: list[tuple[str, int, str, str | None]],
                                                          every: int, spread: int) -> None:
    """The sampler's steps (differences of cumulative readings) add up to what Locust counted in all,
    spread over the empty seconds before them (a distributed run's bursts) or not."""
    rows: dict[str, tuple[int, int, Counter[int]]] = {}
    results: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    steps: list[tuple[int, dict[str, Any]]] = []
    last = None
    for i, (op, ms, result, fault) in enumerate(calls_):
        req, fail, rt = rows.get(op, (0, 0, Counter()))
        rt = rt.copy()
        rt[ms] += 1
        rows[op] = (req + 1, fail, rt)
        results[f"{op}:{result}"] += 1
        if fault:
            faults[fault] += 1
        if i % every == 0:
            now = load_report.sample([(k, r, f, h) for k, (r, f, h) in rows.items()], results, faults, {})
            steps.append((i // every, load_report.step(last, now)))
            last = now
    final = load_report.sample([(k, r, f, h) for k, (r, f, h) in rows.items()], results, faults, {})
    steps.append((len(calls_) // every, load_report.step(last, final)))
    got = load_report.series_of(steps, series.iso_utc(T0), None, spread)
    assert series.valid(got)
    assert series.totals(got, "calls") == {op: r for op, (r, _, _) in rows.items()}
    assert series.totals(got, "faults") == dict(faults)
    assert series.totals(got, "refusals") == ({"ROUND_CLOSED": n} if (n := sum(
        v for k, v in results.items() if k.endswith("ROUND_CLOSED"))) else {})


def test_bursts_are_spread_over_the_empty_seconds_before_them_exactly() -> None:
    s = series.empty()
    s["seconds"] = list(range(9))
    s["calls"] = {"bet": [0, 0, 9, 0, 0, 7, 0, 0, 10]}
    s["faults"] = {"timeout": [0, 0, 2, 0, 0, 0, 0, 0, 1]}
    s["latency_ms"] = {"bet": {"p50": [None, None, 1.0, None, None, 2.0, None, None, 3.0],
                               "p99": [None, None, 5.0, None, None, 6.0, None, None, 7.0]}}
    got = load_report.spread_bursts(s, 3)
    assert got["calls"]["bet"] == [3, 3, 3, 2, 2, 3, 3, 3, 4]
    assert got["faults"]["timeout"] == [0, 1, 1, 0, 0, 0, 0, 0, 1]
    assert got["latency_ms"]["bet"]["p50"] == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0]


def test_a_long_run_is_drawn_in_fewer_points_without_hiding_a_slow_second() -> None:
    stats = RunStats(t0=T0, settling_from=3000)
    for second in range(3600):
        stats.record("bet", "ok", 900.0 if second == 1234 else 2.0, second)
        stats.record("bet", "ok", 2.0, second)
    full = series.build(stats)
    drawn, step = series.downsample(full, 900)
    assert step == 4 and len(drawn["seconds"]) == 900 and drawn["seconds"][:3] == [0, 4, 8]
    assert drawn["calls"]["bet"] == [2.0] * 900  # the mean per second
    assert max(v for v in drawn["latency_ms"]["bet"]["p99"] if v is not None) >= 880  # the slow second stays
    assert drawn["settling_from"] == 3000 and series.downsample(full, 5000) == (full, 1)
