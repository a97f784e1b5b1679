"""JUnit XML: one test case per anomaly kind (CI dashboards show which rule a wallet broke)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from ..ledger import Anomaly


def junit_xml(report: dict[str, Any], suite: str = "croupier") -> bytes:
    anomalies: dict[str, int] = report["anomalies"]
    findings: list[dict[str, Any]] = report.get("findings", [])
    failures = sum(1 for k in Anomaly if anomalies.get(str(k), 0))
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=f"{suite}.{report.get('scenario', 'run')}", tests=str(len(Anomaly)),
                       failures=str(failures), errors="0", time=str(report.get("elapsed_s", 0)))
    props = ET.SubElement(ts, "properties")
    for key in ("wallet", "seed", "run_id", "scenario"):
        if key in report:
            ET.SubElement(props, "property", name=key, value=str(report[key]))
    for kind in Anomaly:
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.anomalies", name=str(kind))
        count = anomalies.get(str(kind), 0)
        if count:
            first = next((f for f in findings if f["kind"] == str(kind)), None)
            fail = ET.SubElement(case, "failure", type=str(kind), message=f"{count} × {kind}"
                                 + (f": {first['message']}" if first else ""))
            if first:
                lines = [f"player {first['player_id']}: {first['message']}"]
                for ev in first["evidence"]:
                    lines.append(f"  {ev['call']} -> {ev['outcome']}"
                                 + (f" ({ev['latency_ms']} ms)" if ev.get("latency_ms") is not None else ""))
                fail.text = "\n".join(lines)
    for name, extra in (("provisioning", report.get("errors") or []), ("settlement", [])):
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.run", name=name)
        if name == "settlement" and report.get("unsettled"):
            ET.SubElement(case, "failure", type="unsettled", message=f"{report['unsettled']} calls still in doubt")
        elif extra:
            ET.SubElement(case, "failure", type=name, message=f"{len(extra)} errors").text = "\n".join(extra[:20])
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
