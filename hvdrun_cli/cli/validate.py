"""``hvdjob validate job.yaml``: check a spec with the same checks ``run`` and ``submit`` make first.

Prints ``job.yaml: OK (torch, managed, np=4)`` (the np that will run) or every problem with the
spec, the flags, the hosts and the rank layout, one per line, and exits 2.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import click

from hvdrun_cli.cli.checked_spec import load_checked
from hvdrun_cli.cli.common import clean_errors, echo_json
from hvdrun_cli.cli.spec_options import SpecFlags, spec_options
from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import JobSpec


@click.command("validate")
@click.argument("spec_file", metavar="JOB.yaml")
@spec_options
@click.option("--json", "as_json", is_flag=True, help="Print the result (resolved spec or problems) as JSON.")
@clean_errors
def validate(spec_file: str, spec_flags: SpecFlags, as_json: bool) -> None:
    """Check JOB.yaml (with any overrides) and report every problem with its file:line and key."""
    try:
        job = load_checked(spec_file, spec_flags)
    except UserInputError as exc:
        if not as_json:
            raise
        echo_json({"ok": False, "file": spec_file, "problems": [_problem_json(p) for p in exc.problems]})
        raise SystemExit(exc.exit_code) from None
    if as_json:
        echo_json({"ok": True, "file": spec_file, "summary": summary(job.spec, job.np), "np": job.np,
                   "spec": job.spec.to_dict()})
    else:
        click.echo(f"{spec_file}: OK ({summary(job.spec, job.np)})")


_NO_GOT = next(f.default for f in dataclasses.fields(Problem) if f.name == "got")


def summary(spec: JobSpec, np: Optional[int]) -> str:
    """``torch, managed, np=4``: what kind of job this is and how many ranks will run, at a glance."""
    mode = "managed" if spec.managed else "script"
    if spec.elastic is not None:
        upper = spec.elastic.max_np if spec.elastic.max_np is not None else "any"
        ranks = f"elastic np={spec.elastic.min_np}..{upper}"
    else:
        ranks = f"np={np}"
    return f"{spec.framework}, {mode}, {ranks}"


def _problem_json(problem: Problem) -> dict:
    out = {"message": problem.message, "file": problem.file, "line": problem.line,
           "column": problem.column, "key": problem.key, "text": str(problem)}
    got = problem.got
    if got is not _NO_GOT:
        out["got"] = got if isinstance(got, (str, int, float, bool, type(None))) else repr(got)
    return out
