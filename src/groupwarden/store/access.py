"""The reads behind effective access: users and memberships, by the ten thousand.

who-can reads tens of thousands of rows, and SQLAlchemy's rows cost about a microsecond
each, so these go through the driver's cursor (bulk.fetch_rows) and come back as plain
tuples of a known shape (UserRow).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Container, Mapping
from dataclasses import dataclass
from itertools import compress, groupby, islice
from operator import eq, itemgetter, le
from typing import Any

from sqlalchemy import Connection

from groupwarden.store import bulk
from groupwarden.store.directory import group_names

# Above this many ids, they go to the database as one parameter rather than in IN lists.
IN_LIST_LIMIT = 2000
# Up to this many groups, members_of reads them a query each (see there).
GROUPS_ONE_BY_ONE = 8
GROUPS_ONE_BY_ONE_SQLITE = 1000

# (id, userName, display name, active as the driver returns it): a users row as it comes.
# A plain tuple, not a NamedTuple: building one costs a Python call per row.
UserRow = tuple[int, str, str | None, Any]
USER_ID = itemgetter(0)
USER_NAME = itemgetter(1)
USER_DISPLAY = itemgetter(2)
USER_ACTIVE = itemgetter(3)

_USER_COLUMNS = "SELECT id, user_name, display_name, active FROM users"


def user_rows(conn: Connection, wanted: Collection[int]) -> list[UserRow]:
    """The UserRow of each user in wanted, by id."""
    if len(wanted) > IN_LIST_LIMIT:
        # Tens of thousands of ids go as one parameter, looked up by primary key: about half
        # the cost of reading every user (the table's rows are wide) when half are wanted.
        ids = sorted(wanted)
        if conn.dialect.name == "sqlite":
            sql = f"{_USER_COLUMNS} WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id"
            return bulk.fetch_rows(conn, sql, (json.dumps(ids),))
        return bulk.fetch_rows(conn, f"{_USER_COLUMNS} WHERE id = ANY(%s) ORDER BY id", (ids,))
    out: list[UserRow] = []
    for listed in bulk.id_lists(wanted):
        out += bulk.fetch_rows(conn, f"{_USER_COLUMNS} WHERE id IN ({listed}) ORDER BY id")
    return out


@dataclass(frozen=True, slots=True)
class UserColumns:
    """Users column by column, ordered by userName, then id (user_columns())."""

    ids: list[int]
    user_names: list[str]
    #: None when user_columns() was not asked for them.
    display_names: list[str | None] | None
    active: list[bool]


def user_columns(conn: Connection, wanted: Collection[int], *, display_names: bool) -> UserColumns:
    """The users in wanted, column by column, by userName then id: what a printer of tens of
    thousands of users reads, without a row object per user."""
    ids = sorted(wanted)
    # Each column comes over as one array (JSON text on SQLite), decoded in C: a row per user
    # costs more than the lookups themselves.
    param: str | list[int]
    if conn.dialect.name == "sqlite":
        agg, among, param = "json_group_array", "IN (SELECT value FROM json_each(?))", json.dumps(ids)
    else:
        agg, among, param = "array_agg", "= ANY(%s)", ids
    display = f"{agg}(display_name)" if display_names else "NULL"
    found = bulk.fetch_rows(
        conn,
        f"SELECT {agg}(id), {agg}(user_name), {display}, {agg}(active) FROM (SELECT id, user_name,"
        f" display_name, active FROM users WHERE id {among} ORDER BY user_name, id) AS chosen",
        (param,),
    )[0]
    out = UserColumns(
        _array(found[0]),
        _array(found[1]),
        _array(found[2]) if display_names else None,
        list(map(bool, _array(found[3]))),
    )
    return out if _in_name_order(out) else _sorted_by_name(out)


def _array(found: str | list[Any] | None) -> list[Any]:
    """An aggregated array as the driver hands it: JSON text (SQLite), a list, or NULL for none."""
    if isinstance(found, str):
        values: list[Any] = json.loads(found)
        return values
    return found or []


def _in_name_order(found: UserColumns) -> bool:
    # Both databases keep a subquery's order through the aggregate, but neither promises it.
    names, ids = found.user_names, found.ids
    if not all(map(le, names, islice(names, 1, None))):
        return False
    # The same userName in two sources: by id.
    ties = compress(range(len(names) - 1), map(eq, names, islice(names, 1, None)))
    return all(ids[i] < ids[i + 1] for i in ties)


def _sorted_by_name(found: UserColumns) -> UserColumns:
    order = sorted(range(len(found.ids)), key=lambda i: (found.user_names[i], found.ids[i]))
    shown = found.display_names
    return UserColumns(
        [found.ids[i] for i in order],
        [found.user_names[i] for i in order],
        None if shown is None else [shown[i] for i in order],
        [found.active[i] for i in order],
    )


def first_users_by_name(
    conn: Connection, ranks: Mapping[int, int], keep: Container[int], need: int
) -> list[UserRow]:
    """The first need users (by userName, then id) whose rank in ranks is one of keep.

    Walks the users in name order, which the index on user_name gives without a sort, so a
    role held by tens of thousands costs a few hundred rows rather than all of them.
    """
    # Python orders str by code point; so do SQLite's default collation and users.user_name's
    # "C" on PostgreSQL (migration 0005), whose index then serves this order.
    mark = bulk.mark(conn)
    sql = f"{_USER_COLUMNS} ORDER BY user_name, id LIMIT {mark} OFFSET {mark}"
    found: list[UserRow] = []
    offset, chunk = 0, max(need * 4, 500)
    while True:
        rows = bulk.fetch_rows(conn, sql, (chunk, offset))
        for row in rows:
            rank = ranks.get(row[0])
            if rank is not None and rank in keep:
                found.append(row)
                if len(found) >= need:
                    return found
        if len(rows) < chunk:
            return found
        offset += chunk
        # Growing chunks keep a sparse role from costing a query per few rows.
        chunk *= 2


def user_names(conn: Connection, ids: Collection[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for listed in bulk.id_lists(ids):
        out.update(bulk.fetch_rows(conn, f"SELECT id, user_name FROM users WHERE id IN ({listed})"))
    return out


def members_of(conn: Connection, group_ids: Collection[int]) -> dict[int, list[list[int]]]:
    """group id -> its direct members' ids, in one or more runs."""
    out: dict[int, list[list[int]]] = defaultdict(list)
    sqlite = conn.dialect.name == "sqlite"
    # Each group's members come as one array (JSON on SQLite), decoded in C: half the cost
    # of a row per member.
    members = "json_group_array(user_id)" if sqlite else "array_agg(user_id)"
    if len(group_ids) <= (GROUPS_ONE_BY_ONE_SQLITE if sqlite else GROUPS_ONE_BY_ONE):
        # A query per group is the cheapest for big groups; SQLite has no round trip to
        # save, until there are thousands of groups (a deep chain).
        query = f"SELECT {members} FROM user_memberships WHERE group_id = {bulk.mark(conn)}"
        for group_id in group_ids:
            out[group_id].append(_array(bulk.fetch_rows(conn, query, (group_id,))[0][0]))
        return out
    # On a server, many groups cost a round trip each: one query per chunk of them instead.
    for listed in bulk.id_lists(group_ids):
        among = f"FROM user_memberships WHERE group_id IN ({listed})"
        if not sqlite:
            for group_id, found in bulk.fetch_rows(
                conn, f"SELECT group_id, {members} {among} GROUP BY group_id"
            ):
                out[group_id].append(_array(found))
            continue
        # Thousands of groups are mostly small ones (a deep chain): a JSON text to decode
        # for each would cost more than their rows.
        rows = bulk.fetch_rows(conn, f"SELECT group_id, user_id {among}")
        # Rows of one group come together (the primary key leads with group_id), so a run
        # per group costs C loops rather than a Python step per membership.
        for group_id, run in groupby(rows, key=itemgetter(0)):
            out[group_id].append(list(map(itemgetter(1), run)))
    return out


def removed_among(conn: Connection, ids: Collection[int]) -> list[int]:
    if len(ids) > IN_LIST_LIMIT:
        return [r[0] for r in bulk.fetch_rows(conn, "SELECT id FROM users WHERE removed_at IS NOT NULL")]
    out: list[int] = []
    for listed in bulk.id_lists(ids):
        out += map(
            USER_ID,
            bulk.fetch_rows(conn, f"SELECT id FROM users WHERE id IN ({listed}) AND removed_at IS NOT NULL"),
        )
    return out


class StoreReads:
    """domain.access.AccessReads on a connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def group_names(self, ids: Collection[int]) -> Mapping[int, str]:
        return group_names(self.conn, ids)

    def user_names(self, ids: Collection[int]) -> Mapping[int, str]:
        return user_names(self.conn, ids) if ids else {}

    def members(self, group_ids: Collection[int]) -> Mapping[int, list[list[int]]]:
        return members_of(self.conn, group_ids)

    def removed_users(self, ids: Collection[int]) -> list[int]:
        return removed_among(self.conn, ids)
