"""The certification report: JSON for tools, JUnit XML for CI, one self-contained HTML page a team lead signs.

The page is built from the run and load reports' parts (:mod:`simulator.report.html`: the same style,
tables, evidence blocks, vendored ECharts and its per-second charts), with two charts of its own:
throughput against users with the SLA line, and findings by severity per phase.  It prints to PDF from
the browser (the style has a print sheet) and reads without JavaScript (every figure is also a table).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import orjson

from ..report import html as parts
from ..report import series
from ..report.junit import interrupted_case, to_bytes
from .checklist import GROUPS

STATUS_CLASS = {"pass": "ok", "fail": "bad", "not tested": "dim", "for the operator": "note"}


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """What a team lead reads in a minute: the verdict, the items failed, the capacity at the SLA."""
    counts = report["counts"]
    head = (f"{str(report['verdict']).upper()} certification of {report['wallet']} ({report['dialect']}): "
            f"{counts['pass']} pass, {counts['fail']} fail, {counts['not tested']} not tested, "
            f"{counts['for the operator']} for the operator")
    lines = [head]
    for item in report["items"]:
        if item["status"] == "fail":
            lines.append(f"  FAIL {item['title']}: {item['why']}")
    cap = report.get("capacity") or {}
    best = cap.get("best")
    if best:
        lines.append(f"  capacity within p99 ≤ {cap['sla_p99_ms']:g} ms: {best['calls_per_s']:,} calls/s at "
                     f"{best.get('users') or '?'} users")
    if report.get("interrupted"):
        lines.insert(0, f"INTERRUPTED: {report['interrupted'].get('note', '')}")
    return lines


def junit_xml(report: Mapping[str, Any], suite: str = "croupier.certify") -> bytes:
    """One test suite per group, one test case per item: a failure for ``fail``, skipped for ``not tested``
    and ``for the operator`` (with why), so a CI page shows the checklist as it is."""
    root = ET.Element("testsuites", name=suite)
    for group in GROUPS:
        ts = ET.SubElement(root, "testsuite", name=f"{suite}.{group.lower()}")
        for item in (i for i in report["items"] if i["group"] == group):
            case = ET.SubElement(ts, "testcase", classname=f"{suite}.{group.lower()}", name=item["title"])
            detail = "\n".join([f"basis: {item['basis']}", *(f"reproduce: {c}" for c in item["commands"])])
            if item["status"] == "fail":
                fail = ET.SubElement(case, "failure", type=item["id"], message=item["why"])
                fail.text = detail + "\n" + orjson.dumps(item["evidence"][:5], option=orjson.OPT_INDENT_2).decode()
            elif item["status"] in ("not tested", "for the operator"):
                ET.SubElement(case, "skipped", message=f"{item['status']}: {item['why']}")
            else:
                ET.SubElement(case, "system-out").text = item["why"] + "\n" + detail
    if report.get("interrupted"):
        interrupted_case(root[0], suite, report["interrupted"])
    return to_bytes(root)


def _item_row(item: Mapping[str, Any]) -> str:
    cls = STATUS_CLASS.get(item["status"], "")
    evidence = "".join(parts.evidence(e) if isinstance(e, Mapping) and "call" in e else parts.json_block(e)
                       for e in item["evidence"][:10])
    more = f'<p class="dim">showing 10 of {len(item["evidence"])} — the JSON has every one</p>' \
        if len(item["evidence"]) > 10 else ""
    commands = "".join(f"<pre>{parts.esc(c)}</pre>" for c in item["commands"])
    details = (f"<details><summary>evidence and how to reproduce</summary><p><b>Judged by:</b> "
               f"{parts.esc(item['basis'])}</p>{evidence}{more}{commands}</details>") if evidence or commands else \
        f'<p class="dim">{parts.esc(item["basis"])}</p>'
    return (f'<tr id="item-{parts.esc(item["id"])}"><td>{parts.esc(item["title"])}</td>'
            f'<td class="{cls}">{parts.esc(item["status"])}</td><td>{parts.esc(item["why"])}{details}</td></tr>')


def _checklist(report: Mapping[str, Any]) -> str:
    out = []
    for group in GROUPS:
        rows = "".join(_item_row(i) for i in report["items"] if i["group"] == group)
        out.append(f"<h3>{parts.esc(group)}</h3><table class=\"checklist\"><tr><th>item</th><th>status</th>"
                   f"<th>why</th></tr>{rows}</table>")
    return "".join(out)


def _phases(report: Mapping[str, Any]) -> str:
    rows = []
    for p in report["phases"]:
        state = p.get("skipped") and f"skipped: {p['skipped']}" or p.get("error") and f"error: {p['error']}" or \
            str(p.get("verdict") or "done")
        rows.append([parts.esc(p["name"]), parts.esc(state), parts.esc(f"{p.get('elapsed_s', 0):.0f} s"),
                     f"<code>{parts.esc(p['command'])}</code>"])
    return parts.table(["phase", "result", "time", "command"], rows)


_CERTIFY_SCRIPT = r"""
(function () {
  var d = JSON.parse(document.getElementById('certify-data').textContent);
  var made = [];
  function init(id, option) {
    var el = document.getElementById(id);
    if (!el || el.getAttribute('data-empty') === 'true') return;
    var c = echarts.init(el, null, {renderer: 'svg'}); c.setOption(option); made.push(c);
  }
  var pts = (d.capacity && d.capacity.points) || [];
  init('chart-capacity', {
    animation: false, legend: {top: 0}, grid: {left: 84, right: 84, top: 50, bottom: 58},
    tooltip: {trigger: 'axis'},
    xAxis: {type: 'value', name: 'users', nameLocation: 'middle', nameGap: 30, min: 0},
    yAxis: [{type: 'value', name: 'calls per second', min: 0},
            {type: 'value', name: 'p99 (ms)', min: 0, splitLine: {show: false},
             max: function (v) { return Math.ceil(Math.max(v.max, d.capacity.sla_p99_ms * 1.15)); }}],
    series: [
      {name: 'calls per second', type: 'scatter', symbolSize: 6,
       data: pts.filter(function (p) { return p.users !== null; }).map(function (p) { return [p.users, p.calls_per_s]; })},
      {name: 'p99 (ms)', type: 'scatter', yAxisIndex: 1, symbolSize: 5, itemStyle: {color: '#e15759'},
       data: pts.filter(function (p) { return p.users !== null && p.p99_ms !== null; }).map(function (p) { return [p.users, p.p99_ms]; }),
       markLine: {silent: true, symbol: 'none', lineStyle: {color: '#b00020', type: 'dashed'},
                  label: {position: 'insideEndTop', formatter: 'SLA p99 ' + d.capacity.sla_p99_ms + ' ms'},
                  data: [{yAxis: d.capacity.sla_p99_ms}]}}
    ]
  });
  var sev = d.severities, phases = Object.keys(sev), kinds = ['money', 'contract', 'note'];
  init('chart-severity', {
    animation: false, legend: {top: 0}, grid: {left: 84, right: 24, top: 50, bottom: 40},
    tooltip: {trigger: 'axis'}, xAxis: {type: 'category', data: phases},
    yAxis: {type: 'value', name: 'findings', min: 0, minInterval: 1},
    color: ['#b00020', '#e8710a', '#0b57d0'],
    series: kinds.map(function (k) { return {name: k, type: 'bar', stack: 'all',
      data: phases.map(function (p) { return sev[p][k] || 0; })}; })
  });
  window.addEventListener('resize', function () { made.forEach(function (c) { c.resize(); }); });
  document.documentElement.setAttribute('data-certify-charts', String(made.length));
})();
"""


def render(report: Mapping[str, Any]) -> str:
    """The whole page (self-contained: no request leaves it)."""
    verdict = str(report["verdict"])
    cls = "ok" if verdict == "pass" else "bad"
    counts = report["counts"]
    cap = report.get("capacity") or {"points": [], "sla_p99_ms": report["sla"]["p99_ms"], "best": None}
    best = cap.get("best")
    tiles = [("items pass", counts["pass"]), ("items fail", counts["fail"]), ("not tested", counts["not tested"]),
             ("for the operator", counts["for the operator"]),
             (f"calls/s within p99 ≤ {cap['sla_p99_ms']:g} ms", f"{best['calls_per_s']:,}" if best else "–")]
    tile_html = '<div class="tiles">' + "".join(
        f'<div class="tile"><b>{parts.esc(str(v))}</b><span>{parts.esc(k)}</span></div>' for k, v in tiles) + "</div>"
    failed = [i for i in report["items"] if i["status"] == "fail"]
    failed_html = "<ul>" + "".join(f'<li><a href="#item-{parts.esc(i["id"])}">{parts.esc(i["title"])}</a>: '
                                   f"{parts.esc(i['why'])}</li>" for i in failed) + "</ul>" if failed else \
        "<p>No item failed.</p>"
    load_series = report.get("load_series")
    s: Mapping[str, Any] = load_series if isinstance(load_series, Mapping) and series.valid(load_series) \
        else series.empty()
    s, step = series.downsample(s, parts.MAX_POINTS)
    latency_fig = parts.figure("chart-latency", "Latency over the load ramp",
                               "p50 (solid) and p99 (dashed) per operation, second by second.",
                               sorted(s["latency_ms"]))
    calls_fig = parts.figure("chart-calls", "Throughput over the load ramp", "Calls that ended in each second.",
                             sorted(s["calls"]))
    cap_fig = parts.figure("chart-capacity", "Throughput against users, with the SLA",
                           "Each point is one second of the ramp: calls per second (left) and the worst p99 (right).",
                           ["calls per second"] if cap.get("points") else [])
    sev_fig = parts.figure("chart-severity", "Findings by severity", "Per phase: money, contract, note.",
                           list(report["severities"]) if any(sum(v.values()) for v in report["severities"].values())
                           else [])
    cap_rows = [[parts.esc(str(p["second"])), parts.esc(str(p["users"] if p["users"] is not None else "–")),
                 parts.esc(f"{p['calls_per_s']:,}"), parts.esc("–" if p["p99_ms"] is None else f"{p['p99_ms']:.0f}")]
                for p in cap.get("points", [])[:: max(1, len(cap.get("points", [])) // 40)]]
    env_rows = [("wallet", report["wallet"]), ("dialect", report["dialect"]), ("croupier", report["croupier_version"]),
                ("started", report.get("started")), ("took", f"{report['elapsed_s']:.0f} s of a {report['budget_s']:.0f} s budget"),
                ("SLA", f"p99 ≤ {report['sla']['p99_ms']:g} ms"), ("TLS", report.get("tls")),
                ("command", report.get("command"))]
    env = "<table class=\"env\">" + "".join(f"<tr><th>{parts.esc(k)}</th><td>{parts.esc(str(v))}</td></tr>"
                                            for k, v in env_rows if v) + "</table>"
    banner = (f'<div class="banner"><b>Interrupted</b>: {parts.esc(report["interrupted"].get("note", ""))}</div>'
              if report.get("interrupted") else "")
    series_data = orjson.dumps({"series": s, "step": step}).decode().replace("</", "<\\/")
    certify_data = orjson.dumps({"capacity": cap, "severities": report["severities"]}).decode().replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>croupier certify — {parts.esc(str(report['wallet']))}: {parts.esc(verdict.upper())}</title>
<style>{parts.STYLE}
table.checklist td:nth-child(2){{white-space:nowrap}}table.checklist{{width:100%}}h3{{margin:1.2em 0 .3em}}
@page{{margin:14mm}}</style></head>
<body><main>
<h1>croupier certify: <span class="{cls}" id="verdict">{parts.esc(verdict.upper())}</span></h1>
{banner}
<p>{parts.esc(summary_lines(report)[0])}</p>
{tile_html}
<h2>Items failed</h2>{failed_html}
<h2>Environment</h2>{env}
<h2>The checklist</h2>
<p>Protocol items fail only through a finding that quotes the rule of PROTOCOL.md it breaks; operator criteria
(the SLA, encryption, documentation, the export) say what they are judged by. "Not tested" says why;
"for the operator" items are for a person to judge, with what croupier measured.</p>
{_checklist(report)}
<h2>Capacity</h2>{cap_fig}
{parts.table(["second", "users", "calls/s", "p99 ms"], cap_rows, "num") if cap_rows else '<p class="dim">No load ramp.</p>'}
<h2>Over the load ramp</h2>{latency_fig}{calls_fig}
<h2>Findings</h2>{sev_fig}
{parts.table(["phase", "money", "contract", "note"], [[parts.esc(p), *(parts.esc(str(v.get(k, 0))) for k in ("money", "contract", "note"))] for p, v in report["severities"].items()], "num")}
<h2>Phases</h2>{_phases(report)}
<p class="dim">Each phase's own report (JSON, and HTML for the runs and the load ramp) is in the report folder;
every figure and every finding's evidence is in the JSON (<code>--json</code>).</p>
</main>
<script type="application/json" id="croupier-series">{series_data}</script>
<script type="application/json" id="certify-data">{certify_data}</script>
<script>{parts.echarts_js()}</script>
<script>{parts.SERIES_SCRIPT}</script>
<script>{_CERTIFY_SCRIPT}</script>
</body></html>"""
