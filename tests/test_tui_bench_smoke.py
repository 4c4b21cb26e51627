"""bench_tui.py still runs: a small cache, built by the script, one run of each app. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_tui.py"


def test_bench_tui_runs_on_a_small_cache(tmp_path: Path) -> None:
    args = ["--db", str(tmp_path / "cache.db"), "--users", "2000", "--groups", "200", "--runs", "1"]
    done = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "start to first rows painted, median: bare Textual table",
        "groups pane (200 rows; bare app 200): bare Input + DataTable",
        "members pane (",
        "peak memory of the UI process",
    ):
        assert line in out, out
    assert out.rstrip().splitlines()[-1].startswith(("targets: all met", "targets missed: ")), out
