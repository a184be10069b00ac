"""Read YAML into a tree that remembers where every value came from.

``yaml.safe_load`` returns bare values, so a later type error could not say which line it is on,
and it silently keeps the last of two duplicate keys. Here the document is *composed* with a safe
loader and walked node by node: every value becomes a :class:`Node` carrying its file, line, the
text as written and the directory relative paths in it resolve against. CLI overrides build the
same kind of tree (with the flag as their "file"), so one validator serves both.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from hvdrun_cli.errors import Problem, SpecError
from hvdrun_cli.spec import limits

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader without two YAML 1.1 surprises.

    Dates stay strings (a spec is written to JSON for the ranks, and ``datetime`` is not JSON), and
    ``1e-3`` is a float as in YAML 1.2 (PyYAML needs a dot: ``1.0e-3``), so learning rates and
    ``optimizer_args: {eps: 1e-8}`` mean what they say.
    """


_RESOLVERS = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.yaml_implicit_resolvers = _RESOLVERS
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

if getattr(yaml, "__with_libyaml__", False):

    class _FastLoader(yaml.cyaml.CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc]
        """The same loader on libyaml's parser: about 5x faster on big files, and it refuses nesting
        past 1000 levels itself. Its error messages are terser, so a file it rejects is read again
        with :class:`_Loader` for the message."""

        def __init__(self, stream: str) -> None:
            yaml.cyaml.CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
else:  # pragma: no cover - PyYAML built without libyaml
    _FastLoader = _Loader  # type: ignore[misc,assignment]


# ``${VAR}`` inside ``[ ]`` or ``{ }`` would end a plain scalar at its braces or commas, so before
# parsing those characters inside a reference are swapped for stand-ins from a private-use block
# (same length, so columns stay right) and swapped back in every scalar and key afterwards.
_GUARDED = "{},[]#:"
_STAND_IN = {c: chr(0xF0000 + i) for i, c in enumerate(_GUARDED)}
_RESTORE = {ord(v): k for k, v in _STAND_IN.items()}
_RESERVED = re.compile("[\U000F0000-\U000F00FF]")
_REFERENCE = re.compile(r"\$\$|\$\{[^}\n]*\}")


def _guard_references(text: str) -> str:
    def swap(match: "re.Match[str]") -> str:
        ref = match.group(0)
        if ref == "$$":
            return ref
        return "".join(_STAND_IN.get(c, c) for c in ref)

    return _REFERENCE.sub(swap, text) if "${" in text else text


def _restored(text: Any) -> Any:
    return text.translate(_RESTORE) if isinstance(text, str) else text


@dataclass
class Node:
    """One value of the spec and where it came from.

    ``value`` is a ``dict[str, Node]``, a ``list[Node]`` or a plain scalar. ``file`` is the spec
    path as the user gave it, or the flag (``--set``, ``--np``) for values from the command line;
    ``line`` is 1-based (None for flags). ``text`` is a scalar as written (``1:30:00`` stays
    ``1:30:00`` where YAML 1.1 would read 5400) and ``plain`` tells whether it was unquoted.
    """

    value: Any
    file: Optional[str]
    line: Optional[int]
    base_dir: str
    text: Optional[str] = None
    plain: bool = False
    key_lines: Dict[str, int] = field(default_factory=dict)
    broken: bool = False  # a problem was already reported for this value (e.g. an unset ${VAR})

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_scalar(self) -> bool:
        return not (self.is_mapping or self.is_sequence)

    def to_plain(self) -> Any:
        """The bare Python value (dicts, lists, scalars), as ``yaml.safe_load`` would give."""
        if self.is_mapping:
            return {k: v.to_plain() for k, v in self.value.items()}
        if self.is_sequence:
            return [v.to_plain() for v in self.value]
        return self.value


