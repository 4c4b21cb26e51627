"""A cell's text: shown literally, escaped and cut the same way whatever path plain() takes."""

from __future__ import annotations

import pytest

from groupwarden.domain.text import clip, printable
from groupwarden.tui.text import plain

VALUES = [
    "ada.andersen.10147@example.com",
    "billing-00017",
    "",
    "exactly-six",
    "[bold red]admins[/]",
    "\x1b[31mevil\x1b[0m",
    "tab\there",
    "del\x7f",
    "Jonas Weiß",
    "営業部 (Sales JP)",
    "аdmins",
    "\u202eevil",
    "x" * 2000,
    50_000,
    None,
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("width", [None, 1, 6, 11, 28])
def test_a_cell_is_the_escaped_text_cut_to_its_width(value: object, width: int | None) -> None:
    raw = "" if value is None else str(value)
    expected = clip(raw, width) if width else printable(raw)
    cell = plain(value, width, "bold")
    assert cell.plain == expected
    assert not cell.spans and str(cell.style) == "bold"
