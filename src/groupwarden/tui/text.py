"""Untrusted text made safe for cells, and clock-relative times."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from groupwarden.domain.text import clip, printable


def plain(value: object, width: int | None = None, style: str = "") -> Text:
    """A Text that shows value literally: no markup, no control characters, cut to width."""
    raw = "" if value is None else str(value)
    shown = clip(raw, width) if width else printable(raw)
    return Text(shown, style=style, no_wrap=True, overflow="ellipsis", end="")


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ago(then: datetime | None, now: datetime) -> str:
    """'5m ago' style age; the caller passes Context.clock() so tests see a fixed time."""
    if then is None:
        return "never"
    seconds = int((aware(now) - aware(then)).total_seconds())
    if seconds < 0:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def stamp(value: datetime | None) -> str:
    return "" if value is None else aware(value).strftime("%Y-%m-%d %H:%M")


def one_line(exc: BaseException | str) -> str:
    """The first line of an error, shown literally; a service error is already one clear line."""
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    if isinstance(exc, BaseException) and not _is_ours(exc):
        first = f"{type(exc).__name__}: {first}"
    return printable(first)


def _is_ours(exc: BaseException) -> bool:
    from groupwarden.domain.errors import GroupwardenError

    return isinstance(exc, GroupwardenError)
