"""``make gpu-check``: does this GPU machine run Horovod jobs? One command for users and for GPU CI.

Three stages, each a JUnit testcase (``--junit FILE``), each started the way a user would start it:

1. ``hvdjob doctor --json``: Horovod was built with NCCL and GPUs are visible;
2. an NCCL allreduce across every local GPU (one rank per GPU through ``hvdjob run``): the
   bandwidth figure per message size, algorithm and bus bandwidth as nccl-tests reports them;
3. ``hvdjob smoke`` of the example jobs, one rank per GPU (smoke's own testcases are merged in).

The launcher side only: the ranks run :mod:`hvdrun_cli.doctor.nccl_allreduce`. The builders and
parsers here are pure, so they are unit-tested without a GPU.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from hvdrun_cli.smoke.junit import render_junit
from hvdrun_cli.smoke.model import FAIL, PASS, SKIP, Verdict

REPO_JOBS = Path(__file__).resolve().parents[2] / "jobs"
RANK_SCRIPT = Path(__file__).resolve().parent / "nccl_allreduce.py"
QUERY_ARGV = ("nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv")
DEFAULT_SIZES_MIB = (1, 16, 256)
# Example jobs by framework: a CUDA build covers PyTorch (see README), so TensorFlow jobs are smoked
# only when doctor finds Horovod usable with TensorFlow.
EXAMPLE_JOBS = {"torch": ("digits-torch.yaml", "script-torch.yaml"), "tensorflow": ("digits-keras.yaml",)}
STAGE_TIMEOUT_S = 900


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_mib: Optional[int]
    driver: str


def parse_gpu_query(text: str) -> List[GpuInfo]:
    """Rows of ``nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv`` (header optional)."""
    gpus = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or fields[0] == "name":
            continue
        memory = fields[1].split()[0] if fields[1] else ""
        gpus.append(GpuInfo(fields[0], int(memory) if memory.isdigit() else None, fields[2]))
    return gpus


def describe_gpus(gpus: Sequence[GpuInfo]) -> str:
    """``8 x NVIDIA A100-SXM4-80GB (81920 MiB), driver 570.133.20`` (mixed models listed one by one)."""
    if not gpus:
        return "no GPU"
    if len({(g.name, g.memory_mib) for g in gpus}) == 1:
        memory = f" ({gpus[0].memory_mib} MiB)" if gpus[0].memory_mib else ""
        models = f"{len(gpus)} x {gpus[0].name}{memory}"
    else:
        models = " + ".join(g.name for g in gpus)
    return f"{models}, driver {gpus[0].driver}"


# --- argv and spec builders (pure) ------------------------------------------------------------
def hvdjob_argv(python: str, *args: str) -> List[str]:
    return [python, "-m", "hvdrun_cli", *args]


def doctor_argv(python: str) -> List[str]:
    return hvdjob_argv(python, "doctor", "--json")


def bandwidth_spec(np: int, out_json: Path, sizes_mib: Sequence[int]) -> Dict[str, Any]:
    """A script job that runs the allreduce ranks, one per GPU."""
    return {
        "name": "gpu-check-nccl-allreduce",
        "framework": "torch",
        "script": str(RANK_SCRIPT),
        "args": [str(out_json), *map(str, sizes_mib)],
        "resources": {"np": np},
    }


def bandwidth_argv(python: str, spec: Path, run_dir: Path) -> List[str]:
    return hvdjob_argv(python, "run", str(spec), "--run-dir", str(run_dir), "-q")


def smoke_argv(python: str, job: Path, junit: Path, np: int) -> List[str]:
    return hvdjob_argv(python, "smoke", str(job), "--np", str(np), "--junit", str(junit))


def jobs_for(frameworks: Mapping[str, Mapping[str, Any]], jobs_dir: Path = REPO_JOBS) -> List[Path]:
    """The example jobs of every framework Horovod is usable with here."""
    return [jobs_dir / job for fw, names in EXAMPLE_JOBS.items()
            if (frameworks.get(fw) or {}).get("ok") for job in names]


# --- judging (pure) ---------------------------------------------------------------------------
def judge_doctor(facts: Mapping[str, Any]) -> Tuple[Verdict, int]:
    """(verdict, GPUs to use): NCCL must be built and at least one GPU visible."""
    gpu = facts.get("gpu") or {}
    visible = int(gpu.get("visible") or 0)
    summary = gpu.get("summary") or "doctor reported nothing about GPUs"
    if not facts.get("horovod"):
        return Verdict("doctor", FAIL, "horovod is not installed in this Python (make setup-gpu)"), 0
    if not gpu.get("nccl_built"):
        return Verdict("doctor", FAIL, f"{summary}: Horovod has no NCCL GPU operations (make setup-gpu)"), visible
    if visible == 0:
        return Verdict("doctor", FAIL, f"{summary} ({gpu.get('how')}): run gpu-check on a GPU machine"), 0
    problems = list(facts.get("problems") or [])
    if problems:
        return Verdict("doctor", FAIL, problems[0], tuple(problems[1:])), visible
    return Verdict("doctor", PASS, f"{summary} (NCCL {gpu.get('nccl_version') or '?'})"), visible


def bus_bandwidth(nbytes: int, seconds: float, ranks: int) -> Tuple[float, float]:
    """(algorithm, bus) bandwidth in GB/s as nccl-tests defines them for allreduce: bus = alg * 2(n-1)/n."""
    alg = nbytes / seconds / 1e9
    return alg, alg * (2 * (ranks - 1) / ranks if ranks > 1 else 1.0)


def bandwidth_lines(result: Mapping[str, Any]) -> List[str]:
    """A table like nccl-tests' from what the rank script wrote."""
    ranks = int(result["size"])
    lines = [f"{'MiB':>6} {'ms':>9} {'algbw GB/s':>11} {'busbw GB/s':>11}  ({ranks} ranks)"]
    for size, row in sorted(result["results"].items(), key=lambda item: int(item[0])):
        alg, bus = bus_bandwidth(int(row["bytes"]), float(row["seconds"]), ranks)
        lines.append(f"{int(size):>6} {row['seconds'] * 1e3:>9.3f} {alg:>11.2f} {bus:>11.2f}")
    return lines


