"""PyTorch behind the engine: Horovod's ``DistributedOptimizer`` and a plain step loop.

One optimizer step = ``backward_passes_per_step`` batches of ``batch_size`` per rank. Per step the
loop does what a hand-written Horovod loop does (zero_grad, forward, backward, step); each batch's
loss is added into the metric window's sum and its class scores and labels are copied into the
window's buffers (``torch_metrics``); the sums reach the host only when a logging window ends.
"""
from __future__ import annotations

import os
import random
import time
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import horovod.torch as hvd
import numpy as np
import torch

from hvdrun_cli.spec.model import JobSpec

from . import torch_state
from .backend import Backend, DataFacts, EpochPlan, Loaded, StepDriver, Sums
from .base import LaunchInfo, RankContext, train_of
from .checkpoint import Checkpoint, Position
from .collective import check_reduction
from .torch_build import build_loss, build_model, build_optimizer
from .torch_data import Pipeline, pipeline_for
from .torch_metrics import WindowSums

REDUCE_OPS = {"average": hvd.Average, "sum": hvd.Sum, "adasum": hvd.Adasum}
COMPRESSIONS = {"none": hvd.Compression.none, "fp16": hvd.Compression.fp16}
ALLREDUCE_OPS = {"sum": hvd.Sum, "max": hvd.Max}


