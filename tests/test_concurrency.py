"""Several processes at once: no lost update, no interleaved sync, no 'database is locked'."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from groupwarden.domain.audit_chain import ChainCheck
from groupwarden.domain.errors import GroupwardenError
from groupwarden.services import resolve
from groupwarden.services.audit import verify_chain
from groupwarden.services.context import Context
from groupwarden.services.export import export_data
from groupwarden.services.grants import apply_grant
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.services.sync import run_sync
from groupwarden.store import db
from groupwarden.store.db import write_transaction
from support import folder_grants, grant, sync_snapshot
from workers import StaticSource, big_snapshot

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

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
    assert verify_chain(ctx) == ChainCheck(done, None)


def test_role_changes_on_different_folders_at_once_keep_one_audit_chain(ctx: Context, db_url: str) -> None:
    """No folder lock orders these changes: the audit chain's own lock must, or two events
    would link to the same predecessor."""
    prepared(ctx)
    for n in range(3):
        add_folder(ctx, "prod", f"team{n}")
    workers = [start("race", db_url, f"admin{n}", "40", f"prod/team{n}") for n in range(3)]
    done = sum(int(str(finish(w)["done"])) for w in workers)
    assert done == 120
    assert verify_chain(ctx) == ChainCheck(120, None)


def test_a_change_of_several_folders_and_a_single_change_never_deadlock(
    org: Context, db_url: str, backend: str
) -> None:
    """Every role change takes the audit chain's lock before any folder's row lock.

    A takes prod/finance, then wants prod/infra; B changes prod/infra meanwhile. Had B locked
    prod/infra before waiting for the chain A holds, PostgreSQL would abort one as a deadlock.
    """
    other = Context.open(db_url)
    other.actor = org.actor
    outcome: dict[str, object] = {}

    def single() -> None:
        try:
            outcome["b"] = grant(other, "u/alice", "prod/infra", "writer")
        except Exception as exc:  # reported below, with the main thread's view
            outcome["b"] = exc

    with write_transaction(org.engine) as conn:
        eng = resolve.principal_in(conn, "g/eng")
        apply_grant(org, conn, eng, resolve.target_in(conn, "prod/finance"), "viewer")
        racer = threading.Thread(target=single)
        racer.start()
        if backend == "postgresql":
            waiting_for_a_lock(org.engine)
        apply_grant(org, conn, eng, resolve.target_in(conn, "prod/infra"), "viewer")
    racer.join()
    other.close()
    assert not isinstance(outcome["b"], Exception), outcome["b"]
    assert {(g.principal, g.role.label) for g in folder_grants(org, "prod/infra")} == {
        ("g/eng", "viewer"),
        ("u/alice", "writer"),
    }
    assert verify_chain(org) == ChainCheck(3, None)


def waiting_for_a_lock(engine: Engine) -> None:
    """Return once another session waits for a lock (polls pg_locks; gives up after 30 s)."""
    with engine.connect() as watcher:
        for _ in range(3000):
            if watcher.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one():
                return
            watcher.rollback()
            time.sleep(0.01)
    raise AssertionError("the second change never waited for a lock")


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
