"""The end-of-run summary a person reads at a glance (rich): the verdict, findings by severity, coverage."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..findings import KINDS, RULES
from . import model

_COLOURS = {"pass": "green", "fail": "red", "error": "red"}
_SEVERITY_STYLE = {"money": "bold red", "contract": "red", "note": "cyan"}


def print_summary(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(stderr=False)
    verdict = report["verdict"]
    colour = _COLOURS.get(verdict, "red")
    total = sum(report["calls"].values())
    console.print(
        f"[bold {colour}]{verdict.upper()}[/] scenario [bold]{escape(str(report['scenario']))}[/] → "
        f"{escape(str(report['wallet']))}  seed {report['seed']}  run id {escape(str(report.get('run_id', '')))}  "
        f"{report['players']} players  {report['elapsed_s']} s  {total} calls ({report['calls_per_s']}/s)"
    )
    if report.get("error"):
        console.print(f"[bold red]error[/]: {escape(str(report['error']))} — the run could not test what it was "
                      "asked to, so it is not a pass")
    if report["latency_ms"]:
        lat = Table(title="latency by operation (ms)", title_justify="left")
        for col in ("op", "calls", "p50", "p95", "p99", "max"):
            lat.add_column(col, justify="left" if col == "op" else "right")
        for op, v in report["latency_ms"].items():
            lat.add_row(op, str(v["count"]), str(v["p50"]), str(v["p95"]), str(v["p99"]), str(v["max"]))
        console.print(lat)
    side = Table(title="rounds, faults, results", title_justify="left")
    side.add_column("what")
    side.add_column("count", justify="right")
    for k, v in sorted(report["rounds"].items()):
        side.add_row(f"round {k}", str(v))
    for k, v in sorted(report["faults"].items()):
        side.add_row(f"fault {k}", str(v))
    for k, v in sorted(report["results"].items()):
        if not k.endswith(":ok"):
            side.add_row(k, str(v))
    if side.row_count:
        console.print(side)
    print_findings(report, console)
    print_coverage(report, console)
    for line in report.get("skipped", []):
        console.print(f"[yellow]skipped[/]: {escape(line)}")
    if report.get("unsettled"):
        console.print(f"[yellow]{report['unsettled']} calls still in doubt after settlement[/]")
    for err in report.get("errors", [])[:5]:
        console.print(f"[yellow]warning[/]: {escape(str(err))}")


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
        t.add_column("kind", style=_SEVERITY_STYLE.get(severity, ""))
        t.add_column("count", justify="right")
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
    t.add_column("calls", justify="right")
    t.add_column("result")
    for row in rows:
        result = model.describe_result(row)
        style = "red" if row["result"] == "fail" else ("dim" if row["result"] in ("not exercised", "not on this wire") else "green")
        t.add_row(f"{row['section']}: {row['title']}", str(row["calls"]), f"[{style}]{escape(result)}[/]")
    console.print(t)
