"""The cached directory of one source, read back as the Snapshot a sync would have produced.

A SCIM incremental sync merges its changes onto the whole of it; a Graph delta round
reads back only the rows its changes name. The cursor of the last successful sync is
kept next to it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, text, update

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.store.bulk import select_in
from groupwarden.store.models import Source

USER_COLUMNS = "upstream_id, user_name, display_name, emails, active, raw_status"


def _user(row: Sequence[Any]) -> SourceUser:
    return SourceUser(
        upstream_id=row[0],
        user_name=row[1],
        display_name=row[2],
        emails=row[3].split("\n") if row[3] else [],
        active=bool(row[4]),
        raw_status=row[5],
    )


def _source_id(conn: Connection, source_name: str) -> int | None:
    return conn.execute(select(Source.id).where(Source.name == source_name)).scalar_one_or_none()


def cached_snapshot(conn: Connection, source_name: str) -> Snapshot:
    """Users, groups and direct memberships of a source as they stand in the cache.

    Rows marked removed are left out: upstream they are gone.
    """
    source_id = _source_id(conn, source_name)
    if source_id is None:
        return Snapshot(users=[], groups=[])
    params = {"s": source_id}
    users = [
        _user(row)
        for row in conn.execute(
            text(f"SELECT {USER_COLUMNS} FROM users WHERE source_id = :s AND removed_at IS NULL ORDER BY id"),
            params,
        )
    ]
    groups: dict[str, SourceGroup] = {}
    for row in conn.execute(
        text(
            "SELECT upstream_id, name, description, kind FROM instance_groups"
            " WHERE source_id = :s AND removed_at IS NULL ORDER BY id"
        ),
        params,
    ):
        groups[row[0]] = SourceGroup(upstream_id=row[0], name=row[1], description=row[2], kind=row[3])
    for group_upstream, user_upstream in conn.execute(
        text(
            "SELECT g.upstream_id, u.upstream_id FROM user_memberships m"
            " JOIN instance_groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id"
            " WHERE g.source_id = :s AND g.removed_at IS NULL AND u.removed_at IS NULL"
            " ORDER BY m.group_id, m.user_id"
        ),
        params,
    ):
        groups[group_upstream].user_members.append(user_upstream)
    for parent_upstream, child_upstream in conn.execute(
        text(
            "SELECT p.upstream_id, c.upstream_id FROM group_memberships m"
            " JOIN instance_groups p ON p.id = m.parent_id JOIN instance_groups c ON c.id = m.child_id"
            " WHERE p.source_id = :s AND p.removed_at IS NULL AND c.removed_at IS NULL"
            " ORDER BY m.parent_id, m.child_id"
        ),
        params,
    ):
        groups[parent_upstream].group_members.append(child_upstream)
    return Snapshot(users=users, groups=list(groups.values()))


def cached_rows(
    conn: Connection, source_name: str, user_ids: Collection[str], group_ids: Collection[str]
) -> Snapshot:
    """Only the cached users and groups of a source with these upstream ids; groups without members.

    Rows marked removed are left out, as in cached_snapshot.
    """
    source_id = _source_id(conn, source_name)
    if source_id is None:
        return Snapshot(users=[], groups=[])
    params = {"s": source_id}
    users = [
        _user(row)
        for row in select_in(
            conn,
            f"SELECT {USER_COLUMNS} FROM users"
            " WHERE source_id = :s AND removed_at IS NULL AND upstream_id IN :values",
            user_ids,
            params,
        )
    ]
    groups = [
        SourceGroup(upstream_id=row[0], name=row[1], description=row[2], kind=row[3])
        for row in select_in(
            conn,
            "SELECT upstream_id, name, description, kind FROM instance_groups"
            " WHERE source_id = :s AND removed_at IS NULL AND upstream_id IN :values",
            group_ids,
            params,
        )
    ]
    return Snapshot(users=users, groups=groups)


def sync_state(conn: Connection, source_name: str) -> tuple[str | None, datetime | None]:
    """The cursor the last successful sync stored, and when that sync ran."""
    row = conn.execute(
        select(Source.sync_state, Source.last_sync_at).where(Source.name == source_name)
    ).one_or_none()
    return (row[0], row[1]) if row is not None else (None, None)


def store_sync_state(conn: Connection, source_name: str, state: str | None) -> None:
    conn.execute(update(Source).where(Source.name == source_name).values(sync_state=state))
