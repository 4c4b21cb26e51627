"""Shared fixtures: a real SQLite cache in a temporary directory, with a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.services.context import Actor, Context
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


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the real user's config and data directories."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in (
        "GROUPWARDEN_DB",
        "GROUPWARDEN_CONFIG",
        "GROUPWARDEN_READ_ONLY",
        "SSH_CLIENT",
        "SSH_CONNECTION",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


@pytest.fixture
def ctx(db_path: Path) -> Iterator[Context]:
    context = Context.open(str(db_path))
    context.actor = Actor("tester", "bastion", None)
    context.clock = StepClock()
    yield context
    context.close()


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


@pytest.fixture
def org(ctx: Context) -> Context:
    """ctx with the small organisation synced and a prod workspace with two folders."""
    from groupwarden.services.layout import add_folder, add_workspace

    sync_snapshot(ctx, org_snapshot())
    add_workspace(ctx, "prod", "Production")
    add_folder(ctx, "prod", "finance", "money")
    add_folder(ctx, "prod", "infra")
    return ctx
