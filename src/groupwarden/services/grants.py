"""Role changes (grant, change, revoke) and grant listings.

One function owns each change; each writes its audit event in the same transaction,
refuses a change made against a stale view, and asks for confirmation before the last
admin of a folder goes. They take typed references (services.resolve makes them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from groupwarden.domain.errors import BadInput, GroupwardenError, NeedsConfirmation, NotFound, StaleView
from groupwarden.domain.refs import GroupRef, Principal, TargetRef, WindmillPrincipal
from groupwarden.domain.roles import Role, role_label
from groupwarden.services.audit import hold_chain, last_change_of, record_change
from groupwarden.services.context import Context
from groupwarden.services.directory import Lookalikes
from groupwarden.services.windmill import write as windmill_write
from groupwarden.store import directory as directory_store
from groupwarden.store import grants as store
from groupwarden.store import windmill as windmill_store
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
    # The typed references a change of this grant takes: the TUI passes them on as they are.
    # On a linked workspace the principal is Windmill's (an ACL entry as the last pull read it).
    principal_ref: Principal | WindmillPrincipal
    target_ref: TargetRef
    upstream_id: str | None = None
    #: The Windmill instance a linked workspace's entry comes from; None for a local grant.
    linked: str | None = None
    #: Windmill's ACL kind of a linked entry ('folder', 'script', 'flow', ...); '' for a local grant.
    kind: str = ""
    #: Why the principal's name reads like another one (directory.Lookalikes), or None.
    lookalike: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "principal": self.principal,
            "role": self.role.label,
            "granted_by": self.granted_by,
            "granted_at": self.granted_at.isoformat(),
            "orphaned": self.orphaned,
            "lookalike": self.lookalike,
        }


def _rows(conn: Connection, listings: list[store.GrantListing]) -> list[GrantRow]:
    """Grant rows with the look-alike marks of the principals they name."""
    groups = [g.principal.name for g in listings if isinstance(g.principal, GroupRef)]
    users = [g.principal.user_name for g in listings if not isinstance(g.principal, GroupRef)]
    marks = Lookalikes.read(conn, groups=groups, users=users)
    return [_row(g, marks) for g in listings]


def _row(g: store.GrantListing, marks: Lookalikes | None = None) -> GrantRow:
    ref = g.principal
    lookalike = None
    if marks is not None:
        lookalike = marks.group(ref.name) if isinstance(ref, GroupRef) else marks.user(ref.user_name)
    return GrantRow(
        id=g.id,
        target=str(g.target),
        workspace=g.target.target.workspace,
        folder=g.target.target.folder,
        item_path=g.target.item_path,
        principal=ref.principal,
        role=g.role,
        granted_by=g.granted_by,
        granted_at=g.granted_at,
        orphaned=g.orphaned,
        version=g.version,
        upstream_id=ref.upstream_id if isinstance(ref, GroupRef) else None,
        principal_ref=ref,
        target_ref=g.target,
        lookalike=lookalike,
    )


def _look(
    conn: Connection, target: TargetRef, who: Principal, expected: Expected, *, live_only: bool
) -> store.CurrentGrant | None:
    """Lock what a change is about, and refuse it if the caller's view is stale.

    Returns the current grant. With live_only, a principal removed upstream since it was
    resolved is refused, as resolving it now would be.
    """
    # The audit chain's lock first (see hold_chain: no two role changes can deadlock). The
    # folder lock orders changes on one folder (the last-admin count stays true until
    # commit); the shared lock on the group holds off a sync removing it meanwhile.
    hold_chain(conn)
    lock_row(conn, "folders", target.folder_id)
    if isinstance(who, GroupRef):
        lock_row(conn, "instance_groups", who.id, share=True)
    if live_only and not directory_store.is_live(
        conn, "instance_groups" if isinstance(who, GroupRef) else "users", who.id
    ):
        kind = "group" if isinstance(who, GroupRef) else "user"
        raise NotFound(f"{kind} {who.principal} was removed upstream; it can no longer be granted anything")
    current = store.current_grant(conn, target, who)
    _check_expected(conn, expected, None if current is None else current.role, str(target), who.principal)
    return current


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
    conn: Connection, target: TargetRef, current: store.CurrentGrant, confirmed: bool
) -> None:
    if target.item_path or confirmed or current.role is not Role.ADMIN:
        return
    if store.other_live_admins(conn, target.folder_id, current.id) == 0:
        raise NeedsConfirmation(
            f"this removes the last admin of {target}; it needs an explicit confirmation; nothing was changed"
        )


def _local_only(conn: Connection, principal: Principal, target: TargetRef) -> None:
    """Refuse a store-only change on a linked workspace: Windmill holds its grants."""
    linked = windmill_store.workspace_instance(conn, target.target.workspace)
    if linked is not None:
        raise BadInput(
            f"workspace {target.target.workspace} is linked to windmill {linked.name}: its roles change"
            f" in Windmill; name {principal.principal} as that workspace knows it (resolve.principal_on)"
        )


def _windmill_change(
    ctx: Context,
    who: WindmillPrincipal,
    target: TargetRef,
    after: Role | None,
    expected: Expected,
    confirm_last_admin: bool,
    conn: Connection | None = None,
) -> Change:
    before, after = windmill_write.write_through(
        ctx,
        who,
        target,
        after,
        expected=expected,
        any_role=ANY,
        confirm_last_admin=confirm_last_admin,
        conn=conn,
    )
    return Change(str(target), who.owner, before, after)


def apply_grant(
    ctx: Context,
    conn: Connection,
    principal: Principal | WindmillPrincipal,
    target: TargetRef,
    role: Role | str,
    *,
    expected: Expected = ANY,
    confirm_last_admin: bool = False,
) -> Change:
    """Grant or change a role inside the caller's write transaction.

    On a linked workspace (a WindmillPrincipal) Windmill is written first, while the
    caller's transaction is open; a failure then rolls the caller's store writes back too.
    """
    ctx.require_writable("granting a role")
    new = role if isinstance(role, Role) else Role.parse(role)
    if isinstance(principal, WindmillPrincipal):
        return _windmill_change(ctx, principal, target, new, expected, confirm_last_admin, conn)
    _local_only(conn, principal, target)
    current = _look(conn, target, principal, expected, live_only=True)
    shown, label = str(target), principal.principal
    before = None if current is None else current.role
    if before == new:
        return Change(shown, label, before, new)
    now = ctx.clock()
    if current is None:
        if not store.insert_grant(conn, target, principal, new, str(ctx.actor), now):
            raise StaleView(
                f"refused: {label} on {shown} was granted by someone else meanwhile;"
                " reload and decide again; nothing was changed"
            )
    else:
        _check_last_admin(conn, target, current, confirm_last_admin)
        if not store.update_grant(conn, current, new, str(ctx.actor), now):
            _check_expected(conn, before, None, shown, label)
    record_change(
        conn, ctx.actor, ctx.clock(), "grant" if before is None else "change", shown, label, before, new
    )
    return Change(shown, label, before, new)


def grant(
    ctx: Context,
    principal: Principal | WindmillPrincipal,
    target: TargetRef,
    role: Role | str,
    *,
    expected: Expected = ANY,
    confirm_last_admin: bool = False,
) -> Change:
    """Give principal role on target, or change the role it has there.

    On a linked workspace (a WindmillPrincipal, from resolve.principal_on) the change is
    written through to Windmill first (services.windmill.write).
    """
    if not isinstance(role, Role):
        role = Role.parse(role)
    ctx.require_writable("granting a role")
    if isinstance(principal, WindmillPrincipal):
        return _windmill_change(ctx, principal, target, role, expected, confirm_last_admin)
    with write_transaction(ctx.engine) as conn:
        return apply_grant(
            ctx, conn, principal, target, role, expected=expected, confirm_last_admin=confirm_last_admin
        )


def revoke(
    ctx: Context,
    principal: Principal | WindmillPrincipal,
    target: TargetRef,
    *,
    expected: Expected = ANY,
    confirm_last_admin: bool = False,
) -> Change:
    """Remove principal's grant on target. Orphaned grants (removed groups) can be revoked too."""
    ctx.require_writable("revoking a role")
    if isinstance(principal, WindmillPrincipal):
        return _windmill_change(ctx, principal, target, None, expected, confirm_last_admin)
    shown, label = str(target), principal.principal
    with write_transaction(ctx.engine) as conn:
        _local_only(conn, principal, target)
        current = _look(conn, target, principal, expected, live_only=False)
        if current is None:
            raise GroupwardenError(f"{label} has no grant on {shown}; nothing to revoke")
        _check_last_admin(conn, target, current, confirm_last_admin)
        if not store.delete_grant(conn, current):
            _check_expected(conn, current.role, None, shown, label)
        record_change(conn, ctx.actor, ctx.clock(), "revoke", shown, label, current.role, None)
        return Change(shown, label, current.role, None)


