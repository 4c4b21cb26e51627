"""SIGKILL at any moment of a sync or a role change leaves the store as before or as after."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from groupwarden.services.context import Context
from groupwarden.services.export import export_json
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.services.reconcile import DeletionGuard
from groupwarden.services.sync import run_sync
from support import sync_snapshot
from workers import StaticSource, big_snapshot

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

WORKERS = Path(__file__).parent / "workers.py"
USERS = 20_000


def start(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(WORKERS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    ready = process.stdout.readline()
    assert json.loads(ready) == {"ready": True}, process.stderr.read() if process.stderr else ""
    return process


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def states(ctx: Context) -> tuple[str, str, float]:
    """The export before the second sync, after it, and how long that sync takes."""
    sync_snapshot(ctx, big_snapshot(USERS, 1))
    before = export_json(ctx)
    started = time.monotonic()
    run_sync(ctx, StaticSource(big_snapshot(USERS, 2)), guard=DeletionGuard(allow=True))
    took = time.monotonic() - started
    after = export_json(ctx)
    assert before != after
    return before, after, took


@pytest.mark.parametrize("moment", [0.05, 0.3, 0.6, 0.85, 1.2])
def test_sync_killed_at_any_moment_leaves_before_or_after(
    ctx: Context, db_url: str, backend: str, moment: float, tmp_path: Path
) -> None:
    before, after, took = states(ctx)
    ctx.close()
    # Start again from the state before the second sync: a fresh cache with generation 1.
    from support import TEMPLATE, new_pg_database, pg_admin_url

    if backend == "sqlite":
        fresh = str(tmp_path / f"fresh-{moment}.db")
    else:
        fresh = pg_admin_url(new_pg_database(TEMPLATE))
    again = Context.open(fresh)
    sync_snapshot(again, big_snapshot(USERS, 1))
    assert export_json(again) == before
    worker = start("sync", fresh, str(USERS), "2")
    # The worker still builds its snapshot before it reconciles, so the moments spread
    # over the whole run, the commit included.
    time.sleep(took * moment * 1.5)
    kill(worker)
    state = export_json(again)
    assert state in (before, after)
    again.close()


def test_role_changes_killed_mid_flight_keep_grants_and_audit_in_step(ctx: Context, db_url: str) -> None:
    sync_snapshot(ctx, big_snapshot(2_000, 1))
    add_workspace(ctx, "prod")
    add_folder(ctx, "prod", "finance")
    for delay in (0.3, 0.7, 1.1):
        worker = start("grant-forever", db_url)
        time.sleep(delay)
        kill(worker)
        with ctx.engine.connect() as conn:
            grants = dict(
                conn.execute(
                    text("SELECT g.name, gr.role FROM grants gr JOIN instance_groups g ON g.id = gr.group_id")
                ).all()
            )
            events = conn.execute(text("SELECT principal, after FROM audit_events ORDER BY id")).all()
        # Replaying the audit log gives exactly the grants in the store: no change landed
        # without its event, and no event without its change.
        replay: dict[str, str] = {}
        for principal, role in events:
            replay[principal.removeprefix("g/")] = role
        assert replay == grants
        assert events, "the worker made no change before it was killed"
