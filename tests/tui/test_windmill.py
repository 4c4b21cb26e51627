"""The TUI and a linked Windmill instance: the drift tab, linked workspaces, writes that wait on it.

The instance is a stand-in served on 127.0.0.1 (tui_fixtures.windmill_standin), pulled for real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.coordinate import Coordinate
from textual.widgets import Input, Static
from tui_fixtures import ESCAPE, GONE
from tui_helpers import app_for, choose_role, main, open_folder, open_grant_dialog, settle

from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.services.layout import FolderRow
from groupwarden.tui import backend
from groupwarden.tui.audit_screen import NO_WINDMILL, AuditScreen, DriftLine, run_summary
from groupwarden.tui.backend import WorkspaceLine
from groupwarden.tui.dialogs import GrantDialog
from groupwarden.tui.listpane import ListPane

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

LINK = "corp-wm (stand-in)"


async def open_drift(pilot: Any) -> ListPane:
    await settle(pilot)
    await pilot.press("a")
    await settle(pilot)
    await pilot.press("5")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AuditScreen)
    return screen.list("drift")


def cell(pane: ListPane, row: int, column: int) -> str:
    return pane.table.get_cell_at(Coordinate(row, column)).plain


async def test_drift_tab_shows_each_finding_literally_and_exports_it(
    linked_ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with app_for(linked_ctx, tmp_path).run_test(size=(120, 36)) as pilot:
        pane = await open_drift(pilot)
        rows: list[DriftLine] = pane.visible_rows()
        assert [(r.kind, r.subject, r.where) for r in rows] == [
            ("dangling", f"g/{GONE}", "wm/deploys"),
            ("membership", "g/eng", "IdP g/eng (corp)"),
            ("unmatched", "g/night_shift", "Windmill only"),
            (
                "unmatched",
                "g/platform-reliability-engineering-emea-and-apac-primary-on-call-rotation-with-a-very-long-name",
                "IdP only",
            ),
            ("unmatched", "g/ops", "IdP only"),
            ("unknown user", f"u/{ESCAPE}", "wm/deploys"),
            ("auto-add", "g/eng", "wm"),
        ]
        assert {r.instance for r in rows} == {LINK}
        assert (
            rows[1].detail
            == "missing in Windmill (1): bo@example.org; extra in Windmill (1): zed@example.org"
        )
        assert rows[6].detail.startswith("joins as developer: 3 members, 2 of them users already")
        # Markup is shown as typed, escape sequences made visible, never interpreted.
        assert cell(pane, 0, 1) == f"g/{GONE}"
        assert "\x1b" not in cell(pane, 5, 1) and "evil" in cell(pane, 5, 1)
        # The highlighted finding, whole, below the table.
        detail = str(pilot.app.screen.query_one("#drift-detail", Static).render())
        assert f"dangling: g/{GONE} (wm/deploys)" in detail
        assert "Windmill instance corp-wm (stand-in)" in detail
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
    written = (tmp_path / "groupwarden-audit-drift.csv").read_text(encoding="utf-8")
    lines = written.splitlines()
    assert lines[0] == "kind,principal,where,detail,instance"
    assert len(lines) == 1 + len(rows)
    assert f"dangling,g/{GONE},wm/deploys," in written
    assert "\x1b" not in written


async def test_drift_tab_without_a_linked_instance_says_what_to_do(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        pane = await open_drift(pilot)
        assert pane.loaded and not pane.rows
        note = str(pane.query_one(".pane-note", Static).render())
        assert note == NO_WINDMILL
        assert "groupwarden windmill pull" in note and "press r" in note


async def test_a_linked_workspace_is_labelled_with_its_instance(linked_ctx: Context, tmp_path: Path) -> None:
    async with app_for(linked_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = main(pilot.app)
        spaces = [r for r in screen.folders.rows if isinstance(r, WorkspaceLine)]
        assert [(s.id, s.linked) for s in spaces] == [("dev", None), ("prod", None), ("wm", LINK)]
        index = screen.folders.visible_rows().index(spaces[2])
        # The column is narrow (a long label is cut there); the ACL pane's title has it whole.
        assert cell(screen.folders, index, 2) == "windmill corp-wm (stand…"
        # A local workspace's row says nothing of Windmill.
        assert cell(screen.folders, 0, 2) == ""
        await open_folder(pilot, "wm/deploys")
        assert f"wm/deploys, linked to windmill {LINK}" in str(screen.acl.border_title)
        await open_folder(pilot, "prod/finance")
        assert "windmill" not in str(screen.acl.border_title)


async def test_the_sync_runs_tab_summarises_a_pull(linked_ctx: Context, tmp_path: Path) -> None:
    async with app_for(linked_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, AuditScreen)
        newest = screen.list("runs").visible_rows()[0]
        assert newest.source == "windmill:corp-wm"
        assert run_summary(newest) == (
            "workspaces: 1 linked, 0 unlinked; folders: 2 added, 0 removed;"
            " ACL entries: 8 added, 0 changed, 0 removed; groups: 4 added, 0 removed;"
            " users: 5 added, 0 removed"
        )


async def start_grant(pilot: Any, target: str, principal: str) -> GrantDialog:
    await settle(pilot)
    await open_folder(pilot, target)
    dialog = await open_grant_dialog(pilot)
    dialog.query_one("#principal", Input).value = principal
    await settle(pilot)
    assert dialog.impact is not None, str(dialog.query_one("#impact", Static).render())
    return dialog


async def test_keys_answer_while_a_grant_waits_on_windmill(
    linked_ctx: Context, tmp_path: Path, standin: WindmillStandIn
) -> None:
    held = standin.hold("POST", "/api/w/wm/*")
    async with app_for(linked_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        dialog = await start_grant(pilot, "wm/reports", "u/farid")
        # The ACL pane lists Windmill's entries now: the dialog starts from the highlighted one's role.
        await choose_role(pilot, dialog, Role.WRITER)
        await pilot.press("ctrl+s")
        try:
            assert await asyncio.to_thread(held.arrived.wait, 10), "the grant never reached Windmill"
            # The write waits in its thread; the dialog still answers keys meanwhile.
            await pilot.press("escape")
            await pilot.pause()
            assert pilot.app.screen is dialog
            assert "still applying" in str(dialog.query_one("#error", Static).render())
        finally:
            held.release()
        await settle(pilot)
        main(pilot.app)
        said = [n.message for n in pilot.app._notifications]
        assert "u/farid: none -> writer on wm/reports (applied to windmill corp-wm)" in said
    assert standin.workspaces["wm"].folders["reports"]["extra_perms"]["u/farid"] is True


async def test_the_dialog_shows_windmills_refusal_on_one_line(
    linked_ctx: Context, tmp_path: Path, standin: WindmillStandIn
) -> None:
    standin.fail("POST", "/api/w/wm/*", status=401, text="You are not owner of the folder reports")
    async with app_for(linked_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        dialog = await start_grant(pilot, "wm/reports", "u/farid")
        # The ACL pane lists Windmill's entries now: the dialog starts from the highlighted one's role.
        await choose_role(pilot, dialog, Role.WRITER)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert pilot.app.screen is dialog
        error = str(dialog.query_one("#error", Static).render())
        assert "401" in error and "You are not owner of the folder reports" in error
        assert "\n" not in error.strip() and standin.superadmin_token not in error


def test_folder_rows_of_a_linked_workspace_are_its_windmill_folders(linked_ctx: Context) -> None:
    rows = backend.workspaces_and_folders(linked_ctx)
    assert [r.target for r in rows if isinstance(r, FolderRow) and r.workspace == "wm"] == [
        "wm/deploys",
        "wm/reports",
    ]
