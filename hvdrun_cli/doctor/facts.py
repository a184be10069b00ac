"""Facts ``hvdjob doctor`` reports, gathered without importing any framework into this process.

Framework probes run as parallel subprocesses (each import takes seconds); tool versions come from
the tools' own ``--version`` output.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from hvdrun_cli import __version__
from hvdrun_cli.doctor.gpu import gpu_facts
from hvdrun_cli.launch.tools import Tools, probe_tools
from hvdrun_cli.smoke.box import gpu_count, run_nvidia_smi
from hvdrun_cli.versions import package_version

FRAMEWORKS = ("torch", "tensorflow")
PROBE_TIMEOUT_S = 120


@dataclass
class Facts:
    hvdjob: str
    python: str
    python_executable: str
    horovod: Optional[str]
    frameworks: Dict[str, Dict[str, Any]]
    tools: Dict[str, Optional[str]]
    gpu: Dict[str, Any] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _version_line(argv: List[str], must_contain: str) -> Optional[str]:
    """The line of a tool's ``--version`` output that names it (srun also prints config warnings)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in (out.stdout + "\n" + out.stderr).splitlines():
        if must_contain in line.lower() and "error" not in line.lower():
            return line.strip()
    return None


def run_probe(framework: str) -> Dict[str, Any]:
    argv = [sys.executable, "-m", "hvdrun_cli.doctor.framework_probe", framework]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"framework": framework, "ok": False, "error": f"probe timed out after {PROBE_TIMEOUT_S} s"}
    for line in reversed(out.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
    return {"framework": framework, "ok": False, "error": f"probe crashed (exit {out.returncode}): {tail}"}


def tool_versions(tools: Tools) -> Dict[str, Optional[str]]:
    found: Dict[str, Optional[str]] = {
        "horovodrun": tools.horovodrun,
        "mpirun": tools.mpirun,
        "mpi_implementation": tools.mpi_implementation,
        "srun": tools.srun,
        "sbatch": tools.sbatch,
    }
    if tools.mpirun:
        found["mpirun_version"] = _version_line([tools.mpirun, "--version"], "mpi")
    if tools.srun:
        # srun answers nothing, not even its version, without a Slurm configuration to read.
        found["slurm_version"] = (
            _version_line([tools.srun, "--version"], "slurm") or "installed, but no Slurm configuration here"
        )
    return found


def gather(frameworks: tuple = FRAMEWORKS) -> Facts:
    tools = probe_tools()
    horovod_version = package_version("horovod")
    with ThreadPoolExecutor(max_workers=len(frameworks) + 2) as pool:
        probes = {fw: pool.submit(run_probe, fw) for fw in frameworks} if horovod_version else {}
        versions = pool.submit(tool_versions, tools)
        smi = pool.submit(run_nvidia_smi)
        results = {fw: f.result() for fw, f in probes.items()}
        tool_info = versions.result()
        visible, how = gpu_count(smi.result(), os.environ.get("CUDA_VISIBLE_DEVICES"))
    facts = Facts(
        hvdjob=__version__,
        python=platform.python_version(),
        python_executable=sys.executable,
        horovod=horovod_version,
        frameworks=results,
        tools=tool_info,
    )
    gpu = gpu_facts(results, visible, how)
    facts.gpu = gpu.to_dict()
    if gpu.warning:
        facts.warnings.append(gpu.warning)
    if not horovod_version:
        facts.problems.append(
            "horovod is not installed in this Python: build it with make setup in an hvdjob checkout (README: Setup)"
        )
        return facts
    usable = [fw for fw, r in results.items() if r.get("ok")]
    broken = [fw for fw, r in results.items() if not r.get("ok") and not r.get("missing")]
    for fw in broken:
        facts.problems.append(f"horovod cannot be imported with {fw}: {results[fw].get('error')}")
    if not usable and not broken:
        facts.problems.append("neither torch nor tensorflow is installed: horovod has no framework to run with")
    return facts
