"""The typed, frozen job spec.

Everything downstream (plan builders, the sbatch renderer, the rank-side adapters) reads these
objects, never raw YAML. They are built once by :mod:`hvdrun_cli.spec.load`, which validates and
fills defaults; after that nothing mutates them, so what ``--dry-run`` shows is what runs.

``to_dict``/``from_dict`` round-trip through plain JSON-able data: the launcher writes the resolved
spec as JSON into the run directory and every rank reads it back (the rank side must not need YAML
line tracking, only the values).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

FRAMEWORKS = ("torch", "tensorflow")
LAUNCHERS = ("auto", "gloo", "mpi", "srun")
LR_SCALINGS = ("none", "linear", "sqrt")
COMPRESSIONS = ("none", "fp16")
REDUCTIONS = ("average", "sum", "adasum")
RESUME_MODES = ("auto", "never")
BINDINGS = ("auto", "none", "core", "numa")  # resources.binding (see launch/placement.py)
DATA_PLANES = ("auto", "mpi", "gloo")  # horovod.data_plane


@dataclass(frozen=True)
class LoaderSpec:
    """How a PyTorch ``Dataset`` from ``train.data`` is read: the ``DataLoader`` options hvdjob passes on."""

    num_workers: int = 0  # worker processes per rank; 0 reads in the training process
    pin_memory: bool = False
    prefetch_factor: Optional[int] = None  # batches each worker loads ahead; None: PyTorch's default (2)
    persistent_workers: bool = False  # keep workers between epochs (needs num_workers > 0)


@dataclass(frozen=True)
class TrainSpec:
    """Managed training: the adapter builds model, data and optimizer from these."""

    model: str = "mlp"  # built-in name or "module:function"
    data: str = "digits"  # built-in name or "module:function"
    optimizer: str = "sgd"  # sgd | adam | adamw | "module:function"
    loss: str = "cross_entropy"  # cross_entropy | mse | "module:function"
    epochs: int = 10
    batch_size: int = 32  # per rank
    lr: float = 0.05  # for one rank; scaled by lr_scaling
    lr_scaling: str = "linear"
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    max_steps: Optional[int] = None  # stop after this many optimizer steps (all epochs)
    log_interval: int = 10  # steps between progress lines / metrics.jsonl records
    validate: bool = True
    tensorboard: bool = True  # rank 0 writes TensorBoard event files to <run dir>/tensorboard
    mixed_precision: bool = False
    seed: int = 42
    deterministic: bool = False
    model_args: Mapping[str, Any] = field(default_factory=dict)
    data_args: Mapping[str, Any] = field(default_factory=dict)
    optimizer_args: Mapping[str, Any] = field(default_factory=dict)
    loader: LoaderSpec = LoaderSpec()


@dataclass(frozen=True)
class HorovodSpec:
    """Horovod tunables; the plan builders turn them into launcher flags / HOROVOD_* variables."""

    compression: str = "none"
    reduction: str = "average"
    backward_passes_per_step: int = 1
    gradient_predivide_factor: float = 1.0
    fusion_threshold_mb: Optional[float] = None  # None: Horovod's default (128 MiB)
    cycle_time_ms: Optional[float] = None  # None: Horovod's default
    cache_capacity: Optional[int] = None
    hierarchical_allreduce: bool = False
    timeline: Optional[str] = None  # path of a Chrome-trace timeline file
    autotune: bool = False
    autotune_log: Optional[str] = None
    stall_check: bool = True
    stall_check_seconds: int = 60
    stall_shutdown_seconds: int = 0  # 0: never shut down on a stall (Horovod's default)
    network_interfaces: Tuple[str, ...] = ()
    log_level: Optional[str] = None  # trace|debug|info|warning|error|fatal
    threads_per_rank: Optional[int] = None  # None: cores on the host / local ranks
    data_plane: str = "auto"  # auto: MPI operations on one machine when Horovod and mpirun have MPI, else Gloo


@dataclass(frozen=True)
class ResourcesSpec:
    """How many ranks and where. ``hosts`` entries are "name" or "name:slots"."""

    np: Optional[int] = None  # None: all slots of the hosts (1 host: 2 local ranks... see plan)
    hosts: Tuple[str, ...] = ()
    hostfile: Optional[str] = None  # absolute after loading
    slots_per_host: Optional[int] = None  # default slots for hosts listed without a count
    gpus_per_rank: int = 0
    binding: str = "auto"  # CPU binding of each rank: auto | none | core | numa


@dataclass(frozen=True)
class CheckpointSpec:
    dir: Optional[str] = None  # None: <run_root>/<name>/checkpoints; absolute after loading
    interval_steps: int = 100
    keep: int = 3
    resume: str = "auto"  # auto | never | <path of a checkpoint file>


@dataclass(frozen=True)
class ElasticSpec:
    min_np: int = 1
    max_np: Optional[int] = None
    discovery_script: Optional[str] = None  # prints "host:slots" lines; absolute after loading
    hostfile: Optional[str] = None  # watched hostfile, alternative to discovery_script
    reset_limit: Optional[int] = None


@dataclass(frozen=True)
class SlurmSpec:
    """Options for ``hvdjob submit``: rendered as ``#SBATCH`` lines."""

    partition: Optional[str] = None
    time: Optional[str] = None
    nodes: Optional[int] = None
    ntasks_per_node: Optional[int] = None
    cpus_per_task: Optional[int] = None
    gpus_per_node: Optional[int] = None
    mem: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    exclusive: bool = False
    extra: Tuple[str, ...] = ()  # extra sbatch options, e.g. "--mail-type=END"
    setup: Tuple[str, ...] = ()  # shell lines run before hvdjob (module load ...)
    signal: str = "USR2"  # sent signal_before_end_seconds before the end: USR2 | USR1 | TERM (see signals.py)
    signal_before_end_seconds: int = 120
    requeue: int = 0  # how many times a preempted / timed-out job requeues itself


