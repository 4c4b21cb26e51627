"""Driving the app in tests: wait for workers instead of sleeping."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from tui_fixtures import settings_for

from groupwarden.config import SourceConfig
from groupwarden.services.context import Context
from groupwarden.tui.app import GroupwardenApp, make_app
from groupwarden.tui.listpane import ListPane


def app_for(ctx: Context, tmp: Path, source: SourceConfig | None = None) -> GroupwardenApp:
    return make_app(ctx, settings_for(tmp), source)


async def settle(pilot: Pilot[None]) -> None:
    """Let every worker finish and its results reach the screen.

    Workers of the "flow" group wait on a dialog the test answers, so they are not waited for.
    """
    for _ in range(3):
        await pilot.pause()
        busy = [w for w in pilot.app.workers if w.group != "flow"]
        if busy:
            await pilot.app.workers.wait_for_complete(busy)
    await pilot.pause()


async def choose(pilot: Pilot[None], pane: ListPane, predicate: object) -> None:
    """Move the cursor of pane to the first row for which predicate(row) holds."""
    for index, row in enumerate(pane.visible_rows()):
        if predicate(row):  # type: ignore[operator]
            pane.focus_table()
            pane.table.move_cursor(row=index, animate=False)
            await settle(pilot)
            return
    raise AssertionError("no such row")
