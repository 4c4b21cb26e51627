"""Printing for the command line: plain tables, JSON, and untrusted text made safe."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from groupwarden.domain.text import cell_width, clip, printable, safe_json, shorten

# The widest a table cell gets: one huge name must not pad every other row to its width.
CELL_COLUMNS = 120


def emit_json(data: Any) -> None:
    sys.stdout.write(safe_json(data, default=str) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows under headers, columns padded by terminal width (CJK counts double); a cell
    wider than CELL_COLUMNS is cut, with an ellipsis."""
    cells = [[clip("" if v is None else str(v), CELL_COLUMNS) for v in row] for row in rows]
    widths = [cell_width(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], cell_width(value))
    out = sys.stdout

    def line(values: Sequence[str]) -> str:
        parts = [v + " " * (widths[i] - cell_width(v)) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    out.write(line(list(headers)) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def say(text: str) -> None:
    sys.stdout.write("\n".join(printable(shorten(line)) for line in text.split("\n")) + "\n")


def warn(text: str) -> None:
    sys.stderr.write("\n".join(printable(shorten(line)) for line in text.split("\n")) + "\n")
