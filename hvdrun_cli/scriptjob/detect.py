"""Which framework a training script uses, read from its imports (the script is parsed, never run).

Horovod's own modules decide (``horovod.torch`` -> torch; ``horovod.tensorflow``,
``horovod.tensorflow.keras`` and ``horovod.keras`` -> tensorflow). A script without any of them
(one using hvdjob's helpers, say) is judged by its plain ``torch``/``tensorflow``/``keras``
imports. Neither, or both frameworks: the user says which with ``--framework``.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

from hvdrun_cli.errors import Problem, UserInputError

# Module prefix -> framework, most specific first.
HOROVOD_MODULES: Tuple[Tuple[str, str], ...] = (
    ("horovod.tensorflow.keras", "tensorflow"),
    ("horovod.tensorflow", "tensorflow"),
    ("horovod.keras", "tensorflow"),
    ("horovod.torch", "torch"),
)
PLAIN_MODULES: Tuple[Tuple[str, str], ...] = (
    ("tensorflow", "tensorflow"),
    ("tf_keras", "tensorflow"),
    ("keras", "tensorflow"),
    ("torch", "torch"),
)


@dataclass(frozen=True)
class Detection:
    """The framework and the import that showed it (``horovod.torch`` on line 3)."""

    framework: str
    module: str
    line: int

    def describe(self) -> str:
        return f"read from its imports: {self.module} (line {self.line})"


def imported_modules(source: str, filename: str = "<script>") -> List[Tuple[str, int]]:
    """Every module the source imports, as dotted names with their line; raises SyntaxError.

    ``from horovod import torch as hvd`` counts as ``horovod.torch`` too.
    """
    tree = ast.parse(source, filename=filename)
    found: List[Tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
    return sorted(found, key=lambda item: item[1])


def _matches(modules: List[Tuple[str, int]], table: Tuple[Tuple[str, str], ...]) -> Iterator[Detection]:
    for module, line in modules:
        for prefix, framework in table:
            if module == prefix or module.startswith(prefix + "."):
                yield Detection(framework, prefix, line)
                break


def framework_of(source: str, filename: str = "<script>") -> Optional[Detection]:
    """The framework the source uses; None when its imports do not say. Raises :class:`UserInputError`
    (naming both imports) when it uses both, and SyntaxError for a file that is not Python.
    """
    modules = imported_modules(source, filename)
    for table in (HOROVOD_MODULES, PLAIN_MODULES):
        first: Dict[str, Detection] = {}
        for detection in _matches(modules, table):
            first.setdefault(detection.framework, detection)
        if len(first) > 1:
            a, b = sorted(first.values(), key=lambda d: d.line)
            raise UserInputError(Problem(
                f"imports both {a.module} (line {a.line}) and {b.module} (line {b.line}); say which framework "
                "the job uses with --framework torch or --framework tensorflow", file=filename))
        if first:
            return next(iter(first.values()))
    return None


def detect_framework(path: str) -> Detection:
    """The framework of the script at ``path``; :class:`UserInputError` (exit 2) when it cannot be told."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            source = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(Problem(f"cannot read the script to find its framework: {exc}; "
                                     "give --framework torch or --framework tensorflow", file=path)) from None
    try:
        detection = framework_of(source, path)
    except SyntaxError as exc:
        raise UserInputError(Problem(f"is not valid Python ({exc.msg}), so its framework cannot be read from "
                                     "its imports; give --framework torch or --framework tensorflow",
                                     file=path, line=exc.lineno)) from None
    if detection is None:
        names = ", ".join(prefix for prefix, _ in reversed(HOROVOD_MODULES))
        raise UserInputError(Problem(f"imports none of {names} (nor torch or tensorflow), so its framework is "
                                     "unknown; give --framework torch or --framework tensorflow", file=path))
    return detection
