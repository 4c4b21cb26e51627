"""A normalised directory snapshot: what every source yields and the reconcile consumes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class SourceUser:
    upstream_id: str
    user_name: str
    display_name: str | None = None
    emails: list[str] = field(default_factory=list)
    active: bool = True
    # The provider's own word for the state (Okta's SUSPENDED, say), kept verbatim.
    raw_status: str | None = None


@dataclass(slots=True)
class SourceGroup:
    upstream_id: str
    name: str
    description: str | None = None
    # Upstream ids of the direct members, users and nested groups apart.
    user_members: list[str] = field(default_factory=list)
    group_members: list[str] = field(default_factory=list)
    # The provider's group type where it has one (Okta's OKTA_GROUP / APP_GROUP).
    kind: str | None = None


@dataclass(slots=True)
class Snapshot:
    """The whole listing of one source, checked complete before anyone reconciles it."""

    users: list[SourceUser]
    groups: list[SourceGroup]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a fetch has come: phase is 'users', 'groups', 'members' or 'reconcile'."""

    phase: str
    pages: int
    items: int
    total: int | None = None


ProgressCallback = Callable[[Progress], None]


def check_snapshot(snapshot: Snapshot, where: str) -> None:
    """Refuse a snapshot whose ids or member references do not hold together.

    A group that names a member the listing does not contain means the listing is
    incomplete or the provider is inconsistent; reconciling it would drop real members.
    """
    from groupwarden.domain.errors import SyncError

    user_ids: set[str] = set()
    for user in snapshot.users:
        if not user.upstream_id:
            raise SyncError(f"{where}: a user without an id ({user.user_name!r}); sync aborted")
        if user.upstream_id in user_ids:
            raise SyncError(f"{where}: user id {user.upstream_id!r} listed twice; sync aborted")
        user_ids.add(user.upstream_id)
    group_ids: set[str] = set()
    for group in snapshot.groups:
        if not group.upstream_id:
            raise SyncError(f"{where}: a group without an id ({group.name!r}); sync aborted")
        if group.upstream_id in group_ids:
            raise SyncError(f"{where}: group id {group.upstream_id!r} listed twice; sync aborted")
        group_ids.add(group.upstream_id)
    for group in snapshot.groups:
        for member in group.user_members:
            if member not in user_ids:
                raise SyncError(
                    f"{where}: group {group.name!r} names user {member!r}, which the user"
                    " listing does not contain; the listing is incomplete, sync aborted"
                )
        for member in group.group_members:
            if member not in group_ids:
                raise SyncError(
                    f"{where}: group {group.name!r} names group {member!r}, which the group"
                    " listing does not contain; the listing is incomplete, sync aborted"
                )
