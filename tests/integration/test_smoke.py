"""``hvdjob smoke`` end to end: real ranks on this machine, verdicts, exit codes and JUnit XML."""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Optional

import pytest

from tests.hvdjob_process import REPO, Finished, kill_quietly, processes_of_run, read_json, run_hvdjob

pytestmark = pytest.mark.integration
CHECKS = ["runs", "finite-loss", "loss-decreases", "same-parameters", "checkpoint-resume"]


def _smoke(*args: str, tmpdir: Optional[Path] = None, timeout: float = 400) -> Finished:
    """``hvdjob smoke ARGS`` from the repository root; ``tmpdir`` holds its temporary work directory."""
    env = {"TMPDIR": str(tmpdir)} if tmpdir else None
    return run_hvdjob("smoke", *args, cwd=REPO, env=env, timeout=timeout)


def _statuses(finished: Finished) -> Dict[str, str]:
    """check -> PASS/FAIL/SKIP from the verdict lines."""
    found = {}
    for line in finished.output.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0] in ("PASS", "FAIL", "SKIP") and parts[1].rstrip(":") in CHECKS:
            found[parts[1].rstrip(":")] = parts[0]
    return found


def _junit_cases(path: Path) -> Dict[str, ET.Element]:
    suites = ET.parse(path).getroot().findall("testsuite")
    assert len(suites) == 1
    return {case.get("name"): case for case in suites[0].findall("testcase")}


def _assert_no_rank_left(work_dir: Path) -> None:
    for plan in work_dir.glob("launch-*/plan.json"):
        left = processes_of_run(read_json(plan)["run_id"])
        kill_quietly(left)
        assert left == [], f"processes of {plan.parent.name} still running"


def test_digits_torch_passes_every_check(tmp_path):
    work, report = tmp_path / "work", tmp_path / "smoke.xml"
    finished = _smoke("jobs/digits-torch.yaml", "--steps", "12", "--work-dir", str(work), "--junit", str(report),
                      "--json")
    assert finished.returncode == 0, finished.output
    data = json.loads(finished.stdout)
    assert data["ok"] is True and (data["np"], data["device"], data["mode"]) == (2, "cpu", "managed")
    assert [(c["check"], c["status"]) for c in data["checks"]] == [(name, "pass") for name in CHECKS]
    assert "stopped at step 6" in data["checks"][4]["detail"] and "step 12" in data["checks"][4]["detail"]
    second = read_json(work / "launch-2" / "summary.json")
    assert (second["resumed_from_step"], second["steps"]) == (6, 12)
    cases = _junit_cases(report)
    assert list(cases) == CHECKS
    assert all(case.find("failure") is None and case.find("skipped") is None for case in cases.values())
    _assert_no_rank_left(work)


def test_digits_keras_passes_every_check(tmp_path):
    finished = _smoke("jobs/digits-keras.yaml", "--steps", "8", tmpdir=tmp_path)
    assert finished.returncode == 0, finished.output
    assert _statuses(finished) == {name: "PASS" for name in CHECKS}
    assert "PASSED: 5 passed, 0 failed, 0 skipped" in finished.stdout
    assert list(tmp_path.glob("hvdjob-smoke-*")) == []  # a passing run removes its temporary files


def test_nan_loss_fails_the_finite_loss_check(tmp_path):
    report = tmp_path / "smoke.xml"
    finished = _smoke("jobs/nan-loss.yaml", "--steps", "6", "--junit", str(report), tmpdir=tmp_path)
    assert finished.returncode == 1, finished.output
    statuses = _statuses(finished)
    assert statuses["runs"] == "PASS"  # the job itself exits 0: only the checks catch it
    assert statuses["finite-loss"] == "FAIL"
    assert "loss = NaN" in finished.stdout and "FAILED" in finished.stdout
    cases = _junit_cases(report)
    failure = cases["finite-loss"].find("failure")
    assert failure is not None and "not finite" in failure.get("message")
    assert cases["runs"].find("failure") is None
    kept = list(tmp_path.glob("hvdjob-smoke-*"))  # a failed smoke run keeps its logs, and says where
    assert len(kept) == 1 and f"kept in {kept[0]}" in finished.stdout
    assert (kept[0] / "launch-1" / "rank.0.log").is_file()
    _assert_no_rank_left(kept[0])


def test_cluster_spec_runs_on_this_machine(tmp_path):
    work = tmp_path / "work"
    finished = _smoke("jobs/cluster-digits.yaml", "--steps", "12", "--work-dir", str(work))
    assert finished.returncode == 0, finished.output
    assert _statuses(finished) == {name: "PASS" for name in CHECKS}
    for launch in ("launch-1", "launch-2"):
        plan = read_json(work / launch / "plan.json")
        assert plan["launcher"] == "local"
        assert {slot["hostname"] for slot in plan["layout"]} == {"localhost"}
    assert list((work / "checkpoints").glob("ckpt-*.pt"))


def test_time_limit_stops_the_job(tmp_path):
    work = tmp_path / "work"
    started = time.monotonic()
    finished = _smoke("jobs/digits-torch.yaml", "--time-limit", "1", "--work-dir", str(work), "--json")
    elapsed = time.monotonic() - started
    assert finished.returncode == 1, finished.output
    data = json.loads(finished.stdout)
    runs = data["checks"][0]
    assert (runs["check"], runs["status"]) == ("runs", "fail")
    assert "time limit of 1 s reached during launch 1 of 2" in runs["detail"]
    assert [c["status"] for c in data["checks"][2:]] == ["skip", "skip", "skip"]
    assert not (work / "launch-2").exists()
    assert elapsed < 60, f"stopping took {elapsed:.0f} s"
    _assert_no_rank_left(work)


def test_script_mode_runs_and_skips_what_it_cannot_check():
    finished = _smoke("jobs/script-torch.yaml", "--set", 'args=[--epochs, "1"]')
    assert finished.returncode == 0, finished.output
    statuses = _statuses(finished)
    assert statuses == {"runs": "PASS", "finite-loss": "SKIP", "loss-decreases": "SKIP",
                        "same-parameters": "SKIP", "checkpoint-resume": "SKIP"}
    skip_lines = [line for line in finished.stdout.splitlines() if line.startswith("SKIP")]
    assert all("script mode: " in line for line in skip_lines)
