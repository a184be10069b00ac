"""What must hold for any input, fuzzed or kept in ``corpus/``: an answer or exit-2 problems, fast.

Each check takes the raw text a user (or a fuzzer) could hand hvdjob and fails on anything but a
result or a :class:`UserInputError` whose problems are all printable, located lines; the time
bound is enforced by hypothesis' deadline in the fuzz tests and by the corpus test's own timer.
"""
from __future__ import annotations

import os
import tempfile
from typing import List

from click.testing import CliRunner

from hvdrun_cli.cli.main import cli
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.hosts import expand_nodelist, parse_hostfile, parse_tasks_per_node
from hvdrun_cli.spec import limits
from hvdrun_cli.spec.load import read_spec

HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _problems_are_clean(problems: List[Problem], file: str = "") -> None:
    assert problems, "an error without a problem"
    for problem in problems:
        text = str(problem)  # must render
        assert "\n" not in problem.message, text
        assert "Traceback" not in text
        if file and problem.file is not None and not problem.file.startswith("-"):
            assert problem.file == file, text


def check_spec_text(text: str, cli_too: bool = True) -> None:
    """The spec loader: a JobSpec or SpecError problems; and ``hvdjob validate`` exits 0 or 2."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "job.yaml")
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as handle:
            handle.write(text)
        try:
            reading = read_spec(path, environ={"NP": "2"})
        except UserInputError as exc:
            _problems_are_clean(list(exc.problems), path)
        else:
            if reading.problems:
                _problems_are_clean(reading.problems)
            else:
                reading.spec().to_dict()
        if not cli_too:
            return
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            result = CliRunner().invoke(cli, ["validate", "job.yaml"], env={"NP": "2"})
        finally:
            os.chdir(cwd)
        assert result.exit_code in (0, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            lines = result.stderr.splitlines()
            assert lines and all(line.startswith("hvdjob: error: ") for line in lines), result.stderr
            assert len(lines) <= limits.MAX_PROBLEMS + 1


def check_hostfile_text(text: str) -> None:
    """The hostfile parser: hosts within the bounds, or HostfileError lines naming this file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hosts.txt")
        with open(path, "w", encoding="utf-8", errors="surrogatepass", newline="") as handle:
            handle.write(text)
        try:
            hosts = parse_hostfile(path)
        except UserInputError as exc:
            _problems_are_clean(list(exc.problems), path)
            return
        assert 1 <= len(hosts) <= limits.MAX_HOSTS
        assert len({h.name.lower() for h in hosts}) == len(hosts)
        for host in hosts:
            assert 1 <= host.slots <= limits.MAX_SLOTS_PER_HOST and set(host.name) <= HOST_CHARS


def check_hostlist_text(text: str) -> None:
    """Slurm's nodelist and task-count syntax: names within the bounds, or one HostfileError."""
    try:
        names = expand_nodelist(text, origin="SLURM_JOB_NODELIST")
    except UserInputError as exc:
        _problems_are_clean(list(exc.problems))
    else:
        assert 1 <= len(names) <= limits.MAX_HOSTS
        assert all(name and "[" not in name and "]" not in name and "," not in name for name in names)
    try:
        counts = parse_tasks_per_node(text, origin="SLURM_TASKS_PER_NODE")
    except UserInputError as exc:
        _problems_are_clean(list(exc.problems))
    else:
        assert 1 <= len(counts) <= limits.MAX_HOSTS
        assert all(1 <= c <= limits.MAX_SLOTS_PER_HOST for c in counts)


CHECKS = {"spec": check_spec_text, "hostfile": check_hostfile_text, "hostlist": check_hostlist_text}
