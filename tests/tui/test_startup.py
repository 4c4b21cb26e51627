"""Starting up: the groups first, the rest of the screen once they are painted, no key lost meanwhile."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Footer
from tui_helpers import app_for, main, reads_held, settle

from groupwarden.cli.commands.app import tui_app
from groupwarden.cli.main import build_parser
from groupwarden.domain.errors import BadInput
from groupwarden.services.context import Context
from groupwarden.tui.dialogs import GrantDialog
from groupwarden.tui.listpane import ListPane
from groupwarden.tui.main_screen import MainScreen

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow


def panes_of(screen: MainScreen) -> list[str]:
    return [pane.id or "" for pane in screen.query(ListPane)]


async def test_pane_keys_pressed_before_the_panes_exist_run_once_they_do(
    tui_ctx: Context, tmp_path: Path
) -> None:
    with reads_held(tui_ctx) as gate:
        async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
            screen = main(pilot.app)
            await pilot.press("2", "3", "tab", "shift+tab", "3")
            # Nothing but the groups pane yet: the keys wait, none is lost, nothing failed.
            assert not screen.ready and panes_of(screen) == ["groups"]
            assert screen.active == "groups" and len(screen.held) == 5
            gate.set()
            await settle(pilot)
            assert screen.ready and not screen.held
            assert panes_of(screen) == ["groups", "members", "folders", "acl"]
            assert len(screen.query(Footer)) == 1
            # 2, 3, tab (acl), shift+tab (folders), 3: the folders pane, focused, as if typed later.
            assert screen.active == "folders"
            assert screen.focused is screen.folders.table
            assert screen.folders.rows and screen.groups.rows


async def test_a_grant_key_pressed_at_once_opens_the_dialog_when_the_screen_is_ready(
    tui_ctx: Context, tmp_path: Path
) -> None:
    with reads_held(tui_ctx) as gate:
        async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
            screen = main(pilot.app)
            await pilot.press("g")
            assert pilot.app.screen is screen and len(screen.held) == 1
            gate.set()
            await settle(pilot)
            assert isinstance(pilot.app.screen, GrantDialog)


@pytest.mark.parametrize("when", ["before the first rows", "as they are painted"])
async def test_quitting_at_once_quits_cleanly(tui_ctx: Context, tmp_path: Path, when: str) -> None:
    app = app_for(tui_ctx, tmp_path)
    seen: dict[str, Any] = {}

    def quit_when_started() -> None:
        # The first frame after the groups' rows arrived: the rest of the screen is still to come.
        screen = app.screen
        if isinstance(screen, MainScreen) and screen.started and "quit" not in seen:
            seen["quit"] = (screen.ready, panes_of(screen))
            app.exit()

    if when == "as they are painted":
        app.post_display_hook = quit_when_started  # type: ignore[method-assign]
    # run_test raises any exception the app met, on the way out too.
    with reads_held(tui_ctx) as gate:
        if when == "as they are painted":
            gate.set()
        async with app.run_test(size=(100, 30)) as pilot:
            if when == "before the first rows":
                screen = main(app)
                await pilot.press("2", "q")
                assert screen.held and not screen.ready
            else:
                while "quit" not in seen:
                    await pilot.pause(0.01)
    assert app.return_code == 0
    if when == "as they are painted":
        assert seen["quit"] == (False, ["groups"])


def test_the_way_to_the_first_rows_imports_no_client_and_no_settings_model(
    filled_db: Path, tmp_path: Path
) -> None:
    """The command line and the UI import what the first group rows need, not Windmill's client,
    httpx, pydantic(-settings) or the ORM models: each is a tenth of a second or more."""
    code = (
        "import sys\n"
        "from groupwarden.cli.common import context_of, settings_of\n"
        "from groupwarden.cli.main import build_parser\n"
        "from groupwarden.tui.app import make_app\n"
        "from groupwarden.tui.main_screen import MainScreen\n"
        f"args = build_parser().parse_args(['--db', {str(filled_db)!r}, '--read-only'])\n"
        "settings = settings_of(args)\n"
        "context_of(args, settings)\n"
        "heavy = ('httpx', 'pydantic', 'pydantic_settings', 'sqlalchemy.orm', 'groupwarden.services.grants',"
        " 'groupwarden.services.windmill', 'groupwarden.sources', 'groupwarden.tui.dialogs')\n"
        "print(' '.join(name for name in heavy if name in sys.modules) or 'none')\n"
    )
    config = tmp_path / "gw.toml"
    config.write_text("", encoding="utf-8")
    env = {"GROUPWARDEN_CONFIG": str(config), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["none"]


async def test_the_command_line_starts_the_ui_with_garbage_collection_off_until_the_first_rows(
    filled_db: Path, tmp_path: Path
) -> None:
    config = tmp_path / "gw.toml"
    config.write_text("", encoding="utf-8")
    args = build_parser().parse_args(["--config", str(config), "--db", str(filled_db), "--read-only"])
    try:
        app = tui_app(args)
        assert not gc.isenabled()
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert main(app).ready and main(app).groups.rows
            assert gc.isenabled()
        app.ctx.close()
    finally:
        gc.enable()


def test_a_start_that_fails_leaves_garbage_collection_on(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--config", str(tmp_path / "missing.toml")])
    with pytest.raises(BadInput):
        tui_app(args)
    assert gc.isenabled()
