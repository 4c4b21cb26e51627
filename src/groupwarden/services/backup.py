"""A portable dump of the whole store, audit history and sync runs included, and its restore.

The dump is JSON with every table's rows in primary-key order and every time in UTC, so
a store backed up on SQLite and restored on PostgreSQL (or the other way) backs up again
to the same bytes. A restore trusts nothing in the file: every row is checked against the
schema's rules, and the audit chain verified, before anything is written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError

from groupwarden.domain.audit_chain import ChainedEvent, check_chain
from groupwarden.domain.errors import BadInput, GroupwardenError, Hint, Remedy
from groupwarden.domain.principals import check_folder_name, check_workspace_id
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.services.files import write_private
from groupwarden.store import backup as store
from groupwarden.store.backup import TABLES, ColumnRule
from groupwarden.store.db import HEAD_REVISION, write_transaction
from groupwarden.store.sync import refresh_lookalikes

FORMAT = "groupwarden-backup"
VERSION = 1

ROLES = {role.label for role in Role}
ACTIONS = {"grant", "change", "revoke"}
OUTCOMES = {"ok", "failed", "refused"}


def _dump_value(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def backup_data(ctx: Context) -> dict[str, Any]:
    tables: dict[str, Any] = {}
    with ctx.engine.connect() as conn, conn.begin():
        for name in TABLES:
            columns = [rule.name for rule in store.column_rules(name)]
            rows = store.dump_rows(conn, name)
            tables[name] = {"columns": columns, "rows": [[_dump_value(v) for v in row] for row in rows]}
    return {"format": FORMAT, "version": VERSION, "schema": HEAD_REVISION, "tables": tables}


def write_backup(ctx: Context, path: Path) -> dict[str, int]:
    """Write the dump to path (owner-only, replaced atomically); return row counts per table."""
    data = backup_data(ctx)

    def write(out: Any) -> None:
        json.dump(data, out, ensure_ascii=False, separators=(",", ":"))
        out.write("\n")

    write_private(path, "backup", write)
    return {name: len(data["tables"][name]["rows"]) for name in TABLES}


# Schemas whose backups hold exactly this schema's tables and columns: 0005 added only what a
# restore computes again (skeletons, the clashing ones).
RESTORABLE_SCHEMAS = ("0004", HEAD_REVISION)


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
    if data.get("schema") not in RESTORABLE_SCHEMAS:
        raise BadInput(
            f"{path} was made with schema {data.get('schema')}; this groupwarden has schema"
            f" {HEAD_REVISION}: restore it with the release that made it, upgrade, back up again"
        )
    tables = data.get("tables")
    if not isinstance(tables, dict) or set(tables) != set(TABLES):
        unknown = sorted(set(tables) - set(TABLES)) if isinstance(tables, dict) else []
        extra = f" (unknown: {', '.join(map(str, unknown))})" if unknown else ""
        raise BadInput(
            f"{path}: the backup does not hold exactly the tables {', '.join(TABLES)}{extra};"
            " nothing was changed"
        )
    for name in TABLES:
        expected = [rule.name for rule in store.column_rules(name)]
        dumped = tables[name]
        if not isinstance(dumped, dict) or dumped.get("columns") != expected:
            columns = dumped.get("columns") if isinstance(dumped, dict) else None
            raise BadInput(
                f"{path}: table {name} has columns {columns}, expected {expected}; nothing was changed"
            )
    return data


def restore(ctx: Context, path: Path) -> dict[str, int]:
    """Load a backup into an empty store, in one transaction; return row counts per table."""
    data = _read(path)
    ctx.require_writable("restoring a backup")
    loaded = {name: _rows_of(path, name, data["tables"][name]) for name in TABLES}
    _check_references(path, loaded)
    _check_audit_chain(path, loaded["audit_events"])
    counts: dict[str, int] = {}
    try:
        with write_transaction(ctx.engine) as conn:
            if not store.is_empty(conn):
                raise GroupwardenError(
                    "refused: restore needs an empty database, and this one holds data; nothing was changed",
                    hint=Hint(Remedy.NEW_DATABASE),
                )
            for name in TABLES:
                store.load_rows(conn, name, loaded[name])
                counts[name] = len(loaded[name])
            refresh_lookalikes(conn)
    except (IntegrityError, DataError) as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise BadInput(
            f"{path}: the backup's rows do not hold together ({first}); nothing was changed"
        ) from None
    return counts


class _BadValue(Exception):
    """One field of one row breaks a rule; the caller says which row."""


def _show(value: object) -> str:
    shown = json.dumps(value, ensure_ascii=True)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _where(path: Path, name: str, index: int, row: dict[str, Any] | None = None) -> str:
    """'FILE: table T, row N (id 7)': the row counted from 1, named by its primary key."""
    if row is None:
        return f"{path}: table {name}, row {index}"
    key = ", ".join(f"{col} {_show(row.get(col))}" for col in store.primary_key(name))
    return f"{path}: table {name}, row {index} ({key})"


def _rows_of(path: Path, name: str, dumped: dict[str, Any]) -> list[dict[str, Any]]:
    """One table's rows as dicts for insert, each field checked before anything is written."""
    rules = store.column_rules(name)
    rows = dumped.get("rows")
    if not isinstance(rows, list):
        raise BadInput(f"{path}: table {name} has no list of rows; nothing was changed")
    out: list[dict[str, Any]] = []
    for index, row in enumerate(rows, 1):
        if not isinstance(row, list) or len(row) != len(rules):
            raise BadInput(
                f"{_where(path, name, index)}: its values do not match the table's {len(rules)}"
                " columns; nothing was changed"
            )
        raw = {rule.name: value for rule, value in zip(rules, row, strict=True)}
        record: dict[str, Any] = {}
        for rule in rules:
            try:
                record[rule.name] = _field(rule, raw[rule.name])
                _domain_rule(name, rule.name, record[rule.name], raw)
            except _BadValue as exc:
                raise BadInput(
                    f"{_where(path, name, index, raw)}, field {rule.name}: {exc}; nothing was changed"
                ) from None
        out.append(record)
    return out


