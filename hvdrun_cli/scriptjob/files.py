"""What a file named on the command line is: a job spec, a Python script, or neither.

``run`` and ``submit`` take either a spec or a script; ``validate``, ``smoke`` and ``bench`` need a
spec and answer a script (or any file that is not YAML) with one line saying what it is and the
command that would run it, instead of a YAML parser's complaint about line 1.
"""
from __future__ import annotations

import os
import re
import shlex
from typing import Optional, Sequence

import yaml

from hvdrun_cli.errors import Problem, SpecError
from hvdrun_cli.spec import Override, load_spec
from hvdrun_cli.spec.model import JobSpec

SPEC_SUFFIXES = (".yaml", ".yml")
PYTHON_SUFFIXES = (".py", ".pyw")
_PYTHON = re.compile(r"python[0-9.]*")


def is_python_command(token: str) -> bool:
    """``python``, ``python3``, ``python3.11`` or a path to one (``/usr/bin/python3``)."""
    return bool(_PYTHON.fullmatch(os.path.basename(token)))


def shebang(path: str) -> Optional[str]:
    """The interpreter line of an existing file (``#!/usr/bin/env python3``), else None."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(200)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    return first[2:].decode("utf-8", "replace").strip()


def is_python_script(path: str) -> bool:
    """A ``.py`` file, or a file whose ``#!`` line runs Python."""
    if path.endswith(SPEC_SUFFIXES):
        return False
    if path.endswith(PYTHON_SUFFIXES):
        return True
    line = shebang(path)
    return bool(line and any(is_python_command(word) for word in line.split()))


def run_command_for(path: str) -> str:
    return f"hvdjob run --np 2 {shlex.quote(path)} [SCRIPT ARGS...]"


def not_a_spec(path: str) -> Optional[Problem]:
    """The one-line answer for a file that is plainly not a spec (a script), else None."""
    if is_python_script(path):
        return Problem(f"is a Python script, not a job spec; run it with '{run_command_for(path)}', "
                       f"or write a spec for it with 'hvdjob init --script {shlex.quote(path)}'", file=path)
    line = shebang(path)
    if line:
        return Problem(f"is a script run by '{line}', not a job spec (YAML); hvdjob runs Python training "
                       "scripts ('hvdjob run --np 2 train.py') and job specs ('hvdjob init' writes one)", file=path)
    return None


def load_spec_file(path: str, overrides: Sequence[Override] = ()) -> JobSpec:
    """:func:`load_spec` for commands that need a spec: a script, or a file that is neither named
    ``.yaml`` nor holds YAML, is named as such in one line."""
    problem = not_a_spec(path)
    if problem:
        raise SpecError(problem)
    try:
        return load_spec(path, overrides)
    except SpecError as exc:
        named_as_spec = path.endswith(SPEC_SUFFIXES)  # a .yaml with a typo gets the parser's own message
        if not named_as_spec and _is_yaml_mapping(path) is False and len(exc.problems) == 1 \
                and exc.problems[0].file == path:
            first = exc.problems[0]
            raise SpecError(Problem(f"is not a job spec (a YAML mapping such as 'framework: torch'): "
                                    f"{first.message}; 'hvdjob init' writes a starter spec",
                                    file=path, line=first.line, column=first.column)) from None
        raise


def _is_yaml_mapping(path: str) -> Optional[bool]:
    """Whether the file holds a YAML mapping; None when it cannot be read or is empty (other messages cover it)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            data = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError):
        return None
    except yaml.YAMLError:
        return False
    if data is None:
        return None
    return isinstance(data, dict)
