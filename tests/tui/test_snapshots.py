"""Snapshots of every screen and dialog, at 80x24 and at 160x48, on fixed data and a fixed clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import RadioButton
from tui_helpers import app_for, choose, choose_grant, settle

from groupwarden.config import SourceConfig
from groupwarden.services.context import Context
from groupwarden.services.layout import FolderRow

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
Steps = Callable[[Pilot[None]], Awaitable[None]]


def steps(*keys: str, then: Steps | None = None) -> Steps:
    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if then is not None:
            await then(pilot)
            await settle(pilot)

    return run


def folder(target: str, *then_keys: str) -> Steps:
    async def run(pilot: Pilot[None]) -> None:
        screen: Any = pilot.app.screen
        await pilot.press("3")
        await choose(pilot, screen.folders, lambda r: isinstance(r, FolderRow) and r.target == target)
        for key in then_keys:
            await pilot.press(key)
            await settle(pilot)

    return run


def acl_row(target: str, principal: str, *then_keys: str) -> Steps:
    async def run(pilot: Pilot[None]) -> None:
        await choose_grant(pilot, target, principal)
        for key in then_keys:
            await pilot.press(key)
            await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=steps())


@pytest.mark.parametrize("size", SIZES)
def test_main_screen_empty_cache(
    snap_compare: Any, empty_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    assert snap_compare(app_for(empty_ctx, tmp_path), terminal_size=size, run_before=steps())


def test_main_screen_empty_cache_with_a_source(snap_compare: Any, empty_ctx: Context, tmp_path: Path) -> None:
    # Nothing synced yet, a source configured: every pane says what to do, none says "loading…".
    source = SourceConfig("corp", "scim", "http://127.0.0.1:9/v2", token_env="GW_TUI_MISSING_TOKEN")
    assert snap_compare(app_for(empty_ctx, tmp_path, source), terminal_size=(80, 24), run_before=steps())


def test_user_lookup_before_typing(snap_compare: Any, empty_ctx: Context, tmp_path: Path) -> None:
    assert snap_compare(app_for(empty_ctx, tmp_path), terminal_size=(80, 24), run_before=steps("u"))


@pytest.mark.parametrize("size", SIZES)
def test_main_screen_read_only(
    snap_compare: Any, ro_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    assert snap_compare(app_for(ro_ctx, tmp_path), terminal_size=size, run_before=steps())


@pytest.mark.parametrize("size", SIZES)
def test_folder_acl_with_markup_names(
    snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    assert snap_compare(
        app_for(tui_ctx, tmp_path), terminal_size=size, run_before=steps(then=folder("prod/hr"))
    )


@pytest.mark.parametrize("size", SIZES)
def test_folder_effective_users(
    snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    run = steps(then=folder("prod/finance", "e"))
    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_members_of_a_nested_group(
    snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    async def eng(pilot: Pilot[None]) -> None:
        screen: Any = pilot.app.screen
        await choose(pilot, screen.groups, lambda g: g.name == "eng")
        await pilot.press("enter")

    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=steps(then=eng))


@pytest.mark.parametrize("size", SIZES)
def test_filter(snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]) -> None:
    run = steps("slash", "e", "n", "g")
    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_grant_dialog_with_impact(
    snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    async def admin(pilot: Pilot[None]) -> None:
        await acl_row("prod/finance", "g/eng", "g")(pilot)
        pilot.app.screen.query(RadioButton)[2].value = True

    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=steps(then=admin))


@pytest.mark.parametrize("size", SIZES)
def test_grant_dialog_refused_read_only(
    snap_compare: Any, ro_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    run = steps(then=acl_row("prod/finance", "g/ops", "g", "ctrl+s"))
    assert snap_compare(app_for(ro_ctx, tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_revoke_confirmation(
    snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    run = steps(then=acl_row("prod/finance", "g/eng", "x"))
    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=steps("question_mark"))


@pytest.mark.parametrize("tab", ["1", "2", "3", "4"])
@pytest.mark.parametrize("size", SIZES)
def test_audit_screen(
    snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int], tab: str
) -> None:
    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=steps("a", tab))


@pytest.mark.parametrize("size", SIZES)
def test_user_lookup(snap_compare: Any, tui_ctx: Context, tmp_path: Path, size: tuple[int, int]) -> None:
    run = steps("u", "c", "h", "e", "n", "enter")
    assert snap_compare(app_for(tui_ctx, tmp_path), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_failed_sync(
    snap_compare: Any,
    tui_ctx: Context,
    tmp_path: Path,
    size: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A source whose token variable is unset fails before any request, with one fixed line.
    monkeypatch.delenv("GW_TUI_MISSING_TOKEN", raising=False)
    source = SourceConfig("corp", "scim", "http://127.0.0.1:9/v2", token_env="GW_TUI_MISSING_TOKEN")
    assert snap_compare(app_for(tui_ctx, tmp_path, source), terminal_size=size, run_before=steps("s"))


@pytest.mark.parametrize("size", SIZES)
def test_windmill_drift_tab(
    snap_compare: Any, linked_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    assert snap_compare(app_for(linked_ctx, tmp_path), terminal_size=size, run_before=steps("a", "5"))


@pytest.mark.parametrize("size", SIZES)
def test_linked_workspace_folder(
    snap_compare: Any, linked_ctx: Context, tmp_path: Path, size: tuple[int, int]
) -> None:
    run = steps(then=folder("wm/deploys"))
    assert snap_compare(app_for(linked_ctx, tmp_path), terminal_size=size, run_before=run)
