"""Run one short command on a host: directly when it is this machine, else through ssh.

ssh is started the way the launchers will start ranks (plain ``ssh host``, the user's keys and
``~/.ssh/config``) but with ``BatchMode=yes`` (never wait for a password or a host-key prompt)
and a short ``ConnectTimeout``, so a host that is down fails in seconds instead of after the
kernel's two-minute TCP connect timeout.

The remote command is an argv list of our own values (interpreter path, module name), each quoted
for the remote shell: ssh joins its arguments into one string that the remote shell parses.
Host names are validated before they reach ssh's argv, and ``--`` ends ssh's options.
"""
from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

from hvdrun_cli.hosts import host_name_problem

SSH_FAILED = 255  # ssh's own exit code for "could not connect / authenticate"
COMMAND_NOT_FOUND = 127  # the remote shell's code for a missing executable
MAX_CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Outcome:
    """How a command on a host ended."""

    host: str
    returncode: Optional[int]  # None: killed after the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def last_error_line(self) -> str:
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.returncode}"


def connect_timeout(timeout_s: float) -> int:
    """ssh's ConnectTimeout: a few seconds, never more than the whole check may take."""
    return max(1, min(MAX_CONNECT_TIMEOUT_S, int(timeout_s)))


def ssh_argv(host: str, command: Sequence[str], timeout_s: float) -> List[str]:
    """``ssh`` argv that runs ``command`` on ``host`` without ever prompting."""
    problem = host_name_problem(host)
    if problem:
        raise ValueError(f"{problem} (got {host!r})")
    return [
        "ssh",
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={connect_timeout(timeout_s)}",
        "-o", "ServerAliveInterval=5",
        "-o", "ServerAliveCountMax=2",
        "--", host,
        shlex.join(command),
    ]


def run_on_host(host: str, command: Sequence[str], timeout_s: float, local: bool) -> Outcome:
    """Run ``command`` on ``host`` (through ssh unless ``local``), killed after ``timeout_s``."""
    argv = list(command) if local else ssh_argv(host, command, timeout_s)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(host, None, _text(exc.stdout), _text(exc.stderr), time.monotonic() - started)
    except OSError as exc:  # ssh (or the local interpreter) is missing
        return Outcome(host, COMMAND_NOT_FOUND, "", f"cannot run {argv[0]}: {exc.strerror or exc}", time.monotonic() - started)
    return Outcome(host, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def unreachable_reason(outcome: Outcome, timeout_s: float, local: bool) -> Optional[str]:
    """Why the host could not be reached at all, or None when the command ran there."""
    if outcome.timed_out:
        return f"no answer within {timeout_s:g} s"
    if not local and outcome.returncode == SSH_FAILED:
        return f"ssh failed: {outcome.last_error_line()}"
    return None


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data if isinstance(data, str) else ""
