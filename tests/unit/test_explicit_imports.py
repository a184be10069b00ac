"""No module uses a standard-library submodule it did not import itself.

``import importlib`` then ``importlib.util.find_spec`` works only when something else already imported
``importlib.util``: true in the development venv, false in a fresh install (``hvdjob`` failed there
with ``AttributeError: module 'importlib' has no attribute 'util'``). This reads every source file and
finds such uses before a user does.
"""
from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from typing import Iterator, List, Set, Tuple

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("hvdrun_cli", "adapters", "benchmarks")
STDLIB: Set[str] = set(getattr(sys, "stdlib_module_names", ())) or {
    "importlib", "xml", "concurrent", "email", "logging", "urllib", "http", "json", "multiprocessing",
    "collections", "os", "unittest", "ctypes",
}

ALWAYS_LOADED = {"os.path"}  # `import os` binds os.path itself


def _dotted(node: ast.AST) -> str:
    parts: List[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_submodule(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def unimported_submodules(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    """(line, name) of each ``pkg.sub`` attribute use where only ``pkg`` was imported in this file."""
    imported: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is None:
                    parts = alias.name.split(".")
                    imported.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)  # `from a.b import c` imports a.b
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = _dotted(node)
        top = name.split(".")[0]
        if top not in STDLIB or top not in imported:
            continue
        parts = name.split(".")
        for i in range(2, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in imported or candidate in ALWAYS_LOADED:
                continue
            if _is_submodule(candidate):
                yield node.lineno, candidate
            break


def test_the_checker_catches_the_bug_it_is_for() -> None:
    tree = ast.parse("import importlib\nimport os\nimportlib.util.find_spec('x')\nos.path.join('a')\n")
    assert set(unimported_submodules(tree)) == {(3, "importlib.util")}
    fixed = ast.parse("import importlib\nimport importlib.util\nimportlib.util.find_spec('x')\n")
    assert list(unimported_submodules(fixed)) == []


def test_no_source_file_relies_on_an_import_made_elsewhere() -> None:
    found = []
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            found += [f"{path.relative_to(REPO)}:{line}: uses {name} without `import {name}`"
                      for line, name in unimported_submodules(tree)]
    assert sorted(set(found)) == []
