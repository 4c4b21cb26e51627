"""The reads behind the export of the whole cache: live users and groups, memberships,
workspaces and folders, as named rows."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, text


class ExportUser(NamedTuple):
    id: int
    upstream_id: str
    user_name: str
    display_name: str | None
    emails: str
    active: bool
    raw_status: str | None
    source: str


class ExportGroup(NamedTuple):
    id: int
    upstream_id: str
    name: str
    source: str
    description: str | None
    kind: str | None


class UserMember(NamedTuple):
    group_id: int
    user_name: str


class GroupMember(NamedTuple):
    parent_id: int
    child_upstream_id: str


class ExportWorkspace(NamedTuple):
    id: str
    name: str


class ExportFolder(NamedTuple):
    workspace_id: str
    name: str
    summary: str


def live_users(conn: Connection) -> list[ExportUser]:
    rows = conn.execute(
        text(
            "SELECT u.id, u.upstream_id, u.user_name, u.display_name, u.emails, u.active,"
            " u.raw_status, s.name FROM users u JOIN sources s ON s.id = u.source_id"
            " WHERE u.removed_at IS NULL"
        )
    )
    return [ExportUser._make(r) for r in rows]


def live_groups(conn: Connection) -> list[ExportGroup]:
    rows = conn.execute(
        text(
            "SELECT g.id, g.upstream_id, g.name, s.name, g.description, g.kind"
            " FROM instance_groups g JOIN sources s ON s.id = g.source_id"
            " WHERE g.removed_at IS NULL"
        )
    )
    return [ExportGroup._make(r) for r in rows]


def user_members(conn: Connection) -> list[UserMember]:
    rows = conn.execute(
        text("SELECT m.group_id, u.user_name FROM user_memberships m JOIN users u ON u.id = m.user_id")
    )
    return [UserMember._make(r) for r in rows]


def group_members(conn: Connection) -> list[GroupMember]:
    rows = conn.execute(
        text(
            "SELECT m.parent_id, g.upstream_id FROM group_memberships m"
            " JOIN instance_groups g ON g.id = m.child_id"
        )
    )
    return [GroupMember._make(r) for r in rows]


def workspaces(conn: Connection) -> list[ExportWorkspace]:
    rows = conn.execute(text("SELECT id, name FROM workspaces ORDER BY id"))
    return [ExportWorkspace._make(r) for r in rows]


def folders(conn: Connection) -> list[ExportFolder]:
    rows = conn.execute(text("SELECT workspace_id, name, summary FROM folders ORDER BY workspace_id, name"))
    return [ExportFolder._make(r) for r in rows]
