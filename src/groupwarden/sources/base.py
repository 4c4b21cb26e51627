"""The one interface every identity-provider client implements."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from groupwarden.domain.directory import Delta, Progress, ProgressCallback, Snapshot
from groupwarden.domain.errors import SyncError


class Source(Protocol):
    """A source fetches the whole directory, checks it is complete, and returns it.

    It never writes anything; on any failure it raises SyncError with one clear line
    (what failed, where without secrets, what to do).
    """

    #: The name runs and groups are recorded under ('corp', or the URL for ad-hoc syncs).
    name: str
    #: 'scim', 'okta' or 'graph'.
    kind: str
    #: The endpoint, without credentials, as shown to the user.
    url: str

    def fetch(self, progress: ProgressCallback | None = None) -> Snapshot: ...


@dataclass(slots=True)
class Previous:
    """What the last successful sync of a source left: its cursor and its cached state."""

    #: The opaque cursor stored with that sync (a Graph delta link, a SCIM watermark).
    state: str | None
    #: Reads the whole cached directory of the source back as a Snapshot; only called when needed.
    load: Callable[[], Snapshot]
    #: Reads back only the cached users and groups with these upstream ids (users, then
    #: groups), groups without their members; rows removed upstream are left out. What a
    #: delta needs to complete a change that names only the properties that moved.
    lookup: Callable[[Collection[str], Collection[str]], Snapshot]


@dataclass(slots=True)
class Fetched:
    """A complete snapshot, or the changes since the last sync, and the cursor to keep with it."""

    #: Set for a full listing (and for a SCIM incremental one, merged onto the cache).
    snapshot: Snapshot | None
    #: Stored with the reconcile, in the same transaction, only when it succeeds.
    state: str | None = None
    #: 'full' or 'delta'.
    mode: str = "full"
    #: Worth telling the admin (a refused delta link, a scheduled full sync).
    notes: list[str] = field(default_factory=list)
    #: Set instead of snapshot when the source returns only what changed.
    delta: Delta | None = None


@runtime_checkable
class IncrementalSource(Source, Protocol):
    """A source that can fetch only the changes since its last sync.

    It returns a complete Snapshot (a full listing, or changes it merged onto
    previous.load()), or a Delta that the reconcile applies onto the cache row by row,
    at a cost in proportion to the change. previous is None for a full sync (the first
    one, or one asked for).
    """

    def fetch_changes(
        self, previous: Previous | None, progress: ProgressCallback | None = None
    ) -> Fetched: ...


class PageCounter:
    """Counts the pages and items of one phase of a fetch and reports each page as progress."""

    def __init__(self, phase: str, progress: ProgressCallback | None, total: int | None = None) -> None:
        self.phase, self.progress, self.total = phase, progress, total
        self.pages = self.items = 0

    def page(self, items: int) -> None:
        self.pages += 1
        self.items += items
        if self.progress is not None:
            self.progress(Progress(self.phase, self.pages, self.items, self.total))

    def item(self) -> None:
        self.page(1)


class SeenIds:
    """The ids one listing gave so far: an id given twice means the server is going round in
    circles (a page served again, a cursor that never ends), so paging stops at the first one.

    Checked a page at a time, at the cost of a set update: a full listing's ids are kept
    alive by its items anyway.
    """

    def __init__(self, where: str, kind: str) -> None:
        self.where, self.kind = where, kind
        self.ids: set[str] = set()

    def add(self, ids: list[str]) -> None:
        before = len(self.ids)
        self.ids.update(ids)
        fresh = len(self.ids) - before
        if fresh == len(ids):
            return
        on_page: set[str] = set()
        for upstream_id in ids:
            if upstream_id in on_page:
                raise SyncError(f"{self.where}: {self.kind} id {upstream_id!r} listed twice; sync aborted")
            on_page.add(upstream_id)
        raise SyncError(
            f"{self.where}: {len(ids) - fresh} of the {len(ids)} {self.kind}s of a page were listed"
            " twice, on an earlier page too; the server repeats itself (a page served again, or the"
            " paging ignored), sync aborted"
        )
