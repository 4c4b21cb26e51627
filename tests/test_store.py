"""The SQLite store: owner-only file, WAL, foreign keys, migrations on start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

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


def test_models_match_the_migrations(ctx: Context) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from groupwarden.store.models import Base

    with ctx.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_audit_events_and_sync_runs_are_append_only(org: Context) -> None:
    from sqlalchemy.exc import DBAPIError

    from groupwarden.services.audit import record_run, role_changes
    from groupwarden.store.db import write_transaction
    from support import grant

    grant(org, "g/eng", "prod/finance", "writer")
    with write_transaction(org.engine) as conn:
        record_run(
            conn, source_name="corp", actor=org.actor, now=org.clock(), started_at=org.clock(), outcome="ok"
        )
    for statement in (
        "UPDATE audit_events SET after = 'admin'",
        "DELETE FROM audit_events",
        "UPDATE sync_runs SET outcome = 'ok'",
        "DELETE FROM sync_runs",
    ):
        with pytest.raises(DBAPIError, match="append-only"), org.engine.begin() as conn:
            conn.execute(text(statement))
    assert [e.after for e in role_changes(org)] == ["writer"]


def test_first_schema_is_upgraded_and_every_row_kept(db_url: str, backend: str) -> None:
    """A cache made by the first release (revision 0001), filled, then opened by this one."""
    from groupwarden.store.db import create_db_engine

    engine = create_db_engine(resolve_url(db_url))
    with engine.begin() as conn:
        # The template database is already at head; take it back to the first schema.
        if backend == "postgresql":
            from alembic import command

            from groupwarden.store.migrate import alembic_config

            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
    upgrade_to_head(engine, "0001")
    rows = {
        "sources": "INSERT INTO sources (id, name, kind, url) VALUES (1, 'corp', 'scim', 'https://idp')",
        "users": "INSERT INTO users (id, source_id, upstream_id, user_name, emails, active)"
        " VALUES (1, 1, 'u1', 'alice', 'a@corp.test', true)",
        "instance_groups": "INSERT INTO instance_groups (id, source_id, upstream_id, name)"
        " VALUES (1, 1, 'g1', 'eng')",
        "user_memberships": "INSERT INTO user_memberships (group_id, user_id) VALUES (1, 1)",
        "workspaces": "INSERT INTO workspaces (id, name) VALUES ('prod', 'Production')",
        "folders": "INSERT INTO folders (id, workspace_id, name, summary) VALUES (1, 'prod', 'finance', '')",
        "grants": "INSERT INTO grants (folder_id, item_path, principal_key, group_id, role, granted_by,"
        " granted_at, version) VALUES (1, '', 'g:1', 1, 'writer', 'root@host', '2026-01-01 10:00:00', 1)",
        "audit_events": "INSERT INTO audit_events (at, actor, actor_host, action, target, principal, after)"
        " VALUES ('2026-01-01 10:00:00', 'root', 'host', 'grant', 'prod/finance', 'g/eng', 'writer')",
        "sync_runs": "INSERT INTO sync_runs (source_name, actor, started_at, finished_at, outcome, diff)"
        " VALUES ('corp', 'root@host', '2026-01-01 09:00:00', '2026-01-01 09:01:00', 'ok', '{}')",
    }
    with engine.begin() as conn:
        for statement in rows.values():
            conn.execute(text(statement))
    engine.dispose()
    ctx = Context.open(db_url)
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
        for table in rows:
            assert conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() == 1, table
    from support import who_can

    assert [a.user_name for a in who_can(ctx, "prod/finance")] == ["alice"]
    ctx.close()


def test_unreachable_database_gives_one_clear_line_without_password() -> None:
    with pytest.raises(GroupwardenError) as info:
        open_engine("postgresql+psycopg://admin:hunter2@127.0.0.1:1/nothing?connect_timeout=2")
    message = str(info.value)
    assert "hunter2" not in message
    assert message.startswith("cannot open the database postgresql+psycopg://admin:***@127.0.0.1:1/nothing")
    assert "\n" not in message


def test_connection_errors_are_one_clear_line_without_the_password(backend: str, tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    from support import PG_SERVER

    if backend == "sqlite":
        (tmp_path / "not-a-dir.txt").write_text("x")
        urls = [f"sqlite:///{tmp_path}/not-a-dir.txt/cache.db", f"sqlite:///{tmp_path}/not-a-dir.txt/x/y.db"]
        secrets = ["no-password-here"]
    else:
        assert PG_SERVER
        good = make_url(PG_SERVER)
        secrets = ["wrong-pw-5b1e", str(good.password)]
        urls = [
            good.set(password=secrets[0]).render_as_string(hide_password=False),
            good.set(database="groupwarden_no_such_db").render_as_string(hide_password=False),
        ]
    for url in urls:
        with pytest.raises(GroupwardenError) as info:
            open_engine(url)
        message = str(info.value)
        assert message.startswith("cannot ")
        assert "\n" not in message
        assert not any(secret in message for secret in secrets)


def test_missing_database_driver_is_one_clear_line() -> None:
    with pytest.raises(GroupwardenError) as info:
        open_engine("mysql+pymysql://admin:hunter2@127.0.0.1/nothing")
    assert str(info.value) == (
        "cannot open the database mysql+pymysql://admin:***@127.0.0.1/nothing:"
        " its driver is not installed: pymysql"
    )
