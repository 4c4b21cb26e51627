"""Reconcile a complete snapshot into the cache, in one transaction.

Identity is (source, upstream id): a rename keeps the row, so it keeps every grant. A
user or group gone upstream keeps its row with removed_at set, loses its memberships,
and any grant naming it becomes orphaned. The whole diff is computed before the first
write, so the mass-deletion guard refuses before anything changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from groupwarden.domain.directory import Delta, Snapshot, SourceGroup, SourceUser
from groupwarden.domain.errors import Hint, MassDeletionRefused, Remedy, SyncError
from groupwarden.services.context import utcnow
from groupwarden.store import sources
from groupwarden.store import sync as cache
from groupwarden.store.bulk import PAIR_MASK, pack_pair
from groupwarden.store.db import lock_name
from groupwarden.store.sync import GroupRow, UserRow

# How many names a run keeps per group and direction; counts are always exact.
MAX_NAMES_PER_GROUP = 200


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

    def changed_rows(self) -> int:
        """How many rows of the directory this diff touches, roughly."""
        return (
            len(self.groups_added)
            + len(self.groups_renamed)
            + len(self.groups_removed)
            + len(self.users_added)
            + len(self.users_changed)
            + len(self.users_removed)
            + self.members_added_count
            + self.members_removed_count
            + len(self.nested_added)
            + len(self.nested_removed)
        )

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


def _source_id(conn: Connection, name: str, kind: str, url: str, *, write: bool) -> int | None:
    """The source's row id; a write adds the source on its first sync, a dry run adds nothing."""
    found = sources.find_source_id(conn, name)
    if found is None and write:
        return sources.add_source(conn, name, kind, url)
    return found


def _stand_in_ids(count: int, offset: int = 0) -> list[int]:
    # A dry run reserves nothing: negative ids stand in, distinct across users and groups.
    return [-(i + 1) - offset for i in range(count)]


