"""Role changes (grant, change, revoke) and grant listings.

One function owns each change; each writes its audit event in the same transaction,
refuses a change made against a stale view, and asks for confirmation before the last
admin of a folder goes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from groupwarden.domain.errors import GroupwardenError, NeedsConfirmation, StaleView
from groupwarden.domain.principals import PrincipalRef, Target
from groupwarden.domain.roles import Role, role_label
from groupwarden.services.audit import hold_chain, last_change_of, record_change
from groupwarden.services.context import Context
from groupwarden.services.directory import resolve_group, resolve_user
from groupwarden.services.layout import resolve_folder
from groupwarden.store import bulk
from groupwarden.store.db import lock_row, write_transaction


class _Any(enum.Enum):
    ANY = "any"


#: Pass as expected= to change a grant whatever it is now (scripts that own the state).
ANY = _Any.ANY
Expected = Role | None | _Any


@dataclass(frozen=True, slots=True)
class Change:
    target: str
    principal: str
    before: Role | None
    after: Role | None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        if not self.changed:
            return f"{self.principal} already has {role_label(self.after)} on {self.target}; nothing changed"
        return f"{self.principal}: {role_label(self.before)} -> {role_label(self.after)} on {self.target}"


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: int
    target: str
    workspace: str
    folder: str
    item_path: str
    principal: str
    role: Role
    granted_by: str
    granted_at: datetime
    orphaned: bool
    version: int
    upstream_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Principal:
    key: str
    group_id: int | None
    user_id: int | None
    label: str


def _resolve_principal(conn: Connection, principal: str, *, include_removed: bool) -> _Principal:
    ref = PrincipalRef.parse(principal)
    if ref.kind == "g":
        group = resolve_group(conn, ref.name, include_removed=include_removed)
        return _Principal(f"g:{group.id}", group.id, None, group.principal)
    user = resolve_user(conn, ref.name, include_removed=include_removed)
    return _Principal(f"u:{user.id}", None, user.id, user.principal)


def _look(
    conn: Connection, target: str, principal: str, expected: Expected, *, include_removed: bool
) -> tuple[Target, int, _Principal, tuple[int, Role, int] | None]:
    """Resolve and lock what a change is about, and refuse it if the caller's view is stale.

    Returns the target, its folder id, the principal and the current grant (id, role, version).
    """
    where = Target.parse(target)
    folder_id = resolve_folder(conn, where.folder_target)
    who = _resolve_principal(conn, principal, include_removed=include_removed)
    _lock(conn, folder_id, who)
    current = _current(conn, folder_id, where.item_path, who.key)
    _check_expected(conn, expected, None if current is None else current[1], str(where), who.label)
    return where, folder_id, who, current


def _lock(conn: Connection, folder_id: int, who: _Principal) -> None:
    # The folder lock orders changes on one folder (the last-admin count stays true until
    # commit); the shared lock on the group holds off a sync removing it meanwhile.
    hold_chain(conn)
    lock_row(conn, "folders", folder_id)
    if who.group_id is not None:
        lock_row(conn, "instance_groups", who.group_id, share=True)


def _current(conn: Connection, folder_id: int, item_path: str, key: str) -> tuple[int, Role, int] | None:
    row = conn.execute(
        text(
            "SELECT id, role, version FROM grants WHERE folder_id = :f AND item_path = :i"
            " AND principal_key = :k"
        ),
        {"f": folder_id, "i": item_path, "k": key},
    ).first()
    return None if row is None else (row[0], Role.parse(row[1]), row[2])


def _check_expected(
    conn: Connection, expected: Expected, current: Role | None, target: str, principal: str
) -> None:
    if expected is ANY or expected == current:
        return
    last = last_change_of(conn, target, principal)
    who = f" by {last.actor}@{last.host} at {last.at:%Y-%m-%d %H:%M:%S} UTC" if last else ""
    raise StaleView(
        f"refused: {principal} on {target} changed since you looked: you saw"
        f" {role_label(expected)}, it is now {role_label(current)} (changed{who or ' meanwhile'});"
        " reload and decide again; nothing was changed"
    )


def _check_last_admin(
    conn: Connection, folder_id: int, item_path: str, grant_id: int, target: str, confirmed: bool
) -> None:
    if item_path or confirmed:
        return
    others = conn.execute(
        text(
            "SELECT COUNT(*) FROM grants g LEFT JOIN instance_groups ig ON ig.id = g.group_id"
            " LEFT JOIN users u ON u.id = g.user_id"
            " WHERE g.folder_id = :f AND g.item_path = '' AND g.role = 'admin' AND g.id != :id"
            " AND ig.removed_at IS NULL AND u.removed_at IS NULL"
        ),
        {"f": folder_id, "id": grant_id},
    ).scalar_one()
    if others == 0:
        raise NeedsConfirmation(
            f"this removes the last admin of {target}; it needs an explicit confirmation; nothing was changed"
        )


def apply_grant(
    ctx: Context,
    conn: Connection,
    principal: str,
    target: str,
    role: Role | str,
    *,
    expected: Expected = ANY,
    confirm_last_admin: bool = False,
) -> Change:
    """Grant or change a role inside the caller's write transaction."""
    ctx.require_writable("granting a role")
    new = role if isinstance(role, Role) else Role.parse(role)
    where, folder_id, who, current = _look(conn, target, principal, expected, include_removed=False)
    shown = str(where)
    before = None if current is None else current[1]
    if before == new:
        return Change(shown, who.label, before, new)
    now = ctx.clock()
    if current is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    text(
                        "INSERT INTO grants (folder_id, item_path, principal_key, group_id, user_id,"
                        " role, granted_by, granted_at, version)"
                        " VALUES (:f, :i, :k, :g, :u, :r, :by, :at, 1)"
                    ),
                    {
                        "f": folder_id,
                        "i": where.item_path,
                        "k": who.key,
                        "g": who.group_id,
                        "u": who.user_id,
                        "r": new.label,
                        "by": str(ctx.actor),
                        "at": now,
                    },
                )
        except IntegrityError:
            raise StaleView(
                f"refused: {who.label} on {shown} was granted by someone else meanwhile;"
                " reload and decide again; nothing was changed"
            ) from None
    else:
        grant_id, _role, version = current
        if before is Role.ADMIN:
            _check_last_admin(conn, folder_id, where.item_path, grant_id, shown, confirm_last_admin)
        updated = conn.execute(
            text(
                "UPDATE grants SET role = :r, granted_by = :by, granted_at = :at,"
                " version = version + 1 WHERE id = :id AND version = :v"
            ),
            {"r": new.label, "by": str(ctx.actor), "at": now, "id": grant_id, "v": version},
        )
        if updated.rowcount != 1:
            _check_expected(conn, before, None, shown, who.label)
    record_change(
        conn, ctx.actor, ctx.clock(), "grant" if before is None else "change", shown, who.label, before, new
    )
    return Change(shown, who.label, before, new)


