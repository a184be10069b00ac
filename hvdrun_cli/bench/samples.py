"""One measured run: what the bench took itself (launch time, wall time) plus the job's summary.json.

``summary.json`` is written by rank 0 of a managed run (a script may write the same fields into
``$HVDJOB_RUN_DIR/summary.json`` to be benchmarked too). Times are unix seconds from the same
machine clock, so "launch to first step" is a plain difference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional

from hvdrun_cli.contract import SUMMARY_FILE
from hvdrun_cli.errors import LaunchError

REQUIRED_FIELDS = ("samples_per_sec", "first_step_unix_time")


@dataclass(frozen=True)
class RunSample:
    """One run of the job at one rank count in one repeat."""

    np: int
    repeat: int  # 0-based
    samples_per_sec: float  # whole job (all ranks)
    launch_unix_time: float  # taken by the bench just before it planned and started the launch
    first_step_unix_time: float  # rank 0 began its first training step
    process_start_unix_time: Optional[float]  # rank 0's worker process was started
    wall_s: float  # planning the launch to the end of its last rank
    run_dir: str

    @property
    def time_to_first_step_s(self) -> float:
        return self.first_step_unix_time - self.launch_unix_time

    @property
    def launch_to_rank_start_s(self) -> Optional[float]:
        """hvdjob's own share: plan, rendezvous, spawning the rank processes."""
        if self.process_start_unix_time is None:
            return None
        return self.process_start_unix_time - self.launch_unix_time

    @property
    def rank_start_to_first_step_s(self) -> Optional[float]:
        """The rank's share: interpreter, framework imports, Horovod init, model and data."""
        if self.process_start_unix_time is None:
            return None
        return self.first_step_unix_time - self.process_start_unix_time

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["time_to_first_step_s"] = self.time_to_first_step_s
        data["launch_to_rank_start_s"] = self.launch_to_rank_start_s
        data["rank_start_to_first_step_s"] = self.rank_start_to_first_step_s
        return data


def _number(summary: Mapping[str, Any], key: str, where: str) -> float:
    value = summary.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LaunchError(f"{where}: {key} is missing or not a number (got {value!r}); the bench needs "
                          f"managed training, or a script that writes {', '.join(REQUIRED_FIELDS)} there")
    return float(value)


def sample_from_summary(
    summary: Mapping[str, Any],
    *,
    np: int,
    repeat: int,
    launch_unix_time: float,
    wall_s: float,
    run_dir: str,
    where: str = SUMMARY_FILE,
) -> RunSample:
    """Combine a run's summary with the bench's own timings; a summary without the numbers is an error."""
    rate = _number(summary, "samples_per_sec", where)
    if rate <= 0:
        raise LaunchError(f"{where}: samples_per_sec must be positive (got {rate!r}); did the job train any steps?")
    first = _number(summary, "first_step_unix_time", where)
    start = summary.get("process_start_unix_time")
    start_time = float(start) if isinstance(start, (int, float)) and not isinstance(start, bool) else None
    return RunSample(
        np=np,
        repeat=repeat,
        samples_per_sec=rate,
        launch_unix_time=launch_unix_time,
        first_step_unix_time=first,
        process_start_unix_time=start_time,
        wall_s=wall_s,
        run_dir=run_dir,
    )