@dataclass(slots=True)
class _Plan:
    """Everything a reconcile will write, worked out before the first write.

    Memberships are packed integer pairs (see bulk.pair_keys).
    """

    diff: SyncDiff = field(default_factory=SyncDiff)
    user_ids: dict[str, int] = field(default_factory=dict)
    user_names: dict[int, str] = field(default_factory=dict)
    group_ids: dict[str, int] = field(default_factory=dict)
    group_names: dict[int, str] = field(default_factory=dict)
    new_users: list[SourceUser] = field(default_factory=list)
    new_user_ids: list[int] = field(default_factory=list)
    changed_users: list[tuple[int, SourceUser]] = field(default_factory=list)
    removed_users: list[UserRow] = field(default_factory=list)
    new_groups: list[SourceGroup] = field(default_factory=list)
    new_group_ids: list[int] = field(default_factory=list)
    changed_groups: list[tuple[int, SourceGroup]] = field(default_factory=list)
    removed_groups: list[GroupRow] = field(default_factory=list)
    # Rows marked removed that come back: counted in the sizes a delta reports.
    users_back: int = 0
    groups_back: int = 0
    members_added: set[int] = field(default_factory=set)
    members_removed: set[int] = field(default_factory=set)
    nested_added: set[int] = field(default_factory=set)
    nested_removed: set[int] = field(default_factory=set)

    def take_users(self, users: Iterable[SourceUser], existing: dict[str, UserRow]) -> None:
        """Sort users into new and changed (or back from removal) against their cached rows."""
        for user in users:
            old = existing.get(user.upstream_id)
            if old is None:
                self.new_users.append(user)
                continue
            self.user_ids[user.upstream_id] = old.id
            self.user_names[old.id] = user.user_name
            if old.removed_at is not None or not old.matches(user):
                self.changed_users.append((old.id, user))
                self.diff.users_changed.append(user.user_name)
                self.users_back += old.removed_at is not None
        self.diff.users_changed.sort()

    def remove_users(self, rows: list[UserRow], conn: Connection, write: bool) -> None:
        """Record the removed users, then give the new ones their ids (negative on a dry run)."""
        self.removed_users = rows
        for old in rows:
            self.user_names[old.id] = old.user_name
        self.diff.users_removed = sorted(old.user_name for old in rows)
        count = len(self.new_users)
        self.new_user_ids = cache.new_user_ids(conn, count) if write else _stand_in_ids(count)
        for user, new_id in zip(self.new_users, self.new_user_ids, strict=True):
            self.user_ids[user.upstream_id] = new_id
            self.user_names[new_id] = user.user_name
        self.diff.users_added = sorted(u.user_name for u in self.new_users)

    def take_groups(self, groups: Iterable[SourceGroup], existing: dict[str, GroupRow]) -> None:
        """Sort groups into new, renamed or changed, and back from removal (counted as added)."""
        for group in groups:
            old = existing.get(group.upstream_id)
            if old is None:
                self.new_groups.append(group)
                continue
            self.group_ids[group.upstream_id] = old.id
            self.group_names[old.id] = group.name
            if old.removed_at is not None:
                self.changed_groups.append((old.id, group))
                self.diff.groups_added.append(group.name)
                self.groups_back += 1
            elif not old.matches(group):
                self.changed_groups.append((old.id, group))
                if old.name != group.name:
                    self.diff.groups_renamed.append((old.name, group.name))
        self.diff.groups_renamed.sort()

    def remove_groups(self, rows: list[GroupRow], conn: Connection, write: bool) -> None:
        self.removed_groups = rows
        for old in rows:
            self.group_names[old.id] = old.name
        self.diff.groups_removed = sorted(old.name for old in rows)
        count = len(self.new_groups)
        self.new_group_ids = (
            cache.new_group_ids(conn, count) if write else _stand_in_ids(count, len(self.new_users))
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
            (group_names[_unpack(k >> 32)], group_names[_unpack(k & PAIR_MASK)]) for k in self.nested_added
        )
        diff.nested_removed = sorted(
            (group_names[_unpack(k >> 32)], group_names[_unpack(k & PAIR_MASK)]) for k in self.nested_removed
        )

    def finish(self, conn: Connection, source_id: int | None, write: bool, now: datetime | None) -> SyncDiff:
        """Write the plan (when write is set) and list the grants it orphans."""
        removed_ids = ([old.id for old in self.removed_groups], [old.id for old in self.removed_users])
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
        cache.insert_users(conn, source_id, self.new_user_ids, self.new_users)
        cache.insert_groups(conn, source_id, self.new_group_ids, self.new_groups)
        cache.update_users(conn, self.changed_users)
        cache.update_groups(conn, self.changed_groups)
        cache.mark_users_removed(conn, [old.id for old in self.removed_users], now)
        cache.mark_groups_removed(conn, [old.id for old in self.removed_groups], now)
        names = (self.new_users, self.new_groups, self.changed_users, self.changed_groups)
        if any(names) or self.removed_users or self.removed_groups:
            cache.refresh_lookalikes(conn)
        cache.delete_user_members(conn, self.members_removed)
        cache.delete_group_members(conn, self.nested_removed)
        cache.insert_user_members(conn, self.members_added)
        cache.insert_group_members(conn, self.nested_added)
        sources.mark_synced(conn, source_id, now)


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
    source_id = _source_id(conn, source_name, source_kind, source_url, write=write)
    existing_users: dict[str, UserRow] = {}
    existing_groups: dict[str, GroupRow] = {}
    if source_id is not None:
        existing_users = cache.user_rows(conn, source_id)
        existing_groups = cache.group_rows(conn, source_id)
    plan = _Plan()

    # Users: new, changed (or back from removal), removed.
    plan.take_users(snapshot.users, existing_users)
    seen_users = {u.upstream_id for u in snapshot.users}
    removed_users = [
        old
        for upstream, old in existing_users.items()
        if old.removed_at is None and upstream not in seen_users
    ]
    active_user_count = sum(1 for old in existing_users.values() if old.removed_at is None)
    guard.check("users", len(removed_users), active_user_count)
    plan.remove_users(removed_users, conn, write)

    # Groups.
    plan.take_groups(snapshot.groups, existing_groups)
    seen_groups = {g.upstream_id for g in snapshot.groups}
    removed_groups = [
        old
        for upstream, old in existing_groups.items()
        if old.removed_at is None and upstream not in seen_groups
    ]
    active_group_count = sum(1 for old in existing_groups.values() if old.removed_at is None)
    guard.check("groups", len(removed_groups), active_group_count)
    plan.remove_groups(removed_groups, conn, write)

    # Memberships, compared as packed integer pairs (see bulk.pair_keys).
    existing_members: set[int] = set()
    existing_nested: set[int] = set()
    if source_id is not None:
        existing_members = cache.user_member_keys(conn, source_id)
        existing_nested = cache.group_member_keys(conn, source_id)
    wanted_members: set[int] = set()
    wanted_nested: set[int] = set()
    user_ids, group_ids = plan.user_ids, plan.group_ids
    for group in snapshot.groups:
        gid = group_ids[group.upstream_id]
        high = (gid & PAIR_MASK) << 32
        wanted_members.update(high | (user_ids[m] & PAIR_MASK) for m in group.user_members)
        wanted_nested.update(high | (group_ids[m] & PAIR_MASK) for m in group.group_members)
    plan.members_added = wanted_members - existing_members
    plan.members_removed = existing_members - wanted_members
    plan.nested_added = wanted_nested - existing_nested
    plan.nested_removed = existing_nested - wanted_nested
    guard.check("memberships", len(plan.members_removed), len(existing_members))
    plan.describe_memberships()
    return plan.finish(conn, source_id, write, now)


