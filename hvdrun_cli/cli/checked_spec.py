"""Every problem with a job's input in one report: spec, flags, hosts, rank layout (and sbatch options).

``validate``, ``run`` and ``submit`` call :func:`load_checked` before anything starts. A user with a
typo in the spec and a duplicate host in the hostfile sees both lines at once, each located: files
named as the user wrote them (``hosts.txt:3``, not an absolute path) and a layout misfit pointing
at the line (or flag) that set ``np``. Host and layout checks run on the values of the spec that
passed, so they are skipped only when the host-related keys themselves have problems.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Dict, List, Mapping, Optional, Tuple

from hvdrun_cli.cli.spec_options import FLAG_KEYS, SpecFlags, overrides_from_flags
from hvdrun_cli.errors import Problem, SpecError, UserInputError
from hvdrun_cli.hosts import total_slots
from hvdrun_cli.launch.planner import HostSource, layout_for, resolve_hosts
from hvdrun_cli.scriptjob.files import load_spec_file, not_a_spec
from hvdrun_cli.spec import limits
from hvdrun_cli.spec.load import SpecReading, ordered, read_spec
from hvdrun_cli.spec.model import JobSpec
from hvdrun_cli.spec.overrides import Override, parse_set_option
from hvdrun_cli.spec.yaml_source import Node

# Keys whose problems make a host or layout check meaningless (it would check a guess).
_HOST_KEYS = ("resources", "launcher", "elastic")
# Spec keys holding file paths that other checks name in their messages.
_PATH_KEYS = ("resources.hostfile", "elastic.hostfile", "elastic.discovery_script", "script")


@dataclass(frozen=True)
class CheckedJob:
    """A spec that passed every check, and how many ranks it will run (None: decided at run time)."""

    spec: JobSpec
    np: Optional[int]


def load_checked(
    spec_file: str,
    flags: SpecFlags,
    *,
    environ: Optional[Mapping[str, str]] = None,
    allocation: bool = True,
    sbatch: bool = False,
) -> CheckedJob:
    """Load the spec with the flags and check hosts and layout; UserInputError lists every problem.

    ``allocation=False`` (submit) leaves Slurm/PBS variables of the submitting shell out: the job
    reads its own allocation when it runs. ``sbatch=True`` also checks what the sbatch script needs.
    """
    env = os.environ if environ is None else environ
    not_spec = not_a_spec(spec_file)  # a script named where a spec goes: say so in one line
    if not_spec:
        raise SpecError(not_spec)
    overrides, problems = _overrides(flags)
    try:
        reading = read_spec(spec_file, overrides, env)
    except SpecError as exc:
        found = list(exc.problems)
        try:  # a file that is no YAML mapping at all gets the "not a job spec" wording
            load_spec_file(spec_file, overrides)
        except SpecError as worded:
            found = list(worded.problems)
        raise SpecError(found + problems) from None
    problems += reading.problems
    np: Optional[int] = None
    if not any(_about(p, _HOST_KEYS) for p in reading.problems):
        np, host_problems = _hosts_and_layout(reading, env if allocation else {})
        problems += host_problems
    if sbatch and not any(_about(p, ("slurm", "resources", "name", "run_root")) for p in reading.problems):
        problems += _sbatch_problems(reading)
    if problems:
        labels = _labels(reading)
        raise UserInputError(ordered([_located(p, reading, labels) for p in problems], reading.label))
    return CheckedJob(reading.spec(), np)


def _overrides(flags: SpecFlags) -> Tuple[List[Override], List[Problem]]:
    """Overrides from the flags; a malformed ``--set`` is reported with the rest, not alone."""
    overrides: List[Override] = []
    problems: List[Problem] = []
    for text in flags.set_options:
        try:
            overrides.append(parse_set_option(text))
        except UserInputError as exc:
            problems += exc.problems
    overrides += overrides_from_flags((), **{name: getattr(flags, name) for name in FLAG_KEYS})
    return overrides, problems


def _about(problem: Problem, sections: Tuple[str, ...]) -> bool:
    key = problem.key or ""
    return any(key == s or key.startswith(s + ".") or key.startswith(s + "[") for s in sections)


def _hosts_and_layout(reading: SpecReading, environ: Mapping[str, str]) -> Tuple[Optional[int], List[Problem]]:
    """Read the hosts the job would use and fit its ranks on them (elastic jobs: at run time)."""
    spec = reading.provisional_spec()
    if spec.elastic is not None:
        return None, []
    try:
        source = resolve_hosts(spec, environ)
    except UserInputError as exc:
        return None, list(exc.problems)
    np = spec.resources.np or total_slots(source.hosts)
    if np > limits.MAX_RANKS:  # before anything is built per rank
        return None, [Problem(
            f"{_origin(spec, source)} has {np} slots, more than hvdjob's limit of {limits.MAX_RANKS} ranks;"
            " set resources.np (or --np) to run on part of them", file=spec.source, key="resources.np")]
    try:
        return len(layout_for(spec, source)), []
    except UserInputError as exc:
        return None, list(exc.problems)


def _origin(spec: JobSpec, source: HostSource) -> str:
    names = {"hostfile": f"hostfile {spec.resources.hostfile}", "hosts": "resources.hosts",
             "slurm": "the Slurm allocation", "pbs": "PBS_NODEFILE"}
    return names.get(source.origin, source.origin)


def _sbatch_problems(reading: SpecReading) -> List[Problem]:
    from hvdrun_cli.slurm.sbatch import sbatch_options  # only submit needs it

    try:
        sbatch_options(reading.provisional_spec(), "/run")
    except UserInputError as exc:
        return list(exc.problems)
    return []


def _labels(reading: SpecReading) -> Dict[str, str]:
    """Absolute paths the checks report -> the path as the user wrote it.

    A path written in the spec is shown relative to the spec as the user named it
    (``jobs/job.yaml`` with ``hostfile: hosts.txt`` -> ``jobs/hosts.txt``); one from a flag as typed.
    """
    labels = {os.path.abspath(reading.label): reading.label}
    for key in _PATH_KEYS:
        node = reading.where(key)
        value = reading.data
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or node.text is None:
            continue
        written = os.path.expanduser(node.text)
        if node.line is not None and not os.path.isabs(written):  # from the spec file
            written = os.path.normpath(os.path.join(os.path.dirname(reading.label), written))
        labels[value] = written
    return labels


def _located(problem: Problem, reading: SpecReading, labels: Dict[str, str]) -> Problem:
    """The problem with its file as the user wrote it, and a line when only its key was known."""
    file = labels.get(problem.file, problem.file) if problem.file else problem.file
    message = problem.message
    for absolute, label in labels.items():
        if absolute != label and absolute in message:
            message = message.replace(absolute, label)
    problem = replace(problem, file=file, message=message)
    if problem.line is None and problem.key and file in (reading.label, None):
        node = _node_for(reading, problem.key)
        if node is None:
            return problem
        if node.file != reading.label:  # the value came from a flag: name the flag
            return replace(problem, file=node.file)
        return replace(problem, file=reading.label, line=node.line)
    return problem


def _node_for(reading: SpecReading, key: str) -> Optional[Node]:
    """The node of ``resources.hosts[1]`` / ``resources.np``, or None when the key is not in the spec."""
    dotted, _, index = key.partition("[")
    node = reading.where(dotted)
    if node is reading.root and dotted.split(".")[0] not in reading.root.value:
        return None  # nothing of it written in the spec: no line to point at
    if index and node.is_sequence:
        position = index.rstrip("]")
        if position.isdigit() and int(position) < len(node.value):
            return node.value[int(position)]
    return node
