"""Resolve ``module:function`` references from the spec (custom model, data, optimizer, loss).

The spec's directory goes on ``sys.path`` first, so a ``models.py`` next to ``job.yaml`` is found
without packaging it. A bad reference is the user's input error, reported with its spec key.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any, Callable, List, Mapping, Optional, Sequence

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import JobSpec, TrainSpec


def is_reference(name: str) -> bool:
    """True for ``module:function`` (built-in names never contain a colon)."""
    return ":" in name


def spec_dir(spec: JobSpec) -> Optional[str]:
    if spec.base_dir:
        return spec.base_dir
    if spec.source:
        return os.path.dirname(os.path.abspath(spec.source))
    return None


def resolve(reference: str, key: str, spec: JobSpec) -> Callable[..., Any]:
    """Import ``module:function`` and return the callable, or fail naming ``key``."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise UserInputError(Problem("must look like 'module:function'", key=key, got=reference))
    directory = spec_dir(spec)
    if directory and directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UserInputError(Problem(f"module {module_name!r} not found (searched {directory or 'sys.path'})",
                                         key=key, got=reference)) from exc
        raise  # the module exists but one of its own imports failed: show the real traceback
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UserInputError(Problem(f"{module_name!r} has no attribute {attr!r}", key=key, got=reference))
        target = getattr(target, part)
    if not callable(target):
        raise UserInputError(Problem(f"{reference!r} is not callable", key=key, got=reference))
    return target


def unknown_builtin(key: str, got: str, choices: "tuple[str, ...]") -> UserInputError:
    """The error for a name that is neither built in nor a ``module:function`` reference."""
    return UserInputError(Problem(f"unknown name; built-ins are {', '.join(choices)}, or use 'module:function'",
                                  key=key, got=got))


def call_factory(fn: Callable[..., Any], offered: Mapping[str, Any], args: Mapping[str, Any],
                 args_key: str = "train.model_args", reference: str = "the function") -> Any:
    """Call a user factory with ``args`` plus those ``offered`` values its signature accepts.

    A model function may take ``input_shape``/``num_classes`` or not; making every user function
    accept them would only add boilerplate to their code.
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    extra = {k: v for k, v in offered.items() if k not in args and (takes_any or k in params)}
    return call_checked(fn, (), {**extra, **args}, args_key, reference)


def call_checked(fn: Callable[..., Any], positional: Sequence[Any], kwargs: Mapping[str, Any], args_key: str,
                 reference: str) -> Any:
    """Call a user's function, refusing first (exit 2 naming the spec key) arguments it does not take
    or leaves out, rather than a TypeError traceback from deep inside the rank. A TypeError raised
    inside the function is the user's own and propagates with their traceback."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*positional, **kwargs)  # a builtin or C function: nothing to check against
    try:
        inspect.Signature(list(params.values())).bind(*positional, **kwargs)
    except TypeError:
        raise UserInputError(_call_problems(params, len(positional), kwargs, args_key, reference)) from None
    return fn(*positional, **kwargs)


def _call_problems(params: Mapping[str, inspect.Parameter], given_positional: int, kwargs: Mapping[str, Any],
                   args_key: str, reference: str) -> List[Problem]:
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    problems = [] if takes_any else [
        Problem(f"{reference} takes no argument {k!r} (it takes: {', '.join(named) or 'none'})", key=f"{args_key}.{k}")
        for k in kwargs if k not in params]
    missing = [n for n, p in list(params.items())[given_positional:]
               if p.default is p.empty and n not in kwargs and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if missing:
        problems.append(Problem(f"{reference} needs {', '.join(map(repr, missing))}; give it in {args_key}",
                                key=args_key))
    if not problems:
        problems.append(Problem(f"{reference} cannot be called as hvdjob calls it "
                                f"({given_positional} positional, keywords {', '.join(sorted(kwargs)) or 'none'})",
                                key=args_key))
    return problems


def check_args(kind: str, name: str, args: Mapping[str, Any], valid: "tuple[str, ...] | list[str]") -> None:
    """Reject ``train.<kind>_args`` keys a built-in does not take, naming each one."""
    unknown = sorted(set(args) - set(valid))
    if unknown:
        raise UserInputError([Problem(f"not an option of {kind} {name!r} (valid: {', '.join(valid) or 'none'})",
                                      key=f"train.{kind}_args.{k}") for k in unknown])


def build_model(
    spec: JobSpec,
    builtins: Mapping[str, "tuple[Callable[..., Any], tuple[str, ...]]"],
    model_type: type,
    type_name: str,
    input_shape: "tuple[int, ...]",
    num_classes: Callable[[], int],
) -> Any:
    """The spec's model, from a ``module:function`` or a built-in, for either framework.

    ``num_classes`` is called only when the model needs it and ``train.model_args.num_classes`` does
    not say it: finding it may take a scan of the labels.
    """
    train = spec.train if spec.train is not None else TrainSpec()
    args = dict(train.model_args)
    if is_reference(train.model):
        fn = resolve(train.model, "train.model", spec)
        if "num_classes" not in args and _accepts(fn, "num_classes"):
            args["num_classes"] = num_classes()
        model = call_factory(fn, {"input_shape": input_shape}, args, "train.model_args", train.model)
        if not isinstance(model, model_type):
            raise UserInputError(Problem(f"model function must return a {type_name}", key="train.model",
                                         got=type(model).__name__))
        return model
    if train.model not in builtins:
        raise unknown_builtin("train.model", train.model, tuple(builtins))
    fn, valid = builtins[train.model]
    classes = args.pop("num_classes", None)
    check_args("model", train.model, args, valid)
    return fn(input_shape, int(classes) if classes is not None else num_classes(), **args)


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
