"""Printing for the command line: plain tables, JSON, and untrusted text made safe."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from groupwarden.domain.text import cell_width, clip, printable, safe_json, shorten

# The widest a table cell gets: one huge name must not pad every other row to its width.
CELL_COLUMNS = 120


@runtime_checkable
class Result(Protocol):
    """A service result the command line prints: its JSON form is its to_dict()."""

    def to_dict(self) -> dict[str, Any]: ...


def emit_json(result: Result | Iterable[Result]) -> None:
    """Print one result, or a list of them, as JSON: the one way every --json is printed."""
    data = result.to_dict() if isinstance(result, Result) else [r.to_dict() for r in result]
    sys.stdout.write(safe_json(data, default=str) + "\n")


def marked(name: str, lookalike: str | None) -> str:
    """A name as a table cell: with a warning when it reads like another name or mixes scripts."""
    return name if lookalike is None else f"{name} ⚠ {lookalike}"


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
