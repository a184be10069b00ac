"""From a spec, the environment and the probed tools to one LaunchPlan.

Pure apart from reading the hostfile a spec names: all probing (tools, CPUs, hostname) happens in the
caller and arrives as arguments, so a plan can be built and checked in unit tests. :func:`decide`
resolves hosts, layout, launcher and data plane once; the caller reserves the rendezvous port for
that decision (``prepare.py``) and hands both to :func:`make_plan`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Tuple

from hvdrun_cli.contract import ENV_GLOO_VIA_HOROVODRUN, ENV_LAUNCHER_REACH, SPEC_FILE
from hvdrun_cli.errors import LaunchError, LayoutError, Problem
from hvdrun_cli.hosts import (
    Host,
    SlotInfo,
    assign_ranks,
    hosts_from_pbs,
    hosts_from_slurm,
    slurm_cpus_per_node,
    parse_host_list,
    parse_hostfile,
    total_slots,
)
from hvdrun_cli.launch import coll_rules, data_plane
from hvdrun_cli.launch.affinity import BINDING_ENV, GPUS_PER_RANK_ENV
from hvdrun_cli.launch.data_plane import DataPlane, hierarchical_note
from hvdrun_cli.launch.elastic import build_elastic_plan, initial_np
from hvdrun_cli.launch.horovodrun import build_horovodrun_plan
from hvdrun_cli.launch.inputs import PlanInputs, all_local
from hvdrun_cli.launch.local import build_local_plan
from hvdrun_cli.launch.local import LOOPBACK
from hvdrun_cli.launch.mpi import YIELD_WHEN_IDLE, build_mpi_plan, mpi_data_plane_env, mpi_wait_env
from hvdrun_cli.launch.placement import HostCpus, HostPlacement, format_cpulist, place
from hvdrun_cli.launch.plan import GeneratedFile, LauncherKind, LaunchPlan, env_tuple
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


@dataclass(frozen=True)
class Decision:
    """Hosts, layout and launcher, decided once per attempt (the caller reserves a port from it)."""

    source: HostSource
    layout: Tuple[SlotInfo, ...]
    kind: LauncherKind
    reason: str
    local: bool
    data_plane: Optional[DataPlane] = None  # set when the MPI data plane was chosen for a local job
    gloo_reason: str = ""

    @property
    def rendezvous_needed(self) -> bool:
        return self.kind in (LauncherKind.LOCAL, LauncherKind.SRUN)


def choose_launcher(
    spec: JobSpec, source: HostSource, tools: Tools, environ: Mapping[str, str], np: Optional[int] = None
) -> Tuple[LauncherKind, str]:
    """(launcher kind, reason); see :func:`decide` for the data plane that comes with it.

    ``HVDJOB_GLOO_VIA_HOROVODRUN=1`` makes a local Gloo launch go through horovodrun as well.
    """
    kind, reason, _ = _choose(spec, source, tools, environ, np)
    return kind, reason


def _choose(
    spec: JobSpec, source: HostSource, tools: Tools, environ: Mapping[str, str], np: Optional[int]
) -> Tuple[LauncherKind, str, Optional[DataPlane]]:
    local = all_local(source.hosts, tools.hostname)
    wanted = spec.launcher
    count = np if np is not None else (spec.resources.np or total_slots(source.hosts))
    plane = data_plane.choose(
        spec.horovod.data_plane, local=local, np=count, horovod_mpi=tools.horovod_mpi,
        openmpi=bool(tools.mpirun) and tools.mpi_implementation == "openmpi", cma=tools.cma,
    )
    if spec.horovod.data_plane == data_plane.MPI and wanted in ("gloo", "srun"):
        raise LaunchError(f"horovod.data_plane: mpi needs launcher mpi or auto (launcher is {wanted})")
    if wanted == "srun":
        if source.origin != "slurm":
            raise LaunchError(
                "launcher srun needs a Slurm allocation (no SLURM_JOB_ID/SLURM_JOB_NODELIST here); "
                "use 'hvdjob submit' or run inside salloc/sbatch"
            )
        return LauncherKind.SRUN, "requested", None
    if wanted == "gloo":
        if local and environ.get(GLOO_VIA_HOROVODRUN) != "1":
            return LauncherKind.LOCAL, "requested gloo; all ranks on this machine", None
        return LauncherKind.GLOO, "requested", None
    if wanted == "mpi":
        return LauncherKind.MPI, "requested", plane
    if source.origin == "slurm" and tools.srun:
        return LauncherKind.SRUN, "auto: inside a Slurm allocation", None
    if not local:
        if tools.mpirun and spec.horovod.data_plane != data_plane.GLOO:
            return LauncherKind.MPI, "auto: several hosts and mpirun is available", None
        return LauncherKind.GLOO, "auto: several hosts, no mpirun (or data_plane gloo): horovodrun --gloo over ssh", None
    if plane is not None:
        if not tools.mpirun:
            raise LaunchError("horovod.data_plane: mpi needs mpirun (apt-get install openmpi-bin)")
        return LauncherKind.MPI, "auto: one machine, MPI data plane", plane
    return LauncherKind.LOCAL, "auto: one machine: Gloo with ranks started by hvdjob", None


def decide(spec: JobSpec, environ: Mapping[str, str], tools: Tools) -> Decision:
    """Resolve the hosts, place the ranks and pick the launcher and data plane: once."""
    source = resolve_hosts(spec, environ)
    layout = layout_for(spec, source)
    local = all_local(source.hosts, tools.hostname)
    kind, reason, plane = _choose(spec, source, tools, environ, len(layout))
    why_gloo = data_plane.gloo_reason(
        spec.horovod.data_plane, local=local, np=len(layout), horovod_mpi=tools.horovod_mpi,
        openmpi=bool(tools.mpirun) and tools.mpi_implementation == "openmpi", launcher=spec.launcher,
    )
    return Decision(source, layout, kind, reason, local, plane, why_gloo)


def rendezvous_bind_address(decision: Decision, spec: JobSpec) -> Optional[str]:
    """Where hvdjob serves the Gloo rendezvous: loopback for local ranks; for srun the one address the
    job's network interface (or route towards its hosts) has."""
    if decision.kind == LauncherKind.LOCAL:
        return LOOPBACK
    if decision.kind == LauncherKind.SRUN:
        nics = spec.horovod.network_interfaces
        on_nic = interface_address(nics[0]) if nics else None
        return on_nic or routable_address([h.name for h in decision.source.hosts])
    return None


