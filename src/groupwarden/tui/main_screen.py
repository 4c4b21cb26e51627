"""The main screen: four panes (groups, members, folders, ACL), the status line and sync."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static

from groupwarden.config import Settings, SourceConfig
from groupwarden.domain.directory import Progress
from groupwarden.domain.roles import Role
from groupwarden.tui import backend
from groupwarden.tui.backend import Applied, Context, GroupRow, MemberRow
from groupwarden.tui.busy import Busy
from groupwarden.tui.listpane import ListPane
from groupwarden.tui.messages import (
    ChangeApplied,
    ChangeRefused,
    SyncFailed,
    SyncFinished,
    SyncProgressed,
    apply_change,
)
from groupwarden.tui.panes import AclPane, FoldersPane, GroupsPane, MembersPane
from groupwarden.tui.text import ago, one_line, plain

if TYPE_CHECKING:
    from groupwarden.tui.backend import GrantRow

PANES = ("groups", "members", "folders", "acl")
LABELS = {"groups": "Groups", "members": "Members", "folders": "Folders", "acl": "ACL"}
# Below this size the panes are shown two at a time (the active one and its partner).
GRID_WIDTH = 120
GRID_HEIGHT = 32


def is_compact(width: int, height: int) -> bool:
    return width < GRID_WIDTH or height < GRID_HEIGHT


def partner(pane: str) -> tuple[str, str]:
    return ("groups", "members") if pane in ("groups", "members") else ("folders", "acl")


class PaneStrip(Static):
    """Which of the four panes is active, and which are on screen."""

    def show(self, active: str, compact: bool) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        visible = partner(active) if compact else PANES
        for number, name in enumerate(PANES, 1):
            label = f" {number} {LABELS[name]} "
            if name == active:
                line.append(label, style="reverse bold")
            elif name in visible:
                line.append(label, style="bold")
            else:
                line.append(label, style="dim")
            line.append(" ")
        line.append(" tab: next pane  ?: keys", style="dim")
        self.update(line)


class SyncBar(Horizontal):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # Shown from the first sync on.
        self.display = False

    def compose(self) -> ComposeResult:
        yield Static("", id="sync-text")
        yield ProgressBar(show_eta=False, id="sync-progress")

    def started(self, source: str) -> None:
        self.display = True
        self.remove_class("failed")
        self.query_one(ProgressBar).display = True
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one("#sync-text", Static).update(plain(f"syncing {source}: connecting…"))

    def progress(self, source: str, step: Progress) -> None:
        of = f" of {step.total:,}" if step.total is not None else ""
        pages = f"page {step.pages}, " if step.phase != "reconcile" else ""
        self.query_one("#sync-text", Static).update(
            plain(f"syncing {source}: {step.phase}, {pages}{step.items:,}{of}")
        )
        self.query_one(ProgressBar).update(total=step.total, progress=step.items)

    def finished(self, text: str, failed: bool) -> None:
        self.display = True
        self.set_class(failed, "failed")
        self.query_one(ProgressBar).display = False
        self.query_one("#sync-text", Static).update(plain(text))


P = ParamSpec("P")


def after_start(
    action: Callable[Concatenate[MainScreen, P], None],
) -> Callable[Concatenate[MainScreen, P], None]:
    """A key's action: run now, or once the screen is complete if it is not yet.

    The panes after the first, the sync bar and the footer are mounted once the first group rows
    are painted. A key that arrives before (typed ahead of the start, say) is kept, and every
    such key runs then, in the order typed.
    """

    @functools.wraps(action)
    def run(screen: MainScreen, /, *args: P.args, **kwargs: P.kwargs) -> None:
        if screen.ready:
            action(screen, *args, **kwargs)
        else:
            screen.held.append(partial(action, screen, *args, **kwargs))

    return run


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("tab", "next_pane(1)", "Next pane", show=False, priority=True),
        Binding("shift+tab", "next_pane(-1)", "Previous pane", show=False, priority=True),
        Binding("1", "pane('groups')", "Groups pane", show=False),
        Binding("2", "pane('members')", "Members pane", show=False),
        Binding("3", "pane('folders')", "Folders pane", show=False),
        Binding("4", "pane('acl')", "ACL pane", show=False),
        Binding("g", "grant", "Grant"),
        Binding("x", "revoke", "Revoke"),
        Binding("e", "effective", "Effective users", show=False),
        Binding("s", "sync", "Sync"),
        Binding("a", "audit", "Audit"),
        Binding("u", "lookup", "User"),
        Binding("w", "export", "Export list", show=False),
        Binding("r", "reload", "Reload", show=False),
        Binding("question_mark", "help", "Keys", key_display="?"),
        Binding("q", "app.quit", "Quit"),
    ]

    # No watcher runs at the start: the screen and each pane get their classes as they are made,
    # since a class changed later restyles every widget under it.
    active: reactive[str] = reactive("groups", init=False)
    compact: reactive[bool] = reactive(True, init=False)

    def __init__(
        self, ctx: Context, settings: Settings, source: SourceConfig | None, clock: Callable[[], datetime]
    ) -> None:
        compact = is_compact(*self.app.size)
        super().__init__(classes="compact" if compact else "")
        self.set_reactive(MainScreen.compact, compact)
        self.ctx = ctx
        self.settings = settings
        self.source = source
        self.clock = clock
        self.syncing = False
        # The grant being revoked, from the question until the database's answer.
        self.revoking: GrantRow | None = None
        # started: the groups' first rows arrived; ready: the rest of the screen is mounted and
        # its panes were asked to load. Both wait for those rows to be painted: nothing is
        # composed, styled or read before them that they do not need.
        self.started = False
        self.ready = False
        # The actions of keys that came before the screen was ready, in order (see after_start).
        self.held: list[Callable[[], None]] = []

    def compose(self) -> ComposeResult:
        # Only what the first group rows need; _complete mounts the rest once they are painted.
        yield PaneStrip(id="strip")
        with Container(id="panes"):
            yield self._placed(GroupsPane(self.ctx, self.clock))
        yield Static("", id="status")

    def on_mount(self) -> None:
        if self.source is None:
            # "press s" would only be told there is nothing to sync.
            self.groups.empty = "no groups yet: add a source under [sources] in the config file"
        self.query_one(PaneStrip).show(self.active, self.compact)
        self.groups.reload()
        self.groups.focus_table()
        self.update_status()
        self.set_interval(30, self.update_status)

    async def _complete(self) -> None:
        """The rest of the screen, once the first rows are painted; then every held key."""
        # The command line starts the UI with garbage collection off (cli/commands/app.py).
        gc.enable()
        if self._quitting():
            return
        panes = self.query_one("#panes", Container)
        rest = (MembersPane(self.ctx), FoldersPane(self.ctx), AclPane(self.ctx))
        mounted = (
            panes.mount(*(self._placed(pane) for pane in rest)),
            self.mount(SyncBar(id="syncbar"), Busy(id="busy"), before="#status"),
            self.mount(Footer()),
        )
        for done in mounted:
            await done
        if self._quitting():
            return
        # A footer shows the keys when told that they changed: tell the one mounted now.
        self.refresh_bindings()
        self.ready = True
        self._say_what_to_do()
        self.folders.reload()
        self._follow_group()
        held, self.held = self.held, []
        for action in held:
            action()

    def _quitting(self) -> bool:
        """Whether the app is on its way out (q pressed at once, say): nothing more is shown."""
        return not (self.is_attached and self.app.is_running)

    @property
    def groups(self) -> GroupsPane:
        return self.query_one(GroupsPane)

    @property
    def members(self) -> MembersPane:
        return self.query_one(MembersPane)

    @property
    def folders(self) -> FoldersPane:
        return self.query_one(FoldersPane)

    @property
    def acl(self) -> AclPane:
        return self.query_one(AclPane)

    def pane(self, name: str) -> ListPane:
        return self.query_one(f"#{name}", ListPane)

    # Layout: a 2x2 grid when there is room, otherwise the active pane and its partner.

    def on_resize(self, event: Resize) -> None:
        self.compact = is_compact(event.size.width, event.size.height)

    def watch_compact(self) -> None:
        self._arrange()

    def watch_active(self) -> None:
        self._arrange()

    def _placed(self, pane: ListPane) -> ListPane:
        """pane with the classes that say whether it is on screen and active."""
        pane.set_class(pane.id in partner(self.active), "shown")
        pane.set_class(pane.id == self.active, "active")
        return pane

    def _arrange(self) -> None:
        self.set_class(self.compact, "compact")
        for pane in self.query_one("#panes", Container).query_children(ListPane):
            self._placed(pane)
        self.query_one(PaneStrip).show(self.active, self.compact)

    @after_start
    def action_pane(self, name: str) -> None:
        self.active = name
        # Focus now, not after a refresh: keys typed right after the pane key must land in it.
        self.set_focus(self.pane(name).table)

    @after_start
    def action_next_pane(self, step: int) -> None:
        index = (PANES.index(self.active) + step) % len(PANES)
        self.action_pane(PANES[index])

    @on(ListPane.Chosen)
    def _chosen(self, event: ListPane.Chosen) -> None:
        name = event.pane.id or "groups"
        if name in PANES and self.active != name:
            self.active = name
        row = event.row
        if isinstance(row, GroupRow):
            if not self.ready:
                return
            self.members.show_group(row)
            self.acl.show_group(row)
        elif name == "folders" and isinstance(row, backend.FolderRow):
            self.acl.show_folder(row.ref, self.folders.link_of(row.workspace))

    @on(ListPane.Opened)
    def _opened(self, event: ListPane.Opened) -> None:
        if event.pane.id == "groups":
            self.action_pane("members")
        elif event.pane.id == "folders" and isinstance(event.row, backend.FolderRow):
            self.action_pane("acl")

    @on(ListPane.Loaded)
    def _loaded(self, event: ListPane.Loaded) -> None:
        if event.pane is self.groups:
            self.update_status()
            if not self.started:
                self.started = True
                self.call_after_refresh(self._complete)
            elif self.ready:
                self._say_what_to_do()
                self._follow_group()

    def _say_what_to_do(self) -> None:
        """With no group at all, the members pane says how to get some, not "loading…"."""
        if self.groups.rows or self.members.group is not None:
            return
        if self.source is None:
            hint = "no groups yet: add a source to the config file, then press s"
        else:
            hint = "no groups yet: press s to sync, or run a sync from the command line"
        self.members.idle = hint
        self.members.refresh_note()

    def _follow_group(self) -> None:
        row = self.groups.current()
        if self.active == "groups" and row is not None:
            self.members.show_group(row)
            self.acl.show_group(row)

    # Status line

    def last_synced(self) -> datetime | None:
        name = self.source.name if self.source else None
        times = [
            g.last_synced for g in self.groups.rows if g.last_synced and (name is None or g.source == name)
        ]
        return max(times, default=None)

    def update_status(self) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        if self.ctx.read_only:
            line.append(" READ-ONLY ", style="reverse bold red")
            line.append(" ")
        if self.source is None:
            line.append("no source configured", style="dim")
        else:
            line.append("source ")
            line.append_text(plain(self.source.name, 24, "bold"))
            line.append(f" ({self.source.kind})")
        if self.groups.loaded:
            line.append(f" · synced {ago(self.last_synced(), self.clock())}")
            line.append(f" · {self.groups.total:,} groups")
        self.query_one("#status", Static).update(line)

    # Role changes

    def _selection(self) -> tuple[str | None, str | None, Role | None]:
        """(principal, target, current role) that g starts from, from the active pane."""
        row: Any = self.pane(self.active).current()
        group = self.groups.current()
        if self.active == "groups" and isinstance(row, GroupRow):
            return f"g/{row.name}", None, None
        if self.active == "members" and isinstance(row, MemberRow):
            return f"u/{row.user_name}", None, None
        if self.active == "folders":
            return None, row.target if isinstance(row, backend.FolderRow) else None, None
        if self.active == "acl":
            if isinstance(row, backend.GrantRow):
                return row.principal, row.target, row.role
            if isinstance(row, backend.UserAccess):
                return f"u/{row.user_name}", self.acl.target_text, None
            if self.acl.group is not None:
                return f"g/{self.acl.group.name}", None, None
            return None, self.acl.target_text, None
        return (f"g/{group.name}" if isinstance(group, GroupRow) else None), None, None

    @after_start
    def action_grant(self) -> None:
        from groupwarden.tui.dialogs import GrantDialog

        principal, target, role = self._selection()
        dialog = GrantDialog(self.ctx, principal, target, role, self.folders.targets())
        self.app.push_screen(dialog, self._changed)

    def _changed(self, applied: Applied | None) -> None:
        if applied is None:
            return
        self.notify(applied.text(), markup=False, timeout=8)
        self.action_reload()

    @after_start
    def action_revoke(self) -> None:
        grant = self.acl.selected_grant()
        if grant is None:
            self.notify("select a grant in the ACL pane (4) first, then press x", markup=False)
            return
        if self.revoking is not None:
            self.notify("a revoke is still being applied; wait for its answer", markup=False)
            return
        self.revoking = grant
        body = Text()
        body.append_text(plain(f"{grant.principal} loses {grant.role} on {grant.target}."))
        if grant.orphaned:
            body.append("\nThis grant is orphaned: it grants nothing now.")
            self._ask_revoke(grant, body)
            return
        self.query_one(Busy).start("computing the impact…")
        self.preview_revoke(grant, body)

    @work(thread=True, exclusive=True, group="preview")
    def preview_revoke(self, grant: GrantRow, body: Text) -> None:
        from groupwarden.tui.dialogs import impact_text

        try:
            impact = impact_text(backend.preview_revoke(self.ctx, grant))
            body.append("\n")
            body.append_text(impact)
        except Exception as exc:
            body.append_text(plain(f"\n(impact unknown: {one_line(exc)})"))
        self.app.call_from_thread(self._ask_revoke, grant, body)

    def _ask_revoke(self, grant: GrantRow, body: Text) -> None:
        from groupwarden.tui.dialogs import ConfirmDialog

        self.query_one(Busy).stop()

        def answered(yes: bool | None) -> None:
            if yes:
                self._revoke(grant, confirm_last_admin=False)
            else:
                self.revoking = None

        self.app.push_screen(ConfirmDialog("Revoke a grant", body, "Revoke"), answered)

    def _revoke(self, grant: GrantRow, *, confirm_last_admin: bool) -> None:
        self.query_one(Busy).start(f"applying: revoke {grant.principal} {grant.role} on {grant.target}…")
        ctx = self.ctx
        apply_change(self, lambda: backend.revoke(ctx, grant, confirm_last_admin=confirm_last_admin))

    @on(ChangeApplied)
    def _revoked(self, message: ChangeApplied) -> None:
        message.stop()
        self.revoking = None
        self.query_one(Busy).stop()
        self._changed(message.applied)

    @on(ChangeRefused)
    def _revoke_refused(self, message: ChangeRefused) -> None:
        message.stop()
        self.query_one(Busy).stop()
        grant, self.revoking = self.revoking, None
        if message.needs_confirmation and grant is not None:
            from groupwarden.tui.dialogs import ConfirmDialog

            question = Text.assemble(plain(message.reason), "\n\nRemove the last admin anyway?")

            def answered(yes: bool | None) -> None:
                if yes:
                    self.revoking = grant
                    self._revoke(grant, confirm_last_admin=True)
                else:
                    self.notify("nothing was changed", markup=False)

            self.app.push_screen(ConfirmDialog("Last admin", question, "Remove the last admin"), answered)
            return
        self.notify(message.reason, severity="error", markup=False, timeout=10)

    @after_start
    def action_effective(self) -> None:
        if not self.acl.toggle_effective():
            self.notify("e shows who reaches a folder: select a folder in pane 3 first", markup=False)
            return
        self.action_pane("acl")

    @after_start
    def action_reload(self) -> None:
        self.groups.reload(keep_cursor=True)
        self.folders.reload(keep_cursor=True)
        group = self.members.group
        if group is not None:
            self.members.show_group(group, keep_cursor=True)
        self.acl.refresh_rows(keep_cursor=True)

    # Sync

    @after_start
    def action_sync(self) -> None:
        if self.source is None:
            self.notify(
                "no source to sync: add one under [sources] in the config file"
                f" ({self.settings.path or 'see groupwarden --help'}), or run `groupwarden demo`",
                severity="warning",
                markup=False,
                timeout=10,
            )
            return
        if self.syncing:
            self.notify("a sync is already running", markup=False)
            return
        self.syncing = True
        self.query_one(SyncBar).started(self.source.name)
        self.sync_worker(self.source)

    @work(thread=True, exclusive=True, group="sync")
    def sync_worker(self, config: SourceConfig) -> None:
        # A daemon thread (see threads.py): quitting does not wait for a sync stuck on the network.
        def progress(step: Progress) -> None:
            self.post_message(SyncProgressed(config.name, step))

        try:
            report = backend.sync(
                self.ctx,
                config,
                self.settings,
                progress,
            )
        except Exception as exc:
            self.post_message(SyncFailed(one_line(exc)))
            return
        self.post_message(SyncFinished(report))

    @on(SyncProgressed)
    def _sync_progressed(self, message: SyncProgressed) -> None:
        if self.syncing:
            self.query_one(SyncBar).progress(message.source, message.step)

    @on(SyncFinished)
    def _synced(self, message: SyncFinished) -> None:
        self.syncing = False
        report = message.report
        text = f"synced {report.source}: {report.diff.summary()}"
        self.query_one(SyncBar).finished(text, failed=False)
        self.notify(text, markup=False, timeout=8)
        self.action_reload()

    @on(SyncFailed)
    def _sync_failed(self, message: SyncFailed) -> None:
        self.syncing = False
        line = message.error
        self.query_one(SyncBar).finished(f"sync failed, nothing changed: {line}", failed=True)
        self.notify(line, title="sync failed", severity="error", markup=False, timeout=10)

    # Other screens

    @after_start
    def action_audit(self) -> None:
        from groupwarden.tui.audit_screen import AuditScreen

        self.app.push_screen(AuditScreen(self.ctx, self.clock))

    @after_start
    def action_lookup(self) -> None:
        from groupwarden.tui.lookup_screen import LookupScreen

        self.app.push_screen(LookupScreen(self.ctx))

    @after_start
    def action_export(self) -> None:
        from groupwarden.tui.common import export_pane

        export_pane(self, self.pane(self.active), self.active)

    @after_start
    def action_help(self) -> None:
        from groupwarden.tui.common import show_help

        show_help(self, "main screen")
