"""The signal that asks a job to checkpoint and stop before Slurm's time limit or a preemption.

``slurm.signal`` names it; the sbatch script asks Slurm for it (``--signal=B:USR2@120``) and passes
it on, and every rank learns its name from :data:`STOP_SIGNAL_ENV`, so the rank side installs a
handler for that signal and leaves the others alone. The default is USR2: NCCL and some MPI
stacks install their own USR1 handlers (submitit moved its default to USR2 for the same reason).
Stdlib only: the rank side imports this module too.
"""
from __future__ import annotations

import signal
from typing import Mapping, Tuple

STOP_SIGNAL_ENV = "HVDJOB_STOP_SIGNAL"
STOP_SIGNALS: Tuple[str, ...] = ("USR2", "USR1", "TERM")  # what slurm.signal may name
DEFAULT_STOP_SIGNAL = "USR2"


def stop_signal(environ: Mapping[str, str]) -> signal.Signals:
    """The stop signal a rank was told about (the default when unset or not one of ours)."""
    name = environ.get(STOP_SIGNAL_ENV, DEFAULT_STOP_SIGNAL).upper().removeprefix("SIG")
    if name not in STOP_SIGNALS:
        name = DEFAULT_STOP_SIGNAL
    return signal.Signals[f"SIG{name}"]
