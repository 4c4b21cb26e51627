"""The groupwarden terminal UI: the app, its factory and the entry point the CLI calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme

from groupwarden.config import Settings, SourceConfig, save_setting
from groupwarden.tui.threads import DaemonThreads

if TYPE_CHECKING:
    from groupwarden.tui.backend import Context


class GroupwardenApp(App[None]):
    CSS_PATH = "groupwarden.tcss"
    TITLE = "groupwarden"
    # ctrl+c quits at once, as in any terminal program (Textual's default only says how to quit).
    BINDINGS = [Binding("ctrl+c", "quit", "Quit", show=False, priority=True)]

    def __init__(
        self,
        ctx: Context,
        settings: Settings,
        source: SourceConfig | None,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__()
        self.ctx = ctx
        self.settings = settings
        self.source = source
        self.clock = clock
        if settings.theme and settings.theme in self.available_themes:
            self.theme = settings.theme

    def on_load(self) -> None:
        # Before any worker starts: quitting must not wait for a thread stuck on the network.
        asyncio.get_running_loop().set_default_executor(DaemonThreads())

    def on_mount(self) -> None:
        from groupwarden.tui.main_screen import MainScreen

        self.push_screen(MainScreen(self.ctx, self.settings, self.source, self.clock))
        self.theme_changed_signal.subscribe(self, self._remember_theme)

    def _remember_theme(self, theme: Theme) -> None:
        if self.settings.path is None or theme.name == self.settings.theme:
            return
        self.settings.theme = theme.name
        try:
            save_setting(self.settings.path, "theme", theme.name)
        except OSError as exc:
            self.notify(
                f"theme not remembered: cannot write {self.settings.path}: {exc.strerror}", markup=False
            )

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        # The screen's own actions, so ctrl+p finds everything a key does.
        for binding in screen.BINDINGS:
            if (
                not isinstance(binding, tuple)
                and binding.description
                and not binding.action.startswith("app.")
            ):
                action = binding.action
                key = self.get_key_display(binding)
                yield SystemCommand(
                    binding.description,
                    f"key {key}",
                    lambda action=action: self.call_later(screen.run_action, action),
                )


def make_app(
    ctx: Context,
    settings: Settings,
    source: SourceConfig | None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> GroupwardenApp:
    """Build the app; clock defaults to the context's, so every 'time since' follows it."""
    return GroupwardenApp(ctx, settings, source, clock or ctx.clock)


def run_tui(ctx: Context, settings: Settings, source: SourceConfig | None) -> None:
    make_app(ctx, settings, source).run()
