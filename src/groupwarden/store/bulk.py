"""Bulk statements for the rows that come by the hundred thousand.

The ORM costs microseconds per row; a directory brings a million memberships. These
helpers go straight to the driver's executemany, in the dialect's own parameter style,
and they are the one place where SQLite and PostgreSQL differ for bulk work.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, bindparam, text


def _placeholders(conn: Connection, count: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT plain values (ints, strings, booleans, NULLs; no datetimes) in bulk."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        # COPY is several times faster than an executemany of INSERTs on PostgreSQL.
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_placeholders(conn, len(columns))})"
    conn.exec_driver_sql(sql, list(rows))


def delete_pairs(
    conn: Connection, table: str, columns: tuple[str, str], pairs: Sequence[tuple[int, int]]
) -> None:
    if not pairs:
        return
    if conn.dialect.name == "postgresql":
        firsts = [a for a, _b in pairs]
        seconds = [b for _a, b in pairs]
        conn.exec_driver_sql(
            f"DELETE FROM {table} WHERE ({columns[0]}, {columns[1]}) IN"
            " (SELECT * FROM unnest(%s::int[], %s::int[]))",
            (firsts, seconds),
        )
        return
    sql = f"DELETE FROM {table} WHERE {columns[0]} = ? AND {columns[1]} = ?"
    conn.exec_driver_sql(sql, list(pairs))


def allocate_ids(conn: Connection, table: str, count: int) -> list[int]:
    """Reserve count new primary keys for table, so rows can reference each other before insert."""
    if count == 0:
        return []
    if conn.dialect.name == "postgresql":
        result = conn.execute(
            text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :n)"),
            {"n": count},
        )
        return [row[0] for row in result]
    # SQLite: the write transaction holds the database lock, so max(id) cannot move under us.
    start = conn.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one()
    return list(range(start + 1, start + 1 + count))


def pair_keys(conn: Connection, sql: str, params: dict[str, Any]) -> set[int]:
    """Run a query returning (a, b) integer pairs; return them packed as a << 32 | b.

    Packed ints hash and compare several times faster than tuples, which matters when a
    re-sync compares a million memberships.
    """
    result = conn.execute(text(sql), params)
    return {a << 32 | b for a, b in result}


# Values bound per IN list: well under SQLite's limit on bound parameters.
CHUNK = 500


def select_in(
    conn: Connection, sql: str, values: Collection[Any], params: dict[str, Any] | None = None
) -> Iterator[Sequence[Any]]:
    """Rows of sql, whose `IN :values` is bound to values a chunk at a time."""
    ordered: Sequence[Any] = sorted(values)
    statement = text(sql).bindparams(bindparam("values", expanding=True))
    for start in range(0, len(ordered), CHUNK):
        yield from conn.execute(statement, {**(params or {}), "values": ordered[start : start + CHUNK]})


def id_lists(ids: Collection[int]) -> Iterator[str]:
    """The ids, sorted, as comma-separated literals CHUNK at a time, for `IN (...)` lists.

    Integers only, so inlining them is safe; it lets the hot paths use the driver's cursor
    directly, where select_in's bound lists go through SQLAlchemy.
    """
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        yield ", ".join(str(int(i)) for i in ordered[start : start + CHUNK])


# Pairs of ids (group, member) packed into one int, as pair_keys returns them: each id
# masked to 32 bits, so the negative ids of a dry run pack too.
PAIR_MASK = (1 << 32) - 1


def pack_pair(first: int, second: int) -> int:
    return (first & PAIR_MASK) << 32 | (second & PAIR_MASK)


def unpack_pairs(keys: Collection[int]) -> list[tuple[int, int]]:
    """Packed pairs of real (positive) ids back into tuples, for the bulk writes."""
    return [(k >> 32, k & PAIR_MASK) for k in keys]


# --- statements over long lists of keys ---------------------------------------------------------


def execute_in(
    conn: Connection, sql: str, values: Collection[Any], params: dict[str, Any] | None = None
) -> None:
    """Run a statement without rows (DELETE, UPDATE) whose `IN :values` is bound a chunk at a time."""
    ordered: Sequence[Any] = sorted(values)
    statement = text(sql).bindparams(bindparam("values", expanding=True))
    for start in range(0, len(ordered), CHUNK):
        conn.execute(statement, {**(params or {}), "values": ordered[start : start + CHUNK]})


def delete_keys(
    conn: Connection, table: str, columns: Sequence[str], keys: Sequence[tuple[Any, ...]]
) -> None:
    """DELETE the rows whose key columns hold each of keys (plain values), in one executemany."""
    if not keys:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    where = " AND ".join(f"{column} = {mark}" for column in columns)
    conn.exec_driver_sql(f"DELETE FROM {table} WHERE {where}", list(keys))


def mark(conn: Connection) -> str:
    """The driver's placeholder, for SQL run through fetch_rows()."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def fetch_rows(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Plain tuples from the driver's cursor; placeholders in sql must come from mark(conn).

    SQLAlchemy's rows cost about a microsecond each: the reads that bring thousands of
    rows on every screen (who-can, a user's access) go through here.
    """
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


# Pages SQLite may keep in memory while roomy_cache() holds (in KiB, as PRAGMA cache_size takes
# them when negative).
ROOMY_CACHE_KIB = 64 * 1024


@contextmanager
def roomy_cache(conn: Connection) -> Iterator[None]:
    """A larger SQLite page cache for the statements run inside: one write of a few hundred
    thousand rows.

    With SQLite's default of 2 MiB, a transaction that big spills dirty pages to the WAL
    before it commits, and writes many of them twice; measured, 30 % of the insert. The
    connection's own size comes back afterwards. PostgreSQL manages its buffers itself.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    size = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{ROOMY_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(size)}")