def read_spec_file(path: str) -> Tuple[Optional[Node], List[Problem]]:
    """Load the spec file at ``path`` (shown in messages exactly as given).

    Returns the root node (None for an empty file) and problems that do not stop reading, such as
    duplicate keys. A missing file or a YAML syntax error raises :class:`SpecError` at once.
    """
    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read(limits.MAX_SPEC_BYTES + 1)  # never more: a huge file is refused unread
    except FileNotFoundError:
        raise SpecError(Problem("no such file", file=path)) from None
    except IsADirectoryError:
        raise SpecError(Problem("is a directory, not a job spec file", file=path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(Problem(f"is not UTF-8 text ({exc.reason} at byte {exc.start})", file=path)) from None
    except OSError as exc:
        raise SpecError(Problem(f"cannot read: {exc.strerror}", file=path)) from None
    base_dir = os.path.dirname(os.path.abspath(path))
    return parse_yaml(text, file=path, base_dir=base_dir)


def parse_yaml(
    text: str, file: Optional[str], base_dir: str, line_numbers: bool = True
) -> Tuple[Optional[Node], List[Problem]]:
    """Parse ``text`` into a :class:`Node` tree; ``line_numbers=False`` for one-line flag values.

    Bounded: text over :data:`limits.MAX_SPEC_BYTES`, nesting past :data:`limits.MAX_YAML_DEPTH`
    and aliases that would add more than :data:`limits.MAX_ALIAS_VALUES` values are refused with
    one located problem instead of being expanded.
    """
    if len(text) > limits.MAX_SPEC_BYTES:
        raise SpecError(Problem(_TOO_LONG, file=file))
    reserved = _RESERVED.search(text)
    if reserved:
        line = text.count("\n", 0, reserved.start()) + 1
        raise SpecError(Problem(f"contains the private-use character U+{ord(reserved.group()):X},"
                                " which hvdjob reserves", file=file, line=line if line_numbers else None))
    guarded = _guard_references(text)
    root = _compose(guarded, file, text if line_numbers else None)
    if root is None:
        return None, []
    walker = _Walker(_Loader(""), file, base_dir, line_numbers)
    try:
        node = walker.build(root, "", (), 0)
    except _TooBig as exc:
        raise SpecError(walker.problems + [exc.problem]) from None
    return node, walker.problems


def _compose(text: str, file: Optional[str], original: Optional[str]) -> Optional[yaml.Node]:
    """The document's node graph (aliases not yet expanded), or SpecError for bad YAML."""
    try:
        loader = _FastLoader(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as fast_error:
        error: yaml.YAMLError = fast_error
    nesting = "maximum nesting depth" in str(error)  # the pure-Python parser is quadratic on those
    if _FastLoader is not _Loader and not nesting and len(text) <= _REREAD_LIMIT:
        # read again for the pure-Python parser's clearer message (it is ~5x slower: small files only)
        try:
            slow = _Loader(text)  # its reader checks every character at once
            try:
                slow.get_single_node()
            finally:
                slow.dispose()
        except yaml.YAMLError as exc:
            error = exc
        except (RecursionError, ValueError, OverflowError):
            pass  # nested too deep for it, or a bad escape it trips on (\U99999999): keep libyaml's message
    if isinstance(error, yaml.MarkedYAMLError):
        raise SpecError(_syntax_problem(error, file, original)) from None
    if isinstance(error, yaml.reader.ReaderError) and isinstance(error.character, (int, str)):
        at, code = error.position, error.character if isinstance(error.character, int) else ord(error.character)
        line, column = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
        where = {"line": line, "column": column} if original is not None else {}
        raise SpecError(Problem(f"contains the control character U+{code:04X},"
                                " which YAML does not allow", file=file, **where)) from None
    raise SpecError(Problem(f"not valid YAML: {' '.join(_restored(str(error)).split())}", file=file)) from None


_TOO_LONG = (f"has more than {limits.MAX_SPEC_BYTES:,} characters, hvdjob's limit for a job spec"
             " (keep large data in files the job reads)")


_REREAD_LIMIT = 64 << 10


class _TooBig(Exception):
    """Stops the walk at the first bound exceeded (nesting depth, alias expansion)."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


def resolve_plain_scalar(text: str) -> Any:
    """Type ``text`` as YAML would an unquoted scalar (``4`` -> 4, ``true`` -> True, empty -> None).

    Used after ``${VAR}`` interpolation so ``np: ${NP:-2}`` is an int, as if the value had been
    written in the file.
    """
    loader = _Loader("")
    try:
        tag = loader.resolve(ScalarNode, text, (True, False))
        return loader.construct_object(ScalarNode(tag, text), deep=True)
    except yaml.YAMLError:
        return text
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError, file: Optional[str], text: Optional[str]) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    message, context = _restored(exc.problem or exc.context or "not valid YAML"), _restored(exc.context)
    if "another document" in message:
        message, context = "found a second YAML document", None
    opened = exc.context_mark
    if exc.problem and context and opened is not None and mark is not None and opened.line != mark.line:
        message += f" ({context} started on line {opened.line + 1})"
    hint = _hint(exc, text)
    if hint:
        message += f"; {hint}"
    if mark is None or text is None:
        return Problem(message, file=file)
    return Problem(message, file=file, line=mark.line + 1, column=mark.column + 1)


def _hint(exc: yaml.MarkedYAMLError, text: Optional[str]) -> str:
    """A likely cause for the YAML errors people actually hit in job specs."""
    problem = exc.problem or ""
    if "another document" in problem:
        return "a job spec is one document (remove the '---' line)"
    if "'\\t'" in problem:
        return "YAML does not allow tabs for indentation, use spaces"
    if "maximum nesting depth" in problem:
        return f"a job spec may nest at most {limits.MAX_YAML_DEPTH} levels"
    return ""


class _Walker:
    """Turns composed YAML nodes into :class:`Node` trees, noting duplicate keys on the way.

    An alias is the same composed node reached again; it is built again (the tree has no shared
    parts), which is how an alias bomb would explode: ``built - len(seen)`` counts the values
    aliases added, and the walk stops past :data:`limits.MAX_ALIAS_VALUES`.
    """

    def __init__(self, loader: _Loader, file: Optional[str], base_dir: str, line_numbers: bool):
        self.loader = loader
        self.file = file
        self.base_dir = base_dir
        self.line_numbers = line_numbers
        self.problems: List[Problem] = []
        self.built = 0
        self.seen: Set[int] = set()

    def _line(self, yaml_node: yaml.Node) -> Optional[int]:
        return yaml_node.start_mark.line + 1 if self.line_numbers else None

    def _new(self, yaml_node: yaml.Node, value: Any, **extra: Any) -> Node:
        return Node(value, self.file, self._line(yaml_node), self.base_dir, **extra)

    def _count(self, yaml_node: yaml.Node, path: str) -> None:
        self.built += 1
        self.seen.add(id(yaml_node))
        if self.built > limits.MAX_SPEC_VALUES:
            raise _TooBig(Problem(
                f"has more than {limits.MAX_SPEC_VALUES:,} values, hvdjob's limit for a job spec"
                " (keep large data in files the job reads)", self.file, self._line(yaml_node), path or None))
        if self.built - len(self.seen) > limits.MAX_ALIAS_VALUES:
            raise _TooBig(Problem(
                f"aliases expand to more than {limits.MAX_ALIAS_VALUES:,} values (an alias bomb?);"
                " write the values out or use fewer nested aliases",
                self.file, self._line(yaml_node), path or None))

    def build(self, yaml_node: yaml.Node, path: str, active: Tuple[int, ...], depth: int) -> Node:
        if id(yaml_node) in active:
            self.problems.append(Problem("an alias refers to itself", self.file, self._line(yaml_node), path or None))
            return self._new(yaml_node, None)
        if depth > limits.MAX_YAML_DEPTH:
            raise _TooBig(Problem(f"nested more than {limits.MAX_YAML_DEPTH} levels deep",
                                  self.file, self._line(yaml_node), path or None))
        self._count(yaml_node, path)
        active = active + (id(yaml_node),)
        if isinstance(yaml_node, MappingNode):
            return self._mapping(yaml_node, path, active, depth)
        if isinstance(yaml_node, SequenceNode):
            items = [self.build(item, f"{path}[{i}]", active, depth + 1) for i, item in enumerate(yaml_node.value)]
            return self._new(yaml_node, items)
        return self._scalar(yaml_node, path)

    def _scalar(self, yaml_node: ScalarNode, path: str) -> Node:
        try:
            value = self.loader.construct_object(yaml_node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.problems.append(Problem(_restored(problem), self.file, self._line(yaml_node), path or None))
            value = yaml_node.value
        except ValueError:  # an integer with more digits than Python converts (4300)
            self.problems.append(Problem(f"number with {len(yaml_node.value):,} characters is too large",
                                         self.file, self._line(yaml_node), path or None))
            value = yaml_node.value
        plain = not yaml_node.style  # None (pure-Python parser) or "" (libyaml) for plain scalars
        if not isinstance(value, (str, int, float, bool, type(None))):
            # explicit tags such as !!binary or !!set: not data a job spec can use
            self.problems.append(
                Problem(f"unsupported YAML value of type {type(value).__name__}", self.file,
                        self._line(yaml_node), path or None)
            )
            value = yaml_node.value
        return self._new(yaml_node, _restored(value), text=_restored(yaml_node.value), plain=plain)

    def _mapping(self, yaml_node: MappingNode, path: str, active: Tuple[int, ...], depth: int) -> Node:
        entries: Dict[str, Node] = {}
        key_lines: Dict[str, int] = {}
        merged: Dict[str, Node] = {}
        merged_lines: Dict[str, int] = {}
        for key_node, value_node in yaml_node.value:
            if key_node.tag == _MERGE:
                self._merge(value_node, path, active, depth, merged, merged_lines)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            child_path = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in key_lines:
                where = f" (first on line {key_lines[key]})" if self.line_numbers else ""
                self.problems.append(
                    Problem(f"duplicate key{where}", self.file, self._line(key_node), child_path)
                )
            key_lines[key] = line
            child = self.build(value_node, child_path, active, depth + 1)
            if child.line is not None:
                child.line = line  # problems with a value point at its key's line
            entries[key] = child
        for key, child in merged.items():
            entries.setdefault(key, child)
            key_lines.setdefault(key, merged_lines[key])
        node = self._new(yaml_node, entries)
        node.key_lines = key_lines if self.line_numbers else {}
        return node

    def _merge(
        self, value_node: yaml.Node, path: str, active: Tuple[int, ...], depth: int,
        merged: Dict[str, Node], merged_lines: Dict[str, int],
    ) -> None:
        """``<<: *defaults``: keys of the merged mappings, the first one listed winning."""
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.problems.append(
                    Problem("'<<' must merge a mapping or a list of mappings", self.file,
                            self._line(source), path or None)
                )
                continue
            if id(source) in active:
                self.problems.append(Problem("an alias refers to itself", self.file, self._line(source), path or None))
                continue
            self._count(source, path)
            built = self._mapping(source, path, active + (id(source),), depth)
            for key, child in built.value.items():
                if key not in merged:
                    merged[key] = child
                    merged_lines[key] = built.key_lines.get(key, child.line or 0)

    def _key(self, key_node: yaml.Node, path: str) -> Optional[str]:
        """Keys as written: ``on:`` stays "on" (YAML 1.1 would make it True), ``1:`` stays "1"."""
        if isinstance(key_node, ScalarNode):
            return _restored(key_node.value)
        self.problems.append(
            Problem("keys must be plain names, not lists or mappings", self.file,
                    self._line(key_node), path or None)
        )
        return None


def locate(root: Node, dotted: str) -> Node:
    """The node for ``dotted`` (``train.lr``), or its nearest existing parent: where to point a problem."""
    node = root
    for part in dotted.split("."):
        child = node.value.get(part) if node.is_mapping else None
        if child is None:
            return node
        node = child
    return node
