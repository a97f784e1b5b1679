"""The run summary reads at a glance and survives a pipe: latencies in ms, money in major units, one
count per event, no value split at 80 columns, the verdict last (issue 15)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from simulator.judge.stats import Histogram
from simulator.protocol.money import format_minor
from simulator.report.summary import format_ms, ggr_table, latency_table, print_summary


@pytest.mark.parametrize(("ms", "text"), [
    (0.0, "0 ms"), (0.04, "0.04 ms"), (0.8, "0.8 ms"), (4.919, "4.9 ms"), (9.96, "10 ms"), (12.3, "12 ms"),
    (56.0, "56 ms"), (1234.5, "1,234 ms"),
])
def test_latencies_read_as_milliseconds(ms: float, text: str) -> None:
    assert format_ms(ms) == text


@pytest.mark.parametrize(("minor", "code", "text"), [
    (123456789, "EUR", "1,234,567.89"), (-5, "EUR", "-0.05"), (0, "EUR", "0.00"), (-1500, "JPY", "-1,500"),
    (1, "BTC", "0.00000001"), (1234, "KWD", "1.234"),
])
def test_minor_units_read_in_major_units_exactly(minor: int, code: str, text: str) -> None:
    assert format_minor(minor, code) == text


def test_a_percentile_is_never_above_the_max_nor_below_the_min() -> None:
    h = Histogram()
    for ms in (55.0, 55.5, 55.855):
        h.add(ms)
    for p in (1, 50, 95, 99, 100):
        assert 55.0 <= h.percentile(p) <= 55.855
    assert h.summary()["p99"] <= h.summary()["max"]
    merged = Histogram()
    merged.merge(Histogram.from_json(h.to_json()))
    assert merged.min_ms == 55.0 and merged.percentile(99) <= 55.855
    old = h.to_json()
    del old["min_ms"]  # a partial written before min_ms existed still loads
    assert Histogram.from_json(old).percentile(99) <= 55.855


def _text(table: Any, width: int = 200) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(table)
    return out.getvalue()


def test_latency_table_is_in_ms_and_clamps_to_max() -> None:
    text = _text(latency_table({"authenticate": {"count": 10, "mean": 30.0, "p50": 20.1, "p95": 56.0,
                                                 "p99": 56.0, "max": 55.855}}))
    assert "56.000" not in text and "55.855" not in text
    assert "20 ms" in text and "56 ms" in text


def test_ggr_table_is_in_major_units_and_right_aligned() -> None:
    lines = [
        {"currency": "EUR", "game_id": "a", "bets": 3, "bet_amount": 150000, "wins": 1, "win_amount": 120050,
         "refund_amount": 0, "ggr": 29950},
        {"currency": "EUR", "game_id": "b", "bets": 1, "bet_amount": 100, "wins": 0, "win_amount": 0,
         "refund_amount": 0, "ggr": 100},
        {"currency": "JPY", "game_id": "a", "bets": 2, "bet_amount": 2000, "wins": 1, "win_amount": 5000,
         "refund_amount": 0, "ggr": -3000},
    ]
    text = _text(ggr_table(lines))
    assert "1,501.00" in text and "1,200.50" in text and "300.50" in text  # EUR, summed over games
    assert "-3,000" in text and "2,000" in text  # JPY has no decimals
    row = next(line for line in text.splitlines() if "EUR" in line)
    cells = [c for c in row.split("│") if c.strip()]
    assert all(c.endswith(" ") and not c.startswith(c.strip()) for c in cells[1:])  # right-aligned


def _report() -> dict[str, Any]:
    long_rule = "Idempotency, rule 2: a reused tx_id with other fields is DUPLICATE_MISMATCH"
    return {
        "verdict": "fail", "scenario": "invalid-calls", "wallet": "http://127.0.0.1:8301/wallet", "seed": 1,
        "run_id": "abc123", "players": 20, "elapsed_s": 3.038, "calls_per_s": 1006.8,
        "calls": {"bet": 1869, "win": 979, "rollback": 171},
        "results": {"bet:ok": 1500, "bet:INVALID_SIGNATURE": 86, "bet:ROUND_CLOSED": 86},
        "rounds": {"settled": 929}, "faults": {"invalid:signature": 86, "duplicate": 12},
        "latency_ms": {"authenticate": {"count": 20, "mean": 16.0, "p50": 16.0, "p95": 22.0, "p99": 22.0,
                                        "max": 21.7},
                       "bet": {"count": 1869, "mean": 16.0, "p50": 0.8, "p95": 22.0, "p99": 26.0, "max": 47.1}},
        "anomalies": {}, "findings_by_severity": {}, "findings": [], "unsettled": 0, "errors": [], "skipped": [],
        "coverage": [{"rule": "idempotency-2-mismatch", "section": "Idempotency, rule 2",
                      "title": long_rule.split(": ", 1)[1], "calls": 1234567, "result": "not exercised"}],
    }


def test_in_a_pipe_nothing_is_split_and_the_verdict_is_last() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False, color_system=None)
    assert not console.is_terminal
    report = _report()
    print_summary(report, console)
    text = out.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[-1].startswith("FAIL scenario invalid-calls") and lines[0] == lines[-1]
    assert "1,234,567" in text  # a value in one piece
    assert "is DUPLICATE_MISMATCH" in text  # a rule's title on one line
    for value in ("http://127.0.0.1:8301/wallet", "run id abc123", "20 players", "3,019 calls", "0.8 ms", "47 ms"):
        assert value in text, value
    assert "fault bad_signature" not in text
    assert console.width == 80  # the caller's console is left as it was


def test_on_a_terminal_the_width_is_the_terminals() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system=None)
    print_summary(_report(), console)
    tables = [line for line in out.getvalue().splitlines() if line[:1] in "┏┃┡│└"]
    assert tables and max(len(line) for line in tables) <= 100  # the verdict line is left to the terminal to wrap
