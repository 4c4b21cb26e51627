"""A titled list with a / filter that pages its rows, so a 50,000-row list stays quick."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import RowKey

from groupwarden.tui.messages import LoadFailed, LoadFinished, LoadRequest
from groupwarden.tui.text import one_line, plain


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    width: int
    value: Callable[[Any], object]
    justify: Literal["left", "right"] = "left"
    style: Callable[[Any], str] | None = None


# A list of at least this many rows freezes the objects alive then (see Frozen).
FREEZE_ROWS = 10_000


class Frozen:
    """gc.freeze() while some pane holds a long list; gc.unfreeze() once none does.

    Tens of thousands of rows make each full garbage collection take 100-300 ms, and one comes
    every few keys. The rows hold no cycles (they are freed by reference counting all the same):
    leaving what is alive out of every later collection makes a collection scan only what was
    made since. Once no pane holds a long list, everything frozen is handed back to the
    collector, so nothing stays out of its reach for the rest of the process.
    """

    def __init__(self) -> None:
        self.holders: set[int] = set()

    def hold(self, pane: object, long_list: bool) -> None:
        if long_list:
            self.holders.add(id(pane))
            gc.freeze()
        elif id(pane) in self.holders:
            self.release(pane)

    def release(self, pane: object) -> None:
        if id(pane) in self.holders:
            self.holders.discard(id(pane))
            if not self.holders:
                gc.unfreeze()


frozen = Frozen()


def search_keys_of(
    rows: Sequence[Any], search: Callable[[Any], str] | None, columns: Sequence[Column]
) -> list[str]:
    """One lowercase key per row, what the / filter matches: search(row), or every column's text."""
    if search is not None:
        return [search(row).lower() for row in rows]
    return [" ".join(str(col.value(row) or "") for col in columns).lower() for row in rows]


