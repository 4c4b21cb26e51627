"""A portable dump of the whole store, audit history and sync runs included, and its restore.

The dump is JSON with every table's rows in primary-key order and every time in UTC, so
a store backed up on SQLite and restored on PostgreSQL (or the other way) backs up again
to the same bytes.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Table, func, insert, select, text
from sqlalchemy.exc import DataError, IntegrityError

from groupwarden.domain.errors import BadInput, GroupwardenError
from groupwarden.services.context import Context
from groupwarden.store.db import HEAD_REVISION, write_transaction
from groupwarden.store.models import Base

FORMAT = "groupwarden-backup"
VERSION = 1
# Parents before children, so a restore satisfies every foreign key as it goes.
TABLES = [
    "sources",
    "users",
    "instance_groups",
    "user_memberships",
    "group_memberships",
    "windmill_instances",
    "workspaces",
    "folders",
    "grants",
    "windmill_users",
    "windmill_instance_groups",
    "windmill_instance_group_members",
    "windmill_workspace_groups",
    "windmill_workspace_group_members",
    "windmill_acl",
    "windmill_items",
    "windmill_auto_add",
    "audit_events",
    "sync_runs",
]

# Tables whose integer id comes from a sequence on PostgreSQL.
SEQUENCED = [
    "sources",
    "users",
    "instance_groups",
    "folders",
    "grants",
    "audit_events",
    "sync_runs",
    "windmill_instances",
    "windmill_instance_groups",
    "windmill_workspace_groups",
]


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _dump_value(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def backup_data(ctx: Context) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    with ctx.engine.connect() as conn, conn.begin():
        for name in TABLES:
            table = _table(name)
            columns = [c.name for c in table.columns]
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            tables[name] = {"columns": columns, "rows": [[_dump_value(v) for v in row] for row in rows]}
    return {"format": FORMAT, "version": VERSION, "schema": HEAD_REVISION, "tables": tables}


def write_backup(ctx: Context, path: Path) -> dict[str, int]:
    """Write the dump to path (owner-only, replaced atomically); return row counts per table."""
    data = backup_data(ctx)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, separators=(",", ":"))
            out.write("\n")
        tmp.replace(path)
    except OSError as exc:
        raise BadInput(f"cannot write backup {path}: {exc.strerror}") from None
    return {name: len(data["tables"][name]["rows"]) for name in TABLES}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read backup {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} is not a groupwarden backup: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInput(f"{path} is not a groupwarden backup")
    if data.get("version") != VERSION:
        raise BadInput(
            f"{path} is a backup of format version {data.get('version')}; this groupwarden"
            f" reads version {VERSION}"
        )
    if data.get("schema") != HEAD_REVISION:
        raise BadInput(
            f"{path} was made with schema {data.get('schema')}; this groupwarden has schema"
            f" {HEAD_REVISION}: restore it with the release that made it, upgrade, back up again"
        )
    tables = data.get("tables")
    if not isinstance(tables, dict) or set(tables) != set(TABLES):
        raise BadInput(f"{path}: the backup does not hold exactly the tables {', '.join(TABLES)}")
    for name in TABLES:
        expected = [c.name for c in _table(name).columns]
        if tables[name].get("columns") != expected:
            raise BadInput(
                f"{path}: table {name} has columns {tables[name].get('columns')}, expected {expected}"
            )
    return data


def _is_empty(conn: Connection) -> bool:
    return all(conn.execute(select(func.count()).select_from(_table(n))).scalar_one() == 0 for n in TABLES)


def restore(ctx: Context, path: Path) -> dict[str, int]:
    """Load a backup into an empty store, in one transaction; return row counts per table."""
    data = _read(path)
    ctx.require_writable("restoring a backup")
    loaded = {name: _rows_of(path, name, data["tables"][name]) for name in TABLES}
    counts: dict[str, int] = {}
    try:
        with write_transaction(ctx.engine) as conn:
            _load(conn, loaded, counts)
    except (IntegrityError, DataError) as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise BadInput(
            f"{path}: the backup's rows do not hold together ({first}); nothing was changed"
        ) from None
    return counts


def _rows_of(path: Path, name: str, dumped: dict[str, Any]) -> list[dict[str, Any]]:
    """One table's rows as dicts for insert, checked before anything is written."""
    columns = dumped["columns"]
    rows = dumped.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        raise BadInput(f"{path}: table {name} has rows that do not match its {len(columns)} columns")
    times = {c.name for c in _table(name).columns if isinstance(c.type, DateTime)}
    try:
        return [
            {
                col: (datetime.fromisoformat(v) if col in times and v is not None else v)
                for col, v in zip(columns, row, strict=True)
            }
            for row in rows
        ]
    except (TypeError, ValueError):
        raise BadInput(f"{path}: table {name} holds a time that is not an ISO 8601 date") from None


def _load(conn: Connection, loaded: dict[str, list[dict[str, Any]]], counts: dict[str, int]) -> None:
    if not _is_empty(conn):
        raise GroupwardenError(
            "refused: restore needs an empty database, and this one holds data; restore into a"
            " new database (--db) instead; nothing was changed"
        )
    for name in TABLES:
        table = _table(name)
        rows = loaded[name]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(table), rows[start : start + 5000])
        counts[name] = len(rows)
    if conn.dialect.name == "postgresql":
        # Rows came with their ids; move each sequence past them.
        for name in SEQUENCED:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                    f" COALESCE((SELECT MAX(id) FROM {name}), 1),"
                    f" (SELECT MAX(id) FROM {name}) IS NOT NULL)"
                )
            )
