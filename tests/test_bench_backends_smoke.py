"""benchmarks/bench_backends.py still runs: the smallest size, as a subprocess. No timing is asserted.

On SQLite always; on PostgreSQL too when GROUPWARDEN_TEST_PG names a server (the script
creates and drops its own scratch database there).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_backends.py"


def test_bench_backends_runs_at_the_smallest_size() -> None:
    args = ["--users", "1000", "--groups", "100", "--runs", "1", "--changes", "10", "--workers", "1,2"]
    env = {k: v for k, v in os.environ.items() if k not in ("GROUPWARDEN_BENCH_PG", "GROUPWARDEN_DB")}
    pg = os.environ.get("GROUPWARDEN_TEST_PG")
    if pg:
        args += ["--pg", pg]
    done = subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "sqlite3 executemany baseline",
        "reconcile into an empty store",
        "no-change re-sync",
        "who-can ws01/folder_001",
        "access of heavy.member@example.com",
        "2 process(es) x 10 changes: changes/s",
        "refused stale changes",
        "lost updates (audit chain breaks)",
        "lost updates: none",
    ):
        assert line in out, out
    assert ("PostgreSQL" in out.split("Results")[-1]) == bool(pg), out
    # A password in the URL is never printed.
    password = make_url(pg).password if pg else None
    if password:
        assert f":{password}@" not in out
