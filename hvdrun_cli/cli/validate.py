"""``hvdjob validate job.yaml``: check a spec with the same loader ``run`` and ``submit`` use.

Prints ``job.yaml: OK (torch, managed, np=4)`` or every problem, one per line, and exits 2.
"""
from __future__ import annotations

import dataclasses
import os

import click

from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.cli.spec_options import SpecFlags, spec_options
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.launch.planner import layout_for, resolve_hosts
from hvdrun_cli.scriptjob.files import load_spec_file
from hvdrun_cli.spec.model import JobSpec


@click.command("validate")
@click.argument("spec_file", metavar="JOB.yaml")
@spec_options
@click.option("--json", "as_json", is_flag=True, help="Print the result (resolved spec or problems) as JSON.")
@clean_errors
def validate(spec_file: str, spec_flags: SpecFlags, as_json: bool) -> None:
    """Check JOB.yaml (with any overrides) and report every problem with its file:line and key."""
    try:
        spec = load_spec_file(spec_file, spec_flags.overrides())
        check_hosts(spec)
    except UserInputError as exc:
        if not as_json:
            raise
        echo_json({"ok": False, "file": spec_file, "problems": [_problem_json(p) for p in exc.problems]})
        raise SystemExit(exc.exit_code) from None
    if as_json:
        echo_json({"ok": True, "file": spec_file, "summary": summary(spec), "spec": spec.to_dict()})
    else:
        click.echo(f"{spec_file}: OK ({summary(spec)})")


def check_hosts(spec: JobSpec) -> None:
    """Read the hosts the job would use (hostfile lines, allocation) and fit the ranks on them."""
    layout_for(spec, resolve_hosts(spec, os.environ))


_NO_GOT = next(f.default for f in dataclasses.fields(Problem) if f.name == "got")


def summary(spec: JobSpec) -> str:
    """``torch, managed, np=4``: what kind of job this is, at a glance."""
    mode = "managed" if spec.managed else "script"
    np = spec.resources.np if spec.resources.np is not None else "auto"
    return f"{spec.framework}, {mode}, np={np}"


def _problem_json(problem: Problem) -> dict:
    out = {"message": problem.message, "file": problem.file, "line": problem.line,
           "column": problem.column, "key": problem.key, "text": str(problem)}
    got = problem.got
    if got is not _NO_GOT:
        out["got"] = got if isinstance(got, (str, int, float, bool, type(None))) else repr(got)
    return out
