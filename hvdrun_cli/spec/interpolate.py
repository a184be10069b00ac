"""``${VAR}`` and ``${VAR:-default}`` in spec values, filled from the environment at load time.

One spec then serves several clusters (``partition: ${PARTITION:-cpu}``). ``$$`` is a literal
``$``; a ``$`` not followed by ``{`` or ``$`` is left alone, so shell lines in ``slurm.setup`` can
still use ``$HOME``. An unquoted value is typed again after filling in (``np: ${NP:-2}`` is the
integer 2), a quoted one stays a string, as if the result had been written in the file.
"""
from __future__ import annotations

import re
from typing import List, Mapping

from hvdrun_cli.errors import Problem
from hvdrun_cli.spec.yaml_source import Node, resolve_plain_scalar

_BODY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?$", re.DOTALL)


class InterpolationError(ValueError):
    """A reference that cannot be filled in; the message names the variable."""


def interpolate_text(text: str, environ: Mapping[str, str]) -> str:
    """Fill every ``${...}`` in ``text`` from ``environ``; raises :class:`InterpolationError`."""
    out: List[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        following = text[i + 1] if i + 1 < len(text) else ""
        if char != "$" or following not in ("$", "{"):
            out.append(char)
            i += 1
        elif following == "$":
            out.append("$")
            i += 2
        else:
            end = text.find("}", i + 2)
            if end < 0:
                raise InterpolationError(f"'{text[i:]}' has no closing '}}'")
            out.append(_lookup(text[i + 2:end], environ))
            i = end + 1
    return "".join(out)


def _lookup(body: str, environ: Mapping[str, str]) -> str:
    parsed = _BODY.match(body)
    if not parsed:
        raise InterpolationError(
            f"'${{{body}}}' is not a variable reference; write ${{NAME}} or ${{NAME:-default}}"
            " (and $$ for a literal $)"
        )
    name, default = parsed.group("name"), parsed.group("default")
    value = environ.get(name)
    if default is not None:
        return value if value else default
    if value is None:
        raise InterpolationError(
            f"environment variable {name} is not set (use ${{{name}:-default}} to give a default)"
        )
    return value


def interpolate_tree(node: Node, environ: Mapping[str, str], path: str = "") -> List[Problem]:
    """Fill in references in every string value under ``node`` (in place); keys are left as written."""
    problems: List[Problem] = []
    if node.is_mapping:
        for key, child in node.value.items():
            problems += interpolate_tree(child, environ, f"{path}.{key}" if path else key)
    elif node.is_sequence:
        for index, child in enumerate(node.value):
            problems += interpolate_tree(child, environ, f"{path}[{index}]")
    elif isinstance(node.value, str) and "$" in node.value:
        try:
            filled = interpolate_text(node.value, environ)
        except InterpolationError as exc:
            problems.append(Problem(str(exc), node.file, node.line, path or None))
            node.broken = True  # reported once: the validator does not add "must be a number"
            return problems
        node.text = filled
        node.value = resolve_plain_scalar(filled) if node.plain else filled
    return problems
