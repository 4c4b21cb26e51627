"""Reading the directory cache: groups, their members, users; searching names."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import filterfalse

from sqlalchemy import Connection

from groupwarden.domain.access import effective_member_counts, expand_down, reach_within
from groupwarden.domain.lookalike import is_mixed_script
from groupwarden.domain.refs import GroupRef, UserRef
from groupwarden.services.context import Context
from groupwarden.store import access as access_store
from groupwarden.store import directory as store

__all__ = ["GroupMembers", "GroupRef", "GroupRow", "Lookalikes", "MemberRow", "PrincipalMatch", "UserRef"]


class Lookalikes:
    """Which group names and userNames to mark as look-alikes, and why: read once per call.

    A name is marked when it mixes scripts, or when its skeleton equals another live name's of
    the same kind: `аdmins` (a Cyrillic а) and `admins` are both marked, since nothing tells
    which one the reader meant.
    """

    def __init__(self, group_clashes: list[tuple[str, str]], user_clashes: list[tuple[str, str]]) -> None:
        self._similar = {"g": _similar_names(group_clashes), "u": _similar_names(user_clashes)}
        self._mixed: dict[str, bool] = {}

    @classmethod
    def read(
        cls,
        conn: Connection,
        *,
        groups: bool | Collection[str] = True,
        users: bool | Collection[str] = True,
    ) -> Lookalikes:
        """The marks of every live group name and userName (True), of none (False), or of
        those names (a collection: a page of them costs a lookup each rather than a scan of
        every name; marks of other names read from it are None)."""
        return cls(_clashes(conn, "instance_groups", groups), _clashes(conn, "users", users))

    def note(self, kind: str, name: str) -> str | None:
        """None, "mixed scripts", or "looks like g/<other>" (kind is "g" or "u")."""
        other = self._similar[kind].get(name)
        if other is not None:
            return f"looks like {kind}/{other}"
        mixed = self._mixed.get(name)
        if mixed is None:
            mixed = self._mixed[name] = not name.isascii() and is_mixed_script(name)
        return "mixed scripts" if mixed else None

    def marked(self, kind: str, names: Collection[str]) -> dict[str, str]:
        """name -> note(kind, name), for those of names that have a note: what a listing of
        tens of thousands of names asks, with the per-name work in C loops."""
        similar = self._similar[kind]
        out = {name: f"looks like {kind}/{similar[name]}" for name in filter(similar.__contains__, names)}
        # Only a name with a character outside ASCII can mix scripts.
        for name in filterfalse(str.isascii, names):
            if name not in out and (note := self.note(kind, name)) is not None:
                out[name] = note
        return out

    def group(self, name: str) -> str | None:
        return self.note("g", name)

    def user(self, name: str) -> str | None:
        return self.note("u", name)


# Up to this many names, looking each one up beats one scan of every live name.
PROBED_NAMES = 2000


def _clashes(conn: Connection, table: str, names: bool | Collection[str]) -> list[tuple[str, str]]:
    if isinstance(names, bool):
        return store.lookalike_names(conn, table, None) if names else []
    if len(names) > PROBED_NAMES:
        return store.lookalike_names(conn, table, None)
    return store.lookalike_names(conn, table, set(names)) if names else []


def _similar_names(clashes: list[tuple[str, str]]) -> dict[str, str]:
    """name -> another name with the same skeleton, for every (skeleton, name) given."""
    by_skeleton: dict[str, list[str]] = {}
    for shape, name in clashes:
        by_skeleton.setdefault(shape, []).append(name)
    similar: dict[str, str] = {}
    for same in by_skeleton.values():
        if len(same) > 1:
            same.sort()
            for name in same:
                similar[name] = same[1] if name == same[0] else same[0]
    return similar


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
    #: Why the name reads like another one (Lookalikes.note), or None.
    lookalike: str | None = None

    @property
    def ref(self) -> GroupRef:
        """The group as a typed reference: what the services take (live, as listed)."""
        return GroupRef(self.id, self.name, self.upstream_id, self.source)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.upstream_id,
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "kind": self.kind,
            "direct_members": self.direct_members,
            "effective_members": self.effective_members,
            "nested_groups": self.nested_groups,
            "grants": self.grants,
            "last_synced": self.last_synced.isoformat() if self.last_synced else None,
            "lookalike": self.lookalike,
        }


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
    lookalike: str | None = None

    @property
    def via_text(self) -> str:
        return "direct" if self.via is None else " ⊃ ".join(f"g/{n}" for n in self.via)

    def to_dict(self) -> dict[str, object]:
        return {
            "user_name": self.user_name,
            "display_name": self.display_name,
            "email": self.email,
            "active": self.active,
            "via": list(self.via) if self.via else None,
            "lookalike": self.lookalike,
        }


@dataclass(frozen=True, slots=True)
class GroupMembers:
    """A group and its effective members, as `members` prints them."""

    group: GroupRef
    members: list[MemberRow]
    lookalike: str | None = None

    def to_dict(self) -> dict[str, object]:
        group = self.group
        return {
            "group": {
                "id": group.upstream_id,
                "name": group.name,
                "source": group.source,
                "lookalike": self.lookalike,
            },
            "members": [m.to_dict() for m in self.members],
        }


def list_groups(ctx: Context, *, limit: int | None = None) -> list[GroupRow]:
    """Every live group with its member and grant counts, sorted by name.

    With limit, only the first groups by name, counted alone: a screen's first page costs
    a few milliseconds, where counting every membership of a large directory does not.
    """
    with ctx.engine.connect() as conn:
        rows = store.live_groups(conn, limit)
        wanted = None if limit is None else [r.id for r in rows]
        direct = store.direct_member_counts(conn, wanted)
        grants = store.grant_counts(conn, wanted)
        children = store.nested_children(conn)
        # Only groups with nested groups differ from their direct count.
        parents = list(children) if wanted is None else [g for g in wanted if g in children]
        effective = _effective_counts(conn, parents, children)
        marks = Lookalikes.read(conn, groups=[r.name for r in rows], users=False)
    return [
        GroupRow(
            id=r.id,
            name=r.name,
            upstream_id=r.upstream_id,
            source=r.source,
            description=r.description,
            kind=r.kind,
            direct_members=direct.get(r.id, 0),
            effective_members=effective.get(r.id, direct.get(r.id, 0)),
            nested_groups=len(children.get(r.id, ())),
            grants=grants.get(r.id, 0),
            last_synced=r.last_synced,
            lookalike=marks.group(r.name),
        )
        for r in rows
    ]


# A group reaching at most this many groups is counted by the database, alone; past it, the
# groups are counted together in Python, which shares the work between overlapping reaches.
_COUNT_APART = 32


def _effective_counts(
    conn: Connection, parents: list[int], children: Mapping[int, list[int]]
) -> dict[int, int]:
    """How many distinct users each of parents holds, nested groups included.

    Most groups nest a few others: the database counts each one's members without a row
    reaching Python. A group above a long chain reaches thousands, and counting each one
    apart would cost the chain's length squared; those are counted by
    effective_member_counts, which shares each count with the groups above.
    """
    effective: dict[int, int] = {}
    deep: list[int] = []
    for g in parents:
        reach = reach_within(g, children, _COUNT_APART)
        if reach is None:
            deep.append(g)
        else:
            effective[g] = store.distinct_members(conn, reach)
    if deep:
        reached = expand_down(deep, children)
        members = access_store.members_of(conn, list(reached))
        counts = effective_member_counts(deep, children, members)
        effective.update((g, counts[g]) for g in deep)
    return effective


def count_groups(ctx: Context) -> int:
    """How many live groups there are, without reading them."""
    with ctx.engine.connect() as conn:
        return store.count_live_groups(conn)


def effective_member_ids(conn: Connection, group_id: int) -> set[int]:
    """The ids of every user in a group, directly or through nested groups (cycles tolerated)."""
    paths = expand_down([group_id], store.nested_children(conn))
    return {u.id for u in store.members_within(conn, list(paths), None, None)}


def list_members(
    ctx: Context, group: GroupRef, *, query: str | None = None, limit: int | None = None
) -> list[MemberRow]:
    """Every effective member of group: direct ones, and those that come through nesting.

    query keeps the members whose userName, display name or email contains it (any case);
    limit keeps the first ones by userName, read without loading the others: a screen's
    first page of a 50,000-member group.
    """
    with ctx.engine.connect() as conn:
        paths = expand_down([group.id], store.nested_children(conn))
        found: list[tuple[store.MemberUser, int]] = []
        if query is None and limit is None:
            # Shortest chains first, so each user keeps its most direct route.
            seen: set[int] = set()
            for gid in sorted(paths, key=paths.depth.__getitem__):
                for user in store.members_of_group(conn, gid):
                    if user.id not in seen:
                        seen.add(user.id)
                        found.append((user, gid))
        else:
            users = store.members_within(conn, list(paths), query, limit)
            # Each user keeps its most direct route, as in the full listing.
            via: dict[int, int] = {}
            for m in store.memberships_among(conn, list(paths), [u.id for u in users]):
                if m.user_id not in via or paths.depth[m.group_id] < paths.depth[via[m.user_id]]:
                    via[m.user_id] = m.group_id
            found = [(u, via[u.id]) for u in users]
        chains = {gid: paths.path(gid) for gid in {gid for _u, gid in found if gid != group.id}}
        names = store.group_names(conn, {g for chain in chains.values() for g in chain})
        marks = Lookalikes.read(conn, groups=False, users=[u.user_name for u, _via in found])
    rows = [
        MemberRow(
            user_id=u.id,
            user_name=u.user_name,
            display_name=u.display_name,
            email=(str(u.emails).split("\n", 1)[0] or None) if u.emails else None,
            active=u.active,
            via=None if gid == group.id else tuple(names[g] for g in chains[gid]),
            lookalike=marks.user(u.user_name),
        )
        for u, gid in found
    ]
    rows.sort(key=lambda m: (m.user_name.lower(), m.user_id))
    return rows


@dataclass(frozen=True, slots=True)
class PrincipalMatch:
    principal: str
    detail: str


def group_lookalike(ctx: Context, group: GroupRef) -> str | None:
    """The look-alike mark of one group's name (Lookalikes.note)."""
    with ctx.engine.connect() as conn:
        return Lookalikes.read(conn, groups=[group.name], users=False).group(group.name)


def user_lookalike(ctx: Context, user_name: str) -> str | None:
    """The look-alike mark of one userName (Lookalikes.note)."""
    with ctx.engine.connect() as conn:
        return Lookalikes.read(conn, groups=False, users=[user_name]).user(user_name)


def search_principals(ctx: Context, query: str, limit: int = 50) -> list[PrincipalMatch]:
    """Groups and users whose name contains every character of query in order (fuzzy)."""
    pattern = store.fuzzy_pattern(query.strip())
    with ctx.engine.connect() as conn:
        groups = store.search_groups(conn, pattern, limit)
        users = store.search_users(conn, pattern, limit)
    out = [PrincipalMatch(f"g/{g.name}", f"group, {g.source}, upstream id {g.upstream_id}") for g in groups]
    out += [PrincipalMatch(f"u/{u.user_name}", f"user, {u.display_name or ''}".rstrip(", ")) for u in users]
    return out[:limit]
