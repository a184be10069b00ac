"""Rank side of hvdjob: runs inside every Horovod rank.

``python -m hvdrun_cli.adapters.worker`` is what the launcher starts. Scripts may use the
helpers re-exported here (``torch_setup``, ``keras_setup``, ``scaled_lr``; ``ScalarLog`` for
TensorBoard scalars and ``report_progress`` for hvdjob's progress bar); they are loaded on first use, so importing this package never imports torch or TensorFlow.
"""
from __future__ import annotations

from typing import Any

_HELPERS = ("torch_setup", "keras_setup", "scaled_lr", "TorchSetup", "KerasSetup")
_RECORDING = ("ScalarLog", "report_progress")
__all__ = list(_HELPERS + _RECORDING)


def __getattr__(name: str) -> Any:
    if name in _HELPERS:
        from . import helpers

        return getattr(helpers, name)
    if name in _RECORDING:
        from . import run_record

        return getattr(run_record, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
