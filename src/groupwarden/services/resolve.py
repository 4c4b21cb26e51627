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
from groupwarden.domain.refs import GroupRef, Principal, TargetRef, UserRef
from groupwarden.services.context import Context
from groupwarden.services.directory import Lookalikes
from groupwarden.store import directory, layout


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
        _refuse_lookalike("g", name, found[0].upstream_id, Lookalikes.read(conn, users=False))
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
        _refuse_lookalike("u", name, found[0].upstream_id, Lookalikes.read(conn, groups=False))
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
