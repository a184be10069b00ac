"""The plain values a smoke run passes around: launch outcomes, loss points and check verdicts.

Kept apart from the code that produces them so the checks and renderers stay pure functions that
unit tests can feed directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

PASS, FAIL, SKIP = "pass", "fail", "skip"

# Check names, in the order they are reported (also the JUnit testcase names).
RUNS = "runs"
FINITE_LOSS = "finite-loss"
LOSS_DECREASES = "loss-decreases"
SAME_PARAMETERS = "same-parameters"
CHECKPOINT_RESUME = "checkpoint-resume"
CHECK_ORDER = (RUNS, FINITE_LOSS, LOSS_DECREASES, SAME_PARAMETERS, CHECKPOINT_RESUME)


@dataclass(frozen=True)
class Verdict:
    """One check's result. ``detail`` is one line; ``lines`` add context (a rank's last log lines).

    A SKIP always says why: it is neither a pass nor a failure, and CI shows it as skipped.
    """

    check: str
    status: str
    detail: str
    lines: Tuple[str, ...] = ()
    time_s: float = 0.0

    def render(self) -> str:
        head = f"{self.status.upper():<4}  {self.check}: {self.detail}"
        return "\n".join([head, *(f"      {line}" for line in self.lines)])

    def to_dict(self) -> Dict[str, Any]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "lines": list(self.lines),
                "time_s": round(self.time_s, 3)}


@dataclass(frozen=True)
class LaunchOutcome:
    """How one launch of the job ended. ``exit_code`` None: it never started (no time left)."""

    label: str  # e.g. "launch 1 of 2 (steps 0-10)"
    run_dir: str
    exit_code: Optional[int]
    message: str
    tail: Tuple[str, ...] = ()
    wall_time_s: float = 0.0
    timed_out: bool = False
    stopped_by_signal: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_dict(self) -> Dict[str, Any]:
        return {"label": self.label, "run_dir": self.run_dir, "exit_code": self.exit_code,
                "message": self.message, "wall_time_s": round(self.wall_time_s, 3), "timed_out": self.timed_out}


@dataclass(frozen=True)
class LossPoint:
    """One loss value from ``metrics.jsonl``. ``value`` None: the record held null (NaN when written)."""

    step: int
    name: str  # "loss" (a training interval) or "val_loss" (a validation pass)
    value: Optional[float]
    source: str  # "<run dir name>/metrics.jsonl:<line>", to point the user at it
