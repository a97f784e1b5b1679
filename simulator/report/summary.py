"""The end-of-run summary a person reads at a glance (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(stderr=False)
    verdict = report["verdict"]
    colour = "green" if verdict == "pass" else "red"
    total = sum(report["calls"].values())
    console.print(
        f"[bold {colour}]{verdict.upper()}[/] scenario [bold]{report['scenario']}[/] → {report['wallet']}  "
        f"seed {report['seed']}  {report['players']} players  {report['elapsed_s']} s  "
        f"{total} calls ({report['calls_per_s']}/s)"
    )
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
    console.print(side)
    bad = {k: v for k, v in report["anomalies"].items() if v}
    if not bad:
        console.print("[green]no anomalies[/]: every answer agreed with the protocol and every balance reconciled")
    else:
        t = Table(title="anomalies", title_justify="left")
        t.add_column("kind", style="red")
        t.add_column("count", justify="right")
        t.add_column("first evidence")
        for kind, count in bad.items():
            first = next((f for f in report["findings"] if f["kind"] == kind), None)
            text = ""
            if first:
                text = f"{first['player_id']}: {first['message']}"
                for ev in first["evidence"][:3]:
                    text += f"\n  {ev['call'].get('op')} {ev['call'].get('tx_id', '')} → {ev['outcome']}"
            t.add_row(kind, str(count), text)
        console.print(t)
    if report.get("unsettled"):
        console.print(f"[yellow]{report['unsettled']} calls still in doubt after settlement[/]")
    for err in report.get("errors", [])[:5]:
        console.print(f"[yellow]warning[/]: {err}")
