"""Shared fixtures: a real cache with a fixed clock, on SQLite and, when
GROUPWARDEN_TEST_PG names a PostgreSQL server, on PostgreSQL too.

GROUPWARDEN_TEST_PG is a SQLAlchemy URL of a database the tests may connect to as a
user that can create databases (postgresql+psycopg://postgres@127.0.0.1:5432/postgres);
each test gets a fresh database copied from a migrated template.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.services.context import Actor, Context
from groupwarden.services.reconcile import DeletionGuard, SyncDiff, reconcile
from groupwarden.store.db import open_engine, write_transaction

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


PG_SERVER = os.environ.get("GROUPWARDEN_TEST_PG")
BACKENDS = ["sqlite", "postgresql"] if PG_SERVER else ["sqlite"]
TEMPLATE = "groupwarden_test_template"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that touches the store runs once per backend that is available.
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS)


def pg_admin_url(database: str = "postgres") -> str:
    assert PG_SERVER
    return make_url(PG_SERVER).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database to copy for each test: cheaper than migrating each time."""
    admin = create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE}"))
        conn.execute(text(f"CREATE DATABASE {TEMPLATE}"))
    engine = open_engine(pg_admin_url(TEMPLATE))
    engine.dispose()
    yield TEMPLATE
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE}"))
    admin.dispose()


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


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty, migrated cache: a SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield str(tmp_path / "cache.db")
        return
    name = new_pg_database(request.getfixturevalue("pg_template"))
    yield pg_admin_url(name)
    drop_pg_database(name)


@pytest.fixture
def ctx(db_url: str) -> Iterator[Context]:
    context = Context.open(db_url)
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
