"""The list of jobs ``hvdjob submit`` sent to Slurm, kept in ``<run_root>/.slurm_jobs.jsonl``.

``hvdjob status`` with no job ids shows these, and ``hvdjob logs`` finds a job's output file here
without asking slurmctld (which forgets finished jobs after a few minutes). One JSON object per
line, appended, so concurrent submissions never rewrite each other's records.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import List, Optional

RECORDS_FILE = ".slurm_jobs.jsonl"


@dataclass(frozen=True)
class Submission:
    job_id: str
    name: str
    spec: str  # the spec file the job runs
    script: str  # the saved job.sbatch
    output: str  # Slurm's stdout file for this job (%j already replaced)
    error: str  # Slurm's stderr file
    cwd: str  # where hvdjob submit ran: "jobs submitted from this directory"
    submitted_at: str  # ISO 8601, UTC


def records_path(run_root: str) -> str:
    return os.path.join(run_root, RECORDS_FILE)


def append(run_root: str, submission: Submission) -> None:
    os.makedirs(run_root, exist_ok=True)
    with open(records_path(run_root), "a", encoding="utf-8") as fh:
        fh.write(json.dumps(dataclasses.asdict(submission), sort_keys=True) + "\n")


def load(run_root: str) -> List[Submission]:
    """Every readable record, oldest first; a damaged line is skipped rather than fatal."""
    path = records_path(run_root)
    if not os.path.exists(path):
        return []
    fields = {f.name for f in dataclasses.fields(Submission)}
    found: List[Submission] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and fields <= data.keys():
                found.append(Submission(**{k: str(data[k]) for k in fields}))
    return found


def find(run_root: str, job_id: str) -> Optional[Submission]:
    """The latest record for ``job_id`` (ids can repeat after slurmctld restarts with a clean state)."""
    matches = [s for s in load(run_root) if s.job_id == job_id]
    return matches[-1] if matches else None
