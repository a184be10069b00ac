"""Check each value of a spec tree against :mod:`schema` and turn it into plain typed data.

Every problem is collected rather than raised, so one run reports everything wrong with a spec.
The result is the plain dict ``JobSpec.from_dict`` takes: keys left out get the model's defaults.
"""
from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional

from hvdrun_cli.errors import Problem
from hvdrun_cli.spec import schema
from hvdrun_cli.spec.yaml_source import Node

_INVALID = object()  # a value that was reported as a problem and is left out of the result
_NO_VALUE = object()  # report() without "(got ...)"

_TYPE_NAMES = {
    "int": "must be a whole number",
    "float": "must be a number",
    "bool": "must be true or false",
    "str": "must be a string",
    "strlist": "must be a list of strings",
    "strmap": "must be a mapping of NAME: value",
    "anymap": "must be a mapping",
    "section": "must be a mapping of keys",
}


class Converter:
    """Walks the tree once; ``problems`` holds everything found, in document order."""

    def __init__(self, cwd: str):
        self.cwd = cwd
        self.problems: List[Problem] = []

    def report(self, node: Node, key: str, message: str, got: Any = _NO_VALUE) -> None:
        extra = {} if got is _NO_VALUE else {"got": got}
        self.problems.append(Problem(message, node.file, node.line, key or None, **extra))

    # ---- sections ------------------------------------------------------------------------------

    def section(self, node: Node, section: str) -> Dict[str, Any]:
        """Convert one mapping (``section`` is its dotted path, "" for the top level)."""
        fields = schema.section_fields(section)
        out: Dict[str, Any] = {}
        for key, child in node.value.items():
            field = fields.get(key)
            path = f"{section}.{key}" if section else key
            if field is None:
                self.report(child, path, schema.unknown_key_message(key, section))
                continue
            value = self.value(field, child)
            if value is not _INVALID:
                out[key] = value
        for name, field in fields.items():
            given = node.value.get(name)
            if field.required and (given is None or (given.value is None and not given.broken)):
                choices = schema.CHOICES.get(field.path)
                hint = f": one of {schema.quoted(choices)}" if choices else ""
                self.report(node.value.get(name, node), field.path, f"is required{hint}")
        return out

    def value(self, field: schema.Field, node: Node) -> Any:
        if node.broken:
            return _INVALID
        if node.is_scalar and node.value is None:
            if field.kind == "section":
                if field.path in schema.NULL_MEANS_OFF:
                    return None  # `elastic: null` (or `--set elastic=null`): the feature is off
                return {}  # `train:` with nothing under it: the section with its defaults
            if field.optional:
                return None
            if field.required:
                return _INVALID  # reported once, as missing, by section()
        converter = getattr(self, f"_{field.kind}")
        value = converter(field, node)
        if value is _INVALID:
            return value
        return self._checked(field, node, value)

    def _checked(self, field: schema.Field, node: Node, value: Any) -> Any:
        check = schema.CHECKS.get(field.path)
        message = check(value) if check and value is not None else None
        if message:
            self.report(node, field.path, message, node.value)
            return _INVALID
        rule = schema.PATHS.get(field.path)
        if rule and value is not None:
            return self._path(field.path, node, value, rule)
        return value

    # ---- one converter per kind ------------------------------------------------------------------

    def _section(self, field: schema.Field, node: Node) -> Any:
        if not node.is_mapping:
            return self._wrong_type(field, node)
        return self.section(node, field.path)

    def _int(self, field: schema.Field, node: Node) -> Any:
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        return self._wrong_type(field, node)

    def _float(self, field: schema.Field, node: Node) -> Any:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            if math.isfinite(node.value):
                return float(node.value)
            self.report(node, field.path, "must be a finite number", node.value)
            return _INVALID
        return self._wrong_type(field, node)

    def _bool(self, field: schema.Field, node: Node) -> Any:
        if isinstance(node.value, bool):
            return node.value
        return self._wrong_type(field, node)

    def _str(self, field: schema.Field, node: Node) -> Any:
        text = _scalar_text(node, allow_bool=False)
        if text is None:
            return self._wrong_type(field, node)
        return text

    def _strlist(self, field: schema.Field, node: Node) -> Any:
        if isinstance(node.value, str) and field.path in schema.COMMA_LISTS:
            items = [Node(part.strip(), node.file, node.line, node.base_dir, part.strip())
                     for part in node.value.split(",") if part.strip()]
        elif isinstance(node.value, str) and field.path in schema.SINGLE_STRING_LISTS:
            items = [node]
        elif node.is_sequence:
            items = node.value
        else:
            return self._wrong_type(field, node)
        out: List[str] = []
        item_check = schema.ITEM_CHECKS.get(field.path)
        ok = True
        for index, item in enumerate(items):
            path = f"{field.path}[{index}]"
            text = _scalar_text(item, allow_bool=True)
            if text is None:
                self.report(item, path, "must be a string", _shown(item))
                ok = False
                continue
            message = item_check(text) if item_check else None
            if message:
                self.report(item, path, message, text)
                ok = False
            out.append(text)
        return tuple(out) if ok else _INVALID

    def _strmap(self, field: schema.Field, node: Node) -> Any:
        if not node.is_mapping:
            return self._wrong_type(field, node)
        out: Dict[str, str] = {}
        for key, child in node.value.items():
            path = f"{field.path}.{key}"
            if not schema.ENV_NAME.fullmatch(key):
                self.report(child, path, "is not a valid environment variable name"
                            " (letters, digits and '_', not starting with a digit)")
                continue
            text = _scalar_text(child, allow_bool=True)
            if text is None:
                message = ("needs a value (write '' for an empty string)" if child.value is None
                           else "must be a single value (a string or number)")
                self.report(child, path, message, _shown(child))
                continue
            out[key] = text
        return out if len(out) == len(node.value) else _INVALID

    def _anymap(self, field: schema.Field, node: Node) -> Any:
        if not node.is_mapping:
            return self._wrong_type(field, node)
        return node.to_plain()

    def _wrong_type(self, field: schema.Field, node: Node) -> Any:
        self.report(node, field.path, _TYPE_NAMES[field.kind], _shown(node))
        return _INVALID

    # ---- paths -------------------------------------------------------------------------------------

    def _path(self, key: str, node: Node, value: str, rule: schema.PathRule) -> Any:
        """Absolute path; relative ones against the spec's directory (cwd for flags) or the cwd."""
        if value in rule.words:
            return value
        base = node.base_dir if rule.relative_to == "spec" else self.cwd
        path = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
        if rule.must_be is None:
            return path
        if not os.path.exists(path):
            message = f"no such file: {path}"
            if rule.words:
                message = (f"must be {schema.quoted(rule.words)} or the path of an existing file"
                           f" ({message}){schema.did_you_mean(value, rule.words)}")
            self.report(node, key, message, value)
            return _INVALID
        if not os.path.isfile(path):
            self.report(node, key, f"is not a file: {path}", value)
            return _INVALID
        if rule.must_be == "executable" and not os.access(path, os.X_OK):
            self.report(node, key, f"is not executable (chmod +x {path})", value)
            return _INVALID
        return path


def _scalar_text(node: Node, allow_bool: bool) -> Optional[str]:
    """A scalar as a string: strings as they are, numbers as written (``1:30:00``, ``0.10``)."""
    value = node.value
    if isinstance(value, str):
        return value
    if isinstance(value, bool) and not allow_bool:
        return None
    if isinstance(value, (int, float)):
        return node.text if node.text is not None else str(value)
    return None


def _shown(node: Node) -> Any:
    """The offending value for a message: scalars as they are, a short word for collections."""
    if node.is_mapping:
        return "a mapping"
    if node.is_sequence:
        return "a list"
    return node.value
