"""Audit events (role changes, chained by hash) and sync runs: appended, never updated."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, insert, select, text

from groupwarden.domain.audit_chain import GENESIS, ChainedEvent, link_hash, utc
from groupwarden.store.db import lock_name
from groupwarden.store.models import AuditEvent, SyncRun

# Appends to the chain take this lock, so two writers never link to the same event.
CHAIN_LOCK = "groupwarden audit chain"


class ChangeRow(NamedTuple):
    id: int
    at: datetime
    actor: str
    actor_host: str
    actor_address: str | None
    actor_db_role: str | None
    action: str
    target: str
    principal: str
    before: str | None
    after: str | None
    prev_hash: str | None
    event_hash: str | None
    applied_to: str | None


class RunRow(NamedTuple):
    id: int
    source_name: str
    actor: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    error: str | None
    diff: str


_CHANGE_COLUMNS = [getattr(AuditEvent, name) for name in ChangeRow._fields]
_RUN_COLUMNS = [getattr(SyncRun, name) for name in RunRow._fields]


def lock_chain(conn: Connection) -> None:
    """Hold the chain's lock until the transaction ends (PostgreSQL; taking it again is free).

    On SQLite the write transaction already holds the database's only write lock.
    """
    lock_name(conn, CHAIN_LOCK)


def session_role(conn: Connection) -> str | None:
    """The database role the server enforces for this connection; SQLite has none."""
    if conn.dialect.name == "postgresql":
        return str(conn.execute(text("SELECT session_user")).scalar_one())
    return None


def append_change(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    actor_host: str,
    actor_address: str | None,
    action: str,
    target: str,
    principal: str,
    before: str | None,
    after: str | None,
    applied_to: str | None = None,
) -> None:
    """Append one role-change event to the chain, inside the caller's write transaction.

    The chain's lock, held until commit, orders the appends: two writers never link to the
    same event.
    """
    lock_chain(conn)
    fields: dict[str, object] = {
        "at": utc(at),
        "actor": actor,
        "actor_host": actor_host,
        "actor_address": actor_address,
        "actor_db_role": session_role(conn),
        "action": action,
        "target": target,
        "principal": principal,
        "before": before,
        "after": after,
        "applied_to": applied_to,
    }
    previous = conn.execute(
        select(AuditEvent.event_hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    prev_hash = previous or GENESIS
    conn.execute(
        insert(AuditEvent).values(**fields, prev_hash=prev_hash, event_hash=link_hash(prev_hash, fields))
    )


def append_run(
    conn: Connection,
    *,
    source_name: str,
    actor: str,
    started_at: datetime,
    finished_at: datetime,
    outcome: str,
    error: str | None,
    diff: str,
) -> int:
    result = conn.execute(
        insert(SyncRun).values(
            source_name=source_name,
            actor=actor,
            started_at=started_at,
            finished_at=finished_at,
            outcome=outcome,
            error=error,
            diff=diff,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def _change(row: object) -> ChangeRow:
    return ChangeRow._make(row)  # type: ignore[arg-type]


def changes(conn: Connection, limit: int | None = None) -> list[ChangeRow]:
    """Role-change events, newest first."""
    stmt = select(*_CHANGE_COLUMNS).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    return [_change(r) for r in conn.execute(stmt)]


def runs(conn: Connection, limit: int | None = None) -> list[RunRow]:
    """Sync runs, newest first."""
    stmt = select(*_RUN_COLUMNS).order_by(SyncRun.finished_at.desc(), SyncRun.id.desc())
    if limit:
        stmt = stmt.limit(limit)
    return [RunRow._make(r) for r in conn.execute(stmt)]


def last_change(conn: Connection, target: str, principal: str) -> ChangeRow | None:
    row = conn.execute(
        select(*_CHANGE_COLUMNS)
        .where(AuditEvent.target == target, AuditEvent.principal == principal)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _change(row)


def chained(row: ChangeRow) -> ChainedEvent:
    """A stored event as the chain check sees it."""
    fields = row._asdict()
    return ChainedEvent(row.id, row.prev_hash, row.event_hash, fields)


def chain_in_order(conn: Connection) -> Iterator[ChainedEvent]:
    """Every event in chain order (by id), streamed."""
    result = conn.execution_options(yield_per=2000).execute(select(*_CHANGE_COLUMNS).order_by(AuditEvent.id))
    for row in result:
        yield chained(_change(row))
