"""Every call the TUI makes into the services, in one place. No SQL and no HTTP here.

The screens call these only from thread workers. Each returns plain values (lists of rows,
results), never a lazy sequence, so the UI thread never reads the database by indexing one.
When a service's signature changes, this module is the one to follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from groupwarden.config import Settings, SourceConfig
from groupwarden.domain.directory import Progress
from groupwarden.domain.errors import Ambiguous
from groupwarden.domain.roles import Role
from groupwarden.services import access, audit, directory, export, grants, layout
from groupwarden.services.access import Impact, TargetAccess, UserAccess
from groupwarden.services.admins import AdminRow, admins_everywhere
from groupwarden.services.audit import ChangeEvent, RunEvent
from groupwarden.services.context import Context
from groupwarden.services.directory import GroupRow, MemberRow, PrincipalMatch
from groupwarden.services.grants import Change, GrantRow
from groupwarden.services.layout import FolderRow, WorkspaceRow
from groupwarden.services.reconcile import DeletionGuard, SyncDiff
from groupwarden.services.sync import SyncReport

__all__ = [
    "AdminRow",
    "Change",
    "ChangeEvent",
    "Context",
    "FolderRow",
    "GrantRow",
    "GroupRow",
    "Impact",
    "MemberRow",
    "RunEvent",
    "SyncDiff",
    "SyncReport",
    "TargetAccess",
    "UserAccess",
    "WorkspaceRow",
]

T = TypeVar("T")


def group_key(group: GroupRow) -> tuple[str, str]:
    """A group's identity: (source, upstream id), never its display name."""
    return (group.source, group.upstream_id)


def _by_group(call: Callable[[str], T], group: GroupRow) -> T:
    """Call a service with the group's name, or with its upstream id when the name is shared."""
    try:
        return call(group.name)
    except Ambiguous:
        return call(group.upstream_id)


def _revoked_principal(grant: GrantRow) -> str:
    """An orphaned group grant named by upstream id, so a live group of the same name is not hit."""
    if grant.orphaned and grant.principal.startswith("g/") and grant.upstream_id:
        return f"g/{grant.upstream_id}"
    return grant.principal


# Reads


def list_groups(ctx: Context, limit: int | None = None) -> list[GroupRow]:
    return directory.list_groups(ctx, limit=limit)


def count_groups(ctx: Context) -> int:
    return directory.count_groups(ctx)


def members_of(ctx: Context, group: GroupRow, limit: int | None = None) -> list[MemberRow]:
    return _by_group(lambda name: directory.list_members(ctx, name, limit=limit)[1], group)


def grants_of(ctx: Context, group: GroupRow) -> list[GrantRow]:
    return _by_group(lambda name: grants.group_grants(ctx, name), group)


def workspaces_and_folders(ctx: Context) -> list[WorkspaceRow | FolderRow]:
    rows: list[WorkspaceRow | FolderRow] = []
    for space in layout.list_workspaces(ctx):
        rows.append(space)
        rows.extend(space.folders)
    return rows


def folder_grants(ctx: Context, target: str) -> list[GrantRow]:
    return grants.folder_grants(ctx, target)


def who_can(ctx: Context, target: str) -> list[UserAccess]:
    # WhoCan reads rows past its prefetch when indexed: read them all here, in the worker.
    return list(access.who_can(ctx, target).load_all())


def access_of(ctx: Context, user: str) -> list[TargetAccess]:
    return access.access_of(ctx, user)[1]


def search_principals(ctx: Context, query: str, limit: int) -> list[PrincipalMatch]:
    return directory.search_principals(ctx, query, limit)


def preview_change(ctx: Context, principal: str, target: str, role: Role | None) -> Impact:
    return access.preview_change(ctx, principal, target, role)


def preview_revoke(ctx: Context, grant: GrantRow) -> Impact:
    return access.preview_change(ctx, _revoked_principal(grant), grant.target, None)


def sync_runs(ctx: Context) -> list[RunEvent]:
    return audit.sync_runs(ctx)


def role_changes(ctx: Context) -> list[ChangeEvent]:
    return audit.role_changes(ctx)


def orphaned_grants(ctx: Context) -> list[GrantRow]:
    return grants.orphaned_grants(ctx)


def admins(ctx: Context) -> list[AdminRow]:
    return admins_everywhere(ctx)


# Changes


def grant(
    ctx: Context, principal: str, target: str, role: Role, *, expected: Role | None, confirm_last_admin: bool
) -> Change:
    return grants.grant(
        ctx, principal, target, role, expected=expected, confirm_last_admin=confirm_last_admin
    )


def revoke(ctx: Context, grant: GrantRow, *, confirm_last_admin: bool) -> Change:
    """Revoke the grant as it was seen: refused if its role changed since."""
    return grants.revoke(
        ctx,
        _revoked_principal(grant),
        grant.target,
        expected=grant.role,
        confirm_last_admin=confirm_last_admin,
    )


def sync(
    ctx: Context, config: SourceConfig, settings: Settings, progress: Callable[[Progress], None]
) -> SyncReport:
    from groupwarden.services.sync import build_source, run_sync

    guard = DeletionGuard(max_fraction=settings.max_delete_fraction, floor=settings.max_delete_floor)
    return run_sync(ctx, build_source(config), guard=guard, progress=progress)


def save_records(path_text: str, records: list[dict[str, str]], columns: list[str]) -> Path:
    """A pane's rows as CSV or JSON: owner-only, written atomically."""
    return export.save_records(path_text, records, columns)
