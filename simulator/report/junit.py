"""JUnit XML: a test case per kind of finding (CI dashboards show which rule a wallet broke).

Money and contract kinds are test cases (a ``<failure>`` when found and failing under
``--fail-on``); notes — choices the protocol allows — are ``<properties>`` (test cases too with
``--fail-on note``); the coverage table is properties (``coverage.<rule>``); a run that could
not test anything has an ``<error>`` (the verdict ``error``), never a silent pass; an interrupted
run has the property ``interrupted`` and a ``run completed`` case with an ``<error>`` saying what
was stopped.

The counts in the headers (``tests``, ``failures``, ``errors``, on every ``<testsuite>`` and on
``<testsuites>``) are counted from the elements themselves by :func:`recount`, so they cannot
disagree with the cases below them (a test validates the file against the JUnit schema).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from ..protocol.findings import KINDS, Severity, fails
from . import model


def junit_xml(report: dict[str, Any], suite: str = "croupier") -> bytes:
    anomalies: dict[str, int] = report.get("anomalies", {})
    findings: list[dict[str, Any]] = report.get("findings", [])
    fail_on = model.severity_name(report.get("fail_on", "contract"))
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=f"{suite}.{report.get('scenario', 'run')}")
    props = ET.SubElement(ts, "properties")
    for key in ("wallet", "seed", "run_id", "scenario", "verdict", "fail_on", "error"):
        if report.get(key) is not None:
            ET.SubElement(props, "property", name=key, value=str(report[key]))
    for kind_id, kind in KINDS.items():
        count = int(anomalies.get(kind_id, 0))
        if kind.severity is Severity.NOTE and not fails(kind.severity, fail_on):
            ET.SubElement(props, "property", name=f"note.{kind_id}", value=str(count))
            for i, f in enumerate(f for f in findings if f["kind"] == kind_id):
                ET.SubElement(props, "property", name=f"note.{kind_id}.{i + 1}", value=f"{f.get('rule')}: {f['message']}")
            continue
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.{kind.severity}", name=kind_id)
        if not count:
            continue
        first = next((f for f in findings if f["kind"] == kind_id), None)
        message = f"{count} × {kind_id} ({kind.severity})" + (f": {first['message']}" if first else "")
        if not fails(kind.severity, fail_on):
            ET.SubElement(case, "system-out").text = message
            continue
        fail = ET.SubElement(case, "failure", type=kind_id, message=message)
        if first:
            lines = [f"rule {first.get('rule', kind.rule)} ({first.get('section', '')}): {first.get('quote', '')}",
                     f"player {first['player_id']}: {first['message']}"]
            for ev in first["evidence"]:
                lines.append(f"  {ev['call']} -> {ev['outcome']}"
                             + (f" ({ev['latency_ms']} ms)" if ev.get("latency_ms") is not None else "")
                             + (f" HTTP {ev['status']} {ev['response']!r}" if ev.get("response") else ""))
            fail.text = "\n".join(lines)
    for row in report.get("coverage", []):
        ET.SubElement(props, "property", name=f"coverage.{row['rule']}",
                      value=f"calls={row['calls']} result={model.describe_result(row)}")
    for line in report.get("skipped", []):
        ET.SubElement(props, "property", name="skipped", value=line)
    interrupted_case(ts, suite, report.get("interrupted"))
    run = ET.SubElement(ts, "testcase", classname=f"{suite}.run", name="the run tested the wallet")
    if report.get("verdict") == "error" or report.get("error"):
        err = ET.SubElement(run, "error", type="run", message=str(report.get("error") or "the run tested nothing"))
        err.text = "\n".join(report.get("errors", [])[:20])
    elif report.get("errors"):
        ET.SubElement(run, "system-out").text = "\n".join(report["errors"][:20])
    ts.set("time", str(report.get("elapsed_s", 0)))
    return to_bytes(root)


def interrupted_case(ts: ET.Element, suite: str, stop: object) -> None:
    """The shared mark of an interrupted run, check or load: the property ``interrupted`` (the signal) and
    one ``run completed`` case with an ``<error>`` saying what was stopped and what was left unsettled."""
    if not isinstance(stop, dict):
        return
    props = ts.find("properties")
    if props is None:
        props = ET.Element("properties")
        ts.insert(0, props)
    ET.SubElement(props, "property", name="interrupted", value=str(stop.get("signal", "yes")))
    case = ET.SubElement(ts, "testcase", classname=f"{suite}.run", name="run completed")
    detail = f"{stop.get('signal', 'a signal')} after {stop.get('after_s', '?')} s"
    if "settled" in stop:
        detail += f"; settled: {stop.get('settled')}; left unsettled: {stop.get('unsettled', 0)}"
    ET.SubElement(case, "error", type="interrupted",
                  message=str(stop.get("note") or "the run was interrupted")).text = detail


def thresholds_suite(root: ET.Element, suite: str, report: dict[str, Any]) -> None:
    """A suite with one case per threshold (``croupier load``'s, and ``croupier run --fail-on THRESHOLD``'s)."""
    ts = ET.SubElement(root, "testsuite", name=f"{suite}.{report.get('scenario', 'run')}.thresholds",
                       time=str(report.get("elapsed_s", 0)))
    for r in report.get("thresholds", []):
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.thresholds", name=r["threshold"])
        if not r["passed"]:
            ET.SubElement(case, "failure", type="threshold", message=r["message"])


def to_bytes(root: ET.Element) -> bytes:
    """The document, its header counts first set from the cases themselves (:func:`recount`)."""
    recount(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def recount(root: ET.Element) -> ET.Element:
    """Set ``tests``/``failures``/``errors``/``skipped`` of every ``<testsuite>`` from its ``<testcase>``
    children, and of ``<testsuites>`` as their sums (``time`` too); call it again after adding a suite or a case."""
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    time_s = 0.0
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for ts in suites:
        cases = ts.findall("testcase")
        mine = {"tests": len(cases), "failures": sum(1 for c in cases if c.find("failure") is not None),
                "errors": sum(1 for c in cases if c.find("error") is not None),
                "skipped": sum(1 for c in cases if c.find("skipped") is not None)}
        for key, n in mine.items():
            ts.set(key, str(n))
            totals[key] += n
        try:
            time_s += float(ts.get("time") or 0)
        except ValueError:
            pass
    if root.tag == "testsuites":
        for key, n in totals.items():
            root.set(key, str(n))
        root.set("time", str(round(time_s, 3)))
    return root
