"""Thin wrappers around Slurm's client tools: argv lists, timeouts, parsed output.

Everything that talks to ``sbatch``/``squeue``/``sacct``/``scontrol``/``scancel`` goes through
:class:`SlurmClient`, so the commands above it deal in job ids and :class:`JobState` records, and
the three ways a tool can fail (not installed, not answering, refusing) each become one clear
:class:`~hvdrun_cli.errors.LaunchError` instead of a traceback.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

from hvdrun_cli.errors import LaunchError

DEFAULT_TIMEOUT = 30.0
# States after which a job will not run again (squeue --states=all lists them while slurmctld
# still remembers the job; sacct afterwards).
FINISHED_STATES = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT"}
)
_UNKNOWN_JOB = "Invalid job id specified"
# scontrol prints these keys alone on their line: their values may contain spaces.
_WHOLE_LINE_KEYS = ("Command", "Comment", "WorkDir", "StdErr", "StdIn", "StdOut")


class SlurmToolMissing(LaunchError):
    """A Slurm client program is not installed (exit 1)."""


@dataclass(frozen=True)
class JobState:
    """One job as squeue or sacct reports it."""

    job_id: str
    state: str  # Slurm's word: PENDING, RUNNING, COMPLETED, CANCELLED, ...
    name: str = ""
    elapsed: str = ""
    partition: str = ""
    where: str = ""  # node list when running, "(Reason)" when pending
    exit_code: str = ""  # "0:0" from sacct; empty from squeue
    source: str = "squeue"  # squeue | sacct

    @property
    def finished(self) -> bool:
        return self.state.split()[0] in FINISHED_STATES if self.state else False


class SlurmClient:
    """Runs Slurm's tools for one hvdjob command (``purpose`` names it in error messages)."""

    def __init__(self, purpose: str, env: Optional[Mapping[str, str]] = None, timeout: float = DEFAULT_TIMEOUT):
        self.purpose = purpose
        self.env = dict(env) if env is not None else None
        self.timeout = timeout

    # -- the tools -------------------------------------------------------------------------------

    def submit(self, script: str) -> str:
        """``sbatch --parsable <script>``; returns the job id."""
        out = self._run(["sbatch", "--parsable", script]).stdout.strip()
        job_id = out.splitlines()[-1].split(";")[0] if out else ""  # "<id>" or "<id>;<cluster>"
        if not job_id.isdigit():
            raise LaunchError(f"sbatch did not print a job id (got {out!r})")
        return job_id

    def queue(self, job_ids: Sequence[str] = (), user: Optional[str] = None) -> Dict[str, JobState]:
        """Jobs slurmctld still knows (pending, running and recently finished), by id."""
        argv = ["squeue", "--noheader", "--states=all", "--format=%i|%T|%M|%P|%R|%j"]
        if job_ids:
            argv.append("--jobs=" + ",".join(job_ids))
        if user:
            argv.append("--user=" + user)
        result = self._run(argv, check=False)
        if result.returncode != 0:
            if _UNKNOWN_JOB in result.stderr:  # every id asked for is unknown to slurmctld
                return {}
            raise self._failed(argv, result)
        jobs: Dict[str, JobState] = {}
        for line in result.stdout.splitlines():
            fields = line.split("|", 5)  # the name comes last: it may itself contain "|"
            if len(fields) == 6:
                job_id, state, elapsed, partition, where, name = fields
                jobs[job_id] = JobState(job_id, state, name, elapsed, partition, where)
        return jobs

    def accounting(self, job_ids: Sequence[str]) -> Dict[str, JobState]:
        """Finished jobs from ``sacct``; empty when accounting is not configured on this cluster."""
        if not job_ids or not self.available("sacct"):
            return {}
        argv = ["sacct", "--noheader", "--parsable2", "--allocations",
                "--format=JobID,State,Elapsed,Partition,NodeList,ExitCode,JobName",
                "--jobs=" + ",".join(job_ids)]
        result = self._run(argv, check=False)
        if result.returncode != 0:
            return {}  # "accounting storage is disabled": there is nothing more to learn
        jobs: Dict[str, JobState] = {}
        for line in result.stdout.splitlines():
            fields = line.split("|", 6)
            if len(fields) == 7:
                job_id, state, elapsed, partition, where, exit_code, name = fields
                jobs[job_id] = JobState(job_id, state, name, elapsed, partition, where, exit_code, "sacct")
        return jobs

    def show_job(self, job_id: str) -> Optional[Dict[str, str]]:
        """``scontrol show job``'s fields (StdOut, WorkDir, JobState, ...), or None for an unknown job."""
        argv = ["scontrol", "show", "job", job_id]
        result = self._run(argv, check=False)
        if result.returncode != 0:
            if _UNKNOWN_JOB in result.stderr:
                return None
            raise self._failed(argv, result)
        return parse_scontrol(result.stdout)

    def cancel(self, job_id: str, signal: Optional[str] = None) -> None:
        argv = ["scancel"] + ([f"--signal={signal}"] if signal else []) + [job_id]
        self._run(argv)

    # -- plumbing --------------------------------------------------------------------------------

    def available(self, tool: str) -> bool:
        return self._which(tool) is not None

    def require(self, tool: str) -> str:
        """The tool's path, or the clear "not installed" error before anything else is done."""
        exe = self._which(tool)
        if exe is None:
            raise SlurmToolMissing(
                f"{tool} not found: hvdjob {self.purpose} needs Slurm's client tools (install slurm-client)"
            )
        return exe

    def _which(self, tool: str) -> Optional[str]:
        path = (self.env or os.environ).get("PATH")
        return shutil.which(tool, path=path)

    def _run(self, argv: List[str], check: bool = True) -> "subprocess.CompletedProcess[str]":
        exe = self.require(argv[0])
        try:
            result = subprocess.run(
                [exe, *argv[1:]], env=self.env, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise LaunchError(f"{argv[0]} did not answer within {self.timeout:g}s: is slurmctld reachable?") from None
        if check and result.returncode != 0:
            raise self._failed(argv, result)
        return result

    @staticmethod
    def _failed(argv: Sequence[str], result: "subprocess.CompletedProcess[str]") -> LaunchError:
        detail = (result.stderr or result.stdout).strip() or f"exit code {result.returncode}"
        return LaunchError(f"{argv[0]} failed: {detail}")


def parse_scontrol(text: str) -> Dict[str, str]:
    """Parse ``scontrol show job`` output into ``{key: value}``.

    Most lines hold several ``Key=Value`` pairs without spaces; the keys in ``_WHOLE_LINE_KEYS``
    sit alone on their line and their value (a path, a command) may contain spaces, as may the
    job name, which ends the first line.
    """
    fields: Dict[str, str] = {}
    whole = re.compile(r"^\s*(" + "|".join(_WHOLE_LINE_KEYS) + r")=(.*)$")
    first = re.compile(r"^\s*JobId=(\S+) JobName=(.*)$")
    for line in text.splitlines():
        match = whole.match(line)
        if match:
            fields[match.group(1)] = match.group(2).rstrip()
            continue
        match = first.match(line)
        if match:
            fields["JobId"], fields["JobName"] = match.group(1), match.group(2).rstrip()
            continue
        for token in line.split():
            key, sep, value = token.partition("=")
            if sep:
                fields.setdefault(key, value)
    return fields
