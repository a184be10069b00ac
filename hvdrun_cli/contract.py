"""The launcher <-> rank contract: the one place for every fact both sides must agree on.

The launcher side (``hvdrun_cli/launch``, ``slurm``, ``smoke``, ``bench``) and the rank side
(``hvdrun_cli/adapters``, the rank supervisor) import these names instead of repeating literals, so
a change here changes both ends at once. Standard library only: it is imported on login nodes and
inside every rank before any framework starts.

What it holds:
- exit codes (0 done, 1 failed, 2 bad input, 75 stopped with a checkpoint saved);
- the ``HVDJOB_*`` environment names and the launcher variables a rank reads its place from;
- run-directory file names (``spec.json``, ``summary.json``, ``metrics.jsonl``, ``result.json`` ...);
- the rank output-line protocol: the ``[RANK] `` label, the supervisor's start/end lines and the
  progress marks, each with its writer and its parser;
- the layout codec: a slot's ``HOROVOD_*`` variables, and the layout file ``srun`` ranks read them from;
- the summary record rank 0 writes at the end of managed training.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

# ----- exit codes --------------------------------------------------------------------------------

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
# A rank stopped on request (SIGUSR1/SIGTERM) after rank 0 saved a checkpoint: a resume continues
# from it (EX_TEMPFAIL in sysexits.h). Launchers and the sbatch script requeue on it.
EXIT_STOPPED = 75

# ----- environment -------------------------------------------------------------------------------

ENV_SPEC = "HVDJOB_SPEC"  # path of the resolved spec JSON every rank reads
ENV_RUN_DIR = "HVDJOB_RUN_DIR"  # this attempt's run directory
ENV_RUN_ID = "HVDJOB_RUN_ID"  # marks every process of one run (the final sweep finds them by it)
# "ADDRESS:PORT" of hvdjob's machine as the job's other hosts reach it: a rank supervisor there stops
# its rank when that machine stops answering (the host was cut off from the job; launcher_reach.py).
ENV_LAUNCHER_REACH = "HVDJOB_LAUNCHER_REACH"
ENV_ATTEMPT = "HVDJOB_ATTEMPT"  # 0 for the first attempt, +1 per automatic restart
ENV_THREADS_PER_RANK = "HVDJOB_THREADS_PER_RANK"  # the launcher's thread-pool size for each rank
ENV_GLOO_LAYOUT = "HVDJOB_GLOO_LAYOUT"  # srun: the layout file each task reads its slot from
ENV_GLOO_VIA_HOROVODRUN = "HVDJOB_GLOO_VIA_HOROVODRUN"  # "1": local Gloo launches go through horovodrun
# HVDJOB_PARAM_DUMP=<directory>: at the end of managed training each rank writes its final
# parameters there (``rank<N>.npy``, flattened float64) so tools can compare ranks: ``hvdjob smoke``
# checks that every rank holds identical weights; tests compare a resumed run with an uninterrupted one.
ENV_PARAM_DUMP = "HVDJOB_PARAM_DUMP"
# "horovod": ranks keep Horovod's own synchronize wait (a sched_yield loop) instead of hvdjob's sleeping one.
ENV_HOROVOD_WAIT = "HVDJOB_HOROVOD_WAIT"

# Launcher variables a rank reads its global rank / local size from before Horovod starts; first match wins.
RANK_VARIABLES = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID")
LOCAL_SIZE_VARIABLES = ("HOROVOD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE")

# ----- run directory -----------------------------------------------------------------------------

SPEC_FILE = "spec.json"
PLAN_FILE = "plan.json"
RESULT_FILE = "result.json"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
LAUNCHER_LOG = "launcher.log"
LAYOUT_FILE = "gloo-layout.json"
PARAMS_DIR = "params"  # the smoke test's HVDJOB_PARAM_DUMP, inside each run directory
TIMING_DIR = "timing"  # per-rank timing records: timing/rank.N.jsonl
TENSORBOARD_DIR = "tensorboard"  # rank 0's TensorBoard event files
LATEST_LINK = "latest"  # <run_root>/<job>/latest -> the newest run directory
CHECKPOINTS_DIR = "checkpoints"  # default checkpoint.dir: <run_root>/<job>/checkpoints
PARAM_DUMP_PATTERN = re.compile(r"^rank(\d+)\.npy$")


def rank_log_name(rank: int) -> str:
    """Per-rank log file kept by the launcher in the run directory."""
    return f"rank.{rank}.log"


def param_dump_name(rank: int) -> str:
    """One rank's parameter dump inside ``HVDJOB_PARAM_DUMP``."""
    return f"rank{rank}.npy"


# ----- rank output-line protocol -----------------------------------------------------------------
# Every line a rank prints reaches the launcher as "[RANK] text", labelled by the rank supervisor.
# Inside that, a few "hvdjob: ..." lines are bookkeeping the launcher acts on.

_LABELLED = re.compile(r"^\[(\d+)\] ?(.*)$", re.DOTALL)
_STARTED = re.compile(r"^hvdjob: rank (\d+) started \(pid (\d+) on (\S+)\)")
_ENDED = re.compile(r"^hvdjob: rank (\d+) (?:exited with code (\d+)|was killed by (\S+))")
_PROGRESS = re.compile(r"^hvdjob: at step (\d+)((?: [A-Za-z_][\w.]*=\S*)*)$")
# A rank line that starts with this goes to the rank log only (e.g. hvdjob's own traceback frames).
LOG_ONLY_MARK = "hvdjob-log-only: "