def judge_bandwidth(result: Optional[Mapping[str, Any]], error: str = "") -> Verdict:
    if result is None:
        return Verdict("nccl-allreduce", FAIL, error or "the allreduce ranks wrote no result")
    largest = max(result["results"], key=int)
    _, bus = bus_bandwidth(int(result["results"][largest]["bytes"]), float(result["results"][largest]["seconds"]),
                           int(result["size"]))
    detail = f"{bus:.1f} GB/s bus bandwidth at {largest} MiB across {result['size']} GPUs"
    return Verdict("nccl-allreduce", PASS, detail, tuple(bandwidth_lines(result)))


def merge_junit(own: str, others: Sequence[str]) -> str:
    """One report: gpu-check's own testsuite followed by each smoke run's."""
    root = ET.fromstring(own.split("\n", 1)[1] if own.startswith("<?xml") else own)
    for text in others:
        for suite in ET.fromstring(text.split("\n", 1)[1] if text.startswith("<?xml") else text).iter("testsuite"):
            root.append(suite)
    suites = list(root.iter("testsuite"))
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in suites)))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in suites):.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- running it -------------------------------------------------------------------------------
def _run(argv: List[str], log: Path) -> subprocess.CompletedProcess:
    with open(log, "w", encoding="utf-8") as out:
        return subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=STAGE_TIMEOUT_S,
                              check=False)


def gpu_inventory() -> str:
    tool = shutil.which(QUERY_ARGV[0])
    if tool is None:
        return "no nvidia-smi"
    try:
        done = subprocess.run([tool, *QUERY_ARGV[1:]], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "nvidia-smi failed"
    return describe_gpus(parse_gpu_query(done.stdout)) if done.returncode == 0 else "nvidia-smi failed"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--junit", type=Path, help="write the report as JUnit XML")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES_MIB)), help="allreduce sizes in MiB")
    parser.add_argument("--work-dir", type=Path, help="keep logs and run directories here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="hvdjob-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    started = time.monotonic()
    verdicts: List[Verdict] = []
    smoke_reports: List[str] = []
    smoke_failed = False

    doctor = _run(doctor_argv(python), work / "doctor.json")
    try:
        facts = json.loads((work / "doctor.json").read_text())
    except ValueError:
        facts = {"problems": [f"hvdjob doctor --json failed (exit {doctor.returncode}); see {work / 'doctor.json'}"]}
    verdict, gpus = judge_doctor(facts)
    verdicts.append(verdict)
    print(verdict.render(), flush=True)

    if verdict.status == PASS:
        spec = work / "nccl-allreduce.json"
        out_json = work / "nccl-allreduce-result.json"
        spec.write_text(json.dumps(bandwidth_spec(gpus, out_json, sizes), indent=2))
        ran = _run(bandwidth_argv(python, spec, work / "nccl-allreduce-run"), work / "nccl-allreduce.log")
        result = json.loads(out_json.read_text()) if ran.returncode == 0 and out_json.exists() else None
        verdicts.append(judge_bandwidth(result, f"exit {ran.returncode}; see {work / 'nccl-allreduce.log'}"))
        print(verdicts[-1].render(), flush=True)
        for job in jobs_for(facts.get("frameworks") or {}):
            junit = work / f"smoke-{job.stem}.xml"
            done = _run(smoke_argv(python, job, junit, gpus), work / f"smoke-{job.stem}.log")
            status = PASS if done.returncode == 0 else FAIL
            smoke_failed = smoke_failed or status == FAIL
            print(f"{status.upper():<4}  smoke {job.name}: exit {done.returncode} (log {work / f'smoke-{job.stem}.log'})",
                  flush=True)
            if junit.exists():
                smoke_reports.append(junit.read_text())
            else:
                verdicts.append(Verdict(f"smoke {job.name}", FAIL, f"exit {done.returncode}, no report"))
    else:
        for name in ("nccl-allreduce", "smoke"):
            verdicts.append(Verdict(name, SKIP, "doctor failed"))

    elapsed = time.monotonic() - started
    if args.junit:
        own = render_junit("hvdjob.gpu-check", "hvdjob.gpu-check", verdicts, elapsed,
                           properties={"gpus": gpu_inventory()})
        args.junit.write_text(merge_junit(own, smoke_reports))
    failed = smoke_failed or any(v.status == FAIL for v in verdicts)
    print(f"gpu-check: {'FAILED' if failed else 'passed'} in {elapsed:.0f} s (logs in {work})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
