"""Rows of the sources table: which identity providers the cache holds, and their sync state."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, insert, select, update

from groupwarden.store.models import Source


class SyncState(NamedTuple):
    """The cursor the last successful sync stored, and when that sync ran."""

    cursor: str | None
    last_sync_at: datetime | None


def find_source_id(conn: Connection, name: str) -> int | None:
    """The row id of the source of that name; None when it was never synced."""
    return conn.execute(select(Source.id).where(Source.name == name)).scalar_one_or_none()


def add_source(conn: Connection, name: str, kind: str, url: str) -> int:
    result = conn.execute(insert(Source).values(name=name, kind=kind, url=url))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def sync_state(conn: Connection, name: str) -> SyncState:
    row = conn.execute(
        select(Source.sync_state, Source.last_sync_at).where(Source.name == name)
    ).one_or_none()
    if row is None:
        return SyncState(None, None)
    return SyncState(row.sync_state, row.last_sync_at)


def store_sync_state(conn: Connection, name: str, cursor: str | None) -> None:
    conn.execute(update(Source).where(Source.name == name).values(sync_state=cursor))


def mark_synced(conn: Connection, source_id: int, now: datetime) -> None:
    conn.execute(update(Source).where(Source.id == source_id).values(last_sync_at=now))
