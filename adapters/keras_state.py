"""What a Keras checkpoint holds: arrays in an ``.npz`` payload, everything else in the JSON sidecar.

No pickle anywhere (``np.load(..., allow_pickle=False)``): model weights and optimizer variables
(iteration count, momentum/moment slots) are plain arrays in a fixed order, and the position, RNG
states and schedule go into the sidecar as JSON.
"""
from __future__ import annotations

import random
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Sequence

import numpy as np

FORMAT = "hvdjob-keras/1"


def optimizer_variables(optimizer: Any) -> List[Any]:
    """Variables of a new-style (property) or legacy (method) Keras optimizer."""
    variables = optimizer.variables
    return list(variables() if callable(variables) else variables)


def rng_state() -> Dict[str, Any]:
    """numpy and Python generator states as JSON (TensorFlow's op-level seeds cannot be captured)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"numpy": {"keys": [int(k) for k in keys], "pos": int(pos), "has_gauss": int(has_gauss),
                      "gauss": float(gauss)},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}


def set_rng_state(state: Mapping[str, Any]) -> None:
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(np_state["keys"], dtype=np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))


def writer(weights: Sequence[np.ndarray], opt_values: Sequence[np.ndarray]) -> Callable[[BinaryIO], None]:
    arrays = {f"model/{i:04d}": np.asarray(w) for i, w in enumerate(weights)}
    arrays.update({f"optimizer/{i:04d}": np.asarray(v) for i, v in enumerate(opt_values)})
    return lambda f: np.savez(f, **arrays)


def read(path: str) -> Dict[str, List[np.ndarray]]:
    """Arrays of a payload, split into model weights and optimizer variables (each in saved order)."""
    with np.load(path, allow_pickle=False) as npz:
        names = sorted(npz.files)
        return {"model": [npz[n] for n in names if n.startswith("model/")],
                "optimizer": [npz[n] for n in names if n.startswith("optimizer/")]}


def check_shapes(kind: str, saved: Sequence[np.ndarray], current: Sequence[Any]) -> None:
    """A checkpoint from another model would assign garbage; refuse it with a clear reason."""
    if len(saved) != len(current):
        raise ValueError(f"{kind}: checkpoint has {len(saved)} arrays, this job has {len(current)}")
    for i, (a, v) in enumerate(zip(saved, current)):
        if tuple(a.shape) != tuple(v.shape):
            raise ValueError(f"{kind} array {i}: checkpoint shape {tuple(a.shape)}, this job {tuple(v.shape)}")
