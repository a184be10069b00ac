"""Command-line overrides: ``--set train.lr=0.1``, ``--np 4``, ``-H a:2,b:2`` applied to a spec tree.

An override's value is read as YAML (``4`` is a number, ``[a, b]`` a list) and lands in the same
tree as the file's values, marked with the flag it came from, so the one validator checks it and
its problems name the flag instead of a file line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Set

from hvdrun_cli.errors import Problem, SpecError, UserInputError
from hvdrun_cli.spec import schema
from hvdrun_cli.spec.yaml_source import Node, parse_yaml


@dataclass(frozen=True)
class Override:
    """One value from the command line. ``origin`` is the flag that gave it (``--set``, ``--np``)."""

    key: str  # dotted, e.g. "resources.np"
    raw: str  # as typed, e.g. "4"
    origin: str


def parse_set_option(text: str) -> Override:
    """``train.lr=0.1`` -> Override("train.lr", "0.1", "--set")."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UserInputError(
            Problem("expected KEY=VALUE, e.g. --set train.lr=0.1", file="--set", got=text)
        )
    return Override(key.strip(), raw, "--set")


def apply_overrides(root: Node, overrides: Sequence[Override], cwd: Optional[str] = None) -> List[Problem]:
    """Write each override into ``root`` (in order: a later one wins). Returns the problems found.

    Relative paths in override values resolve against ``cwd`` (default: the current directory),
    not against the spec file's directory.
    """
    cwd = cwd or os.getcwd()
    problems: List[Problem] = []
    set_here: Set[str] = set()
    for override in overrides:
        problem = _key_problem(override)
        if problem:
            problems.append(problem)
            continue
        try:
            value, parse_problems = parse_yaml(override.raw, file=override.origin, base_dir=cwd,
                                               line_numbers=False)
        except SpecError as exc:
            problems += [_about(override, f"value is not valid YAML: {p.message}") for p in exc.problems]
            continue
        problems += [_about(override, p.message) for p in parse_problems]
        if value is None:
            value = Node(None, override.origin, None, cwd, text="", plain=True)
        _put(root, override, value)
        set_here.add(override.key)
        other = schema.ALTERNATIVES.get(override.key)
        if other and other not in set_here:
            _remove(root, other)
    return problems


def _key_problem(override: Override) -> Optional[Problem]:
    """An unknown key, or one that reaches inside a single value (``train.lr.x``)."""
    section = ""
    parts = override.key.split(".")
    for depth, part in enumerate(parts):
        fields = schema.section_fields(section)
        dotted = ".".join(parts[: depth + 1])
        if part not in fields:
            return Problem(schema.unknown_key_message(part, section), file=override.origin, key=dotted)
        field = fields[part]
        if field.kind in ("strmap", "anymap"):
            return None  # env.OMP_NUM_THREADS, train.model_args.hidden: any key inside is the user's
        if depth < len(parts) - 1 and field.kind != "section":
            return Problem(f"is a single value; '{override.key}' reaches inside it",
                           file=override.origin, key=dotted)
        section = field.path
    return None


def _about(override: Override, message: str) -> Problem:
    return Problem(message, file=override.origin, key=override.key, got=override.raw)


def _put(root: Node, override: Override, value: Node) -> None:
    parts = override.key.split(".")
    parent = root
    for part in parts[:-1]:
        child = parent.value.get(part)
        if child is None or not child.is_mapping:
            child = Node({}, override.origin, None, value.base_dir)
            parent.value[part] = child
        parent = child
    parent.value[parts[-1]] = value


def _remove(root: Node, dotted: str) -> None:
    *sections, last = dotted.split(".")
    parent = root
    for part in sections:
        parent = parent.value.get(part)
        if parent is None or not parent.is_mapping:
            return
    parent.value.pop(last, None)
