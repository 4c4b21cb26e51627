"""Who has admin where: every folder's effective admins across all workspaces, with why."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from groupwarden.domain.access import Grant, Nesting, effective_access
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.store import directory as store
from groupwarden.store import grants as grants_store


@dataclass(frozen=True, slots=True)
class AdminRow:
    target: str
    user_name: str
    active: bool
    explanation: str


class _ReadOnce:
    """domain.access.AccessReads over what was read for every folder at once."""

    def __init__(
        self,
        group_names: Mapping[int, str],
        members: Mapping[int, list[int]],
        users: Mapping[int, store.UserState],
    ) -> None:
        self.names = group_names
        self.direct = members
        self.users = users

    def group_names(self, ids: Collection[int]) -> Mapping[int, str]:
        return self.names

    def user_names(self, ids: Collection[int]) -> Mapping[int, str]:
        return {u: self.users[u].user_name for u in ids if u in self.users}

    def members(self, group_ids: Collection[int]) -> Mapping[int, list[list[int]]]:
        return {g: [self.direct[g]] for g in group_ids if g in self.direct}

    def removed_users(self, ids: Collection[int]) -> list[int]:
        return [u for u in ids if u not in self.users]


def admins_everywhere(ctx: Context) -> list[AdminRow]:
    """For each folder, the users with effective admin on it and the reason, by folder then user.

    Only admin grants on folders can make an admin, so only those are read; each granted
    group's nested members are expanded and read once, however many folders it administers.
    Orphaned grants (their group or user removed upstream) grant nothing and are skipped.
    """
    with ctx.engine.connect() as conn:
        grants = grants_store.live_folder_admin_grants(conn)
        group_ids = {g.group_id for g in grants if g.group_id is not None}
        nesting = Nesting(store.nested_children(conn) if group_ids else {})
        reached = {sub for gid in group_ids for sub in nesting.below(gid)}
        names = store.group_names(conn, reached)
        members = store.direct_members(conn, reached)
        users = store.live_users(
            conn, {u for part in members.values() for u in part} | {g.user_id for g in grants if g.user_id}
        )
    reads = _ReadOnce(names, members, users)
    by_folder: dict[str, list[Grant]] = defaultdict(list)
    for g in grants:
        by_folder[g.granted_on].append(g)
    rows = []
    for target, on_folder in by_folder.items():
        found = effective_access(on_folder, nesting, reads, Role.ADMIN)
        why: dict[int, str] = {}
        for uid, rank in found.best.items():
            if rank not in why:
                why[rank] = found.reason(rank).explain()
            user = users[uid]
            rows.append(AdminRow(target, user.user_name, user.active, why[rank]))
    rows.sort(key=lambda r: (r.target, r.user_name.lower(), r.user_name))
    return rows
