"""Progress lines, ``metrics.jsonl`` and ``summary.json``, written by rank 0 only.

The values passed in are already averaged across ranks by the adapter, so what rank 0 prints is
the job's view, not one shard's. Each metrics record is one JSON line appended and flushed at once,
so a watcher (or the launcher's progress watchdog) can tail the file while training runs.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, Mapping, Optional

from hvdrun_cli.contract import METRICS_FILE, SUMMARY_FILE, Summary, param_dump_name, progress_mark

from .base import RankContext
from .checkpoint import atomic_write_json
from .run_record import RunRecorder



def _round(value: Optional[float], digits: int = 6) -> Optional[float]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


class Reporter:
    """Rank 0's window on the run (lines, metrics, summary); other ranks only record their timing."""

    def __init__(self, ctx: RankContext, total_steps: int, epochs: int, log_interval: int,
                 framework: Optional[str] = None, tensorboard: bool = True) -> None:
        self.ctx = ctx
        self.enabled = ctx.is_root
        self.total_steps = total_steps
        self.epochs = epochs
        self.log_interval = max(1, int(log_interval))
        self.metrics_path = os.path.join(ctx.run_dir, METRICS_FILE)
        self.summary_path = os.path.join(ctx.run_dir, SUMMARY_FILE)
        self.train_start = time.time()
        self.first_step_unix_time: Optional[float] = None
        self.train_end: Optional[float] = None  # the last step's end, before the final checkpoint
        self._mark_time = self.train_start
        self._mark_samples = 0
        self._mark_step: Optional[int] = None
        self._steps_started = 0  # calls of first_step(): the first window's length after a start or resume
        self.record = RunRecorder(ctx.run_dir, framework, tensorboard)  # timing on every rank, TensorBoard on 0
        if self.enabled:
            os.makedirs(ctx.run_dir, exist_ok=True)

    def due(self, global_step: int) -> bool:
        """Whether ``global_step`` (1-based count of steps done) ends a logging interval."""
        return global_step % self.log_interval == 0

    def first_step(self) -> None:
        """Call when each training step starts; the first call ends start-up, for the summary."""
        self._steps_started += 1
        if self.first_step_unix_time is None:
            self.first_step_unix_time = time.time()
            self._mark_time = self.first_step_unix_time
            self.train_start = self.first_step_unix_time

    def training_ended(self) -> None:
        """Call when the last training step is done: the final checkpoint, summary and barrier that
        follow are not training, so the summary's throughput (train_time_s) stops here."""
        self.train_end = time.time()

    def _append(self, record: Mapping[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def progress(self, *, epoch: int, global_step: int, loss: float, accuracy: float, lr: float,
                 samples_done: int, step_time_s: Optional[float] = None,
                 allreduce_wait_s: Optional[float] = None) -> None:
        """One progress line and metrics record; ``samples_done`` counts all ranks since training began.

        ``step_time_s``: this window's mean wall time per optimizer step on this rank;
        ``allreduce_wait_s``: of that, the mean time per step spent waiting in allreduces (gradients,
        metrics, stop agreement), where the backend can measure it. The engine measures both per
        window (never per step with a host sync), so a run record hooked in here sees them.
        """
        now = time.time()
        elapsed = now - self.train_start
        interval = max(now - self._mark_time, 1e-9)
        rate = (samples_done - self._mark_samples) / interval
        steps = global_step - self._mark_step if self._mark_step is not None else self._steps_started
        self._mark_time, self._mark_samples, self._mark_step = now, samples_done, global_step
        if step_time_s is None and steps > 0:
            step_time_s = interval / steps
        self.record.record_window(self.ctx.rank, self.ctx.attempt, global_step, steps,
                                  {"loss": loss, "accuracy": accuracy, "lr": lr, "samples_per_sec": rate},
                                  step_time_s, allreduce_wait_s)
        if not self.enabled:
            return
        total = self.total_steps or "?"
        print(f"epoch {epoch + 1}/{self.epochs} step {global_step}/{total} loss {loss:.4f} "
              f"accuracy {accuracy:.4f} lr {lr:.5g} {rate:,.0f} samples/s elapsed {elapsed:.1f}s", flush=True)
        print(progress_mark(global_step, total=self.total_steps, epoch=f"{epoch + 1}/{self.epochs}",
                            loss=f"{loss:.6g}", accuracy=f"{accuracy:.6g}", samples_per_sec=f"{rate:.1f}"),
              flush=True)  # for the launcher's progress view
        self._append({"kind": "train", "time": now, "epoch": epoch + 1, "step": global_step,
                      "total_steps": self.total_steps, "loss": _round(loss), "accuracy": _round(accuracy),
                      "lr": _round(lr, 8), "samples_per_sec": _round(rate, 2), "elapsed_s": _round(elapsed, 3),
                      "step_time_s": _round(step_time_s, 7), "allreduce_wait_s": _round(allreduce_wait_s, 7)})

    def validation(self, *, epoch: int, global_step: int, loss: float, accuracy: float) -> None:
        self.record.record_validation(self.ctx.rank, global_step, {"loss": loss, "accuracy": accuracy})
        if not self.enabled:
            return
        print(f"epoch {epoch + 1}/{self.epochs} validation loss {loss:.4f} accuracy {accuracy:.4f}", flush=True)
        self._append({"kind": "validation", "time": time.time(), "epoch": epoch + 1, "step": global_step,
                      "val_loss": _round(loss), "val_accuracy": _round(accuracy)})

    def event(self, message: str) -> None:
        """A one-off line from rank 0 (resume, checkpoint saved, stop agreed)."""
        if self.enabled:
            print(f"hvdjob: {message}", flush=True)

    def summary(self, *, framework: str, status: str, steps: int, epochs_done: float, samples: int,
                train_loss: Optional[float], train_accuracy: Optional[float], val_loss: Optional[float],
                val_accuracy: Optional[float], resumed_from_step: Optional[int], process_start: float,
                checkpoint: Optional[str], extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Build the end-of-run summary (same dict on every rank); rank 0 writes it atomically."""
        now = time.time()
        train_time = max((self.train_end or now) - self.train_start, 1e-9) if self.first_step_unix_time else 0.0
        result = Summary(
            framework=framework, status=status, world_size=self.ctx.size, attempt=self.ctx.attempt, steps=steps,
            epochs=_round(epochs_done, 4), samples=samples, train_loss=_round(train_loss),
            train_accuracy=_round(train_accuracy), val_loss=_round(val_loss), val_accuracy=_round(val_accuracy),
            samples_per_sec=_round(samples / train_time, 2) if train_time else None,
            train_time_s=_round(train_time, 3), wall_time_s=_round(now - process_start, 3),
            resumed_from_step=resumed_from_step, first_step_unix_time=self.first_step_unix_time,
            process_start_unix_time=process_start, checkpoint=checkpoint, extra=dict(extra or {}),
        ).to_dict()
        self.record.close()
        if self.enabled:
            print(progress_mark(steps), flush=True)  # the launcher's progress view ends at the last step
            atomic_write_json(self.summary_path, result)
        return result


def dump_parameters(directory: str, rank: int, arrays: "list") -> str:
    """Write this rank's parameters, flattened to float64, as ``rank<N>.npy``.

    Enabled by ``HVDJOB_PARAM_DUMP`` (see ``base.ENV_PARAM_DUMP``): each rank writes its final
    parameters' values so tools can compare ranks (``hvdjob smoke`` checks they are identical) or
    compare a resumed run with an uninterrupted one.
    """
    import numpy as np

    os.makedirs(directory, exist_ok=True)
    flat = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays]) if arrays else np.zeros(0)
    path = os.path.join(directory, param_dump_name(rank))
    np.save(path, flat)
    return path
