"""Untrusted text from an identity provider, made safe to print as plain characters."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any

# DEL, the C1 controls (U+009B is a one-character CSI) and every Unicode Bidi_Control
# character (marks, embeddings, overrides, isolates), which can reorder what a line shows.
_C1_AND_BIDI = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# The C0 controls (ESC, BEL, NUL, newline...) as well.
_UNSAFE = re.compile(f"[\x00-\x1f{_C1_AND_BIDI}]")
# json.dumps escapes the C0 controls itself, and leaves the rest raw.
_JSON_UNSAFE = re.compile(f"[{_C1_AND_BIDI}]")
# A cell starting with one of these is a formula to a spreadsheet. (A leading tab or CR, which
# some spreadsheets skip to read the formula behind, is escaped to \x09 or \x0d first.)
_FORMULA_START = ("=", "+", "-", "@")


def printable(text: str) -> str:
    """Replace every control character by a visible escape, so a name cannot drive the terminal."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
        text,
    )


def cell_width(text: str) -> int:
    """Terminal columns taken by text: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clip(text: str, width: int) -> str:
    """Cut text to at most width terminal columns, marking the cut with an ellipsis."""
    if text.isascii() and text.isprintable():
        # Nothing to escape and one column a character: the cut is a slice, with no width
        # looked up per character (a screen cuts hundreds of cells on each key).
        return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
    text = printable(text)
    if cell_width(text) <= width:
        return text
    out: list[str] = []
    used = 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


# A name or message from an identity provider can be a megabyte long. Screens, tables and
# stored error texts show at most this much of it; the store keeps the whole value.
SHOWN_CHARACTERS = 1000


def shorten(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """Cut text to at most limit characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters cut]"


def safe_json(data: Any, *, indent: int = 2, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text in which no character can drive a terminal: controls, C1 and bidi characters
    are all \\u escapes (which mean the same to a JSON reader)."""
    return safe_json_text(json.dumps(data, ensure_ascii=False, indent=indent, default=default))


def json_text_is_safe(json_text: str) -> bool:
    """True when safe_json_text would leave json_text as it is."""
    # Every character it escapes is outside ASCII, and the ASCII check runs many times faster.
    return json_text.isascii() or _JSON_UNSAFE.search(json_text) is None


def safe_json_text(json_text: str) -> str:
    """JSON text with its C1 and bidi characters escaped (see safe_json): json.dumps escapes
    the other controls itself."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


def csv_cell(value: str) -> str:
    """A CSV cell safe to print and to open in a spreadsheet: control characters shown
    escaped, and a cell that a spreadsheet would run as a formula quoted with a leading '."""
    value = printable(value)
    return "'" + value if value.startswith(_FORMULA_START) else value
