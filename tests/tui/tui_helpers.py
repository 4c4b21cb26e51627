"""Driving the app in tests: wait for workers instead of sleeping, and the steps flows share."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from textual.pilot import Pilot
from textual.widgets import Input, RadioButton
from tui_fixtures import settings_for

from groupwarden.config import SourceConfig
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.services.grants import GrantRow
from groupwarden.services.layout import FolderRow
from groupwarden.tui.app import GroupwardenApp, make_app
from groupwarden.tui.dialogs import ROLES, ConfirmDialog, GrantDialog
from groupwarden.tui.listpane import ListPane
from groupwarden.tui.main_screen import MainScreen
from support import folder_grants


def app_for(ctx: Context, tmp: Path, source: SourceConfig | None = None) -> GroupwardenApp:
    return make_app(ctx, settings_for(tmp), source)


def roles_on(ctx: Context, target: str) -> dict[str, Role]:
    return {g.principal: g.role for g in folder_grants(ctx, target)}


def busy_timeout(ctx: Context, ms: int) -> None:
    """Make ctx's SQLite connections wait ms for a held lock (store/db.py sets 10 s).

    Pooled connections are dropped first, so every later one runs this after db.py's setup.
    """
    ctx.engine.dispose()

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA busy_timeout = {ms}")

    event.listen(ctx.engine, "connect", on_connect)


async def settle(pilot: Pilot[None]) -> None:
    """Let every worker finish and its results reach the screen."""
    for _ in range(3):
        await pilot.pause()
        busy = list(pilot.app.workers)
        if busy:
            await pilot.app.workers.wait_for_complete(busy)
    await pilot.pause()


async def choose(pilot: Pilot[None], pane: ListPane, predicate: Callable[[Any], bool]) -> None:
    """Move the cursor of pane to the first row for which predicate(row) holds."""
    for index, row in enumerate(pane.visible_rows()):
        if predicate(row):
            pane.focus_table()
            pane.table.move_cursor(row=index, animate=False)
            await settle(pilot)
            return
    raise AssertionError("no such row")


def main(app: Any) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    return screen


async def choose_group(pilot: Pilot[None], name: str) -> MainScreen:
    screen = main(pilot.app)
    await choose(pilot, screen.groups, lambda g: g.name == name)
    return screen


async def open_folder(pilot: Pilot[None], target: str) -> MainScreen:
    """Pick target in the folders pane (3), then show its ACL (4)."""
    screen = main(pilot.app)
    await pilot.press("3")
    await choose(pilot, screen.folders, lambda r: isinstance(r, FolderRow) and r.target == target)
    await pilot.press("4")
    await settle(pilot)
    return screen


async def choose_grant(pilot: Pilot[None], target: str, principal: str) -> MainScreen:
    """Open target's ACL and put the cursor on principal's grant."""
    screen = await open_folder(pilot, target)
    await choose(pilot, screen.acl, lambda g: isinstance(g, GrantRow) and g.principal == principal)
    return screen


async def open_grant_dialog(pilot: Pilot[None]) -> GrantDialog:
    await pilot.press("g")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, GrantDialog)
    return dialog


async def choose_role(pilot: Pilot[None], dialog: GrantDialog, role: Role) -> None:
    dialog.query(RadioButton)[ROLES.index(role)].value = True
    await settle(pilot)


async def type_folder(pilot: Pilot[None], dialog: GrantDialog, target: str) -> None:
    """Type target into the dialog's folder field, key by key, and wait for the impact."""
    dialog.query_one("#target", Input).focus()
    await pilot.press(*target)
    await settle(pilot)


async def apply(pilot: Pilot[None]) -> None:
    await pilot.press("ctrl+s")
    await settle(pilot)


async def ask_to_revoke(pilot: Pilot[None]) -> ConfirmDialog:
    """x on the selected grant: the confirmation, with its impact."""
    await pilot.press("x")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, ConfirmDialog)
    return dialog


async def answer(pilot: Pilot[None], yes: bool) -> None:
    await pilot.press("y" if yes else "n")
    await settle(pilot)


@contextmanager
def reads_held(ctx: Context) -> Iterator[threading.Event]:
    """Every statement waits (in its worker) until the event is set: no rows arrive, so the
    screen stays as it is, for as long as the test needs."""
    gate = threading.Event()

    def wait(*_args: object) -> None:
        gate.wait(30)

    # Left listening once the gate is open (it waits for nothing then): removing it while a
    # worker runs the listeners would change them under that worker.
    event.listen(ctx.engine, "before_cursor_execute", wait)
    try:
        yield gate
    finally:
        gate.set()
