"""Smoke verdicts as JUnit XML, the test report format CI systems (GitLab, Jenkins, GitHub
Actions reporters, Azure Pipelines) display: one ``<testsuite>`` with a ``<testcase>`` per check,
a ``<failure>`` or ``<skipped>`` element carrying the verdict's message.

Built with ElementTree so every message is escaped; the result is the whole file's text.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Mapping, Optional, Sequence

from hvdrun_cli.smoke.model import FAIL, SKIP, Verdict


def render_junit(suite: str, classname: str, verdicts: Sequence[Verdict], time_s: float,
                 properties: Optional[Mapping[str, str]] = None, timestamp: str = "", hostname: str = "") -> str:
    """The XML text for one smoke run. ``classname`` groups the testcases (e.g. ``hvdjob.smoke.<job>``)."""
    failures = sum(v.status == FAIL for v in verdicts)
    skipped = sum(v.status == SKIP for v in verdicts)
    root = ET.Element("testsuites", tests=str(len(verdicts)), failures=str(failures), errors="0",
                      skipped=str(skipped), time=f"{time_s:.3f}")
    attrs = {"name": suite, "tests": str(len(verdicts)), "failures": str(failures), "errors": "0",
             "skipped": str(skipped), "time": f"{time_s:.3f}"}
    if timestamp:
        attrs["timestamp"] = timestamp
    if hostname:
        attrs["hostname"] = hostname
    testsuite = ET.SubElement(root, "testsuite", attrs)
    if properties:
        props = ET.SubElement(testsuite, "properties")
        for name, value in properties.items():
            ET.SubElement(props, "property", name=name, value=str(value))
    for verdict in verdicts:
        case = ET.SubElement(testsuite, "testcase", classname=classname, name=verdict.check,
                             time=f"{verdict.time_s:.3f}")
        if verdict.status == FAIL:
            failure = ET.SubElement(case, "failure", message=verdict.detail, type="SmokeCheckFailed")
            failure.text = "\n".join([verdict.detail, *verdict.lines])
        elif verdict.status == SKIP:
            ET.SubElement(case, "skipped", message=verdict.detail)
        else:
            ET.SubElement(case, "system-out").text = "\n".join([verdict.detail, *verdict.lines])
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
