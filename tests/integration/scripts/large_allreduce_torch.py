"""Sum-allreduce tensors below and above the size where hvdjob's Open MPI rules switch algorithm; check every value."""
import horovod.torch as hvd
import torch

hvd.init()
for mib in (1, 24):  # 24 MiB: past the segmented-ring threshold on any machine with up to a 48 MiB cache
    n = mib * (1 << 20) // 4
    ramp = (torch.arange(n, dtype=torch.float32) % 1000)  # integers: float32 sums are exact
    tensor = ramp * (hvd.rank() + 1)
    hvd.allreduce_(tensor, op=hvd.Sum, name=f"large.{mib}")
    expected = ramp * sum(r + 1 for r in range(hvd.size()))
    wrong = int((tensor != expected).sum())
    print(f"rank={hvd.rank()} allreduce {mib} MiB: {wrong} wrong values", flush=True)
