"""``load_spec``: job.yaml + command-line overrides + environment -> a validated, frozen JobSpec.

The steps, each in its own module: read YAML keeping lines (:mod:`yaml_source`), apply overrides
(:mod:`overrides`), fill ``${VAR}`` (:mod:`interpolate`), check and type every value
(:mod:`convert`), check rules across keys (:mod:`cross`), then fill the defaults that depend on
where the spec is. All problems from all steps are raised together as one :class:`SpecError`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from hvdrun_cli.contract import CHECKPOINTS_DIR
from hvdrun_cli.errors import Problem, SpecError
from hvdrun_cli.spec import limits, schema
from hvdrun_cli.spec.convert import Converter
from hvdrun_cli.spec.cross import cross_check
from hvdrun_cli.spec.interpolate import interpolate_tree
from hvdrun_cli.spec.model import JobSpec
from hvdrun_cli.spec.overrides import Override, apply_overrides
from hvdrun_cli.spec.yaml_source import Node, locate, parse_yaml, read_spec_file


@dataclass
class SpecReading:
    """A spec read and checked, with every problem found, but not yet a JobSpec.

    ``data`` holds the values that passed their checks (the rest are left out), so later checks
    (hosts, layout, sbatch options) can still run on a spec that has problems elsewhere and report
    theirs in the same go. ``root`` keeps where every key was written.
    """

    label: str
    root: Node
    data: Dict[str, Any]
    problems: List[Problem]

    def spec(self) -> JobSpec:
        """The JobSpec; raises :class:`SpecError` with every problem if there are any."""
        if self.problems:
            raise SpecError(ordered(self.problems, self.label))
        return JobSpec.from_dict(self.data)

    def provisional_spec(self) -> JobSpec:
        """A JobSpec of the values that passed, defaults for the rest: for checks that need one
        while the spec still has problems (framework defaults to torch when it is one of them)."""
        data = dict(self.data)
        data.setdefault("framework", "torch")
        data.setdefault("name", "job")
        if data.get("script") is None and not isinstance(data.get("train"), dict):
            data["train"] = {}
        return JobSpec.from_dict(data)

    def where(self, dotted: str) -> Node:
        """The node a problem about ``dotted`` should point at (the nearest one that exists)."""
        return locate(self.root, dotted)


def load_spec(
    path: Union[str, "os.PathLike[str]"],
    overrides: Sequence[Override] = (),
    environ: Optional[Mapping[str, str]] = None,
) -> JobSpec:
    """Load, override, interpolate and validate the spec at ``path``.

    Messages name ``path`` as given (a relative path stays relative). Relative paths inside the
    file resolve against its directory; those from overrides, ``run_root`` and ``checkpoint.dir``
    against the current directory. Raises :class:`SpecError` listing every problem found.
    """
    return read_spec(path, overrides, environ).spec()


def read_spec(
    path: Union[str, "os.PathLike[str]"],
    overrides: Sequence[Override] = (),
    environ: Optional[Mapping[str, str]] = None,
) -> SpecReading:
    """Every step of :func:`load_spec` but the last: problems are collected, not raised.

    Only a file that cannot be read as YAML at all raises :class:`SpecError` here.
    """
    label = os.fspath(path)
    root, problems = read_spec_file(label)
    return _build(root, problems, label, overrides, environ, source=os.path.abspath(label))


def load_spec_text(
    text: str,
    label: str,
    base_dir: str,
    overrides: Sequence[Override] = (),
    environ: Optional[Mapping[str, str]] = None,
) -> JobSpec:
    """:func:`load_spec` for a spec held in memory (a script job built from the command line).

    ``label`` names it in messages; relative paths in it resolve against ``base_dir``; the
    resulting spec has no ``source`` file.
    """
    root, problems = parse_yaml(text, file=label, base_dir=base_dir)
    return _build(root, problems, label, overrides, environ, source=None).spec()


def _build(
    root: Optional[Node],
    problems: List[Problem],
    label: str,
    overrides: Sequence[Override],
    environ: Optional[Mapping[str, str]],
    source: Optional[str],
) -> SpecReading:
    cwd = os.getcwd()
    root = _top_level(root, label, problems)
    problems += apply_overrides(root, overrides, cwd)
    problems += interpolate_tree(root, os.environ if environ is None else environ)
    converter = Converter(cwd)
    data = converter.section(root, "")
    problems += converter.problems
    problems += cross_check(root, data)
    problems += _fill_defaults(root, data, label, cwd)
    data["source"] = source
    data["base_dir"] = root.base_dir
    return SpecReading(label, root, data, problems)


def _top_level(root: Optional[Node], label: str, problems: List[Problem]) -> Node:
    if root is None:
        raise SpecError(problems + [Problem(
            "the file is empty; a job spec needs at least 'framework:' and 'script:' or 'train:'",
            file=label,
        )])
    if not root.is_mapping:
        kind = "a list" if root.is_sequence else repr(root.value)
        raise SpecError(problems + [Problem(
            f"the top level must be a mapping of keys such as 'framework: torch' (got {kind})",
            file=label, line=root.line,
        )])
    return root


def _fill_defaults(root: Node, data: Dict[str, Any], label: str, cwd: str) -> List[Problem]:
    """Defaults that depend on the spec's location: name, run_root, checkpoint.dir."""
    problems: List[Problem] = []
    if "name" not in root.value:
        stem = Path(label).stem
        wrong = schema.CHECKS["name"](stem)
        if wrong:
            problems.append(Problem(
                f"is not set, and the file name '{stem}' cannot be a job name: it {wrong};"
                " set 'name:' in the spec",
                file=label, line=root.line, key="name",
            ))
        data["name"] = stem
    data.setdefault("run_root", os.path.normpath(os.path.join(cwd, schema.field_at("run_root").default)))
    checkpoint = data.setdefault("checkpoint", {})
    if checkpoint.get("dir") is None and "name" in data:
        checkpoint["dir"] = os.path.join(data["run_root"], data["name"], CHECKPOINTS_DIR)
    return problems


def ordered(problems: Sequence[Problem], label: str) -> List[Problem]:
    """Problems in reading order, at most :data:`limits.MAX_PROBLEMS` of them.

    The spec file first, by line; then command-line flags; then other files (hostfiles), each by
    line. Past the cap one last line says how many more there are: a report of 100,000 lines
    would help nobody and take long to print.
    """
    def group(p: Problem) -> int:
        if p.file == label or p.file is None:
            return 0 if p.file == label else 1
        return 1 if p.file.startswith("-") else 2

    found = sorted(problems, key=lambda p: (group(p), p.file or "" if group(p) == 2 else "", p.line or 0))
    if len(found) <= limits.MAX_PROBLEMS:
        return found
    extra = len(found) - limits.MAX_PROBLEMS
    return found[: limits.MAX_PROBLEMS] + [Problem(f"... and {extra} more problems not shown", file=label)]
