"""Several processes at once: no lost update, no interleaved sync, no 'database is locked'."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import text

from groupwarden.domain.errors import GroupwardenError
from groupwarden.services.context import Context
from groupwarden.services.export import export_data
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.services.sync import run_sync
from groupwarden.store import db
from support import folder_grants, grant, sync_snapshot
from workers import StaticSource, big_snapshot

WORKERS = Path(__file__).parent / "workers.py"


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> dict[str, object]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "locked" not in err
    return dict(json.loads(out.strip().splitlines()[-1]))


def prepared(ctx: Context, users: int = 300) -> None:
    sync_snapshot(ctx, big_snapshot(users, 1))
    add_workspace(ctx, "prod")
    add_folder(ctx, "prod", "finance")


def test_racing_role_changes_lose_no_update(ctx: Context, db_url: str) -> None:
    prepared(ctx)
    workers = [start("race", db_url, f"admin{n}", "60") for n in range(3)]
    results = [finish(w) for w in workers]
    done = sum(int(str(r["done"])) for r in results)
    assert done + sum(int(str(r["stale"])) for r in results) == 180
    with ctx.engine.connect() as conn:
        chain = conn.execute(
            text("SELECT before, after FROM audit_events WHERE principal = 'g/eng' ORDER BY id")
        ).all()
        final = conn.execute(text("SELECT role FROM grants")).scalar_one()
    # Every change that reported success is in the audit log, and each one started from
    # the role the one before it left: nothing was overwritten unseen.
    assert len(chain) == done
    assert chain[0][0] is None
    for previous, current in pairwise(chain):
        assert current[0] == previous[1]
    assert final == chain[-1][1]


def test_sync_and_role_changes_at_once_both_land_whole(ctx: Context, db_url: str) -> None:
    prepared(ctx, users=20_000)
    syncer = start("sync", db_url, "20000", "2")
    racers = [start("race", db_url, f"admin{n}", "30") for n in range(2)]
    sync_result = finish(syncer)
    done = sum(int(str(finish(r)["done"])) for r in racers)
    assert sync_result["empty"] is False
    # The cache holds exactly generation 2, and every reported change is in the audit log.
    expected = Context.open(db_url)
    data = export_data(expected)
    want = big_snapshot(20_000, 2)
    members = {g["id"]: len(g["members"]) for g in data["groups"]}
    assert members == {g.upstream_id: len(g.user_members) for g in want.groups}
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM audit_events")).scalar() == done
    expected.close()


def test_two_syncs_of_one_source_never_interleave(ctx: Context, db_url: str) -> None:
    prepared(ctx, users=300)
    first, second = start("sync", db_url, "20000", "2"), start("sync", db_url, "20000", "2")
    results = [finish(first), finish(second)]
    # One applied the change; the other waited and found nothing left to do.
    assert sorted(bool(r["empty"]) for r in results) == [False, True]
    assert run_sync(ctx, StaticSource(big_snapshot(20_000, 2))).diff.is_empty()


def test_a_writer_that_waits_too_long_gets_a_clear_message(ctx: Context, db_url: str, backend: str) -> None:
    """A writer blocked past the timeout fails with one clear line, never 'database is locked'."""
    prepared(ctx)
    grant(ctx, "g/eng", "prod/finance", "viewer")
    # A second process holds the write lock (SQLite) or the folder's row (PostgreSQL).
    holder = ctx.engine.connect()
    if backend == "sqlite":
        holder = holder.execution_options(sqlite_begin="IMMEDIATE")
    transaction = holder.begin()
    holder.execute(text("UPDATE folders SET summary = 'held' WHERE name = 'finance'"))
    original = (db.BUSY_TIMEOUT_MS, db.PG_LOCK_TIMEOUT_MS)
    db.BUSY_TIMEOUT_MS, db.PG_LOCK_TIMEOUT_MS = 300, 300
    try:
        waiting = Context.open(db_url)
        with pytest.raises(GroupwardenError) as info:
            grant(waiting, "g/eng", "prod/finance", "admin")
        waiting.close()
    finally:
        db.BUSY_TIMEOUT_MS, db.PG_LOCK_TIMEOUT_MS = original
        transaction.rollback()
        holder.close()
    message = str(info.value)
    assert message.startswith("the database is busy") and "nothing was changed" in message
    assert "locked" not in message
    assert [g.role.label for g in folder_grants(ctx, "prod/finance")] == ["viewer"]
