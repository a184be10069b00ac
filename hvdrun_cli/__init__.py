"""hvdjob: launch Horovod training jobs from a YAML spec (launcher side; no framework imports)."""

__version__ = "0.1.0"
