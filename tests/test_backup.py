"""Backup and restore: every table, audit history and sync runs included, across backends."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from groupwarden.domain.errors import BadInput, GroupwardenError, ReadOnly
from groupwarden.services.backup import backup_data, restore, write_backup
from groupwarden.services.context import Context
from groupwarden.services.export import export_json
from groupwarden.services.layout import add_folder
from support import (
    BACKENDS,
    drop_pg_database,
    grant,
    new_pg_database,
    org_snapshot,
    pg_admin_url,
    revoke,
    sync_snapshot,
    who_can,
)


def filled(ctx: Context) -> None:
    from groupwarden.services.audit import record_run
    from groupwarden.store.db import write_transaction

    grant(ctx, "g/eng", "prod/finance", "writer")
    grant(ctx, "u/alice", "prod/finance", "admin")
    grant(ctx, "g/finance", "prod/f/finance/payroll", "viewer")
    grant(ctx, "g/cycle-a", "prod/infra", "viewer")
    revoke(ctx, "g/cycle-a", "prod/infra")
    add_folder(ctx, "prod", "empty_one", "nothing here — ünïcode 漢字")
    snapshot = org_snapshot()
    snapshot.groups = [g for g in snapshot.groups if g.name != "finance"]
    sync_snapshot(ctx, snapshot)  # leaves an orphaned grant
    with write_transaction(ctx.engine) as conn:
        record_run(
            conn,
            source_name="corp",
            actor=ctx.actor,
            now=ctx.clock(),
            started_at=ctx.clock(),
            outcome="ok",
            diff={"groups_removed": ["finance"]},
        )


@pytest.fixture
def other_store(tmp_path: Path, request: pytest.FixtureRequest) -> object:
    """A factory of empty stores on each backend available."""
    made: list[str] = []

    def make(backend: str) -> Context:
        if backend == "sqlite":
            return Context.open(str(tmp_path / f"restored-{len(made)}.db"))
        name = new_pg_database(request.getfixturevalue("pg_template"))
        made.append(name)
        return Context.open(pg_admin_url(name))

    yield make
    for name in made:
        drop_pg_database(name)


@pytest.mark.parametrize("target", BACKENDS)
def test_backup_restores_to_the_same_bytes_on_every_backend(
    org: Context, target: str, other_store: object, tmp_path: Path
) -> None:
    filled(org)
    dump = tmp_path / "backup.json"
    counts = write_backup(org, dump)
    assert counts["audit_events"] == 5 and counts["sync_runs"] == 1 and counts["grants"] == 3
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    restored = other_store(target)  # type: ignore[operator]
    assert restore(restored, dump) == counts
    again = tmp_path / "again.json"
    write_backup(restored, again)
    assert again.read_bytes() == dump.read_bytes()
    assert export_json(restored) == export_json(org)
    # The restored store works: new rows get fresh ids, queries answer the same.
    grant(restored, "g/eng", "prod/infra", "viewer")
    assert [a.user_name for a in who_can(restored, "prod/infra")] == ["alice", "bob", "dan"]
    restored.close()


def test_restore_refuses_a_store_that_holds_data(org: Context, tmp_path: Path) -> None:
    dump = tmp_path / "backup.json"
    write_backup(org, dump)
    before = backup_data(org)
    with pytest.raises(GroupwardenError, match="empty database"):
        restore(org, dump)
    assert backup_data(org) == before


def test_restore_refuses_bad_files_and_read_only(ctx: Context, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for content in (
        "not json",
        json.dumps({"format": "other"}),
        json.dumps({"format": "groupwarden-backup", "version": 1, "schema": "9999"}),
    ):
        bad.write_text(content)
        with pytest.raises(BadInput):
            restore(ctx, bad)
    with pytest.raises(BadInput):
        restore(ctx, tmp_path / "missing.json")
    good = tmp_path / "good.json"
    write_backup(ctx, good)
    ctx.read_only = True
    with pytest.raises(ReadOnly):
        restore(ctx, good)
