"""Built-in local launcher: hvdjob starts the ranks itself, with Horovod's Gloo rendezvous in-process.

It gives each rank exactly the environment ``horovodrun --gloo`` would (see gloo_env.py) but skips
horovodrun's start-up work that a launch on this machine does not need (importing every framework to
probe the build, ssh checks, NIC discovery), which costs seconds per launch.
"""
from __future__ import annotations

from hvdrun_cli.launch.gloo_env import gloo_controller_env, slot_env
from hvdrun_cli.launch.inputs import PlanInputs
from hvdrun_cli.launch.plan import LauncherKind, LaunchPlan, ProcessSpec, env_tuple

LOOPBACK = "127.0.0.1"


def build_local_plan(inputs: PlanInputs) -> LaunchPlan:
    if inputs.rendezvous_port is None:
        raise ValueError("the local launcher needs a rendezvous port")
    iface = (inputs.spec.horovod.network_interfaces or ("lo",))[0]
    shared = dict(inputs.rank_env)
    shared.update(gloo_controller_env(LOOPBACK, inputs.rendezvous_port, iface))
    processes = tuple(
        ProcessSpec(argv=inputs.rank_command(), env=env_tuple(slot_env(slot)), rank=slot.rank)
        for slot in inputs.layout
    )
    return LaunchPlan(
        launcher=LauncherKind.LOCAL,
        processes=processes,
        layout=inputs.layout,
        hosts=inputs.hosts,
        run_dir=inputs.run_dir,
        run_id=inputs.run_id,
        env=env_tuple(shared),
        rendezvous_port=inputs.rendezvous_port,
        rendezvous_addr=LOOPBACK,
        notes=("gloo on this machine: hvdjob starts the ranks with the environment horovodrun --gloo gives them",),
        attempt=inputs.attempt,
    )