def grant(
    ctx: Context,
    principal: str,
    target: str,
    role: Role | str,
    *,
    expected: Expected = ANY,
    confirm_last_admin: bool = False,
) -> Change:
    """Give principal role on target, or change the role it has there."""
    Target.parse(target)
    PrincipalRef.parse(principal)
    if not isinstance(role, Role):
        role = Role.parse(role)
    ctx.require_writable("granting a role")
    with write_transaction(ctx.engine) as conn:
        return apply_grant(
            ctx,
            conn,
            principal,
            target,
            role,
            expected=expected,
            confirm_last_admin=confirm_last_admin,
        )


def revoke(
    ctx: Context,
    principal: str,
    target: str,
    *,
    expected: Expected = ANY,
    confirm_last_admin: bool = False,
) -> Change:
    """Remove principal's grant on target. Orphaned grants (removed groups) can be revoked too."""
    Target.parse(target)
    PrincipalRef.parse(principal)
    ctx.require_writable("revoking a role")
    with write_transaction(ctx.engine) as conn:
        where, folder_id, who, current = _look(conn, target, principal, expected, include_removed=True)
        shown = str(where)
        before = None if current is None else current[1]
        if current is None:
            raise GroupwardenError(f"{who.label} has no grant on {shown}; nothing to revoke")
        grant_id, role, version = current
        if role is Role.ADMIN:
            _check_last_admin(conn, folder_id, where.item_path, grant_id, shown, confirm_last_admin)
        deleted = conn.execute(
            text("DELETE FROM grants WHERE id = :id AND version = :v"),
            {"id": grant_id, "v": version},
        )
        if deleted.rowcount != 1:
            _check_expected(conn, before, None, shown, who.label)
        record_change(conn, ctx.actor, ctx.clock(), "revoke", shown, who.label, before, None)
        return Change(shown, who.label, before, None)


