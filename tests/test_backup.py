"""Backup and restore: every table, audit history and sync runs included, across backends."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

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


def dump_of(org: Context, tmp_path: Path) -> dict[str, Any]:
    filled(org)
    write_backup(org, tmp_path / "good.json")
    return dict(json.loads((tmp_path / "good.json").read_text()))


def first_row(data: dict[str, Any], table: str) -> dict[str, Any]:
    dumped = data["tables"][table]
    return dict(zip(dumped["columns"], dumped["rows"][0], strict=True))


def set_field(data: dict[str, Any], table: str, row: int, field: str, value: object) -> None:
    dumped = data["tables"][table]
    dumped["rows"][row][dumped["columns"].index(field)] = value


def refused(store: Context, tmp_path: Path, data: dict[str, Any]) -> str:
    """Restore data into store; return the one-line refusal, having checked nothing was written."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(BadInput) as info:
        restore(store, bad)
    message = str(info.value)
    assert "\n" not in message and message.endswith("nothing was changed")
    tables = backup_data(store)["tables"]
    assert all(tables[name]["rows"] == [] for name in tables)
    return message


@pytest.mark.parametrize(
    ("table", "field", "value", "problem"),
    [
        ("grants", "role", "superadmin", '"superadmin" is not a role (viewer, writer, admin)'),
        ("users", "active", "yes", 'must be true or false, not "yes"'),
        ("audit_events", "at", "yesterday", 'must be an ISO 8601 time, not "yesterday"'),
        ("audit_events", "after", "owner", '"owner" is not a role (viewer, writer, admin)'),
        ("folders", "id", "1", 'must be an integer, not "1"'),
        ("users", "active", 1, "must be true or false, not 1"),
        ("grants", "folder_id", 999, "no row of folders has id 999"),
        ("users", "user_name", None, "is required"),
        ("grants", "principal_key", "g:999999", '"g:999999" does not match the grant\'s group_id or user_id'),
        ("folders", "name", "../etc", '"../etc" is not a valid folder name'),
        ("sync_runs", "diff", "[1]", "is not a JSON object"),
    ],
)
def test_restore_checks_every_row_before_writing_anything(
    org: Context,
    backend: str,
    other_store: Any,
    tmp_path: Path,
    table: str,
    field: str,
    value: object,
    problem: str,
) -> None:
    data = dump_of(org, tmp_path)
    set_field(data, table, 0, field, value)
    row_id = json.dumps(first_row(data, table)["id"])
    message = refused(other_store(backend), tmp_path, data)
    assert f"bad.json: table {table}, row 1 (id {row_id}), field {field}: {problem}; nothing" in message


def test_restore_refuses_unknown_tables_and_fields(
    org: Context, backend: str, other_store: Any, tmp_path: Path
) -> None:
    data = dump_of(org, tmp_path)
    store = other_store(backend)
    data["tables"]["evil"] = {"columns": ["id"], "rows": [[1]]}
    assert re.search(r"does not hold exactly the tables .* \(unknown: evil\)", refused(store, tmp_path, data))
    del data["tables"]["evil"]
    data["tables"]["users"]["columns"].append("is_root")
    for row in data["tables"]["users"]["rows"]:
        row.append(True)
    assert "table users has columns" in refused(store, tmp_path, data)


def test_restore_refuses_a_rewritten_or_shortened_audit_history(
    org: Context, backend: str, other_store: Any, tmp_path: Path
) -> None:
    data = dump_of(org, tmp_path)
    events = data["tables"]["audit_events"]
    ids = [row[0] for row in events["rows"]]
    store = other_store(backend)
    set_field(data, "audit_events", 1, "actor", "alice")
    assert f"audit history was altered: audit event {ids[1]}: its content does not match its hash" in (
        refused(store, tmp_path, data)
    )
    set_field(data, "audit_events", 1, "actor", "tester")
    del events["rows"][1]
    assert f"audit history was altered: audit event {ids[2]}: it does not follow the event before it" in (
        refused(store, tmp_path, data)
    )


def test_a_backup_of_schema_0004_restores_into_this_schema(
    org: Context, tmp_path: Path, other_store: Any
) -> None:
    # 0005 added only derived data (name skeletons), which a restore computes again.
    data = dump_of(org, tmp_path)
    data["schema"] = "0004"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    store = other_store("sqlite")
    counts = restore(store, old)
    assert counts["users"] == len(data["tables"]["users"]["rows"]) > 0
    assert backup_data(store)["tables"] == backup_data(org)["tables"]
    store.close()
