"""Whether a spec submitted to Slurm will use the allocation Slurm gives it.

Inside an allocation ``hvdjob run`` takes hosts from the spec first (``resources.hostfile`` /
``resources.hosts``), and an explicit ``launcher: mpi | gloo`` starts ranks over ssh: a spec written
for a fixed set of machines then ignores the nodes Slurm allocated. That is legitimate (a site may
want mpirun), but rarely what ``hvdjob submit`` means, so submit says so before the job queues.
"""
from __future__ import annotations

from typing import List, Optional

from hvdrun_cli.spec.model import JobSpec

OVER_SSH = {"mpi": "mpirun", "gloo": "horovodrun --gloo"}


def allocation_warning(spec: JobSpec) -> Optional[str]:
    """One line naming the keys that override the allocation and how to drop them, or None."""
    keys: List[str] = []
    fixes: List[str] = []
    res = spec.resources
    if res.hostfile:
        keys.append(f"resources.hostfile ({res.hostfile})")
        fixes.append("--set resources.hostfile=null")
    elif res.hosts:
        keys.append(f"resources.hosts ({', '.join(res.hosts)})")
        fixes.append("--set 'resources.hosts=[]'")
    if spec.launcher in OVER_SSH:
        keys.append(f"launcher: {spec.launcher}")
        fixes.append("--set launcher=srun")
    if not keys:
        return None
    how = OVER_SSH.get(spec.launcher, "the launcher for those hosts")
    where = "the hosts the spec names" if (res.hostfile or res.hosts) else "the allocated nodes"
    return (
        f"{spec.source or spec.name}: {' and '.join(keys)} take precedence inside the allocation: the batch job "
        f"will start its ranks with {how} on {where}, not with srun on the nodes Slurm allocates; "
        f"to use the allocation, drop them from the spec or submit with {' '.join(fixes)}"
    )
