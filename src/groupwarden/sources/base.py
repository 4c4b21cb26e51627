"""The one interface every identity-provider client implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from groupwarden.domain.directory import ProgressCallback, Snapshot


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
    #: Reads the cached directory of the source back as a Snapshot; only called when needed.
    load: Callable[[], Snapshot]


@dataclass(slots=True)
class Fetched:
    """A complete snapshot, however it was obtained, and the cursor to keep with it."""

    snapshot: Snapshot
    #: Stored with the reconcile, in the same transaction, only when it succeeds.
    state: str | None = None
    #: 'full' or 'delta'.
    mode: str = "full"
    #: Worth telling the admin (a refused delta link, a scheduled full sync).
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class IncrementalSource(Source, Protocol):
    """A source that can apply the changes since its last sync onto the cached state.

    It still returns a complete Snapshot: the reconcile only knows whole listings.
    previous is None for a full sync (the first one, or one asked for).
    """

    def fetch_changes(
        self, previous: Previous | None, progress: ProgressCallback | None = None
    ) -> Fetched: ...
