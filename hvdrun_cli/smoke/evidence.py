"""Read what a launch left in its run directory: losses, the summary and the parameter dumps.

Only reading and parsing lives here; judging it is :mod:`.checks`. numpy is imported only to load
parameter dumps (it is there wherever ranks run; the launcher side never needs it otherwise).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hvdrun_cli.contract import METRICS_FILE, PARAM_DUMP_PATTERN, PARAMS_DIR, SUMMARY_FILE  # noqa: F401
from hvdrun_cli.smoke.model import LossPoint

_DUMP_NAME = PARAM_DUMP_PATTERN
_LOSS_KEYS = {"train": "loss", "validation": "val_loss"}


def read_losses(run_dirs: Sequence[str]) -> Tuple[List[LossPoint], List[str]]:
    """Every loss value recorded in the runs' ``metrics.jsonl`` files, and the lines that did not parse.

    Training records carry ``loss``, validation records ``val_loss``; a NaN was written as null.
    """
    points: List[LossPoint] = []
    unreadable: List[str] = []
    for run_dir in run_dirs:
        path = os.path.join(run_dir, METRICS_FILE)
        if not os.path.isfile(path):
            continue
        label = os.path.join(os.path.basename(run_dir), METRICS_FILE)
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{label}:{number}"
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    unreadable.append(f"{where}: not JSON ({exc})")
                    continue
                point = _loss_point(record, where)
                if point is not None:
                    points.append(point)
    return points, unreadable


def _loss_point(record: Any, where: str) -> Optional[LossPoint]:
    if not isinstance(record, dict):
        return None
    key = _LOSS_KEYS.get(record.get("kind", ""))
    if key is None or key not in record:
        return None
    value = record[key]
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return LossPoint(int(record.get("step") or 0), key, number, where)


def has_metrics(run_dir: str) -> bool:
    return os.path.isfile(os.path.join(run_dir, METRICS_FILE))


def read_summary(run_dir: str) -> Optional[Dict[str, Any]]:
    """The launch's ``summary.json``, or None when it is missing or not a JSON object."""
    try:
        with open(os.path.join(run_dir, SUMMARY_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def dump_dir_of(run_dir: str) -> str:
    """Where the ranks of the launch in ``run_dir`` write their final parameters."""
    return os.path.join(run_dir, PARAMS_DIR)


def read_param_dumps(dump_dir: str) -> Dict[int, Any]:
    """rank -> that rank's final parameters (a flat numpy array) from ``rank<N>.npy`` files."""
    try:
        names = os.listdir(dump_dir)
    except FileNotFoundError:
        return {}
    import numpy as np

    dumps: Dict[int, Any] = {}
    for name in names:
        match = _DUMP_NAME.match(name)
        if match:
            dumps[int(match.group(1))] = np.load(os.path.join(dump_dir, name), allow_pickle=False)
    return dumps
