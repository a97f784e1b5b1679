"""A self-contained HTML report: summary tables plus latency-over-time and throughput plots.

Plots are inline SVG drawn here (no JavaScript, no network), so the file can be
attached to a CI run and opened anywhere.
"""

from __future__ import annotations

import html
from typing import Any

from ..findings import KINDS, RULES, Severity, fails
from ..stats import Histogram
from . import model


def _polyline(points: list[tuple[float, float]], w: int, h: int, ymax: float, colour: str) -> str:
    if not points:
        return ""
    xmax = max(1.0, max(x for x, _ in points))
    coords = " ".join(f"{40 + x / xmax * (w - 50):.1f},{h - 25 - (y / ymax if ymax else 0) * (h - 40):.1f}"
                      for x, y in points)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>'


def _chart(title: str, series: list[tuple[str, str, list[tuple[float, float]]]], unit: str) -> str:
    w, h = 720, 240
    ymax = max((y for _, _, pts in series for _, y in pts), default=1.0) * 1.1 or 1.0
    lines = "".join(_polyline(pts, w, h, ymax, colour) for _, colour, pts in series)
    legend = " ".join(f'<tspan fill="{c}">■ {html.escape(n)}</tspan>' for n, c, _ in series)
    return (
        f'<figure><figcaption>{html.escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{html.escape(title)}">'
        f'<line x1="40" y1="{h - 25}" x2="{w - 10}" y2="{h - 25}" stroke="#888"/>'
        f'<line x1="40" y1="10" x2="40" y2="{h - 25}" stroke="#888"/>'
        f'<text x="2" y="18" font-size="11">{ymax:.1f} {unit}</text>'
        f'<text x="{w - 120}" y="{h - 8}" font-size="11">seconds →</text>'
        f'{lines}<text x="50" y="22" font-size="12">{legend}</text></svg></figure>'
    )


def _findings(report: dict[str, Any]) -> str:
    """Findings grouped by severity: a table of counts (with the rule each kind breaks) and the evidence."""
    esc = html.escape
    groups = report.get("findings_by_severity") or model.by_severity(report.get("anomalies", {}))
    fail_on = model.severity_name(report.get("fail_on", "contract"))
    out = []
    for severity, kinds in groups.items():
        sev = Severity(severity)
        failing = fails(sev, fail_on)
        head = f"<h3>{esc(severity)} findings{'' if failing else ' (not failing the run)'}</h3>"
        if not kinds:
            out.append(f"{head}<p>None.</p>")
            continue
        rows = []
        for kind, count in kinds.items():
            first = next((f for f in report["findings"] if f["kind"] == kind), None)
            rule = RULES.get(first.get("rule", KINDS[kind].rule) if first else KINDS[kind].rule)
            rows.append(f"<tr><td class=\"{'bad' if failing else 'note'}\">{esc(kind)}</td><td>{count}</td>"
                        f"<td>{esc(rule.section + ': ' + rule.title) if rule else ''}</td></tr>")
        evidence = "".join(
            f"<details><summary>{esc(f['kind'])} — {esc(f['player_id'])}: {esc(f['message'])}</summary>"
            f"<blockquote>{esc(f.get('section', ''))}: “{esc(f.get('quote', ''))}”</blockquote><ol>"
            + "".join(f"<li><code>{esc(str(e['call']))}</code> → {esc(e['outcome'])}"
                      + (f" <code>HTTP {e['status']} {esc(str(e['response']))}</code>" if e.get("response") else "")
                      + "</li>" for e in f["evidence"])
            + "</ol></details>" for f in report["findings"] if f.get("severity", KINDS[f["kind"]].severity) == severity)
        out.append(f"{head}<table><tr><th>kind</th><th>count</th><th>rule</th></tr>{''.join(rows)}</table>{evidence}")
    return "".join(out)


def _coverage(report: dict[str, Any]) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(r['section'])}: {esc(r['title'])}</td><td>{r['calls']}</td>"
        f"<td class=\"{'bad' if r['result'] == 'fail' else ('dim' if r['result'] in ('not exercised', 'not on this wire') else 'ok')}\">"
        f"{esc(model.describe_result(r))}</td></tr>" for r in report.get("coverage", []))
    return f"<table><tr><th>rule</th><th>calls</th><th>result</th></tr>{rows}</table>" if rows else "<p>None.</p>"


def render(report: dict[str, Any], timeline: dict[int, Histogram]) -> str:
    seconds = sorted(timeline)
    p50 = [(float(s), timeline[s].percentile(50)) for s in seconds]
    p99 = [(float(s), timeline[s].percentile(99)) for s in seconds]
    rate = [(float(s), float(timeline[s].count)) for s in seconds]
    esc = html.escape
    verdict = report["verdict"]
    rows = "".join(
        f"<tr><td>{esc(op)}</td><td>{v['count']}</td><td>{v['p50']}</td><td>{v['p95']}</td><td>{v['p99']}</td>"
        f"<td>{v['max']}</td></tr>" for op, v in report["latency_ms"].items())
    faults = "".join(f"<tr><td>{esc(k)}</td><td>{v}</td></tr>" for k, v in sorted(report["faults"].items()))
    error = (f'<p class="bad">ERROR: {esc(str(report["error"]))} — the run could not test what it was asked to, '
             "so it is not a pass.</p>") if report.get("error") else ""
    skipped = "".join(f"<li>{esc(s)}</li>" for s in report.get("skipped", []))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>croupier — {esc(report['scenario'])}: {verdict}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}
.bad{{color:#b00;font-weight:bold}}.ok{{color:#070}}.note{{color:#06c}}.dim{{color:#888}}figure{{margin:1em 0}}
code{{font-size:12px}}blockquote{{color:#555;margin:.3em 1em}}</style></head>
<body><h1>croupier run: <span class="{'ok' if verdict == 'pass' else 'bad'}">{esc(verdict.upper())}</span></h1>
{error}<p>Scenario <b>{esc(report['scenario'])}</b> against <code>{esc(report['wallet'])}</code>, seed {report['seed']},
run id <code>{esc(str(report.get('run_id', '')))}</code>, {report['players']} players, {report['elapsed_s']} s,
{sum(report['calls'].values())} calls ({report['calls_per_s']} per second), {report['unsettled']} left in doubt;
failing on {esc(str(report.get('fail_on', 'contract')))} findings and worse.</p>
{_chart("Latency per second (ms)", [("p50", "#1f77b4", p50), ("p99", "#d62728", p99)], "ms")}
{_chart("Calls per second", [("calls", "#2ca02c", rate)], "/s")}
<h2>Findings</h2>{_findings(report)}
<h2>Coverage</h2>{_coverage(report)}
{f"<h2>Skipped</h2><ul>{skipped}</ul>" if skipped else ""}
<h2>Latency by operation (ms)</h2><table><tr><th>op</th><th>calls</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>{rows}</table>
<h2>Faults injected</h2><table>{faults}</table>
</body></html>"""
