"""``hvdjob report`` and ``hvdjob runs`` over run directories laid out as real runs leave them."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional

from click.testing import CliRunner

from hvdrun_cli.cli.main import cli
from hvdrun_cli.report.analysis import report_numbers
from hvdrun_cli.report.rundata import load_run
from hvdrun_cli.report.runs import list_runs
from hvdrun_cli.slurm import records


def _jsonl(path: Path, rows: List[Dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_run(root: Path, name: str, run_id: str, *, exit_code: Optional[int] = 0, message: str = "job finished",
             waits: Optional[Dict[int, Optional[float]]] = None, steps: int = 40) -> Path:
    """A run directory as `hvdjob run` + a managed job leave it (rank 1 computes longer when waits say so)."""
    run = root / name / run_id
    run.mkdir(parents=True)
    (run / "spec.json").write_text(json.dumps({"name": name}))
    lines = [{"kind": "train", "step": 20, "loss": 1.0, "accuracy": 0.5, "lr": 0.1, "samples_per_sec": 3000.0},
             {"kind": "validation", "step": 20, "val_loss": 0.8, "val_accuracy": 0.7},
             {"kind": "train", "step": 40, "loss": 0.5, "accuracy": 0.8, "lr": 0.1, "samples_per_sec": 3200.0},
             {"kind": "validation", "step": 40, "val_loss": 0.6, "val_accuracy": 0.65}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + "{damaged\n")
    (run / "summary.json").write_text(json.dumps({"status": "completed", "steps": steps, "world_size": 2,
                                                  "val_accuracy": 0.65}))
    for rank in (0, 1):
        wait = (waits or {}).get(rank)
        _jsonl(run / "timing" / f"rank.{rank}.jsonl", [
            {"rank": rank, "attempt": 0, "step": s, "steps": 10, "step_time_s": 0.020 if s > 10 else 0.5,
             "allreduce_wait_s": wait} for s in (10, 20, 30, 40)])
    if exit_code is not None:
        (run / "result.json").write_text(json.dumps({"exit_code": exit_code, "message": message,
                                                     "wall_time_s": 12.5}))
    return run


def test_the_slowest_rank_is_the_one_that_waits_least(tmp_path: Path) -> None:
    run = make_run(tmp_path, "job", "20261201-100000-aaaaaa", waits={0: 0.008, 1: 0.002})
    numbers = report_numbers(load_run(str(run)))
    assert [(r["rank"], r["windows"], r["step_time_s"]) for r in numbers["ranks"]] == [(0, 3, 0.02), (1, 3, 0.02)]
    balance = numbers["imbalance"]
    assert (balance["slowest_rank"], balance["fastest_rank"]) == (1, 0)
    assert balance["percent"] == 50.0  # 18 ms of compute against 12 ms
    assert balance["text"] == "slowest rank 1: 50% more compute per step than rank 0 (18.00 ms vs 12.00 ms)"
    assert numbers["train"]["loss"] == [1.0, 0.5] and numbers["validation"]["val_accuracy"] == [0.7, 0.65]
    assert numbers["best_val_accuracy"] == 0.7  # the best, not the last


def test_without_allreduce_wait_no_slowest_rank_is_invented(tmp_path: Path) -> None:
    run = make_run(tmp_path, "job", "20261201-100000-aaaaaa")
    numbers = report_numbers(load_run(str(run)))
    assert numbers["allreduce_wait_recorded"] is False and numbers["imbalance"] is None
    result = CliRunner().invoke(cli, ["report", str(run), "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    assert "slowest rank: not recorded" in result.output
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_writes_the_png_in_the_run_dir_and_json_has_the_same_numbers(tmp_path: Path) -> None:
    run = make_run(tmp_path, "job", "20261201-100000-aaaaaa", waits={0: 0.008, 1: 0.002})
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert f"written to {run / 'report.png'}" in result.output
    assert "slowest rank 1: 50% more compute per step than rank 0" in result.output
    assert os.path.getsize(run / "report.png") > 10_000
    as_json = json.loads(CliRunner().invoke(cli, ["report", str(run), "--json"]).output)
    assert as_json["imbalance"]["slowest_rank"] == 1 and as_json["steps"] == 40


def test_report_of_something_that_is_not_a_run_is_one_clean_line(tmp_path: Path) -> None:
    for target in (tmp_path / "missing", tmp_path):
        result = CliRunner().invoke(cli, ["report", str(target)])
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and "not a run directory" in result.output


def test_runs_lists_newest_first_with_status_steps_accuracy_and_logs(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_run(root, "digits", "20261201-090000-aaaaaa")
    make_run(root, "digits", "20261201-100000-bbbbbb", exit_code=1, message="job failed: rank 1 exited with code 1")
    make_run(root, "other", "20261201-110000-cccccc", exit_code=None)  # no result.json, ranks alive
    make_run(root, "other", "20261201-080000-dddddd", exit_code=75, message="job stopped on SIGINT; ranks saved")
    os.symlink("20261201-100000-bbbbbb", root / "digits" / "latest")
    rows = list_runs(str(root), live={"20261201-110000-cccccc"})
    assert [(r.run_id, r.status, r.exit_code) for r in rows] == [
        ("20261201-110000-cccccc", "running", None), ("20261201-100000-bbbbbb", "failed", 1),
        ("20261201-090000-aaaaaa", "finished", 0), ("20261201-080000-dddddd", "stopped", 75)]
    assert rows[2].steps == 40 and rows[2].best_val_accuracy == 0.7 and rows[2].wall_time_s == 12.5
    assert rows[2].logs == str(root / "digits" / "20261201-090000-aaaaaa")
    assert rows[2].started == "2026-12-01T09:00:00"
    assert [r.run_id for r in list_runs(str(root), ["digits"], live=set())] == [
        "20261201-100000-bbbbbb", "20261201-090000-aaaaaa"]
    assert list_runs(str(root), live=set())[0].status == "no result"  # ranks gone, hvdjob never finished


def test_runs_ties_slurm_jobs_to_their_runs_and_lists_jobs_not_started_yet(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run = make_run(root, "digits", "20261201-100000-aaaaaa")
    slurm_dir = root / "digits" / "slurm" / "20261201-095900"
    slurm_dir.mkdir(parents=True)
    (slurm_dir / "slurm-41.err").write_text(f"hvdjob: digits: run directory {run}\n")
    for job_id in ("41", "42"):
        records.append(str(root), records.Submission(
            job_id=job_id, name="digits", spec="/x/job.yaml", script=str(slurm_dir / "job.sbatch"),
            output=str(slurm_dir / f"slurm-{job_id}.out"), error=str(slurm_dir / f"slurm-{job_id}.err"),
            cwd=str(tmp_path), submitted_at="2026-12-01T09:59:00+00:00"))
    rows = list_runs(str(root), live=set())
    by_id = {r.run_id: r for r in rows}
    assert set(by_id) == {"20261201-100000-aaaaaa", "slurm-42"}  # slurm/ itself is not a run
    assert by_id["20261201-100000-aaaaaa"].slurm_job_id == "41"
    assert by_id["slurm-42"].status == "submitted" and by_id["slurm-42"].logs.endswith("slurm-42.out")
    table = CliRunner().invoke(cli, ["runs", "--run-root", str(root)]).output.splitlines()
    assert table[0].split()[:4] == ["NAME", "RUN", "ID", "STARTED"]
    assert any("20261201-100000-aaaaaa (slurm 41)" in line and "finished" in line for line in table)
    as_json = json.loads(CliRunner().invoke(cli, ["runs", "--run-root", str(root), "--json"]).output)
    assert {r["run_id"] for r in as_json} == {"20261201-100000-aaaaaa", "slurm-42"}


def test_runs_under_an_empty_root_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["runs", "--run-root", str(tmp_path / "none")])
    assert result.exit_code == 0 and result.output.startswith("no runs under ")
