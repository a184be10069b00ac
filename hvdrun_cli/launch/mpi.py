"""``mpirun`` (Open MPI) launch: works as root and across hosts, without a Gloo rendezvous."""
from __future__ import annotations

from typing import List

from hvdrun_cli.errors import LaunchError
from hvdrun_cli.launch.inputs import PlanInputs, all_local, hosts_flag
from hvdrun_cli.launch.plan import LaunchPlan, ProcessSpec



def build_mpi_plan(inputs: PlanInputs) -> LaunchPlan:
    tools = inputs.tools
    if not tools.mpirun:
        raise LaunchError("mpirun not found: install Open MPI (apt-get install openmpi-bin) or use launcher: gloo")
    argv: List[str] = [tools.mpirun]
    notes = []
    if tools.mpi_implementation in (None, "openmpi"):
        if tools.is_root:
            argv.append("--allow-run-as-root")
        argv += ["-np", str(len(inputs.layout)), "-H", hosts_flag(inputs.layout)]
        # One rank per listed slot, no core binding: ranks size their own thread pools.
        argv += ["--bind-to", "none", "--map-by", "slot"]
        # TCP + shared memory; no single-copy CMA, which containers often forbid (ptrace scope).
        argv += ["-mca", "pml", "ob1", "-mca", "btl", "self,vader,tcp"]
        argv += ["-mca", "btl_vader_single_copy_mechanism", "none"]
        # hvdjob, not mpirun, ends the job when a rank fails: mpirun would kill the rank that failed
        # first while it is still exiting (its own exit code and last lines lost) when a peer that
        # failed because of it ("Horovod has been shut down") happens to exit sooner.
        argv += ["-mca", "orte_abort_on_non_zero_status", "0"]
        nics = inputs.spec.horovod.network_interfaces
        if nics:
            argv += ["-mca", "btl_tcp_if_include", ",".join(nics)]
            argv += ["-mca", "oob_tcp_if_include", ",".join(nics)]
        elif all_local(inputs.hosts, tools.hostname):
            argv += ["-mca", "btl_tcp_if_include", "lo", "-mca", "oob_tcp_if_include", "lo"]
        for name in sorted(set(dict(inputs.rank_env)) | set(inputs.forward_env_names)):
            argv += ["-x", name]
    else:
        # MPICH / Intel MPI (hydra): -genvlist forwards the named variables.
        argv += ["-np", str(len(inputs.layout)), "-hosts", hosts_flag(inputs.layout)]
        argv += ["-genvlist", ",".join(sorted(set(dict(inputs.rank_env)) | set(inputs.forward_env_names)))]
        notes.append(f"{tools.mpi_implementation} mpirun: hydra flags")
    argv += list(inputs.rank_command())
    return LaunchPlan(
        launcher="mpi",
        processes=(ProcessSpec(argv=tuple(argv)),),
        layout=inputs.layout,
        hosts=inputs.hosts,
        run_dir=inputs.run_dir,
        run_id=inputs.run_id,
        env=inputs.rank_env,
        notes=tuple(notes),
        attempt=inputs.attempt,
    )
