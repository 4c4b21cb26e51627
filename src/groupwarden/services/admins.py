"""Who has admin where: every folder's effective admins across all workspaces, with why."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, text

from groupwarden.domain.access import Reason, best_reason, expand_down
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.services.directory import group_names, nested_children
from groupwarden.store import bulk


@dataclass(frozen=True, slots=True)
class AdminRow:
    target: str
    user_name: str
    active: bool
    explanation: str


def admins_everywhere(ctx: Context) -> list[AdminRow]:
    """For each folder, the users with effective admin on it and the reason, by folder then user.

    Only admin grants on folders can make an admin, so only those are read; each granted
    group's nested members are expanded once, however many folders it administers.
    Orphaned grants (their group or user removed upstream) grant nothing and are skipped.
    """
    with ctx.engine.connect() as conn:
        grants = conn.execute(
            text(
                "SELECT f.workspace_id || '/' || f.name, gr.group_id, gr.user_id FROM grants gr"
                " JOIN folders f ON f.id = gr.folder_id"
                " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
                " LEFT JOIN users u ON u.id = gr.user_id"
                " WHERE gr.role = :admin AND gr.item_path = ''"
                " AND ig.removed_at IS NULL AND u.removed_at IS NULL"
            ),
            {"admin": str(Role.ADMIN)},
        ).all()
        group_ids = sorted({int(g) for _t, g, _u in grants if g is not None})
        children = nested_children(conn) if group_ids else {}
        paths = {g: expand_down([g], children) for g in group_ids}
        names = group_names(conn, {sub for found in paths.values() for sub in found})
        members = _direct_members(conn, {sub for found in paths.values() for sub in found})
        # Per granted group, each user reached with its shortest chains: several of one length
        # stay, so the reason chosen below breaks the tie exactly as who_can does.
        reached: dict[int, dict[int, list[tuple[str, ...]]]] = {}
        for group_id, found in paths.items():
            chains_of: dict[int, list[tuple[str, ...]]] = {}
            for sub, path in sorted(found.items(), key=lambda item: len(item[1])):
                chain = tuple(names[g] for g in path)
                for uid in members.get(sub, ()):
                    known = chains_of.setdefault(uid, [chain])
                    if known[0] is not chain and len(known[0]) == len(chain):
                        known.append(chain)
            reached[group_id] = chains_of
        reasons: dict[tuple[str, int], list[Reason]] = defaultdict(list)
        user_grants: list[tuple[str, int]] = []
        for target, group_id, user_id in grants:
            if user_id is not None:
                user_grants.append((str(target), int(user_id)))
                continue
            granted = f"g/{names[int(group_id)]}"
            for uid, chains in reached[int(group_id)].items():
                reasons[(str(target), uid)] += [Reason(Role.ADMIN, str(target), granted, c) for c in chains]
        users = _users(conn, {uid for _t, uid in reasons} | {uid for _t, uid in user_grants})
        for target, uid in user_grants:
            reasons[(target, uid)].append(Reason(Role.ADMIN, target, f"u/{users[uid][0]}"))
    rows = [
        AdminRow(target, users[uid][0], users[uid][1], best_reason(found).explain())
        for (target, uid), found in reasons.items()
        # A removed user reached through a live group is no admin.
        if uid in users
    ]
    rows.sort(key=lambda r: (r.target, r.user_name.lower(), r.user_name))
    return rows


def _direct_members(conn: Connection, group_ids: set[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for listed in bulk.id_lists(group_ids):
        for gid, uid in conn.execute(
            text(f"SELECT group_id, user_id FROM user_memberships WHERE group_id IN ({listed})")
        ):
            out[gid].append(uid)
    return out


def _users(conn: Connection, ids: set[int]) -> dict[int, tuple[str, bool]]:
    """Live users among ids: id -> (userName, active)."""
    out: dict[int, tuple[str, bool]] = {}
    for listed in bulk.id_lists(ids):
        for uid, name, active in conn.execute(
            text(f"SELECT id, user_name, active FROM users WHERE id IN ({listed}) AND removed_at IS NULL")
        ):
            out[uid] = (str(name), bool(active))
    return out
