"""A self-contained HTML report of a run (``croupier run``/``demo``) or a load test (``croupier load``).

One file to attach to a CI run or mail to a manager, readable offline: Apache ECharts (vendored
in ``static/``, see its README) is inlined into the page and draws with its SVG renderer, so
nothing is fetched when the page opens and axis labels are real text.  The charts come from
the report's per-second series (:mod:`.series`): throughput and latency per operation, refusals
by code, faults injected and findings over time, with the end-of-run settlement shaded so its
tail does not read as an outage.  Everything else — environment, verdict, findings with their
evidence (calls and answers as JSON, with the HTTP status), coverage, latency tables — is plain
HTML and reads without JavaScript.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import orjson

from ..protocol.findings import KINDS, RULES, Severity, fails
from ..protocol.money import UnknownCurrency, format_minor
from . import model, series

MAX_POINTS = 900
"""Points per line at most: a longer run is drawn in runs of seconds (the page stays small; the JSON has
every bucket)."""

SHOWN_PER_KIND = 10
"""Findings of one kind shown with their evidence (the count of those left out is said)."""

esc = html.escape


@cache
def echarts_js() -> str:
    """The vendored ECharts build (read once per process)."""
    return resources.files("simulator.report").joinpath("static/echarts.common.min.js").read_text(encoding="utf-8")


def _n(value: Any) -> str:
    """A count with thousands separators (``1,342``)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return esc(str(value))


def _pretty(text: str | None) -> str:
    """A body as indented JSON when it is JSON, else as it came."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def json_block(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _when(t0: str | None) -> str:
    if not t0:
        return "unknown"
    try:
        return datetime.strptime(t0, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return t0


def _environment(report: Mapping[str, Any], s: Mapping[str, Any]) -> str:
    """Where, when and how the run was made: enough to reproduce it or to file it."""
    load = report.get("engine") == "locust"
    rows: list[tuple[str, Any]] = [
        ("croupier version", report.get("croupier_version")),
        ("command", "croupier load" if load else "croupier run"),
        ("scenario", report.get("scenario")),
        ("wallet", report.get("wallet")),
        ("TLS", report.get("tls")),  # an https:// wallet: how its certificate was checked (or that it was not)
        ("dialect", report.get("dialect")),
        ("run id", report.get("run_id")),
        ("seed", report.get("seed")),
        ("started", _when(s.get("t0"))),
        ("duration", f"{report.get('elapsed_s', 0)} s" + (f" (wall {report['wall_s']} s)" if report.get("wall_s") else "")),
        ("workers", report.get("workers") or 1),
        ("players", report.get("players")),
        ("fails on", f"{report.get('fail_on', 'contract')} findings and worse"),
    ]
    if load:
        rows.insert(2, ("topology", report.get("topology")))
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows if v not in (None, ""))
    return f'<table class="env" id="environment">{cells}</table>'


_ROUND_ENDS = ("settled", "cancelled", "refused", "unresolved")
"""How a round can end (the other counters of ``report["rounds"]`` count events, not rounds)."""


def _overview(report: Mapping[str, Any]) -> str:
    calls = report.get("calls", {})
    rounds = report.get("rounds", {})
    items = [("calls", _n(sum(calls.values()))), ("calls per second", esc(str(report.get("calls_per_s", 0)))),
             ("rounds played", _n(sum(v for k, v in rounds.items() if k in _ROUND_ENDS)))]
    items += [("findings", _n(sum(int(v) for v in report.get("anomalies", {}).values()))),
              ("left in doubt", _n(report.get("unsettled", 0))),
              ("faults injected", _n(sum(report.get("faults", {}).values())))]
    return '<div class="tiles">' + "".join(f'<div class="tile"><b>{v}</b><span>{esc(k)}</span></div>'
                                           for k, v in items) + "</div>"


def _evidence_files(report: Mapping[str, Any]) -> str:
    """Where the transactions of closed rounds went, with every exchange of theirs (docs/reports.md)."""
    files = report.get("evidence") or []
    return f" Every closed round's calls and answers: {', '.join(f'<code>{esc(str(f))}</code>' for f in files)}." \
        if files else ""


def table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    if not rows:
        return "<p>None.</p>"
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><tr>{th}</tr>{body}</table>'


def _rounds(report: Mapping[str, Any]) -> str:
    rounds = report.get("rounds", {})
    return table(["what", "count"], [[esc(k), _n(v)] for k, v in sorted(rounds.items())])


def _ggr(report: Mapping[str, Any]) -> str:
    """The wallet's GGR by currency in major units (``demo`` reads it from the reference wallet)."""
    lines = report.get("ggr")
    if not lines:
        return ""
    cols = (("bets", "bets", False), ("staked", "bet_amount", True), ("wins", "wins", False),
            ("paid", "win_amount", True), ("refunds", "refund_amount", True), ("GGR", "ggr", True))
    by: dict[str, list[int]] = {}
    for line in lines:
        acc = by.setdefault(str(line["currency"]), [0] * len(cols))
        for i, (_, key, _) in enumerate(cols):
            acc[i] += int(line.get(key) or 0)
    rows = []
    for code, acc in sorted(by.items()):
        cells = [esc(code)]
        for (_, _, money), v in zip(cols, acc, strict=True):
            try:
                cells.append(esc(format_minor(v, code)) if money else _n(v))
            except UnknownCurrency:
                cells.append(f"{_n(v)} (minor units)")
        rows.append(cells)
    return "<h2>GGR (the wallet's own report)</h2>" + table(["currency", *(c for c, _, _ in cols)], rows)


