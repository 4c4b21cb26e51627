"""Helpers the tests share: clocks, backends, snapshots. (Fixtures live in conftest.py.)

Imported by name as `support`, never as `conftest`: with several conftest.py files in the
tree, `import conftest` can find the wrong one.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.domain.roles import Role
from groupwarden.services import access, directory, grants, resolve
from groupwarden.services.access import Impact, TargetAccess, WhoCan
from groupwarden.services.context import Context
from groupwarden.services.directory import MemberRow
from groupwarden.services.grants import Change, GrantRow
from groupwarden.services.reconcile import DeletionGuard, SyncDiff, reconcile
from groupwarden.store.db import write_transaction

FIXED_NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


class StepClock:
    """A clock that moves one second per reading: ordered, and the same every run."""

    def __init__(self, start: datetime = FIXED_NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


PG_SERVER = os.environ.get("GROUPWARDEN_TEST_PG")
BACKENDS = ["sqlite", "postgresql"] if PG_SERVER else ["sqlite"]
# One template per test process, so that checkouts testing side by side on one server
# never drop each other's template.
TEMPLATE = f"groupwarden_test_template_{os.getpid()}"


def pg_admin_url(database: str = "postgres") -> str:
    assert PG_SERVER
    return make_url(PG_SERVER).set(database=database).render_as_string(hide_password=False)


def new_pg_database(template: str) -> str:
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    admin.dispose()
    return name


def drop_pg_database(name: str) -> None:
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def sync_snapshot(ctx: Context, snapshot: Snapshot, source: str = "corp", **guard: object) -> SyncDiff:
    with write_transaction(ctx.engine) as conn:
        return reconcile(
            conn,
            snapshot,
            source_name=source,
            source_kind="scim",
            source_url="http://idp.test/scim",
            guard=DeletionGuard(**guard),  # type: ignore[arg-type]
            write=True,
            now=ctx.clock(),
        )


def org_snapshot() -> Snapshot:
    """A small organisation: nested groups, a cycle, an inactive user, accents and CJK."""
    users = [
        SourceUser("u-alice", "alice", "Alice Martin", ["alice@corp.test"]),
        SourceUser("u-bob", "bob", "Bob Stone", ["bob@corp.test", "b@home.test"]),
        SourceUser("u-chloe", "chloé", "Chloé Durand", ["chloe@corp.test"]),
        SourceUser("u-dan", "dan", "Dan Inactive", [], active=False),
        SourceUser("u-yuki", "yuki", "田中 由紀", ["yuki@corp.test"]),
        SourceUser("u-erin", "erin", None, []),
    ]
    groups = [
        SourceGroup("g-eng", "eng", user_members=["u-alice"], group_members=["g-oncall"]),
        SourceGroup("g-oncall", "eng-oncall", user_members=["u-bob", "u-dan"]),
        SourceGroup("g-fin", "finance", user_members=["u-chloe", "u-yuki"]),
        SourceGroup("g-a", "cycle-a", user_members=["u-erin"], group_members=["g-b"]),
        SourceGroup("g-b", "cycle-b", user_members=["u-yuki"], group_members=["g-a"]),
    ]
    return Snapshot(users=users, groups=groups)


# The services take typed references; the tests name things as a user types them, and
# resolve them first, once, as the command line does.


def grant(ctx: Context, principal: str, target: str, role: Role | str, **options: Any) -> Change:
    return grants.grant(ctx, resolve.principal(ctx, principal), resolve.target(ctx, target), role, **options)


def revoke(ctx: Context, principal: str, target: str, **options: Any) -> Change:
    who = resolve.principal(ctx, principal, include_removed=True)
    return grants.revoke(ctx, who, resolve.target(ctx, target), **options)


def folder_grants(ctx: Context, target: str, **options: Any) -> list[GrantRow]:
    return grants.folder_grants(ctx, resolve.target(ctx, target), **options)


def who_can(ctx: Context, target: str, **options: Any) -> WhoCan:
    return access.who_can(ctx, resolve.target(ctx, target), **options)


def access_of(ctx: Context, user: str) -> tuple[str, list[TargetAccess]]:
    return access.access_of(ctx, resolve.user(ctx, user))


def preview_change(ctx: Context, principal: str, target: str, role: Role | None) -> Impact:
    return access.preview_change(ctx, resolve.principal(ctx, principal), resolve.target(ctx, target), role)


def list_members(ctx: Context, group: str, **options: Any) -> list[MemberRow]:
    return directory.list_members(ctx, resolve.group(ctx, group), **options)
