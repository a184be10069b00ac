"""A script job that reports its progress to hvdjob's bar, prints a line now and then, and takes ~3 s."""
import os
import sys
import time

from hvdrun_cli.adapters import report_progress

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
rank = int(os.environ.get("HOROVOD_RANK", "0"))
for step in range(1, steps + 1):
    time.sleep(0.15)
    report_progress(step, steps, loss=1.0 / step, samples_per_sec=1000.0 + step)
    if step % 5 == 0:
        print(f"rank {rank} did {step} steps", flush=True)
