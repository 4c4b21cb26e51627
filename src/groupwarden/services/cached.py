"""The cached directory of one source, read back as the Snapshot a sync would have produced.

Incremental syncs apply their changes onto this, so the reconcile still gets a whole
listing; and the cursor of the last successful sync is kept next to it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, text, update

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.store.models import Source


def cached_snapshot(conn: Connection, source_name: str) -> Snapshot:
    """Users, groups and direct memberships of a source as they stand in the cache.

    Rows marked removed are left out: upstream they are gone.
    """
    source_id = conn.execute(select(Source.id).where(Source.name == source_name)).scalar_one_or_none()
    if source_id is None:
        return Snapshot(users=[], groups=[])
    params = {"s": source_id}
    users = [
        SourceUser(
            upstream_id=row[0],
            user_name=row[1],
            display_name=row[2],
            emails=row[3].split("\n") if row[3] else [],
            active=bool(row[4]),
            raw_status=row[5],
        )
        for row in conn.execute(
            text(
                "SELECT upstream_id, user_name, display_name, emails, active, raw_status FROM users"
                " WHERE source_id = :s AND removed_at IS NULL ORDER BY id"
            ),
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


def sync_state(conn: Connection, source_name: str) -> tuple[str | None, datetime | None]:
    """The cursor the last successful sync stored, and when that sync ran."""
    row = conn.execute(
        select(Source.sync_state, Source.last_sync_at).where(Source.name == source_name)
    ).one_or_none()
    return (row[0], row[1]) if row is not None else (None, None)


def store_sync_state(conn: Connection, source_name: str, state: str | None) -> None:
    conn.execute(update(Source).where(Source.name == source_name).values(sync_state=state))
