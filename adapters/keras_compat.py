"""Make ``import keras`` mean ``tf_keras`` in a TensorFlow rank.

TensorFlow >= 2.16 ships Keras 3, which Horovod does not support. ``TF_USE_LEGACY_KERAS=1`` makes
``tf.keras`` resolve to ``tf_keras``, but Horovod's Keras module still runs
``from keras import backend as K``, which would load standalone Keras 3. This module installs an
import hook that answers ``keras`` and ``keras.*`` with the matching ``tf_keras`` modules.

The hook is lazy on purpose: nothing (not even TensorFlow) is imported until some code asks for
``keras``, so a script that never uses Keras pays nothing.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Optional, Sequence

ALIAS = "keras"
TARGET = "tf_keras"


class _AliasLoader(importlib.abc.Loader):
    """Loads ``keras.x`` by importing ``tf_keras.x`` and putting that module under both names."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return None  # a placeholder module; exec_module swaps in the real one

    def exec_module(self, module: ModuleType) -> None:
        real = importlib.import_module(self.target)
        # The import system returns whatever sits in sys.modules after exec_module, so replacing
        # the placeholder there hands callers the tf_keras module itself, attributes untouched.
        sys.modules[module.__name__] = real


class KerasAliasFinder(importlib.abc.MetaPathFinder):
    """Meta-path entry that redirects ``keras`` and its submodules to ``tf_keras``."""

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]] = None, target: Optional[ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        real_name = TARGET + fullname[len(ALIAS):]
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real_name))


def tf_keras_available() -> bool:
    return importlib.util.find_spec(TARGET) is not None


def install_keras_alias() -> bool:
    """Use legacy (tf_keras) Keras everywhere in this process; idempotent.

    Returns False (and changes nothing) when ``tf_keras`` is not installed or ``keras`` was
    already imported, in which case Horovod's Keras support works only with Keras 2.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if any(isinstance(f, KerasAliasFinder) for f in sys.meta_path):
        return True
    if ALIAS in sys.modules or not tf_keras_available():
        return False
    sys.meta_path.insert(0, KerasAliasFinder())
    return True
