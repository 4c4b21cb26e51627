"""The SQLite store: owner-only file, WAL, foreign keys, migrations on start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from groupwarden.domain.errors import GroupwardenError
from groupwarden.services.context import Context
from groupwarden.store.db import HEAD_REVISION, open_engine, resolve_url, safe_url
from groupwarden.store.migrate import script_head, upgrade_to_head


def test_head_constant_matches_the_newest_migration() -> None:
    assert script_head() == HEAD_REVISION


def test_new_database_is_owner_only_wal_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.db"
    engine = open_engine(resolve_url(str(path)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
    engine.dispose()


def test_bare_path_means_sqlite_and_urls_pass_through(tmp_path: Path) -> None:
    assert resolve_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_url("postgresql+psycopg://u:p@127.0.0.1/db") == "postgresql+psycopg://u:p@127.0.0.1/db"
    assert "p@" not in safe_url("postgresql+psycopg://u:secret@127.0.0.1/db")


def test_existing_database_is_upgraded_and_its_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade_to_head(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO workspaces (id, name) VALUES ('prod', 'Production')"))
    engine.dispose()
    ctx = Context.open(str(path))
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM workspaces")).scalar() == "Production"
    ctx.close()


def test_unreachable_database_gives_one_clear_line_without_password() -> None:
    with pytest.raises(GroupwardenError) as info:
        open_engine("postgresql+psycopg://admin:hunter2@127.0.0.1:1/nothing?connect_timeout=2")
    message = str(info.value)
    assert "hunter2" not in message
    assert message.startswith("cannot open the database postgresql+psycopg://admin:***@127.0.0.1:1/nothing")
    assert "\n" not in message
