"""Rank side of hvdjob: runs inside every Horovod rank.

``python -m hvdrun_cli.adapters.worker`` is what the launcher starts. Scripts may use the
helpers re-exported here (``torch_setup``, ``keras_setup``, ``scaled_lr``); they are loaded on
first use, so importing this package never imports torch or TensorFlow.
"""
from __future__ import annotations

from typing import Any

_HELPERS = ("torch_setup", "keras_setup", "scaled_lr", "TorchSetup", "KerasSetup")
__all__ = list(_HELPERS)


def __getattr__(name: str) -> Any:
    if name in _HELPERS:
        from . import helpers

        return getattr(helpers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
