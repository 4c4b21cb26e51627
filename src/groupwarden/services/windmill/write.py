"""Role changes on a linked workspace, written through to Windmill first, then to the store.

Windmill has no ETag, so each change re-reads its target live and refuses a stale view
itself; then it makes the single-principal calls (never folders/update, which would undo a
change someone made a second earlier in Windmill's own UI). Only a change Windmill took
whole is recorded in the audit, marked with the instance it was applied to; after a failure
the store is set to what Windmill holds when it can be read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection

from groupwarden.domain.errors import BadInput, GroupwardenError, NeedsConfirmation, NotFound, StaleView
from groupwarden.domain.refs import TargetRef, WindmillPrincipal
from groupwarden.domain.roles import Role, role_label
from groupwarden.domain.windmill import check_owner, folder_role, folder_writes, item_role, item_writes
from groupwarden.services.audit import hold_chain, record_change
from groupwarden.services.context import Context
from groupwarden.services.sync import read_token
from groupwarden.sources.windmill import WindmillClient, WindmillError
from groupwarden.store import windmill as store
from groupwarden.store.db import lock_row, write_transaction
from groupwarden.store.windmill import InstanceRow


@dataclass(frozen=True, slots=True)
class WindmillTarget:
    """Where a target is in Windmill: a folder (kind 'folder', path its name) or an item."""

    instance: InstanceRow
    workspace: str
    folder: str
    kind: str
    path: str

    @property
    def is_folder(self) -> bool:
        return self.kind == "folder"

    @property
    def store_path(self) -> str:
        """The windmill_acl table's path: '' for a folder."""
        return "" if self.is_folder else self.path


@dataclass(frozen=True, slots=True)
class LiveAcl:
    """A target's ACL as Windmill holds it now."""

    owners: frozenset[str]
    perms: dict[str, bool]
    is_folder: bool

    def role_of(self, owner: str) -> Role | None:
        if self.is_folder:
            return folder_role(self.owners, self.perms, owner)
        return item_role(self.perms, owner)

    def roles(self) -> dict[str, Role]:
        return {p: role for p in self.owners | set(self.perms) if (role := self.role_of(p)) is not None}

    def with_role(self, owner: str, role: Role | None) -> dict[str, Role]:
        roles = self.roles()
        roles.pop(owner, None)
        if role is not None:
            roles[owner] = role
        return roles


def windmill_target(conn: Connection, target: TargetRef) -> WindmillTarget | None:
    """The Windmill object a target is, from the last pull; None on a local workspace."""
    where = target.target
    instance = store.workspace_instance(conn, where.workspace)
    if instance is None:
        return None
    if where.item is None:
        return WindmillTarget(instance, where.workspace, where.folder, "folder", where.folder)
    kinds = store.item_kind(conn, where.workspace, where.item_path)
    if not kinds:
        raise NotFound(
            f"no item {where.item_path!r} in workspace {where.workspace} of windmill {instance.name}"
            f" (as of the last pull); run `groupwarden windmill pull {instance.name}` if it is new"
        )
    if len(kinds) > 1:
        raise BadInput(
            f"{where.item_path!r} in workspace {where.workspace} is {len(kinds)} Windmill items"
            f" ({', '.join(kinds)}); groupwarden cannot tell which one is meant"
        )
    return WindmillTarget(instance, where.workspace, where.folder, kinds[0], where.item_path)


def open_client(instance: InstanceRow) -> WindmillClient:
    """A client for a linked instance, with its token read again from the link's variable or file."""
    token = read_token(instance.token_env, instance.token_file)
    if token is None:
        raise BadInput(
            f"windmill {instance.name}: the link names no token variable or file; pull it again with"
            " --token-env or --token-file"
        )
    return WindmillClient(instance.url, token, name=instance.name, ca_bundle=instance.ca_bundle)


@contextmanager
def client_for(instance: InstanceRow, client: WindmillClient | None) -> Iterator[WindmillClient]:
    """The caller's client (an apply run shares one), or a new one closed afterwards."""
    if client is not None:
        yield client
        return
    with open_client(instance) as own:
        yield own


def read_live(client: WindmillClient, where: WindmillTarget) -> LiveAcl:
    """One round trip: the folder, or the item's ACL."""
    if where.is_folder:
        folder = client.folder(where.workspace, where.path)
        return LiveAcl(frozenset(folder.owners), dict(folder.extra_perms), True)
    return LiveAcl(frozenset(), client.acl(where.workspace, where.kind, where.path), False)


def mirror(conn: Connection, where: WindmillTarget, roles: dict[str, Role]) -> None:
    """Make the store's ACL of the target exactly roles, in the caller's transaction."""
    store.replace_target_acl(
        conn,
        where.workspace,
        where.folder,
        where.kind,
        where.store_path,
        {p: role.label for p, role in roles.items()},
    )


