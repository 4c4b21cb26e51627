"""Every call the TUI makes into the services, in one place. No SQL and no HTTP here.

The screens call these only from thread workers. Each returns plain values (lists of rows,
results), never a lazy sequence, so the UI thread never reads the database by indexing one.
When a service's signature changes, this module is the one to follow it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groupwarden.domain.refs import Principal, TargetRef, WindmillPrincipal
from groupwarden.services import directory
from groupwarden.services.context import Context
from groupwarden.services.directory import GroupRow, MemberRow, PrincipalMatch

if TYPE_CHECKING:
    from groupwarden.config import Settings, SourceConfig
    from groupwarden.domain.directory import Progress
    from groupwarden.domain.roles import Role
    from groupwarden.services.access import Impact, TargetAccess, UserAccess
    from groupwarden.services.admins import AdminRow
    from groupwarden.services.audit import ChangeEvent, RunEvent
    from groupwarden.services.grants import Change, GrantRow
    from groupwarden.services.layout import FolderRow, WorkspaceRow
    from groupwarden.services.reconcile import SyncDiff
    from groupwarden.services.sync import SyncReport
    from groupwarden.services.windmill import DriftReport

# The services the first rows do not need are imported on first use: most of them import
# Windmill's client and httpx, a good part of a second before the groups could be shown.
# The screens name their row types as backend.GrantRow and so on, which imports them then.
_LAZY_TYPES = {
    "AdminRow": "groupwarden.services.admins",
    "Change": "groupwarden.services.grants",
    "ChangeEvent": "groupwarden.services.audit",
    "DriftReport": "groupwarden.services.windmill",
    "FolderRow": "groupwarden.services.layout",
    "GrantRow": "groupwarden.services.grants",
    "Impact": "groupwarden.services.access",
    "RunEvent": "groupwarden.services.audit",
    "SyncDiff": "groupwarden.services.reconcile",
    "SyncReport": "groupwarden.services.sync",
    "TargetAccess": "groupwarden.services.access",
    "UserAccess": "groupwarden.services.access",
    "WorkspaceRow": "groupwarden.services.layout",
}

if not TYPE_CHECKING:  # mypy reads the imports above, and still flags a name that is neither

    def __getattr__(name: str) -> Any:
        module = _LAZY_TYPES.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


__all__ = [
    "AdminRow",
    "Applied",
    "Change",
    "ChangeEvent",
    "Context",
    "DriftReport",
    "FolderRow",
    "GrantRow",
    "GroupRow",
    "Impact",
    "MemberRow",
    "Principal",
    "RunEvent",
    "SyncDiff",
    "SyncReport",
    "TargetAccess",
    "TargetRef",
    "UserAccess",
    "WindmillPrincipal",
    "WorkspaceLine",
    "WorkspaceRow",
]


def group_key(group: GroupRow) -> tuple[str, str]:
    """A group's identity: (source, upstream id), never its display name."""
    return (group.source, group.upstream_id)


# Reads


def list_groups(ctx: Context, limit: int | None = None) -> list[GroupRow]:
    return directory.list_groups(ctx, limit=limit)


def count_groups(ctx: Context) -> int:
    return directory.count_groups(ctx)


def members_of(ctx: Context, group: GroupRow, limit: int | None = None) -> list[MemberRow]:
    return directory.list_members(ctx, group.ref, limit=limit)


def grants_of(ctx: Context, group: GroupRow) -> list[GrantRow]:
    from groupwarden.services import grants

    return grants.group_grants(ctx, group.ref)


@dataclass(frozen=True, slots=True)
class WorkspaceLine:
    """A workspace in the folders pane: local, or linked to a Windmill instance."""

    id: str
    name: str
    #: The instance it is linked to ("NAME", or "NAME (stand-in)"); None for a local workspace.
    linked: str | None


def workspaces_and_folders(ctx: Context) -> list[WorkspaceLine | FolderRow]:
    from groupwarden.services import layout

    rows: list[WorkspaceLine | FolderRow] = []
    for space in layout.list_workspaces(ctx):
        rows.append(WorkspaceLine(space.id, space.name, space.linked))
        rows.extend(space.folders)
    return rows


def folder_grants(ctx: Context, target: TargetRef) -> list[GrantRow]:
    from groupwarden.services import grants

    return grants.folder_grants(ctx, target)


def who_can(ctx: Context, target: TargetRef) -> list[UserAccess]:
    from groupwarden.services import access

    # WhoCan reads rows past its prefetch when indexed: read them all here, in the worker.
    return list(access.who_can(ctx, target).load_all())


