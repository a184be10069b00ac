"""``hvdjob bench``: run one job at several rank counts and report throughput, scaling and start-up.

Pure parts (statistics, efficiency, tables, plot data) are separate from the runner, which is the
only module here that starts processes; the plot module imports matplotlib only when drawing.
"""
