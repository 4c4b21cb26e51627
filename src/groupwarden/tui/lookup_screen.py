"""User lookup: every folder a user reaches, with the role and why."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from groupwarden.domain.errors import GroupwardenError
from groupwarden.domain.text import printable
from groupwarden.services import access, directory, resolve
from groupwarden.services.context import Context
from groupwarden.tui.common import export_pane, show_help
from groupwarden.tui.listpane import Column, ListPane
from groupwarden.tui.text import plain


class LookupScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("w", "export", "Export"),
        Binding("question_mark", "help", "Keys", key_display="?"),
    ]

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx
        self.user: str | None = None
        self.found: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="lookup-top"):
            yield Static("User lookup: type a userName or a display name, enter shows their access")
            yield Input(placeholder="user", id="who")
            yield OptionList(id="who-suggestions")
        yield ListPane(
            "Access",
            [
                Column("target", 22, lambda a: a.target),
                Column("role", 7, lambda a: a.role),
                Column("why", 70, lambda a: a.explanation),
            ],
            empty="type a user above",
            id="access-list",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#who", Input).focus()
        self.query_one(OptionList).display = False

    @property
    def results(self) -> ListPane:
        return self.query_one(ListPane)

    @on(Input.Changed, "#who")
    def _typed(self, event: Input.Changed) -> None:
        self.search(event.value)

    @work(thread=True, exclusive=True, group="search")
    def search(self, query: str) -> None:
        worker = get_current_worker()
        text = query.removeprefix("u/").strip()
        try:
            found = directory.search_principals(self.ctx, text, 40) if text else []
        except GroupwardenError:
            found = []
        users = [(m.principal[2:], m.detail) for m in found if m.principal.startswith("u/")][:8]
        if not worker.is_cancelled:
            self.app.call_from_thread(self._suggest, users)

    def _suggest(self, users: list[tuple[str, str]]) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        self.found = [name for name, _detail in users]
        for name, detail in users:
            options.add_option(
                Option(Text.assemble(plain(name, 40), "  ", plain(detail, 40, "dim"), no_wrap=True))
            )
        options.display = bool(users)

    def key_down(self) -> None:
        options = self.query_one(OptionList)
        if self.focused is self.query_one("#who", Input) and options.option_count:
            options.focus()
            options.highlighted = 0

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.show(self.found[event.option_index])

    @on(Input.Submitted, "#who")
    def _submitted(self, event: Input.Submitted) -> None:
        name = event.value.removeprefix("u/").strip()
        if self.found and name not in self.found:
            name = self.found[0]
        if name:
            self.show(name)

    def show(self, name: str) -> None:
        ctx = self.ctx
        with self.prevent(Input.Changed):
            # Shown printable: an Input would pass control characters to the terminal.
            self.query_one("#who", Input).value = printable(name)
        self.query_one(OptionList).display = False
        self.user = name
        self.results.border_title = Text.assemble("Access of ", plain(f"u/{name}", 40))
        self.results.load(
            lambda: access.access_of(ctx, resolve.user(ctx, name))[1], empty=f"u/{name} reaches no folder"
        )
        self.results.focus_table()

    def action_back(self) -> None:
        if self.focused is not self.query_one("#who", Input) and not self.results.filtering:
            self.query_one("#who", Input).focus()
            return
        self.app.pop_screen()

    def action_export(self) -> None:
        if self.user is None:
            self.notify("look a user up first", markup=False)
            return
        export_pane(self, self.results, f"access-{self.user}")

    def action_help(self) -> None:
        show_help(self, "user lookup")
