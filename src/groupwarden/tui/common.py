"""Actions every screen shares: the key list and exporting a list."""

from __future__ import annotations

import re
from typing import Any

from textual.app import App
from textual.screen import Screen

from groupwarden.domain.errors import GroupwardenError
from groupwarden.tui import backend
from groupwarden.tui.dialogs import ExportDialog, HelpScreen
from groupwarden.tui.listpane import ListPane

MOVING = [
    ("↑ ↓  j k", "move in the focused list; enter opens the row"),
    ("pgup pgdn home end", "jump in the focused list"),
    ("mouse", "click a row or a pane; scroll with the wheel"),
    ("ctrl+p", "command palette: this screen's actions, theme"),
]


def screen_keys(screen: Screen[Any]) -> list[tuple[str, str]]:
    """The keys of this screen, its focused pane and the app, as shown by ?."""
    app: App[object] = screen.app
    # description -> its keys, in the order first seen; two keys that do one thing share a line.
    keys: dict[str, list[str]] = {}
    for active in screen.active_bindings.values():
        node, binding = active.node, active.binding
        if not isinstance(node, Screen | App | ListPane) or not binding.description:
            continue
        keys.setdefault(binding.description, []).append(app.get_key_display(binding))
    return [(" ".join(shown), description) for description, shown in keys.items()] + MOVING


def show_help(screen: Screen[Any], title: str) -> None:
    screen.app.push_screen(HelpScreen(title, screen_keys(screen)))


def export_pane(screen: Screen[Any], pane: ListPane, slug: str) -> None:
    # A pane may hold only its first page: an export writes every row, so it waits for them.
    pane.when_complete(lambda: _ask_and_export(screen, pane, slug))


def _ask_and_export(screen: Screen[Any], pane: ListPane, slug: str) -> None:
    records = pane.records()
    columns = [col.label for col in pane.columns]

    def write(path_text: str | None) -> None:
        if not path_text:
            return
        try:
            path = backend.save_records(path_text, records, columns)
        except GroupwardenError as exc:
            screen.notify(str(exc), severity="error", markup=False)
            return
        screen.notify(f"wrote {len(records):,} rows to {path}", markup=False, timeout=8)

    # The slug may hold a user name from the IdP: keep only characters safe in a file name.
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", slug)
    dialog = ExportDialog(f"{slug} ({len(records):,} rows)", f"groupwarden-{safe}.csv")
    screen.app.push_screen(dialog, write)