def reconcile_delta(
    conn: Connection,
    delta: Delta,
    *,
    source_name: str,
    source_kind: str,
    source_url: str,
    guard: DeletionGuard,
    write: bool,
    now: datetime | None = None,
) -> tuple[SyncDiff, int, int]:
    """Apply the changes of one source onto the cache, reading and writing only the rows they name.

    The same rules and the same diff as reconcile() given the whole directory after the
    changes: identity by upstream id, removals marked and stripped of their memberships,
    the guard measured against COUNTs of the existing rows, orphaned grants listed. A
    member that neither the cache nor the changes know means the changes are incomplete.
    Returns the diff, and how many users and groups the source has once it is applied.
    conn must be inside a transaction the caller commits or rolls back as a whole.
    """
    if write:
        lock_name(conn, f"sync:{source_name}")
    source_id = _source_id(conn, source_name, source_kind, source_url, write=write)
    where = f"{source_name}: delta"
    changed_users = {u.upstream_id for u in delta.users}
    changed_groups = {c.group.upstream_id for c in delta.groups}
    gone_users, gone_groups = set(delta.users_removed), set(delta.groups_removed)
    both = sorted((changed_users & gone_users) | (changed_groups & gone_groups))
    if both:
        raise SyncError(f"{where}: {both[0]!r} is both changed and removed; sync aborted")
    user_refs: set[str] = set()
    group_refs: set[str] = set()
    for change in delta.groups:
        user_refs.update(change.group.user_members, change.users_removed)
        group_refs.update(change.group.group_members, change.groups_removed)
    existing_users: dict[str, UserRow] = {}
    existing_groups: dict[str, GroupRow] = {}
    user_count = group_count = 0
    if source_id is not None:
        existing_users = cache.user_rows(conn, source_id, changed_users | gone_users | user_refs)
        existing_groups = cache.group_rows(conn, source_id, changed_groups | gone_groups | group_refs)
        user_count, group_count = cache.count_users(conn, source_id), cache.count_groups(conn, source_id)
    plan = _Plan()

    plan.take_users(delta.users, existing_users)
    removed_users = [row for u in gone_users if (row := existing_users.get(u)) and row.removed_at is None]
    guard.check("users", len(removed_users), user_count)
    plan.remove_users(removed_users, conn, write)
    plan.take_groups((c.group for c in delta.groups), existing_groups)
    removed_groups = [
        found for g in gone_groups if (found := existing_groups.get(g)) and found.removed_at is None
    ]
    guard.check("groups", len(removed_groups), group_count)
    plan.remove_groups(removed_groups, conn, write)

    # Members named by the changes but not changed themselves keep their cached rows.
    for upstream in user_refs - changed_users - gone_users:
        user_row = existing_users.get(upstream)
        if user_row is not None and user_row.removed_at is None:
            plan.user_ids[upstream] = user_row.id
            plan.user_names[user_row.id] = user_row.user_name
    for upstream in group_refs - changed_groups - gone_groups:
        group_row = existing_groups.get(upstream)
        if group_row is not None and group_row.removed_at is None:
            plan.group_ids[upstream] = group_row.id
            plan.group_names[group_row.id] = group_row.name

    # Every existing membership the changes could touch: those of the members they name,
    # of the users and groups removed, and all of those of groups listed whole.
    gone_user_ids = {old.id for old in removed_users}
    gone_group_ids = {old.id for old in removed_groups}
    whole_ids = {
        existing_groups[c.group.upstream_id].id
        for c in delta.groups
        if c.whole and c.group.upstream_id in existing_groups
    }
    user_keys = {plan.user_ids[u] for u in user_refs if u in plan.user_ids} | gone_user_ids
    child_keys = {plan.group_ids[g] for g in group_refs if g in plan.group_ids} | gone_group_ids
    members = cache.user_member_keys_touching(conn, user_keys, gone_group_ids | whole_ids)
    nested = cache.group_member_keys_touching(conn, child_keys, gone_group_ids | whole_ids)
    plan.members_removed = {k for k in members if k & PAIR_MASK in gone_user_ids or k >> 32 in gone_group_ids}
    plan.nested_removed = {k for k in nested if k & PAIR_MASK in gone_group_ids or k >> 32 in gone_group_ids}
    members_of: dict[int, set[int]] = defaultdict(set)
    nested_in: dict[int, set[int]] = defaultdict(set)
    for pairs, by_group in ((members, members_of), (nested, nested_in)):
        for k in pairs:
            if k >> 32 in whole_ids:
                by_group[k >> 32].add(k)

    for change in delta.groups:
        group = change.group
        gid = plan.group_ids[group.upstream_id]
        wanted_members = {
            pack_pair(gid, uid)
            for m in group.user_members
            if (uid := _member_id(plan.user_ids, gone_users, m, source_name, group.name, "user")) is not None
        }
        wanted_nested = {
            pack_pair(gid, cid)
            for m in group.group_members
            if (cid := _member_id(plan.group_ids, gone_groups, m, source_name, group.name, "group"))
            is not None
        }
        plan.members_added |= wanted_members - members
        plan.nested_added |= wanted_nested - nested
        if change.whole:
            plan.members_removed |= members_of[gid] - wanted_members
            plan.nested_removed |= nested_in[gid] - wanted_nested
            continue
        plan.members_removed |= members & {
            pack_pair(gid, plan.user_ids[m]) for m in change.users_removed if m in plan.user_ids
        }
        plan.nested_removed |= nested & {
            pack_pair(gid, plan.group_ids[m]) for m in change.groups_removed if m in plan.group_ids
        }
    removed = len(plan.members_removed)
    # Counting a million memberships is the one COUNT worth skipping when the guard cannot refuse.
    if not guard.allow and removed > guard.floor and source_id is not None:
        guard.check("memberships", removed, cache.count_user_members(conn, source_id))
    _name_the_rest(conn, plan)
    plan.describe_memberships()
    diff = plan.finish(conn, source_id, write, now)
    users = user_count + len(plan.new_users) + plan.users_back - len(removed_users)
    groups = group_count + len(plan.new_groups) + plan.groups_back - len(removed_groups)
    return diff, users, groups