def evidence(e: Mapping[str, Any]) -> str:
    status = e.get("status")
    latency = e.get("latency_ms")
    head = (f"<b>{esc(str(e.get('call', {}).get('op', 'call')))}</b> → {esc(str(e.get('outcome', '')))}"
            + (f" · HTTP {esc(str(status))}" if status is not None else " · no HTTP answer")
            + (f" · {latency} ms" if latency is not None else "")
            + ("" if e.get("visible", True) else " · answer not read by the provider (fault)"))
    body = e.get("response")
    return (f'<li class="ev"><div>{head}</div><div class="pair"><div><i>call</i><pre>{esc(json_block(e.get("call")))}'
            f"</pre></div><div><i>answer{f' (HTTP {esc(str(status))})' if status is not None else ''}</i><pre>"
            f"{esc(_pretty(body)) if body else '(no body)'}</pre></div></div></li>")


def _findings(report: Mapping[str, Any]) -> str:
    """Counts by severity and kind (with the rule each breaks), then the evidence grouped by kind."""
    groups = report.get("findings_by_severity") or model.by_severity(report.get("anomalies", {}))
    fail_on = model.severity_name(report.get("fail_on", "contract"))
    findings: list[Mapping[str, Any]] = report.get("findings", [])
    out = []
    for severity, kinds in groups.items():
        failing = fails(Severity(severity), fail_on)
        out.append(f"<h3>{esc(severity)} findings{'' if failing else ' (not failing the run)'}</h3>")
        if not kinds:
            out.append("<p>None.</p>")
            continue
        rows = []
        for kind, count in kinds.items():
            rule = RULES.get(KINDS[kind].rule) if kind in KINDS else None
            rows.append([f'<span class="{"bad" if failing else "note"}">{esc(kind)}</span>', _n(count),
                         esc(f"{rule.section}: {rule.title}") if rule else ""])
        out.append(table(["kind", "count", "rule"], rows))
        for kind, count in kinds.items():
            mine = [f for f in findings if f["kind"] == kind]
            shown = mine[:SHOWN_PER_KIND]
            if count <= len(shown):
                left = f"all {_n(count)} shown"
            elif len(mine) > len(shown):
                left = (f"showing {_n(len(shown))} of {_n(count)} — the JSON has the evidence of the first "
                        f"{_n(len(mine))}; the count is exact")
            else:
                left = (f"showing {_n(len(shown))} of {_n(count)} — croupier keeps the evidence of the first "
                        f"{_n(len(mine))} of a kind; the count is exact")
            items = "".join(
                f"<details><summary>{esc(str(f.get('player_id', '')))}: {esc(str(f.get('message', '')))}</summary>"
                f"<blockquote>{esc(str(f.get('section', '')))}: “{esc(str(f.get('quote', '')))}”</blockquote>"
                f"<ol>{''.join(evidence(e) for e in f.get('evidence', []))}</ol></details>" for f in shown)
            out.append(f'<section class="kind" id="kind-{esc(kind)}"><h4>{esc(kind)} <small>({left})</small></h4>'
                       f"{items}</section>")
    return "".join(out)


def _coverage(report: Mapping[str, Any]) -> str:
    rows = []
    for r in report.get("coverage", []):
        cls = "bad" if r["result"] == "fail" else ("dim" if r["result"] in ("not exercised", "not on this wire") else "ok")
        rows.append([f"{esc(r['section'])}: {esc(r['title'])}", _n(r["calls"]),
                     f'<span class="{cls}">{esc(model.describe_result(r))}</span>'])
    return table(["rule", "calls", "result"], rows)


