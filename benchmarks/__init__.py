"""Measured comparisons for hvdjob: start-up, training throughput, scaling and allreduce bandwidth.

Run all of them with ``python -m benchmarks`` (or ``make bench``); results go to
``benchmarks/results/<timestamp>/`` and a markdown table is printed.
"""
