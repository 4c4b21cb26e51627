"""Reads of the directory cache: groups, users, memberships and nesting."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from groupwarden.domain.refs import GroupRef, UserRef
from groupwarden.store import bulk


def find_groups(conn: Connection, name: str, *, include_removed: bool) -> list[GroupRef]:
    """Groups whose name or upstream id is name, by source and upstream id."""
    rows = conn.execute(
        text(
            "SELECT g.id, g.name, g.upstream_id, s.name AS source, g.removed_at FROM instance_groups g"
            " JOIN sources s ON s.id = g.source_id"
            " WHERE (g.name = :n OR g.upstream_id = :n)"
            + ("" if include_removed else " AND g.removed_at IS NULL")
            + " ORDER BY s.name, g.upstream_id"
        ),
        {"n": name},
    )
    return [GroupRef(r.id, r.name, r.upstream_id, r.source, r.removed_at is not None) for r in rows]


def find_users(conn: Connection, name: str, *, include_removed: bool) -> list[UserRef]:
    """Users whose userName or upstream id is name, by source and upstream id."""
    rows = conn.execute(
        text(
            "SELECT u.id, u.user_name, u.upstream_id, s.name AS source, u.removed_at FROM users u"
            " JOIN sources s ON s.id = u.source_id"
            " WHERE (u.user_name = :n OR u.upstream_id = :n)"
            + ("" if include_removed else " AND u.removed_at IS NULL")
            + " ORDER BY s.name, u.upstream_id"
        ),
        {"n": name},
    )
    return [UserRef(r.id, r.user_name, r.upstream_id, r.source, r.removed_at is not None) for r in rows]


def is_live(conn: Connection, table: str, row_id: int) -> bool:
    """Whether the group or user (table instance_groups or users) exists and is not removed."""
    assert table in ("instance_groups", "users")
    found = conn.execute(
        text(f"SELECT 1 FROM {table} WHERE id = :id AND removed_at IS NULL"), {"id": row_id}
    ).first()
    return found is not None


# The name column of each table whose rows keep the skeleton of their name, and the kind of
# name it holds in lookalike_skeletons.
NAME_COLUMNS = {"users": "user_name", "instance_groups": "name"}
NAME_KINDS = {"users": "u", "instance_groups": "g"}


def lookalike_names(conn: Connection, table: str, names: Collection[str] | None) -> list[tuple[str, str]]:
    """(skeleton, name) of every distinct live name (users or instance_groups) whose skeleton
    another, different live name shares; with names, only those sharing the stored skeleton
    of one of names.

    Every clash costs a lookup in lookalike_skeletons; a few names, a lookup each by name and by
    skeleton (no skeleton is computed here: the rows keep theirs).
    """
    column = NAME_COLUMNS[table]
    live = f"SELECT DISTINCT skeleton, {column} FROM {table} WHERE removed_at IS NULL"
    if names is None:
        clashing = f"SELECT skeleton FROM lookalike_skeletons WHERE kind = '{NAME_KINDS[table]}'"
        rows: list[Any] = bulk.fetch_rows(conn, f"{live} AND skeleton IN ({clashing})")
    else:
        named = f"SELECT skeleton FROM {table} WHERE {column} IN :values"
        rows = list(bulk.select_in(conn, f"{live} AND skeleton IN ({named})", names))
    by_skeleton: dict[str, set[str]] = defaultdict(set)
    for shape, name in rows:
        by_skeleton[shape].add(name)
    return [
        (shape, name)
        for shape, names_alike in by_skeleton.items()
        if len(names_alike) > 1
        for name in names_alike
    ]


def nested_children(conn: Connection) -> dict[int, list[int]]:
    """group id -> the groups nested directly in it."""
    children: dict[int, list[int]] = defaultdict(list)
    for parent, child in conn.exec_driver_sql("SELECT parent_id, child_id FROM group_memberships"):
        children[parent].append(child)
    return children


class GroupListing(NamedTuple):
    id: int
    name: str
    upstream_id: str
    source: str
    description: str | None
    kind: str | None
    last_synced: datetime | None


def live_groups(conn: Connection, limit: int | None) -> list[GroupListing]:
    """Live groups by name (any case first), then source and upstream id; the first limit of them."""
    rows = conn.execute(
        text(
            "SELECT g.id, g.name, g.upstream_id, s.name, g.description, g.kind, s.last_sync_at"
            " FROM instance_groups g JOIN sources s ON s.id = g.source_id"
            " WHERE g.removed_at IS NULL ORDER BY lower(g.name), g.name, s.name, g.upstream_id"
            + ("" if limit is None else f" LIMIT {int(limit)}")
        )
    )
    return [GroupListing(r[0], r[1], r[2], r[3], r[4], r[5], _as_datetime(r[6])) for r in rows]


def _as_datetime(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def count_live_groups(conn: Connection) -> int:
    return int(
        conn.execute(text("SELECT COUNT(*) FROM instance_groups WHERE removed_at IS NULL")).scalar_one()
    )


def _id_filter(column: str, ids: Collection[int] | None) -> str:
    if ids is None:
        return ""
    return f" AND {column} IN ({', '.join(str(int(i)) for i in sorted(ids)) or 'NULL'})"


def direct_member_counts(conn: Connection, ids: Collection[int] | None) -> dict[int, int]:
    """group id -> how many users are its direct members, for ids (None: every group)."""
    rows = conn.execute(
        text(
            "SELECT group_id, COUNT(*) FROM user_memberships WHERE 1 = 1"
            + _id_filter("group_id", ids)
            + " GROUP BY group_id"
        )
    )
    return {int(gid): int(n) for gid, n in rows}


def grant_counts(conn: Connection, ids: Collection[int] | None) -> dict[int, int]:
    """group id -> how many grants name it, for ids (None: every group)."""
    rows = conn.execute(
        text(
            "SELECT group_id, COUNT(*) FROM grants WHERE group_id IS NOT NULL"
            + _id_filter("group_id", ids)
            + " GROUP BY group_id"
        )
    )
    return {int(gid): int(n) for gid, n in rows}


def distinct_members(conn: Connection, group_ids: Collection[int]) -> int:
    """How many distinct users are direct members of any of group_ids, counted by the database."""
    listed = ", ".join(str(int(g)) for g in sorted(group_ids)) or "NULL"
    found = conn.exec_driver_sql(
        f"SELECT COUNT(DISTINCT user_id) FROM user_memberships WHERE group_id IN ({listed})"
    ).scalar_one()
    return int(found)


class MemberUser(NamedTuple):
    id: int
    user_name: str
    display_name: str | None
    emails: str | None
    active: bool


_MEMBER_COLUMNS = "SELECT u.id, u.user_name, u.display_name, u.emails, u.active"


def _member_user(row: Any) -> MemberUser:
    return MemberUser(row[0], str(row[1]), None if row[2] is None else str(row[2]), row[3], bool(row[4]))


def members_of_group(conn: Connection, group_id: int) -> list[MemberUser]:
    """The direct user members of one group."""
    rows = conn.execute(
        text(
            f"{_MEMBER_COLUMNS} FROM user_memberships m JOIN users u ON u.id = m.user_id"
            " WHERE m.group_id = :g"
        ),
        {"g": group_id},
    )
    return [_member_user(r) for r in rows]


def _like_escape(ch: str) -> str:
    return "\\" + ch if ch in "%_\\" else ch


def contains_pattern(query: str) -> str:
    """A LIKE pattern (ESCAPE '\\') matching text that contains query."""
    return "%" + "".join(_like_escape(ch) for ch in query) + "%"


def fuzzy_pattern(query: str) -> str:
    """A LIKE pattern (ESCAPE '\\') matching text that holds every character of query, in order."""
    return "%" + "%".join(_like_escape(ch) for ch in query) + "%"


def members_within(
    conn: Connection, group_ids: Collection[int], query: str | None, limit: int | None
) -> list[MemberUser]:
    """Users that are direct members of any of group_ids, by userName (any case) then id.

    query keeps those whose userName, display name or email contains it (any case); limit
    keeps the first ones.
    """
    within = ", ".join(str(int(g)) for g in sorted(group_ids)) or "NULL"
    where, params = "", {}
    if query:
        where = (
            " AND (lower(u.user_name) LIKE :q ESCAPE '\\' OR lower(coalesce(u.display_name, '')) LIKE :q"
            " ESCAPE '\\' OR lower(u.emails) LIKE :q ESCAPE '\\')"
        )
        params["q"] = contains_pattern(query.lower())
    rows = conn.execute(
        text(
            f"{_MEMBER_COLUMNS} FROM users u WHERE u.id IN"
            f" (SELECT user_id FROM user_memberships WHERE group_id IN ({within})){where}"
            " ORDER BY lower(u.user_name), u.id" + ("" if limit is None else f" LIMIT {int(limit)}")
        ),
        params,
    )
    return [_member_user(r) for r in rows]


class Membership(NamedTuple):
    group_id: int
    user_id: int


def memberships_among(
    conn: Connection, group_ids: Collection[int], user_ids: Collection[int]
) -> list[Membership]:
    """The direct memberships of user_ids in group_ids."""
    within = ", ".join(str(int(g)) for g in sorted(group_ids)) or "NULL"
    listed = ", ".join(str(int(u)) for u in sorted(user_ids)) or "NULL"
    rows = conn.exec_driver_sql(
        f"SELECT group_id, user_id FROM user_memberships WHERE group_id IN ({within})"
        f" AND user_id IN ({listed})"
    )
    return [Membership(int(g), int(u)) for g, u in rows]


def live_groups_of_user(conn: Connection, user_id: int) -> list[int]:
    """The live groups a user is a direct member of."""
    rows = bulk.fetch_rows(
        conn,
        "SELECT m.group_id FROM user_memberships m JOIN instance_groups g"
        f" ON g.id = m.group_id WHERE m.user_id = {bulk.mark(conn)} AND g.removed_at IS NULL",
        (user_id,),
    )
    return [gid for (gid,) in rows]


def group_names(conn: Connection, ids: Collection[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for listed in bulk.id_lists(ids):
        out.update(bulk.fetch_rows(conn, f"SELECT id, name FROM instance_groups WHERE id IN ({listed})"))
    return out


class UserState(NamedTuple):
    user_name: str
    active: bool


def live_users(conn: Connection, ids: Collection[int]) -> dict[int, UserState]:
    """Live users among ids: id -> (userName, active)."""
    out: dict[int, UserState] = {}
    for listed in bulk.id_lists(ids):
        for uid, name, active in conn.exec_driver_sql(
            f"SELECT id, user_name, active FROM users WHERE id IN ({listed}) AND removed_at IS NULL"
        ):
            out[uid] = UserState(str(name), bool(active))
    return out


class GroupMatch(NamedTuple):
    name: str
    upstream_id: str
    source: str


class UserMatch(NamedTuple):
    user_name: str
    display_name: str | None


def search_groups(conn: Connection, pattern: str, limit: int) -> list[GroupMatch]:
    """Live groups whose name matches the LIKE pattern (any case), shortest names first."""
    rows = conn.execute(
        text(
            "SELECT g.name, g.upstream_id, s.name FROM instance_groups g JOIN sources s"
            " ON s.id = g.source_id WHERE g.removed_at IS NULL AND lower(g.name) LIKE lower(:p)"
            " ESCAPE '\\' ORDER BY length(g.name), g.name LIMIT :n"
        ),
        {"p": pattern, "n": limit},
    )
    return [GroupMatch(*r) for r in rows]


def search_users(conn: Connection, pattern: str, limit: int) -> list[UserMatch]:
    """Live users whose userName or display name matches the LIKE pattern (any case)."""
    rows = conn.execute(
        text(
            "SELECT user_name, display_name FROM users WHERE removed_at IS NULL"
            " AND (lower(user_name) LIKE lower(:p) ESCAPE '\\'"
            " OR lower(coalesce(display_name, '')) LIKE lower(:p) ESCAPE '\\')"
            " ORDER BY length(user_name), user_name LIMIT :n"
        ),
        {"p": pattern, "n": limit},
    )
    return [UserMatch(*r) for r in rows]
