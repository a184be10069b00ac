"""Which controller and tensor operations carry the gradients, chosen for the job's topology.

On one machine, Horovod's MPI operations go through Open MPI's shared-memory transport (vader, with a
single-copy CMA read where the kernel allows it): measured here 3.1-3.3 GB/s for a 16 MiB allreduce
against 0.6-1.0 GB/s for Gloo, which has no shared-memory transport (horovod #1741). So a local
multi-rank job runs under mpirun with the MPI controller when Horovod links MPI and Open MPI's mpirun
is here; otherwise the built-in Gloo launcher stays. ``horovod.data_plane`` forces either.

:func:`choose` is pure; :func:`cma_works` is the one probe (a fork and a ``process_vm_readv``).
"""
from __future__ import annotations

import ctypes
import os
import time
from dataclasses import dataclass
from typing import Optional

MPI = "mpi"
GLOO = "gloo"
PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = ctypes.c_ulong(-1).value


@dataclass(frozen=True)
class DataPlane:
    controller: str  # mpi | gloo
    operations: str  # mpi | gloo
    reason: str
    single_copy: Optional[bool] = None  # MPI on one machine: CMA single-copy reads (None: not relevant)

    def describe(self) -> str:
        extra = ""
        if self.controller == MPI and self.single_copy is not None:
            extra = ", shared memory " + ("with CMA single-copy" if self.single_copy else "without single-copy")
        return f"controller {self.controller}, tensor operations {self.operations}{extra}: {self.reason}"


def choose(wanted: str, *, local: bool, np: int, horovod_mpi: Optional[bool], openmpi: bool,
           cma: Optional[bool]) -> Optional[DataPlane]:
    """The MPI data plane for a local job when it applies, else None (the launcher's own default).

    ``wanted`` is ``horovod.data_plane``: auto | mpi | gloo.
    """
    if wanted == GLOO or not local:
        return None
    if wanted == MPI:
        return DataPlane(MPI, MPI, "requested (horovod.data_plane: mpi)", single_copy=bool(cma))
    if np < 2:
        return None
    if horovod_mpi and openmpi:
        return DataPlane(MPI, MPI, f"auto: {np} ranks on one machine, Horovod built with MPI and Open MPI's "
                         "mpirun here: MPI over shared memory", single_copy=bool(cma))
    return None


def gloo_reason(wanted: str, *, local: bool, np: int, horovod_mpi: Optional[bool], openmpi: bool,
                launcher: str = "auto") -> str:
    """Why a job that does not get the MPI data plane uses Gloo (for the dry run)."""
    if wanted == GLOO:
        return "requested (horovod.data_plane: gloo)"
    if launcher == GLOO:
        return "launcher gloo requested"
    if not local:
        return "across hosts"
    if np < 2:
        return "auto: one rank, nothing to reduce"
    if not openmpi:
        return "auto: no Open MPI mpirun here"
    if horovod_mpi is False:
        return "auto: Horovod was built without MPI"
    return "auto: Horovod's MPI support unknown (Horovod not found)" if horovod_mpi is None else "auto"


def hierarchical_note(requested: bool, *, hosts: int, nccl: Optional[bool]) -> Optional[str]:
    """What ``horovod.hierarchical_allreduce: true`` will do, for the dry run (None: not requested).

    Horovod 0.28 has one hierarchical allreduce, NCCL's (reduce-scatter in each host, MPI across
    hosts, allgather in each host), for GPU tensors; without NCCL, and on a single host, its
    ``horovod_init`` turns the flag off, so CPU tensors always take the flat allreduce.
    """
    if not requested:
        return None
    if hosts < 2:
        return "hierarchical allreduce: no effect on one host (Horovod applies it only across hosts)"
    if nccl is False:
        return ("hierarchical allreduce: no effect, this Horovod build has no NCCL; Horovod runs it only "
                "through NCCL for GPU tensors, so gradients take the flat allreduce")
    if nccl is None:
        return "hierarchical allreduce: takes effect only if Horovod was built with NCCL (Horovod not found)"
    return ("hierarchical allreduce: on for GPU tensors (NCCL within each host, MPI across hosts); "
            "CPU tensors take the flat allreduce")


def cma_works(timeout_s: float = 2.0) -> bool:
    """Whether one process may read another's memory with ``process_vm_readv`` (what CMA needs).

    Two forked children, as mpirun's ranks are siblings: the target allows any tracer (as Open MPI
    does), the reader copies a marker out of it. Containers without CAP_SYS_PTRACE or with a strict
    ptrace scope fail here, exactly where Open MPI's single-copy path would.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        readv = libc.process_vm_readv
    except (OSError, AttributeError):
        return False
    marker = ctypes.create_string_buffer(b"hvdjob-cma-probe", 32)

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    ready_r, ready_w = os.pipe()
    target = os.fork()
    if target == 0:  # pragma: no cover - runs in the child
        try:
            os.close(ready_r)
            libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(PR_SET_PTRACER_ANY), 0, 0, 0)
            os.write(ready_w, b"1")
            time.sleep(timeout_s)
        finally:
            os._exit(0)
    os.close(ready_w)
    ok = False
    try:
        os.read(ready_r, 1)
        reader = os.fork()
        if reader == 0:  # pragma: no cover - runs in the child
            got = ctypes.create_string_buffer(32)
            local = IoVec(ctypes.cast(got, ctypes.c_void_p), 32)
            remote = IoVec(ctypes.cast(marker, ctypes.c_void_p), 32)
            n = readv(target, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
            os._exit(0 if n == 32 and got.value == marker.value else 1)
        _, status = os.waitpid(reader, 0)
        ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        os.close(ready_r)
        try:
            os.kill(target, 9)
        except ProcessLookupError:
            pass
        os.waitpid(target, 0)
    return ok
