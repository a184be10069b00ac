"""Rules that involve more than one key: script or train, elastic bounds, hosts or hostfile.

They run after each value has been checked on its own (:mod:`convert`), on the converted data,
and point at the lines of the keys involved.
"""
from __future__ import annotations

from typing import Any, Dict, List

from hvdrun_cli.errors import Problem
from hvdrun_cli.spec import components, schema
from hvdrun_cli.spec.yaml_source import Node, locate


def cross_check(root: Node, data: Dict[str, Any]) -> List[Problem]:
    """Every cross-key problem of a spec whose single values were already checked."""
    return (_script_or_train(root) + _elastic(root, data) + _hosts_or_hostfile(root)
            + _builtin_components(root, data))


def _given(root: Node, dotted: str) -> bool:
    """Whether the user wrote ``dotted`` with a value (``train:`` alone counts: managed defaults)."""
    node = root
    for part in dotted.split("."):
        if not node.is_mapping or part not in node.value:
            return False
        node = node.value[part]
    if dotted == "train":
        return True
    return node.value is not None and node.value != []


def _problem(root: Node, dotted: str, message: str, **got: Any) -> Problem:
    node = locate(root, dotted)
    return Problem(message, node.file, node.line, dotted, **got)


def _line_of(root: Node, dotted: str) -> str:
    node = locate(root, dotted)
    if node.line is not None:
        return f"line {node.line}"
    return node.file or "the command line"


def _script_or_train(root: Node) -> List[Problem]:
    script, train = _given(root, "script"), _given(root, "train")
    if script and train:
        return [_problem(
            root, "train",
            f"cannot be used together with 'script' ({_line_of(root, 'script')}): 'script' runs your"
            " own training script, 'train' runs managed training; keep one",
        )]
    if not script and not train:
        return [_problem(
            root, "script",
            "is required unless 'train' is given: 'script: train.py' runs your own Horovod script,"
            " 'train: {}' runs managed training with the defaults",
        )]
    if train and _given(root, "args"):
        return [_problem(root, "args", "is only used with 'script' (managed training takes no arguments)")]
    return []


def _elastic(root: Node, data: Dict[str, Any]) -> List[Problem]:
    elastic = data.get("elastic")
    if not _given(root, "elastic") or not isinstance(elastic, dict):
        return []
    problems: List[Problem] = []
    min_np, max_np = elastic.get("min_np", 1), elastic.get("max_np")
    if max_np is not None and min_np > max_np:
        problems.append(_problem(root, "elastic.min_np",
                                 f"must not be larger than elastic.max_np ({max_np})", got=min_np))
    discovery, hostfile = _given(root, "elastic.discovery_script"), _given(root, "elastic.hostfile")
    if discovery and hostfile:
        problems.append(_problem(root, "elastic.hostfile",
                                 "cannot be used together with elastic.discovery_script; keep one"))
    elif not discovery and not hostfile:
        problems.append(_problem(
            root, "elastic",
            "needs 'discovery_script' (prints 'host:slots' lines) or 'hostfile' (watched for changes)",
        ))
    np = data.get("resources", {}).get("np")
    if np is not None and (np < min_np or (max_np is not None and np > max_np)):
        upper = max_np if max_np is not None else "any"
        problems.append(_problem(root, "resources.np",
                                 f"must lie between elastic.min_np ({min_np}) and elastic.max_np ({upper})",
                                 got=np))
    return problems


def _hosts_or_hostfile(root: Node) -> List[Problem]:
    if _given(root, "resources.hosts") and _given(root, "resources.hostfile"):
        return [_problem(
            root, "resources.hostfile",
            f"cannot be used together with resources.hosts ({_line_of(root, 'resources.hosts')}); keep one",
        )]
    return []


def _builtin_components(root: Node, data: Dict[str, Any]) -> List[Problem]:
    """Built-in names and their ``*_args`` as the ranks check them, without importing a framework."""
    train, framework = data.get("train"), data.get("framework")
    if not _given(root, "train") or not isinstance(train, dict) or framework is None:
        return []
    problems: List[Problem] = []
    for kind in components.KINDS:
        name = train.get(kind, schema.field_at(f"train.{kind}").default)
        if name is None or components.is_reference(name):
            continue
        table = components.builtins(kind, framework)
        options = table.get(components.builtin_key(kind, name))
        if options is None:
            if _given(root, f"train.{kind}"):
                problems.append(_problem(root, f"train.{kind}",
                                         f"unknown name; built-ins are {schema.quoted(list(table))},"
                                         f" or use 'module:function'{schema.did_you_mean(name, list(table))}",
                                         got=name))
            continue
        args_key = f"train.{kind}_args"
        args = train.get(f"{kind}_args") or {}
        args_node = locate(root, args_key)
        for option, value in args.items():
            key = f"{args_key}.{option}"
            where = args_node.value.get(option, args_node) if args_node.is_mapping else args_node
            check = options.get(option)
            if check is None:
                valid = ", ".join(options) or "none"
                problems.append(Problem(f"not an option of {kind} '{name}' (valid: {valid})"
                                        f"{schema.did_you_mean(option, list(options))}",
                                        where.file, where.line, key))
                continue
            message = check(value)
            if message:
                problems.append(Problem(message, where.file, where.line, key, got=_short(value)))
    return problems + _cnn_input(root, train)


def _cnn_input(root: Node, train: Dict[str, Any]) -> List[Problem]:
    """The built-in cnn reshapes flat inputs to a square image: synthetic features must allow it."""
    if train.get("model") != "cnn" or train.get("data") != "synthetic":
        return []
    features = (train.get("data_args") or {}).get("features", 784)
    if isinstance(features, int) and not isinstance(features, bool) and features > 0:
        side = int(round(features ** 0.5))
        if side * side != features:
            return [_problem(root, "train.model", "model 'cnn' needs image-shaped inputs or a square number of"
                             f" features (train.data_args.features is {features})", got="cnn")]
    return []


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 80 else text[:80] + "..."
