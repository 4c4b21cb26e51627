"""The one interface every identity-provider client implements."""

from __future__ import annotations

from typing import Protocol

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
