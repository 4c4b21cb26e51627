"""The UI keeps answering while a write waits on another admin's lock, then says what happened."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event
from textual.widgets import Static
from tui_helpers import (
    answer,
    app_for,
    apply,
    ask_to_revoke,
    busy_timeout,
    choose_grant,
    choose_group,
    main,
    open_grant_dialog,
    roles_on,
    settle,
    type_folder,
)

from groupwarden.domain.roles import Role
from groupwarden.services import audit
from groupwarden.services.context import Context
from groupwarden.tui.busy import Busy
from groupwarden.tui.dialogs import GrantDialog
from groupwarden.tui.main_screen import MainScreen

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow


@contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Another admin's long transaction: the write lock taken, a row inserted, not committed."""
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO sources (name, kind, url) VALUES ('other-admin', 'scim', '')")
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def shown(widget: Static) -> str:
    return str(widget.render())


async def test_a_grant_waits_for_a_held_lock_while_keys_answer(
    tui_ctx: Context, filled_db: Path, tmp_path: Path
) -> None:
    # Long enough that the write is surely still waiting while the test presses its keys.
    busy_timeout(tui_ctx, 60_000)
    before = roles_on(tui_ctx, "dev/sandbox")
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_group(pilot, "ops")
        dialog = await open_grant_dialog(pilot)
        await type_folder(pilot, dialog, "dev/sandbox")
        with write_lock(filled_db) as other:
            await pilot.press("ctrl+s")
            await pilot.pause()
            spinner = dialog.query_one(Busy)
            assert dialog.applying and spinner.display
            assert "applying: g/ops writer on dev/sandbox" in shown(spinner)
            # Keys still answer while the write waits: focus moves, escape explains itself.
            focused = dialog.focused
            await pilot.press("tab")
            await pilot.pause()
            assert dialog.focused is not focused
            await pilot.press("escape")
            await pilot.pause()
            assert pilot.app.screen is dialog
            assert "still applying" in shown(dialog.query_one("#error", Static))
            assert roles_on(tui_ctx, "dev/sandbox") == before
            other.execute("ROLLBACK")
            await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
        assert not spinner.display
        messages = [str(n.message) for n in pilot.app._notifications]
        assert "g/ops: none -> writer on dev/sandbox" in messages
    assert roles_on(tui_ctx, "dev/sandbox") == {**before, "g/ops": Role.WRITER}


async def test_a_grant_refused_by_a_held_lock_says_so_and_changes_nothing(
    tui_ctx: Context, filled_db: Path, tmp_path: Path
) -> None:
    busy_timeout(tui_ctx, 200)
    before = roles_on(tui_ctx, "dev/sandbox")
    changes = len(audit.role_changes(tui_ctx))
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_group(pilot, "ops")
        dialog = await open_grant_dialog(pilot)
        await type_folder(pilot, dialog, "dev/sandbox")
        with write_lock(filled_db):
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert isinstance(pilot.app.screen, GrantDialog) and not dialog.applying
            assert not dialog.query_one(Busy).display
            error = shown(dialog.query_one("#error", Static))
            assert error.startswith("the database is busy") and "nothing was changed" in error
            assert "\n" not in error
    assert roles_on(tui_ctx, "dev/sandbox") == before
    assert len(audit.role_changes(tui_ctx)) == changes


async def test_a_revoke_waits_for_a_held_lock_while_the_panes_answer(
    tui_ctx: Context, filled_db: Path, tmp_path: Path
) -> None:
    busy_timeout(tui_ctx, 60_000)
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = await choose_grant(pilot, "prod/finance", "g/ops")
        await ask_to_revoke(pilot)
        with write_lock(filled_db) as other:
            await pilot.press("y")
            await pilot.pause()
            spinner = screen.query_one(Busy)
            assert spinner.display and "applying: revoke g/ops viewer on prod/finance" in shown(spinner)
            # The main screen answers: another pane, and the key list, open while the write waits.
            await pilot.press("1")
            await pilot.pause()
            assert screen.active == "groups"
            await pilot.press("question_mark")
            await pilot.pause()
            assert pilot.app.screen is not screen
            await pilot.press("escape")
            await pilot.pause()
            assert "g/ops" in roles_on(tui_ctx, "prod/finance")
            other.execute("ROLLBACK")
            await settle(pilot)
        assert not spinner.display
        messages = [str(n.message) for n in pilot.app._notifications]
        assert "g/ops: viewer -> none on prod/finance" in messages
    assert "g/ops" not in roles_on(tui_ctx, "prod/finance")


async def test_the_members_pane_of_an_empty_database_says_what_to_do(
    empty_ctx: Context, tmp_path: Path
) -> None:
    async with app_for(empty_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        note = main(pilot.app).members.query_one(".pane-note", Static)
        assert shown(note) == "no groups yet: add a source to the config file, then press s"
        await pilot.press("u")
        await settle(pilot)
        lookup_note = pilot.app.screen.query_one(".pane-note", Static)
        assert shown(lookup_note) == "type a userName or a display name above and press enter"


async def test_no_statement_runs_on_the_ui_thread(tui_ctx: Context, tmp_path: Path) -> None:
    """Every read and write of a whole tour (panes, who-can, grant, revoke, audit, lookup) runs
    in a worker thread: the thread that runs the app never executes a statement."""
    threads: list[int] = []

    def executing(*_args: object) -> None:
        threads.append(threading.get_ident())

    event.listen(tui_ctx.engine, "before_cursor_execute", executing)
    ui_thread = threading.get_ident()
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_group(pilot, "ops")
        dialog = await open_grant_dialog(pilot)
        await type_folder(pilot, dialog, "dev/sandbox")
        await apply(pilot)
        screen = await choose_grant(pilot, "prod/finance", "g/ops")
        await ask_to_revoke(pilot)
        await answer(pilot, yes=True)
        await pilot.press("3", "e")
        await settle(pilot)
        assert screen.acl.effective and screen.acl.rows
        for keys in (("a", "2", "4", "escape"), ("u", "c", "h", "e", "n", "enter", "escape", "escape")):
            for key in keys:
                await pilot.press(key)
                await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
    event.remove(tui_ctx.engine, "before_cursor_execute", executing)
    assert threads and ui_thread not in threads
    assert roles_on(tui_ctx, "dev/sandbox")["g/ops"] is Role.WRITER
    assert "g/ops" not in roles_on(tui_ctx, "prod/finance")
