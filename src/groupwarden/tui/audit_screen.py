"""The audit screen: sync runs with their diffs, role changes, orphaned grants, admins, and what
each linked Windmill instance gets wrong."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from groupwarden.tui import backend
from groupwarden.tui.backend import Context, DriftReport, GrantRow, RunEvent, SyncDiff
from groupwarden.tui.busy import Busy
from groupwarden.tui.common import export_pane, show_help
from groupwarden.tui.dialogs import ConfirmDialog
from groupwarden.tui.listpane import Column, ListPane
from groupwarden.tui.messages import ChangeApplied, ChangeRefused, apply_change
from groupwarden.tui.text import ago, plain, stamp

TABS = ("runs", "changes", "orphans", "admins", "drift")
NAMES_SHOWN = 8
NO_WINDMILL = (
    "no Windmill instance linked: link one with `groupwarden windmill pull --url URL --token-env VAR`"
    " from a shell, then press r here"
)


@dataclass(frozen=True, slots=True)
class DriftLine:
    """One finding of a drift report, as a row of the drift tab (and of its export)."""

    instance: str
    kind: str
    subject: str
    where: str
    detail: str


def _emails(label: str, emails: list[str]) -> str:
    more = f" and {len(emails) - NAMES_SHOWN:,} more" if len(emails) > NAMES_SHOWN else ""
    return f"{label} ({len(emails)}): {', '.join(emails[:NAMES_SHOWN])}{more}"


def drift_lines(reports: list[tuple[str, DriftReport]]) -> list[DriftLine]:
    """Every finding of every instance, in the report's order; an instance with none says so."""
    lines: list[DriftLine] = []
    for instance, report in reports:
        found: list[DriftLine] = []
        for entry in report.dangling:
            found.append(
                DriftLine(
                    instance,
                    "dangling",
                    entry.principal,
                    entry.target,
                    f"{entry.role} on this {entry.kind}; no group has this name now"
                    " (a new group of that name would inherit it)",
                )
            )
        for moved in report.membership_drift:
            sides = (("missing in Windmill", moved.missing), ("extra in Windmill", moved.extra))
            parts = [_emails(label, emails) for label, emails in sides if emails]
            found.append(
                DriftLine(
                    instance,
                    "membership",
                    f"g/{moved.group}",
                    f"IdP g/{moved.idp_group} ({moved.idp_source})",
                    "; ".join(parts),
                )
            )
        for group in report.unmatched:
            side = "Windmill only" if group.side == "windmill" else "IdP only"
            also = f"; candidates: {', '.join(group.candidates)}" if group.candidates else ""
            found.append(DriftLine(instance, "unmatched", f"g/{group.group}", side, group.detail + also))
        for entry in report.unknown_users:
            workspace = entry.target.split("/", 1)[0]
            found.append(
                DriftLine(
                    instance,
                    "unknown user",
                    entry.principal,
                    entry.target,
                    f"{entry.role} on this {entry.kind}; not a user of workspace {workspace}",
                )
            )
        for auto in report.auto_add:
            users = [m for m in auto.members if m.username is not None]
            other = [f"{m.email} ({m.current_role} now)" for m in users if m.current_role != m.role]
            detail = (
                f"joins as {auto.role}: {len(auto.members)} members, {len(users)} of them users already"
                if auto.group_exists
                else f"joins as {auto.role}, but Windmill has no such instance group"
            )
            if other:
                detail += f"; {', '.join(other[:NAMES_SHOWN])}"
            found.append(DriftLine(instance, "auto-add", f"g/{auto.group}", auto.workspace, detail))
        lines.extend(found or [DriftLine(instance, "none", "", "", "no drift found")])
    return lines


def is_pull(diff: dict[str, Any]) -> bool:
    """A Windmill pull's run (its diff is a WindmillDiff's), not an IdP sync's."""
    return "workspaces_linked" in diff


def _count(diff: dict[str, Any], key: str) -> int:
    # A long list is stored cut; 'truncated' keeps its full length.
    full: int = diff.get("truncated", {}).get(key, len(diff.get(key) or ()))
    return full


def pull_summary(diff: dict[str, Any]) -> str:
    def n(key: str) -> int:
        return _count(diff, key)

    if not any(n(key) for key in diff if key != "truncated"):
        return "no changes"
    return (
        f"workspaces: {n('workspaces_linked')} linked, {n('workspaces_unlinked')} unlinked;"
        f" folders: {n('folders_added')} added, {n('folders_removed')} removed;"
        f" ACL entries: {n('acl_added')} added, {n('acl_changed')} changed, {n('acl_removed')} removed;"
        f" groups: {n('groups_added')} added, {n('groups_removed')} removed;"
        f" users: {n('users_added')} added, {n('users_removed')} removed"
    )


def run_summary(run: RunEvent) -> str:
    if run.error:
        return run.error
    if is_pull(run.diff):
        return pull_summary(run.diff)
    return SyncDiff.from_dict(run.diff).summary()


