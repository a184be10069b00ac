"""Read one run directory: the files ``hvdjob run`` and the ranks leave there, tolerant of damage.

Launcher-side and stdlib only. A missing file is an empty answer (a script job has no metrics, a run
still going has no result); a damaged JSON line is skipped, as a tail of a file being written may be.
"""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

# The file names come from the launcher<->rank contract, where both sides write them.
from hvdrun_cli.contract import METRICS_FILE, PLAN_FILE, RESULT_FILE, SPEC_FILE, SUMMARY_FILE, TENSORBOARD_DIR, TIMING_DIR  # noqa: E402,F401
_TIMING_FILE = re.compile(r"rank\.(\d+)\.jsonl$")


def read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_jsonl(path: str) -> List[Dict[str, Any]]:
    records: List[Dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    records.append(data)
    except OSError:
        pass
    return records


@dataclass(frozen=True)
class RunData:
    path: str
    spec: Optional[Dict[str, Any]]
    summary: Optional[Dict[str, Any]]
    result: Optional[Dict[str, Any]]
    train: List[Dict[str, Any]] = field(default_factory=list)
    validation: List[Dict[str, Any]] = field(default_factory=list)
    timing: Dict[int, List[Dict[str, Any]]] = field(default_factory=dict)  # rank -> windows

    @property
    def name(self) -> str:
        if self.spec and self.spec.get("name"):
            return str(self.spec["name"])
        return os.path.basename(os.path.dirname(self.path))

    def has_any(self) -> bool:
        return any((self.spec, self.summary, self.result, self.train, self.validation, self.timing))


def is_run_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, SPEC_FILE)) or os.path.isfile(os.path.join(path, PLAN_FILE))


def load_run(path: str) -> RunData:
    path = os.path.realpath(path)
    metrics = read_jsonl(os.path.join(path, METRICS_FILE))
    timing: Dict[int, List[Dict[str, Any]]] = {}
    for file in glob.glob(os.path.join(path, TIMING_DIR, "rank.*.jsonl")):
        match = _TIMING_FILE.search(file)
        if match:
            timing[int(match.group(1))] = read_jsonl(file)
    return RunData(
        path=path,
        spec=read_json(os.path.join(path, SPEC_FILE)),
        summary=read_json(os.path.join(path, SUMMARY_FILE)),
        result=read_json(os.path.join(path, RESULT_FILE)),
        train=[m for m in metrics if m.get("kind") == "train"],
        validation=[m for m in metrics if m.get("kind") == "validation"],
        timing=dict(sorted(timing.items())),
    )
