"""Untrusted text from an identity provider, made safe to print as plain characters."""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls (ESC included), DEL, and the bidi overrides that can reorder a line.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


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
