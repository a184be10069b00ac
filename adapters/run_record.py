"""What a run leaves for later: per-rank timing windows and rank 0's TensorBoard scalars.

Every rank appends one JSON line per logging window to ``<run dir>/timing/rank.<N>.jsonl`` (step,
steps in the window, seconds per step, seconds per step spent waiting in allreduce when the loop
measured it), so ``hvdjob report`` can name the slowest rank and the imbalance between ranks.
Rank 0 also writes the job's scalars as TensorBoard event files in ``<run dir>/tensorboard`` with
the framework's own writer (``torch.utils.tensorboard`` or ``tf.summary``), imported only when the
first scalar is written. A missing ``tensorboard`` package costs one line, never the run.

Scripts can opt in with :class:`ScalarLog` (TensorBoard) and :func:`report_progress` (the
launcher's progress bar), both re-exported by ``hvdrun_cli.adapters``.
"""
from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import types
from typing import Any, Callable, Dict, Mapping, Optional

from .base import ENV_RUN_DIR
from .rankenv import env_rank

TIMING_DIR = "timing"
TENSORBOARD_DIR = "tensorboard"


def timing_path(run_dir: str, rank: int) -> str:
    return os.path.join(run_dir, TIMING_DIR, f"rank.{rank}.jsonl")


def _finite(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def detect_framework() -> Optional[str]:
    """The framework a script already imported (TensorFlow wins when both are loaded)."""
    if "tensorflow" in sys.modules:
        return "tensorflow"
    if "torch" in sys.modules:
        return "torch"
    return None


def _without_tensorflow() -> None:
    """Make tensorboard use its TensorFlow stub, as its ``no_tensorflow`` build does.

    ``torch.utils.tensorboard`` otherwise imports all of TensorFlow when it is installed (measured
    here: 24 s on rank 0 while the other ranks wait in their next allreduce). Only done when the
    process has not imported TensorFlow itself.
    """
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def _import_torch_writer() -> None:
    try:
        _without_tensorflow()
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        pass  # said once, when the first scalar is written


def _import_tensorflow_writer() -> None:
    try:
        from tensorboard.plugins.scalar import summary_v2  # noqa: F401  (what tf.summary.scalar loads)
    except ImportError:
        pass


def preload_writer(framework: Optional[str]) -> None:
    """Import the framework's TensorBoard writer in the background while the rank sets up.

    Imported at the first scalar instead, it cost rank 0 time in the middle of training while every
    other rank waited in its next allreduce: PyTorch's writer a few hundred milliseconds (measured:
    managed ÷ hand-written 0.92 with TensorBoard against 0.95 without it, 600 steps, 3 repeats),
    TensorFlow's scalar summaries about 0.06 s. If training reaches the first scalar before the
    import is done, Python's import lock makes it wait for that import.
    """
    target = {"torch": _import_torch_writer, "tensorflow": _import_tensorflow_writer}.get(framework or "")
    if target is not None:
        start_preload(target)


_preload: Optional[threading.Thread] = None


def start_preload(target: Callable[[], None]) -> None:
    """Run ``target`` (an import) on a daemon thread that every fork of this process waits for."""
    global _preload
    _preload = threading.Thread(target=target, name="hvdjob-tensorboard-import", daemon=True)
    _preload.start()


def _finish_preload_before_fork() -> None:
    """A child forked mid-import inherits that import's module locks, held by a thread it does not
    have: a DataLoader worker that then imports one of those modules waits for ever, and so does the
    rank reading from it (seen: a resumed job whose validation loader forked its workers while the
    writer's import was still running hung at its last step). So a fork waits for the import."""
    thread = _preload
    if thread is not None and thread is not threading.current_thread():
        thread.join()


os.register_at_fork(before=_finish_preload_before_fork)


class _TorchWriter:
    def __init__(self, logdir: str) -> None:
        _without_tensorflow()
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=logdir)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._writer.add_scalar(tag, value, global_step=step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class _TensorFlowWriter:
    def __init__(self, logdir: str) -> None:
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(logdir)

    def scalar(self, tag: str, value: float, step: int) -> None:
        with self._writer.as_default():
            self._tf.summary.scalar(tag, value, step=step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


_WRITERS = {"torch": _TorchWriter, "tensorflow": _TensorFlowWriter}


class ScalarLog:
    """TensorBoard scalars in ``<run dir>/tensorboard``, written by rank 0 only.

        from hvdrun_cli.adapters import ScalarLog
        tb = ScalarLog()                      # framework: the one the script imported
        tb.log(step, loss=0.3, accuracy=0.9)  # tags "train/loss", "train/accuracy"
        tb.log(step, group="validation", loss=0.35)
    """

    def __init__(self, run_dir: Optional[str] = None, framework: Optional[str] = None,
                 rank: Optional[int] = None, enabled: bool = True) -> None:
        self.run_dir = run_dir or os.environ.get(ENV_RUN_DIR) or os.getcwd()
        self.framework = framework
        self.rank = env_rank(os.environ) if rank is None else rank
        self.enabled = enabled
        self._writer: Any = None
        self._failed = False

    @property
    def logdir(self) -> str:
        return os.path.join(self.run_dir, TENSORBOARD_DIR)

    def log(self, step: int, group: str = "train", **values: Optional[float]) -> None:
        """Write each finite value as ``<group>/<name>`` at ``step``; a no-op on ranks other than 0."""
        writer = self._open()
        if writer is None:
            return
        for name, value in values.items():
            value = _finite(value)
            if value is not None:
                writer.scalar(f"{group}/{name}", value, int(step))
        writer.flush()

    def _open(self) -> Any:
        if self._writer is not None or self._failed or not self.enabled or self.rank != 0:
            return self._writer
        framework = self.framework or detect_framework()
        try:
            if framework not in _WRITERS:
                raise ImportError(f"no framework to write with (got {framework!r}; pass framework=)")
            self._writer = _WRITERS[framework](self.logdir)
        except ImportError as exc:
            self._failed = True
            print(f"hvdjob: TensorBoard events are not written: {exc} (pip install tensorboard)", flush=True)
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class RunRecorder:
    """Called by the Reporter on every rank once per logging window; no framework: no TensorBoard."""

    def __init__(self, run_dir: str, framework: Optional[str], tensorboard: bool = True) -> None:
        self.run_dir = run_dir
        self.scalars = ScalarLog(run_dir, framework, rank=0, enabled=tensorboard and framework is not None)

    def record_window(self, rank: int, attempt: int, step: int, steps: int, metrics: Mapping[str, Optional[float]],
                      step_time_s: Optional[float], allreduce_wait_s: Optional[float]) -> None:
        """This rank's timing for the window ending at ``step``; rank 0 also writes ``metrics``."""
        path = timing_path(self.run_dir, rank)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        record = {"rank": rank, "attempt": attempt, "time": round(time.time(), 3), "step": step, "steps": steps,
                  "step_time_s": _round(step_time_s), "allreduce_wait_s": _round(allreduce_wait_s)}
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        if rank == 0:
            self.scalars.log(step, "train", **metrics)

    def record_validation(self, rank: int, step: int, metrics: Mapping[str, Optional[float]]) -> None:
        if rank == 0:
            self.scalars.log(step, "validation", **metrics)

    def close(self) -> None:
        self.scalars.close()


def _round(value: Optional[float]) -> Optional[float]:
    value = _finite(value)
    return None if value is None else round(value, 6)


def report_progress(step: int, total: Optional[int] = None, *, loss: Optional[float] = None,
                    accuracy: Optional[float] = None, samples_per_sec: Optional[float] = None,
                    rank: Optional[int] = None) -> None:
    """For scripts: tell ``hvdjob run``'s progress bar (and its watchdog) where training is.

    Prints one progress mark (``hvdjob: at step 40 total=100 loss=0.41``), which the launcher keeps
    off the terminal and out of the rank log. Every rank may call it (the watchdog sees each rank
    move); the metrics are shown from rank 0's marks.
    """
    from hvdrun_cli.contract import progress_mark

    rank = env_rank(os.environ) if rank is None else rank
    fields: Dict[str, object] = {}
    if rank == 0:
        values = {"total": total, "loss": loss, "accuracy": accuracy, "samples_per_sec": samples_per_sec}
        fields = {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in values.items() if v is not None}
    print(progress_mark(int(step), **fields), flush=True)
