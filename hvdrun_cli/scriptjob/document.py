"""The spec a command-line script job is equivalent to, as the commented YAML ``--save-spec`` writes.

``hvdjob run --np 2 train.py --epochs 5`` builds this document in memory (script path absolute),
loads it with the same loader as a spec file (the flags applied as overrides, so a bad value is
reported under its flag's name) and launches it the same way. ``--save-spec FILE`` writes it with
the flags' values folded in and the script path relative to FILE's directory, so ``hvdjob run FILE``
runs the same job and ``hvdjob submit FILE`` submits it.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.scriptjob.detect import detect_framework
from hvdrun_cli.spec import Override, load_spec_text, schema
from hvdrun_cli.spec.model import FRAMEWORKS, JobSpec

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Keys the document writes itself, in this order; flags that set them change the value in place.
_OWN_KEYS = ("framework", "name", "script", "args")


@dataclass(frozen=True)
class ScriptJob:
    """A script and its arguments as given on the command line, and the framework it uses."""

    script: str  # as typed
    args: Tuple[str, ...]
    framework: str
    framework_source: str  # how the framework was chosen, for messages and the spec's comment

    @property
    def name(self) -> str:
        """The job name: the script's file name without ``.py``, made a valid name."""
        return job_name(self.script)

    @property
    def label(self) -> str:
        """How messages about the in-memory spec name it."""
        return f"{self.script} (as a script job)"


def job_name(path: str) -> str:
    """A valid job name from a file name: ``my train.py`` -> ``my-train``."""
    stem = _NOT_IN_NAME.sub("-", Path(path).stem).strip("-._") or "job"
    return stem if stem[0].isalnum() else f"job-{stem}"


def script_job(script: str, args: Sequence[str], framework: Optional[str] = None) -> ScriptJob:
    """Check the script exists and settle its framework (``--framework`` wins over its imports)."""
    if not os.path.exists(script):
        raise UserInputError(Problem("no such script file", file=script))
    if not os.path.isfile(script):
        raise UserInputError(Problem("is not a file; give the training script's path", file=script))
    if framework is not None:
        if framework not in FRAMEWORKS:
            raise UserInputError(Problem(f"must be one of {schema.quoted(FRAMEWORKS)}", key="--framework",
                                         got=framework))
        return ScriptJob(script, tuple(args), framework, "given with --framework")
    detection = detect_framework(script)
    return ScriptJob(script, tuple(args), detection.framework, detection.describe())


def spec_text(job: ScriptJob, spec_dir: Optional[str] = None, extra: Optional[Mapping[str, Any]] = None,
              command: Optional[Sequence[str]] = None, file_name: str = "FILE") -> str:
    """The job as a spec file in ``spec_dir`` (None: in memory, script path absolute).

    ``extra`` holds further keys (nested, e.g. ``{"resources": {"np": 2}}``) such as the flags' values;
    ``command`` is the command line that wrote the file, quoted in its first comment with how to use
    the file (named ``file_name`` there).
    """
    script = os.path.abspath(job.script)
    own: Dict[str, Any] = {
        "framework": job.framework,
        "name": job.name,
        "script": os.path.relpath(script, spec_dir) if spec_dir is not None else script,
        "args": list(job.args),
    }
    rest = dict(extra or {})
    for key in _OWN_KEYS:
        if key in rest:
            own[key] = rest.pop(key)
    notes = {
        "framework": job.framework_source,
        "script": "relative to this file" if spec_dir is not None else None,
        "args": "passed to the script as given",
    }
    lines: List[str] = []
    if command:
        name = shlex.quote(file_name)
        lines += [f"# Written by: {shlex.join(command)}",
                  f"# Run it with 'hvdjob run {name}', check it with 'hvdjob validate {name}', submit it to Slurm",
                  f"# with 'hvdjob submit {name}'. Every key is described in jobs/reference.yaml of hvdjob's sources."]
    for key in _OWN_KEYS:
        note = notes.get(key)
        lines.append(f"{key}: {inline_yaml(own[key])}" + (f"  # {note}" if note else ""))
    if rest:
        lines.append(yaml.safe_dump(rest, default_flow_style=False, sort_keys=False, allow_unicode=True).rstrip())
    return "\n".join(lines) + "\n"


def inline_yaml(value: Any) -> str:
    """One value as YAML on one line (flow style for lists and mappings)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, allow_unicode=True).strip()
    return text[:-3].rstrip() if text.endswith("\n...") or text.endswith("...") else text


def load_script_spec(job: ScriptJob, overrides: Sequence[Override] = ()) -> JobSpec:
    """The validated spec of the job, with the command line's overrides applied."""
    return load_spec_text(spec_text(job), job.label, os.getcwd(), overrides)


def overridden_values(spec: JobSpec, overrides: Sequence[Override], spec_dir: str) -> Dict[str, Any]:
    """The final values of the keys the overrides set, nested as in a spec file.

    Values are the loaded ones (``-H`` dropping a hostfile is already applied, numbers are numbers);
    paths the loader made absolute are written relative to ``spec_dir`` when a spec file's own paths
    are relative to it, and stay absolute otherwise.
    """
    data = spec.to_dict()
    nested: Dict[str, Any] = {}
    for key in dict.fromkeys(o.key for o in overrides):
        present, value = _lookup(data, key)
        if not present or value is None:
            continue  # unset, or dropped by a later alternative (-H after --hostfile)
        rule = schema.PATHS.get(key)
        if rule and rule.relative_to == "spec" and isinstance(value, str) and value not in rule.words:
            value = os.path.relpath(value, spec_dir)
        _insert(nested, key, value)
    return nested


def _lookup(data: Mapping[str, Any], dotted: str) -> Tuple[bool, Any]:
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _insert(nested: Dict[str, Any], dotted: str, value: Any) -> None:
    *sections, last = dotted.split(".")
    for part in sections:
        nested = nested.setdefault(part, {})
    nested[last] = list(value) if isinstance(value, tuple) else value