_GRANT_SELECT = (
    "SELECT gr.id, gr.folder_id, f.workspace_id, f.name, gr.item_path, gr.group_id, gr.user_id,"
    " ig.name, u.user_name, gr.role, gr.granted_by, gr.granted_at, gr.version,"
    " ig.removed_at, u.removed_at, ig.upstream_id"
    " FROM grants gr JOIN folders f ON f.id = gr.folder_id"
    " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
    " LEFT JOIN users u ON u.id = gr.user_id"
)


def _grant_rows(conn: Connection, where: str, params: dict[str, object]) -> list[GrantRow]:
    rows = conn.execute(
        text(
            f"{_GRANT_SELECT} WHERE {where} ORDER BY f.workspace_id, f.name, gr.item_path, gr.principal_key"
        ),
        params,
    ).all()
    out = []
    for r in rows:
        workspace, folder, item = r[2], r[3], r[4]
        target = f"{workspace}/{folder}" if not item else f"{workspace}/{item}"
        principal = f"g/{r[7]}" if r[5] is not None else f"u/{r[8]}"
        granted_at = r[11] if isinstance(r[11], datetime) else datetime.fromisoformat(str(r[11]))
        out.append(
            GrantRow(
                id=r[0],
                target=target,
                workspace=workspace,
                folder=folder,
                item_path=item,
                principal=principal,
                role=Role.parse(r[9]),
                granted_by=r[10],
                granted_at=granted_at,
                orphaned=r[13] is not None or r[14] is not None,
                version=r[12],
                upstream_id=r[15],
            )
        )
    return out


def folder_grants(ctx: Context, target: str, *, include_items: bool = True) -> list[GrantRow]:
    """Grants on a folder (and, by default, on the items inside it)."""
    where = Target.parse(target)
    with ctx.engine.connect() as conn:
        folder_id = resolve_folder(conn, where.folder_target)
        if where.item is not None:
            return _grant_rows(
                conn,
                "gr.folder_id = :f AND gr.item_path IN ('', :i)",
                {"f": folder_id, "i": where.item_path},
            )
        if include_items:
            return _grant_rows(conn, "gr.folder_id = :f", {"f": folder_id})
        return _grant_rows(conn, "gr.folder_id = :f AND gr.item_path = ''", {"f": folder_id})


def group_grants(ctx: Context, group: str) -> list[GrantRow]:
    """Every grant naming a group, across all workspaces."""
    with ctx.engine.connect() as conn:
        ref = resolve_group(conn, group, include_removed=True)
        return _grant_rows(conn, "gr.group_id = :g", {"g": ref.id})


def all_grants(conn: Connection) -> list[GrantRow]:
    return _grant_rows(conn, "1 = 1", {})


def orphaned_grants(ctx: Context) -> list[GrantRow]:
    """Grants naming a group or user removed upstream: kept, flagged, granting nothing."""
    with ctx.engine.connect() as conn:
        return _grant_rows(conn, "(ig.removed_at IS NOT NULL OR u.removed_at IS NOT NULL)", {})


def describe_grants_of(conn: Connection, *, group_ids: list[int], user_ids: list[int]) -> list[str]:
    """'principal role on target' for every grant naming these groups or users."""
    out: list[str] = []
    for column, ids in (("gr.group_id", group_ids), ("gr.user_id", user_ids)):
        for chunk in bulk.id_lists(ids):
            out.extend(
                f"{g.principal} {g.role} on {g.target}"
                for g in _grant_rows(conn, f"{column} IN ({chunk})", {})
            )
    return sorted(out)