LAUNCHER_REACH_PORT = 22  # probed on hvdjob's machine by remote supervisors: accepted or refused, it answers


def launcher_reach(decision: Decision, spec: JobSpec) -> Optional[str]:
    """``ADDRESS:PORT`` the remote rank supervisors probe hvdjob's machine at (launcher_reach.py), for
    ssh launchers with ranks on other hosts; None when no address towards them can be told."""
    if decision.local or decision.kind not in (LauncherKind.MPI, LauncherKind.GLOO):
        return None
    nics = spec.horovod.network_interfaces
    try:
        address = (interface_address(nics[0]) if nics else None) or routable_address(
            [h.name for h in decision.source.hosts])
    except LaunchError:
        return None
    return f"{address}:{LAUNCHER_REACH_PORT}"


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
    decision: Optional[Decision] = None,
    reach: Optional[str] = None,
) -> LaunchPlan:
    if spec.elastic is not None:
        return _elastic_plan(spec, tools=tools, run_dir=run_dir, run_id=run_id, attempt=attempt)
    decision = decision or decide(spec, environ, tools)
    source, layout, builder, reason = decision.source, decision.layout, decision.kind, decision.reason
    np = len(layout)

    mode = spec.resources.binding
    placed = None
    threads = spec.horovod.threads_per_rank
    if decision.local:
        placed = place(tools.host_cpus(), np, mode, threads, spec.resources.gpus_per_rank, tools.busy_share)
        if threads is None:
            threads = placed.threads
    spec_json_path = os.path.join(run_dir, SPEC_JSON)
    env = rank_env(
        spec, spec_json_path=spec_json_path, run_dir=run_dir, run_id=run_id, attempt=attempt, threads=threads
    )
    # Across ssh hosts, "auto" leaves ranks unbound: hvdjob cannot see from here what else runs on the
    # other hosts, and ranks pinned to CPUs that other work shares can stall a busy-polling transport
    # outright (4 MPI ranks over TCP on two hosts sharing 2 CPUs hung at their first allreduce). A Slurm
    # allocation's CPUs are the job's own, so srun ranks are bound. core/numa bind everywhere.
    remote_auto = not decision.local and mode == "auto" and builder != LauncherKind.SRUN
    if mode != "none" and not remote_auto and not (placed is not None and not any(b.bound for b in placed.bindings)):
        env[BINDING_ENV] = mode
        if spec.resources.gpus_per_rank:
            env[GPUS_PER_RANK_ENV] = str(spec.resources.gpus_per_rank)
    if decision.data_plane is not None:
        env.update(mpi_data_plane_env())
    if builder == LauncherKind.MPI and tools.mpi_implementation in (None, "openmpi"):
        env.update(mpi_wait_env(environ, spec.env))
    rules_file, rules_note = None, ""
    if (builder == LauncherKind.MPI and decision.data_plane is not None and tools.mpi_implementation == "openmpi"
            and coll_rules.applies(tools.mpi_version, np, (environ, spec.env))):
        from_bytes = coll_rules.segmented_from_bytes(tools.cache_bytes)
        rules_file = GeneratedFile(os.path.join(run_dir, coll_rules.RULES_FILE), coll_rules.rules_text(np, from_bytes))
        env.update(coll_rules.rules_env(rules_file.path))
        rules_note = coll_rules.describe(from_bytes)
    if reach:
        env[ENV_LAUNCHER_REACH] = reach
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
        rendezvous_addr=rendezvous_addr or (LOOPBACK if builder == LauncherKind.LOCAL else None),
        data_plane=decision.data_plane,
    )
    plan = {
        LauncherKind.LOCAL: build_local_plan,
        LauncherKind.GLOO: build_horovodrun_plan,
        LauncherKind.MPI: build_mpi_plan,
        LauncherKind.SRUN: build_srun_plan,
    }[builder](inputs)
    notes = [f"launcher {plan.launcher}: {reason}; hosts from {source.origin}"]
    notes.append("data plane: " + _data_plane_text(decision, builder) + _mpi_wait_text(env) + rules_note)
    notes.append("binding: " + _binding_text(mode, placed, decision.local, remote_auto))
    hierarchical = hierarchical_note(spec.horovod.hierarchical_allreduce, hosts=len({s.hostname for s in layout}),
                                     nccl=tools.horovod_nccl)
    if hierarchical:
        notes.append(hierarchical)
    bindings: Tuple[Tuple[int, str], ...] = ()
    if placed is not None:
        bindings = tuple(
            (slot.rank, (format_cpulist(b.cpus) + f" ({b.reason})") if b.bound else b.reason)
            for slot, b in zip(layout, placed.bindings)
        )
    elif builder == LauncherKind.SRUN and mode != "none":
        bindings = allocation_bindings(layout, slurm_cpus_per_node(environ), mode, spec.horovod.threads_per_rank,
                                       spec.resources.gpus_per_rank)
    spec_file = GeneratedFile(spec_json_path, json.dumps(spec.to_dict(), indent=2, sort_keys=True) + "\n")
    generated = plan.files + (spec_file,) + ((rules_file,) if rules_file else ())
    return replace(plan, notes=tuple(notes) + plan.notes, bindings=bindings, files=generated)


