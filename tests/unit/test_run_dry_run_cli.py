"""``hvdjob run --dry-run`` (and ``--json``) as the README promises: exit 0, print the plan, write nothing;
and a PBS allocation (``PBS_NODEFILE``) as the host source of ``run``. No rank is started."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict

from tests.hvdjob_process import run_hvdjob, write_job


def _tree(root: Path) -> Dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


def _job(tmp_path: Path, np: int = 2) -> Path:
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "train.py").write_text("print('never run by a dry run')\n")
    return write_job(spec_dir, "job.yaml", f"""
        name: dry
        framework: torch
        script: train.py
        resources: {{np: {np}}}
        """)


def test_dry_run_and_its_json_exit_0_print_the_plan_and_write_nothing(tmp_path: Path) -> None:
    job = _job(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = _tree(tmp_path)
    text = run_hvdjob("run", str(job), "--dry-run", cwd=cwd, timeout=60)
    as_json = run_hvdjob("run", str(job), "--dry-run", "--json", cwd=cwd, timeout=60)
    assert (text.returncode, as_json.returncode) == (0, 0), text.output + as_json.output
    assert "ranks:     2 on 1 host(s)" in text.stdout and "commands:" in text.stdout
    plan = json.loads(as_json.stdout)
    assert plan["np"] == 2 and len(plan["layout"]) == 2
    assert not Path(plan["run_dir"]).exists()  # the run directory it would use is not created
    assert _tree(tmp_path) == before, "a dry run created or changed files"
    assert "never run by a dry run" not in text.output + as_json.output


def test_pbs_nodefile_is_the_host_source_of_run(tmp_path: Path) -> None:
    job = _job(tmp_path, np=4)
    nodefile = tmp_path / "pbs_nodes"
    nodefile.write_text("nodeA\nnodeA\nnodeB\nnodeB\n")  # PBS lists a host once per slot
    env = {"PBS_NODEFILE": str(nodefile), "SLURM_JOB_NODELIST": "", "SLURM_JOB_ID": ""}
    env = {k: v for k, v in env.items() if v or k in os.environ}
    finished = run_hvdjob("run", str(job), "--dry-run", "--json", cwd=tmp_path, env=env, timeout=60)
    assert finished.returncode == 0, finished.output
    plan = json.loads(finished.stdout)
    assert [(s["hostname"], s["local_rank"]) for s in plan["layout"]] == [
        ("nodeA", 0), ("nodeA", 1), ("nodeB", 0), ("nodeB", 1)]
    assert plan["launcher"] in ("mpi", "gloo")  # several hosts: mpirun when installed, else horovodrun
