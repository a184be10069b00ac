"""Past runs under a run root, newest first: what ``hvdjob runs`` lists.

A run is a directory ``<run_root>/<job>/<run id>/`` holding ``spec.json`` or ``plan.json``. Its
status comes from ``result.json`` (written when ``hvdjob run`` ends); without one, a run whose ranks
are still alive on this machine (found by ``HVDJOB_RUN_ID`` in their environment) is ``running``.
Jobs sent with ``hvdjob submit`` are found in ``<run_root>/.slurm_jobs.jsonl``: the ``hvdjob run``
inside the allocation names its run directory on stderr, which Slurm writes to the job's error file,
so each run is tied to its Slurm job id; a submission with no run yet is listed as ``submitted``.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Dict, Iterable, List, Optional, Set

from hvdrun_cli.report.analysis import best_val_accuracy
from hvdrun_cli.report.rundata import RunData, is_run_dir, load_run
from hvdrun_cli.slurm import records

_RUN_ID_TIME = re.compile(r"^(\d{8}-\d{6})")
_ANNOUNCED = re.compile(r": run directory (\S.*)$")
EXIT_CHECKPOINTED = 75
EXIT_STALLED = 124
_ERROR_FILE_HEAD = 1 << 20  # the run directory lines come first; never read a huge file whole


@dataclass(frozen=True)
class RunRow:
    name: str
    run_id: str
    started: Optional[str]  # ISO 8601, local time, seconds
    status: str  # finished | failed | stopped | stalled | running | no result | submitted
    exit_code: Optional[int]
    steps: Optional[int]
    best_val_accuracy: Optional[float]
    wall_time_s: Optional[float]
    logs: str  # the run directory (or the Slurm output file before the run starts)
    slurm_job_id: Optional[str] = None

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def started_at(run_id: str, path: str) -> Optional[datetime]:
    """From the run id (``20261201-101500-ab12cd``, local time), else the directory's mtime."""
    match = _RUN_ID_TIME.match(run_id)
    if match:
        try:
            return datetime.strptime(match.group(1), "%Y%m%d-%H%M%S")
        except ValueError:
            pass
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime)
    except OSError:
        return None


def status_of(result: Optional[Dict[str, object]], running: bool) -> str:
    if result is None:
        return "running" if running else "no result"
    code = result.get("exit_code")
    message = str(result.get("message") or "")
    if code == 0:
        return "finished"
    if code == EXIT_STALLED or "watchdog" in message:
        return "stalled"
    if code == EXIT_CHECKPOINTED or message.startswith("job stopped") or "stopped on" in message:
        return "stopped"
    return "failed"


def live_run_ids(proc: str = "/proc") -> Set[str]:
    """``HVDJOB_RUN_ID`` of every process on this machine that carries one (one pass over /proc)."""
    found: Set[str] = set()
    prefix = b"HVDJOB_RUN_ID="
    try:
        entries = os.listdir(proc)
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "environ"), "rb") as fh:
                for item in fh.read().split(b"\0"):
                    if item.startswith(prefix):
                        found.add(item[len(prefix):].decode(errors="replace"))
        except OSError:
            continue
    return found


def run_dirs(run_root: str) -> List[str]:
    """``<run_root>/<job>/<run id>`` directories (``latest`` links and checkpoints skipped)."""
    found = []
    try:
        jobs = sorted(os.listdir(run_root))
    except OSError:
        return []
    for job in jobs:
        job_dir = os.path.join(run_root, job)
        if job.startswith(".") or not os.path.isdir(job_dir) or os.path.islink(job_dir):
            continue
        for entry in sorted(os.listdir(job_dir)):
            path = os.path.join(job_dir, entry)
            if not os.path.islink(path) and os.path.isdir(path) and is_run_dir(path):
                found.append(path)
    return found


def row_for(run: RunData, live: Set[str], slurm_job_id: Optional[str] = None) -> RunRow:
    run_id = os.path.basename(run.path)
    result, summary = run.result or {}, run.summary or {}
    steps = summary.get("steps")
    if steps is None and run.train:
        steps = run.train[-1].get("step")
    started = started_at(run_id, run.path)
    code = result.get("exit_code")
    wall = result.get("wall_time_s")
    return RunRow(
        name=run.name, run_id=run_id, started=started.isoformat(timespec="seconds") if started else None,
        status=status_of(run.result, run_id in live), exit_code=code if isinstance(code, int) else None,
        steps=steps if isinstance(steps, int) else None, best_val_accuracy=best_val_accuracy(run),
        wall_time_s=float(wall) if isinstance(wall, (int, float)) else None, logs=run.path,
        slurm_job_id=slurm_job_id)


def announced_run_dirs(error_file: str) -> List[str]:
    """Run directories an ``hvdjob run`` named in this Slurm error file (one per requeue)."""
    try:
        with open(error_file, encoding="utf-8", errors="replace") as fh:
            text = fh.read(_ERROR_FILE_HEAD)
    except OSError:
        return []
    dirs = []
    for line in text.splitlines():
        match = _ANNOUNCED.search(line)
        if match:
            dirs.append(os.path.realpath(match.group(1).strip()))
    return dirs


def _submission_row(sub: records.Submission) -> RunRow:
    started = None
    try:
        started = datetime.fromisoformat(sub.submitted_at).astimezone().replace(tzinfo=None)
    except ValueError:
        pass
    return RunRow(name=sub.name, run_id=f"slurm-{sub.job_id}",
                  started=started.isoformat(timespec="seconds") if started else None, status="submitted",
                  exit_code=None, steps=None, best_val_accuracy=None, wall_time_s=None, logs=sub.output,
                  slurm_job_id=sub.job_id)


def list_runs(run_root: str, names: Iterable[str] = (), live: Optional[Set[str]] = None) -> List[RunRow]:
    """Every run under ``run_root`` (only jobs in ``names`` when given), newest first."""
    wanted = set(names)
    live = live_run_ids() if live is None else live
    job_of: Dict[str, str] = {}
    unstarted: List[records.Submission] = []
    for sub in records.load(run_root):
        announced = announced_run_dirs(sub.error)
        for path in announced:
            job_of[path] = sub.job_id
        if not announced:
            unstarted.append(sub)
    rows = [row_for(load_run(path), live, job_of.get(os.path.realpath(path))) for path in run_dirs(run_root)]
    rows += [_submission_row(sub) for sub in unstarted]
    if wanted:
        rows = [row for row in rows if row.name in wanted]
    return sorted(rows, key=lambda row: row.started or "", reverse=True)