def _mpi_wait_text(env: Mapping[str, str]) -> str:
    value = env.get(YIELD_WHEN_IDLE)
    if value is None:
        return ""
    if value == "1" or value.lower() == "true":
        return "; MPI waits yield the CPU to the rank's compute threads (mpi_yield_when_idle)"
    return f"; MPI waits busy-poll ({YIELD_WHEN_IDLE}={value})"


def _data_plane_text(decision: Decision, builder: LauncherKind) -> str:
    if decision.data_plane is not None:
        return decision.data_plane.describe()
    if builder == LauncherKind.MPI:
        return "controller mpi, tensor operations mpi: mpirun across hosts"
    return f"controller gloo, tensor operations gloo: {decision.gloo_reason}"


def allocation_bindings(layout: Tuple[SlotInfo, ...], cpus_per_node: Optional[Mapping[str, int]], mode: str,
                        threads: Optional[int], gpus_per_rank: int) -> Tuple[Tuple[int, str], ...]:
    """Each srun rank's block, as positions among its node's allocated CPUs: the CPU ids themselves are
    only known on the node (its task's affinity mask), where the rank supervisor applies the same split."""
    if not cpus_per_node:
        return tuple((s.rank, "a block of its node's allocated CPUs (SLURM_JOB_CPUS_PER_NODE not set)")
                     for s in layout)
    shown = []
    for slot in layout:
        count = cpus_per_node.get(slot.hostname)
        if count is None:
            shown.append((slot.rank, "a block of its node's allocated CPUs"))
            continue
        placed = place(HostCpus(tuple(range(count))), slot.local_size, mode, threads, gpus_per_rank)
        binding = placed.bindings[slot.local_rank]
        if not binding.bound:
            shown.append((slot.rank, f"{binding.reason} ({count} allocated CPUs on {slot.hostname})"))
            continue
        which = "CPU" if len(binding.cpus) == 1 else "CPUs"
        shown.append((slot.rank, f"allocated {which} #{format_cpulist(binding.cpus)} of {count} on {slot.hostname}"
                                 f" ({len(binding.cpus)} per rank)"))
    return tuple(shown)


def _binding_text(mode: str, placed: Optional[HostPlacement], local: bool, remote_auto: bool = False) -> str:
    if mode == "none":
        return "none (resources.binding: none)"
    if remote_auto:
        return ("auto across ssh hosts: ranks not bound (hvdjob cannot see what else runs there; "
                "resources.binding: core binds them)")
    if placed is None or not local:
        return f"{mode}: each rank supervisor binds its rank to a block of its host's usable CPUs"
    if placed.warning:
        return f"warning: {placed.warning}"
    if mode == "numa":
        return f"numa: each rank bound to all CPUs of one NUMA node, threads per rank {placed.threads}"
    return f"{mode}: one block of {placed.threads} CPU(s) per rank, threads per rank {placed.threads}"


def _elastic_plan(spec: JobSpec, *, tools: Tools, run_dir: str, run_id: str, attempt: int) -> LaunchPlan:
    """Elastic jobs: hosts come from Horovod's discovery while the job runs, so no layout is fixed here."""
    threads = spec.horovod.threads_per_rank
    if threads is None:
        threads = default_threads_per_rank(tools.cores, initial_np(spec))
    env = rank_env(spec, spec_json_path=os.path.join(run_dir, SPEC_JSON), run_dir=run_dir, run_id=run_id,
                   attempt=attempt, threads=threads)
    return build_elastic_plan(spec, tools=tools, run_dir=run_dir, run_id=run_id, rank_env=env_tuple(env),
                              attempt=attempt)