def diff_text(run: RunEvent | None) -> Text:
    if run is None:
        return Text("select a run to see its diff", style="dim")
    out = Text()
    out.append(f"run {run.id} of {run.source}: {run.outcome}\n", style="bold")
    if run.error:
        out.append_text(plain(run.error))
        return out

    def names(label: str, items: list[str], total: int | None = None) -> None:
        if items:
            total = len(items) if total is None else total
            more = f" and {total - NAMES_SHOWN:,} more" if total > NAMES_SHOWN else ""
            out.append(f"\n{label}: ", style="bold")
            out.append_text(plain(", ".join(items[:NAMES_SHOWN]) + more))

    if is_pull(run.diff):
        pulled = run.diff
        out.append_text(plain(pull_summary(pulled)))
        for key in ("workspaces_linked", "workspaces_unlinked", "folders_added", "folders_removed"):
            names(key.replace("_", " "), [str(v) for v in pulled.get(key) or ()], _count(pulled, key))
        for key in ("acl_added", "acl_changed", "acl_removed"):
            changes = [
                f"{c['principal']} on {c['target']} {c['before'] or 'none'} -> {c['after'] or 'none'}"
                for c in pulled.get(key) or ()
            ]
            names(key.replace("_", " ").replace("acl", "ACL"), changes, _count(pulled, key))
        for key in ("groups_added", "groups_removed", "users_added", "users_removed"):
            names(key.replace("_", " "), [str(v) for v in pulled.get(key) or ()], _count(pulled, key))
        return out
    diff = SyncDiff.from_dict(run.diff)
    out.append_text(plain(diff.summary()))

    names("groups added", diff.groups_added)
    names("groups renamed", [f"{a} -> {b}" for a, b in diff.groups_renamed])
    names("groups removed", diff.groups_removed)
    names("users added", diff.users_added)
    names("users removed", diff.users_removed)
    names("members added", [f"{g} +{len(us)}" for g, us in sorted(diff.members_added.items())])
    names("members removed", [f"{g} -{len(us)}" for g, us in sorted(diff.members_removed.items())])
    names("grants orphaned", diff.orphaned_grants)
    return out


def drift_text(line: DriftLine | None) -> Text:
    """The whole finding of the highlighted row: the table cuts its cells."""
    if line is None:
        return Text("select a finding to read it whole", style="dim")
    out = Text()
    out.append_text(plain(f"{line.kind}: {line.subject or line.instance}", style="bold"))
    if line.where:
        out.append_text(plain(f" ({line.where})"))
    out.append("\n")
    out.append_text(plain(line.detail))
    out.append("\n")
    out.append_text(plain(f"Windmill instance {line.instance}", style="dim"))
    return out


def _drift_style(line: DriftLine) -> str:
    return {"none": "green", "auto-add": ""}.get(line.kind, "yellow")


class AuditScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("1", "tab('runs')", "Sync runs", show=False),
        Binding("2", "tab('changes')", "Role changes", show=False),
        Binding("3", "tab('orphans')", "Orphaned grants", show=False),
        Binding("4", "tab('admins')", "Admins", show=False),
        Binding("5", "tab('drift')", "Windmill drift", show=False),
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
            with TabPane("5 Windmill drift", id="drift"):
                yield ListPane(
                    "What linked Windmill instances get wrong (from their last pull)",
                    [
                        Column("kind", 12, lambda d: d.kind, style=_drift_style),
                        Column("principal", 22, lambda d: d.subject),
                        Column("where", 22, lambda d: d.where),
                        Column("detail", 70, lambda d: d.detail),
                        Column("instance", 20, lambda d: d.instance),
                    ],
                    empty=NO_WINDMILL,
                    id="drift-list",
                    classes="audit-list",
                )
                yield Static(drift_text(None), id="drift-detail")
        yield Busy(id="busy")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.list("runs").focus_table()

    def list(self, tab: str) -> ListPane:
        return self.query_one(f"#{tab}-list", ListPane)

    def action_reload(self) -> None:
        ctx = self.ctx
        self.list("runs").load(partial(backend.sync_runs, ctx), keep_cursor=True)
        self.list("changes").load(partial(backend.role_changes, ctx), keep_cursor=True)
        self.list("orphans").load(partial(backend.orphaned_grants, ctx), keep_cursor=True)
        self.list("admins").load(partial(backend.admins, ctx), keep_cursor=True)
        self.list("drift").load(lambda: drift_lines(backend.windmill_drift(ctx)), keep_cursor=True)

    @property
    def tab(self) -> str:
        return self.query_one(TabbedContent).active or "runs"

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.call_after_refresh(self.list(tab).focus_table)

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self.list(self.tab).focus_table)

    @on(ListPane.Chosen, "#drift-list")
    @on(ListPane.Loaded, "#drift-list")
    def _drift_chosen(self) -> None:
        line = self.list("drift").current()
        shown = line if isinstance(line, DriftLine) else None
        self.query_one("#drift-detail", Static).update(drift_text(shown))

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

    def clean_up(self, grant: GrantRow) -> None:
        if self.query_one(Busy).active:
            self.notify("a clean-up is still being applied; wait for its answer", markup=False)
            return
        body = plain(
            f"Delete the orphaned grant {grant.principal} {grant.role} on {grant.target}?"
            " It grants nothing now; deleting it is recorded in the audit log."
        )

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self.query_one(Busy).start(f"applying: delete {grant.principal} {grant.role} on {grant.target}…")
            ctx = self.ctx
            # An orphan grants nothing, so removing the last admin entry of a folder is no loss.
            apply_change(self, lambda: backend.revoke(ctx, grant, confirm_last_admin=True))

        self.app.push_screen(ConfirmDialog("Clean up an orphaned grant", body, "Delete"), answered)

    @on(ChangeApplied)
    def _cleaned_up(self, message: ChangeApplied) -> None:
        message.stop()
        self.query_one(Busy).stop()
        self.notify(message.applied.text(), markup=False)
        self.action_reload()

    @on(ChangeRefused)
    def _refused(self, message: ChangeRefused) -> None:
        message.stop()
        self.query_one(Busy).stop()
        self.notify(message.reason, severity="error", markup=False, timeout=10)

    def action_help(self) -> None:
        show_help(self, "audit screen")
