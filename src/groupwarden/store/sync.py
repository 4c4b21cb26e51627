"""The cached directory of one source, as a sync reads and rewrites it.

Users and groups come back as one row shape each, whether a reconcile compares them or
an incremental sync reads them back as the snapshot it merges onto. Memberships come and
go as packed pairs (bulk.pair_keys): a reconcile compares a million of them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, text, update

from groupwarden.domain.directory import SourceGroup, SourceUser
from groupwarden.domain.lookalike import skeleton
from groupwarden.store import bulk
from groupwarden.store.db import lock_name, refresh_statistics
from groupwarden.store.directory import NAME_COLUMNS, NAME_KINDS
from groupwarden.store.models import Group, User

DIRECTORY_TABLES = ("users", "instance_groups", "user_memberships", "group_memberships")

# What a user row holds besides its ids, in the order of user_values().
UserValues = tuple[str, str | None, str, bool, str | None]


def user_values(user: SourceUser) -> UserValues:
    """The stored form of a user: emails newline-separated, primary first."""
    return (user.user_name, user.display_name, "\n".join(user.emails), bool(user.active), user.raw_status)


class UserRow(NamedTuple):
    upstream_id: str
    id: int
    user_name: str
    display_name: str | None
    emails: str
    active: bool
    raw_status: str | None
    removed_at: datetime | None

    def matches(self, user: SourceUser) -> bool:
        """Whether the row already holds what the user would store (removal aside)."""
        stored = (self.user_name, self.display_name, self.emails, bool(self.active), self.raw_status)
        return stored == user_values(user)

    def source_user(self) -> SourceUser:
        return SourceUser(
            upstream_id=self.upstream_id,
            user_name=self.user_name,
            display_name=self.display_name,
            emails=self.emails.split("\n") if self.emails else [],
            active=bool(self.active),
            raw_status=self.raw_status,
        )


class GroupRow(NamedTuple):
    upstream_id: str
    id: int
    name: str
    description: str | None
    kind: str | None
    removed_at: datetime | None

    def matches(self, group: SourceGroup) -> bool:
        """Whether the row already holds the group's name, description and kind (removal aside)."""
        return (self.name, self.description, self.kind) == (group.name, group.description, group.kind)

    def source_group(self) -> SourceGroup:
        """The group without its members, which live in other tables."""
        return SourceGroup(
            upstream_id=self.upstream_id, name=self.name, description=self.description, kind=self.kind
        )


class UpstreamPair(NamedTuple):
    """A direct membership by upstream ids: a user or nested group inside a group."""

    group: str
    member: str


_USERS = (
    "SELECT upstream_id, id, user_name, display_name, emails, active, raw_status, removed_at"
    " FROM users WHERE source_id = :s"
)
_GROUPS = (
    "SELECT upstream_id, id, name, description, kind, removed_at FROM instance_groups WHERE source_id = :s"
)
_LIVE = " AND removed_at IS NULL"


def _select(
    conn: Connection, sql: str, source_id: int, upstream_ids: Collection[str] | None, order: str = ""
) -> Iterator[Sequence[Any]]:
    """Rows of sql for one source: all of them (in order, if given), or those of these upstream ids."""
    if upstream_ids is None:
        return iter(conn.execute(text(sql + order), {"s": source_id}))
    return bulk.select_in(conn, f"{sql} AND upstream_id IN :values", upstream_ids, {"s": source_id})


def user_rows(
    conn: Connection, source_id: int, upstream_ids: Collection[str] | None = None
) -> dict[str, UserRow]:
    """The source's users, removed ones included, by upstream id: all, or those of upstream_ids."""
    return {row[0]: UserRow._make(row) for row in _select(conn, _USERS, source_id, upstream_ids)}


def group_rows(
    conn: Connection, source_id: int, upstream_ids: Collection[str] | None = None
) -> dict[str, GroupRow]:
    """The source's groups, removed ones included, by upstream id: all, or those of upstream_ids."""
    return {row[0]: GroupRow._make(row) for row in _select(conn, _GROUPS, source_id, upstream_ids)}


def live_users(
    conn: Connection, source_id: int, upstream_ids: Collection[str] | None = None
) -> list[UserRow]:
    """The source's users not removed: all, in id order, or those of upstream_ids."""
    return [
        UserRow._make(row) for row in _select(conn, _USERS + _LIVE, source_id, upstream_ids, " ORDER BY id")
    ]


def live_groups(
    conn: Connection, source_id: int, upstream_ids: Collection[str] | None = None
) -> list[GroupRow]:
    """The source's groups not removed: all, in id order, or those of upstream_ids."""
    return [
        GroupRow._make(row) for row in _select(conn, _GROUPS + _LIVE, source_id, upstream_ids, " ORDER BY id")
    ]


