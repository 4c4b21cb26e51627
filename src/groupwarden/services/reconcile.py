"""Reconcile a complete snapshot into the cache, in one transaction.

Identity is (source, upstream id): a rename keeps the row, so it keeps every grant. A
user or group gone upstream keeps its row with removed_at set, loses its memberships,
and any grant naming it becomes orphaned. The whole diff is computed before the first
write, so the mass-deletion guard refuses before anything changes.
"""

from __future__ import annotations

import json
from collections import defaultdict
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
    diff = SyncDiff()
    if write:
        # Two syncs of one source queue here instead of interleaving.
        lock_name(conn, f"sync:{source_name}")
    source_id = source_id_for(conn, source_name, source_kind, source_url, create=write)
    existing_users: dict[str, tuple[Any, ...]] = {}
    existing_groups: dict[str, tuple[Any, ...]] = {}
    if source_id is not None:
        for row in conn.execute(
            text(
                "SELECT upstream_id, id, user_name, display_name, emails, active, raw_status,"
                " removed_at FROM users WHERE source_id = :s"
            ),
            {"s": source_id},
        ):
            existing_users[row[0]] = tuple(row)
        for row in conn.execute(
            text(
                "SELECT upstream_id, id, name, description, kind, removed_at"
                " FROM instance_groups WHERE source_id = :s"
            ),
            {"s": source_id},
        ):
            existing_groups[row[0]] = tuple(row)

    # Users: new, changed (or back from removal), removed.
    user_ids: dict[str, int] = {}
    user_names: dict[int, str] = {}
    new_users: list[SourceUser] = []
    changed_users: list[tuple[int, SourceUser]] = []
    for user in snapshot.users:
        old = existing_users.get(user.upstream_id)
        if old is None:
            new_users.append(user)
            continue
        user_ids[user.upstream_id] = old[1]
        user_names[old[1]] = user.user_name
        if old[7] is not None or (old[2], old[3], old[4], bool(old[5]), old[6]) != _user_row(user):
            changed_users.append((old[1], user))
            diff.users_changed.append(user.user_name)
    seen_users = {u.upstream_id for u in snapshot.users}
    removed_users = [
        old for upstream, old in existing_users.items() if old[7] is None and upstream not in seen_users
    ]
    for old in removed_users:
        user_names[old[1]] = old[2]
    diff.users_removed = sorted(old[2] for old in removed_users)
    active_user_count = sum(1 for old in existing_users.values() if old[7] is None)
    guard.check("users", len(removed_users), active_user_count)

    new_user_ids = (
        bulk.allocate_ids(conn, "users", len(new_users))
        if write
        else [-(i + 1) for i in range(len(new_users))]
    )
    for user, new_id in zip(new_users, new_user_ids, strict=True):
        user_ids[user.upstream_id] = new_id
        user_names[new_id] = user.user_name
    diff.users_added = sorted(u.user_name for u in new_users)

    # Groups.
    group_ids: dict[str, int] = {}
    group_names: dict[int, str] = {}
    new_groups: list[SourceGroup] = []
    changed_groups: list[tuple[int, SourceGroup]] = []
    for group in snapshot.groups:
        old = existing_groups.get(group.upstream_id)
        if old is None:
            new_groups.append(group)
            continue
        group_ids[group.upstream_id] = old[1]
        group_names[old[1]] = group.name
        if old[5] is not None:
            changed_groups.append((old[1], group))
            diff.groups_added.append(group.name)
        elif (old[2], old[3], old[4]) != (group.name, group.description, group.kind):
            changed_groups.append((old[1], group))
            if old[2] != group.name:
                diff.groups_renamed.append((old[2], group.name))
    seen_groups = {g.upstream_id for g in snapshot.groups}
    removed_groups = [
        old for upstream, old in existing_groups.items() if old[5] is None and upstream not in seen_groups
    ]
    for old in removed_groups:
        group_names[old[1]] = old[2]
    diff.groups_removed = sorted(old[2] for old in removed_groups)
    active_group_count = sum(1 for old in existing_groups.values() if old[5] is None)
    guard.check("groups", len(removed_groups), active_group_count)

    new_group_ids = (
        bulk.allocate_ids(conn, "instance_groups", len(new_groups))
        if write
        else [-(i + 1) - len(new_users) for i in range(len(new_groups))]
    )
    for group, new_id in zip(new_groups, new_group_ids, strict=True):
        group_ids[group.upstream_id] = new_id
        group_names[new_id] = group.name
    diff.groups_added.extend(g.name for g in new_groups)
    diff.groups_added.sort()

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
    for group in snapshot.groups:
        gid = group_ids[group.upstream_id]
        high = (gid & MASK) << 32
        wanted_members.update(high | (user_ids[m] & MASK) for m in group.user_members)
        wanted_nested.update(high | (group_ids[m] & MASK) for m in group.group_members)
    # Negative ids (dry run) were masked above; unmask them for the name lookups.
    members_added = wanted_members - existing_members
    members_removed = existing_members - wanted_members
    nested_added = wanted_nested - existing_nested
    nested_removed = existing_nested - wanted_nested
    guard.check("memberships", len(members_removed), len(existing_members))
    diff.members_added_count = len(members_added)
    diff.members_removed_count = len(members_removed)
    diff.members_added = _names_by_group(members_added, group_names, user_names)
    diff.members_removed = _names_by_group(members_removed, group_names, user_names)
    diff.nested_added = sorted(
        (group_names[_unpack(k >> 32)], group_names[_unpack(k & MASK)]) for k in nested_added
    )
    diff.nested_removed = sorted(
        (group_names[_unpack(k >> 32)], group_names[_unpack(k & MASK)]) for k in nested_removed
    )
    removed_ids = ([old[1] for old in removed_groups], [old[1] for old in removed_users])
    if not write:
        diff.orphaned_grants = _orphaned_by(conn, *removed_ids)
        return diff
    assert source_id is not None
    now = now or utcnow()
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
            for u, uid in zip(new_users, new_user_ids, strict=True)
        ],
    )
    bulk.insert_rows(
        conn,
        "instance_groups",
        ("id", "source_id", "upstream_id", "name", "description", "kind"),
        [
            (gid, source_id, g.upstream_id, g.name, g.description, g.kind)
            for g, gid in zip(new_groups, new_group_ids, strict=True)
        ],
    )
    if changed_users:
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
                for uid, u in changed_users
            ],
        )
    if changed_groups:
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
                for gid, g in changed_groups
            ],
        )
    if removed_users:
        conn.execute(
            update(User).where(User.id == _bind("uid")).values(removed_at=now),
            [{"uid": old[1]} for old in removed_users],
        )
    if removed_groups:
        conn.execute(
            update(Group).where(Group.id == _bind("gid")).values(removed_at=now),
            [{"gid": old[1]} for old in removed_groups],
        )
    bulk.delete_pairs(
        conn,
        "user_memberships",
        ("group_id", "user_id"),
        [(k >> 32, k & MASK) for k in members_removed],
    )
    bulk.delete_pairs(
        conn,
        "group_memberships",
        ("parent_id", "child_id"),
        [(k >> 32, k & MASK) for k in nested_removed],
    )
    bulk.insert_rows(
        conn,
        "user_memberships",
        ("group_id", "user_id"),
        [(k >> 32, k & MASK) for k in members_added],
    )
    bulk.insert_rows(
        conn,
        "group_memberships",
        ("parent_id", "child_id"),
        [(k >> 32, k & MASK) for k in nested_added],
    )
    conn.execute(update(Source).where(Source.id == source_id).values(last_sync_at=now))
    # Listed after the removals are written: a grant made meanwhile waited on them, so it is
    # committed by now and counted.
    diff.orphaned_grants = _orphaned_by(conn, *removed_ids)
    return diff


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
