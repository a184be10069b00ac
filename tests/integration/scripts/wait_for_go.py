"""Plain Horovod script: initialise, say ready (a file per rank), wait for a go file, allreduce, end."""
import os
import sys
import time

import horovod.torch as hvd
import torch

hvd.init()
folder = sys.argv[1]
open(os.path.join(folder, f"ready.{hvd.rank()}"), "w").close()
deadline = time.time() + 120
while not os.path.exists(os.path.join(folder, "go")) and time.time() < deadline:
    time.sleep(0.1)
print(f"rank {hvd.rank()} sum={float(hvd.allreduce(torch.ones(1), op=hvd.Sum))}", flush=True)
