"""Whole flows driven through the real app, checked against the database afterwards."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets import Input, Static
from tui_fixtures import NOW
from tui_helpers import (
    answer,
    app_for,
    apply,
    ask_to_revoke,
    choose_grant,
    choose_group,
    choose_role,
    main,
    open_grant_dialog,
    roles_on,
    settle,
    type_folder,
)

from groupwarden.config import SourceConfig
from groupwarden.domain.roles import Role
from groupwarden.services import audit, directory, grants
from groupwarden.services.context import Context
from groupwarden.tui.audit_screen import AuditScreen
from groupwarden.tui.dialogs import ConfirmDialog, GrantDialog
from groupwarden.tui.lookup_screen import LookupScreen
from groupwarden.tui.main_screen import MainScreen, SyncBar
from support import grant

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow


async def test_grant_a_group_through_the_dialog(tui_ctx: Context, tmp_path: Path) -> None:
    before = roles_on(tui_ctx, "dev/sandbox")
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_group(pilot, "ops")
        dialog = await open_grant_dialog(pilot)
        assert dialog.query_one("#principal", Input).value == "g/ops"
        await type_folder(pilot, dialog, "dev/sandbox")
        impact = str(dialog.query_one("#impact", Static).render())
        assert "g/ops: none -> writer on dev/sandbox" in impact
        assert "1 user gain writer" in impact and "farid" in impact
        await apply(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
    after = roles_on(tui_ctx, "dev/sandbox")
    assert after == {**before, "g/ops": Role.WRITER}
    last = audit.role_changes(tui_ctx, limit=1)[0]
    assert (last.actor, last.principal, last.before, last.after) == ("alice", "g/ops", None, "writer")


async def test_change_a_role_from_the_acl(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_grant(pilot, "prod/finance", "g/eng")
        dialog = await open_grant_dialog(pilot)
        assert dialog.fields()[2] is Role.WRITER  # the role it has now
        await choose_role(pilot, dialog, Role.ADMIN)
        assert "g/eng: writer -> admin on prod/finance" in str(dialog.query_one("#impact", Static).render())
        await apply(pilot)
    assert roles_on(tui_ctx, "prod/finance")["g/eng"] is Role.ADMIN


async def test_revoke_asks_first_and_names_what_is_lost(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_grant(pilot, "prod/finance", "g/ops")
        dialog = await ask_to_revoke(pilot)
        assert "g/ops loses viewer on prod/finance" in dialog.body.plain
        assert "1 user lose access" in dialog.body.plain and "farid" in dialog.body.plain
        await answer(pilot, yes=True)
    assert "g/ops" not in roles_on(tui_ctx, "prod/finance")


async def test_cancel_changes_nothing(tui_ctx: Context, tmp_path: Path) -> None:
    before = roles_on(tui_ctx, "prod/finance")
    changes = len(audit.role_changes(tui_ctx))
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_grant(pilot, "prod/finance", "g/eng")
        await ask_to_revoke(pilot)
        await answer(pilot, yes=False)
        dialog = await open_grant_dialog(pilot)
        await choose_role(pilot, dialog, Role.VIEWER)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
    assert roles_on(tui_ctx, "prod/finance") == before
    assert len(audit.role_changes(tui_ctx)) == changes


async def test_last_admin_needs_a_second_confirmation(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_grant(pilot, "prod/finance", "u/ana")
        await ask_to_revoke(pilot)
        await answer(pilot, yes=True)
        second = pilot.app.screen
        assert isinstance(second, ConfirmDialog)
        assert "last admin of prod/finance" in second.body.plain
        await answer(pilot, yes=True)
    assert "u/ana" not in roles_on(tui_ctx, "prod/finance")


async def test_read_only_session_refuses_and_says_why(ro_ctx: Context, tmp_path: Path) -> None:
    before = roles_on(ro_ctx, "prod/finance")
    async with app_for(ro_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_grant(pilot, "prod/finance", "g/ops")
        dialog = await open_grant_dialog(pilot)
        await choose_role(pilot, dialog, Role.ADMIN)
        await apply(pilot)
        assert isinstance(pilot.app.screen, GrantDialog)
        assert "read-only" in str(dialog.query_one("#error", Static).render())
        await pilot.press("escape")
        await pilot.press("s")
        await settle(pilot)
    assert roles_on(ro_ctx, "prod/finance") == before


async def test_a_stale_view_is_refused(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_grant(pilot, "prod/finance", "g/ops")
        dialog = await open_grant_dialog(pilot)
        await choose_role(pilot, dialog, Role.ADMIN)
        # Another admin changes the same grant meanwhile.
        grant(tui_ctx, "g/ops", "prod/finance", "writer")
        await apply(pilot)
        assert "changed since you looked" in str(dialog.query_one("#error", Static).render())
    assert roles_on(tui_ctx, "prod/finance")["g/ops"] is Role.WRITER


async def test_filter_narrows_and_escape_clears(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        groups = main(pilot.app).groups
        assert len(groups.visible_rows()) == 7
        await pilot.press("slash", *"ENG")
        await settle(pilot)
        names = [g.name for g in groups.visible_rows()]
        assert names[:2] == ["eng", "eng-oncall"] and len(names) == 3
        assert groups.table.row_count == 3
        await pilot.press("enter", "j")
        await settle(pilot)
        assert main(pilot.app).members.group is not None
        await pilot.press("escape")
        await settle(pilot)
        assert len(groups.visible_rows()) == 7
        assert not groups.filtering


async def test_user_lookup_and_export(
    tui_ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(pilot.app.screen, LookupScreen)
        await pilot.press(*"chen", "enter")
        await settle(pilot)
        rows = pilot.app.screen.results.visible_rows()
        assert [(r.target, r.role) for r in rows] == [
            ("dev/sandbox", Role.ADMIN),
            ("prod/finance", Role.WRITER),
        ]
        assert "g/eng ⊃ g/eng-oncall" in rows[0].explanation
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
    exported = tmp_path / "groupwarden-access-chen.csv"
    # Owner-only, like every file the tool writes: it lists who reaches what.
    assert exported.stat().st_mode & 0o777 == 0o600
    written = exported.read_text(encoding="utf-8")
    assert written.splitlines()[0] == "target,role,why"
    assert "dev/sandbox,admin" in written


async def test_audit_screen_cleans_up_an_orphan(tui_ctx: Context, tmp_path: Path) -> None:
    assert [g.principal for g in grants.orphaned_grants(tui_ctx)] == ["g/legacy"]
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(pilot.app.screen, AuditScreen)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await answer(pilot, yes=True)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, MainScreen)
    assert grants.orphaned_grants(tui_ctx) == []


async def test_theme_is_remembered(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pilot.app.theme = "nord"
        await settle(pilot)
    assert 'theme = "nord"' in (tmp_path / "config.toml").read_text(encoding="utf-8")


async def test_sync_without_a_source_explains(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert any("no source to sync" in str(n.message) for n in pilot.app._notifications)


def scim_source(url: str, monkeypatch: pytest.MonkeyPatch, token: str) -> SourceConfig:
    monkeypatch.setenv("GW_TUI_TEST_TOKEN", token)
    return SourceConfig(name="corp", kind="scim", url=url, token_env="GW_TUI_TEST_TOKEN", page_size=2)


async def test_sync_from_a_real_scim_server_keeps_the_ui_responsive(
    empty_ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scim_server import Faults, start_scim_server

    # The second list request waits until the test lets it go: the sync is surely running.
    gate = threading.Event()

    def hold_second(request_number: int) -> None:
        if request_number == 2:
            gate.wait(30)

    faults = Faults(before_list=hold_second)
    with start_scim_server(faults=faults) as server:
        ids = [server.add_user(f"user{i}", display_name=f"User {i}") for i in range(5)]
        server.add_group("eng", users=ids[:3])
        server.add_group("ops", users=ids[3:])
        source = scim_source(server.url, monkeypatch, server.token)
        async with app_for(empty_ctx, tmp_path, source).run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            screen = main(pilot.app)
            assert screen.groups.rows == []
            await pilot.press("s")
            await pilot.pause()
            assert screen.syncing
            # The UI answers keys while the sync runs.
            await pilot.press("3")
            await pilot.pause()
            assert screen.active == "folders" and screen.syncing
            gate.set()
            await settle(pilot)
            assert not screen.syncing
            text = str(screen.query_one("#sync-text", Static).render())
            assert text.startswith("synced corp: ") and "2 added" in text
            assert [g.name for g in screen.groups.rows] == ["eng", "ops"]
    assert [(g.name, g.direct_members) for g in directory.list_groups(empty_ctx)] == [("eng", 3), ("ops", 2)]


async def test_a_failed_sync_shows_one_line_and_changes_nothing(
    tui_ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scim_server import start_scim_server

    before = directory.list_groups(tui_ctx)
    with start_scim_server() as server:
        source = scim_source(server.url, monkeypatch, "wrong-token")
        async with app_for(tui_ctx, tmp_path, source).run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await pilot.press("s")
            await settle(pilot)
            bar = pilot.app.screen.query_one(SyncBar)
            assert bar.has_class("failed")
            text = str(bar.query_one("#sync-text", Static).render())
            assert text.startswith("sync failed, nothing changed:") and "\n" not in text
    assert directory.list_groups(tui_ctx) == before
    assert audit.sync_runs(tui_ctx, limit=1)[0].outcome == "failed"
    assert NOW  # the fixed clock is what every "time since" used


async def test_a_name_with_an_escape_sequence_is_shown_printable_and_still_granted(
    tui_ctx: Context, tmp_path: Path
) -> None:
    from tui_fixtures import ESCAPE

    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await choose_group(pilot, ESCAPE)
        dialog = await open_grant_dialog(pilot)
        shown = dialog.query_one("#principal", Input).value
        assert "\x1b" not in shown and shown == "g/\\x1b[31mevil\\x1b[0m"
        dialog.query_one("#target", Input).value = "dev/empty"
        await settle(pilot)
        await apply(pilot)
    assert roles_on(tui_ctx, "dev/empty") == {f"g/{ESCAPE}": Role.WRITER}
