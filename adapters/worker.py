"""Entry point run on every rank: ``python -m hvdrun_cli.adapters.worker``.

Reads the resolved spec named by ``HVDJOB_SPEC``, sizes thread pools, prepares TensorFlow's Keras
if needed, then either drives training (managed mode: the engine over the framework's backend) or runs the
user's script. Framework modules are imported only after the spec says which one the job uses, so
a PyTorch job never loads TensorFlow and vice versa.

Exit codes: 0 done, 2 bad input (one ``error:`` line per problem), 75 stopped on request with a
checkpoint saved, the script's own code in script mode, 1 for anything else (with a traceback).
"""
from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Dict, Optional, Type

from hvdrun_cli.errors import Problem, UserInputError
from hvdrun_cli.spec.model import FRAMEWORKS, JobSpec

from hvdrun_cli.contract import ENV_SPEC, EXIT_BAD_INPUT, EXIT_OK, EXIT_STOPPED

from .backend import Backend
from . import horovod_wait, startup_gc
from .base import LaunchInfo, StopRequested
from .rankenv import env_rank, export_thread_env, process_start_unix_time, threads_per_rank
from .timeline import complete_timeline

# Imported by name so that choosing one framework never imports the other.
BACKENDS: Dict[str, str] = {
    "torch": "hvdrun_cli.adapters.torch_backend:TorchBackend",
    "tensorflow": "hvdrun_cli.adapters.keras_backend:KerasBackend",
}


def read_spec(path: Optional[str]) -> JobSpec:
    """Load the launcher's resolved spec JSON; a missing or unreadable file is a clean error."""
    if not path:
        raise UserInputError(Problem(f"{ENV_SPEC} is not set; start ranks with `hvdjob run`"))
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        spec = JobSpec.from_dict(data)
    except OSError as exc:
        raise UserInputError(Problem(f"cannot read the resolved spec: {exc.strerror}", file=path)) from exc
    except (ValueError, TypeError) as exc:
        raise UserInputError(Problem(f"not a resolved job spec: {exc}", file=path)) from exc
    if spec.framework not in FRAMEWORKS:
        raise UserInputError(Problem(f"must be one of {', '.join(FRAMEWORKS)}", file=path, key="framework",
                                     got=spec.framework))
    return spec


def prepare_tensorflow() -> None:
    """Keras-3 measures: legacy Keras for ``tf.keras`` and ``import keras``, quieter TF start-up."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    from .keras_compat import install_keras_alias

    install_keras_alias()


def backend_class(framework: str) -> Type[Backend]:
    module_name, _, class_name = BACKENDS[framework].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def run_managed(spec: JobSpec, launch: LaunchInfo) -> int:
    """The one training engine over this framework's backend."""
    from .counting import counting_for
    from .engine import Engine

    startup_gc.pause()
    backend = backend_class(spec.framework)()
    ctx = backend.init(launch)
    try:
        engine = Engine(spec, ctx, launch, backend, counting_for(spec))
        startup_gc.resume()
        engine.run()
        complete_timeline()
    except StopRequested as stop:
        complete_timeline()
        print(f"hvdjob: rank {ctx.rank}: stopped at step {stop.summary.get('steps')}; "
              f"exiting with {EXIT_STOPPED} so a resume continues from the checkpoint", flush=True)
        return EXIT_STOPPED
    return EXIT_OK


def main() -> int:
    try:
        spec = read_spec(os.environ.get(ENV_SPEC))
        horovod_wait.install()
        threads = threads_per_rank(spec.horovod.threads_per_rank, os.environ)
        export_thread_env(threads, os.environ)
        if spec.framework == "tensorflow":
            prepare_tensorflow()
        launch = LaunchInfo.from_env(os.environ, threads, process_start_unix_time())
        if env_rank(os.environ) == 0:
            mode = "managed" if spec.managed else f"script {spec.script}"
            print(f"hvdjob: job {spec.name}, attempt {launch.attempt}, {spec.framework} {mode}, "
                  f"{threads} thread(s) per rank", flush=True)
        if spec.managed:
            return run_managed(spec, launch)
        from .script_mode import run_script

        run_script(spec.script or "", spec.args)
        complete_timeline()
        return EXIT_OK
    except UserInputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
