"""Elastic training: ``horovodrun --gloo --min-np/--max-np --host-discovery-script``.

Horovod's elastic driver asks a discovery command for the current hosts every second, starts
workers on new ones and carries on without workers that die (their host is blacklisted). The
spec names either the user's own discovery script or a hostfile to watch; for a hostfile, the plan
writes a small script that prints it in Horovod's ``host:slots`` form through hvdjob's own hostfile
parser, so every supported format (``h slots=N``, ``h:N``, bare ``h``) works and a file that is
being edited (or momentarily broken) is reported, not misread.

Horovod runs the discovery command through a shell, so every path in it is quoted here.

Also the discovery command itself: ``python -m hvdrun_cli.launch.elastic HOSTFILE``.
"""
from __future__ import annotations

import os
import shlex
import sys
from typing import List, Optional, Tuple

from hvdrun_cli.errors import HostfileError, LaunchError, Problem
from hvdrun_cli.hosts import Host, parse_hostfile
from hvdrun_cli.launch.inputs import RANK_SUPERVISOR, RANK_WORKER
from hvdrun_cli.launch.plan import GeneratedFile, LauncherKind, LaunchPlan, ProcessSpec, env_tuple
from hvdrun_cli.launch.tools import Tools
from hvdrun_cli.spec.model import ElasticSpec, JobSpec

ELASTIC_LAUNCHER = LauncherKind.ELASTIC  # the executor treats such plans specially
DISCOVERY_SCRIPT = "discover_hosts.sh"
_INCOMPATIBLE_LAUNCHERS = ("mpi", "srun")


def initial_np(spec: JobSpec) -> int:
    """Ranks Horovod waits for before the first start: ``resources.np``, else ``elastic.min_np``."""
    elastic = spec.elastic or ElasticSpec()
    return spec.resources.np or elastic.min_np


def discovery_script_text(python: str, hostfile: str) -> str:
    """The generated discovery script for a watched hostfile (values quoted for the shell)."""
    return (
        "#!/bin/sh\n"
        "# Written by hvdjob: prints the hosts of the watched hostfile as host:slots lines for\n"
        "# Horovod's elastic driver, which runs this every second.\n"
        f"exec {shlex.quote(python)} -m hvdrun_cli.launch.elastic {shlex.quote(hostfile)}\n"
    )


def build_elastic_plan(
    spec: JobSpec,
    *,
    tools: Tools,
    run_dir: str,
    run_id: str,
    rank_env: Tuple[Tuple[str, str], ...],
    attempt: int = 0,
) -> LaunchPlan:
    """The horovodrun command for an elastic job; pure (the hostfile is only read by the script)."""
    elastic = spec.elastic
    if elastic is None:
        raise ValueError("build_elastic_plan needs a spec with an elastic section")
    if not tools.horovodrun:
        raise LaunchError("horovodrun not found: elastic training needs Horovod's launcher (make setup)")
    if spec.launcher in _INCOMPATIBLE_LAUNCHERS:
        raise LaunchError(
            f"launcher {spec.launcher!r} cannot run an elastic job: Horovod's elastic mode works over Gloo only "
            f"({spec.source or 'the spec'}: use launcher: gloo or auto, or remove 'elastic')"
        )
    files: List[GeneratedFile] = []
    notes = [f"elastic: {elastic.min_np} to {elastic.max_np or 'any number of'} ranks; Horovod restores the "
             "last committed state when a worker is lost and re-shards the data when workers come or go"]
    if elastic.discovery_script:
        discovery = shlex.quote(elastic.discovery_script)
        notes.append(f"hosts from the discovery script {elastic.discovery_script}")
    else:
        hostfile = elastic.hostfile or ""
        script = os.path.join(run_dir, DISCOVERY_SCRIPT)
        files.append(GeneratedFile(script, discovery_script_text(tools.python, hostfile)))
        discovery = f"/bin/sh {shlex.quote(script)}"
        notes.append(f"hosts from the watched hostfile {hostfile} (re-read every second)")
    argv: List[str] = [
        tools.horovodrun, "--gloo",
        "-np", str(initial_np(spec)),
        "--min-np", str(elastic.min_np),
    ]
    if elastic.max_np is not None:
        argv += ["--max-np", str(elastic.max_np)]
    argv += ["--host-discovery-script", discovery]
    if elastic.reset_limit is not None:
        argv += ["--reset-limit", str(elastic.reset_limit)]
    nics = spec.horovod.network_interfaces
    if nics:
        argv += ["--network-interfaces", ",".join(nics)]
    else:
        notes.append("no horovod.network_interfaces: Horovod tests interfaces across hosts and waits for at "
                     "least 2 hosts before the first start (on one machine set network_interfaces: [lo])")
    argv += [tools.python, "-m", RANK_SUPERVISOR, "--", tools.python, "-m", RANK_WORKER]
    return LaunchPlan(
        launcher=ELASTIC_LAUNCHER,
        processes=(ProcessSpec(argv=tuple(argv)),),
        layout=(),
        hosts=(),
        run_dir=run_dir,
        run_id=run_id,
        files=tuple(files),
        # horovodrun imports TensorFlow to check the build; keep its C++ log noise out of the job output.
        env=env_tuple({"TF_CPP_MIN_LOG_LEVEL": "2", **dict(rank_env)}),
        notes=tuple(notes),
        attempt=attempt,
    )


def discovered_hosts(hostfile: str) -> Tuple[Host, ...]:
    """Hosts of a watched hostfile; a file with no host lines means "none available right now"."""
    try:
        with open(hostfile, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise HostfileError(Problem(f"cannot read the watched hostfile: {exc.strerror}", file=hostfile)) from exc
    if not any(line.split("#", 1)[0].strip() for line in text.splitlines()):
        return ()
    return parse_hostfile(hostfile)


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: python -m hvdrun_cli.launch.elastic HOSTFILE\n")
        return 2
    try:
        hosts = discovered_hosts(args[0])
    except HostfileError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"hvdjob: host discovery: {problem}\n")
        return 1
    sys.stdout.write("".join(f"{h.name}:{h.slots}\n" for h in hosts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
