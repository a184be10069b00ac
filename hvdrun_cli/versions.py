"""Installed package versions from their metadata: no imports of the packages themselves.

Standard library only, so the preflight probe can use it on a remote host as well.
"""
from __future__ import annotations

from importlib import metadata
from typing import Optional


def package_version(*distributions: str) -> Optional[str]:
    """The version of the first of these distributions that is installed (TensorFlow ships under several)."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None
