"""A soak's statistics in bounded memory: past ``max_points`` buckets RunStats merges them pairwise and
doubles their width, so its series is what one that kept every second would give at that width, and
its totals are untouched."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from loadtests import report as load_report
from simulator.judge.stats import MAX_POINTS, Histogram, RunStats, Strip, _bucket
from simulator.report import html, series

OPS = ("bet", "win", "rollback")
RESULTS = ("ok", "ok", "unknown", "INSUFFICIENT_FUNDS", "ROUND_CLOSED")
T0 = 1_796_000_000.0

Row = tuple[str, str, float, int]
rows_ = st.tuples(st.sampled_from(OPS), st.sampled_from(RESULTS), st.floats(0.0, 3_000.0, allow_nan=False),
                  st.integers(0, 5_000))
# an action: a call (or a fault, a finding) recorded by shard k (-1: the process that merges), or shard k
# merged into that process (through JSON, as --workers does) and started afresh
actions = st.lists(st.one_of(
    st.tuples(st.just("call"), st.integers(-1, 2), rows_),
    st.tuples(st.just("fault"), st.integers(-1, 2), st.integers(0, 5_000)),
    st.tuples(st.just("finding"), st.integers(-1, 2), st.integers(0, 5_000)),
    st.tuples(st.just("merge"), st.integers(0, 2), st.none())), max_size=80)


def _apply(stats: RunStats, kind: str, what: Any) -> None:
    if kind == "call":
        stats.record(*what)
    elif kind == "fault":
        stats.fault("timeout", second=what)
    else:
        stats.anomaly("double_apply", second=what)


def _same_totals(a: RunStats, b: RunStats) -> None:
    assert (a.calls, a.results, a.faults) == (b.calls, b.results, b.faults)
    assert a.latency.keys() == b.latency.keys()
    for op, h in a.latency.items():
        g = b.latency[op]
        assert (h.buckets, h.count, h.max_ms, h.min_ms) == (g.buckets, g.count, g.max_ms, g.min_ms)
        assert math.isclose(h.total_ms, g.total_ms, rel_tol=1e-9, abs_tol=1e-9)  # a float sum, in another order


@given(actions, st.integers(1, 12), st.one_of(st.none(), st.integers(0, 5_000)))
def test_a_bounded_run_is_an_unbounded_one_at_its_coarser_width(
        steps: list[tuple[str, int, Any]], bound: int, settling: int | None) -> None:
    merger = RunStats(t0=T0, max_points=bound)
    shards = [RunStats(t0=T0, max_points=bound) for _ in range(3)]
    everything: list[tuple[str, Any]] = []
    for kind, k, what in steps:
        if kind == "merge":
            merger.merge(RunStats.from_json(shards[k].to_json()))
            shards[k] = RunStats(t0=T0, max_points=bound)
            continue
        _apply(merger if k < 0 else shards[k], kind, what)
        everything.append((kind, what))
    for shard in shards:
        merger.merge(RunStats.from_json(shard.to_json()))
    if settling is not None:
        merger.settling_from = settling
        merger.merge(RunStats(t0=T0))  # a merge fits the settlement's bucket in too
    assert merger.buckets() <= bound
    assert merger.width & (merger.width - 1) == 0  # 1, 2, 4, …: each bucket nests in the next width's
    # every second kept, bucketed at the bounded run's width from the start
    whole = RunStats(t0=T0, settling_from=settling, width=merger.width, max_points=10**9)
    for kind, what in everything:
        _apply(whole, kind, what)
    _same_totals(merger, whole)
    got = series.build(merger)
    assert got == series.build(whole)
    assert series.valid(got) and got["width"] == merger.width
    assert series.totals(got, "calls") == {op: n for op, n in merger.calls.items() if n}


def test_a_long_run_keeps_at_most_max_points_buckets() -> None:
    """100,000 seconds of three calls a second (27.8 hours): 3,125 buckets of 32 s, the totals exact."""
    stats = RunStats(t0=T0)
    for second in range(100_000):
        stats.record("bet", "ok", 2.0, second)
        stats.record("win", "ok", 3.0, second)
        stats.record("bet", "INSUFFICIENT_FUNDS", 900.0 if second == 77_777 else 1.0, second)
        if len(stats.by_second["bet"]) > MAX_POINTS:
            raise AssertionError(f"{len(stats.by_second['bet'])} buckets at second {second}")
    stats.fault("timeout", second=99_999)
    stats.settling_from = 99_990
    assert stats.width == 32 and stats.buckets() == 3_125 <= MAX_POINTS
    assert stats.calls == {"bet": 200_000, "win": 100_000} and stats.latency["bet"].count == 200_000
    got = series.build(stats)
    assert len(got["seconds"]) == 3_125 and got["seconds"][:3] == [0, 32, 64] and got["width"] == 32
    assert got["calls"]["bet"][:2] == [64, 64] and sum(got["calls"]["bet"]) == 200_000
    assert sum(got["refusals"]["INSUFFICIENT_FUNDS"]) == 100_000 and got["faults"]["timeout"][-1] == 1
    assert got["latency_ms"]["bet"]["p99"][77_777 // 32] >= 880  # the slow second's bucket shows it
    again = RunStats.from_json(stats.to_json())
    assert again.width == 32 and series.build(again) == got
    drawn, step = series.downsample(got, html.MAX_POINTS)  # the page: per second, in 128 s points
    assert step == 128 and len(drawn["seconds"]) == 782 and drawn["calls"]["bet"][0] == 2.0


def test_shards_of_different_widths_merge_at_the_coarser() -> None:
    fine, coarse = RunStats(t0=T0), RunStats(t0=T0 + 16.0, max_points=4)
    fine.record("bet", "ok", 1.0, 3)
    for second in range(20):  # 20 seconds in 4 buckets: 8 s each
        coarse.record("bet", "ok", 1.0, second)
    assert coarse.width == 8
    merged = RunStats()
    merged.merge(RunStats.from_json(fine.to_json()))
    merged.merge(RunStats.from_json(coarse.to_json()))  # its second 0 is second 16: bucket 2 at 8 s
    got = series.build(merged)
    assert got["width"] == 8 and got["seconds"] == [0, 8, 16, 24, 32]
    assert got["calls"]["bet"] == [1, 0, 8, 8, 4]


def test_the_page_draws_a_coarse_series_per_second() -> None:
    stats = RunStats(t0=T0, max_points=10)
    for second in range(40):  # 4 s buckets
        stats.record("bet", "ok", 5.0, second)
    s = series.build(stats)
    drawn, step = series.downsample(s, 900)
    assert step == 4 and drawn["calls"]["bet"] == [1.0] * 10
    page = html.render({"verdict": "pass", "engine": "run", "series": s, "calls": {"bet": 40}})
    assert "40 seconds are drawn as 10 points of 4 s each" in page and "4-second buckets" in page


@given(st.lists(st.lists(st.floats(0.0, 120_000.0, allow_nan=False), max_size=40), min_size=1, max_size=4),
       st.sampled_from((1, 50, 90, 95, 99, 100)))
def test_a_series_strip_gives_the_histograms_percentiles(parts: list[list[float]], p: float) -> None:
    """The series keeps its latencies as arrays (a tenth of a Counter's memory): the same percentiles,
    merged or not, through JSON too."""
    hist, strip = Histogram(), Strip()
    for part in parts:
        h, s = Histogram(), Strip()
        for ms in part:
            h.add(ms)
            s.add_bucket(_bucket(ms), ms)
        hist.merge(h)
        strip.merge(Strip.from_json(s.to_json()))
    assert strip.count == hist.count and strip.percentile(p) == hist.percentile(p)
    assert (strip.max_ms, strip.min_ms) == (hist.max_ms, hist.min_ms)


# -- croupier load: the master's readings, kept per bucket the same way ------------------------------
load_steps = st.lists(st.tuples(st.integers(0, 3), st.dictionaries(st.sampled_from(("bet", "win")), st.integers(0, 50)),
                                st.one_of(st.none(), st.floats(0.5, 900.0)), st.integers(0, 2)), max_size=60)


@given(load_steps, st.integers(1, 10))
def test_a_long_load_tests_readings_are_kept_per_bucket_and_add_up(rows: list[tuple[int, dict[str, int], float | None,
                                                                                  int]], bound: int) -> None:
    kept: list[tuple[int, dict[str, Any]]] = []
    every: list[tuple[int, dict[str, Any]]] = []
    width, second = 1, 0
    for gap, calls, p99, timeouts in rows:
        second += gap
        step = {"calls": calls, "p50": {op: p99 for op in calls}, "p99": {op: p99 for op in calls},
                "refusals": {}, "faults": {"timeout": timeouts} if timeouts else {}, "anomalies": {}}
        every.append((second, step))
        width = load_report.add_step(kept, second, step, width, bound)
    assert len(kept) <= bound and width & (width - 1) == 0
    got = series.rebucket(load_report.series_of(kept, None, None), width)
    want = series.rebucket(load_report.series_of(every, None, None), width)
    assert series.valid(got) and got["width"] == width and len(got["seconds"]) <= bound
    assert {k: got[k] for k in ("seconds", "calls", "faults")} == {k: want[k] for k in ("seconds", "calls", "faults")}
    for op, lat in want["latency_ms"].items():  # the worst of a bucket is never lost (nor invented)
        for mine, theirs in zip(got["latency_ms"][op]["p99"], lat["p99"], strict=True):
            assert (mine is None) == (theirs is None) and (mine is None or theirs is None or mine >= theirs)