def _member_id(
    ids: dict[str, int], gone: set[str], member: str, source_name: str, group: str, kind: str
) -> int | None:
    """The row id of a member the changes add; None when the changes also remove it."""
    found = ids.get(member)
    if found is not None or member in gone:
        return found
    raise SyncError(
        f"{source_name}: delta: group {group!r} gains {kind} {member!r}, which neither the cache nor"
        " the changes contain; the changes are incomplete, sync aborted; a full sync starts afresh",
        hint=Hint(Remedy.FULL_SYNC, source_name),
    )


def _name_the_rest(conn: Connection, plan: _Plan) -> None:
    """Names for the users and groups in changed memberships that the changes do not name."""
    pairs = (plan.members_added, plan.members_removed, plan.nested_added, plan.nested_removed)
    groups = {_unpack(k >> 32) for keys in pairs for k in keys}
    groups |= {_unpack(k & PAIR_MASK) for keys in pairs[2:] for k in keys}
    users = {_unpack(k & PAIR_MASK) for keys in pairs[:2] for k in keys}
    plan.group_names.update(cache.group_names(conn, groups - plan.group_names.keys()))
    plan.user_names.update(cache.user_names(conn, users - plan.user_names.keys()))


def _unpack(value: int) -> int:
    # Dry-run ids are negative and were stored masked to 32 bits.
    return value - (1 << 32) if value >= 1 << 31 else value


def _names_by_group(
    keys: set[int], group_names: dict[int, str], user_names: dict[int, str]
) -> dict[str, list[str]]:
    by_group: dict[int, list[int]] = defaultdict(list)
    for key in keys:
        by_group[_unpack(key >> 32)].append(_unpack(key & PAIR_MASK))
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
