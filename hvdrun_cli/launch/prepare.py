"""Plans for launches from this machine: probe once (tools, free port, address), then build.

Shared by ``hvdjob run`` and ``hvdjob smoke`` so both launch exactly the same way.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from hvdrun_cli.contract import RESULT_FILE
from hvdrun_cli.launch.execute import JobResult
from hvdrun_cli.launch.plan import LaunchPlan
from hvdrun_cli.launch.planner import make_plan, rendezvous_address_for
from hvdrun_cli.launch.rendezvous import free_port
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
    tools = tools or probe_tools()
    addr = rendezvous_address_for(spec, env, tools)
    return make_plan(
        spec,
        environ=env,
        tools=tools,
        run_dir=run_dir,
        run_id=run_id,
        attempt=attempt,
        rendezvous_port=free_port() if addr else None,
        rendezvous_addr=addr,
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
