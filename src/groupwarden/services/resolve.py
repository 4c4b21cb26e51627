"""Resolving what a user typed, once, at the edge: g/name, u/name, WS/FOLDER, WS/f/FOLDER/ITEM.

Each answer is a typed reference (domain.refs) that the other services take as it is. A
name that matches several groups or users is refused here, with every candidate listed.
The *_in functions work inside a caller's transaction (a layout import); the others open
their own connection.
"""

from __future__ import annotations

from sqlalchemy import Connection

from groupwarden.domain.errors import Ambiguous, BadInput, Hint, NotFound, Remedy
from groupwarden.domain.principals import PrincipalRef, Target
from groupwarden.domain.refs import GroupRef, Principal, TargetRef, UserRef, WindmillPrincipal
from groupwarden.domain.windmill import check_owner
from groupwarden.services.context import Context
from groupwarden.services.directory import Lookalikes
from groupwarden.services.windmill.matching import match_groups, match_users
from groupwarden.store import directory, layout
from groupwarden.store import windmill as windmill_store
from groupwarden.store.windmill import IdpGroupRow


def group_in(conn: Connection, name: str, *, include_removed: bool = False) -> GroupRef:
    """A group by name or upstream id; several matches are refused with every candidate."""
    found = directory.find_groups(conn, name, include_removed=include_removed)
    if not found:
        raise NotFound(f"no group named {name!r} (by name or upstream id)", hint=Hint(Remedy.LIST_GROUPS))
    if len(found) > 1:
        raise Ambiguous(
            "group", name, [f"{g.name}  (source {g.source}, upstream id {g.upstream_id})" for g in found]
        )
    if found[0].upstream_id != name:
        _refuse_lookalike("g", name, found[0].upstream_id, Lookalikes.read(conn, groups=[name], users=False))
    return found[0]


def user_in(conn: Connection, name: str, *, include_removed: bool = False) -> UserRef:
    """A user by userName (or upstream id); several matches are refused with every candidate."""
    found = directory.find_users(conn, name, include_removed=include_removed)
    if not found:
        raise NotFound(f"no user named {name!r} (by userName or upstream id)")
    if len(found) > 1:
        raise Ambiguous(
            "user", name, [f"{u.user_name}  (source {u.source}, upstream id {u.upstream_id})" for u in found]
        )
    if found[0].upstream_id != name:
        _refuse_lookalike("u", name, found[0].upstream_id, Lookalikes.read(conn, groups=False, users=[name]))
    return found[0]


def _refuse_lookalike(kind: str, name: str, upstream_id: str, marks: Lookalikes) -> None:
    """A name typed that reads like another (or mixes scripts) may not be the one meant:
    refused, naming the upstream id that says it for sure."""
    note = marks.note(kind, name)
    if note is not None:
        what = "group" if kind == "g" else "user"
        raise BadInput(
            f"refused: {what} name {name!r} {'mixes scripts' if note == 'mixed scripts' else note};"
            f" to mean this {what}, give its upstream id: {kind}/{upstream_id}"
        )


def principal_in(conn: Connection, text: str, *, include_removed: bool = False) -> Principal:
    """g/<group> or u/<user>; include_removed also finds those removed upstream (to clean up)."""
    ref = PrincipalRef.parse(text)
    if ref.kind == "g":
        return group_in(conn, ref.name, include_removed=include_removed)
    return user_in(conn, ref.name, include_removed=include_removed)


def target_in(conn: Connection, text: str | Target) -> TargetRef:
    """WORKSPACE/FOLDER or WORKSPACE/f/FOLDER/ITEM, in an existing folder."""
    where = text if isinstance(text, Target) else Target.parse(text)
    found = layout.folder_id(conn, where.workspace, where.folder)
    if found is not None:
        return TargetRef(found, where)
    if layout.workspace_name(conn, where.workspace) is None:
        raise NotFound(f"no workspace {where.workspace!r}", hint=Hint(Remedy.ADD_WORKSPACE))
    raise NotFound(
        f"no folder {where.folder!r} in workspace {where.workspace!r}", hint=Hint(Remedy.ADD_FOLDER)
    )


def group(ctx: Context, name: str, *, include_removed: bool = False) -> GroupRef:
    with ctx.engine.connect() as conn:
        return group_in(conn, name, include_removed=include_removed)


def user(ctx: Context, name: str, *, include_removed: bool = False) -> UserRef:
    with ctx.engine.connect() as conn:
        return user_in(conn, name, include_removed=include_removed)


def principal(ctx: Context, text: str, *, include_removed: bool = False) -> Principal:
    PrincipalRef.parse(text)  # bad syntax is refused before connecting
    with ctx.engine.connect() as conn:
        return principal_in(conn, text, include_removed=include_removed)


def target(ctx: Context, text: str) -> TargetRef:
    Target.parse(text)
    with ctx.engine.connect() as conn:
        return target_in(conn, text)


# --- principals on a linked workspace -----------------------------------------------------------


