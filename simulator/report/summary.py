"""The end-of-run summary a person reads at a glance (rich): the verdict, findings by severity, coverage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..protocol.findings import KINDS, RULES
from ..protocol.money import UnknownCurrency, format_minor
from . import model

PIPE_WIDTH = 160
"""The width tables are laid out at when the output is not a terminal (a pipe, a file, CI): wide
enough that no value is wrapped or split, whatever the pipe's nominal 80 columns."""

_COLOURS = {"pass": "green", "fail": "red", "error": "red"}
_SEVERITY_STYLE = {"money": "bold red", "contract": "red", "note": "cyan"}


def format_ms(ms: float) -> str:
    """A latency as a person reads it: "12 ms", "4.9 ms", "0.8 ms", "0.04 ms" (two significant digits
    under 10 ms, whole milliseconds above)."""
    if ms >= 9.95:  # 9.96 would print as "10.0"
        return f"{ms:,.0f} ms"
    if ms >= 0.1 or ms == 0:
        return f"{ms:.1f} ms".replace("0.0 ms", "0 ms")
    return f"{ms:.2g} ms"


def verdict_line(report: Mapping[str, Any]) -> str:
    """The one line that says it all (rich markup): verdict, scenario, wallet, seed, run id, counts."""
    verdict = str(report["verdict"])
    colour = _COLOURS.get(verdict, "red")
    total = sum(report["calls"].values())
    findings = sum((report.get("anomalies") or {}).values())
    return (
        f"[bold {colour}]{verdict.upper()}[/] scenario [bold]{escape(str(report['scenario']))}[/] → "
        f"{escape(str(report['wallet']))}  seed {report['seed']}  run id {escape(str(report.get('run_id', '')))}  "
        f"{report['players']} players  {report['elapsed_s']} s  {total:,} calls ({report['calls_per_s']:,}/s)  "
        f"{findings:,} finding{'' if findings == 1 else 's'}"
    )


def headline(report: Mapping[str, Any]) -> str:
    """The summary's first and last line: the verdict line, and for an interrupted run (the report's
    ``interrupted`` entry) ``INTERRUPTED`` first, so neither a glance nor ``| tail -1`` takes a partial
    run's verdict for a finished one's."""
    line = verdict_line(report)
    mark = report.get("interrupted")
    if not mark:
        return line
    return (f"[bold yellow]INTERRUPTED[/] by {escape(str(mark.get('signal', 'a signal')))} after "
            f"{float(mark.get('after_s') or 0):.1f} s — verdict so far: {line}")


@contextmanager
def _laid_out(console: Console) -> Iterator[Console]:
    """Off a terminal, lay out at :data:`PIPE_WIDTH` at least, so no table wraps a value in two."""
    if console.is_terminal:
        yield console
        return
    width = console.width
    console.width = max(width, PIPE_WIDTH)
    try:
        yield console
    finally:
        console.width = width


def latency_table(latency_ms: Mapping[str, Mapping[str, float | int]]) -> Table:
    lat = Table(title="latency by operation", title_justify="left")
    for col in ("op", "calls", "p50", "p95", "p99", "max"):
        lat.add_column(col, justify="left" if col == "op" else "right", no_wrap=True)
    for op, v in latency_ms.items():
        top = float(v["max"])
        # A percentile is an upper bucket edge: never show one above the slowest call.
        lat.add_row(op, f"{int(v['count']):,}", *(format_ms(min(float(v[p]), top)) for p in ("p50", "p95", "p99")),
                    format_ms(top))
    return lat


_GGR_COLUMNS = (("bets", "bets", False), ("staked", "bet_amount", True), ("wins", "wins", False),
                ("paid", "win_amount", True), ("refunds", "refund_amount", True), ("GGR", "ggr", True))


def ggr_table(lines: Iterable[Mapping[str, Any]], title: str = "GGR, all games") -> Table:
    """The wallet's GGR lines (``/admin/reports/ggr``: minor units) summed by currency, amounts in major
    units with the currency's exponent (exact integer arithmetic), right-aligned."""
    by_currency: dict[str, list[int]] = {}
    for line in lines:
        acc = by_currency.setdefault(str(line["currency"]), [0] * len(_GGR_COLUMNS))
        for i, (_, key, _) in enumerate(_GGR_COLUMNS):
            acc[i] += int(line.get(key) or 0)
    table = Table(title=title, title_justify="left")
    table.add_column("currency", no_wrap=True)
    for col, _, _ in _GGR_COLUMNS:
        table.add_column(col, justify="right", no_wrap=True)
    for code, acc in sorted(by_currency.items()):
        cells = []
        for (_, _, money), v in zip(_GGR_COLUMNS, acc, strict=True):
            try:
                cells.append(format_minor(v, code) if money else f"{v:,}")
            except UnknownCurrency:
                cells.append(f"{v:,} (minor units)" if money else f"{v:,}")
        table.add_row(code, *cells)
    return table


