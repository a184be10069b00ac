"""What each spec key may hold: types read from the dataclasses in ``model.py``, limits listed here.

Types come from the model's annotations, so a field added there is known here at once (with its
default); only the limits that a type cannot say (``np >= 1``, the launcher names, the Slurm time
format) are written down below. ``tests/unit/test_spec_schema.py`` checks every limit names a field
that exists.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from hvdrun_cli.spec import limits, model, signals

Check = Callable[[Any], Optional[str]]  # value -> what is wrong with it, or None

# Filled in by the loader from where the spec was read; a user cannot set them.
LOADER_FIELDS = frozenset({"source", "base_dir"})
# Required by the model but given a default by the loader (the spec file's name).
COMPUTED_DEFAULTS = frozenset({"name"})


@dataclass(frozen=True)
class Field:
    """One key of the spec. ``kind`` is int, float, bool, str, strlist, strmap, anymap or section."""

    path: str
    kind: str
    optional: bool
    required: bool
    default: Any
    section: Optional[type] = None


@dataclass(frozen=True)
class PathRule:
    """A key holding a path: what it is relative to and what must be there."""

    relative_to: str  # "spec": the spec file's directory (cwd for flags); "cwd": always the cwd
    must_be: Optional[str] = None  # None | "file" | "executable"
    words: Tuple[str, ...] = ()  # values that are not paths (checkpoint.resume: auto, never)


# ---- limits a type cannot express -------------------------------------------------------------


def at_least(minimum: int, maximum: Optional[float] = None) -> Check:
    """``minimum <= v`` and, with ``maximum``, ``v <= maximum``: every count has an upper bound."""

    def check(v: Any) -> Optional[str]:
        if v < minimum:
            return f"must be at least {minimum}"
        if maximum is not None and v > maximum:
            return f"must be at most {maximum}"
        return None

    return check


def positive(v: Any) -> Optional[str]:
    return None if v > 0 else "must be greater than 0"


def positive_up_to(maximum: float) -> Check:
    return lambda v: positive(v) or (None if v <= maximum else f"must be at most {maximum}")


def one_of(choices: Sequence[str]) -> Check:
    def check(v: Any) -> Optional[str]:
        if v in choices:
            return None
        return f"must be one of {quoted(choices)}{did_you_mean(str(v), choices)}"

    return check


def matches(pattern: str, description: str, flags: int = 0) -> Check:
    compiled = re.compile(pattern, flags)
    return lambda v: None if compiled.fullmatch(v) else f"must be {description}"


def all_of(*checks: Check) -> Check:
    def check(v: Any) -> Optional[str]:
        for one in checks:
            message = one(v)
            if message:
                return message
        return None

    return check


_NAME = matches(
    r"[A-Za-z0-9][A-Za-z0-9._-]*",
    "letters, digits, '.', '_' or '-' (it names the run directory and the Slurm job)",
)
_CALLABLE = matches(
    r"[A-Za-z_]\w*|[A-Za-z_][\w.]*:[A-Za-z_][\w.]*",
    "a built-in name or 'package.module:function'",
)
_HOST = matches(
    r"[A-Za-z0-9][A-Za-z0-9._-]*(:[1-9][0-9]*)?",
    "'hostname' or 'hostname:slots' with slots a whole number of at least 1",
)
# Slurm's --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds, or UNLIMITED/INFINITE.
_SLURM_TIME = matches(
    r"\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(:\d{1,2}){0,2}|UNLIMITED|INFINITE",
    "a Slurm time: MINUTES, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
    re.IGNORECASE,
)
_SLURM_MEM = matches(r"\d+[KMGT]?", "a Slurm memory size such as 4000, 500M or 16G", re.IGNORECASE)
_SBATCH_OPTION = matches(r"--[^\\\n\r]+", "an sbatch long option such as '--mail-type=END' (no line breaks or backslashes)")
_INTERFACE = matches(r"[^\s,]+", "a network interface name such as eth0")
# Optional sections where an empty/null value turns the feature off instead of meaning "defaults".
NULL_MEANS_OFF = frozenset({"elastic"})
LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "fatal")

CHOICES: Dict[str, Tuple[str, ...]] = {
    "framework": model.FRAMEWORKS,
    "launcher": model.LAUNCHERS,
    "train.lr_scaling": model.LR_SCALINGS,
    "horovod.compression": model.COMPRESSIONS,
    "horovod.reduction": model.REDUCTIONS,
    "horovod.log_level": LOG_LEVELS,
    "horovod.data_plane": model.DATA_PLANES,
    "resources.binding": model.BINDINGS,
    "slurm.signal": signals.STOP_SIGNALS,
}

_DAY = 86_400
_STEPS = 10**12  # step counts: far beyond any run, small enough to print and to count to

CHECKS: Dict[str, Check] = {
    **{path: one_of(choices) for path, choices in CHOICES.items()},
    "name": _NAME,
    "restarts": at_least(0, 1000),
    "train.model": _CALLABLE,
    "train.data": _CALLABLE,
    "train.optimizer": _CALLABLE,
    "train.loss": _CALLABLE,
    "train.epochs": at_least(1, 10**6),
    "train.batch_size": at_least(1, 1 << 24),
    "train.lr": positive_up_to(1e6),
    "train.warmup_epochs": at_least(0, 10**6),
    "train.momentum": at_least(0, 1e6),
    "train.weight_decay": at_least(0, 1e6),
    "train.max_steps": at_least(1, _STEPS),
    "train.log_interval": at_least(1, _STEPS),
    "train.loader.num_workers": at_least(0, 256),
    "train.loader.prefetch_factor": at_least(1, 1024),
    "train.seed": at_least(0, 2**32 - 1),  # numpy and torch take seeds in [0, 2**32)
    "horovod.backward_passes_per_step": at_least(1, 1024),
    "horovod.gradient_predivide_factor": positive_up_to(1e6),
    "horovod.fusion_threshold_mb": at_least(0, 1 << 16),
    "horovod.cycle_time_ms": positive_up_to(1e6),
    "horovod.cache_capacity": at_least(0, 1 << 24),
    "horovod.stall_check_seconds": at_least(1, 30 * _DAY),
    "horovod.stall_shutdown_seconds": at_least(0, 30 * _DAY),
    "horovod.threads_per_rank": at_least(1, limits.MAX_SLOTS_PER_HOST),
    "resources.np": at_least(1, limits.MAX_RANKS),
    "resources.slots_per_host": at_least(1, limits.MAX_SLOTS_PER_HOST),
    "resources.gpus_per_rank": at_least(0, 64),
    "checkpoint.interval_steps": at_least(1, _STEPS),
    "checkpoint.keep": at_least(1, 10_000),
    "elastic.min_np": at_least(1, limits.MAX_RANKS),
    "elastic.max_np": at_least(1, limits.MAX_RANKS),
    "elastic.reset_limit": at_least(0, 10**6),
    "slurm.time": _SLURM_TIME,
    "slurm.nodes": at_least(1, limits.MAX_HOSTS),
    "slurm.ntasks_per_node": at_least(1, limits.MAX_SLOTS_PER_HOST),
    "slurm.cpus_per_task": at_least(1, limits.MAX_SLOTS_PER_HOST),
    "slurm.gpus_per_node": at_least(0, 1024),
    "slurm.mem": _SLURM_MEM,
    "slurm.signal_before_end_seconds": at_least(0, 65535),  # Slurm's own bound for --signal's @time
    "slurm.requeue": at_least(0, 1000),
    "watchdog.progress_timeout_seconds": at_least(1, 365 * _DAY),
}

# Checks applied to each entry of a list-valued key.
ITEM_CHECKS: Dict[str, Check] = {
    "resources.hosts": _HOST,
    "horovod.network_interfaces": _INTERFACE,
    "slurm.extra": _SBATCH_OPTION,
}

# List keys that also take one comma-separated string ("a:2,b:2", as -H does).
COMMA_LISTS = frozenset({"resources.hosts", "horovod.network_interfaces"})
# List keys where one string means a one-entry list (one setup line, one sbatch option).
SINGLE_STRING_LISTS = frozenset({"slurm.extra", "slurm.setup"})

PATHS: Dict[str, PathRule] = {
    "script": PathRule("spec", "file"),
    "resources.hostfile": PathRule("spec", "file"),
    "elastic.discovery_script": PathRule("spec", "executable"),
    "elastic.hostfile": PathRule("spec", "file"),
    "run_root": PathRule("cwd"),
    "checkpoint.dir": PathRule("cwd"),
    "checkpoint.resume": PathRule("spec", "file", words=model.RESUME_MODES),
}

# Keys that say the same thing two ways: setting one from the command line drops the other
# from the file (``-H a:2`` replaces the spec's hostfile instead of clashing with it).
ALTERNATIVES: Dict[str, str] = {
    "resources.hosts": "resources.hostfile",
    "resources.hostfile": "resources.hosts",
}

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ---- fields, read from the model ---------------------------------------------------------------


def _kind(hint: Any) -> Tuple[str, bool, Optional[type]]:
    """(kind, optional, section class) for one annotation of the model."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        kind, _, section = _kind(inner[0])
        return kind, True, section
    if dataclasses.is_dataclass(hint):
        return "section", False, hint
    simple = {int: "int", float: "float", bool: "bool", str: "str"}
    if hint in simple:
        return simple[hint], False, None
    origin = typing.get_origin(hint)
    if origin is tuple and args[:1] == (str,):
        return "strlist", False, None
    if origin in (collections.abc.Mapping, dict):
        return ("strmap" if args[1:] == (str,) else "anymap"), False, None
    raise TypeError(f"model annotation {hint!r} has no validation rule in schema.py")


