"""The check ``hvdjob run`` makes before starting ranks on other hosts.

mpirun and horovodrun report a host that is down late and badly (mpirun: "ORTE was unable to
reliably start one or more daemons"; horovodrun: a traceback after five ssh attempts, and with no
ssh ConnectTimeout a host that drops packets costs two minutes per attempt). Checking the hosts the
plan uses first gives one line naming them, in seconds, before any rank starts anywhere.
"""
from __future__ import annotations

import sys

from hvdrun_cli.launch.plan import LaunchPlan
from hvdrun_cli.preflight.check import REACH_TIMEOUT_S, reachable_or_raise

SSH_LAUNCHERS = ("mpi", "gloo")  # the plans whose launcher reaches other hosts through ssh


def require_reachable_hosts(plan: LaunchPlan, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Raise ``LaunchError`` naming each host of ``plan`` that ranks cannot be started on.

    Does nothing for the local launcher and srun (no ssh), and skips hosts that are this machine.
    """
    if plan.launcher not in SSH_LAUNCHERS:
        return
    hosts = list(dict.fromkeys(slot.hostname for slot in plan.layout))
    reachable_or_raise(hosts, timeout_s, python=sys.executable)  # the ranks run hvdjob's interpreter
