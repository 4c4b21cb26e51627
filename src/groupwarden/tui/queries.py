"""Small compositions of service calls the UI needs. No SQL and no HTTP here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from groupwarden.domain.errors import Ambiguous
from groupwarden.services import directory, grants
from groupwarden.services.context import Context
from groupwarden.services.directory import GroupRow, MemberRow
from groupwarden.services.grants import GrantRow

T = TypeVar("T")


def group_key(group: GroupRow) -> tuple[str, str]:
    """A group's identity: (source, upstream id), never its display name."""
    return (group.source, group.upstream_id)


def by_group(call: Callable[[str], T], group: GroupRow) -> T:
    """Call a service with the group's name, or with its upstream id when the name is shared."""
    try:
        return call(group.name)
    except Ambiguous:
        return call(group.upstream_id)


def members_of(ctx: Context, group: GroupRow, limit: int | None = None) -> list[MemberRow]:
    return by_group(lambda name: directory.list_members(ctx, name, limit=limit)[1], group)


def grants_of(ctx: Context, group: GroupRow) -> list[GrantRow]:
    return by_group(lambda name: grants.group_grants(ctx, name), group)


def orphan_principal(grant: GrantRow) -> str:
    """An orphaned group grant named by upstream id, so a live group of the same name is not hit."""
    if grant.principal.startswith("g/") and grant.upstream_id:
        return f"g/{grant.upstream_id}"
    return grant.principal