def access_note(row: UserAccess) -> str | None:
    """What a who-can row on a linked folder notes (a membership Windmill and the IdP disagree on)."""
    return row.note


def access_of(ctx: Context, user: str) -> list[TargetAccess]:
    """What a userName typed in the lookup reaches: resolved once, here."""
    from groupwarden.services import access, resolve

    return access.access_of(ctx, resolve.user(ctx, user))[1]


def search_principals(ctx: Context, query: str, limit: int) -> list[PrincipalMatch]:
    return directory.search_principals(ctx, query, limit)


def resolve_change(
    ctx: Context, principal: str, target: str
) -> tuple[Principal | WindmillPrincipal, TargetRef]:
    """The principal and target typed in the grant dialog, resolved once; the preview and
    the change that follows both use these refs. On a linked workspace the principal is named
    as its Windmill instance's ACLs hold it."""
    from groupwarden.services import resolve

    where = resolve.target(ctx, target)
    return resolve.principal_on_target(ctx, principal, where), where


def preview_change(
    ctx: Context, principal: Principal | WindmillPrincipal, target: TargetRef, role: Role | None
) -> Impact:
    from groupwarden.services import access

    return access.preview_change(ctx, principal, target, role)


def preview_revoke(ctx: Context, grant: GrantRow) -> Impact:
    from groupwarden.services import access

    return access.preview_change(ctx, grant.principal_ref, grant.target_ref, None)


def sync_runs(ctx: Context) -> list[RunEvent]:
    from groupwarden.services import audit

    return audit.sync_runs(ctx)


def role_changes(ctx: Context) -> list[ChangeEvent]:
    from groupwarden.services import audit

    return audit.role_changes(ctx)


def orphaned_grants(ctx: Context) -> list[GrantRow]:
    from groupwarden.services import grants

    return grants.orphaned_grants(ctx)


def admins(ctx: Context) -> list[AdminRow]:
    from groupwarden.services.admins import admins_everywhere

    return admins_everywhere(ctx)


def windmill_drift(ctx: Context) -> list[tuple[str, DriftReport]]:
    """What each linked Windmill instance gets wrong, with the instance's label; [] when none is linked."""
    from groupwarden.services import windmill

    return [
        (f"{row.name} (stand-in)" if row.standin else row.name, windmill.drift(ctx, row.name))
        for row in windmill.list_instances(ctx)
    ]


# Changes


@dataclass(frozen=True, slots=True)
class Applied:
    """A change made, and the Windmill instance it was written to (None on a local workspace)."""

    change: Change
    windmill: str | None = None

    def text(self) -> str:
        """What the status line says about it."""
        said = self.change.describe()
        if self.windmill and self.change.changed:
            return f"{said} (applied to windmill {self.windmill})"
        return said


def _applied(change: Change, principal: Principal | WindmillPrincipal) -> Applied:
    return Applied(change, principal.instance if isinstance(principal, WindmillPrincipal) else None)


def grant(
    ctx: Context,
    principal: Principal | WindmillPrincipal,
    target: TargetRef,
    role: Role,
    *,
    expected: Role | None,
    confirm_last_admin: bool,
) -> Applied:
    """On a linked workspace (a WindmillPrincipal) the services write Windmill first."""
    from groupwarden.services import grants

    change = grants.grant(
        ctx, principal, target, role, expected=expected, confirm_last_admin=confirm_last_admin
    )
    return _applied(change, principal)


def revoke(ctx: Context, grant: GrantRow, *, confirm_last_admin: bool) -> Applied:
    """Revoke the grant as it was seen: refused if its role changed since."""
    from groupwarden.services import grants

    change = grants.revoke(
        ctx,
        grant.principal_ref,
        grant.target_ref,
        expected=grant.role,
        confirm_last_admin=confirm_last_admin,
    )
    return _applied(change, grant.principal_ref)


def sync(
    ctx: Context, config: SourceConfig, settings: Settings, progress: Callable[[Progress], None]
) -> SyncReport:
    from groupwarden.services.reconcile import DeletionGuard
    from groupwarden.services.sync import build_source, run_sync

    guard = DeletionGuard(max_fraction=settings.max_delete_fraction, floor=settings.max_delete_floor)
    return run_sync(ctx, build_source(config), guard=guard, progress=progress)


def save_records(path_text: str, records: list[dict[str, str]], columns: list[str]) -> Path:
    """A pane's rows as CSV or JSON: owner-only, written atomically."""
    from groupwarden.services import export

    return export.save_records(path_text, records, columns)
