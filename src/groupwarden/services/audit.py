"""The audit trail: role changes and sync runs. Events are inserted, never updated or deleted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from groupwarden.domain.roles import Role
from groupwarden.domain.secrets import scrub
from groupwarden.services.context import Actor, Context
from groupwarden.store.models import AuditEvent, SyncRun


def record_change(
    conn: Connection,
    actor: Actor,
    now: datetime,
    action: str,
    target: str,
    principal: str,
    before: Role | None,
    after: Role | None,
) -> None:
    """Write one role-change event; the caller's transaction makes it land with the change."""
    conn.execute(
        insert(AuditEvent).values(
            at=now,
            actor=actor.user,
            actor_host=actor.host,
            actor_address=actor.address,
            action=action,
            target=target,
            principal=principal,
            before=None if before is None else before.label,
            after=None if after is None else after.label,
        )
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
    result = conn.execute(
        insert(SyncRun).values(
            source_name=source_name,
            actor=str(actor),
            started_at=started_at,
            finished_at=now,
            outcome=outcome,
            error=None if error is None else scrub(error),
            diff=json.dumps(diff or {}, ensure_ascii=False, sort_keys=True),
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


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

    def describe(self) -> str:
        return f"{self.principal} on {self.target}: {self.before or 'none'} -> {self.after or 'none'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "role_change",
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "host": self.host,
            "address": self.address,
            "action": self.action,
            "target": self.target,
            "principal": self.principal,
            "before": self.before,
            "after": self.after,
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
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


def role_changes(ctx: Context, limit: int | None = None) -> list[ChangeEvent]:
    with ctx.engine.connect() as conn:
        stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        if limit:
            stmt = stmt.limit(limit)
        rows = conn.execute(stmt).all()
    return [_change_event(r) for r in rows]


def sync_runs(ctx: Context, limit: int | None = None) -> list[RunEvent]:
    with ctx.engine.connect() as conn:
        stmt = select(SyncRun).order_by(SyncRun.finished_at.desc(), SyncRun.id.desc())
        if limit:
            stmt = stmt.limit(limit)
        rows = conn.execute(stmt).all()
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
    r = conn.execute(
        select(AuditEvent)
        .where(AuditEvent.target == target, AuditEvent.principal == principal)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if r is None:
        return None
    return _change_event(r)


def _change_event(r: Any) -> ChangeEvent:
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
    )