def _fields_of(cls: type, prefix: str) -> Dict[str, Field]:
    hints = typing.get_type_hints(cls, vars(model))
    fields: Dict[str, Field] = {}
    for f in dataclasses.fields(cls):
        if f.name in LOADER_FIELDS:
            continue
        kind, optional, section = _kind(hints[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = dataclasses.MISSING
        path = f"{prefix}{f.name}"
        required = default is dataclasses.MISSING and path not in COMPUTED_DEFAULTS
        fields[f.name] = Field(path, kind, optional, required, default, section)
    return fields


def _all_sections() -> Dict[str, Dict[str, Field]]:
    """Every section by dotted path, nested ones (``train.loader``) included."""
    sections = {"": _fields_of(model.JobSpec, "")}
    pending = [""]
    while pending:
        for field in list(sections[pending.pop()].values()):
            if field.kind == "section":
                sections[field.path] = _fields_of(field.section, f"{field.path}.")  # type: ignore[arg-type]
                pending.append(field.path)
    return sections


SECTIONS: Dict[str, Dict[str, Field]] = _all_sections()


def section_fields(section: str) -> Dict[str, Field]:
    """The keys allowed in a section ("" for the top level, "train", "resources", ...)."""
    return SECTIONS[section]


def field_at(path: str) -> Optional[Field]:
    """The field for a dotted key such as ``train.lr``, or None if there is no such key."""
    section, _, name = path.rpartition(".")
    return SECTIONS.get(section, {}).get(name)


# ---- message helpers ---------------------------------------------------------------------------


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def unknown_key_message(key: str, section: str) -> str:
    """``unknown key; did you mean 'epochs'?``, or the valid keys when nothing is close."""
    valid = sorted(SECTIONS[section])
    hint = did_you_mean(key, valid)
    if hint:
        return f"unknown key{hint}"
    where = f"in '{section}'" if section else "at the top level"
    return f"unknown key; valid keys {where}: {', '.join(valid)}"


def quoted(items: Sequence[str]) -> str:
    return ", ".join(f"'{item}'" for item in items)
