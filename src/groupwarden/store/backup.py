"""Whole-table reads and writes for backup and restore, and the schema's rules a restore
checks each row against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Boolean, Connection, DateTime, Integer, String, Table, func, insert, select, text

from groupwarden.domain.lookalike import skeleton
from groupwarden.store.directory import NAME_COLUMNS
from groupwarden.store.models import Base

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


class ColumnRule(NamedTuple):
    """What the schema allows in one column."""

    name: str
    kind: str  # "integer", "boolean", "datetime" or "text"
    nullable: bool
    max_length: int | None
    # (table, column) this column refers to, or None.
    references: tuple[str, str] | None


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _kind(column: Any) -> str:
    if isinstance(column.type, Boolean):
        return "boolean"
    if isinstance(column.type, Integer):
        return "integer"
    if isinstance(column.type, DateTime):
        return "datetime"
    return "text"


def _dumped_columns(name: str) -> list[Any]:
    # A derived column (a name's skeleton) is computed again on restore, never trusted from a file.
    return [c for c in _table(name).columns if not c.info.get("derived")]


def column_rules(name: str) -> list[ColumnRule]:
    """Each column a backup holds of a table, in the table's order, with the rules the schema sets for it."""
    rules = []
    for column in _dumped_columns(name):
        foreign = next(iter(column.foreign_keys), None)
        rules.append(
            ColumnRule(
                column.name,
                _kind(column),
                bool(column.nullable),
                column.type.length if isinstance(column.type, String) else None,
                None if foreign is None else (foreign.column.table.name, foreign.column.name),
            )
        )
    return rules


def primary_key(name: str) -> list[str]:
    return [c.name for c in _table(name).primary_key.columns]


def dump_rows(conn: Connection, name: str) -> list[Sequence[Any]]:
    """Every row of a table, in primary-key order, its dumped columns in the table's order."""
    table = _table(name)
    query = select(*_dumped_columns(name)).order_by(*table.primary_key.columns)
    return [tuple(r) for r in conn.execute(query)]


def is_empty(conn: Connection) -> bool:
    return all(conn.execute(select(func.count()).select_from(_table(n))).scalar_one() == 0 for n in TABLES)


def load_rows(conn: Connection, name: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows that carry their own ids (and compute their derived columns); on PostgreSQL
    move the id sequence past them."""
    table = _table(name)
    named = NAME_COLUMNS.get(name)
    if named is not None:
        rows = [{**row, "skeleton": skeleton(row[named])} for row in rows]
    for start in range(0, len(rows), 5000):
        conn.execute(insert(table), rows[start : start + 5000])
    if conn.dialect.name == "postgresql" and name in SEQUENCED:
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                f" COALESCE((SELECT MAX(id) FROM {name}), 1),"
                f" (SELECT MAX(id) FROM {name}) IS NOT NULL)"
            )
        )
