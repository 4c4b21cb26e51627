"""The cached directory of one source, read back as the Snapshot a sync would have produced.

A SCIM incremental sync merges its changes onto the whole of it; a Graph delta round
reads back only the rows its changes name.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection

from groupwarden.domain.directory import Snapshot, SourceGroup
from groupwarden.store import sources
from groupwarden.store import sync as cache


def cached_snapshot(conn: Connection, source_name: str) -> Snapshot:
    """Users, groups and direct memberships of a source as they stand in the cache.

    Rows marked removed are left out: upstream they are gone.
    """
    source_id = sources.find_source_id(conn, source_name)
    if source_id is None:
        return Snapshot(users=[], groups=[])
    users = [row.source_user() for row in cache.live_users(conn, source_id)]
    groups: dict[str, SourceGroup] = {
        row.upstream_id: row.source_group() for row in cache.live_groups(conn, source_id)
    }
    for pair in cache.live_user_members(conn, source_id):
        groups[pair.group].user_members.append(pair.member)
    for pair in cache.live_group_members(conn, source_id):
        groups[pair.group].group_members.append(pair.member)
    return Snapshot(users=users, groups=list(groups.values()))


def cached_rows(
    conn: Connection, source_name: str, user_ids: Collection[str], group_ids: Collection[str]
) -> Snapshot:
    """Only the cached users and groups of a source with these upstream ids; groups without members.

    Rows marked removed are left out, as in cached_snapshot.
    """
    source_id = sources.find_source_id(conn, source_name)
    if source_id is None:
        return Snapshot(users=[], groups=[])
    users = [row.source_user() for row in cache.live_users(conn, source_id, user_ids)]
    groups = [row.source_group() for row in cache.live_groups(conn, source_id, group_ids)]
    return Snapshot(users=users, groups=groups)
