"""Every package directory is listed for a regular (non-editable) install (tests/install/ installs one for real)."""
from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def test_pyproject_lists_every_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "hvdrun_cli").rglob("__init__.py")
    }
    on_disk |= {
        "hvdrun_cli." + ".".join(path.parent.relative_to(REPO).parts)
        for path in (REPO / "adapters").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert config["package-dir"]["hvdrun_cli.adapters"] == "adapters"
