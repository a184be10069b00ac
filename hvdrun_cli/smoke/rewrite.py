"""Rewrite a job spec (perhaps written for a cluster) so it runs briefly on this machine.

Everything that names another machine or scheduler is dropped; everything the smoke run must
control is set. Most of it is expressed as ordinary command-line overrides, applied after the
user's ``--set`` options, so the one spec loader validates it and a setting that cannot apply here
(a hostfile or checkpoint on the cluster's filesystem) is removed before it is checked:

==============================  ==========================================================
``resources.hosts``             ``localhost:<np>`` (this also drops ``resources.hostfile``)
``resources.np``                one rank per GPU, else two CPU ranks (see :mod:`.box`)
``resources.gpus_per_rank``     1 with GPUs, else 0
``launcher``                    ``gloo``: ranks started by hvdjob on this machine
``elastic``, ``slurm``          dropped (elastic afterwards by :func:`for_this_box`)
``horovod.network_interfaces``  dropped: the cluster's NIC names do not exist here
``horovod.threads_per_rank``    dropped: sized for this machine's cores
``horovod.timeline``            dropped: its path belongs to the cluster
``restarts``                    0: a smoke run must pass without retries
``run_root``, ``checkpoint.*``  in the smoke work directory; ``resume: auto``
==============================  ==========================================================

Per launch, :func:`launch_spec` then sets ``train.max_steps``, a short ``train.log_interval`` and
the parameter dump directory.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import List, Optional

from hvdrun_cli.contract import CHECKPOINTS_DIR, ENV_PARAM_DUMP
from hvdrun_cli.smoke.box import BoxShape
from hvdrun_cli.spec import Override
from hvdrun_cli.spec.model import JobSpec, TrainSpec

ORIGIN = "hvdjob smoke"
# The rank side's contract (adapters/base.py ENV_PARAM_DUMP): every rank writes rank<N>.npy there.
PARAM_DUMP_ENV = ENV_PARAM_DUMP
METRICS_RECORDS = 10  # aim for this many metrics records over a smoke run


def _quoted(text: str) -> str:
    """A YAML scalar that stays a string whatever it contains (JSON strings are valid YAML)."""
    return json.dumps(text)


def box_overrides(box: BoxShape, work_dir: str) -> List[Override]:
    """The overrides that move a spec onto this machine, into ``work_dir``; see the module table."""
    values = (
        ("resources.hosts", f"[{_quoted(f'localhost:{box.np}')}]"),
        ("resources.np", str(box.np)),
        ("resources.gpus_per_rank", str(box.gpus_per_rank)),
        ("launcher", "gloo"),
        ("elastic", "null"),
        ("slurm", "null"),
        ("horovod.network_interfaces", "[]"),
        ("horovod.threads_per_rank", "null"),
        ("horovod.timeline", "null"),
        ("restarts", "0"),
        ("run_root", _quoted(work_dir)),
        ("checkpoint.dir", _quoted(os.path.join(work_dir, CHECKPOINTS_DIR))),
        ("checkpoint.resume", "auto"),
    )
    return [Override(key, raw, ORIGIN) for key, raw in values]


def for_this_box(spec: JobSpec) -> JobSpec:
    """Finish what overrides cannot say: a null section loads as its defaults, so drop elastic here."""
    return dataclasses.replace(spec, elastic=None)


def log_interval_for(steps: int) -> int:
    """Steps between metrics records so that ``steps`` give about ``METRICS_RECORDS`` records."""
    return max(1, steps // METRICS_RECORDS)


def resume_step_for(steps: int) -> int:
    """Where the first launch stops and the second resumes: half way."""
    return max(1, steps // 2)


def launch_spec(spec: JobSpec, dump_dir: str, max_steps: Optional[int] = None,
                log_interval: Optional[int] = None) -> JobSpec:
    """The spec one launch runs: its step budget and log interval (managed mode) and the dump dir."""
    env = {**spec.env, PARAM_DUMP_ENV: dump_dir}
    if not spec.managed:
        return dataclasses.replace(spec, env=env)
    train = spec.train or TrainSpec()
    if max_steps is not None:
        train = dataclasses.replace(train, max_steps=max_steps)
    if log_interval is not None:
        train = dataclasses.replace(train, log_interval=log_interval)
    return dataclasses.replace(spec, train=train, env=env)
