"""The built-in models, data sets, optimizers and losses, and the options each one takes.

Stdlib only, so both sides read it: ``hvdjob validate`` checks ``train.model_args`` and friends
against it without importing a framework, and the rank-side builders take their option names from
it, so the launcher accepts exactly what the ranks accept. Each option has a check saying what a
rank would otherwise fail on (``hidden: [0]``, ``val_fraction: 2``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

Check = Callable[[Any], Optional[str]]  # value -> what is wrong with it, or None

KINDS = ("model", "data", "optimizer", "loss")  # train.<kind>, with options in train.<kind>_args


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def whole(low: int, high: int) -> Check:
    return lambda v: None if _is_int(v) and low <= v <= high else f"must be a whole number from {low} to {high}"


def number(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Check:
    left, right = "(" if low_open else "[", ")" if high_open else "]"

    def check(v: Any) -> Optional[str]:
        if not _is_number(v):
            return f"must be a number in {left}{low}, {high}{right}"
        if v < low or v > high or (low_open and v == low) or (high_open and v == high):
            return f"must be a number in {left}{low}, {high}{right}"
        return None

    return check


def flag(v: Any) -> Optional[str]:
    return None if isinstance(v, bool) else "must be true or false"


def list_of(item: Check, min_len: int, max_len: int) -> Check:
    def check(v: Any) -> Optional[str]:
        if not isinstance(v, (list, tuple)) or not min_len <= len(v) <= max_len:
            return f"must be a list of {min_len} to {max_len} values" if min_len != max_len else \
                f"must be a list of {min_len} values"
        for entry in v:
            message = item(entry)
            if message:
                return f"every entry {message}"
        return None

    return check


def int_or_shape(v: Any) -> Optional[str]:
    """``features: 784`` or a shape such as ``[3, 32, 32]``."""
    if _is_int(v):
        return whole(1, 1 << 24)(v)
    return list_of(whole(1, 1 << 16), 1, 3)(v)


_WIDTHS = list_of(whole(1, 1 << 16), 0, 64)
_CLASSES = whole(2, 1 << 20)  # model_args.num_classes: overrides the count read from the data
_FRACTION = number(0, 1, high_open=True)
_BETA = number(0, 1, high_open=True)
_EPS = number(0, 1, low_open=True)

# kind -> framework ("" for both) -> built-in name -> option -> check
_TABLE: Dict[str, Dict[str, Dict[str, Dict[str, Check]]]] = {
    "model": {"": {
        "mlp": {"hidden": _WIDTHS, "dropout": _FRACTION, "num_classes": _CLASSES},
        "cnn": {"channels": list_of(whole(1, 1 << 14), 1, 16), "hidden": whole(1, 1 << 16), "num_classes": _CLASSES},
    }},
    "data": {"": {
        "digits": {"val_fraction": number(0, 1, low_open=True, high_open=True)},
        "synthetic": {"samples": whole(1, 10**8), "val_samples": whole(0, 10**8), "features": int_or_shape,
                      "classes": whole(2, 1 << 20)},
    }},
    "optimizer": {
        "torch": {
            "sgd": {"nesterov": flag, "dampening": number(0, 1)},
            "adam": {"betas": list_of(_BETA, 2, 2), "eps": _EPS, "amsgrad": flag},
            "adamw": {"betas": list_of(_BETA, 2, 2), "eps": _EPS, "amsgrad": flag},
        },
        "tensorflow": {
            "sgd": {"nesterov": flag},
            "adam": {"beta_1": _BETA, "beta_2": _BETA, "epsilon": _EPS, "amsgrad": flag},
            "adamw": {"beta_1": _BETA, "beta_2": _BETA, "epsilon": _EPS, "amsgrad": flag},
        },
    },
    "loss": {"": {"cross_entropy": {}, "mse": {}}},
}


def is_reference(name: str) -> bool:
    """``module:function`` (a built-in name never has a colon)."""
    return ":" in name


def builtins(kind: str, framework: str) -> Mapping[str, Mapping[str, Check]]:
    """The built-in names of ``kind`` for ``framework``, each with its options' checks."""
    by_framework = _TABLE[kind]
    return by_framework.get(framework, by_framework.get("", {}))


def builtin_key(kind: str, name: str) -> str:
    """The table key a spec name refers to: optimizer names are case-insensitive (``Adam``)."""
    return name.lower() if kind == "optimizer" else name


def option_names(kind: str, name: str, framework: str = "") -> Tuple[str, ...]:
    """Options built-in ``name`` takes, in table order; the rank side checks ``*_args`` with these."""
    return tuple(builtins(kind, framework)[builtin_key(kind, name)])  # optimizers need the framework
