"""Rank 1 fails while rank 0 is blocked in an allreduce that rank 1 never joins.

Rank 0 never ends by itself: if Horovod notices the dead peer and raises, it keeps waiting, as a
rank stuck in a collective (NCCL, a hung network) does. Only the launcher can end it. With
``--peer-ignores-sigterm`` it also ignores SIGTERM, like a rank busy in native code.
"""
import signal
import sys
import time

import horovod.torch as hvd
import torch

if "--peer-ignores-sigterm" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
hvd.init()
hvd.allreduce(torch.ones(1), name="both.ranks")
if hvd.rank() == 1:
    time.sleep(1.0)  # rank 0 is inside the next collective by now
    print("rank 1 fails on purpose", flush=True)
    sys.exit(3)
print(f"rank {hvd.rank()} waiting in a collective", flush=True)
try:
    hvd.allreduce(torch.ones(1), name="never.joined")
except Exception as exc:  # noqa: BLE001  (whatever Horovod raises, this rank stays stuck)
    print(f"rank {hvd.rank()}: collective failed ({type(exc).__name__}); waiting like a hung peer", flush=True)
while True:
    time.sleep(3600)
