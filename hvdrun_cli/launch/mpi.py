"""``mpirun`` (Open MPI) launch: across hosts, and on one machine as the MPI shared-memory data plane."""
from __future__ import annotations

import os
from typing import Dict, List, Mapping

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.launch.inputs import PlanInputs, all_local, hosts_flag
from hvdrun_cli.launch.plan import GeneratedFile, LauncherKind, LaunchPlan, ProcessSpec

# Beyond this many hosts mpirun gets a hostfile instead of one giant -H argument (argv size limits).
HOSTFILE_AFTER_HOSTS = 256
HOSTFILE = "mpi-hosts.txt"


def mpi_data_plane_env() -> Dict[str, str]:
    """Horovod's MPI controller and CPU operations (set explicitly: the plan says what runs)."""
    return {"HOROVOD_CONTROLLER": "mpi", "HOROVOD_CPU_OPERATIONS": "mpi"}


# Open MPI busy-polls while a rank waits for communication. Horovod's background thread waits in MPI
# every cycle (negotiation, then the allreduce) on the same CPUs as the rank's compute threads, so
# the spin takes CPU from the training itself. Yielding instead costs a sched_yield per poll when
# nothing else wants the CPU. Measured on 2 cores, np=2, ranks bound: MLP 1.27-1.54x torchrun+DDP
# with yield against 0.89-1.07x without; conv net 0.80-0.86 of the compute-only limit against 0.55.
YIELD_WHEN_IDLE = "OMPI_MCA_mpi_yield_when_idle"


def mpi_wait_env(environ: Mapping[str, str], spec_env: Mapping[str, str]) -> Dict[str, str]:
    """Open MPI's waits yield the CPU, unless the user chose otherwise (their environment or spec env)."""
    if YIELD_WHEN_IDLE in environ or YIELD_WHEN_IDLE in spec_env:
        return {}
    return {YIELD_WHEN_IDLE: "1"}


def mpi_hostfile_text(layout_hosts: str) -> str:
    """Open MPI hostfile lines ``name slots=N`` from the ``a:2,b:1`` form, in rank order."""
    lines = []
    for item in layout_hosts.split(","):
        name, _, count = item.rpartition(":")
        lines.append(f"{name} slots={count}")
    return "\n".join(lines) + "\n"


def build_mpi_plan(inputs: PlanInputs) -> LaunchPlan:
    tools = inputs.tools
    if not tools.mpirun:
        raise LaunchError("mpirun not found: install Open MPI (apt-get install openmpi-bin) or use launcher: gloo")
    argv: List[str] = [tools.mpirun]
    notes = []
    files = []
    hosts = hosts_flag(inputs.layout)
    n_hosts = hosts.count(",") + 1
    if tools.mpi_implementation in (None, "openmpi"):
        if tools.is_root:
            argv.append("--allow-run-as-root")
        argv += ["-np", str(len(inputs.layout))]
        if n_hosts > HOSTFILE_AFTER_HOSTS:
            path = os.path.join(inputs.run_dir, HOSTFILE)
            files.append(GeneratedFile(path, mpi_hostfile_text(hosts)))
            argv += ["--hostfile", path]
        else:
            argv += ["-H", hosts]
        # One rank per listed slot; Open MPI does not bind: each rank supervisor binds its rank
        # (resources.binding, see placement.py), the same way under every launcher.
        argv += ["--bind-to", "none", "--map-by", "slot"]
        local = all_local(inputs.hosts, tools.hostname)
        plane = inputs.data_plane
        if local:
            # One machine: shared memory only (no TCP transport, so the ranks open no listening socket).
            argv += ["-mca", "pml", "ob1", "-mca", "btl", "self,vader"]
        else:
            argv += ["-mca", "pml", "ob1", "-mca", "btl", "self,vader,tcp"]
        # Single-copy CMA reads where the kernel allows them (probed), else the copy-in/copy-out path.
        single_copy = bool(plane.single_copy) if plane is not None else (bool(tools.cma) and local)
        argv += ["-mca", "btl_vader_single_copy_mechanism", "cma" if single_copy else "none"]
        # hvdjob, not mpirun, ends the job when a rank fails: mpirun would kill the rank that failed
        # first while it is still exiting (its own exit code and last lines lost) when a peer that
        # failed because of it ("Horovod has been shut down") happens to exit sooner.
        argv += ["-mca", "orte_abort_on_non_zero_status", "0"]
        nics = inputs.spec.horovod.network_interfaces
        if nics:
            argv += ["-mca", "btl_tcp_if_include", ",".join(nics)]
            argv += ["-mca", "oob_tcp_if_include", ",".join(nics)]
        elif local:
            argv += ["-mca", "oob_tcp_if_include", "lo"]
        for name in sorted(set(dict(inputs.rank_env)) | set(inputs.forward_env_names)):
            argv += ["-x", name]
    else:
        # MPICH / Intel MPI (hydra): -genvlist forwards the named variables.
        argv += ["-np", str(len(inputs.layout)), "-hosts", hosts]
        argv += ["-genvlist", ",".join(sorted(set(dict(inputs.rank_env)) | set(inputs.forward_env_names)))]
        notes.append(f"{tools.mpi_implementation} mpirun: hydra flags")
    argv += list(inputs.rank_command())
    return LaunchPlan(
        launcher=LauncherKind.MPI,
        processes=(ProcessSpec(argv=tuple(argv)),),
        layout=inputs.layout,
        hosts=inputs.hosts,
        run_dir=inputs.run_dir,
        run_id=inputs.run_id,
        files=tuple(files),
        env=inputs.rank_env,
        notes=tuple(notes),
        attempt=inputs.attempt,
    )