@dataclass(frozen=True)
class WatchdogSpec:
    progress_timeout_seconds: Optional[int] = None  # None: no launcher-side progress watchdog


@dataclass(frozen=True)
class JobSpec:
    framework: str
    name: str
    script: Optional[str] = None  # absolute after loading; None: managed mode (train)
    args: Tuple[str, ...] = ()
    train: Optional[TrainSpec] = None
    horovod: HorovodSpec = HorovodSpec()
    resources: ResourcesSpec = ResourcesSpec()
    launcher: str = "auto"
    env: Mapping[str, str] = field(default_factory=dict)
    checkpoint: CheckpointSpec = CheckpointSpec()
    restarts: int = 0
    elastic: Optional[ElasticSpec] = None
    slurm: SlurmSpec = SlurmSpec()
    watchdog: WatchdogSpec = WatchdogSpec()
    run_root: str = "runs"  # absolute after loading
    source: Optional[str] = None  # the spec file it was loaded from
    base_dir: Optional[str] = None  # directory relative paths in the spec were resolved against

    @property
    def managed(self) -> bool:
        """True when the adapter drives training (no user script)."""
        return self.script is None

    def to_dict(self) -> Dict[str, Any]:
        return _to_plain(self)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> "JobSpec":
        return _from_plain(JobSpec, data)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    return value


_NESTED = {
    "train": TrainSpec,
    "horovod": HorovodSpec,
    "resources": ResourcesSpec,
    "checkpoint": CheckpointSpec,
    "elastic": ElasticSpec,
    "slurm": SlurmSpec,
    "watchdog": WatchdogSpec,
}


_NESTED_IN = {(TrainSpec, "loader"): LoaderSpec}


def _from_plain(cls: type, data: Mapping[str, Any]) -> Any:
    kwargs: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        section = _NESTED.get(f.name) if cls is JobSpec else _NESTED_IN.get((cls, f.name))
        if section is not None and value is not None:
            value = _from_plain(section, value)
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, dict):
            value = dict(value)
        kwargs[f.name] = value
    return cls(**kwargs)
