"""The audit screen: sync runs with their diffs, role changes, orphaned grants, admins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from groupwarden.domain.errors import GroupwardenError, NeedsConfirmation
from groupwarden.services import audit, grants
from groupwarden.services.admins import admins_everywhere
from groupwarden.services.audit import RunEvent
from groupwarden.services.context import Context
from groupwarden.services.grants import GrantRow
from groupwarden.services.reconcile import SyncDiff
from groupwarden.tui.common import export_pane, show_help
from groupwarden.tui.dialogs import ConfirmDialog
from groupwarden.tui.listpane import Column, ListPane
from groupwarden.tui.text import ago, plain, stamp

TABS = ("runs", "changes", "orphans", "admins")
NAMES_SHOWN = 8


def run_summary(run: RunEvent) -> str:
    if run.error:
        return run.error
    return SyncDiff.from_dict(run.diff).summary()


def diff_text(run: RunEvent | None) -> Text:
    if run is None:
        return Text("select a run to see its diff", style="dim")
    out = Text()
    out.append(f"run {run.id} of {run.source}: {run.outcome}\n", style="bold")
    if run.error:
        out.append_text(plain(run.error))
        return out
    diff = SyncDiff.from_dict(run.diff)
    out.append_text(plain(diff.summary()))

    def names(label: str, items: list[str]) -> None:
        if items:
            more = f" and {len(items) - NAMES_SHOWN:,} more" if len(items) > NAMES_SHOWN else ""
            out.append(f"\n{label}: ", style="bold")
            out.append_text(plain(", ".join(items[:NAMES_SHOWN]) + more))

    names("groups added", diff.groups_added)
    names("groups renamed", [f"{a} -> {b}" for a, b in diff.groups_renamed])
    names("groups removed", diff.groups_removed)
    names("users added", diff.users_added)
    names("users removed", diff.users_removed)
    names("members added", [f"{g} +{len(us)}" for g, us in sorted(diff.members_added.items())])
    names("members removed", [f"{g} -{len(us)}" for g, us in sorted(diff.members_removed.items())])
    names("grants orphaned", diff.orphaned_grants)
    return out


class AuditScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("1", "tab('runs')", "Sync runs", show=False),
        Binding("2", "tab('changes')", "Role changes", show=False),
        Binding("3", "tab('orphans')", "Orphaned grants", show=False),
        Binding("4", "tab('admins')", "Admins", show=False),
        Binding("w", "export", "Export"),
        Binding("c", "clean_up", "Clean up orphan"),
        Binding("r", "reload", "Reload", show=False),
        Binding("question_mark", "help", "Keys", key_display="?"),
    ]

    def __init__(self, ctx: Context, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.ctx = ctx
        self.clock = clock

    def compose(self) -> ComposeResult:
        clock = self.clock
        with TabbedContent(initial="runs"):
            with TabPane("1 Sync runs", id="runs"):
                yield ListPane(
                    "Sync runs (newest first)",
                    [
                        Column("finished", 16, lambda r: stamp(r.finished_at)),
                        Column("age", 8, lambda r: ago(r.finished_at, clock())),
                        Column("source", 12, lambda r: r.source),
                        Column(
                            "outcome",
                            8,
                            lambda r: r.outcome,
                            style=lambda r: "" if r.outcome == "ok" else "red",
                        ),
                        Column("diff or error", 60, run_summary),
                    ],
                    empty="no sync has run yet",
                    id="runs-list",
                    classes="audit-list",
                )
                yield Static(diff_text(None), id="run-detail")
            with TabPane("2 Role changes", id="changes"):
                yield ListPane(
                    "Role changes (newest first)",
                    [
                        Column("when", 16, lambda e: stamp(e.at)),
                        Column("actor", 20, lambda e: f"{e.actor}@{e.host}"),
                        Column("action", 7, lambda e: e.action),
                        Column("principal", 22, lambda e: e.principal),
                        Column("target", 18, lambda e: e.target),
                        Column("before", 7, lambda e: e.before or "none"),
                        Column("after", 7, lambda e: e.after or "none"),
                    ],
                    empty="no role has been changed yet",
                    id="changes-list",
                )
            with TabPane("3 Orphaned grants", id="orphans"):
                yield ListPane(
                    "Orphaned grants: their group or user is gone upstream (c cleans one up)",
                    [
                        Column("principal", 26, lambda g: g.principal),
                        Column("upstream id", 14, lambda g: g.upstream_id),
                        Column("role", 7, lambda g: g.role),
                        Column("target", 20, lambda g: g.target),
                        Column("granted by", 18, lambda g: g.granted_by),
                        Column("when", 16, lambda g: stamp(g.granted_at)),
                    ],
                    empty="no orphaned grants",
                    id="orphans-list",
                )
            with TabPane("4 Admins", id="admins"):
                yield ListPane(
                    "Who has admin where, across all workspaces",
                    [
                        Column("folder", 20, lambda a: a.target),
                        Column("user", 18, lambda a: a.user_name),
                        Column("active", 6, lambda a: "yes" if a.active else "no"),
                        Column("why", 60, lambda a: a.explanation),
                    ],
                    empty="no admin on any folder",
                    id="admins-list",
                )
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.list("runs").focus_table()

    def list(self, tab: str) -> ListPane:
        return self.query_one(f"#{tab}-list", ListPane)

    def action_reload(self) -> None:
        ctx = self.ctx
        self.list("runs").load(lambda: audit.sync_runs(ctx), keep_cursor=True)
        self.list("changes").load(lambda: audit.role_changes(ctx), keep_cursor=True)
        self.list("orphans").load(lambda: grants.orphaned_grants(ctx), keep_cursor=True)
        self.list("admins").load(lambda: admins_everywhere(ctx), keep_cursor=True)

    @property
    def tab(self) -> str:
        return self.query_one(TabbedContent).active or "runs"

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.call_after_refresh(self.list(tab).focus_table)

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self.list(self.tab).focus_table)

    @on(ListPane.Chosen, "#runs-list")
    @on(ListPane.Loaded, "#runs-list")
    def _run_chosen(self) -> None:
        run = self.list("runs").current()
        self.query_one("#run-detail", Static).update(diff_text(run if isinstance(run, RunEvent) else None))

    def action_export(self) -> None:
        export_pane(self, self.list(self.tab), f"audit-{self.tab}")

    def action_clean_up(self) -> None:
        if self.tab != "orphans":
            self.notify("c cleans up an orphaned grant: open tab 3 first", markup=False)
            return
        grant = self.list("orphans").current()
        if not isinstance(grant, GrantRow):
            self.notify("no orphaned grant selected", markup=False)
            return
        self.clean_up(grant)

    @work(exclusive=True, group="flow")
    async def clean_up(self, grant: GrantRow) -> None:
        body = plain(
            f"Delete the orphaned grant {grant.principal} {grant.role} on {grant.target}?"
            " It grants nothing now; deleting it is recorded in the audit log."
        )
        if not await self.app.push_screen_wait(ConfirmDialog("Clean up an orphaned grant", body, "Delete")):
            return
        try:
            change = grants.revoke(
                self.ctx, grant.principal_ref, grant.target_ref, expected=grant.role, confirm_last_admin=True
            )
        except NeedsConfirmation as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        except GroupwardenError as exc:
            self.notify(str(exc), severity="error", markup=False, timeout=10)
            return
        self.notify(change.describe(), markup=False)
        self.action_reload()

    def action_help(self) -> None:
        show_help(self, "audit screen")
