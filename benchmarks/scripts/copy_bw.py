"""A plain memory copy (numpy.copyto, one thread) per message size: the memory limit on one box.

Usage: copy_bw.py OUT.json SIZE_MIB [SIZE_MIB ...]; same warm-up and round counts as allreduce_bw.py.
"""
import json
import sys
import time

import numpy as np

from bwsizes import MIB, rounds_for


def main(out_path: str, sizes_mib: list) -> None:
    results = {}
    for size in sizes_mib:
        nbytes = size * MIB
        src = np.ones(nbytes // 4, dtype=np.float32)
        dst = np.empty_like(src)
        np.copyto(dst, src)  # warm-up: pages faulted in
        rounds = rounds_for(nbytes)
        start = time.perf_counter()
        for _ in range(rounds):
            np.copyto(dst, src)
        seconds = (time.perf_counter() - start) / rounds
        results[str(size)] = {"seconds": seconds, "rounds": rounds, "bytes": nbytes}
        del src, dst
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"results": results}, fh, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]])