def rank_label(rank: Union[int, str]) -> str:
    """The prefix the supervisor puts before each line of a rank's output."""
    return f"[{rank}] "


def parse_labelled(text: str) -> Optional[Tuple[int, str]]:
    """``(rank, body)`` of a labelled line, None for a line that is not a rank's."""
    match = _LABELLED.match(text)
    return (int(match.group(1)), match.group(2)) if match else None


def started_line(rank: Union[int, str], pid: int, host: str) -> str:
    return f"hvdjob: rank {rank} started (pid {pid} on {host})"


def could_not_start_line(rank: Union[int, str], program: str, reason: object) -> str:
    return f"hvdjob: rank {rank} could not start {program}: {reason}"


def exited_line(rank: Union[int, str], exit_code: int) -> str:
    return f"hvdjob: rank {rank} exited with code {exit_code}"


def killed_line(rank: Union[int, str], signal_name: str) -> str:
    return f"hvdjob: rank {rank} was killed by {signal_name}"


def progress_mark(step: int, **fields: object) -> str:
    """The line a rank prints to tell the launcher it is still training (``key=value`` extras for the
    progress view: total, loss, samples_per_sec, ...; values must not contain spaces)."""
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    return f"hvdjob: at step {step}{extra}"


def log_only(line: str) -> str:
    """``line`` marked for the rank log only: the launcher keeps it there and does not show it."""
    return LOG_ONLY_MARK + line


@dataclass(frozen=True)
class Started:
    rank: int
    pid: int
    host: str


@dataclass(frozen=True)
class Ended:
    rank: int
    exit_code: Optional[int]  # None when killed by a signal
    signal_name: Optional[str]


def parse_started(body: str) -> Optional[Started]:
    match = _STARTED.match(body)
    return Started(int(match.group(1)), int(match.group(2)), match.group(3)) if match else None


def parse_ended(body: str) -> Optional[Ended]:
    match = _ENDED.match(body)
    if not match:
        return None
    code = int(match.group(2)) if match.group(2) is not None else None
    return Ended(int(match.group(1)), code, match.group(3))


def parse_progress_mark(body: str) -> Optional[int]:
    """The step of a progress mark, None for any other line."""
    match = _PROGRESS.match(body)
    return int(match.group(1)) if match else None


def parse_progress_fields(body: str) -> Optional[Tuple[int, Dict[str, str]]]:
    """A progress mark's step and its ``key=value`` extras, None for any other line."""
    match = _PROGRESS.match(body)
    if not match:
        return None
    return int(match.group(1)), dict(item.split("=", 1) for item in match.group(2).split())


# ----- layout codec ------------------------------------------------------------------------------
# One rank's place (what horovodrun's Gloo mode exports): field name -> Horovod variable.
SLOT_VARIABLES = (
    ("hostname", "HOROVOD_HOSTNAME"),
    ("rank", "HOROVOD_RANK"),
    ("size", "HOROVOD_SIZE"),
    ("local_rank", "HOROVOD_LOCAL_RANK"),
    ("local_size", "HOROVOD_LOCAL_SIZE"),
    ("cross_rank", "HOROVOD_CROSS_RANK"),
    ("cross_size", "HOROVOD_CROSS_SIZE"),
)


def _slot_fields(slot: Any) -> Dict[str, Any]:
    if isinstance(slot, Mapping):
        return {name: slot[name] for name, _ in SLOT_VARIABLES}
    return {name: getattr(slot, name) for name, _ in SLOT_VARIABLES}


def slot_env(slot: Any) -> Dict[str, str]:
    """The ``HOROVOD_*`` rank variables for one slot (an object or mapping with the slot fields)."""
    values = _slot_fields(slot)
    return {var: str(values[name]) for name, var in SLOT_VARIABLES}


def encode_layout(slots: Sequence[Any]) -> str:
    """The layout file's text: one record per rank, in rank order."""
    return json.dumps([_slot_fields(s) for s in slots], indent=1)


def decode_layout_slot(text: str, index: int) -> Dict[str, str]:
    """The ``HOROVOD_*`` variables of the ``index``-th rank of a layout file's text."""
    return slot_env(json.loads(text)[index])


# ----- summary record ----------------------------------------------------------------------------

STATUS_COMPLETED = "completed"  # trained every epoch
STATUS_MAX_STEPS = "max_steps"  # stopped at train.max_steps
STATUS_STOPPED = "stopped"  # stopped on request, checkpoint saved (exit 75)
STATUS_ALREADY_COMPLETE = "already_complete"  # the checkpoint was at the last step: nothing trained


@dataclass
class Summary:
    """What rank 0 writes to ``summary.json`` when managed training ends; ``bench`` and ``smoke`` read it.

    Unknown keys (``extra``) are kept flat next to these fields, so readers of older files still work.
    """

    framework: str = ""
    status: str = ""
    world_size: int = 0
    attempt: int = 0
    steps: int = 0
    epochs: Optional[float] = None
    samples: int = 0
    train_loss: Optional[float] = None
    train_accuracy: Optional[float] = None
    val_loss: Optional[float] = None
    val_accuracy: Optional[float] = None
    samples_per_sec: Optional[float] = None
    train_time_s: Optional[float] = None
    wall_time_s: Optional[float] = None
    resumed_from_step: Optional[int] = None
    first_step_unix_time: Optional[float] = None
    process_start_unix_time: Optional[float] = None
    checkpoint: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data, **extra}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "Summary":
        names = {f.name for f in fields(Summary)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        return Summary(**known, extra={k: v for k, v in data.items() if k not in names})
