"""What a PyTorch checkpoint holds, and how it is saved and restored.

Only tensors and plain Python values go into the file, so it loads with ``weights_only=True``:
opening a checkpoint never executes code from it. RNG states of every rank are kept (gathered to
rank 0) so dropout and other random layers continue their streams after a resume.
"""
from __future__ import annotations

import random
from typing import Any, BinaryIO, Callable, Dict, List, Mapping

import numpy as np
import torch

from .checkpoint import Position

FORMAT = "hvdjob-torch/1"


def rng_state() -> Dict[str, Any]:
    """This rank's random generators as tensors and primitives (no numpy objects)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def make_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, position: Position,
               rng_states: List[Dict[str, Any]], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """The checkpoint dict: weights, optimizer (momentum/Adam moments), position, RNG per rank."""
    return {
        "format": FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "position": position.as_dict(),
        "rng": rng_states,
        **extra,
    }


def writer(state: Mapping[str, Any]) -> Callable[[BinaryIO], None]:
    return lambda f: torch.save(dict(state), f)


def read(path: str) -> Dict[str, Any]:
    """Load safely (tensors and primitives only) onto the CPU; reject files that are not ours."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} checkpoint")
    return state
