"""Reading the directory cache: groups, their members, users; resolving names."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from groupwarden.domain.access import expand_down
from groupwarden.domain.errors import Ambiguous, NotFound
from groupwarden.services.context import Context
from groupwarden.store import bulk


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: int
    name: str
    upstream_id: str
    source: str
    removed: bool = False

    @property
    def principal(self) -> str:
        return f"g/{self.name}"


@dataclass(frozen=True, slots=True)
class UserRef:
    id: int
    user_name: str
    upstream_id: str
    source: str
    removed: bool = False

    @property
    def principal(self) -> str:
        return f"u/{self.user_name}"


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: int
    name: str
    upstream_id: str
    source: str
    description: str | None
    kind: str | None
    direct_members: int
    effective_members: int
    nested_groups: int
    grants: int
    last_synced: datetime | None


@dataclass(frozen=True, slots=True)
class MemberRow:
    user_id: int
    user_name: str
    display_name: str | None
    email: str | None
    active: bool
    # None for a direct member; otherwise the nested chain, from the group itself down to
    # the group the user is a direct member of.
    via: tuple[str, ...] | None

    @property
    def via_text(self) -> str:
        return "direct" if self.via is None else " ⊃ ".join(f"g/{n}" for n in self.via)


def resolve_group(conn: Connection, name: str, *, include_removed: bool = False) -> GroupRef:
    """A group by name or upstream id; several matches are refused with every candidate."""
    rows = conn.execute(
        text(
            "SELECT g.id, g.name, g.upstream_id, s.name, g.removed_at FROM instance_groups g"
            " JOIN sources s ON s.id = g.source_id"
            " WHERE (g.name = :n OR g.upstream_id = :n)"
            + ("" if include_removed else " AND g.removed_at IS NULL")
            + " ORDER BY s.name, g.upstream_id"
        ),
        {"n": name},
    ).all()
    if not rows:
        raise NotFound(f"no group named {name!r} (by name or upstream id); see `groupwarden groups`")
    if len(rows) > 1:
        raise Ambiguous(
            "group",
            name,
            [f"{r[1]}  (source {r[3]}, upstream id {r[2]})" for r in rows],
        )
    r = rows[0]
    return GroupRef(r[0], r[1], r[2], r[3], r[4] is not None)


def resolve_user(conn: Connection, name: str, *, include_removed: bool = False) -> UserRef:
    """A user by userName (or upstream id); several matches are refused with every candidate."""
    rows = conn.execute(
        text(
            "SELECT u.id, u.user_name, u.upstream_id, s.name, u.removed_at FROM users u"
            " JOIN sources s ON s.id = u.source_id"
            " WHERE (u.user_name = :n OR u.upstream_id = :n)"
            + ("" if include_removed else " AND u.removed_at IS NULL")
            + " ORDER BY s.name, u.upstream_id"
        ),
        {"n": name},
    ).all()
    if not rows:
        raise NotFound(f"no user named {name!r} (by userName or upstream id)")
    if len(rows) > 1:
        raise Ambiguous("user", name, [f"{r[1]}  (source {r[3]}, upstream id {r[2]})" for r in rows])
    r = rows[0]
    return UserRef(r[0], r[1], r[2], r[3], r[4] is not None)


def nested_children(conn: Connection) -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for parent, child in conn.execute(text("SELECT parent_id, child_id FROM group_memberships")):
        children[parent].append(child)
    return children


def nested_parents(conn: Connection) -> dict[int, list[int]]:
    parents: dict[int, list[int]] = defaultdict(list)
    for parent, child in conn.execute(text("SELECT parent_id, child_id FROM group_memberships")):
        parents[child].append(parent)
    return parents


def list_groups(ctx: Context, *, limit: int | None = None) -> list[GroupRow]:
    """Every live group with its member and grant counts, sorted by name.

    With limit, only the first groups by name, counted alone: a screen's first page costs
    a few milliseconds, where counting every membership of a large directory does not.
    """
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT g.id, g.name, g.upstream_id, s.name, g.description, g.kind, s.last_sync_at"
                " FROM instance_groups g JOIN sources s ON s.id = g.source_id"
                " WHERE g.removed_at IS NULL ORDER BY lower(g.name), g.name, s.name, g.upstream_id"
                + ("" if limit is None else f" LIMIT {int(limit)}")
            )
        ).all()
        wanted = None if limit is None else [int(r[0]) for r in rows]
        direct, grants, effective, children = _group_counts(conn, wanted)
    return [
        GroupRow(
            id=r[0],
            name=r[1],
            upstream_id=r[2],
            source=r[3],
            description=r[4],
            kind=r[5],
            direct_members=direct.get(r[0], 0),
            effective_members=effective.get(r[0], direct.get(r[0], 0)),
            nested_groups=len(children.get(r[0], ())),
            grants=grants.get(r[0], 0),
            last_synced=_as_datetime(r[6]),
        )
        for r in rows
    ]


def count_groups(ctx: Context) -> int:
    """How many live groups there are, without reading them."""
    with ctx.engine.connect() as conn:
        return int(
            conn.execute(text("SELECT COUNT(*) FROM instance_groups WHERE removed_at IS NULL")).one()[0]
        )


def _id_filter(column: str, ids: list[int] | None) -> str:
    if ids is None:
        return ""
    return f" AND {column} IN ({', '.join(str(int(i)) for i in ids) or 'NULL'})"


def _group_counts(
    conn: Connection, ids: list[int] | None
) -> tuple[dict[int, int], dict[int, int], dict[int, int], dict[int, list[int]]]:
    """(direct members, grants, effective members where nesting makes it differ, children) of
    the groups ids, or of every group for None."""
    direct: dict[int, int] = dict(
        conn.execute(
            text(
                "SELECT group_id, COUNT(*) FROM user_memberships WHERE 1 = 1"
                + _id_filter("group_id", ids)
                + " GROUP BY group_id"
            )
        ).all()
    )
    grants: dict[int, int] = dict(
        conn.execute(
            text(
                "SELECT group_id, COUNT(*) FROM grants WHERE group_id IS NOT NULL"
                + _id_filter("group_id", ids)
                + " GROUP BY group_id"
            )
        ).all()
    )
    children = nested_children(conn)
    parents = list(children) if ids is None else [g for g in ids if g in children]
    effective: dict[int, int] = {}
    if parents:
        # Only groups with nested groups differ from their direct count; the database counts
        # the distinct members of each one's nested groups, so no membership row reaches Python.
        for gid in parents:
            nested = sorted(expand_down([gid], children))
            effective[gid] = int(
                conn.execute(
                    text(
                        "SELECT COUNT(DISTINCT user_id) FROM user_memberships WHERE 1 = 1"
                        + _id_filter("group_id", nested)
                    )
                ).one()[0]
            )
    return direct, grants, effective, children


def _as_datetime(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def effective_members(conn: Connection, group_id: int) -> dict[int, tuple[int, ...] | None]:
    """user id -> None for a direct member, or the group-id chain it comes through."""
    return {uid: via for uid, via, _row in _member_rows(conn, group_id, "u.id")}


def _member_rows(
    conn: Connection, group_id: int, columns: str
) -> list[tuple[int, tuple[int, ...] | None, tuple[object, ...]]]:
    paths = expand_down([group_id], nested_children(conn))
    # Shortest chains first, so each user keeps its most direct route.
    by_length = sorted(paths.items(), key=lambda item: len(item[1]))
    seen: set[int] = set()
    out: list[tuple[int, tuple[int, ...] | None, tuple[object, ...]]] = []
    for gid, path in by_length:
        for row in conn.execute(
            text(
                f"SELECT u.id, {columns} FROM user_memberships m JOIN users u ON u.id = m.user_id"
                " WHERE m.group_id = :g"
            ),
            {"g": gid},
        ):
            if row[0] not in seen:
                seen.add(row[0])
                out.append((row[0], None if gid == group_id else path, tuple(row[1:])))
    return out


def list_members(
    ctx: Context, group: str, *, query: str | None = None, limit: int | None = None
) -> tuple[GroupRef, list[MemberRow]]:
    """Every effective member of group: direct ones, and those that come through nesting.

    query keeps the members whose userName, display name or email contains it (any case);
    limit keeps the first ones by userName, read without loading the others: a screen's
    first page of a 50,000-member group.
    """
    with ctx.engine.connect() as conn:
        ref = resolve_group(conn, group)
        if query is None and limit is None:
            found = _member_rows(conn, ref.id, "u.user_name, u.display_name, u.emails, u.active")
        else:
            found = _some_member_rows(conn, ref.id, query, limit)
        names = group_names(conn, {g for _uid, path, _row in found if path for g in path})
    rows = [
        MemberRow(
            user_id=uid,
            user_name=str(r[0]),
            display_name=r[1] if r[1] is None else str(r[1]),
            email=(str(r[2]).split("\n", 1)[0] or None) if r[2] else None,
            active=bool(r[3]),
            via=None if path is None else tuple(names[g] for g in path),
        )
        for uid, path, r in found
    ]
    rows.sort(key=lambda m: (m.user_name.lower(), m.user_id))
    return ref, rows


def _some_member_rows(
    conn: Connection, group_id: int, query: str | None, limit: int | None
) -> list[tuple[int, tuple[int, ...] | None, tuple[object, ...]]]:
    paths = expand_down([group_id], nested_children(conn))
    within = ", ".join(str(int(g)) for g in sorted(paths))
    where, params = "", {}
    if query:
        where = (
            " AND (lower(u.user_name) LIKE :q ESCAPE '\\' OR lower(coalesce(u.display_name, '')) LIKE :q"
            " ESCAPE '\\' OR lower(u.emails) LIKE :q ESCAPE '\\')"
        )
        params["q"] = "%" + "".join(_like_escape(ch) for ch in query.lower()) + "%"
    users = conn.execute(
        text(
            "SELECT u.id, u.user_name, u.display_name, u.emails, u.active FROM users u WHERE u.id IN"
            f" (SELECT user_id FROM user_memberships WHERE group_id IN ({within})){where}"
            " ORDER BY lower(u.user_name), u.id" + ("" if limit is None else f" LIMIT {int(limit)}")
        ),
        params,
    ).all()
    if not users:
        return []
    # Each user keeps its most direct route, as in the full listing.
    listed = ", ".join(str(int(r[0])) for r in users)
    via: dict[int, tuple[int, ...]] = {}
    for gid, uid in conn.execute(
        text(
            f"SELECT group_id, user_id FROM user_memberships WHERE group_id IN ({within})"
            f" AND user_id IN ({listed})"
        )
    ):
        if uid not in via or len(paths[gid]) < len(via[uid]):
            via[uid] = paths[gid]
    return [(r[0], None if via[r[0]] == (group_id,) else via[r[0]], tuple(r[1:])) for r in users]


def group_names(conn: Connection, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    out: dict[int, str] = {}
    for marks in bulk.id_lists(ids):
        out.update(conn.execute(text(f"SELECT id, name FROM instance_groups WHERE id IN ({marks})")).all())
    return out


@dataclass(frozen=True, slots=True)
class PrincipalMatch:
    principal: str
    detail: str


def search_principals(ctx: Context, query: str, limit: int = 50) -> list[PrincipalMatch]:
    """Groups and users whose name contains every character of query in order (fuzzy)."""
    pattern = "%" + "%".join(_like_escape(ch) for ch in query.strip()) + "%"
    with ctx.engine.connect() as conn:
        groups = conn.execute(
            text(
                "SELECT g.name, g.upstream_id, s.name FROM instance_groups g JOIN sources s"
                " ON s.id = g.source_id WHERE g.removed_at IS NULL AND lower(g.name) LIKE lower(:p)"
                " ESCAPE '\\' ORDER BY length(g.name), g.name LIMIT :n"
            ),
            {"p": pattern, "n": limit},
        ).all()
        users = conn.execute(
            text(
                "SELECT user_name, display_name FROM users WHERE removed_at IS NULL"
                " AND (lower(user_name) LIKE lower(:p) ESCAPE '\\'"
                " OR lower(coalesce(display_name, '')) LIKE lower(:p) ESCAPE '\\')"
                " ORDER BY length(user_name), user_name LIMIT :n"
            ),
            {"p": pattern, "n": limit},
        ).all()
    out = [PrincipalMatch(f"g/{r[0]}", f"group, {r[2]}, upstream id {r[1]}") for r in groups]
    out += [PrincipalMatch(f"u/{r[0]}", f"user, {r[1] or ''}".rstrip(", ")) for r in users]
    return out[:limit]


def _like_escape(ch: str) -> str:
    return "\\" + ch if ch in "%_\\" else ch
