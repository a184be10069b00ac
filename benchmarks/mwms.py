"""Starting a tf.distribute.MultiWorkerMirroredStrategy job on this machine: one process per worker.

TensorFlow has no launcher of its own: every worker is started by hand with ``TF_CONFIG`` naming
all workers' addresses and its own index. The builders here are pure (unit-tested); :func:`run_group`
starts the workers and makes sure none outlives the benchmark: when one fails, the others are
stopped (a peer left alone blocks in its next all-reduce forever), and a deadline stops them all.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Dict, List, Mapping, Optional, Sequence

from benchmarks.launch import BenchmarkFailed, Timed
from hvdrun_cli.launch.liveness import die_with

LOOPBACK = "127.0.0.1"
POLL_S = 0.1
STOP_GRACE_S = 5.0  # SIGTERM to SIGKILL
PEER_GRACE_S = 120.0  # how long the others may run on after one worker finished well


def free_ports(count: int, host: str = LOOPBACK) -> List[int]:
    """``count`` distinct ports free right now (all held open at once, so never the same one twice)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]


def tf_config(ports: Sequence[int], index: int, host: str = LOOPBACK) -> str:
    """TF_CONFIG for worker ``index`` of a cluster of workers on ``host`` at ``ports``."""
    if not 0 <= index < len(ports):
        raise ValueError(f"worker index {index} outside a cluster of {len(ports)} workers")
    if len(set(ports)) != len(ports):
        raise ValueError(f"workers need distinct ports, got {list(ports)}")
    cluster = {"worker": [f"{host}:{int(port)}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}, sort_keys=True)


def worker_env(base: Mapping[str, str], config: str, intra: int = 1, inter: int = 1) -> Dict[str, str]:
    """A worker's environment: TF_CONFIG, tf.keras as Keras 2, pools of ``intra``/``inter`` threads."""
    env = dict(base)
    env.update({
        "TF_CONFIG": config,
        "TF_USE_LEGACY_KERAS": "1",
        "OMP_NUM_THREADS": str(intra),
        "TF_NUM_INTRAOP_THREADS": str(intra),
        "TF_NUM_INTEROP_THREADS": str(inter),
        "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "1"),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def worker_argv(script: str, workload: str, out: str, done_dir: str, intra: int = 1, inter: int = 1) -> List[str]:
    return [sys.executable, script, "--workload", workload, "--out", out, "--done-dir", done_dir,
            "--intra-op-threads", str(intra), "--inter-op-threads", str(inter)]


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    """SIGTERM every live worker's process group, SIGKILL what is left after the grace period."""
    live = [p for p in procs if p.poll() is None]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in live:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in live:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        live = [p for p in live if p.poll() is None]
        if not live:
            return
    for proc in live:
        proc.wait()


def _tail(path: str, lines: int = 15) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return "".join(fh.readlines()[-lines:])


def run_group(argvs: Sequence[Sequence[str]], envs: Sequence[Mapping[str, str]], logs: Sequence[str],
              timeout_s: float, peer_grace_s: float = PEER_GRACE_S, cwd: Optional[str] = None) -> Timed:
    """Start every worker at once and wait for all; raises :class:`BenchmarkFailed` naming the log.

    Each worker gets its own process group (so whatever it starts is stopped with it) and dies
    with this process (parent-death signal). On any failure, timeout or interruption, every worker
    still running is stopped before this returns or raises.
    """
    procs: List[subprocess.Popen] = []
    with ExitStack() as stack:
        files = [stack.enter_context(open(log, "wb")) for log in logs]
        launch = time.time()
        started = time.monotonic()
        try:
            for argv, env, log in zip(argvs, envs, files):
                procs.append(subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT, env=dict(env), cwd=cwd,
                                              start_new_session=True,
                                              preexec_fn=die_with(os.getpid(), signal.SIGKILL)))
            first_done: Optional[float] = None
            while True:
                codes = [p.poll() for p in procs]
                failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
                if failed:
                    i = failed[0]
                    raise BenchmarkFailed(f"MWMS worker {i} exited with {codes[i]}; the others were stopped; "
                                          f"see {logs[i]}:\n{_tail(logs[i])}")
                if all(code == 0 for code in codes):
                    break
                now = time.monotonic()
                if first_done is None and any(code == 0 for code in codes):
                    first_done = now
                if now - started > timeout_s:
                    raise BenchmarkFailed(f"MWMS workers still running after {timeout_s:.0f} s; stopped them; "
                                          f"see {', '.join(logs)}")
                if first_done is not None and now - first_done > peer_grace_s:
                    hung = [logs[i] for i, code in enumerate(codes) if code is None]
                    raise BenchmarkFailed(f"a MWMS worker finished but the others did not within "
                                          f"{peer_grace_s:.0f} s; stopped them; see {', '.join(hung)}")
                time.sleep(POLL_S)
        finally:
            _stop(procs)
    return Timed(launch, time.monotonic() - started)