def live_user_members(conn: Connection, source_id: int) -> Iterator[UpstreamPair]:
    """Direct user memberships between rows not removed, by upstream ids, in id order."""
    result = conn.execute(
        text(
            "SELECT g.upstream_id, u.upstream_id FROM user_memberships m"
            " JOIN instance_groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id"
            " WHERE g.source_id = :s AND g.removed_at IS NULL AND u.removed_at IS NULL"
            " ORDER BY m.group_id, m.user_id"
        ),
        {"s": source_id},
    )
    return (UpstreamPair._make(row) for row in result)


def live_group_members(conn: Connection, source_id: int) -> Iterator[UpstreamPair]:
    """Direct nestings between groups not removed, by upstream ids, in id order."""
    result = conn.execute(
        text(
            "SELECT p.upstream_id, c.upstream_id FROM group_memberships m"
            " JOIN instance_groups p ON p.id = m.parent_id JOIN instance_groups c ON c.id = m.child_id"
            " WHERE p.source_id = :s AND p.removed_at IS NULL AND c.removed_at IS NULL"
            " ORDER BY m.parent_id, m.child_id"
        ),
        {"s": source_id},
    )
    return (UpstreamPair._make(row) for row in result)


def user_member_keys(conn: Connection, source_id: int) -> set[int]:
    """Every (group, user) membership of the source's groups, packed."""
    return bulk.pair_keys(
        conn,
        "SELECT m.group_id, m.user_id FROM user_memberships m"
        " JOIN instance_groups g ON g.id = m.group_id WHERE g.source_id = :s",
        {"s": source_id},
    )


def group_member_keys(conn: Connection, source_id: int) -> set[int]:
    """Every (parent, child) nesting of the source's groups, packed."""
    return bulk.pair_keys(
        conn,
        "SELECT m.parent_id, m.child_id FROM group_memberships m"
        " JOIN instance_groups g ON g.id = m.parent_id WHERE g.source_id = :s",
        {"s": source_id},
    )


def _pairs_where(
    conn: Connection, table: str, columns: tuple[str, str], seconds: Collection[int], firsts: Collection[int]
) -> set[int]:
    """Packed pairs of table whose second column is in seconds, or whose first is in firsts."""
    pairs: set[int] = set()
    for column, values in ((columns[1], seconds), (columns[0], firsts)):
        sql = f"SELECT {columns[0]}, {columns[1]} FROM {table} WHERE {column} IN :values"
        pairs.update(a << 32 | b for a, b in bulk.select_in(conn, sql, values))
    return pairs


def user_member_keys_touching(
    conn: Connection, user_ids: Collection[int], group_ids: Collection[int]
) -> set[int]:
    """Packed (group, user) memberships of these users, or in these groups."""
    return _pairs_where(conn, "user_memberships", ("group_id", "user_id"), user_ids, group_ids)


def group_member_keys_touching(
    conn: Connection, child_ids: Collection[int], parent_ids: Collection[int]
) -> set[int]:
    """Packed (parent, child) nestings of these child groups, or in these parents."""
    return _pairs_where(conn, "group_memberships", ("parent_id", "child_id"), child_ids, parent_ids)


# `source_id + 0` keeps the (source_id, upstream_id) index out: through it SQLite visits
# the rows in upstream id order, at random, ten times slower than reading the table through.
def count_users(conn: Connection, source_id: int) -> int:
    """Users of the source not removed."""
    sql = "SELECT COUNT(*) FROM users WHERE removed_at IS NULL AND source_id + 0 = :s"
    return int(conn.execute(text(sql), {"s": source_id}).scalar_one())


def count_groups(conn: Connection, source_id: int) -> int:
    """Groups of the source not removed."""
    sql = "SELECT COUNT(*) FROM instance_groups WHERE removed_at IS NULL AND source_id + 0 = :s"
    return int(conn.execute(text(sql), {"s": source_id}).scalar_one())


def count_user_members(conn: Connection, source_id: int) -> int:
    """Direct user memberships of the source's groups."""
    sql = (
        "SELECT COUNT(*) FROM user_memberships m"
        " JOIN instance_groups g ON g.id = m.group_id WHERE g.source_id = :s"
    )
    return int(conn.execute(text(sql), {"s": source_id}).scalar_one())


def user_names(conn: Connection, ids: Collection[int]) -> dict[int, str]:
    """userName by row id."""
    rows = bulk.select_in(conn, "SELECT id, user_name FROM users WHERE id IN :values", ids)
    return {row[0]: row[1] for row in rows}


def group_names(conn: Connection, ids: Collection[int]) -> dict[int, str]:
    """Group name by row id."""
    rows = bulk.select_in(conn, "SELECT id, name FROM instance_groups WHERE id IN :values", ids)
    return {row[0]: row[1] for row in rows}


def new_user_ids(conn: Connection, count: int) -> list[int]:
    return bulk.allocate_ids(conn, "users", count)


def new_group_ids(conn: Connection, count: int) -> list[int]:
    return bulk.allocate_ids(conn, "instance_groups", count)


