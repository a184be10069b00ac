"""Where a Horovod rank's start-up time goes: unix time marks at each stage, written by rank 0.

Usage: startup_probe.py OUT.json. Marks: this process's and its parent's start (from /proc), the
script's first line, after ``import torch``, after ``import horovod.torch``, after ``hvd.init()``,
after building the model and ``DistributedOptimizer``, after the parameter broadcast, first step.
"""
import time

FIRST_LINE = time.time()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402


def process_start(pid: int) -> float:
    """Unix time a process started (10 ms resolution), from /proc/PID/stat and /proc/uptime."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().decode().rsplit(")", 1)[1].split()
    with open("/proc/uptime", encoding="ascii") as fh:
        uptime = float(fh.read().split()[0])
    return time.time() - (uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))


def main(out_path: str) -> None:
    marks = {"process_start": process_start(os.getpid()), "parent_start": process_start(os.getppid()),
             "first_line": FIRST_LINE}
    import torch

    marks["torch_imported"] = time.time()
    import horovod.torch as hvd

    marks["horovod_imported"] = time.time()
    hvd.init()
    marks["initialised"] = time.time()
    model = torch.nn.Linear(32, 10)
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01),
                                         named_parameters=model.named_parameters())
    marks["optimizer_built"] = time.time()
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    marks["broadcast_done"] = time.time()
    x, y = torch.randn(16, 32), torch.randint(0, 10, (16,))
    marks["first_step"] = time.time()
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    if hvd.rank() == 0:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump({"marks": marks, "size": hvd.size(), "parent_cmdline": _cmdline(os.getppid())}, fh, indent=2)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


if __name__ == "__main__":
    main(sys.argv[1])
