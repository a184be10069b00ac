"""Pure parts of the benchmark suite: run order, launcher command lines, stage arithmetic, report."""
from __future__ import annotations

import sys

import pytest
import yaml

from benchmarks.common import Section, rotate, slug
from benchmarks.launch import hvdjob_argv, horovodrun_argv, set_args, torchrun_argv
from benchmarks.launch_profile import STAGES, stage_durations
from benchmarks.run_all import parse_args, report
from hvdrun_cli.bench.table import Table


def test_each_variant_leads_one_repeat_in_turn() -> None:
    variants = ("a", "b", "c")
    assert [rotate(variants, r) for r in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert rotate((), 3) == []


def test_script_args_survive_the_yaml_of_set() -> None:
    value = set_args(["/tmp/odd: dir/out.json", "16", "--flag"])
    key, _, text = value.partition("=")
    assert key == "args"
    assert yaml.safe_load(text) == ["/tmp/odd: dir/out.json", "16", "--flag"]


def test_launcher_command_lines() -> None:
    assert hvdjob_argv("job.yaml", "/r", np=2, sets=["a=1"]) == [
        sys.executable, "-m", "hvdrun_cli", "run", "job.yaml", "--run-dir", "/r", "-q", "--np", "2", "--set", "a=1"]
    hr = horovodrun_argv(2, "s.py", ["x"])
    assert hr[0].endswith("horovodrun") and hr[1:] == ["-np", "2", "--gloo", sys.executable, "s.py", "x"]
    tr = torchrun_argv(2, "s.py", ["x"])
    assert tr[0].endswith("torchrun") and tr[1:] == ["--standalone", "--nproc-per-node", "2", "s.py", "x"]


def test_stage_durations_add_up_and_ignore_sub_tick_gaps() -> None:
    marks = {"launch": 100.0, "parent_start": 100.3, "process_start": 100.295, "first_line": 100.4,
             "torch_imported": 101.4, "horovod_imported": 101.5, "initialised": 101.7, "optimizer_built": 102.2,
             "broadcast_done": 102.25, "first_step": 102.3}
    durations = stage_durations(marks)
    assert durations["parent starts → rank process starts"] == 0.0  # -5 ms: inside one 10 ms tick
    assert durations["import torch"] == pytest.approx(1.0)
    parts = sum(durations[label] for label, _, _ in STAGES[:-1])
    assert parts == pytest.approx(durations["total: launch → first step"], abs=0.01)


def test_unknown_benchmark_is_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--only", "startup,speed"])
    assert info.value.code == 2
    assert "unknown benchmark(s) speed" in capsys.readouterr().err
    assert parse_args(["--only", "training", "--repeats", "2"]).only == ["training"]


def test_report_names_the_machine_and_each_section() -> None:
    section = Section("startup", "Launch", Table(("measured", "unit", "min / median / max"), (("x", "s", "1"),)),
                      notes=["lower is better"])
    machine = {"cores": 2, "cpu_model": "AMD EPYC", "python": "3.11.7", "torch": "2.13.0", "horovod": "0.28.1"}
    text = report([section], machine, 3, 4.2, (0.1, 0.2))
    assert text.startswith("Measured on 2 cores (AMD EPYC), Python 3.11.7, torch 2.13.0, Horovod 0.28.1; 3 repeats")
    assert "**Launch**\n\n| measured | unit | min / median / max |" in text
    assert "- lower is better" in text
    assert slug("torchrun (torch.distributed gloo)") == "torchrun-torch-distributed-gloo"