def principal_on(
    conn: Connection, text: str, target: TargetRef, *, include_removed: bool = False
) -> Principal | WindmillPrincipal:
    """g/<group> or u/<user> as target's workspace knows it.

    On a local workspace, what principal_in gives. On a workspace linked to Windmill, the
    Windmill principal its ACLs hold: g/NAME is a Windmill group of that name (instance or
    workspace group) or the IdP group (by name or upstream id) matched to an instance group;
    u/NAME is a workspace username, or an IdP userName whose email is a workspace user's.
    Users are always answered as u/<workspace username>: Windmill's ACLs never hold emails.
    """
    ref = PrincipalRef.parse(text)
    workspace = target.target.workspace
    instance = windmill_store.workspace_instance(conn, workspace)
    if instance is None:
        return principal_in(conn, text, include_removed=include_removed)
    if ref.kind == "g":
        return _windmill_group(conn, instance.id, instance.name, workspace, ref.name)
    return _windmill_user(conn, instance.name, workspace, ref.name)


def _idp_group(row: IdpGroupRow) -> GroupRef:
    return GroupRef(row.id, row.name, row.upstream_id, row.source)


def _windmill_group(
    conn: Connection, instance_id: int, instance: str, workspace: str, name: str
) -> WindmillPrincipal:
    groups = windmill_store.instance_groups_of(conn, instance_id)
    matches = match_groups(groups, windmill_store.idp_groups(conn))
    if name in matches or name in windmill_store.workspace_group_names(conn, workspace):
        # Instance and workspace groups share Windmill's g/ namespace: one owner string either way.
        found = matches.get(name)
        return WindmillPrincipal(
            instance,
            workspace,
            f"g/{name}",
            None if found is None or found.idp is None else _idp_group(found.idp),
        )
    idp = directory.find_groups(conn, name, include_removed=False)
    if not idp and windmill_store.acl_names(conn, workspace, f"g/{name}"):
        # A deleted group's grants stay in Windmill's ACLs: naming it is how they are revoked.
        return WindmillPrincipal(instance, workspace, check_owner(f"g/{name}"))
    if not idp:
        raise NotFound(
            f"no group named {name!r} in workspace {workspace} of windmill {instance}"
            " (neither a Windmill group nor an IdP group by name or upstream id)"
        )
    if len(idp) > 1:
        raise Ambiguous(
            "group", name, [f"{g.name}  (source {g.source}, upstream id {g.upstream_id})" for g in idp]
        )
    wanted = idp[0].id
    held = [m.windmill for m in matches.values() if m.idp is not None and m.idp.id == wanted]
    if not held:
        raise NotFound(
            f"IdP group {idp[0].name!r} has no Windmill group in windmill {instance}"
            " (no instance group with its upstream id as external_id, or with its normalised name);"
            " see `groupwarden windmill drift`"
        )
    if len(held) > 1:
        raise Ambiguous("group", name, [f"g/{w}  (Windmill instance group)" for w in sorted(held)])
    return WindmillPrincipal(instance, workspace, check_owner(f"g/{held[0]}"), idp[0])


def _windmill_user(conn: Connection, instance: str, workspace: str, name: str) -> WindmillPrincipal:
    users = windmill_store.workspace_users(conn, workspace)
    by_username = {u.username: u for u in users}
    if name in by_username:
        email = by_username[name].email
        matched = match_users([email], windmill_store.idp_users_with_email(conn, email))[email]
        idp = (
            None if matched is None else directory.find_users(conn, matched.user_name, include_removed=False)
        )
        ref = next((u for u in idp or [] if u.id == matched.id), None) if matched else None
        return WindmillPrincipal(instance, workspace, check_owner(f"u/{name}"), ref)
    idp_users = directory.find_users(conn, name, include_removed=False)
    if not idp_users:
        raise NotFound(
            f"no user named {name!r} in workspace {workspace} of windmill {instance}"
            " (neither a workspace username nor an IdP userName)"
        )
    if len(idp_users) > 1:
        raise Ambiguous(
            "user",
            name,
            [f"{u.user_name}  (source {u.source}, upstream id {u.upstream_id})" for u in idp_users],
        )
    person = idp_users[0]
    emails = {
        e.strip().lower()
        for row in windmill_store.idp_users(conn, [person.id])
        for e in row.emails.split("\n")
        if e.strip()
    }
    held = [u for u in users if u.email.strip().lower() in emails]
    if not held:
        raise NotFound(
            f"user {person.user_name!r} is not a user of workspace {workspace} in windmill {instance}"
            " (no workspace user has their email)"
        )
    if len(held) > 1:
        raise Ambiguous("user", name, [f"u/{u.username}  ({u.email})" for u in held])
    return WindmillPrincipal(instance, workspace, check_owner(f"u/{held[0].username}"), person)


def principal_on_target(
    ctx: Context, text: str, target: TargetRef, *, include_removed: bool = False
) -> Principal | WindmillPrincipal:
    """principal_on in a connection of its own; include_removed (local workspaces) also finds
    a group or user removed upstream, to clean up its grants."""
    PrincipalRef.parse(text)
    with ctx.engine.connect() as conn:
        return principal_on(conn, text, target, include_removed=include_removed)
