"""Probe run in a *separate* process by ``hvdjob doctor``: can Horovod load with this framework?

It imports the framework, so it never runs inside the launcher process. Prints one JSON object:
the framework's version and what Horovod's extension for it was built with (the facts
``horovodrun --check-build`` shows), or the error that stopped the import.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict

from hvdrun_cli.doctor.gpu import nccl_version_from_code

BUILT_FLAGS = ("mpi", "gloo", "nccl", "ddl", "ccl", "cuda", "rocm")


def probe(framework: str) -> Dict[str, Any]:
    result: Dict[str, Any] = {"framework": framework, "ok": False}
    try:
        if framework == "torch":
            import torch

            result["version"] = torch.__version__
            result["cuda_available"] = bool(torch.cuda.is_available())
            import horovod.torch as hvd
        elif framework == "tensorflow":
            os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow as tf

            result["version"] = tf.__version__
            try:
                import tf_keras

                result["tf_keras"] = tf_keras.__version__
            except ImportError:
                result["tf_keras"] = None
            import horovod.tensorflow as hvd
        else:
            raise ValueError(f"unknown framework {framework}")
    except ImportError as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["missing"] = framework in str(exc) and "horovod" not in str(exc)
        return result
    except Exception as exc:  # a broken build raises all sorts (OSError: undefined symbol ...)
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result
    result["built"] = {flag: bool(getattr(hvd, f"{flag}_built")()) for flag in BUILT_FLAGS}
    result["nccl_version"] = nccl_version_from_code(hvd.nccl_built())
    result["ok"] = True
    return result


def main() -> None:
    print(json.dumps(probe(sys.argv[1])))


if __name__ == "__main__":
    main()