def _latency(report: Mapping[str, Any]) -> str:
    rows = [[esc(op), _n(v["count"]), *(str(v.get(k, "")) for k in ("p50", "p95", "p99", "max"))]
            for op, v in report.get("latency_ms", {}).items()]
    return table(["operation", "calls", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows, "num")


def _load_extras(report: Mapping[str, Any]) -> str:
    """Thresholds (``load``, and ``run --fail-on 'p99(bet)>250ms'``) and, for a load test, Locust's own rows."""
    out = []
    if report.get("thresholds"):
        out += ["<h2>Thresholds</h2>", table(["threshold", "result", "measured"], [
            [esc(t["threshold"]), '<span class="ok">pass</span>' if t["passed"] else '<span class="bad">FAIL</span>',
             esc(t["message"])] for t in report.get("thresholds", [])])]
    if report.get("engine") != "locust":
        return "".join(out)
    loc = report.get("locust") or {}
    rows = [[esc(str(r.get("type", ""))), esc(str(r.get("name", ""))), _n(r.get("requests", 0)),
             _n(r.get("failures", 0)), str(r.get("p50", "")), str(r.get("p99", ""))] for r in loc.get("rows", [])]
    out += [(f"<h2>Locust's rows</h2><p>{_n(loc.get('requests', 0))} requests, {_n(loc.get('failures', 0))} failures"
             " (protocol calls, and findings as failure rows without latency; the wallet's admin API, used to "
             "provision players, is counted apart).</p>"),
            table(["type", "name", "requests", "failures", "p50 ms", "p99 ms"], rows, "num")]
    return "".join(out)


def _banner(report: Mapping[str, Any]) -> str:
    out = []
    stop = report.get("interrupted")
    if isinstance(stop, Mapping):
        settled = "settled" if stop.get("settled") else f"{_n(stop.get('unsettled', 0))} calls left unsettled"
        out.append(f'<div class="banner" id="interrupted"><b>INTERRUPTED</b> by {esc(str(stop.get("signal", "a signal")))}'
                   f" after {esc(str(stop.get('after_s', '?')))} s ({settled}). {esc(str(stop.get('note', '')))} "
                   "The verdict below is on what was seen until then.</div>")
    if report.get("error"):
        out.append(f'<p class="bad">ERROR: {esc(str(report["error"]))} — the run could not test what it was asked to, '
                   "so it is not a pass.</p>")
    for reason in report.get("reasons", []) if report.get("verdict") != "pass" else []:
        out.append(f'<p class="bad">{esc(str(reason))}</p>')
    return "".join(out)


_CHARTS = (
    ("chart-calls", "Throughput by operation", "Calls that ended in each second, stacked by operation."),
    ("chart-latency", "Latency by operation", "p50 (solid) and p99 (dashed) of the calls that ended in each second."),
    ("chart-refusals", "Refusals by error code", ("Calls the wallet refused, by protocol error code, per second "
                                                  "(injected faults such as bad signatures are refused on purpose).")),
    ("chart-faults", "Faults injected", "What croupier did to delivery on purpose, per second."),
    ("chart-anomalies", "Findings", "Findings by kind, at the second they were made."),
)

SERIES_SCRIPT = r"""
(function () {
  var data = JSON.parse(document.getElementById('croupier-series').textContent);
  var s = data.series, t0 = s.t0 ? Date.parse(s.t0) : null;
  var last = s.seconds.length ? s.seconds[s.seconds.length - 1] + data.step - 1 : 0;
  var palette = ['#4e79a7','#f28e2b','#e15759','#76b7b2','#59a14f','#edc948','#b07aa1','#ff9da7','#9c755f','#bab0ac'];
  function clock(sec) {
    if (t0 === null) return '';
    var d = new Date(t0 + sec * 1000);
    return d.toISOString().substr(11, 8) + ' UTC';
  }
  function shade() {
    if (s.settling_from === null || s.settling_from === undefined) return undefined;
    return {silent: true, itemStyle: {color: 'rgba(120,120,120,0.15)'},
            label: {show: true, position: 'insideTop', color: '#555', formatter: 'settlement'},
            data: [[{xAxis: s.settling_from}, {xAxis: Math.max(last, s.settling_from) + 1}]]};
  }
  function pairs(values) { return values.map(function (v, i) { return [s.seconds[i], v]; }); }
  function base(el, unit, yname, series) {
    var first = series[0];
    if (first) first.markArea = shade();
    return {
      animation: false, color: palette,
      title: {show: false},
      legend: {type: 'scroll', top: 0, left: 50, right: 10},
      grid: {left: 84, right: 24, top: 62, bottom: 58},
      tooltip: {trigger: 'axis', valueFormatter: function (v) { return v === null || v === undefined ? '–' : v + unit; },
                axisPointer: {label: {formatter: function (p) { return p.value + ' s  ' + clock(p.value); }}}},
      xAxis: {type: 'value', min: 0, max: s.settling_from === null || s.settling_from === undefined ? Math.max(last, 0) : Math.max(last, s.settling_from) + 1, name: 'time since start (s)' + (t0 ? ', started ' + s.t0.replace('T', ' ').replace('Z', ' UTC') : ''),
              nameLocation: 'middle', nameGap: 30, minInterval: 1,
              axisLabel: {formatter: '{value} s'}, splitLine: {show: true, lineStyle: {color: '#eee'}}},
      yAxis: {type: 'value', name: yname, nameLocation: 'end', nameGap: 14, min: 0,
              nameTextStyle: {align: 'left', fontWeight: 'bold', color: '#444'},
              axisLabel: {formatter: '{value}' + unit}, splitLine: {lineStyle: {color: '#eee'}}},
      series: series
    };
  }
  function counts(table, kind) {
    return Object.keys(table).sort().map(function (k) {
      return {name: k, type: kind, stack: 'all', data: pairs(table[k]), showSymbol: false, barMaxWidth: 16,
              areaStyle: kind === 'line' ? {opacity: 0.5} : undefined, lineStyle: {width: 1}};
    });
  }
  var charts = {
    'chart-calls': function () { return base(null, '/s', 'calls per second', counts(s.calls, 'line')); },
    'chart-latency': function () {
      var out = [];
      Object.keys(s.latency_ms).sort().forEach(function (op, i) {
        var c = palette[i % palette.length];
        out.push({name: op + ' p50', type: 'line', symbolSize: 4, connectNulls: false, color: c,
                  data: pairs(s.latency_ms[op].p50), lineStyle: {width: 1.5}});
        out.push({name: op + ' p99', type: 'line', symbolSize: 4, connectNulls: false, color: c,
                  data: pairs(s.latency_ms[op].p99), lineStyle: {width: 1.5, type: 'dashed'}});
      });
      return base(null, ' ms', 'latency (ms)', out);
    },
    'chart-refusals': function () { return base(null, '/s', 'refused calls per second', counts(s.refusals, 'bar')); },
    'chart-faults': function () { return base(null, '/s', 'faults per second', counts(s.faults, 'bar')); },
    'chart-anomalies': function () { return base(null, '', 'findings per second', counts(s.anomalies, 'bar')); }
  };
  var made = [];
  Object.keys(charts).forEach(function (id) {
    var el = document.getElementById(id);
    if (!el || el.getAttribute('data-empty') === 'true') return;
    var chart = echarts.init(el, null, {renderer: 'svg'});
    chart.setOption(charts[id]());
    made.push(chart);
  });
  window.addEventListener('resize', function () { made.forEach(function (c) { c.resize(); }); });
  document.documentElement.setAttribute('data-charts', String(made.length));
})();
"""

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:72em;margin:0 auto;padding:1.5em 2em;background:#fff}
h1{margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 9px;text-align:left;vertical-align:top}
table.num td{text-align:right}table.num td:first-child{text-align:left}table.env th{background:#f4f4f4;font-weight:600}
.bad{color:#b00020;font-weight:600}.ok{color:#137333;font-weight:600}.note{color:#0b57d0}.dim{color:#888}
.banner{background:#fff4e5;border:2px solid #e8710a;padding:.7em 1em;margin:1em 0;font-size:15px}
.tiles{display:flex;flex-wrap:wrap;gap:.6em;margin:1em 0}.tile{border:1px solid #ddd;border-radius:6px;padding:.5em .9em;min-width:8em}
.tile b{display:block;font-size:20px}.tile span{color:#666;font-size:12px}
.chart{width:100%;height:320px}.chart[data-empty=true]{height:auto}figure{margin:1em 0}figcaption{font-weight:600}
figcaption small{font-weight:normal;color:#666;margin-left:.5em}
pre{background:#f6f8fa;border:1px solid #e3e3e3;padding:.4em .6em;font-size:12px;overflow:auto;max-height:20em;margin:.2em 0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:.6em}.ev{margin:.5em 0}details{margin:.4em 0}
summary{cursor:pointer}blockquote{color:#555;margin:.3em 1em;font-style:italic}.kind h4{margin:.8em 0 .2em}
@media print{body{background:#fff;font-size:11px}main{max-width:none;padding:0}.chart{height:240px}
figure,table,.tile,.ev{break-inside:avoid}h2{break-after:avoid}pre{max-height:none;white-space:pre-wrap}
details>summary{list-style:none}details:not([open])>*:not(summary){display:block}noscript{display:none}}
"""


def figure(chart_id: str, title: str, caption: str, names: list[str]) -> str:
    empty = not names
    body = '<p class="dim">Nothing over the run.</p>' if empty else \
        '<noscript><p class="dim">The chart needs JavaScript; the tables below have the totals.</p></noscript>'
    return (f'<figure><figcaption>{esc(title)}<small>{esc(caption)}</small></figcaption>'
            f'<div class="chart" id="{chart_id}" data-empty="{str(empty).lower()}" role="img" '
            f'aria-label="{esc(title)}: {esc(", ".join(names))}">{body}</div></figure>')


def render(report: Mapping[str, Any]) -> str:
    """The whole page for a report dict (``report["series"]`` feeds the charts; a report without one
    gets the tables only)."""
    s = report.get("series")
    if not series.valid(s):
        s = series.empty()
    assert isinstance(s, Mapping)
    kept = series.width(s)
    full_seconds = len(s["seconds"]) * kept
    s, step = series.downsample(s, MAX_POINTS)
    verdict = str(report.get("verdict", "error"))
    load = report.get("engine") == "locust"
    command = "croupier load" if load else "croupier run"
    names = {"chart-calls": sorted(s["calls"]), "chart-latency": sorted(s["latency_ms"]),
             "chart-refusals": sorted(s["refusals"]), "chart-faults": sorted(s["faults"]),
             "chart-anomalies": sorted(s["anomalies"])}
    figures = "".join(figure(cid, title, cap, names[cid]) for cid, title, cap in _CHARTS)
    resolution = "" if step == 1 else (
        f"<p>{_n(full_seconds)} seconds are drawn as {_n(len(s['seconds']))} points of {step} s each: counts are "
        f"their mean per second, p50 the mean and p99 the worst of the {'seconds' if kept == 1 else 'buckets'}' "
        f"(the JSON has {'every second' if kept == 1 else f'them in {kept}-second buckets'}).</p>")
    settling = resolution + ("" if s.get("settling_from") is None else (
        f"<p>The shaded band from second {s['settling_from']} is the end-of-run settlement: croupier stops playing, "
        "settles what is still in doubt and reads every balance once more, so throughput drops there by design.</p>"))
    data = orjson.dumps({"series": s, "step": step}).decode().replace("</", "<\\/")
    faults = [[esc(k), _n(v)] for k, v in sorted(report.get("faults", {}).items())]
    skipped = "".join(f"<li>{esc(x)}</li>" for x in report.get("skipped", []))
    errors = report.get("errors", [])
    cls = "ok" if verdict == "pass" else "bad"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{command} — {esc(str(report.get('scenario', '')))}: {esc(verdict.upper())}</title>
<style>{STYLE}</style></head>
<body><main>
<h1>{command}: <span class="{cls}" id="verdict">{esc(verdict.upper())}</span></h1>
{_banner(report)}
<h2>Environment</h2>{_environment(report, s)}
{_overview(report)}
<h2>Over time</h2>{settling}{figures}
<h2>Findings</h2>{_findings(report)}
<h2>Coverage</h2>{_coverage(report)}
<h2>Latency by operation</h2>{_latency(report)}
{_load_extras(report)}
<h2>Rounds</h2>{_rounds(report)}
{_ggr(report)}
<h2>Faults injected</h2>{table(["fault", "count"], faults)}
{f"<h2>Skipped</h2><ul>{skipped}</ul>" if skipped else ""}
{f"<h2>Errors</h2><ul>{''.join(f'<li>{esc(str(e))}</li>' for e in errors)}</ul>" if errors else ""}
<p class="dim">The per-second series, every count and the findings' evidence are in the JSON report (<code>--json</code>).{_evidence_files(report)}</p>
</main>
<script type="application/json" id="croupier-series">{data}</script>
<script>{echarts_js()}</script>
<script>{SERIES_SCRIPT}</script>
</body></html>"""
