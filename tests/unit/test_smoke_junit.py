"""JUnit XML for smoke verdicts: what CI systems read (counts, one testcase per check, messages)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from hvdrun_cli.smoke.junit import render_junit
from hvdrun_cli.smoke.model import FAIL, PASS, SKIP, Verdict

VERDICTS = [
    Verdict("runs", PASS, "both launches exited 0 in 12.0 s", time_s=12.0),
    Verdict("finite-loss", FAIL, "2 of 10 loss values are not finite, first at step 4: loss = NaN",
            ("step 4: loss = NaN (launch-1/metrics.jsonl:2)", "a <tag> & \"quotes\"")),
    Verdict("checkpoint-resume", SKIP, "script mode: the script saves its own checkpoints"),
]


def _parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.encode("utf-8"))


def test_one_suite_with_counts_and_a_case_per_check():
    root = _parse(render_junit("hvdjob smoke digits", "hvdjob.smoke.digits", VERDICTS, 12.5,
                               {"np": "2"}, "2026-01-01T00:00:00", "box"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped", "time")} == {
        "name": "hvdjob smoke digits", "tests": "3", "failures": "1", "errors": "0", "skipped": "1",
        "time": "12.500"}
    assert suite.get("timestamp") == "2026-01-01T00:00:00" and suite.get("hostname") == "box"
    assert [(p.get("name"), p.get("value")) for p in suite.iter("property")] == [("np", "2")]
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("hvdjob.smoke.digits", "runs"), ("hvdjob.smoke.digits", "finite-loss"),
        ("hvdjob.smoke.digits", "checkpoint-resume")]
    assert cases[0].get("time") == "12.000"


def test_failure_and_skipped_elements_carry_the_messages():
    suite = _parse(render_junit("s", "c", VERDICTS, 1.0)).find("testsuite")
    runs, finite, resume = suite.findall("testcase")
    assert runs.find("failure") is None and runs.find("skipped") is None
    assert runs.find("system-out").text == "both launches exited 0 in 12.0 s"
    failure = finite.find("failure")
    assert failure.get("message") == VERDICTS[1].detail
    assert failure.text.splitlines()[1:] == ["step 4: loss = NaN (launch-1/metrics.jsonl:2)", 'a <tag> & "quotes"']
    assert resume.find("failure") is None
    assert resume.find("skipped").get("message") == "script mode: the script saves its own checkpoints"


def test_all_passing_has_no_failures():
    suite = _parse(render_junit("s", "c", VERDICTS[:1], 1.0)).find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "0")
    assert suite.find("properties") is None
