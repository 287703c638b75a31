"""Every package folder ships: pyproject.toml lists packages one by one (the import package `musebridge`
lives in folders with other names), so a new folder missing from the list would be left out of a wheel."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_in_the_packages_list() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    folders = set()
    for package, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            folders.add(".".join([package, *relative.parts]))
    assert folders - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
