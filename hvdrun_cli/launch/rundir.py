"""Run directories: ``<run_root>/<name>/<timestamp>/`` with the resolved spec, plan and rank logs.

A ``latest`` symlink beside the timestamped directories points at the newest run, so
``runs/<name>/latest/rank.0.log`` is always the last thing that happened.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from typing import Optional

from hvdrun_cli.spec.model import JobSpec


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def make_run_dir(spec: JobSpec, run_id: str, explicit: Optional[str] = None) -> str:
    """Create (or reuse, with --run-dir) the run directory and point ``latest`` at it."""
    if explicit:
        path = os.path.abspath(explicit)
        os.makedirs(path, exist_ok=True)
        return path
    job_root = os.path.join(spec.run_root, spec.name)
    path = os.path.join(job_root, run_id)
    os.makedirs(path, exist_ok=False)
    link = os.path.join(job_root, "latest")
    tmp = f"{link}.{os.getpid()}.tmp"
    try:
        os.symlink(run_id, tmp)
        os.replace(tmp, link)
    except OSError:
        pass  # filesystems without symlinks: the timestamped directory is enough
    return path


def write_json_atomic(path: str, data: object) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
