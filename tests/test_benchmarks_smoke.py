"""The benchmarks still run: the smallest size, end to end, as a subprocess. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sync.py"


def test_bench_sync_runs_at_the_smallest_size() -> None:
    # Takes a few seconds: a 2000-user directory, synced, queried and fetched over SCIM.
    args = ["--users", "2000", "--groups", "200", "--runs", "2", "--fetch-runs", "1"]
    done = subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "sqlite3 executemany baseline",
        "reconcile into an empty cache",
        "no-change re-sync",
        "who-can ws01/folder_001",
        "access of heavy.member@example.com",
        "bare httpx loop",
        "ScimSource.fetch",
        "targets",
    ):
        assert line in out, out
