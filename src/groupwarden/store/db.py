"""Opening the cache: URL resolution, SQLite settings, schema upgrade, write transactions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import NoSuchModuleError, OperationalError, SQLAlchemyError

from groupwarden.domain.errors import GroupwardenError

# The newest migration; checked on start without importing Alembic when already there.
HEAD_REVISION = "0004"
BUSY_TIMEOUT_MS = 10_000
# PostgreSQL writers wait on each other's row locks; a long sync may hold one for a while.
PG_LOCK_TIMEOUT_MS = 60_000


def default_db_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("groupwarden") / "groupwarden.db"


def resolve_url(value: str | None) -> str:
    """Return a SQLAlchemy URL from --db, GROUPWARDEN_DB or the default; a bare path is SQLite."""
    value = value or os.environ.get("GROUPWARDEN_DB") or str(default_db_path())
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def safe_url(url: str) -> str:
    """The URL as it may be shown: password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def _prepare_sqlite_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        # Created here, owner-only, before SQLite would create it with the umask's mode.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event emit BEGIN itself, so writers can ask for IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _on_sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_db_engine(url: str) -> Engine:
    """Create the engine for url, without touching the schema."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            _prepare_sqlite_file(Path(database))
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    connect_args = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["options"] = f"-c lock_timeout={PG_LOCK_TIMEOUT_MS}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def open_engine(url: str) -> Engine:
    """Open the cache at url, creating or upgrading its schema; one clear error on failure."""
    try:
        engine = create_db_engine(url)
    except OSError as exc:
        raise GroupwardenError(f"cannot create the database {safe_url(url)}: {exc.strerror}") from None
    except NoSuchModuleError:
        raise GroupwardenError(
            f"cannot open the database {safe_url(url)}: unknown kind of database"
            " (use a path, sqlite:///PATH or postgresql+psycopg://...)"
        ) from None
    except (SQLAlchemyError, ValueError):
        # Not the exception's text: SQLAlchemy quotes the whole URL, password included.
        raise GroupwardenError(
            f"cannot open the database {safe_url(url)}: not a valid database URL"
        ) from None
    except ImportError as exc:
        hint = " (install groupwarden[postgres])" if "psycopg" in str(exc) else ""
        raise GroupwardenError(
            f"cannot open the database {safe_url(url)}: its driver is not installed: {exc.name}{hint}"
        ) from None
    try:
        upgrade_schema(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise GroupwardenError(f"cannot open the database {safe_url(url)}: {_first_line(exc)}") from None
    return engine


def _first_line(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0] if str(orig or exc).strip() else type(exc).__name__


def current_revision(conn: Connection) -> str | None:
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, SQLAlchemyError):
        conn.rollback()
        return None


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to HEAD_REVISION; an older database is upgraded, never dropped."""
    with engine.connect() as conn:
        if current_revision(conn) == HEAD_REVISION:
            return
    from groupwarden.store.migrate import upgrade_to_head

    upgrade_to_head(engine)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction; on SQLite it takes the write lock at once (BEGIN IMMEDIATE),
    so two writers queue on the busy timeout instead of failing half way."""
    conn = engine.connect()
    try:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn
    except OperationalError as exc:
        text_of = str(exc).lower()
        if "locked" in text_of or "busy" in text_of or "lock timeout" in text_of:
            waited = BUSY_TIMEOUT_MS if engine.dialect.name == "sqlite" else PG_LOCK_TIMEOUT_MS
            raise GroupwardenError(
                "the database is busy: another groupwarden process held what this change needs"
                f" for more than {waited // 1000} s; nothing was changed, try again"
            ) from None
        raise GroupwardenError(
            f"writing to the database failed: {_first_line(exc)}; nothing was changed"
        ) from None
    finally:
        conn.close()


def lock_row(conn: Connection, table: str, row_id: int, *, share: bool = False) -> None:
    """Hold a row until the transaction ends, so checks made on it stay true until commit.

    SQLite needs nothing: a write transaction (BEGIN IMMEDIATE) already excludes every other
    writer. PostgreSQL runs writers side by side, so the row is locked explicitly.
    """
    if conn.dialect.name == "postgresql":
        mode = "FOR SHARE" if share else "FOR UPDATE"
        conn.execute(text(f"SELECT id FROM {table} WHERE id = :id {mode}"), {"id": row_id})


def lock_name(conn: Connection, name: str) -> None:
    """Serialise transactions that work on the same named thing (one source's sync, say)."""
    if conn.dialect.name == "postgresql":
        import zlib

        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())})


def refresh_statistics(engine: Engine, tables: tuple[str, ...]) -> None:
    """Bring the query planner's statistics up to date after a bulk change.

    SQLite plans well from its indexes alone here; PostgreSQL needs ANALYZE, which
    autovacuum would run only some time later.
    """
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text(f"ANALYZE {', '.join(tables)}"))
