"""``srun`` inside a Slurm allocation: no ssh, Slurm starts and tracks every rank.

Ranks use Horovod's Gloo controller with the rendezvous served by hvdjob on the batch host; the rank
supervisor turns ``SLURM_PROCID`` into the Horovod rank variables using the layout file in the plan.
This works for Gloo-only and MPI builds of Horovod alike, with no PMI setup.
"""
from __future__ import annotations

import os
from typing import List

from hvdrun_cli.contract import ENV_GLOO_LAYOUT, LAYOUT_FILE, encode_layout
from hvdrun_cli.errors import LaunchError
from hvdrun_cli.launch.gloo_env import gloo_controller_env
from hvdrun_cli.launch.inputs import PlanInputs
from hvdrun_cli.launch.plan import GeneratedFile, LauncherKind, LaunchPlan, ProcessSpec, env_tuple


def build_srun_plan(inputs: PlanInputs) -> LaunchPlan:
    tools = inputs.tools
    if not tools.srun:
        raise LaunchError("srun not found: launcher srun needs Slurm's client tools inside an allocation")
    if inputs.rendezvous_port is None or inputs.rendezvous_addr is None:
        raise ValueError("the srun launcher needs a rendezvous address and port")
    nodes = len({s.hostname for s in inputs.layout})
    argv: List[str] = [
        tools.srun,
        f"--ntasks={len(inputs.layout)}",
        f"--nodes={nodes}",
        "--distribution=block",
        "--kill-on-bad-exit=1",
        "--cpu-bind=none",
        "--mpi=none",
        "--export=ALL",
        f"--job-name={inputs.spec.name}",
    ]
    argv += list(inputs.rank_command())
    layout_path = os.path.join(inputs.run_dir, LAYOUT_FILE)
    layout_json = encode_layout(inputs.layout)
    iface = inputs.spec.horovod.network_interfaces[0] if inputs.spec.horovod.network_interfaces else None
    env = dict(inputs.rank_env)
    env.update(gloo_controller_env(inputs.rendezvous_addr, inputs.rendezvous_port, iface))
    env[ENV_GLOO_LAYOUT] = layout_path
    return LaunchPlan(
        launcher=LauncherKind.SRUN,
        processes=(ProcessSpec(argv=tuple(argv)),),
        layout=inputs.layout,
        hosts=inputs.hosts,
        run_dir=inputs.run_dir,
        run_id=inputs.run_id,
        env=env_tuple(env),
        files=(GeneratedFile(layout_path, layout_json),),
        rendezvous_port=inputs.rendezvous_port,
        rendezvous_addr=inputs.rendezvous_addr,
        notes=("inside a Slurm allocation: srun starts the ranks; Gloo rendezvous served by hvdjob",),
        attempt=inputs.attempt,
    )
