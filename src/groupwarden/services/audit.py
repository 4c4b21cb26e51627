"""The audit trail: role changes and sync runs. Events are inserted, never updated or deleted.

Role changes form a hash chain (domain/audit_chain.py), so an edit made afterwards shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from groupwarden.domain.audit_chain import ChainCheck, check_chain, utc
from groupwarden.domain.roles import Role
from groupwarden.domain.secrets import scrub
from groupwarden.domain.text import shorten
from groupwarden.services.context import Actor, Context
from groupwarden.store import audit as store


def hold_chain(conn: Connection) -> None:
    """Take the audit chain's lock now, before any row lock of a role change.

    record_change takes it anyway, but by then the change holds its folder's row lock: a
    transaction of several changes (import-layout) holding the chain would wait for a folder
    that a single change holds while it waits for the chain. Chain first, everywhere, and
    no two role changes can deadlock.
    """
    store.lock_chain(conn)


def record_change(
    conn: Connection,
    actor: Actor,
    now: datetime,
    action: str,
    target: str,
    principal: str,
    before: Role | None,
    after: Role | None,
    *,
    applied_to: str | None = None,
) -> None:
    """Write one role-change event; the caller's transaction makes it land with the change.

    applied_to names the Windmill instance that took the change, for a write-through.
    """
    store.append_change(
        conn,
        at=now,
        actor=actor.user,
        actor_host=actor.host,
        actor_address=actor.address,
        action=action,
        target=target,
        principal=principal,
        before=None if before is None else before.label,
        after=None if after is None else after.label,
        applied_to=applied_to,
    )


def record_run(
    conn: Connection,
    *,
    source_name: str,
    actor: Actor,
    now: datetime,
    started_at: datetime,
    outcome: str,
    diff: dict[str, Any] | None = None,
    error: str | None = None,
) -> int:
    return store.append_run(
        conn,
        source_name=source_name,
        actor=str(actor),
        started_at=started_at,
        finished_at=now,
        outcome=outcome,
        error=None if error is None else scrub(shorten(error)),
        diff=json.dumps(diff or {}, ensure_ascii=False, sort_keys=True),
    )


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    id: int
    at: datetime
    actor: str
    host: str
    address: str | None
    action: str
    target: str
    principal: str
    before: str | None
    after: str | None
    # The database role the server enforced (PostgreSQL); None on SQLite.
    db_role: str | None = None
    #: The Windmill instance the change was written through to; None for a store-only change.
    applied_to: str | None = None

    def describe(self) -> str:
        applied = f" (applied to windmill {self.applied_to})" if self.applied_to else ""
        return (
            f"{self.principal} on {self.target}: {self.before or 'none'} -> {self.after or 'none'}{applied}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "role_change",
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "host": self.host,
            "address": self.address,
            "db_role": self.db_role,
            "action": self.action,
            "target": self.target,
            "principal": self.principal,
            "before": self.before,
            "after": self.after,
            "applied_to": self.applied_to,
        }


@dataclass(frozen=True, slots=True)
class RunEvent:
    id: int
    source: str
    actor: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    error: str | None
    diff: dict[str, Any]

    @property
    def at(self) -> datetime:
        return self.finished_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "sync_run",
            "id": self.id,
            "source": self.source,
            "actor": self.actor,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "outcome": self.outcome,
            "error": self.error,
            "diff": self.diff,
        }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else utc(value)


def role_changes(ctx: Context, limit: int | None = None) -> list[ChangeEvent]:
    with ctx.engine.connect() as conn:
        rows = store.changes(conn, limit)
    return [_change_event(r) for r in rows]


def sync_runs(ctx: Context, limit: int | None = None) -> list[RunEvent]:
    with ctx.engine.connect() as conn:
        rows = store.runs(conn, limit)
    return [
        RunEvent(
            r.id,
            r.source_name,
            r.actor,
            _aware(r.started_at),
            _aware(r.finished_at),
            r.outcome,
            r.error,
            json.loads(r.diff or "{}"),
        )
        for r in rows
    ]


def audit_log(ctx: Context, limit: int | None = None) -> list[ChangeEvent | RunEvent]:
    """Role changes and sync runs together, newest first."""
    events: list[ChangeEvent | RunEvent] = [*role_changes(ctx, limit), *sync_runs(ctx, limit)]
    events.sort(key=lambda e: (e.at, e.id), reverse=True)
    return events[:limit] if limit else events


def last_change_of(conn: Connection, target: str, principal: str) -> ChangeEvent | None:
    row = store.last_change(conn, target, principal)
    return None if row is None else _change_event(row)


def verify_chain(ctx: Context) -> ChainCheck:
    """Check the store's whole audit chain; the result names the first broken link, if any."""
    with ctx.engine.connect() as conn, conn.begin():
        return check_chain(store.chain_in_order(conn))


def _change_event(r: store.ChangeRow) -> ChangeEvent:
    return ChangeEvent(
        r.id,
        _aware(r.at),
        r.actor,
        r.actor_host,
        r.actor_address,
        r.action,
        r.target,
        r.principal,
        r.before,
        r.after,
        r.actor_db_role,
        r.applied_to,
    )
