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

    The checks run as set operations, in C: a Python loop over a million member ids was a
    quarter of a whole SCIM fetch. Only when one fails are the items walked in order, so
    the error names the first offender, as it always did.
    """
    user_ids = {user.upstream_id for user in snapshot.users}
    if len(user_ids) != len(snapshot.users) or "" in user_ids:
        _first_bad_id([(user.upstream_id, user.user_name) for user in snapshot.users], "user", where)
    group_ids = {group.upstream_id for group in snapshot.groups}
    if len(group_ids) != len(snapshot.groups) or "" in group_ids:
        _first_bad_id([(group.upstream_id, group.name) for group in snapshot.groups], "group", where)
    _check_lengths(snapshot, where)
    for group in snapshot.groups:
        if not user_ids.issuperset(group.user_members):
            _first_missing(group, group.user_members, user_ids, "user", where)
        if not group_ids.issuperset(group.group_members):
            _first_missing(group, group.group_members, group_ids, "group", where)


# The longest id, userName or group name the store keeps (its columns, on every backend alike).
NAME_LIMIT = 255


def _check_lengths(snapshot: Snapshot, where: str) -> None:
    from groupwarden.domain.errors import SyncError
    from groupwarden.domain.text import shorten

    for kind, values in (
        ("user id", [u.upstream_id for u in snapshot.users]),
        ("userName", [u.user_name for u in snapshot.users]),
        ("group id", [g.upstream_id for g in snapshot.groups]),
        ("group name", [g.name for g in snapshot.groups]),
    ):
        if values and max(map(len, values)) > NAME_LIMIT:
            value = next(v for v in values if len(v) > NAME_LIMIT)
            raise SyncError(
                f"{where}: a {kind} of {len(value):,} characters ({shorten(value, 40)!r}) is longer"
                f" than the {NAME_LIMIT} the store keeps; sync aborted"
            )


def _first_bad_id(items: list[tuple[str, str]], kind: str, where: str) -> None:
    from groupwarden.domain.errors import SyncError

    seen: set[str] = set()
    for upstream_id, name in items:
        if not upstream_id:
            raise SyncError(f"{where}: a {kind} without an id ({name!r}); sync aborted")
        if upstream_id in seen:
            raise SyncError(f"{where}: {kind} id {upstream_id!r} listed twice; sync aborted")
        seen.add(upstream_id)


def _first_missing(group: SourceGroup, members: list[str], listed: set[str], kind: str, where: str) -> None:
    from groupwarden.domain.errors import SyncError

    for member in members:
        if member not in listed:
            raise SyncError(
                f"{where}: group {group.name!r} names {kind} {member!r}, which the {kind}"
                " listing does not contain; the listing is incomplete, sync aborted"
            )


@dataclass(slots=True)
class GroupChange:
    """One group a delta names: its properties and the members it gained.

    whole: its member lists are complete (a group new to the cache, or listed again in
    full), so any cached member they leave out is removed. Otherwise only the members
    named in users_removed and groups_removed leave.
    """

    group: SourceGroup
    whole: bool = False
    users_removed: list[str] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Delta:
    """What changed in a source since its last sync, for the reconcile to apply row by row."""

    users: list[SourceUser] = field(default_factory=list)
    users_removed: list[str] = field(default_factory=list)
    groups: list[GroupChange] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