def print_summary(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(stderr=False)
    with _laid_out(console):
        _print_summary(report, console)


def _print_summary(report: dict[str, Any], console: Console) -> None:
    line = headline(report)
    console.print(line, soft_wrap=True)
    mark = report.get("interrupted")
    if mark:
        console.print(f"[yellow]interrupted[/]: {escape(str(mark.get('note', '')))}", soft_wrap=True)
    if report.get("error"):
        console.print(f"[bold red]error[/]: {escape(str(report['error']))} — the run could not test what it was "
                      "asked to, so it is not a pass", soft_wrap=True)
    if report["latency_ms"]:
        console.print(latency_table(report["latency_ms"]))
    side = Table(title="rounds, faults, results", title_justify="left")
    side.add_column("what", no_wrap=True)
    side.add_column("count", justify="right", no_wrap=True)
    for k, v in sorted(report["rounds"].items()):
        side.add_row(f"round {k}", f"{v:,}")
    for k, v in sorted(report["faults"].items()):
        side.add_row(f"fault {k}", f"{v:,}")
    for k, v in sorted(report["results"].items()):
        if not k.endswith(":ok"):
            side.add_row(k, f"{v:,}")
    if side.row_count:
        console.print(side)
    if report.get("ggr"):
        console.print(ggr_table(report["ggr"]))
    print_findings(report, console)
    print_coverage(report, console)
    for text in report.get("skipped", []):
        console.print(f"[yellow]skipped[/]: {escape(text)}", soft_wrap=True)
    if report.get("evidence"):  # closed rounds left memory for this file: the calls no finding showed
        console.print(f"evidence of closed rounds: {escape(', '.join(report['evidence']))}", soft_wrap=True)
    if report.get("unsettled"):
        after = "when the interrupted run ended" if mark else "after settlement"
        console.print(f"[yellow]{report['unsettled']} calls still in doubt {after}[/]", soft_wrap=True)
    for err in report.get("errors", [])[:5]:
        console.print(f"[yellow]warning[/]: {escape(str(err))}", soft_wrap=True)
    console.print(line, soft_wrap=True)  # the verdict is the last line too: what `| tail -1` and CI show


def print_findings(report: dict[str, Any], console: Console) -> None:
    """One table per severity (money, contract, note): kind, count, the rule it breaks, first evidence."""
    groups = report.get("findings_by_severity") or model.by_severity(report.get("anomalies", {}))
    fail_on = report.get("fail_on", "contract")
    if not any(groups.values()):
        if report["verdict"] == "pass":
            console.print("[green]no findings[/]: every answer agreed with the protocol and every balance reconciled")
        return
    for severity, kinds in groups.items():
        if not kinds:
            continue
        fails = model.failing(kinds, model.severity_name(fail_on)) > 0
        t = Table(title=f"{severity} findings" + ("" if fails else " (not failing the run)"), title_justify="left")
        t.add_column("kind", style=_SEVERITY_STYLE.get(severity, ""), no_wrap=True)
        t.add_column("count", justify="right", no_wrap=True)
        t.add_column("rule")
        t.add_column("first evidence")
        for kind, count in kinds.items():
            first = next((f for f in report["findings"] if f["kind"] == kind), None)
            rule_id = first.get("rule", KINDS[kind].rule) if first else KINDS[kind].rule
            rule = RULES.get(rule_id)
            text = ""
            if first:
                text = f"{first['player_id']}: {first['message']}"
                for ev in first["evidence"][:3]:
                    text += f"\n  {ev['call'].get('op')} {ev['call'].get('tx_id', '')} → {ev['outcome']}"
            t.add_row(kind, str(count), f"{rule.section}: {rule.title}" if rule else rule_id, escape(text))
        console.print(t)


def print_coverage(report: dict[str, Any], console: Console) -> None:
    rows = report.get("coverage") or []
    if not rows:
        return
    t = Table(title="coverage: the rules this run exercised", title_justify="left")
    t.add_column("rule")
    t.add_column("calls", justify="right", no_wrap=True)
    t.add_column("result", no_wrap=True)
    for row in rows:
        result = model.describe_result(row)
        style = "red" if row["result"] == "fail" else ("dim" if row["result"] in ("not exercised", "not on this wire") else "green")
        t.add_row(f"{row['section']}: {row['title']}", f"{row['calls']:,}", f"[{style}]{escape(result)}[/]")
    console.print(t)
