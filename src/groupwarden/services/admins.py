"""Who has admin where: every folder's effective admins across all workspaces, with why."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from groupwarden.domain.access import Grant, Nesting, effective_access_each
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.store import directory as store
from groupwarden.store import grants as grants_store
from groupwarden.store.access import StoreReads


@dataclass(frozen=True, slots=True)
class AdminRow:
    target: str
    user_name: str
    active: bool
    explanation: str


def admins_everywhere(ctx: Context) -> list[AdminRow]:
    """For each folder, the users with effective admin on it and the reason, by folder then user.

    Only admin grants on folders can make an admin, so only those are read; each granted
    group's nested members are expanded and read once, however many folders it administers.
    Orphaned grants (their group or user removed upstream) grant nothing and are skipped.
    """
    with ctx.engine.connect() as conn:
        grants = grants_store.live_folder_admin_grants(conn)
        by_folder: dict[str, list[Grant]] = defaultdict(list)
        for g in grants:
            by_folder[g.granted_on].append(g)
        nesting = Nesting(store.nested_children(conn) if any(g.group_id for g in grants) else {})
        found = effective_access_each(by_folder, nesting, StoreReads(conn), Role.ADMIN)
        users = store.live_users(conn, {uid for answer in found.values() for uid in answer.best})
    rows = []
    for target, answer in found.items():
        why: dict[int, str] = {}
        for uid, rank in answer.best.items():
            if rank not in why:
                why[rank] = answer.reason(rank).explain()
            user = users[uid]
            rows.append(AdminRow(target, user.user_name, user.active, why[rank]))
    rows.sort(key=lambda r: (r.target, r.user_name.lower(), r.user_name))
    return rows
