"""Shared fixtures: a real cache with a fixed clock, on SQLite and, when
GROUPWARDEN_TEST_PG names a PostgreSQL server, on PostgreSQL too.

GROUPWARDEN_TEST_PG is a SQLAlchemy URL of a database the tests may connect to as a
user that can create databases (postgresql+psycopg://postgres@127.0.0.1:5432/postgres);
each test gets a fresh database copied from a migrated template.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from groupwarden.services.context import Actor, Context
from groupwarden.store.db import open_engine
from support import (
    BACKENDS,
    TEMPLATE,
    StepClock,
    drop_pg_database,
    new_pg_database,
    org_snapshot,
    pg_admin_url,
    sync_snapshot,
)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the real user's config and data directories."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in (
        "GROUPWARDEN_DB",
        "GROUPWARDEN_CONFIG",
        "GROUPWARDEN_READ_ONLY",
        "GROUPWARDEN_TRUST_DB_PERMISSIONS",
        "GROUPWARDEN_REQUEST_TIMEOUT",
        "GROUPWARDEN_SYNC_TIMEOUT",
        "GROUPWARDEN_PAGE_SIZE",
        "GROUPWARDEN_INSECURE",
        "GROUPWARDEN_CA_BUNDLE",
        "GROUPWARDEN_THEME",
        "GROUPWARDEN_MAX_DELETE_FRACTION",
        "GROUPWARDEN_MAX_DELETE_FLOOR",
        "SSH_CLIENT",
        "SSH_CONNECTION",
    ):
        monkeypatch.delenv(name, raising=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that touches the store runs once per backend that is available.
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS)


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


@pytest.fixture
def org(ctx: Context) -> Context:
    """ctx with the small organisation synced and a prod workspace with two folders."""
    from groupwarden.services.layout import add_folder, add_workspace

    sync_snapshot(ctx, org_snapshot())
    add_workspace(ctx, "prod", "Production")
    add_folder(ctx, "prod", "finance", "money")
    add_folder(ctx, "prod", "infra")
    return ctx