def insert_users(conn: Connection, source_id: int, ids: Sequence[int], users: Sequence[SourceUser]) -> None:
    bulk.insert_rows(
        conn,
        "users",
        (
            "id",
            "source_id",
            "upstream_id",
            "user_name",
            "display_name",
            "emails",
            "active",
            "raw_status",
            "skeleton",
        ),
        [
            (uid, source_id, u.upstream_id, *user_values(u), skeleton(u.user_name))
            for u, uid in zip(users, ids, strict=True)
        ],
    )


def insert_groups(
    conn: Connection, source_id: int, ids: Sequence[int], groups: Sequence[SourceGroup]
) -> None:
    bulk.insert_rows(
        conn,
        "instance_groups",
        ("id", "source_id", "upstream_id", "name", "description", "kind", "skeleton"),
        [
            (gid, source_id, g.upstream_id, g.name, g.description, g.kind, skeleton(g.name))
            for g, gid in zip(groups, ids, strict=True)
        ],
    )


def update_users(conn: Connection, changed: Sequence[tuple[int, SourceUser]]) -> None:
    """Rewrite these users' rows (by row id) from upstream, and clear any removal mark."""
    if not changed:
        return
    statement = (
        update(User)
        .where(User.id == bindparam("uid"))
        .values(
            user_name=bindparam("user_name"),
            display_name=bindparam("display_name"),
            emails=bindparam("emails"),
            active=bindparam("active"),
            raw_status=bindparam("raw_status"),
            skeleton=bindparam("skeleton"),
            removed_at=None,
        )
    )
    columns = ("user_name", "display_name", "emails", "active", "raw_status")
    conn.execute(
        statement,
        [
            {"uid": uid, "skeleton": skeleton(u.user_name), **dict(zip(columns, user_values(u), strict=True))}
            for uid, u in changed
        ],
    )


def update_groups(conn: Connection, changed: Sequence[tuple[int, SourceGroup]]) -> None:
    """Rewrite these groups' rows (by row id) from upstream, and clear any removal mark."""
    if not changed:
        return
    statement = (
        update(Group)
        .where(Group.id == bindparam("gid"))
        .values(
            name=bindparam("name"),
            description=bindparam("description"),
            kind=bindparam("kind"),
            skeleton=bindparam("skeleton"),
            removed_at=None,
        )
    )
    conn.execute(
        statement,
        [
            {
                "gid": gid,
                "name": g.name,
                "description": g.description,
                "kind": g.kind,
                "skeleton": skeleton(g.name),
            }
            for gid, g in changed
        ],
    )


def refresh_lookalikes(conn: Connection) -> None:
    """Rewrite lookalike_skeletons from the live names as this transaction sees them: after
    every write of names (a sync, a restore, the migration that brought the skeletons)."""
    # Two syncs of different sources on PostgreSQL: the second waits for the first to commit,
    # then reads its names too.
    lock_name(conn, "lookalike_skeletons")
    conn.execute(text("DELETE FROM lookalike_skeletons"))
    for table, column in NAME_COLUMNS.items():
        conn.execute(
            text(
                f"INSERT INTO lookalike_skeletons (kind, skeleton) SELECT '{NAME_KINDS[table]}', skeleton"
                f" FROM {table} WHERE removed_at IS NULL"
                f" GROUP BY skeleton HAVING MIN({column}) <> MAX({column})"
            )
        )


def mark_users_removed(conn: Connection, ids: Collection[int], now: datetime) -> None:
    if ids:
        statement = update(User).where(User.id == bindparam("uid")).values(removed_at=now)
        conn.execute(statement, [{"uid": uid} for uid in ids])


def mark_groups_removed(conn: Connection, ids: Collection[int], now: datetime) -> None:
    if ids:
        statement = update(Group).where(Group.id == bindparam("gid")).values(removed_at=now)
        conn.execute(statement, [{"gid": gid} for gid in ids])


def delete_user_members(conn: Connection, keys: Collection[int]) -> None:
    """Delete these packed (group, user) memberships."""
    bulk.delete_pairs(conn, "user_memberships", ("group_id", "user_id"), bulk.unpack_pairs(keys))


def delete_group_members(conn: Connection, keys: Collection[int]) -> None:
    """Delete these packed (parent, child) nestings."""
    bulk.delete_pairs(conn, "group_memberships", ("parent_id", "child_id"), bulk.unpack_pairs(keys))


def insert_user_members(conn: Connection, keys: Collection[int]) -> None:
    """Insert these packed (group, user) memberships."""
    bulk.insert_rows(conn, "user_memberships", ("group_id", "user_id"), bulk.unpack_pairs(keys))


def insert_group_members(conn: Connection, keys: Collection[int]) -> None:
    """Insert these packed (parent, child) nestings."""
    bulk.insert_rows(conn, "group_memberships", ("parent_id", "child_id"), bulk.unpack_pairs(keys))


def refresh_directory_statistics(engine: Engine) -> None:
    """Fresh planner statistics for the directory tables, after a sync that changed many rows."""
    refresh_statistics(engine, DIRECTORY_TABLES)
