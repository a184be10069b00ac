"""Run directories: ``<run_root>/<name>/<timestamp>/`` with the resolved spec, plan and rank logs.

A ``latest`` symlink beside the timestamped directories points at the newest run, so
``runs/<name>/latest/rank.0.log`` is always the last thing that happened.
"""
from __future__ import annotations

import os
import secrets
import time
from typing import Optional

from hvdrun_cli.contract import LATEST_LINK
from hvdrun_cli.spec.model import JobSpec


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def planned_run_dir(spec: JobSpec, run_id: str, explicit: Optional[str] = None) -> str:
    """Where this run's files go; nothing is created yet (a plan that fails leaves no trace)."""
    if explicit:
        return os.path.abspath(explicit)
    return os.path.join(spec.run_root, spec.name, run_id)


def create_run_dir(path: str, link_latest: bool = True) -> None:
    """Create the run directory and (``link_latest``) point ``<run_root>/<name>/latest`` at it."""
    os.makedirs(path, exist_ok=True)
    if not link_latest:
        return
    link = os.path.join(os.path.dirname(path), LATEST_LINK)
    tmp = f"{link}.{os.getpid()}.tmp"
    try:
        os.symlink(os.path.basename(path), tmp)
        os.replace(tmp, link)
    except OSError:
        pass  # filesystems without symlinks: the directory itself is enough
