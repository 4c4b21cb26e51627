"""Effective access queries: who can reach a target, and what a user can reach. Always with why."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, text

from groupwarden.domain.access import Reason, best_reason, expand_down, expand_up
from groupwarden.domain.principals import Target
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.services.directory import (
    group_names,
    nested_children,
    nested_parents,
    resolve_user,
)
from groupwarden.services.layout import resolve_folder


@dataclass(frozen=True, slots=True)
class UserAccess:
    user_id: int
    user_name: str
    display_name: str | None
    active: bool
    role: Role
    reason: Reason

    @property
    def explanation(self) -> str:
        return self.reason.explain()


@dataclass(frozen=True, slots=True)
class TargetAccess:
    target: str
    role: Role
    reason: Reason

    @property
    def explanation(self) -> str:
        return self.reason.explain()


# (group_id, user_id, role, granted_on) of the live grants on a target and its folder.
_LiveGrant = tuple[int | None, int | None, Role, str]


def _live_grants(conn: Connection, folder_id: int, target: Target) -> list[_LiveGrant]:
    rows = conn.execute(
        text(
            "SELECT gr.group_id, gr.user_id, gr.role, gr.item_path FROM grants gr"
            " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
            " LEFT JOIN users u ON u.id = gr.user_id"
            " WHERE gr.folder_id = :f AND gr.item_path IN ('', :i)"
            " AND ig.removed_at IS NULL AND u.removed_at IS NULL"
        ),
        {"f": folder_id, "i": target.item_path},
    ).all()
    folder = str(target.folder_target)
    return [(r[0], r[1], Role.parse(r[2]), f"{target.workspace}/{r[3]}" if r[3] else folder) for r in rows]


def effective_on(conn: Connection, grants: list[_LiveGrant]) -> dict[int, Reason]:
    """user id -> the best reason among grants, nested groups expanded."""
    best: dict[int, tuple[tuple[int, int, int, str], Reason]] = {}

    def offer(uids: list[int], reason: Reason) -> None:
        key = reason.sort_key()
        for uid in uids:
            held = best.get(uid)
            if held is None or key < held[0]:
                best[uid] = (key, reason)

    children: dict[int, list[int]] | None = None
    names: dict[int, str] = {}
    for group_id, user_id, role, granted_on in grants:
        if user_id is not None:
            name = conn.execute(
                text("SELECT user_name FROM users WHERE id = :u"), {"u": user_id}
            ).scalar_one()
            offer([user_id], Reason(role, granted_on, f"u/{name}"))
            continue
        assert group_id is not None
        if children is None:
            children = nested_children(conn)
        paths = expand_down([group_id], children)
        missing = set(paths) - names.keys()
        names.update(group_names(conn, missing))
        for sub, path in paths.items():
            chain = tuple(names[g] for g in path)
            uids = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT m.user_id FROM user_memberships m JOIN users u ON u.id = m.user_id"
                        " WHERE m.group_id = :g AND u.removed_at IS NULL"
                    ),
                    {"g": sub},
                )
            ]
            offer(uids, Reason(role, granted_on, f"g/{names[group_id]}", chain))
    return {uid: held[1] for uid, held in best.items()}


def who_can(ctx: Context, target: str, *, minimum: Role = Role.VIEWER) -> list[UserAccess]:
    """Every user with at least minimum on target, highest role first, then by userName."""
    where = Target.parse(target)
    with ctx.engine.connect() as conn:
        folder_id = resolve_folder(conn, where.folder_target)
        reasons = effective_on(conn, _live_grants(conn, folder_id, where))
        reasons = {uid: r for uid, r in reasons.items() if r.role >= minimum}
        users = _user_rows(conn, reasons.keys())
    result = [
        UserAccess(uid, name, display, bool(active), reasons[uid].role, reasons[uid])
        for uid, name, display, active in users
    ]
    result.sort(key=lambda a: (-a.role, a.user_name))
    return result


def _user_rows(conn: Connection, ids: object) -> list[tuple[int, str, str | None, bool]]:
    id_list = sorted(ids)  # type: ignore[call-overload]
    out: list[tuple[int, str, str | None, bool]] = []
    if len(id_list) > 2000:
        # Cheaper to scan every user once than to send tens of thousands of ids.
        wanted = set(id_list)
        for r in conn.execute(text("SELECT id, user_name, display_name, active FROM users")):
            if r[0] in wanted:
                out.append((r[0], r[1], r[2], r[3]))
        return out
    for start in range(0, len(id_list), 500):
        chunk = ", ".join(str(int(i)) for i in id_list[start : start + 500])
        out.extend(
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                text(f"SELECT id, user_name, display_name, active FROM users WHERE id IN ({chunk})")
            )
        )
    return out


def access_of(ctx: Context, user: str) -> tuple[str, list[TargetAccess]]:
    """Every folder (and item with grants of its own) a user reaches, with role and why."""
    with ctx.engine.connect() as conn:
        ref = resolve_user(conn, user)
        direct = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT m.group_id FROM user_memberships m JOIN instance_groups g"
                    " ON g.id = m.group_id WHERE m.user_id = :u AND g.removed_at IS NULL"
                ),
                {"u": ref.id},
            )
        ]
        paths = expand_up(direct, nested_parents(conn))
        names = group_names(conn, set(paths))
        group_list = ", ".join(str(int(g)) for g in paths) or "NULL"
        rows = conn.execute(
            text(
                "SELECT gr.group_id, gr.user_id, gr.role, f.workspace_id, f.name, gr.item_path"
                " FROM grants gr JOIN folders f ON f.id = gr.folder_id"
                " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
                f" WHERE (gr.user_id = :u OR gr.group_id IN ({group_list}))"
                " AND ig.removed_at IS NULL"
            ),
            {"u": ref.id},
        ).all()
    reasons: dict[str, list[Reason]] = defaultdict(list)
    for group_id, user_id, role_text, workspace, folder, item in rows:
        role = Role.parse(role_text)
        on = f"{workspace}/{item}" if item else f"{workspace}/{folder}"
        if user_id is not None:
            reason = Reason(role, on, ref.principal)
        else:
            chain = tuple(names[g] for g in paths[group_id])
            reason = Reason(role, on, f"g/{names[group_id]}", chain)
        reasons[on].append(reason)
    # Items inherit from their folder: an item's answer includes the folder's reasons.
    for on in list(reasons):
        parts = on.split("/")
        if len(parts) > 2 and parts[1] == "f":
            reasons[on] = reasons[on] + reasons.get(f"{parts[0]}/{parts[2]}", [])
    result = [TargetAccess(on, best_reason(rs).role, best_reason(rs)) for on, rs in reasons.items() if rs]
    result.sort(key=lambda a: a.target)
    return ref.user_name, result


@dataclass(frozen=True, slots=True)
class Impact:
    """What a grant change would do to effective access, before it is made."""

    principal: str
    target: str
    before: Role | None
    after: Role | None
    # (userName, role before, role after) for every user whose effective role moves.
    gained: list[tuple[str, Role | None, Role]]
    lost: list[tuple[str, Role, Role | None]]

    def summary(self) -> str:
        from groupwarden.domain.roles import role_label

        head = f"{self.principal}: {role_label(self.before)} -> {role_label(self.after)} on {self.target}"
        if not self.gained and not self.lost:
            return f"{head}; no user's effective access changes"
        parts = []
        if self.gained:
            verb = role_label(self.after)
            parts.append(f"{len(self.gained)} user{'s' if len(self.gained) != 1 else ''} gain {verb}")
        if self.lost:
            parts.append(
                f"{len(self.lost)} user{'s' if len(self.lost) != 1 else ''} lose access or drop a role"
            )
        return f"{head}, {', '.join(parts)}"


def preview_change(ctx: Context, principal: str, target: str, new_role: Role | None) -> Impact:
    """Effective access on target now, and as it would be with principal at new_role (None: revoked)."""
    from groupwarden.domain.principals import PrincipalRef
    from groupwarden.services.directory import resolve_group

    where = Target.parse(target)
    ref = PrincipalRef.parse(principal)
    with ctx.engine.connect() as conn:
        folder_id = resolve_folder(conn, where.folder_target)
        if ref.kind == "g":
            group = resolve_group(conn, ref.name)
            gid, uid, label = group.id, None, group.principal
        else:
            user = resolve_user(conn, ref.name)
            gid, uid, label = None, user.id, user.principal
        on = str(where)
        grants = _live_grants(conn, folder_id, where)
        before_role = next((g[2] for g in grants if g[0] == gid and g[1] == uid and g[3] == on), None)
        changed = [g for g in grants if not (g[0] == gid and g[1] == uid and g[3] == on)]
        if new_role is not None:
            changed.append((gid, uid, new_role, on))
        old = effective_on(conn, grants)
        new = effective_on(conn, changed)
        moved = {
            u
            for u in old.keys() | new.keys()
            if (old[u].role if u in old else None) != (new[u].role if u in new else None)
        }
        names = {r[0]: r[1] for r in _user_rows(conn, moved)}
    gained: list[tuple[str, Role | None, Role]] = []
    lost: list[tuple[str, Role, Role | None]] = []
    for u in moved:
        a = old[u].role if u in old else None
        b = new[u].role if u in new else None
        if b is not None and (a is None or b > a):
            gained.append((names[u], a, b))
        elif a is not None:
            lost.append((names[u], a, b))
    gained.sort()
    lost.sort(key=lambda t: t[0])
    return Impact(label, on, before_role, new_role, gained, lost)
