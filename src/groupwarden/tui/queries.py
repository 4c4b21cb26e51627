"""Small compositions of service calls the UI needs. No SQL and no HTTP here."""

from __future__ import annotations

from groupwarden.services import directory, grants
from groupwarden.services.context import Context
from groupwarden.services.directory import GroupRow, MemberRow
from groupwarden.services.grants import GrantRow


def group_key(group: GroupRow) -> tuple[str, str]:
    """A group's identity: (source, upstream id), never its display name."""
    return (group.source, group.upstream_id)


def members_of(ctx: Context, group: GroupRow, limit: int | None = None) -> list[MemberRow]:
    return directory.list_members(ctx, group.ref, limit=limit)


def grants_of(ctx: Context, group: GroupRow) -> list[GrantRow]:
    return grants.group_grants(ctx, group.ref)
