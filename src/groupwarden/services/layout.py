"""Workspaces and folders, and importing a whole layout (workspaces, folders, grants)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection

from groupwarden.domain.errors import BadInput, Hint, NotFound, Remedy
from groupwarden.domain.layout import Layout, LayoutGrant, parse_layout
from groupwarden.domain.principals import Target, check_folder_name, check_workspace_id
from groupwarden.domain.refs import GroupRef, Principal, TargetRef
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
    #: The Windmill instance the workspace is linked to ("NAME (stand-in)" for the demo's
    #: stand-in); None for a local workspace.
    linked: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "name": self.name}
        if self.linked is not None:
            # Only on a linked workspace, so a local one reads as before.
            out["linked"] = self.linked
        out["folders"] = [f.to_dict() for f in self.folders]
        return out


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
    """Every workspace and its folders; a linked folder counts Windmill's ACL entries as its grants."""
    from groupwarden.services.windmill import access as linked

    with ctx.engine.connect() as conn:
        links = linked.link_labels(conn)
        acl = linked.acl_counts(conn) if links else {}
        spaces = {w.id: WorkspaceRow(w.id, w.name, linked=links.get(w.id)) for w in store.workspaces(conn)}
        for f in store.folders(conn):
            grants = acl.get((f.workspace, f.name), 0) if f.workspace in links else f.grants
            spaces[f.workspace].folders.append(FolderRow(f.id, f.workspace, f.name, f.summary, grants))
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


def read_layout(path: Path) -> Layout:
    """The layout file at path (TOML, or JSON by its suffix), checked whole; one line when it is not."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read layout file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"layout file {path} is not UTF-8 text") from None
    return parse_layout(raw, json_format=path.suffix.lower() == ".json", where=f"layout file {path}")


def _resolve_principals(conn: Connection, layout: Layout, where: str) -> dict[str, Principal]:
    """Every principal the layout names, resolved before anything is written.

    Two entries on one target that name the same group or user in different ways (by name
    and by upstream id) would say two things about one grant: refused, like a repeated name.
    """
    resolved: dict[str, Principal] = {}
    for target, grants in layout.targets():
        seen: dict[tuple[str, int], LayoutGrant] = {}
        for g in grants:
            if g.principal not in resolved:
                try:
                    resolved[g.principal] = resolve.principal_in(conn, g.principal)
                except BadInput as exc:
                    raise BadInput(f"{where}: {g.at}: {exc}", hint=exc.hint) from None
            ref = resolved[g.principal]
            key = ("g" if isinstance(ref, GroupRef) else "u", ref.id)
            if key in seen:
                first = seen[key]
                raise BadInput(
                    f"{where}: {g.at}: {g.principal} and {first.principal} (at {first.at}) are the same"
                    f" {'group' if key[0] == 'g' else 'user'} on {target}; keep one role"
                )
            seen[key] = g
    return resolved


def import_layout(ctx: Context, path: Path, *, confirm_last_admin: bool = False) -> LayoutResult:
    """Create the workspaces, folders and grants (folder and item) of a layout file; running it
    twice changes nothing.

    All or nothing: the file is checked whole and every principal resolved before anything is
    written; one bad entry (an unknown group, a bad role, a grant that would remove the last
    admin unless confirm_last_admin) and nothing is written.
    """
    layout = read_layout(path)
    where = f"layout file {path}"
    ctx.require_writable("importing a layout")
    result = LayoutResult()
    with write_transaction(ctx.engine) as conn:
        # Before any folder row is locked (a summary update locks one): see hold_chain.
        hold_chain(conn)
        principals = _resolve_principals(conn, layout, where)
        for space in layout.workspaces:
            result.workspaces_added += _add_workspace(conn, space.id, space.name)
            for folder in space.folders:
                result.folders_added += _add_folder(conn, space.id, folder.target.folder, folder.summary)
        for target, grants in layout.targets():
            at = resolve.target_in(conn, target)
            for g in grants:
                change = apply_grant(
                    ctx, conn, principals[g.principal], at, g.role, confirm_last_admin=confirm_last_admin
                )
                if change.changed:
                    result.grants_changed += 1
                else:
                    result.grants_unchanged += 1
    return result
