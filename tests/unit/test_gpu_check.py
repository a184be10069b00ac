"""``make gpu-check``'s pieces that run without a GPU: parsing nvidia-smi, argv, judging, the report.

The nvidia-smi outputs are recorded from an 8 x A100 machine (tests/unit/golden/nvidia_smi/).
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hvdrun_cli.doctor import gpu_check as gc
from hvdrun_cli.smoke.box import gpu_count
from hvdrun_cli.smoke.junit import render_junit
from hvdrun_cli.smoke.model import FAIL, PASS, Verdict

GOLDEN = Path(__file__).parent / "golden" / "nvidia_smi"
A100_LIST = (GOLDEN / "a100x8-list.txt").read_text()
A100_QUERY = (GOLDEN / "a100x8-query.csv").read_text()
REPO = Path(__file__).resolve().parents[2]


def doctor_facts(nccl: bool = True, visible: int = 8, torch_ok: bool = True, tf_ok: bool = False) -> dict:
    summary = f"{'NCCL built' if nccl else 'CPU build (no NCCL)'}, {visible or 'no'} GPU{'s' if visible != 1 else ''} visible"
    return {"horovod": "0.28.1", "problems": [],
            "frameworks": {"torch": {"ok": torch_ok}, "tensorflow": {"ok": tf_ok}},
            "gpu": {"nccl_built": nccl, "nccl_version": "2.30.7" if nccl else None, "visible": visible,
                    "how": "8 GPUs listed by nvidia-smi -L", "summary": summary.replace("no GPUs", "no GPU")}}


def test_the_recorded_gpu_list_counts_eight_gpus() -> None:
    assert gpu_count(A100_LIST, None) == (8, "8 GPUs listed by nvidia-smi -L")
    assert gpu_count(A100_LIST, "0,1,2,3")[0] == 4


def test_the_recorded_query_is_parsed() -> None:
    gpus = gc.parse_gpu_query(A100_QUERY)
    assert len(gpus) == 8
    assert gpus[0] == gc.GpuInfo("NVIDIA A100-SXM4-80GB", 81920, "570.133.20")
    assert gc.describe_gpus(gpus) == "8 x NVIDIA A100-SXM4-80GB (81920 MiB), driver 570.133.20"


def test_mixed_gpus_are_listed_one_by_one() -> None:
    text = "NVIDIA A100-SXM4-80GB, 81920 MiB, 570.133.20\nTesla T4, 15360 MiB, 570.133.20\n"
    assert gc.describe_gpus(gc.parse_gpu_query(text)) == "NVIDIA A100-SXM4-80GB + Tesla T4, driver 570.133.20"


def test_the_query_command_matches_the_recorded_columns() -> None:
    assert gc.QUERY_ARGV == ("nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv")
    assert A100_QUERY.splitlines()[0] == "name, memory.total [MiB], driver_version"


def test_argv_builders_start_hvdjob_from_this_python(tmp_path: Path) -> None:
    py = "/venv/bin/python"
    assert gc.doctor_argv(py) == [py, "-m", "hvdrun_cli", "doctor", "--json"]
    assert gc.smoke_argv(py, Path("jobs/digits-torch.yaml"), tmp_path / "s.xml", 8) == [
        py, "-m", "hvdrun_cli", "smoke", "jobs/digits-torch.yaml", "--np", "8", "--junit", str(tmp_path / "s.xml")]
    assert gc.bandwidth_argv(py, tmp_path / "spec.json", tmp_path / "run") == [
        py, "-m", "hvdrun_cli", "run", str(tmp_path / "spec.json"), "--run-dir", str(tmp_path / "run"), "-q"]


def test_the_bandwidth_job_is_a_valid_spec_with_one_rank_per_gpu(tmp_path: Path) -> None:
    from hvdrun_cli.spec.load import load_spec  # noqa: PLC0415  (the validator users run)

    spec = gc.bandwidth_spec(8, tmp_path / "out.json", [1, 256])
    assert spec["resources"] == {"np": 8}
    assert spec["args"] == [str(tmp_path / "out.json"), "1", "256"]
    assert Path(spec["script"]).is_file()
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    loaded = load_spec(str(path))
    assert loaded.resources.np == 8


def test_example_jobs_follow_the_usable_frameworks() -> None:
    torch_only = gc.jobs_for(doctor_facts()["frameworks"])
    assert [p.name for p in torch_only] == ["digits-torch.yaml", "script-torch.yaml"]
    assert all(p.is_file() for p in torch_only)
    both = gc.jobs_for(doctor_facts(tf_ok=True)["frameworks"])
    assert "digits-keras.yaml" in [p.name for p in both]


@pytest.mark.parametrize("facts, status, words", [
    (doctor_facts(), PASS, "NCCL built, 8 GPUs visible (NCCL 2.30.7)"),
    (doctor_facts(visible=0), FAIL, "run gpu-check on a GPU machine"),
    (doctor_facts(nccl=False), FAIL, "no NCCL GPU operations (make setup-gpu)"),
    ({"horovod": None}, FAIL, "horovod is not installed"),
])
def test_doctor_verdicts(facts: dict, status: str, words: str) -> None:
    verdict, _ = gc.judge_doctor(facts)
    assert verdict.status == status and words in verdict.detail


def test_ranks_follow_the_visible_gpus() -> None:
    assert gc.judge_doctor(doctor_facts(visible=4))[1] == 4


def test_bus_bandwidth_is_nccl_tests_definition() -> None:
    alg, bus = gc.bus_bandwidth(256 << 20, 0.002, 8)
    assert alg == pytest.approx(134.2, abs=0.1)
    assert bus == pytest.approx(alg * 14 / 8)
    assert gc.bus_bandwidth(1 << 20, 0.001, 1)[1] == gc.bus_bandwidth(1 << 20, 0.001, 1)[0]


def test_the_bandwidth_verdict_names_the_largest_size() -> None:
    result = {"size": 8, "results": {"1": {"seconds": 5e-5, "rounds": 1000, "bytes": 1 << 20},
                                     "256": {"seconds": 0.002, "rounds": 32, "bytes": 256 << 20}}}
    verdict = gc.judge_bandwidth(result)
    assert verdict.status == PASS
    assert verdict.detail == "234.9 GB/s bus bandwidth at 256 MiB across 8 GPUs"
    assert verdict.lines[1].split()[0] == "1" and verdict.lines[2].split()[0] == "256"
    assert gc.judge_bandwidth(None, "exit 1; see log").detail == "exit 1; see log"


def test_the_report_merges_smoke_suites_and_totals(tmp_path: Path) -> None:
    own = render_junit("hvdjob.gpu-check", "hvdjob.gpu-check",
                       [Verdict("doctor", PASS, "ok"), Verdict("nccl-allreduce", FAIL, "slow")], 1.0)
    smoke = render_junit("hvdjob.smoke.digits-torch", "hvdjob.smoke.digits-torch",
                         [Verdict("runs", PASS, "ok"), Verdict("finite-loss", PASS, "ok")], 2.0)
    root = ET.fromstring(gc.merge_junit(own, [smoke]).split("\n", 1)[1])
    assert [s.get("name") for s in root.iter("testsuite")] == ["hvdjob.gpu-check", "hvdjob.smoke.digits-torch"]
    assert (root.get("tests"), root.get("failures"), root.get("time")) == ("4", "1", "3.000")


def test_on_this_gpu_less_machine_it_fails_in_one_line_and_writes_the_report(tmp_path: Path, monkeypatch, capsys) -> None:
    facts = doctor_facts(visible=0)
    facts["gpu"]["how"] = "no GPU: nvidia-smi unavailable"

    def fake_run(argv, log):
        log.write_text(json.dumps(facts))
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(gc, "_run", fake_run)
    code = gc.main(["--junit", str(tmp_path / "gpu.xml"), "--work-dir", str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  doctor: NCCL built, no GPU visible (no GPU: nvidia-smi unavailable): run gpu-check on a GPU machine" in out
    report = ET.fromstring((tmp_path / "gpu.xml").read_text().split("\n", 1)[1])
    assert root_counts(report) == ("3", "1", "2")


def root_counts(root: ET.Element) -> tuple:
    return root.get("tests"), root.get("failures"), root.get("skipped")
