"""Plans for launches from this machine: probe once (tools, CPUs, address), decide once, then build.

Shared by ``hvdjob run`` and ``hvdjob smoke`` so both launch exactly the same way. The rendezvous
port is reserved by binding it here; the executor's Rendezvous serves on that same socket.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from hvdrun_cli.contract import RESULT_FILE
from hvdrun_cli.launch.execute import JobResult
from hvdrun_cli.launch.plan import LaunchPlan
from hvdrun_cli.launch.planner import decide, launcher_reach, make_plan, rendezvous_bind_address
from hvdrun_cli.launch.rendezvous import reserve_port
from hvdrun_cli.files import write_json_atomic
from hvdrun_cli.launch.tools import Tools, probe_tools
from hvdrun_cli.spec.model import JobSpec


def plan_here(
    spec: JobSpec,
    run_dir: str,
    run_id: str,
    attempt: int = 0,
    tools: Optional[Tools] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> LaunchPlan:
    env = os.environ if environ is None else environ
    tools = tools or probe_tools(nccl=spec.horovod.hierarchical_allreduce)
    if spec.elastic is not None:
        return make_plan(spec, environ=env, tools=tools, run_dir=run_dir, run_id=run_id, attempt=attempt)
    decision = decide(spec, env, tools)
    addr = rendezvous_bind_address(decision, spec)
    return make_plan(
        spec,
        environ=env,
        tools=tools,
        run_dir=run_dir,
        run_id=run_id,
        attempt=attempt,
        rendezvous_port=reserve_port(addr) if addr else None,
        rendezvous_addr=addr,
        decision=decision,
        reach=launcher_reach(decision, spec),
    )


def write_result(run_dir: str, result: JobResult) -> None:
    """``result.json``: how the run ended, for tools and people reading the run directory later."""
    write_json_atomic(
        os.path.join(run_dir, RESULT_FILE),
        {
            "exit_code": result.exit_code,
            "message": result.message,
            "failed_rank": result.failed_rank,
            "wall_time_s": round(result.wall_time_s, 3),
        },
    )
