"""From a spec, the environment and the probed tools to one LaunchPlan.

Pure apart from reading the hostfile a spec names: all probing (tools, free port, hostname) happens
in the caller and arrives as arguments, so a plan can be built and checked in unit tests.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Tuple

from hvdrun_cli.contract import ENV_GLOO_VIA_HOROVODRUN, SPEC_FILE
from hvdrun_cli.errors import LaunchError, LayoutError, Problem, UserInputError
from hvdrun_cli.hosts import (
    Host,
    SlotInfo,
    assign_ranks,
    hosts_from_pbs,
    hosts_from_slurm,
    parse_host_list,
    parse_hostfile,
    total_slots,
)
from hvdrun_cli.launch.elastic import build_elastic_plan, initial_np
from hvdrun_cli.launch.horovodrun import build_horovodrun_plan
from hvdrun_cli.launch.inputs import PlanInputs, all_local
from hvdrun_cli.launch.local import build_local_plan
from hvdrun_cli.launch.mpi import build_mpi_plan
from hvdrun_cli.launch.plan import LaunchPlan, env_tuple
from hvdrun_cli.launch.netif import interface_address
from hvdrun_cli.launch.rendezvous import routable_address
from hvdrun_cli.launch.rank_env import default_threads_per_rank, rank_env
from hvdrun_cli.launch.srun import build_srun_plan
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.spec.model import JobSpec

SPEC_JSON = SPEC_FILE
# Caller variables a launcher passes to remote ranks so they find the same Python and libraries.
FORWARDED_ENV = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV")
GLOO_VIA_HOROVODRUN = ENV_GLOO_VIA_HOROVODRUN


@dataclass(frozen=True)
class HostSource:
    hosts: Tuple[Host, ...]
    origin: str  # "hostfile" | "hosts" | "slurm" | "pbs" | "local"


def resolve_hosts(spec: JobSpec, environ: Mapping[str, str]) -> HostSource:
    """Hosts from the spec (hostfile or list) first, then a Slurm/PBS allocation, else this machine."""
    res = spec.resources
    if res.hostfile:
        return HostSource(parse_hostfile(res.hostfile), "hostfile")
    if res.hosts:
        return HostSource(parse_host_list(res.hosts, "resources.hosts", res.slots_per_host), "hosts")
    if spec.launcher in ("auto", "srun"):
        slurm = hosts_from_slurm(environ)
        if slurm:
            return HostSource(slurm, "slurm")
    pbs = hosts_from_pbs(environ)
    if pbs:
        return HostSource(pbs, "pbs")
    return HostSource((Host("localhost", res.np or 1),), "local")


def layout_for(spec: JobSpec, source: HostSource) -> Tuple[SlotInfo, ...]:
    """Ranks placed on the hosts; a misfit names the spec key and where the hosts came from."""
    np = spec.resources.np or total_slots(source.hosts)
    try:
        return assign_ranks(source.hosts, np)
    except LayoutError as exc:
        where = {"hostfile": spec.resources.hostfile, "slurm": "the Slurm allocation", "pbs": "PBS_NODEFILE"}
        hosts = ", ".join(f"{h.name}:{h.slots}" for h in source.hosts)
        raise LayoutError(
            Problem(
                f"{exc.problems[0].message} on hosts {hosts} (from {where.get(source.origin, source.origin)})",
                file=spec.source,
                key="resources.np",
            )
        ) from None


def choose_launcher(
    spec: JobSpec, source: HostSource, tools: Tools, environ: Mapping[str, str]
) -> Tuple[str, str]:
    """(builder name, reason). Builders: local | gloo (horovodrun) | mpi | srun.

    ``HVDJOB_GLOO_VIA_HOROVODRUN=1`` makes a local Gloo launch go through horovodrun as well.
    """
    local = all_local(source.hosts, tools.hostname)
    wanted = spec.launcher
    if wanted == "srun":
        if source.origin != "slurm":
            raise LaunchError(
                "launcher srun needs a Slurm allocation (no SLURM_JOB_ID/SLURM_JOB_NODELIST here); "
                "use 'hvdjob submit' or run inside salloc/sbatch"
            )
        return "srun", "requested"
    if wanted == "gloo":
        if local and environ.get(GLOO_VIA_HOROVODRUN) != "1":
            return "local", "requested gloo; all ranks on this machine"
        return "gloo", "requested"
    if wanted == "mpi":
        return "mpi", "requested"
    if source.origin == "slurm" and tools.srun:
        return "srun", "auto: inside a Slurm allocation"
    if not local:
        if tools.mpirun:
            return "mpi", "auto: several hosts and mpirun is available"
        return "gloo", "auto: several hosts, no mpirun: horovodrun --gloo over ssh"
    return "local", "auto: one machine: Gloo with ranks started by hvdjob"


def make_plan(
    spec: JobSpec,
    *,
    environ: Mapping[str, str],
    tools: Tools,
    run_dir: str,
    run_id: str,
    attempt: int = 0,
    rendezvous_port: Optional[int] = None,
    rendezvous_addr: Optional[str] = None,
) -> LaunchPlan:
    if spec.elastic is not None:
        return _elastic_plan(spec, tools=tools, run_dir=run_dir, run_id=run_id, attempt=attempt)
    source = resolve_hosts(spec, environ)
    layout = layout_for(spec, source)
    np = len(layout)
    builder, reason = choose_launcher(spec, source, tools, environ)

    threads = spec.horovod.threads_per_rank
    if threads is None and all_local(source.hosts, tools.hostname):
        threads = default_threads_per_rank(tools.cores, np)
    spec_json_path = os.path.join(run_dir, SPEC_JSON)
    env = rank_env(
        spec, spec_json_path=spec_json_path, run_dir=run_dir, run_id=run_id, attempt=attempt, threads=threads
    )
    inputs = PlanInputs(
        spec=spec,
        hosts=source.hosts,
        layout=layout,
        tools=tools,
        run_dir=run_dir,
        run_id=run_id,
        spec_json_path=spec_json_path,
        rank_env=env_tuple(env),
        attempt=attempt,
        forward_env_names=tuple(name for name in FORWARDED_ENV if name in environ),
        rendezvous_port=rendezvous_port,
        rendezvous_addr=rendezvous_addr or ("127.0.0.1" if builder == "local" else None),
    )
    plan = {
        "local": build_local_plan,
        "gloo": build_horovodrun_plan,
        "mpi": build_mpi_plan,
        "srun": build_srun_plan,
    }[builder](inputs)
    notes = (f"launcher {plan.launcher}: {reason}; hosts from {source.origin}",) + plan.notes
    return replace(plan, notes=notes)


def _elastic_plan(spec: JobSpec, *, tools: Tools, run_dir: str, run_id: str, attempt: int) -> LaunchPlan:
    """Elastic jobs: hosts come from Horovod's discovery while the job runs, so no layout is fixed here."""
    threads = spec.horovod.threads_per_rank
    if threads is None:
        threads = default_threads_per_rank(tools.cores, initial_np(spec))
    env = rank_env(spec, spec_json_path=os.path.join(run_dir, SPEC_JSON), run_dir=run_dir, run_id=run_id,
                   attempt=attempt, threads=threads)
    return build_elastic_plan(spec, tools=tools, run_dir=run_dir, run_id=run_id, rank_env=env_tuple(env),
                              attempt=attempt)


def rendezvous_address_for(spec: JobSpec, environ: Mapping[str, str], tools: Tools) -> Optional[str]:
    """Where hvdjob must serve a Gloo rendezvous for this launch, or None when it needs none.

    Local launches use loopback; srun ranks on other nodes need this host's routable address.
    Elastic jobs use the rendezvous of Horovod's elastic driver.
    """
    if spec.elastic is not None:
        return None
    try:
        source = resolve_hosts(spec, environ)
        builder, _ = choose_launcher(spec, source, tools, environ)
    except (UserInputError, LaunchError):
        return None  # make_plan reports the same problem properly
    if builder == "local":
        return "127.0.0.1"
    if builder == "srun":
        nics = spec.horovod.network_interfaces
        on_nic = interface_address(nics[0]) if nics else None
        return on_nic or routable_address([h.name for h in source.hosts])
    return None
