"""What thread workers send back to the screens: typed messages, posted from the worker's thread.

post_message is thread-safe and does not wait for the UI, so a worker never blocks on it, and a
worker whose screen has gone away simply has nobody to tell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.dom import DOMNode
from textual.message import Message

from groupwarden.domain.directory import Progress
from groupwarden.domain.errors import GroupwardenError, NeedsConfirmation
from groupwarden.tui.backend import Applied
from groupwarden.tui.text import one_line

if TYPE_CHECKING:
    from groupwarden.tui.backend import SyncReport


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """One load of a list pane: a newer request supersedes an older one (see ListPane.load)."""

    serial: int
    # The pane's columns for these rows: fixed, or chosen from the rows once they are read.
    columns: Sequence[Any] | Callable[[Sequence[Any]], Sequence[Any]] | None
    empty: str | None
    keep_cursor: bool
    # The call that reads every row, when this load reads only a first page.
    rest: Callable[[], Sequence[Any]] | None

    def columns_for(self, rows: Sequence[Any]) -> Sequence[Any] | None:
        return self.columns(rows) if callable(self.columns) else self.columns


class LoadFinished(Message):
    def __init__(self, request: LoadRequest, rows: list[Any], keys: list[str] | None) -> None:
        super().__init__()
        self.request = request
        self.rows = rows
        # The filter's keys of a long list, built in the worker; None when built on first use.
        self.keys = keys


class LoadFailed(Message):
    def __init__(self, request: LoadRequest, error: str) -> None:
        super().__init__()
        self.request = request
        self.error = error


class ChangeApplied(Message):
    def __init__(self, applied: Applied) -> None:
        super().__init__()
        self.applied = applied


class ChangeRefused(Message):
    """A change was not made: reason is one line; needs_confirmation when it would remove the
    last admin of a folder and may be asked again with the admin's confirmation."""

    def __init__(self, reason: str, *, needs_confirmation: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.needs_confirmation = needs_confirmation


class SyncProgressed(Message):
    def __init__(self, source: str, step: Progress) -> None:
        super().__init__()
        self.source = source
        self.step = step


class SyncFinished(Message):
    def __init__(self, report: SyncReport) -> None:
        super().__init__()
        self.report = report


class SyncFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


def apply_change(node: DOMNode, call: Callable[[], Applied]) -> None:
    """Run a role change in a thread worker of node; node gets ChangeApplied or ChangeRefused."""

    def run() -> None:
        try:
            applied = call()
        except NeedsConfirmation as exc:
            node.post_message(ChangeRefused(str(exc), needs_confirmation=True))
        except GroupwardenError as exc:
            # Already clear text (an ambiguous name lists its candidates, one a line).
            node.post_message(ChangeRefused(str(exc)))
        except Exception as exc:
            # Any failure (a held lock that timed out, a lost connection) is one line, not a crash.
            node.post_message(ChangeRefused(one_line(exc)))
        else:
            node.post_message(ChangeApplied(applied))

    node.run_worker(run, thread=True, group="change", name="apply a change")
