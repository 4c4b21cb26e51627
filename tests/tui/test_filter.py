"""The / filter: keys typed in a burst, while the rows are still being read, give the last key's rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_helpers import app_for, main, reads_held, settle

from groupwarden.services.context import Context
from groupwarden.tui.listpane import ListPane
from groupwarden.tui.text import plain

# Starts whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

# The fixture's live groups, as the groups pane sorts them.
ENG = ["eng", "eng-oncall"]


def cells(names: list[str]) -> list[str]:
    """Group names as the groups pane's first column shows them (none of them has a look-alike)."""
    return [plain(name, 28).plain for name in names]


def shown(pane: ListPane) -> list[str]:
    """The first cell of every table row: what the pane shows, not what it holds."""
    return [pane.table.get_row_at(i)[0].plain for i in range(pane.table.row_count)]


async def test_keys_typed_while_the_rest_of_the_rows_loads_filter_them_all(
    tui_ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first page of three groups: / reads the rest while the keys are typed.
    monkeypatch.setattr(ListPane, "PAGE", 3)
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        groups = main(pilot.app).groups
        assert len(groups.rows) == 3 and not groups.complete
        first = [g.name for g in groups.rows]
        with reads_held(tui_ctx) as gate:
            await pilot.press("slash", *"engx", "backspace")
            await pilot.pause()
            # The rest is still being read: the keys so far filtered the first page.
            assert not groups.complete and groups.needle == "eng"
            assert [g.name for g in groups.visible_rows()] == [n for n in first if "eng" in n]
            gate.set()
            await settle(pilot)
        assert groups.complete and len(groups.rows) > 3
        assert [g.name for g in groups.visible_rows()][:2] == ENG
        assert all("eng" in f"{g.name} {g.source}".lower() for g in groups.visible_rows())
        assert shown(groups)[:2] == ENG and len(shown(groups)) == len(groups.visible_rows())
        # Escape gives back every row, a page of them in the table.
        await pilot.press("escape")
        await settle(pilot)
        assert groups.visible_rows() == groups.rows and groups.table.row_count == 3


async def test_a_burst_of_keys_ends_on_the_last_filter(tui_ctx: Context, tmp_path: Path) -> None:
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        groups = main(pilot.app).groups
        everything = [g.name for g in groups.rows]
        # Narrowing to nothing, then widening again: the rows of "eng", not those of "engx".
        await pilot.press("slash", *"engx", "backspace", "backspace", "backspace", *"ng")
        await settle(pilot)
        assert groups.needle == "eng"
        assert shown(groups) == cells([n for n in everything if "eng" in n])
        assert shown(groups)[:2] == ENG
        # Every key at once, none waited for: the same rows as typed one by one.
        await pilot.press("escape", "slash", *"ops")
        await settle(pilot)
        assert shown(groups) == cells([n for n in everything if "ops" in n])
        assert groups.table.row_count == len(groups.visible_rows())