@contextmanager
def _store_write(ctx: Context, conn: Connection | None, target: TargetRef) -> Iterator[Connection]:
    if conn is not None:
        hold_chain(conn)
        lock_row(conn, "folders", target.folder_id)
        yield conn
        return
    with write_transaction(ctx.engine) as own:
        hold_chain(own)
        lock_row(own, "folders", target.folder_id)
        yield own


def write_through(
    ctx: Context,
    who: WindmillPrincipal,
    target: TargetRef,
    after: Role | None,
    *,
    expected: object,
    any_role: object,
    confirm_last_admin: bool = False,
    client: WindmillClient | None = None,
    conn: Connection | None = None,
) -> tuple[Role | None, Role | None]:
    """Move who to after on target in Windmill, then in the store and the audit; (before, after).

    expected is the role the change was decided on (any_role skips the check). With conn,
    the store is written in the caller's transaction; otherwise in one of its own. Round
    trips: one live read, then the planned calls.
    """
    ctx.require_writable("granting a role" if after is not None else "revoking a role")
    owner = check_owner(who.owner)
    if conn is not None:
        where = windmill_target(conn, target)
    else:
        with ctx.engine.connect() as reading:
            where = windmill_target(reading, target)
    if where is None:
        raise BadInput(
            f"workspace {target.target.workspace} is not linked to Windmill; resolve the principal again"
        )
    if where.instance.name != who.instance or where.workspace != who.workspace:
        raise BadInput(
            f"{owner} was resolved for workspace {who.workspace} of windmill {who.instance},"
            f" not for {target}; resolve it again"
        )
    if not where.is_folder and after is Role.ADMIN:
        item_writes(None, after, owner)  # refuses with the reason
    shown, name = str(target), where.instance.name
    with client_for(where.instance, client) as wm:
        live = read_live(wm, where)
        before = live.role_of(owner)
        if expected is not any_role and expected != before:
            with _store_write(ctx, conn, target) as tx:
                mirror(tx, where, live.roles())
            raise StaleView(
                f"refused: {owner} on {shown} changed since you looked: you saw"
                f" {role_label(expected if isinstance(expected, Role) else None)}, windmill {name} holds"
                f" {role_label(before)} now (the store was brought up to date); reload and decide again;"
                " nothing was changed"
            )
        if before is None and after is None:
            raise GroupwardenError(f"{owner} has no grant on {shown} in windmill {name}; nothing to revoke")
        if (
            where.is_folder
            and before is Role.ADMIN
            and after is not Role.ADMIN
            and not confirm_last_admin
            and not live.owners - {owner}
        ):
            raise NeedsConfirmation(
                f"this removes the last admin of {shown} in windmill {name}; it needs an explicit"
                " confirmation; nothing was changed"
            )
        calls = folder_writes(before, after, owner) if where.is_folder else item_writes(before, after, owner)
        for done, call in enumerate(calls):
            try:
                wm.apply(where.workspace, where.kind, where.path, call)
            except WindmillError as exc:
                raise _failed(ctx, conn, wm, where, target, owner, before, exc, done) from None
    with _store_write(ctx, conn, target) as tx:
        mirror(tx, where, live.with_role(owner, after))
        if before != after:
            action = "grant" if before is None else "revoke" if after is None else "change"
            record_change(tx, ctx.actor, ctx.clock(), action, shown, owner, before, after, applied_to=name)
    return before, after


def _failed(
    ctx: Context,
    conn: Connection | None,
    client: WindmillClient,
    where: WindmillTarget,
    target: TargetRef,
    owner: str,
    before: Role | None,
    exc: WindmillError,
    done: int,
) -> WindmillError:
    """The one line for a failed write, after setting the store to what Windmill holds now."""
    shown, name = str(target), where.instance.name
    try:
        live = read_live(client, where)
    except WindmillError:
        return WindmillError(
            f"{exc}; windmill {name} could not be read back, so the store may be stale for {shown} until"
            f" `groupwarden windmill pull {name}`; nothing was recorded as applied",
            exc.status,
        )
    with _store_write(ctx, conn, target) as tx:
        mirror(tx, where, live.roles())
    now = live.role_of(owner)
    if now == before:
        tail = f"windmill {name} still holds {role_label(now)} for {owner} on {shown}; nothing was changed"
    else:
        tail = (
            f"the change was made only in part ({done} of its calls went through): windmill {name} now"
            f" holds {role_label(now)} for {owner} on {shown}, and the store was set to match;"
            " nothing was recorded as applied"
        )
    return WindmillError(f"{exc}; {tail}", exc.status)