def seed_everything(seed: int, deterministic: bool) -> None:
    """Same seed on every rank: identical initial weights even before the broadcast."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


class TorchBackend(Backend):
    framework = "torch"
    checkpoint_suffix = ".pt"

    def init(self, launch: LaunchInfo) -> RankContext:
        torch.set_num_threads(launch.threads)
        hvd.init()
        if torch.cuda.is_available():
            torch.cuda.set_device(hvd.local_rank())
        return RankContext(hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size(), launch.run_dir,
                           launch.attempt)

    def build(self, spec: JobSpec, ctx: RankContext, lr: float) -> DataFacts:
        train = train_of(spec)
        self.train = train
        seed_everything(train.seed, train.deterministic)
        self.device = torch.device("cuda", ctx.local_rank) if torch.cuda.is_available() else torch.device("cpu")
        self.pipeline: Pipeline = pipeline_for(spec, ctx)
        self.model = build_model(spec, self.pipeline.input_shape, self.pipeline.num_classes).to(self.device)
        hv = spec.horovod
        check_reduction(hv.reduction, hvd.mpi_enabled())
        self.batches_per_step = max(1, hv.backward_passes_per_step)
        self.optimizer = hvd.DistributedOptimizer(
            build_optimizer(spec, self.model, lr),
            named_parameters=self.model.named_parameters(),
            compression=COMPRESSIONS[hv.compression],
            op=REDUCE_OPS[hv.reduction],
            backward_passes_per_step=self.batches_per_step,
            gradient_predivide_factor=hv.gradient_predivide_factor,
        )
        self.loss_fn = build_loss(spec)
        # Different dropout masks per rank; the model was already initialised from the shared seed.
        torch.manual_seed(train.seed + 1000003 * (ctx.rank + 1))
        self._lr: Optional[float] = None
        self._mixed_precision = train.mixed_precision
        self._window = WindowSums(self.device)
        self._wait = 0.0
        self.batches_done = 0
        return self.pipeline.facts

    def local_batches(self, plan: EpochPlan) -> Optional[int]:
        return self.pipeline.local_batches(plan)

    def update_world(self, ctx: RankContext) -> None:
        self.pipeline.update_world(ctx)

    # ----- steps ----------------------------------------------------------------------------------

    def _set_lr(self, lr: float) -> None:
        if lr != self._lr:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self._lr = lr

    def _inputs(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """On the device, float32 features and int64 class labels (a user's Dataset may yield others)."""
        if x.device != self.device:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if x.dtype != torch.float32 and x.is_floating_point():
            x = x.float()
        if y.dtype != torch.int64 and not y.is_floating_point():
            y = y.long()
        return x, y

    def _batch(self, x: torch.Tensor, y: torch.Tensor, scale: int) -> None:
        """Forward and backward of one batch; its loss and correct count join the window's sums."""
        x, y = self._inputs(x, y)
        if self._mixed_precision:  # bfloat16 autocast needs no loss scaling, on CPU and GPU alike
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                out = self.model(x)
                loss = self.loss_fn(out, y)
        else:  # even a disabled autocast context costs a small step ~2% (entering and leaving it)
            out = self.model(x)
            loss = self.loss_fn(out, y)
        (loss / scale if scale > 1 else loss).backward()  # a step's gradient is the mean over its batches
        self._window.add(loss, out, y)

    def _step(self) -> None:
        started = time.perf_counter()
        self.optimizer.step()  # waits for this step's gradient allreduces
        self._wait += time.perf_counter() - started

    def run_epoch(self, plan: EpochPlan, driver: StepDriver) -> None:
        self.model.train()
        passes, optimizer = self.batches_per_step, self.optimizer
        batches = iter(self.pipeline.epoch_batches(plan))
        if passes == 1:
            for x, y in batches:
                self._set_lr(driver.begin_step())
                optimizer.zero_grad()
                self._batch(x, y, 1)
                self.batches_done += 1
                self._step()
                if not driver.end_step():
                    return
            return
        while True:
            group = [b for _, b in zip(range(passes), batches)]
            if not group:
                return
            self._set_lr(driver.begin_step())
            optimizer.zero_grad()
            for x, y in group:
                self._batch(x, y, len(group))
            self.batches_done += len(group)
            self._step()
            if not driver.end_step():
                return

    def take_window(self) -> Sums:
        return self._window.take()

    def take_sync_wait(self) -> Optional[float]:
        wait, self._wait = self._wait, 0.0
        return wait

    @torch.no_grad()
    def validate(self) -> Sums:
        self.model.eval()
        loss_sum = correct = count = 0.0
        for x, y in self.pipeline.val_batches():
            x, y = self._inputs(x, y)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.train.mixed_precision):
                out = self.model(x)
                loss = self.loss_fn(out, y)
            loss_sum += float(loss) * len(y)
            correct += float((out.argmax(dim=1) == y).sum())
            count += len(y)
        self.model.train()
        return loss_sum, correct, count

    # ----- collectives ----------------------------------------------------------------------------

    def allreduce(self, values: Sequence[float], op: str, name: str) -> List[float]:
        return self.allreduce_result(self.allreduce_start(values, op, name))

    overlaps_collectives = True

    def allreduce_start(self, values: Sequence[float], op: str, name: str) -> Any:
        tensor = torch.tensor(list(values), dtype=torch.float64)
        return hvd.allreduce_async(tensor, op=ALLREDUCE_OPS[op], name=name)

    def allreduce_result(self, pending: Any) -> List[float]:
        return hvd.synchronize(pending).tolist()

    def broadcast_object(self, obj: Any, root_rank: int = 0) -> Any:
        return hvd.broadcast_object(obj, root_rank)

    def allgather_object(self, obj: Any) -> List[Any]:
        return hvd.allgather_object(obj)

    def join(self) -> int:
        return int(hvd.join())

    def broadcast_state(self, optimizer_has_state: bool, root_rank: int = 0) -> None:
        # Optimizer state first: Horovod initialises empty optimizer state on the other ranks with a
        # zero-gradient step, which (with weight decay) moves their weights; the parameter broadcast
        # below then overwrites them. A fresh start skips this entirely for the same reason.
        if optimizer_has_state:
            hvd.broadcast_optimizer_state(self.optimizer, root_rank=root_rank)
        hvd.broadcast_parameters(self.model.state_dict(), root_rank=root_rank)

    # ----- state ----------------------------------------------------------------------------------

    def rng_state(self) -> Any:
        return torch_state.rng_state()

    def set_rng_state(self, state: Any) -> None:
        torch_state.set_rng_state(state)

    def checkpoint_writer(self, meta: Mapping[str, Any], rng: List[Any]
                          ) -> Tuple[Callable[[BinaryIO], None], Dict[str, Any]]:
        extra = {k: v for k, v in meta.items() if k != "position"}
        state = torch_state.make_state(self.model, self.optimizer, Position.from_dict(meta["position"]), rng, extra)
        return torch_state.writer(state), {}

    def read_checkpoint(self, checkpoint: Checkpoint) -> Any:
        return torch_state.read(checkpoint.payload)

    def apply_checkpoint(self, checkpoint: Checkpoint, payload: Any) -> Loaded:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        return Loaded(payload["position"], payload.get("rng"), bool(payload["optimizer"].get("state")))

    def parameters(self) -> List[Any]:
        return [t.detach().cpu().double().numpy() for t in self.model.state_dict().values()]

    # ----- elastic --------------------------------------------------------------------------------

    def elastic_state(self, **counters: int) -> Any:
        return hvd.elastic.TorchState(self.model, self.optimizer, **counters)

    def elastic_run(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        return hvd.elastic.run(fn)

    def elastic_world(self) -> Tuple[int, int, int, int]:
        return hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size()
