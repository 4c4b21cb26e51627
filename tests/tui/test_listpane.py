"""The list pane's garbage-collector freeze is undone once no pane holds a long list."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from tui_helpers import app_for, main, settle

from groupwarden.services.context import Context
from groupwarden.tui import listpane
from groupwarden.tui.listpane import Frozen


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_freeze_lasts_while_some_pane_holds_a_long_list(unfrozen: None) -> None:
    frozen, first, second = Frozen(), object(), object()
    frozen.hold(first, True)
    assert gc.get_freeze_count() > 0
    frozen.hold(second, True)
    frozen.hold(first, False)
    assert gc.get_freeze_count() > 0
    frozen.release(second)
    assert gc.get_freeze_count() == 0
    # A pane that never held a long list releases nothing.
    frozen.hold(first, True)
    frozen.release(second)
    assert gc.get_freeze_count() > 0


async def test_the_rows_going_away_unfreeze(
    tui_ctx: Context, tmp_path: Path, unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixture's seven groups count as a long list here.
    monkeypatch.setattr(listpane, "FREEZE_ROWS", 5)
    async with app_for(tui_ctx, tmp_path).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert len(main(pilot.app).groups.rows) == 7
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
