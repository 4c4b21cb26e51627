"""The package list in pyproject.toml must name every subpackage, or a wheel silently drops it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    src = ROOT / "src"
    found = {
        ".".join(init.parent.relative_to(src).parts)
        for init in src.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    # Alembic's folders hold no __init__.py but must ship too.
    found |= {"groupwarden.store.migrations", "groupwarden.store.migrations.versions"}
    found.add("groupwarden.demo_assets")
    assert found == listed
