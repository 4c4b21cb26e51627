"""The README's two commands are the ones that work: CI runs the test one, this runs the demo one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^    (python3 -m venv .*)$", text, flags=re.MULTILINE)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    demo, tests = readme_commands()[:2]
    assert demo.endswith("groupwarden demo")
    assert "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci


def test_demo_command_runs_from_the_installed_package(tmp_path: Path) -> None:
    # The README's demo command, with --no-tui, from the console script of this environment.
    script = Path(sys.executable).parent / "groupwarden"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    env.pop("GROUPWARDEN_DB", None)
    result = subprocess.run(
        [str(script), "demo", "--no-tui"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "300 users" in result.stdout
    assert "4 workspaces, 24 folders" in result.stdout
    assert (tmp_path / "data" / "groupwarden" / "demo.db").exists()
    assert "Traceback" not in result.stderr
