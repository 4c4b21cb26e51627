"""The group and member panes mark look-alike names, as the command line's tables do."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import app_for, choose_group, main, settle

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.services.context import Context
from support import sync_snapshot

pytestmark = pytest.mark.slow

CYRILLIC_ADMINS = "\u0430dmins"
MIXED_USER = "p\u0430ul"


async def test_lookalike_groups_and_mixed_script_members_are_marked(
    empty_ctx: Context, tmp_path: Path
) -> None:
    users = [SourceUser("u-alice", "alice", "Alice", []), SourceUser("u-paul", MIXED_USER, "Paul", [])]
    groups = [
        SourceGroup("g-admins", "admins", user_members=["u-alice", "u-paul"]),
        SourceGroup("g-cyr", CYRILLIC_ADMINS, user_members=["u-alice"]),
        SourceGroup("g-eng", "eng", user_members=["u-alice"]),
    ]
    sync_snapshot(empty_ctx, Snapshot(users=users, groups=groups))
    async with app_for(empty_ctx, tmp_path).run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        pane = main(pilot.app).groups
        names = {str(pane.table.get_row_at(i)[0]).rstrip() for i in range(pane.table.row_count)}
        assert f"{CYRILLIC_ADMINS} ⚠ looks like g/admins" in names
        assert f"admins ⚠ looks like g/{CYRILLIC_ADMINS}"[:28] in {n[:28] for n in names}
        assert "eng" in names
        screen = await choose_group(pilot, "admins")
        members = screen.members
        cells = {str(members.table.get_row_at(i)[0]).rstrip() for i in range(members.table.row_count)}
        assert "alice" in cells and any(c.startswith(f"{MIXED_USER} ⚠ mixed") for c in cells)
