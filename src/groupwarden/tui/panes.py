"""The four panes of the main screen: groups, members, workspaces and folders, folder ACL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.text import Text

from groupwarden.tui import backend
from groupwarden.tui.backend import Context, GroupRow, MemberRow, TargetRef, WorkspaceLine, group_key
from groupwarden.tui.listpane import Column, ListPane
from groupwarden.tui.text import ago, plain, stamp

if TYPE_CHECKING:
    from groupwarden.tui.backend import FolderRow, GrantRow, UserAccess

Clock = Callable[[], datetime]


def _role_style(row: Any) -> str:
    if getattr(row, "orphaned", False):
        return "dim strike"
    return {"admin": "bold", "writer": "", "viewer": "dim"}.get(str(row.role), "")


class GroupsPane(ListPane):
    def __init__(self, ctx: Context, clock: Clock) -> None:
        super().__init__(
            "1 Groups",
            [
                Column("group", 28, lambda g: g.name if g.lookalike is None else f"{g.name} ⚠ {g.lookalike}"),
                Column("source", 10, lambda g: g.source),
                Column("direct", 6, lambda g: g.direct_members, "right"),
                Column("eff.", 6, lambda g: g.effective_members, "right"),
                Column("grants", 6, lambda g: g.grants, "right"),
                Column("synced", 8, lambda g: ago(g.last_synced, clock())),
            ],
            empty="no groups synced yet: press s to sync the configured source",
            search=lambda g: f"{g.name} {g.source}",
            id="groups",
        )
        self.ctx = ctx
        # Every live group, counted apart: the rows may hold only the first page.
        self.total = 0

    def reload(self, keep_cursor: bool = False) -> None:
        ctx = self.ctx

        def everything() -> list[GroupRow]:
            rows = backend.list_groups(ctx)
            self.total = len(rows)
            return rows

        def first_page() -> list[GroupRow]:
            self.total = backend.count_groups(ctx)
            return backend.list_groups(ctx, limit=self.PAGE)

        if keep_cursor and self.complete:
            # The cursor may be past the first page: keep every row.
            self.load(everything, keep_cursor=True)
        else:
            self.load(everything, first=first_page, keep_cursor=keep_cursor)


class MembersPane(ListPane):
    def __init__(self, ctx: Context) -> None:
        super().__init__(
            "2 Members",
            [
                Column(
                    "userName",
                    18,
                    lambda m: m.user_name if m.lookalike is None else f"{m.user_name} ⚠ {m.lookalike}",
                ),
                Column("display name", 18, lambda m: m.display_name),
                Column("email", 22, lambda m: m.email),
                Column("active", 6, lambda m: "yes" if m.active else "no", style=_inactive),
                Column("via", 24, lambda m: m.via_text),
            ],
            empty="select a group to see its members",
            search=lambda m: f"{m.user_name} {m.display_name or ''} {m.email or ''} {m.via_text}",
            id="members",
        )
        self.ctx = ctx
        self.group: GroupRow | None = None

    def show_group(self, group: GroupRow | None, keep_cursor: bool = False) -> None:
        if group is None:
            return
        if self.group is not None and group_key(self.group) == group_key(group) and not keep_cursor:
            return
        self.group = group
        self.border_title = Text.assemble("2 Members of ", plain(f"g/{group.name}", 40))
        ctx, page = self.ctx, self.PAGE
        everything = partial(backend.members_of, ctx, group)
        self.load(
            everything,
            # A big group shows its first page at once; the rest is read when it is needed.
            first=None if keep_cursor and self.complete else partial(backend.members_of, ctx, group, page),
            empty="this group has no members",
            keep_cursor=keep_cursor,
        )


def _inactive(member: MemberRow) -> str:
    return "" if member.active else "red"


def _folder_label(row: WorkspaceLine | FolderRow) -> str:
    if isinstance(row, WorkspaceLine):
        return f"▾ {row.id}" if row.name == row.id else f"▾ {row.id} ({row.name})"
    return f"  {row.target}"


def _folder_summary(row: WorkspaceLine | FolderRow) -> str:
    if isinstance(row, WorkspaceLine):
        # The pane's column is narrow: the ACL pane's title says "linked to windmill NAME" in full.
        return f"windmill {row.linked}" if row.linked else ""
    return row.summary or ""


def _workspace_style(row: WorkspaceLine | FolderRow) -> str:
    return "bold" if isinstance(row, WorkspaceLine) else ""


class FoldersPane(ListPane):
    def __init__(self, ctx: Context) -> None:
        super().__init__(
            "3 Workspaces / folders",
            [
                Column("folder", 28, _folder_label, style=_workspace_style),
                Column("grants", 6, lambda r: r.grants if isinstance(r, backend.FolderRow) else "", "right"),
                Column(
                    "summary",
                    24,
                    _folder_summary,
                    style=lambda r: "italic" if isinstance(r, WorkspaceLine) and r.linked else "",
                ),
            ],
            empty="no workspaces yet: add them with `groupwarden workspace add` or a layout file",
            id="folders",
        )
        self.ctx = ctx

    def reload(self, keep_cursor: bool = False) -> None:
        self.load(partial(backend.workspaces_and_folders, self.ctx), keep_cursor=keep_cursor)

    def link_of(self, workspace: str) -> str | None:
        """The instance a workspace is linked to, as its row says; None for a local one."""
        for row in self.rows:
            if isinstance(row, WorkspaceLine) and row.id == workspace:
                return row.linked
        return None

    def targets(self) -> list[str]:
        return [r.target for r in self.rows if isinstance(r, backend.FolderRow)]


FOLDER_GRANTS = [
    Column("principal", 26, lambda g: g.principal),
    Column("role", 8, lambda g: f"{g.role}{' (orphaned)' if g.orphaned else ''}", style=_role_style),
    Column("on", 14, lambda g: "folder" if not g.item_path else g.item_path),
    Column("granted by", 18, lambda g: g.granted_by),
    Column("when", 16, lambda g: stamp(g.granted_at)),
]
EFFECTIVE = [
    Column("user", 18, lambda a: a.user_name),
    Column("role", 7, lambda a: a.role, style=_role_style),
    Column("active", 6, lambda a: "yes" if a.active else "no"),
    Column("why", 50, lambda a: a.explanation),
]
# On a linked folder a row may note a membership that Windmill and the IdP disagree on.
EFFECTIVE_NOTED = [
    *EFFECTIVE[:3],
    Column("note", 26, lambda a: backend.access_note(a) or "", style=lambda a: "yellow"),
    EFFECTIVE[3],
]


def effective_columns(rows: Sequence[UserAccess]) -> list[Column]:
    """The note column only when some row has a note: local folders look as they always did."""
    return EFFECTIVE_NOTED if any(backend.access_note(a) for a in rows) else EFFECTIVE


GROUP_GRANTS = [
    Column("target", 24, lambda g: g.target),
    Column("role", 8, lambda g: f"{g.role}{' (orphaned)' if g.orphaned else ''}", style=_role_style),
    Column("granted by", 18, lambda g: g.granted_by),
    Column("when", 16, lambda g: stamp(g.granted_at)),
]


class AclPane(ListPane):
    """Grants on the chosen folder (or, with e, who reaches it and why), or a chosen group's grants."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(
            "4 ACL",
            FOLDER_GRANTS,
            empty="select a folder (3) or a group (1) to see grants",
            id="acl",
        )
        self.ctx = ctx
        self.target: TargetRef | None = None
        # The Windmill instance the target's workspace is linked to, if it is.
        self.linked: str | None = None
        self.group: GroupRow | None = None
        self.effective = False

    @property
    def target_text(self) -> str | None:
        return None if self.target is None else str(self.target)

    def show_folder(self, target: TargetRef, linked: str | None = None) -> None:
        if self.target == target and self.group is None and self.linked == linked:
            return
        self.target, self.group, self.linked = target, None, linked
        self.refresh_rows()

    def show_group(self, group: GroupRow) -> None:
        if self.group is not None and group_key(self.group) == group_key(group):
            return
        self.target, self.group = None, group
        self.refresh_rows()

    def toggle_effective(self) -> bool:
        if self.target is None:
            return False
        self.effective = not self.effective
        self.refresh_rows()
        return True

    def refresh_rows(self, keep_cursor: bool = False) -> None:
        ctx = self.ctx
        if self.group is not None:
            group = self.group
            self.border_title = Text.assemble(
                "4 Grants of ", plain(f"g/{group.name}", 40), " (all workspaces)"
            )
            self.load(
                partial(backend.grants_of, ctx, group),
                columns=GROUP_GRANTS,
                empty="this group has no grants; g grants it a role",
                keep_cursor=keep_cursor,
            )
        elif self.target is not None:
            target = self.target
            where = plain(f"{target}, linked to windmill {self.linked}" if self.linked else str(target))
            if self.effective:
                self.border_title = Text.assemble("4 Who reaches ", where, " (e: grants)")
                self.load(
                    partial(backend.who_can, ctx, target),
                    columns=effective_columns,
                    empty="nobody reaches this folder",
                    keep_cursor=keep_cursor,
                )
            else:
                self.border_title = Text.assemble("4 ACL of ", where, " (e: effective users)")
                self.load(
                    partial(backend.folder_grants, ctx, target),
                    columns=FOLDER_GRANTS,
                    empty="no grants on this folder; g grants a role",
                    keep_cursor=keep_cursor,
                )

    def selected_grant(self) -> GrantRow | None:
        row = self.current()
        return row if isinstance(row, backend.GrantRow) else None
