"""Dialogs: grant or change a role with its impact, confirmations, export, the key list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from groupwarden.domain.errors import GroupwardenError
from groupwarden.domain.roles import Role
from groupwarden.domain.text import printable
from groupwarden.tui import backend
from groupwarden.tui.backend import Applied, Context, Principal, TargetRef, WindmillPrincipal
from groupwarden.tui.busy import Busy
from groupwarden.tui.messages import ChangeApplied, ChangeRefused, apply_change
from groupwarden.tui.text import one_line, plain

if TYPE_CHECKING:
    from groupwarden.tui.backend import Impact

ROLES = (Role.VIEWER, Role.WRITER, Role.ADMIN)
NAMES_SHOWN = 5


def fuzzy(query: str, text: str) -> bool:
    """Every character of query appears in text, in order (case-insensitive)."""
    pos = 0
    text = text.lower()
    for ch in query.lower():
        pos = text.find(ch, pos) + 1
        if pos == 0:
            return False
    return True


def impact_text(impact: Impact) -> Text:
    out = Text()
    out.append_text(plain(impact.summary()))
    for label, moved in (("gain", impact.gained), ("lose", impact.lost)):
        if not moved:
            continue
        names = ", ".join(
            f"{user} ({before or 'none'} → {after or 'none'})" for user, before, after in moved[:NAMES_SHOWN]
        )
        more = f", and {len(moved) - NAMES_SHOWN:,} more" if len(moved) > NAMES_SHOWN else ""
        out.append(f"\n  {label}: ")
        out.append_text(plain(names + more))
    return out


class GrantDialog(ModalScreen[Applied | None]):
    """Pick a principal, a folder and a role; see who gains or loses; then apply."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "apply", "Apply"),
        Binding("down", "to_suggestions", "Suggestions", show=False),
    ]

    def __init__(
        self,
        ctx: Context,
        principal: str | None,
        target: str | None,
        role: Role | None,
        folders: list[str],
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.start = (principal or "", target or "", role or Role.WRITER)
        self.folders = folders
        self.impact: Impact | None = None
        self.impact_for: tuple[str, str, Role] | None = None
        # The principal and target the preview resolved; apply changes exactly those.
        self.impact_refs: tuple[Principal | WindmillPrincipal, TargetRef] | None = None
        self.confirm_last_admin = False
        # A change was sent and its answer has not come back yet.
        self.applying = False
        self.suggest_for = "principal"
        self._principal_values: list[str] = []
        # An Input shows its value raw, control characters included, so a field holds the
        # printable form of an untrusted name and this maps it back to the real one.
        self.aliases: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        principal, target, role = self.start
        with Vertical(id="dialog", classes="dialog"):
            yield Static("Grant or change a role", classes="dialog-title")
            if self.ctx.read_only:
                yield Static("read-only session: any change will be refused", classes="warning")
            with Horizontal(classes="field"):
                yield Label("principal")
                yield Input(
                    self.shown(principal),
                    placeholder="g/group or u/user; type to search",
                    id="principal",
                    compact=True,
                )
            with Horizontal(classes="field"):
                yield Label("folder")
                yield Input(target, placeholder="workspace/folder; type to search", id="target", compact=True)
            yield OptionList(id="suggestions")
            with RadioSet(id="role"):
                for r in ROLES:
                    yield RadioButton(r.label, value=r is role)
            yield Static("", id="impact")
            yield Static("", id="error")
            yield Busy(id="applying")
            with Horizontal(classes="buttons"):
                yield Button("Apply  ctrl+s", variant="primary", id="apply", compact=True)
                yield Button("Cancel  esc", id="cancel", compact=True)

    def on_mount(self) -> None:
        principal, target, _role = self.start
        if not principal:
            self.query_one("#principal", Input).focus()
        elif not target:
            self.query_one("#target", Input).focus()
        else:
            self.query_one(RadioSet).focus()
        self.preview()

    def shown(self, value: str) -> str:
        safe = printable(value)
        if safe != value:
            self.aliases[safe] = value
        return safe

    def fields(self) -> tuple[str, str, Role]:
        index = self.query_one(RadioSet).pressed_index
        role = ROLES[index] if index >= 0 else Role.WRITER
        principal = self.query_one("#principal", Input).value.strip()
        return (
            self.aliases.get(principal, principal),
            self.query_one("#target", Input).value.strip(),
            role,
        )

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        self.confirm_last_admin = False
        # A prefilled field also reports a change when it mounts; only typing asks for suggestions.
        if event.input.has_focus:
            self.suggest_for = event.input.id or "principal"
            self.suggest(event.value)
        self.preview()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.focus_next()

    @on(RadioSet.Changed)
    def _role_changed(self) -> None:
        self.confirm_last_admin = False
        self.preview()

    def suggest(self, query: str) -> None:
        options = self.query_one(OptionList)
        if self.suggest_for == "target":
            found = [t for t in self.folders if fuzzy(query, t)][:20]
            options.clear_options()
            options.add_options(Option(plain(t), id=t) for t in found)
        else:
            self.search_principals(query)

    @work(thread=True, exclusive=True, group="suggest")
    def search_principals(self, query: str) -> None:
        worker = get_current_worker()
        text = query.split("/", 1)[1] if query[:2] in ("g/", "u/") else query
        kind = query[:2] if query[:2] in ("g/", "u/") else ""
        try:
            found = backend.search_principals(self.ctx, text, 20) if text.strip() else []
        except GroupwardenError:
            found = []
        found = [m for m in found if m.principal.startswith(kind)]
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show_principals, [(m.principal, m.detail) for m in found])

    def _show_principals(self, found: list[tuple[str, str]]) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        for principal, detail in found:
            options.add_option(
                Option(Text.assemble(plain(principal, 40), "  ", plain(detail, 40, "dim"), no_wrap=True))
            )
        self._principal_values = [p for p, _d in found]

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if self.suggest_for == "target":
            value = event.option.id or ""
        else:
            value = self._principal_values[event.option_index]
        field = self.query_one(f"#{self.suggest_for}", Input)
        with self.prevent(Input.Changed):
            field.value = self.shown(value)
        self.query_one(OptionList).clear_options()
        self.preview()
        if self.suggest_for == "principal" and not self.query_one("#target", Input).value:
            self.query_one("#target", Input).focus()
        else:
            self.query_one(RadioSet).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "to_suggestions":
            return isinstance(self.focused, Input) and self.query_one(OptionList).option_count > 0
        return True

    def action_to_suggestions(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        options.highlighted = 0

    def preview(self) -> None:
        self.impact = None
        principal, target, role = self.fields()
        if not principal or not target:
            self.query_one("#impact", Static).update(plain("pick a principal and a folder to see the impact"))
            return
        self.query_one("#impact", Static).update(plain("computing the impact…"))
        self.compute_impact(principal, target, role)

    @work(thread=True, exclusive=True, group="impact")
    def compute_impact(self, principal: str, target: str, role: Role) -> None:
        worker = get_current_worker()
        refs: tuple[Principal | WindmillPrincipal, TargetRef] | None = None
        try:
            refs = backend.resolve_change(self.ctx, principal, target)
            impact: Impact | str = backend.preview_change(self.ctx, *refs, role)
        except GroupwardenError as exc:
            impact = str(exc)
        except Exception as exc:
            # Any other failure (a lost connection) is one line in the panel, not a crash.
            impact = f"impact unknown: {one_line(exc)}"
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show_impact, (principal, target, role), impact, refs)

    def _show_impact(
        self,
        asked: tuple[str, str, Role],
        impact: Impact | str,
        refs: tuple[Principal | WindmillPrincipal, TargetRef] | None,
    ) -> None:
        if asked != self.fields():
            return
        panel = self.query_one("#impact", Static)
        if isinstance(impact, str) or refs is None:
            panel.update(plain(str(impact)))
            return
        self.impact, self.impact_for, self.impact_refs = impact, asked, refs
        panel.update(impact_text(impact))

    def action_cancel(self) -> None:
        if self.applying:
            # The change may already be written: the dialog stays until the answer says so.
            self.query_one("#error", Static).update(
                plain("still applying: this closes when the database answers")
            )
            return
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        asked = self.fields()
        error = self.query_one("#error", Static)
        if self.applying:
            return
        if self.impact is None or self.impact_for != asked:
            error.update(plain("wait for the impact preview (or fix what it reports), then apply"))
            return
        principal, target, role = asked
        assert self.impact_refs is not None  # set together with self.impact
        who, where = self.impact_refs
        ctx, expected, confirm = self.ctx, self.impact.before, self.confirm_last_admin
        self.applying = True
        error.update("")
        self.query_one(Busy).start(f"applying: {principal} {role} on {target}…")
        apply_change(
            self,
            lambda: backend.grant(ctx, who, where, role, expected=expected, confirm_last_admin=confirm),
        )

    @on(ChangeApplied)
    def _applied(self, message: ChangeApplied) -> None:
        message.stop()
        self.applying = False
        self.query_one(Busy).stop()
        self.dismiss(message.applied)

    @on(ChangeRefused)
    def _refused(self, message: ChangeRefused) -> None:
        message.stop()
        self.applying = False
        self.query_one(Busy).stop()
        error = self.query_one("#error", Static)
        if message.needs_confirmation:
            self.confirm_last_admin = True
            error.update(plain(f"{message.reason}. Press apply again to confirm."))
            self.query_one("#apply", Button).label = "Confirm: remove the last admin"
            return
        error.update(plain(message.reason))


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: Text, confirm: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self.title_text), classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(self.body)
            with Horizontal(classes="buttons"):
                yield Button(plain(f"{self.confirm}  y"), variant="error", id="yes", compact=True)
                yield Button("Cancel  n/esc", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ExportDialog(ModalScreen[str | None]):
    """Ask where to write; the suffix (.csv or .json) picks the format."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, default: str) -> None:
        super().__init__()
        self.what = what
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog export"):
            yield Static(plain(f"Export {self.what}"), classes="dialog-title")
            yield Static("file path; ends in .csv or .json (enter writes, esc cancels)")
            yield Input(self.default, id="path", compact=True)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, title: str, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _d in self.keys), default=4) + 2
        body = Text()
        for key, description in self.keys:
            body.append(key.ljust(width), style="bold")
            body.append(description + "\n")
        with Vertical(classes="dialog help"):
            yield Static(plain(f"Keys: {self.title_text}  (esc closes)"), classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(body)

    def action_close(self) -> None:
        self.dismiss(None)