def folder_grants(ctx: Context, target: TargetRef, *, include_items: bool = True) -> list[GrantRow]:
    """Grants on a folder (and, by default, on the items inside it); for an item, its own and its folder's.

    On a linked workspace: Windmill's ACL entries as the last pull read them.
    """
    # Imported here: services.windmill.access builds on this module's GrantRow.
    from groupwarden.services.windmill import access as linked

    with ctx.engine.connect() as conn:
        link = windmill_store.workspace_link(conn, target.target.workspace)
        if link is not None:
            return linked.grants_on(conn, link, target, include_items)
        return _rows(conn, store.grants_on(conn, target, include_items=include_items))


def group_grants(ctx: Context, group: GroupRef | WindmillPrincipal) -> list[GrantRow]:
    """Every grant naming a group, across all workspaces: for an IdP group, its local grants and
    the ACL entries of the Windmill instance groups matched to it; for a Windmill group, its entries."""
    from groupwarden.services.windmill import access as linked

    with ctx.engine.connect() as conn:
        local = []
        if not isinstance(group, WindmillPrincipal):
            local = _rows(conn, store.grants_of_group(conn, group.id))
        return local + linked.grants_naming(conn, group)


def all_grants(conn: Connection) -> list[GrantRow]:
    return [_row(g) for g in store.every_grant(conn)]


def orphaned_grants(ctx: Context) -> list[GrantRow]:
    """Grants naming a group or user removed upstream: kept, flagged, granting nothing."""
    with ctx.engine.connect() as conn:
        return _rows(conn, store.orphaned_grants(conn))


def describe_grants_of(conn: Connection, *, group_ids: list[int], user_ids: list[int]) -> list[str]:
    """'principal role on target' for every grant naming these groups or users."""
    return sorted(
        f"{g.principal.principal} {g.role} on {g.target}"
        for g in store.grants_naming(conn, group_ids=group_ids, user_ids=user_ids)
    )