class NavTable(DataTable[Text]):
    """A DataTable of fixed-width columns and one-line rows, as a ListPane fills it."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # DataTable measures every new cell to size the columns that fit their content; every
        # column here has its width (and every row one line), so that would size nothing: a page
        # of rows is 500 measures on each key typed into a filter.
        if all(not column.auto_width for column in self.columns.values()):
            new_rows = ()
        super()._update_dimensions(new_rows)

    def fit_rows(self) -> None:
        """Take the size of the rows just added or cleared now, scrollbars with it, not when idle.

        A filter that empties a page of rows (or fills an empty table) hides (or shows) the
        scrollbar: sized on the table's next idle, as DataTable does, the table and then its
        scrollbar each ask for a layout of the whole screen, one after the other; sized here,
        while the key is handled, they ask for the same one.
        """
        if self._require_update_dimensions:
            self._require_update_dimensions = False
            new_rows = self._new_rows.copy()
            self._new_rows.clear()
            self._update_dimensions(new_rows)
            self._refresh_scrollbars()


class FilterInput(Input):
    """An Input that types without laying out the screen.

    Input gives itself a new virtual size (the text's width) on every key, and a new virtual size
    lays out the whole screen, which redraws every pane's scrollbars: most of a key's cost. Here the
    virtual size is at least the input's own width, so it stays put until the text outgrows that.
    """

    @property
    def content_width(self) -> int:
        return max(super().content_width, self.container_size.width)

    def on_resize(self) -> None:
        # Input sets its virtual size only when its value changes; set it now, so the first key
        # typed does not change it.
        self.virtual_size = Size(self.content_width, 1)


class ListPane(Vertical):
    """Rows of any kind, shown through Columns; only PAGE rows at a time become table rows."""

    PAGE = 100

    BINDINGS = [
        Binding("slash", "open_filter", "Filter", key_display="/"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    class Chosen(Message):
        """The highlighted row of a focused pane changed (or the pane was entered)."""

        def __init__(self, pane: ListPane, row: Any) -> None:
            super().__init__()
            self.pane = pane
            self.row = row

        @property
        def control(self) -> ListPane:
            return self.pane

    class Opened(Message):
        """Enter on a row."""

        def __init__(self, pane: ListPane, row: Any) -> None:
            super().__init__()
            self.pane = pane
            self.row = row

        @property
        def control(self) -> ListPane:
            return self.pane

    def __init__(
        self,
        title: str,
        columns: Sequence[Column],
        *,
        empty: str = "nothing here",
        search: Callable[[Any], str] | None = None,
        id: str | None = None,
        classes: str = "",
    ) -> None:
        super().__init__(id=id, classes=f"pane {classes}".strip())
        self.title = title
        self.columns = list(columns)
        self.empty = empty
        self.rows: list[Any] = []
        self.keys: list[str] | None = None
        self.matches: list[int] = []
        # The needle that self.matches were found with ("" when they are every row).
        self.matched = ""
        self.shown = 0
        self.needle = ""
        self.loaded = False
        # What the / filter matches a row by; by default the text of every column.
        self.search = search
        # Set while rows hold only a first page: the call that reads them all, run on demand.
        self.rest: Callable[[], Sequence[Any]] | None = None
        self._when_complete: list[Callable[[], None]] = []
        self._note_text = ""
        # A load is running: the rows may be about to change, so they are not complete yet.
        self.pending = False
        # The newest load asked for; an answer to an older one is dropped.
        self.serial = 0
        # The note while nothing was asked for yet (say, a user lookup before a name is typed).
        self.idle = empty

    def compose(self) -> ComposeResult:
        yield NavTable(cursor_type="row", zebra_stripes=True)
        yield Static("", classes="pane-note")
        yield FilterInput(
            placeholder="filter: type to narrow, enter to keep, esc to clear", classes="pane-filter"
        )

    def on_unmount(self) -> None:
        frozen.release(self)

    def on_mount(self) -> None:
        if not self.children:
            # Mounted as the app quits: its table and note were never made.
            return
        self.border_title = self.title
        self._add_columns()
        # Filter while the Input handles the key, not when its Changed message arrives: the input's
        # new text and the filtered rows are then drawn in one frame, not in two a frame apart.
        self.watch(self.filter_input, "value", self._filter_typed, init=False)
        self._note()

    @property
    def table(self) -> NavTable:
        return self.query_one(NavTable)

    @property
    def filter_input(self) -> Input:
        return self.query_one(".pane-filter", Input)

    @property
    def filtering(self) -> bool:
        return bool(self.filter_input.display)

    def _add_columns(self) -> None:
        for col in self.columns:
            self.table.add_column(Text(col.label, justify=col.justify), width=col.width)

    def set_columns(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self.table.clear(columns=True)
        self._add_columns()

    def set_rows(
        self,
        rows: Sequence[Any],
        *,
        empty: str | None = None,
        keep_cursor: bool = False,
        keys: list[str] | None = None,
    ) -> None:
        at = self.table.cursor_row if keep_cursor else 0
        self.rows = list(rows)
        frozen.hold(self, len(self.rows) >= FREEZE_ROWS)
        self.keys = keys
        self.matched = ""
        self.loaded = True
        if empty is not None:
            self.empty = empty
        self._refilter(at)

    def search_keys(self) -> list[str]:
        """One lowercase key per row: built with a long list in its load, else on first use."""
        if self.keys is None:
            self.keys = search_keys_of(self.rows, self.search, self.columns)
        return self.keys

    def _refilter(self, cursor: int = 0) -> None:
        if self.rest is not None and self.needle:
            self._load_rest()
        needle, keys = self.needle, self.search_keys() if self.needle else []
        if not needle:
            self.matches = list(range(len(self.rows)))
        elif self.matched and needle.startswith(self.matched):
            # Typing on only narrows: a row the shorter needle missed cannot hold the longer one.
            self.matches = [i for i in self.matches if needle in keys[i]]
        else:
            self.matches = [i for i, key in enumerate(keys) if needle in key]
        self.matched = needle
        self.table.clear()
        self.shown = 0
        self._show_more(max(cursor + 1, self.PAGE))
        self.table.fit_rows()
        if cursor and cursor < self.table.row_count:
            self.table.move_cursor(row=cursor, animate=False)
        self._note()

    def _show_more(self, count: int) -> None:
        end = min(len(self.matches), self.shown + count)
        self.table.add_rows(self._cells(self.rows[i]) for i in self.matches[self.shown : end])
        self.shown = end

    def _cells(self, row: Any) -> list[Text]:
        cells = []
        for col in self.columns:
            cell = plain(col.value(row), col.width, col.style(row) if col.style else "")
            cell.justify = col.justify
            cells.append(cell)
        return cells

    def refresh_note(self) -> None:
        self._note()

    def _note(self) -> None:
        total, found = len(self.rows), len(self.matches)
        if not self.loaded:
            text = "loading…" if self.pending else self.idle
        elif not total:
            text = self.empty
        elif self.needle and not found:
            text = f"no row of {total:,} matches {self.needle!r}; esc clears the filter"
        elif self.rest is not None and not self.needle:
            text = f"the first {self.shown:,} rows; the last row or / loads them all"
        elif self.shown < found:
            text = f"showing {self.shown:,} of {found:,}; the last row loads more, / filters"
        elif self.needle:
            text = f"{found:,} of {total:,} match {self.needle!r}"
        else:
            text = f"{total:,} rows" if total != 1 else "1 row"
        if text != self._note_text:
            self._note_text = text
            # The note is one line of fixed size: no layout pass for the whole screen.
            self.query_one(".pane-note", Static).update(plain(text), layout=False)

    class Loaded(Message):
        def __init__(self, pane: ListPane) -> None:
            super().__init__()
            self.pane = pane

        @property
        def control(self) -> ListPane:
            return self.pane

    def load(
        self,
        fetch: Callable[[], Sequence[Any]],
        *,
        columns: Sequence[Column] | Callable[[Sequence[Any]], Sequence[Column]] | None = None,
        empty: str | None = None,
        keep_cursor: bool = False,
        first: Callable[[], Sequence[Any]] | None = None,
    ) -> None:
        """Run fetch (a service call) in a thread; a newer load supersedes an older one.

        With first, only first() runs now (PAGE rows, quick to read); fetch runs when all rows
        are needed: scrolling past them, filtering, exporting (see when_complete).
        """
        self.serial += 1
        request = LoadRequest(self.serial, columns, empty, keep_cursor, fetch if first else None)
        self.rest = None
        self.pending = True
        if not keep_cursor:
            self.loaded = False
            self._note()
        self.run_worker(
            partial(self._fetch, first or fetch, request), thread=True, exclusive=True, group="load"
        )

    def _fetch(self, fetch: Callable[[], Sequence[Any]], request: LoadRequest) -> None:
        try:
            # A plain list, made here: no row is read from the database when the UI indexes it.
            rows = list(fetch())
        except Exception as exc:
            # A pane that cannot load says why in its note; the rest of the UI goes on.
            self.post_message(LoadFailed(request, one_line(exc)))
            return
        keys = None
        if request.rest is None and len(rows) > self.PAGE:
            # Every row of a long list is read when it is needed, mostly to filter it: build the
            # filter's keys here, off the UI thread, not on the first key typed.
            keys = search_keys_of(rows, self.search, request.columns_for(rows) or self.columns)
        self.post_message(LoadFinished(request, rows, keys))

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        message.stop()
        if message.request.serial == self.serial:
            self._fetched(message.request, [], None, message.error, complete=True)

    @on(LoadFinished)
    def _load_finished(self, message: LoadFinished) -> None:
        message.stop()
        if message.request.serial == self.serial:
            # A first page (PAGE rows asked for) that came back short already holds every row.
            complete = message.request.rest is None or len(message.rows) < self.PAGE
            self._fetched(message.request, message.rows, message.keys, message.request.empty, complete)

    def _fetched(
        self, request: LoadRequest, rows: list[Any], keys: list[str] | None, empty: str | None, complete: bool
    ) -> None:
        self.pending = False
        columns = request.columns_for(rows)
        if columns is not None:
            self.set_columns(columns)
        self.set_rows(rows, empty=empty, keep_cursor=request.keep_cursor, keys=keys)
        self.rest = None if complete else request.rest
        self.post_message(self.Loaded(self))
        if self.rest is None:
            waiting, self._when_complete = self._when_complete, []
            for callback in waiting:
                callback()
        elif self._when_complete or (self.needle and self.filtering):
            self._load_rest()

    @property
    def complete(self) -> bool:
        return self.loaded and self.rest is None and not self.pending

    def when_complete(self, callback: Callable[[], None]) -> None:
        """Call back once every row is loaded: now, or after the rest of a first page arrives."""
        if self.complete:
            callback()
            return
        self._when_complete.append(callback)
        self._load_rest()

    def _load_rest(self) -> None:
        rest = self.rest
        if rest is not None and self.loaded:
            self.rest = None
            self.load(rest, keep_cursor=True)

    def current(self) -> Any:
        row = self.table.cursor_row
        if not self.table.row_count or row < 0 or row >= self.shown:
            return None
        return self.rows[self.matches[row]]

    def visible_rows(self) -> list[Any]:
        """Every row that passes the filter, shown yet or not: what an export writes."""
        return [self.rows[i] for i in self.matches]

    def records(self) -> list[dict[str, str]]:
        return [
            {col.label: "" if col.value(row) is None else str(col.value(row)) for col in self.columns}
            for row in self.visible_rows()
        ]

    def focus_table(self) -> None:
        self.table.focus()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.cursor_row >= self.shown - 1:
            if self.shown < len(self.matches):
                self._show_more(self.PAGE)
                self._note()
            elif self.rest is not None:
                self._load_rest()
        if self.table.has_focus:
            self.post_message(self.Chosen(self, self.current()))

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.current()
        if row is not None:
            self.post_message(self.Opened(self, row))

    def on_descendant_focus(self) -> None:
        self.post_message(self.Chosen(self, self.current()))

    def action_open_filter(self) -> None:
        self.filter_input.display = True
        self.filter_input.focus()
        # The filter needs every row; a first page asks for the rest now, while the user types.
        self._load_rest()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Without an active filter, escape belongs to the screen (back, close).
        if action == "clear_filter":
            return self.filtering
        return True

    def action_clear_filter(self) -> None:
        # Needle first, so that emptying the input does not filter once more before this does.
        self.needle = ""
        self.filter_input.value = ""
        self.filter_input.display = False
        self._refilter()
        self.focus_table()

    def _filter_typed(self, value: str) -> None:
        needle = value.strip().lower()
        if needle != self.needle:
            self.needle = needle
            self._refilter()

    @on(Input.Changed, ".pane-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        # The rows were filtered already, by _filter_typed.
        event.stop()

    @on(Input.Submitted, ".pane-filter")
    def _filter_kept(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.filter_input.display = False
        self.focus_table()
