"""Reconcile a complete snapshot into the cache, in one transaction.

Identity is (source, upstream id): a rename keeps the row, so it keeps every grant. A
user or group gone upstream keeps its row with removed_at set, loses its memberships,
and any grant naming it becomes orphaned. The whole diff is computed before the first
write, so the mass-deletion guard refuses before anything changes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.domain.errors import MassDeletionRefused
from groupwarden.services.context import utcnow
from groupwarden.store import bulk
from groupwarden.store.db import lock_name
from groupwarden.store.models import Group, Source, User

# How many names a run keeps per group and direction; counts are always exact.
MAX_NAMES_PER_GROUP = 200
MASK = (1 << 32) - 1


@dataclass(slots=True)
class SyncDiff:
    groups_added: list[str] = field(default_factory=list)
    groups_renamed: list[tuple[str, str]] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)
    users_added: list[str] = field(default_factory=list)
    users_changed: list[str] = field(default_factory=list)
    users_removed: list[str] = field(default_factory=list)
    members_added: dict[str, list[str]] = field(default_factory=dict)
    members_removed: dict[str, list[str]] = field(default_factory=dict)
    members_added_count: int = 0
    members_removed_count: int = 0
    nested_added: list[tuple[str, str]] = field(default_factory=list)
    nested_removed: list[tuple[str, str]] = field(default_factory=list)
    orphaned_grants: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.groups_added
            or self.groups_renamed
            or self.groups_removed
            or self.users_added
            or self.users_changed
            or self.users_removed
            or self.members_added_count
            or self.members_removed_count
            or self.nested_added
            or self.nested_removed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups_added": self.groups_added,
            "groups_renamed": [list(pair) for pair in self.groups_renamed],
            "groups_removed": self.groups_removed,
            "users_added": self.users_added,
            "users_changed": self.users_changed,
            "users_removed": self.users_removed,
            "members_added": self.members_added,
            "members_removed": self.members_removed,
            "members_added_count": self.members_added_count,
            "members_removed_count": self.members_removed_count,
            "nested_added": [list(pair) for pair in self.nested_added],
            "nested_removed": [list(pair) for pair in self.nested_removed],
            "orphaned_grants": self.orphaned_grants,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncDiff:
        diff = cls()
        for key, value in data.items():
            if key in ("groups_renamed", "nested_added", "nested_removed"):
                value = [tuple(pair) for pair in value]
            if hasattr(diff, key):
                setattr(diff, key, value)
        return diff

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    def summary(self) -> str:
        if self.is_empty():
            return "no changes"
        parts = [
            f"groups: {len(self.groups_added)} added, {len(self.groups_renamed)} renamed,"
            f" {len(self.groups_removed)} removed",
            f"users: {len(self.users_added)} added, {len(self.users_changed)} changed,"
            f" {len(self.users_removed)} removed",
            f"memberships: {self.members_added_count} added, {self.members_removed_count} removed",
        ]
        if self.nested_added or self.nested_removed:
            parts.append(f"nested groups: {len(self.nested_added)} added, {len(self.nested_removed)} removed")
        if self.orphaned_grants:
            parts.append(f"{len(self.orphaned_grants)} grants orphaned")
        return "; ".join(parts)


@dataclass(slots=True)
class DeletionGuard:
    allow: bool = False
    max_fraction: float = 0.2
    floor: int = 10

    def check(self, what: str, removed: int, existing: int) -> None:
        if self.allow or removed <= self.floor or existing == 0:
            return
        if removed / existing > self.max_fraction:
            raise MassDeletionRefused(
                f"sync refused: it would remove {removed} of {existing} {what}"
                f" ({removed / existing:.0%}, above the {self.max_fraction:.0%} limit);"
                " check the identity provider, and allow the deletion explicitly only if it"
                " is intended; nothing was changed"
            )


def source_id_for(conn: Connection, name: str, kind: str, url: str, *, create: bool) -> int | None:
    row = conn.execute(select(Source.id).where(Source.name == name)).scalar_one_or_none()
    if row is not None or not create:
        return row
    result = conn.execute(insert(Source).values(name=name, kind=kind, url=url))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _user_row(user: SourceUser) -> tuple[str, str | None, str, bool, str | None]:
    return (
        user.user_name,
        user.display_name,
        "\n".join(user.emails),
        bool(user.active),
        user.raw_status,
    )


# The cached rows a reconcile compares against; the delta adds `AND upstream_id IN :values`.
USERS_SQL = (
    "SELECT upstream_id, id, user_name, display_name, emails, active, raw_status,"
    " removed_at FROM users WHERE source_id = :s"
)
GROUPS_SQL = (
    "SELECT upstream_id, id, name, description, kind, removed_at FROM instance_groups WHERE source_id = :s"
)


def _new_ids(conn: Connection, table: str, count: int, write: bool, offset: int = 0) -> list[int]:
    # A dry run reserves nothing: negative ids stand in, distinct across users and groups.
    return bulk.allocate_ids(conn, table, count) if write else [-(i + 1) - offset for i in range(count)]


def _pack(group_id: int, member_id: int) -> int:
    return (group_id & MASK) << 32 | (member_id & MASK)


@dataclass(slots=True)
class _Plan:
    """Everything a reconcile will write, worked out before the first write.

    Existing rows are the tuples of USERS_SQL and GROUPS_SQL; memberships are packed
    integer pairs (see bulk.pair_keys).
    """

    diff: SyncDiff = field(default_factory=SyncDiff)
    user_ids: dict[str, int] = field(default_factory=dict)
    user_names: dict[int, str] = field(default_factory=dict)
    group_ids: dict[str, int] = field(default_factory=dict)
    group_names: dict[int, str] = field(default_factory=dict)
    new_users: list[SourceUser] = field(default_factory=list)
    new_user_ids: list[int] = field(default_factory=list)
    changed_users: list[tuple[int, SourceUser]] = field(default_factory=list)
    removed_users: list[tuple[Any, ...]] = field(default_factory=list)
    new_groups: list[SourceGroup] = field(default_factory=list)
    new_group_ids: list[int] = field(default_factory=list)
    changed_groups: list[tuple[int, SourceGroup]] = field(default_factory=list)
    removed_groups: list[tuple[Any, ...]] = field(default_factory=list)
    members_added: set[int] = field(default_factory=set)
    members_removed: set[int] = field(default_factory=set)
    nested_added: set[int] = field(default_factory=set)
    nested_removed: set[int] = field(default_factory=set)

    def take_users(self, users: Iterable[SourceUser], existing: dict[str, tuple[Any, ...]]) -> None:
        """Sort users into new and changed (or back from removal) against their cached rows."""
        for user in users:
            old = existing.get(user.upstream_id)
            if old is None:
                self.new_users.append(user)
                continue
            self.user_ids[user.upstream_id] = old[1]
            self.user_names[old[1]] = user.user_name
            if old[7] is not None or (old[2], old[3], old[4], bool(old[5]), old[6]) != _user_row(user):
                self.changed_users.append((old[1], user))
                self.diff.users_changed.append(user.user_name)
        self.diff.users_changed.sort()

    def remove_users(self, rows: list[tuple[Any, ...]], conn: Connection, write: bool) -> None:
        """Record the removed users, then give the new ones their ids (negative on a dry run)."""
        self.removed_users = rows
        for old in rows:
            self.user_names[old[1]] = old[2]
        self.diff.users_removed = sorted(old[2] for old in rows)
        self.new_user_ids = _new_ids(conn, "users", len(self.new_users), write)
        for user, new_id in zip(self.new_users, self.new_user_ids, strict=True):
            self.user_ids[user.upstream_id] = new_id
            self.user_names[new_id] = user.user_name
        self.diff.users_added = sorted(u.user_name for u in self.new_users)

    def take_groups(self, groups: Iterable[SourceGroup], existing: dict[str, tuple[Any, ...]]) -> None:
        """Sort groups into new, renamed or changed, and back from removal (counted as added)."""
        for group in groups:
            old = existing.get(group.upstream_id)
            if old is None:
                self.new_groups.append(group)
                continue
            self.group_ids[group.upstream_id] = old[1]
            self.group_names[old[1]] = group.name
            if old[5] is not None:
                self.changed_groups.append((old[1], group))
                self.diff.groups_added.append(group.name)
            elif (old[2], old[3], old[4]) != (group.name, group.description, group.kind):
                self.changed_groups.append((old[1], group))
                if old[2] != group.name:
                    self.diff.groups_renamed.append((old[2], group.name))
        self.diff.groups_renamed.sort()

    def remove_groups(self, rows: list[tuple[Any, ...]], conn: Connection, write: bool) -> None:
        self.removed_groups = rows
        for old in rows:
            self.group_names[old[1]] = old[2]
        self.diff.groups_removed = sorted(old[2] for old in rows)
        self.new_group_ids = _new_ids(
            conn, "instance_groups", len(self.new_groups), write, len(self.new_users)
        )
        for group, new_id in zip(self.new_groups, self.new_group_ids, strict=True):
            self.group_ids[group.upstream_id] = new_id
            self.group_names[new_id] = group.name
        self.diff.groups_added.extend(g.name for g in self.new_groups)
        self.diff.groups_added.sort()

    def describe_memberships(self) -> None:
        diff, group_names = self.diff, self.group_names
        diff.members_added_count = len(self.members_added)
        diff.members_removed_count = len(self.members_removed)
        diff.members_added = _names_by_group(self.members_added, group_names, self.user_names)
        diff.members_removed = _names_by_group(self.members_removed, group_names, self.user_names)
        # Negative ids (dry run) were masked when packed; unmask them for the name lookups.
        diff.nested_added = sorted(
            (group_names[_unpack(k >> 32)], group_names[_unpack(k & MASK)]) for k in self.nested_added
        )
        diff.nested_removed = sorted(
            (group_names[_unpack(k >> 32)], group_names[_unpack(k & MASK)]) for k in self.nested_removed
        )

    def finish(self, conn: Connection, source_id: int | None, write: bool, now: datetime | None) -> SyncDiff:
        """Write the plan (when write is set) and list the grants it orphans."""
        removed_ids = ([old[1] for old in self.removed_groups], [old[1] for old in self.removed_users])
        if not write:
            self.diff.orphaned_grants = _orphaned_by(conn, *removed_ids)
            return self.diff
        assert source_id is not None
        self.write(conn, source_id, now or utcnow())
        # Listed after the removals are written: a grant made meanwhile waited on them, so it is
        # committed by now and counted.
        self.diff.orphaned_grants = _orphaned_by(conn, *removed_ids)
        return self.diff

    def write(self, conn: Connection, source_id: int, now: datetime) -> None:
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
            ),
            [
                (uid, source_id, u.upstream_id, *_user_row(u))
                for u, uid in zip(self.new_users, self.new_user_ids, strict=True)
            ],
        )
        bulk.insert_rows(
            conn,
            "instance_groups",
            ("id", "source_id", "upstream_id", "name", "description", "kind"),
            [
                (gid, source_id, g.upstream_id, g.name, g.description, g.kind)
                for g, gid in zip(self.new_groups, self.new_group_ids, strict=True)
            ],
        )
        if self.changed_users:
            conn.execute(
                update(User)
                .where(User.id == _bind("uid"))
                .values(
                    user_name=_bind("user_name"),
                    display_name=_bind("display_name"),
                    emails=_bind("emails"),
                    active=_bind("active"),
                    raw_status=_bind("raw_status"),
                    removed_at=None,
                ),
                [
                    {
                        "uid": uid,
                        "user_name": u.user_name,
                        "display_name": u.display_name,
                        "emails": "\n".join(u.emails),
                        "active": bool(u.active),
                        "raw_status": u.raw_status,
                    }
                    for uid, u in self.changed_users
                ],
            )
        if self.changed_groups:
            conn.execute(
                update(Group)
                .where(Group.id == _bind("gid"))
                .values(
                    name=_bind("name"),
                    description=_bind("description"),
                    kind=_bind("kind"),
                    removed_at=None,
                ),
                [
                    {"gid": gid, "name": g.name, "description": g.description, "kind": g.kind}
                    for gid, g in self.changed_groups
                ],
            )
        if self.removed_users:
            conn.execute(
                update(User).where(User.id == _bind("uid")).values(removed_at=now),
                [{"uid": old[1]} for old in self.removed_users],
            )
        if self.removed_groups:
            conn.execute(
                update(Group).where(Group.id == _bind("gid")).values(removed_at=now),
                [{"gid": old[1]} for old in self.removed_groups],
            )
        bulk.delete_pairs(
            conn,
            "user_memberships",
            ("group_id", "user_id"),
            [(k >> 32, k & MASK) for k in self.members_removed],
        )
        bulk.delete_pairs(
            conn,
            "group_memberships",
            ("parent_id", "child_id"),
            [(k >> 32, k & MASK) for k in self.nested_removed],
        )
        bulk.insert_rows(
            conn,
            "user_memberships",
            ("group_id", "user_id"),
            [(k >> 32, k & MASK) for k in self.members_added],
        )
        bulk.insert_rows(
            conn,
            "group_memberships",
            ("parent_id", "child_id"),
            [(k >> 32, k & MASK) for k in self.nested_added],
        )
        conn.execute(update(Source).where(Source.id == source_id).values(last_sync_at=now))


def reconcile(
    conn: Connection,
    snapshot: Snapshot,
    *,
    source_name: str,
    source_kind: str,
    source_url: str,
    guard: DeletionGuard,
    write: bool,
    now: datetime | None = None,
) -> SyncDiff:
    """Compute the diff of snapshot against the cache and, when write is set, apply it.

    conn must be inside a transaction the caller commits or rolls back as a whole.
    """
    if write:
        # Two syncs of one source queue here instead of interleaving.
        lock_name(conn, f"sync:{source_name}")
    source_id = source_id_for(conn, source_name, source_kind, source_url, create=write)
    existing_users: dict[str, tuple[Any, ...]] = {}
    existing_groups: dict[str, tuple[Any, ...]] = {}
    if source_id is not None:
        for row in conn.execute(text(USERS_SQL), {"s": source_id}):
            existing_users[row[0]] = tuple(row)
        for row in conn.execute(text(GROUPS_SQL), {"s": source_id}):
            existing_groups[row[0]] = tuple(row)
    plan = _Plan()

    # Users: new, changed (or back from removal), removed.
    plan.take_users(snapshot.users, existing_users)
    seen_users = {u.upstream_id for u in snapshot.users}
    removed_users = [
        old for upstream, old in existing_users.items() if old[7] is None and upstream not in seen_users
    ]
    active_user_count = sum(1 for old in existing_users.values() if old[7] is None)
    guard.check("users", len(removed_users), active_user_count)
    plan.remove_users(removed_users, conn, write)

    # Groups.
    plan.take_groups(snapshot.groups, existing_groups)
    seen_groups = {g.upstream_id for g in snapshot.groups}
    removed_groups = [
        old for upstream, old in existing_groups.items() if old[5] is None and upstream not in seen_groups
    ]
    active_group_count = sum(1 for old in existing_groups.values() if old[5] is None)
    guard.check("groups", len(removed_groups), active_group_count)
    plan.remove_groups(removed_groups, conn, write)

    # Memberships, compared as packed integer pairs (see bulk.pair_keys).
    existing_members: set[int] = set()
    existing_nested: set[int] = set()
    if source_id is not None:
        existing_members = bulk.pair_keys(
            conn,
            "SELECT m.group_id, m.user_id FROM user_memberships m"
            " JOIN instance_groups g ON g.id = m.group_id WHERE g.source_id = :s",
            {"s": source_id},
        )
        existing_nested = bulk.pair_keys(
            conn,
            "SELECT m.parent_id, m.child_id FROM group_memberships m"
            " JOIN instance_groups g ON g.id = m.parent_id WHERE g.source_id = :s",
            {"s": source_id},
        )
    wanted_members: set[int] = set()
    wanted_nested: set[int] = set()
    user_ids, group_ids = plan.user_ids, plan.group_ids
    for group in snapshot.groups:
        gid = group_ids[group.upstream_id]
        high = (gid & MASK) << 32
        wanted_members.update(high | (user_ids[m] & MASK) for m in group.user_members)
        wanted_nested.update(high | (group_ids[m] & MASK) for m in group.group_members)
    plan.members_added = wanted_members - existing_members
    plan.members_removed = existing_members - wanted_members
    plan.nested_added = wanted_nested - existing_nested
    plan.nested_removed = existing_nested - wanted_nested
    guard.check("memberships", len(plan.members_removed), len(existing_members))
    plan.describe_memberships()
    return plan.finish(conn, source_id, write, now)


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


def _unpack(value: int) -> int:
    # Dry-run ids are negative and were stored masked to 32 bits.
    return value - (1 << 32) if value >= 1 << 31 else value


def _names_by_group(
    keys: set[int], group_names: dict[int, str], user_names: dict[int, str]
) -> dict[str, list[str]]:
    by_group: dict[int, list[int]] = defaultdict(list)
    for key in keys:
        by_group[_unpack(key >> 32)].append(_unpack(key & MASK))
    out: dict[str, list[str]] = {}
    for gid, uids in by_group.items():
        names = sorted(user_names[u] for u in uids[: MAX_NAMES_PER_GROUP * 4])
        out[group_names[gid]] = names[:MAX_NAMES_PER_GROUP]
    return dict(sorted(out.items()))


def _orphaned_by(conn: Connection, group_ids: list[int], user_ids: list[int]) -> list[str]:
    """Grants that will name a removed group or user once this sync lands."""
    if not group_ids and not user_ids:
        return []
    from groupwarden.services.grants import describe_grants_of

    return describe_grants_of(conn, group_ids=group_ids, user_ids=user_ids)
