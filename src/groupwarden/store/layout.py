"""Workspaces and folders."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, insert, select, text, update

from groupwarden.store.models import Folder, Workspace


def folder_id(conn: Connection, workspace: str, folder: str) -> int | None:
    found = conn.execute(
        select(Folder.id).where(Folder.workspace_id == workspace, Folder.name == folder)
    ).scalar_one_or_none()
    return None if found is None else int(found)


def workspace_name(conn: Connection, workspace: str) -> str | None:
    """The workspace's display name, or None when there is no such workspace."""
    return conn.execute(select(Workspace.name).where(Workspace.id == workspace)).scalar_one_or_none()


def add_workspace(conn: Connection, workspace: str, name: str) -> None:
    conn.execute(insert(Workspace).values(id=workspace, name=name))


def rename_workspace(conn: Connection, workspace: str, name: str) -> None:
    conn.execute(update(Workspace).where(Workspace.id == workspace).values(name=name))


class FolderState(NamedTuple):
    id: int
    summary: str


def folder_state(conn: Connection, workspace: str, folder: str) -> FolderState | None:
    row = conn.execute(
        select(Folder.id, Folder.summary).where(Folder.workspace_id == workspace, Folder.name == folder)
    ).first()
    return None if row is None else FolderState(row.id, row.summary)


def add_folder(conn: Connection, workspace: str, folder: str, summary: str) -> None:
    conn.execute(insert(Folder).values(workspace_id=workspace, name=folder, summary=summary))


def set_folder_summary(conn: Connection, folder: int, summary: str) -> None:
    conn.execute(update(Folder).where(Folder.id == folder).values(summary=summary))


class WorkspaceListing(NamedTuple):
    id: str
    name: str


class FolderListing(NamedTuple):
    id: int
    workspace: str
    name: str
    summary: str
    grants: int


def workspaces(conn: Connection) -> list[WorkspaceListing]:
    return [
        WorkspaceListing(r.id, r.name)
        for r in conn.execute(select(Workspace.id, Workspace.name).order_by(Workspace.id))
    ]


def folders(conn: Connection) -> list[FolderListing]:
    """Every folder, by workspace and name, with how many grants it and its items hold."""
    counts: dict[int, int] = dict(
        conn.execute(text("SELECT folder_id, COUNT(*) FROM grants GROUP BY folder_id")).all()
    )
    rows = conn.execute(
        select(Folder.id, Folder.workspace_id, Folder.name, Folder.summary).order_by(
            Folder.workspace_id, Folder.name
        )
    )
    return [FolderListing(r.id, r.workspace_id, r.name, r.summary, int(counts.get(r.id, 0))) for r in rows]