def _field(rule: ColumnRule, value: Any) -> Any:
    """The value as the store takes it, if the column's type and constraints allow it."""
    if value is None:
        if not rule.nullable:
            raise _BadValue("is required")
        return None
    if rule.kind == "integer":
        if type(value) is not int:
            raise _BadValue(f"must be an integer, not {_show(value)}")
        return value
    if rule.kind == "boolean":
        if type(value) is not bool:
            raise _BadValue(f"must be true or false, not {_show(value)}")
        return value
    if not isinstance(value, str):
        raise _BadValue(f"must be a string, not {_show(value)}")
    if rule.kind == "datetime":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise _BadValue(f"must be an ISO 8601 time, not {_show(value)}") from None
    if rule.max_length is not None and len(value) > rule.max_length:
        raise _BadValue(f"is longer than {rule.max_length} characters")
    return value


def _domain_rule(table: str, column: str, value: Any, row: dict[str, Any]) -> None:
    """The rules beyond the column types: the values the rest of groupwarden relies on."""
    if value is None:
        return
    if (table, column) in (("grants", "role"), ("audit_events", "before"), ("audit_events", "after")):
        if value not in ROLES:
            raise _BadValue(f"{_show(value)} is not a role (viewer, writer, admin)")
    elif (table, column) == ("audit_events", "action") and value not in ACTIONS:
        raise _BadValue(f"{_show(value)} is not an action (grant, change, revoke)")
    elif (table, column) == ("sync_runs", "outcome") and value not in OUTCOMES:
        raise _BadValue(f"{_show(value)} is not an outcome (ok, failed, refused)")
    elif (table, column) == ("sync_runs", "diff"):
        try:
            diff = json.loads(value)
        except json.JSONDecodeError:
            diff = None
        if not isinstance(diff, dict):
            raise _BadValue("is not a JSON object")
    elif (table, column) == ("grants", "principal_key"):
        group, user = row.get("group_id"), row.get("user_id")
        if (group is None) == (user is None):
            raise _BadValue("a grant names exactly one of group_id and user_id")
        if value != (f"g:{group}" if group is not None else f"u:{user}"):
            raise _BadValue(f"{_show(value)} does not match the grant's group_id or user_id")
    elif (table, column) in (("workspaces", "id"), ("folders", "name")):
        try:
            (check_workspace_id if table == "workspaces" else check_folder_name)(value)
        except BadInput:
            raise _BadValue(f"{_show(value)} is not a valid {table[:-1]} name") from None


def _check_references(path: Path, loaded: dict[str, list[dict[str, Any]]]) -> None:
    """Primary keys unique, and every foreign key pointing at a row the file holds."""
    keys: dict[tuple[str, str], set[Any]] = defaultdict(set)
    referenced = {rule.references for name in TABLES for rule in store.column_rules(name) if rule.references}
    for name in TABLES:
        primary = store.primary_key(name)
        seen: set[tuple[Any, ...]] = set()
        references = [rule for rule in store.column_rules(name) if rule.references]
        for index, row in enumerate(loaded[name], 1):
            key = tuple(row[col] for col in primary)
            if key in seen:
                raise BadInput(
                    f"{_where(path, name, index, row)}, field {primary[0]}: a second row with this key;"
                    " nothing was changed"
                )
            seen.add(key)
            for rule in references:
                value = row[rule.name]
                assert rule.references is not None
                if value is not None and value not in keys[rule.references]:
                    table, column = rule.references
                    raise BadInput(
                        f"{_where(path, name, index, row)}, field {rule.name}: no row of {table} has"
                        f" {column} {_show(value)}; nothing was changed"
                    )
        for table, column in referenced:
            if table == name:
                keys[(table, column)] = {row[column] for row in loaded[name]}


def _check_audit_chain(path: Path, events: list[dict[str, Any]]) -> None:
    ordered = sorted(events, key=lambda row: int(row["id"]))
    check = check_chain(ChainedEvent(e["id"], e["prev_hash"], e["event_hash"], e) for e in ordered)
    if check.broken is not None:
        raise BadInput(f"{path}: the audit history was altered: {check.broken}; nothing was changed")
