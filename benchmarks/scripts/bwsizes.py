"""Message sizes and round counts shared by the allreduce and copy measurements."""
MIB = 1024 * 1024
TARGET_BYTES = 512 * MIB  # timed bytes per size: enough rounds that small sizes are not one timer tick


def rounds_for(nbytes: int) -> int:
    return max(2, min(50, TARGET_BYTES // nbytes))
