"""Printing for the command line: plain tables, JSON, and untrusted text made safe."""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from itertools import islice, repeat
from operator import add
from typing import Any, Protocol, TypeVar, runtime_checkable

from groupwarden.domain.text import (
    cell_width,
    clip,
    json_text_is_safe,
    printable,
    safe_json,
    safe_json_text,
    shorten,
)

_json_string = json.encoder.encode_basestring

K = TypeVar("K", bound=Hashable)

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


# A list of tens of thousands of results that share a shape (a who-can answer) is printed from
# templates instead: emit_json's text of one sample result whose varying fields hold
# placeholders, cut there, and filled per result with that field's JSON. The text is
# emit_json's to the byte (tests compare the two); only the to_dict() of each result is not built.


def json_holes(count: int) -> list[str]:
    """Placeholders for the varying fields of a sample result: random, so no name can hold one."""
    token = secrets.token_hex(8)
    return [f"gw-hole-{token}-{i}" for i in range(count)]


def json_template(sample: Result, holes: Sequence[str]) -> list[str]:
    """emit_json's text of sample as an item of a list, cut at each hole (in the order of
    holes): the len(holes) + 1 parts between which emit_json_filled puts the fields' JSON."""
    body = safe_json([sample.to_dict()], default=str)[2:-2]
    found = re.compile("|".join(re.escape(json.dumps(h)) for h in holes))
    order = [holes.index(json.loads(m)) for m in found.findall(body)]
    if order != list(range(len(holes))):
        raise ValueError("each placeholder must appear once, in order, in the sample's JSON")
    return found.split(body)


def json_values(values: Iterable[str | None]) -> list[str]:
    """Each value's JSON text, as emit_json writes it (None is null), made safe as emit_json makes it."""
    if not isinstance(values, Sequence) or None in values:
        texts = ["null" if v is None else _json_string(v) for v in values]
    else:
        texts = list(map(_json_string, values))
    # Checked all at once: names that need an escape are rare.
    if not json_text_is_safe("".join(texts)):
        texts = list(map(safe_json_text, texts))
    return texts


def emit_json_filled(
    templates: Mapping[K, Sequence[str]], keys: Iterable[K], fields: Sequence[Sequence[str]]
) -> None:
    """Print a list whose item i is the json_template() templates[keys[i]] with fields[j][i]
    (a json_values() text) in its hole j, as emit_json prints the list: both are safe already."""
    parts = [{key: template[j] for key, template in templates.items()} for j in range(len(fields) + 1)]
    keys = list(keys)
    # A join of the pieces copies them; a %-format would scan each item's whole template.
    pieces: list[Iterable[str]] = []
    for part, field in zip(parts, fields, strict=False):
        pieces += [map(part.__getitem__, keys), field]
    pieces.append(map(parts[-1].__getitem__, keys))
    items = map("".join, zip(*pieces, strict=True))
    out = sys.stdout
    first = True
    while chunk := list(islice(items, 1000)):
        out.write(("[\n" if first else ",\n") + ",\n".join(chunk))
        first = False
    out.write("[]\n" if first else "\n]\n")


def marked(name: str, lookalike: str | None) -> str:
    """A name as a table cell: with a warning when it reads like another name or mixes scripts."""
    return name if lookalike is None else f"{name} ⚠ {lookalike}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows under headers, columns padded by terminal width (CJK counts double); a cell
    wider than CELL_COLUMNS is cut, with an ellipsis."""
    table_columns(headers, list(zip(*rows, strict=True)) or [() for _ in headers])


def table_columns(headers: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
    """table(), given its columns rather than its rows."""
    # Column by column, with the per-cell work left to C loops (map, join, ljust): a who-can
    # answer is tens of thousands of rows.
    laid = [
        _column(h, c, last=i == len(headers) - 1)
        for i, (h, c) in enumerate(zip(headers, columns, strict=True))
    ]
    out = sys.stdout
    head = [h + " " * (width - cell_width(h)) for h, (_texts, width) in zip(headers, laid, strict=True)]
    out.write("  ".join(head).rstrip() + "\n")
    lines = map(str.rstrip, map("  ".join, zip(*(texts for texts, _width in laid), strict=True)))
    while chunk := list(islice(lines, 1000)):
        out.write("\n".join(chunk) + "\n")


def table_by_key(
    headers: Sequence[str],
    first: Sequence[Any],
    keys: Sequence[K],
    rest: Mapping[K, Sequence[Any]],
) -> None:
    """table() of the rows (first[i], *rest[keys[i]]). The cells after the first are the same
    for every row of a key (a who-can answer's role and reason), so they are laid out once a
    key rather than once a row."""
    used = set(keys)
    present = [k for k in rest if k in used]
    first_texts, first_width = _column(headers[0], first, last=len(headers) == 1)
    laid = [
        _column(h, [rest[k][i] for k in present], last=i == len(headers) - 2)
        for i, h in enumerate(headers[1:])
    ]
    widths = [first_width, *(width for _texts, width in laid)]
    out = sys.stdout
    out.write("  ".join(h + " " * (w - cell_width(h)) for h, w in zip(headers, widths, strict=True)).rstrip())
    out.write("\n")
    tails = {k: "".join("  " + texts[i] for texts, _width in laid).rstrip() for i, k in enumerate(present)}
    lines: Iterator[str] = map(add, first_texts, map(tails.__getitem__, keys))
    if not all(tails.values()):
        # A row whose other cells are all empty ends with its first cell's text.
        lines = map(str.rstrip, lines)
    while chunk := list(islice(lines, 1000)):
        out.write("\n".join(chunk) + "\n")


def _column(header: str, values: Sequence[Any], *, last: bool) -> tuple[Sequence[str], int]:
    """A column's cells, made safe, cut to CELL_COLUMNS and padded to its width (but the last
    column, whose lines end with their text), and that width."""
    if set(map(type, values)) <= {str}:
        whole = "".join(values)
        longest = max(map(len, values), default=0)
        if whole.isascii() and whole.isprintable() and longest <= CELL_COLUMNS:
            # Plain ASCII text throughout (userNames, mostly): one column per character.
            width = max(cell_width(header), longest)
            return (values if last else list(map(str.ljust, values, repeat(width)))), width
    else:
        # Values of two types can be equal (1 and True) yet print differently.
        values = ["" if v is None else str(v) for v in values]
    # Each distinct value made safe and measured once: roles and reasons repeat.
    shown = {value: _cell(value) for value in set(values)}
    width = max([cell_width(header), *(w for _text, w in shown.values())])
    texts = {v: text if last else text + " " * (width - w) for v, (text, w) in shown.items()}
    return list(map(texts.__getitem__, values)), width


def _cell(value: object) -> tuple[str, int]:
    """A table cell made safe and cut to CELL_COLUMNS, with its width in terminal columns."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable() and len(text) <= CELL_COLUMNS:
        return text, len(text)
    text = clip(text, CELL_COLUMNS)
    return text, cell_width(text)


def say(text: str) -> None:
    sys.stdout.write("\n".join(printable(shorten(line)) for line in text.split("\n")) + "\n")


def warn(text: str) -> None:
    sys.stderr.write("\n".join(printable(shorten(line)) for line in text.split("\n")) + "\n")
