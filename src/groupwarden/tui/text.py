"""Untrusted text made safe for cells, and clock-relative times."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from groupwarden.domain.text import clip, printable, shorten


def plain(value: object, width: int | None = None, style: str = "") -> Text:
    """A Text that shows value literally: no markup, no control characters, cut to width."""
    raw = "" if value is None else str(value)
    if raw.isascii() and raw.isprintable() and (not width or len(raw) <= width):
        # Most cells: nothing to escape and one column a character, so nothing to cut either.
        shown = raw
    else:
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
    """The first line of an error, shown literally, with what gets past it in this UI's terms."""
    text = str(exc).strip() or type(exc).__name__
    first = shorten(text.splitlines()[0])
    if isinstance(exc, BaseException) and not _is_ours(exc):
        first = f"{type(exc).__name__}: {first}"
    if isinstance(exc, BaseException):
        hint = tui_hint(exc)
        if hint:
            first = f"{first} ({hint})"
    return printable(first)


def tui_hint(exc: BaseException) -> str:
    """An error's remedy as the key or screen that does it here; the CLI names its flags instead."""
    from groupwarden.domain.errors import GroupwardenError, Remedy

    if not isinstance(exc, GroupwardenError) or exc.hint is None:
        return ""
    return {
        # No key runs a full sync or allows a mass deletion yet: those stay with the command line.
        Remedy.FULL_SYNC: "a full sync is needed: run it from the command line",
        Remedy.CONFIRM_LAST_ADMIN: "confirm in the dialog",
        Remedy.ALLOW_MASS_DELETE: "check the source; only the command line can allow a mass deletion",
        Remedy.LIST_GROUPS: "see the groups pane: press 1",
        Remedy.SYNC_FIRST: "press s to sync",
        Remedy.OPEN_WRITABLE: "this session is read-only: quit and open it without read-only",
        Remedy.MIGRATE: "open it once without read-only to upgrade it",
        Remedy.TRUST_DB_PERMISSIONS: "or trust it with trust_db_permissions = true in the config file",
        Remedy.GIVE_TOKEN: "name it with token_env or token_file in the source's section of the config file",
        Remedy.GIVE_CLIENT_SECRET: "set client_id with client_secret_env or client_secret_file"
        " in the source's section of the config file",
        Remedy.ADD_WORKSPACE: "workspaces are added from the command line or a layout file",
        Remedy.ADD_FOLDER: "folders are added from the command line or a layout file",
        Remedy.NEW_DATABASE: "restore into a new, empty database",
    }[exc.hint.remedy]


def _is_ours(exc: BaseException) -> bool:
    from groupwarden.domain.errors import GroupwardenError

    return isinstance(exc, GroupwardenError)
