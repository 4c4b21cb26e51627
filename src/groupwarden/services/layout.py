"""Workspaces and folders, and importing a whole layout (workspaces, folders, grants)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from groupwarden.domain.errors import BadInput, Hint, NotFound, Remedy
from groupwarden.domain.principals import Target, check_folder_name, check_workspace_id
from groupwarden.domain.refs import TargetRef
from groupwarden.domain.roles import Role
from groupwarden.services import resolve
from groupwarden.services.audit import hold_chain
from groupwarden.services.context import Context
from groupwarden.services.grants import apply_grant
from groupwarden.store import layout as store
from groupwarden.store.db import write_transaction


@dataclass(frozen=True, slots=True)
class FolderRow:
    id: int
    workspace: str
    name: str
    summary: str
    grants: int

    @property
    def target(self) -> str:
        return f"{self.workspace}/{self.name}"

    @property
    def ref(self) -> TargetRef:
        """The folder as a typed target: what the services take."""
        return TargetRef(self.id, Target(self.workspace, self.name))

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "summary": self.summary, "grants": self.grants}


@dataclass(slots=True)
class WorkspaceRow:
    id: str
    name: str
    folders: list[FolderRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "folders": [f.to_dict() for f in self.folders]}


def _add_workspace(conn: Connection, workspace_id: str, name: str | None) -> bool:
    check_workspace_id(workspace_id)
    current = store.workspace_name(conn, workspace_id)
    if current is not None:
        if name is not None and current != name:
            store.rename_workspace(conn, workspace_id, name)
        return False
    store.add_workspace(conn, workspace_id, name or workspace_id)
    return True


def _add_folder(conn: Connection, workspace_id: str, folder: str, summary: str | None) -> bool:
    check_workspace_id(workspace_id)
    check_folder_name(folder)
    if store.workspace_name(conn, workspace_id) is None:
        raise NotFound(f"no workspace {workspace_id!r}", hint=Hint(Remedy.ADD_WORKSPACE))
    current = store.folder_state(conn, workspace_id, folder)
    if current is not None:
        if summary is not None and current.summary != summary:
            store.set_folder_summary(conn, current.id, summary)
        return False
    store.add_folder(conn, workspace_id, folder, summary or "")
    return True


def add_workspace(ctx: Context, workspace_id: str, name: str | None = None) -> bool:
    """Create a workspace (or rename it); True when it is new."""
    check_workspace_id(workspace_id)
    ctx.require_writable("adding a workspace")
    with write_transaction(ctx.engine) as conn:
        return _add_workspace(conn, workspace_id, name)


def add_folder(ctx: Context, workspace_id: str, folder: str, summary: str | None = None) -> bool:
    """Create a folder in an existing workspace; True when it is new."""
    check_workspace_id(workspace_id)
    check_folder_name(folder)
    ctx.require_writable("adding a folder")
    with write_transaction(ctx.engine) as conn:
        return _add_folder(conn, workspace_id, folder, summary)


def list_workspaces(ctx: Context) -> list[WorkspaceRow]:
    with ctx.engine.connect() as conn:
        spaces = {w.id: WorkspaceRow(w.id, w.name) for w in store.workspaces(conn)}
        for f in store.folders(conn):
            spaces[f.workspace].folders.append(FolderRow(f.id, f.workspace, f.name, f.summary, f.grants))
    return list(spaces.values())


@dataclass(slots=True)
class LayoutResult:
    workspaces_added: int = 0
    folders_added: int = 0
    grants_changed: int = 0
    grants_unchanged: int = 0

    def summary(self) -> str:
        return (
            f"{self.workspaces_added} workspaces added, {self.folders_added} folders added,"
            f" {self.grants_changed} grants set, {self.grants_unchanged} already in place"
        )


def read_layout(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read layout file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"layout file {path} is not UTF-8 text") from None
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(
            f"layout file {path} is not valid {path.suffix.lstrip('.').upper() or 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise BadInput(f"layout file {path}: the top level must be a table / object")
    return data


def _layout_entries(
    data: dict[str, Any], where: str
) -> list[tuple[str, str | None, list[tuple[str, str | None, list[tuple[str, str]]]]]]:
    """Check the whole layout before anything is written; return it in plain tuples."""
    spaces = data.get("workspaces")
    if not isinstance(spaces, list):
        raise BadInput(f"{where}: expected a list named 'workspaces'")
    out = []
    for i, space in enumerate(spaces):
        at = f"{where}: workspaces[{i}]"
        if not isinstance(space, dict) or not isinstance(space.get("id"), str):
            raise BadInput(f"{at}: each workspace needs an 'id'")
        check_workspace_id(space["id"])
        _optional_text(space, "name", at)
        folders = []
        for j, folder in enumerate(_list_of(space, "folders", at)):
            fat = f"{at}.folders[{j}]"
            if not isinstance(folder, dict) or not isinstance(folder.get("name"), str):
                raise BadInput(f"{fat}: each folder needs a 'name'")
            check_folder_name(folder["name"])
            _optional_text(folder, "summary", fat)
            grants = []
            for k, grant in enumerate(_list_of(folder, "grants", fat)):
                gat = f"{fat}.grants[{k}]"
                if (
                    not isinstance(grant, dict)
                    or not isinstance(grant.get("principal"), str)
                    or not isinstance(grant.get("role"), str)
                ):
                    raise BadInput(f"{gat}: each grant needs a 'principal' and a 'role'")
                grants.append((grant["principal"], grant["role"]))
            folders.append((folder["name"], folder.get("summary"), grants))
        out.append((space["id"], space.get("name"), folders))
    return out


def _list_of(table: dict[str, Any], key: str, at: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise BadInput(f"{at}: '{key}' must be a list")
    return value


def _optional_text(table: dict[str, Any], key: str, at: str) -> None:
    if not isinstance(table.get(key, ""), str):
        raise BadInput(f"{at}: '{key}' must be text")


def import_layout(ctx: Context, path: Path) -> LayoutResult:
    """Create the workspaces, folders and grants of a layout file; running it twice changes nothing.

    All or nothing: one bad entry (an unknown group, a bad role) and nothing is written.
    """
    data = read_layout(path)
    entries = _layout_entries(data, f"layout file {path}")
    ctx.require_writable("importing a layout")
    result = LayoutResult()
    with write_transaction(ctx.engine) as conn:
        # Before any folder row is locked (a summary update locks one): see hold_chain.
        hold_chain(conn)
        for space_id, space_name, folders in entries:
            result.workspaces_added += _add_workspace(conn, space_id, space_name)
            for folder, summary, grants in folders:
                result.folders_added += _add_folder(conn, space_id, folder, summary)
                where = resolve.target_in(conn, Target(space_id, folder))
                for principal, role in grants:
                    new = Role.parse(role)
                    change = apply_grant(ctx, conn, resolve.principal_in(conn, principal), where, new)
                    if change.changed:
                        result.grants_changed += 1
                    else:
                        result.grants_unchanged += 1
    return result
