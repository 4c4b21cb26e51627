"""Opening the cache: URL resolution, SQLite settings and safety, schema upgrade, write transactions.

The store reads no environment variable: the settings (groupwarden.config) hand it the URL.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import NoSuchModuleError, OperationalError, SQLAlchemyError

from groupwarden.domain.errors import BadInput, GroupwardenError, Hint, Remedy

# The newest migration; checked on start without importing Alembic when already there.
HEAD_REVISION = "0005"
BUSY_TIMEOUT_MS = 10_000
# PostgreSQL writers wait on each other's row locks; a long sync may hold one for a while.
PG_LOCK_TIMEOUT_MS = 60_000


def resolve_url(value: str) -> str:
    """A SQLAlchemy URL from a URL or a bare path (SQLite); settings decide which one, not the store."""
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


def check_sqlite_permissions(path: Path) -> None:
    """Refuse a database file, or its folder, that another user could write or replace.

    Whoever can write the file (or swap it, or plant a -wal file beside it) decides what the
    audit shows and who gets access. Root is trusted: it can do all of that anyway.
    """
    me = os.getuid()
    for what, target in (("folder", path.parent), ("file", path)):
        try:
            st = target.stat()
        except FileNotFoundError:
            continue
        if st.st_uid not in (me, 0):
            raise GroupwardenError(
                f"the database {what} {target} belongs to another user (uid {st.st_uid});"
                f" run `chown {me} {target}` if it is yours, or use a database of your own",
                hint=Hint(Remedy.TRUST_DB_PERMISSIONS, str(target)),
            )
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            fix = f"chmod 600 {target}" if what == "file" else f"chmod go-w {target}"
            raise GroupwardenError(
                f"the database {what} {target} can be written by others"
                f" (mode {stat.S_IMODE(st.st_mode):o}); run `{fix}`",
                hint=Hint(Remedy.TRUST_DB_PERMISSIONS, str(target)),
            )


def _sqlite_path(parsed: URL) -> Path | None:
    """The file behind a SQLite URL; None for memory and URI (file:) databases."""
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _read_only_url(path: Path) -> URL:
    # A folder we cannot write holds no -shm file we could create, and SQLite cannot read a
    # WAL database without one; immutable skips it. Only when no -wal holds changes: those
    # belong to a writer still at work, whose pages immutable would ignore.
    wal = path.with_name(path.name + "-wal")
    immutable = not os.access(path.parent, os.W_OK) and not (wal.exists() and wal.stat().st_size > 0)
    query = {"mode": "ro", "uri": "true", **({"immutable": "1"} if immutable else {})}
    return URL.create("sqlite", database=f"file:{quote(str(path))}", query=query)


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event emit BEGIN itself, so writers can ask for IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _on_sqlite_connect_read_only(dbapi_conn: Any, _record: Any) -> None:
    # No journal_mode switch: that is a write, and the file may not be writable.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _on_sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_db_engine(url: str, *, read_only: bool = False, trust_permissions: bool = False) -> Engine:
    """Create the engine for url, without touching the schema.

    read_only opens a SQLite file read-only, creating nothing: no folder, no file, no WAL
    switch. A SQLite file or folder others could write is refused unless trust_permissions.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        on_connect = _on_sqlite_connect
        if path is not None:
            if read_only and not path.exists():
                raise BadInput(
                    f"the database {path} does not exist; a read-only session creates nothing",
                    hint=Hint(Remedy.OPEN_WRITABLE),
                )
            if not trust_permissions:
                check_sqlite_permissions(path)
            if read_only:
                parsed, on_connect = _read_only_url(path), _on_sqlite_connect_read_only
            else:
                _prepare_sqlite_file(path)
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    connect_args = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["options"] = f"-c lock_timeout={PG_LOCK_TIMEOUT_MS}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def open_engine(url: str, *, read_only: bool = False, trust_permissions: bool = False) -> Engine:
    """Open the cache at url, creating or upgrading its schema; one clear error on failure.

    A read-only session never migrates: a schema that is behind is refused, with the remedy.
    """
    try:
        engine = create_db_engine(url, read_only=read_only, trust_permissions=trust_permissions)
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
        if read_only:
            check_schema(engine, safe_url(url))
        else:
            upgrade_schema(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise GroupwardenError(f"cannot open the database {safe_url(url)}: {_first_line(exc)}") from None
    except GroupwardenError:
        engine.dispose()
        raise
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


def check_schema(engine: Engine, shown: str) -> None:
    """A read-only session's check: the schema must already be this version's."""
    with engine.connect() as conn:
        # Asked first, so that a database that cannot be read at all says so.
        known = inspect(conn).has_table("alembic_version")
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if known else None
    if revision != HEAD_REVISION:
        state = "has no groupwarden schema" if revision is None else f"has schema {revision}"
        raise GroupwardenError(
            f"the database {shown} {state} and this version needs {HEAD_REVISION};"
            " a read-only session cannot migrate it",
            hint=Hint(Remedy.MIGRATE),
        )


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
