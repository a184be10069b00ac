"""Where a job's ranks run: hostfiles, ``-H`` lists, Slurm/PBS allocations and the rank layout.

Every source becomes a tuple of :class:`Host`; :func:`assign_ranks` turns hosts into one
:class:`SlotInfo` per rank.  All functions are pure apart from reading the named file.
"""
from hvdrun_cli.hosts.allocation import hosts_from_pbs, hosts_from_slurm, in_slurm_allocation, slurm_cpus_per_node
from hvdrun_cli.hosts.hostfile import parse_host_list, parse_hostfile
from hvdrun_cli.hosts.hostlist import expand_nodelist, parse_tasks_per_node
from hvdrun_cli.hosts.layout import assign_ranks, total_slots, used_hosts
from hvdrun_cli.hosts.model import Host, SlotInfo, format_host_list, host_name_problem

__all__ = [
    "Host",
    "SlotInfo",
    "assign_ranks",
    "expand_nodelist",
    "format_host_list",
    "host_name_problem",
    "hosts_from_pbs",
    "hosts_from_slurm",
    "slurm_cpus_per_node",
    "in_slurm_allocation",
    "parse_host_list",
    "parse_hostfile",
    "parse_tasks_per_node",
    "total_slots",
    "used_hosts",
]
