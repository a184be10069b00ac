"""``load_spec``: job.yaml + command-line overrides + environment -> a validated, frozen JobSpec.

The steps, each in its own module: read YAML keeping lines (:mod:`yaml_source`), apply overrides
(:mod:`overrides`), fill ``${VAR}`` (:mod:`interpolate`), check and type every value
(:mod:`convert`), check rules across keys (:mod:`cross`), then fill the defaults that depend on
where the spec is. All problems from all steps are raised together as one :class:`SpecError`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from hvdrun_cli.contract import CHECKPOINTS_DIR
from hvdrun_cli.errors import Problem, SpecError
from hvdrun_cli.spec import schema
from hvdrun_cli.spec.convert import Converter
from hvdrun_cli.spec.cross import cross_check
from hvdrun_cli.spec.interpolate import interpolate_tree
from hvdrun_cli.spec.model import JobSpec
from hvdrun_cli.spec.overrides import Override, apply_overrides
from hvdrun_cli.spec.yaml_source import Node, read_spec_file


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
    label = os.fspath(path)
    cwd = os.getcwd()
    root, problems = read_spec_file(label)
    root = _top_level(root, label, problems)
    problems += apply_overrides(root, overrides, cwd)
    problems += interpolate_tree(root, os.environ if environ is None else environ)
    converter = Converter(cwd)
    data = converter.section(root, "")
    problems += converter.problems
    problems += cross_check(root, data)
    problems += _fill_defaults(root, data, label, cwd)
    if problems:
        raise SpecError(_in_reading_order(problems, label))
    data["source"] = os.path.abspath(label)
    data["base_dir"] = root.base_dir
    return JobSpec.from_dict(data)


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


def _in_reading_order(problems: List[Problem], label: str) -> List[Problem]:
    """Problems in the spec file first, by line; then those from command-line flags."""
    return sorted(problems, key=lambda p: (p.file != label, p.line or 0))
