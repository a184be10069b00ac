"""Gloo across hosts through ``horovodrun --gloo`` (it starts remote ranks over ssh)."""
from __future__ import annotations

from typing import List

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.launch.inputs import PlanInputs, hosts_flag
from hvdrun_cli.launch.plan import LauncherKind, LaunchPlan, ProcessSpec, env_tuple


def build_horovodrun_plan(inputs: PlanInputs) -> LaunchPlan:
    tools = inputs.tools
    if not tools.horovodrun:
        raise LaunchError("horovodrun not found: install Horovod in this environment (make setup)")
    argv: List[str] = [
        tools.horovodrun,
        "--gloo",
        "-np",
        str(len(inputs.layout)),
        "-H",
        hosts_flag(inputs.layout),
    ]
    nics = inputs.spec.horovod.network_interfaces
    if nics:
        argv += ["--network-interfaces", ",".join(nics)]
    argv += list(inputs.rank_command())
    return LaunchPlan(
        launcher=LauncherKind.GLOO,
        processes=(ProcessSpec(argv=tuple(argv)),),
        layout=inputs.layout,
        hosts=inputs.hosts,
        run_dir=inputs.run_dir,
        run_id=inputs.run_id,
        # horovodrun imports TensorFlow to check the build; keep its C++ log noise out of the job output.
        env=env_tuple({"TF_CPP_MIN_LOG_LEVEL": "2", **dict(inputs.rank_env)}),
        notes=("gloo across hosts: horovodrun starts remote ranks over ssh",),
        attempt=inputs.attempt,
    )
