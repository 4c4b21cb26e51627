"""Effective access queries: who can reach a target, and what a user can reach. Always with why."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any, overload

from sqlalchemy import Connection, Engine, text

from groupwarden.domain.access import Reason, best_reason, expand_down, expand_up
from groupwarden.domain.principals import Target
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.services.directory import (
    group_names,
    nested_children,
    nested_parents,
    resolve_user,
)
from groupwarden.services.layout import resolve_folder
from groupwarden.store import bulk

# Rows who_can() reads before it returns: a screen's first page. The rest load on demand.
PREFETCH = 200
# Above this many ids, one scan of the users table beats sending the ids in IN lists.
_IN_LIST_LIMIT = 2000


class UserAccess:
    """One user's effective role on a target, and the reason for it.

    A slotted class rather than a frozen dataclass: a who-can answer holds tens of thousands
    of these, and a frozen dataclass costs three times as much to build.
    """

    __slots__ = ("active", "display_name", "explanation", "reason", "role", "user_id", "user_name")

    user_id: int
    user_name: str
    display_name: str | None
    active: bool
    role: Role
    reason: Reason
    explanation: str

    def __init__(
        self,
        user_id: int,
        user_name: str,
        display_name: str | None,
        active: bool,
        role: Role,
        reason: Reason,
        explanation: str | None = None,
    ) -> None:
        self.user_id = user_id
        self.user_name = user_name
        self.display_name = display_name
        self.active = active
        self.role = role
        self.reason = reason
        # WhoCan passes the text it formatted once per reason; many users share a reason.
        self.explanation = reason.explain() if explanation is None else explanation

    def _fields(self) -> tuple[int, str, str | None, bool, Role, Reason]:
        return (self.user_id, self.user_name, self.display_name, self.active, self.role, self.reason)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserAccess):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"UserAccess(user_id={self.user_id!r}, user_name={self.user_name!r},"
            f" display_name={self.display_name!r}, active={self.active!r}, role={self.role!r},"
            f" reason={self.reason!r})"
        )


@dataclass(frozen=True, slots=True)
class TargetAccess:
    target: str
    role: Role
    reason: Reason

    @property
    def explanation(self) -> str:
        return self.reason.explain()


# (user id, userName, display name, active as the driver returns it): a row as it comes.
_UserRow = tuple[int, str, str | None, Any]


class WhoCan(Sequence[UserAccess]):
    """Every user with access to a target, highest role first, then by userName, with why.

    Rows are kept as plain tuples and become UserAccess objects only when read. who_can()
    returns with at least the first PREFETCH rows loaded; reading past them loads all the
    others in one query, through the engine who_can() was given (call load_all() in a
    worker to do that off the UI thread). Who is in the answer, with which role and why,
    and counts_by_role, are fixed when who_can() returns; only the rows past the prefetched
    ones read their names later, so a user renamed in between shows the new name (and may
    sort out of place).
    """

    def __init__(
        self,
        engine: Engine,
        reasons: list[Reason],
        ranks: dict[int, int],
        head: list[_UserRow],
        counts_by_role: dict[Role, int],
    ) -> None:
        self._engine = engine
        self._reasons = reasons
        self._roles = [r.role for r in reasons]
        self._explanations = [r.explain() for r in reasons]
        self._ranks = ranks
        self._rows = head
        self._complete = len(head) >= len(ranks)
        self._lock = threading.Lock()
        # Highest role first; only roles somebody holds.
        self.counts_by_role = counts_by_role

    def __len__(self) -> int:
        # Users are never deleted (a removed one keeps its row), so the rows loaded later
        # are exactly the ranked ones.
        return len(self._rows) if self._complete else len(self._ranks)

    @overload
    def __getitem__(self, index: int) -> UserAccess: ...

    @overload
    def __getitem__(self, index: slice) -> list[UserAccess]: ...

    def __getitem__(self, index: int | slice) -> UserAccess | list[UserAccess]:
        if isinstance(index, slice):
            wanted = range(len(self))[index]
            if wanted and max(wanted[0], wanted[-1]) >= len(self._rows):
                self.load_all()
            return self._build(self._rows[index])
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("WhoCan index out of range")
        if index >= len(self._rows):
            self.load_all()
        return self._build(self._rows[index : index + 1])[0]

    def __iter__(self) -> Iterator[UserAccess]:
        head = self._rows
        roles, reasons, explanations, ranks = self._roles, self._reasons, self._explanations, self._ranks
        for uid, name, display, active in head:
            rank = ranks[uid]
            yield UserAccess(uid, name, display, bool(active), roles[rank], reasons[rank], explanations[rank])
        self.load_all()
        for uid, name, display, active in self._rows[len(head) :]:
            rank = ranks[uid]
            yield UserAccess(uid, name, display, bool(active), roles[rank], reasons[rank], explanations[rank])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WhoCan | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        counts = ", ".join(f"{role}: {n}" for role, n in self.counts_by_role.items())
        return f"<WhoCan {len(self)} users ({counts or 'nobody'})>"

    @property
    def loaded(self) -> int:
        """How many rows are in memory: the prefetched ones until load_all()."""
        return len(self._rows)

    def load_all(self) -> WhoCan:
        """Read every row not prefetched yet (one query); a no-op once done."""
        with self._lock:
            if self._complete:
                return self
            have = {row[0] for row in self._rows}
            with self._engine.connect() as conn:
                found = _user_rows(conn, self._ranks)
            rest = [r for r in found if r[0] not in have]
            _in_answer_order(rest, self._ranks, self._roles, one_role=len(self.counts_by_role) == 1)
            # A new list, so an iteration over the old head is not disturbed.
            self._rows = self._rows + rest
            self._complete = True
            return self

    def _build(self, rows: list[_UserRow]) -> list[UserAccess]:
        roles, reasons, explanations, ranks = self._roles, self._reasons, self._explanations, self._ranks
        out = []
        for uid, name, display, active in rows:
            rank = ranks[uid]
            out.append(
                UserAccess(uid, name, display, bool(active), roles[rank], reasons[rank], explanations[rank])
            )
        return out


# (group_id, user_id, role, granted_on) of the live grants on a target and its folder.
_LiveGrant = tuple[int | None, int | None, Role, str]


def _live_grants(conn: Connection, folder_id: int, target: Target) -> list[_LiveGrant]:
    rows = conn.execute(
        text(
            "SELECT gr.group_id, gr.user_id, gr.role, gr.item_path FROM grants gr"
            " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
            " LEFT JOIN users u ON u.id = gr.user_id"
            " WHERE gr.folder_id = :f AND gr.item_path IN ('', :i)"
            " AND ig.removed_at IS NULL AND u.removed_at IS NULL"
        ),
        {"f": folder_id, "i": target.item_path},
    ).all()
    folder = str(target.folder_target)
    return [(r[0], r[1], Role.parse(r[2]), f"{target.workspace}/{r[3]}" if r[3] else folder) for r in rows]


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _fetch(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Plain tuples from the driver's cursor; placeholders in sql must come from _mark(conn).

    SQLAlchemy's rows cost about a microsecond each, and a who-can answer reads tens of
    thousands of them.
    """
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _ranked(
    conn: Connection, grants: list[_LiveGrant], minimum: Role = Role.VIEWER
) -> tuple[list[Reason], dict[int, int], dict[int, list[Collection[int]]]]:
    """Every reason the grants give, best first; user id -> the index of the user's best one;
    and for each index, the users it was offered to (best one or not, removed ones included).

    Reasons are few (one per grant and nested path) while users are many, so each user
    carries only the rank of its best reason. A reason below minimum cannot be any user's
    best one among those at or above it, so it is dropped before its members are read.
    """
    grants = [g for g in grants if g[2] >= minimum]
    direct_ids = sorted({g[1] for g in grants if g[1] is not None})
    user_names: dict[int, str] = {}
    if direct_ids:
        listed = ", ".join(str(int(u)) for u in direct_ids)
        user_names = dict(_fetch(conn, f"SELECT id, user_name FROM users WHERE id IN ({listed})"))
    # (reason, True for a user / False for a group, id) for every route a grant opens.
    offers: list[tuple[Reason, bool, int]] = []
    children = nested_children(conn) if any(g[0] is not None for g in grants) else {}
    expanded = [(g, role, on, expand_down([g], children)) for g, _user, role, on in grants if g is not None]
    # One query for every name: each is a round trip on a server.
    names = group_names(conn, {g for *_grant, paths in expanded for g in paths})
    for _group, user_id, role, granted_on in grants:
        if user_id is not None:
            offers.append((Reason(role, granted_on, f"u/{user_names[user_id]}"), True, user_id))
    for group_id, role, granted_on, paths in expanded:
        for sub, path in paths.items():
            chain = tuple(names[g] for g in path)
            offers.append((Reason(role, granted_on, f"g/{names[group_id]}", chain), False, sub))
    reasons = sorted({offer[0] for offer in offers}, key=Reason.sort_key)
    rank_of = {reason: i for i, reason in enumerate(reasons)}
    best_route: dict[tuple[bool, int], int] = {}
    for reason, is_user, ident in offers:
        rank = rank_of[reason]
        if rank < best_route.get((is_user, ident), len(reasons)):
            best_route[(is_user, ident)] = rank
    members = _members_of(conn, [ident for is_user, ident in best_route if not is_user])
    best: dict[int, int] = {}
    offered: dict[int, list[Collection[int]]] = defaultdict(list)
    # Worst route first: every better one overwrites, so each user ends with its best rank.
    for (is_user, ident), rank in sorted(best_route.items(), key=lambda item: -item[1]):
        if is_user:
            best[ident] = rank
            offered[rank].append((ident,))
        else:
            for part in members.get(ident, ()):
                best.update(dict.fromkeys(part, rank))
                offered[rank].append(part)
    if best and not all(is_user for is_user, _ident in best_route):
        # Direct grants to removed users are not live; removed members are dropped here.
        for uid in _removed_among(conn, best.keys()):
            best.pop(uid, None)
    return reasons, best, offered


def _members_of(conn: Connection, group_ids: list[int]) -> dict[int, list[list[int]]]:
    """group id -> its direct members' ids, in one or more runs."""
    out: dict[int, list[list[int]]] = defaultdict(list)
    if conn.dialect.name == "sqlite" or len(group_ids) <= 8:
        # A query per group reads one column per row, the cheapest for big groups; SQLite
        # has no round trip to save.
        query = f"SELECT user_id FROM user_memberships WHERE group_id = {_mark(conn)}"
        for group_id in group_ids:
            out[group_id].append(list(map(itemgetter(0), _fetch(conn, query, (group_id,)))))
        return out
    # On a server, many groups cost a round trip each: one query for all of them instead.
    listed = ", ".join(str(int(g)) for g in sorted(group_ids))
    rows = _fetch(conn, f"SELECT group_id, user_id FROM user_memberships WHERE group_id IN ({listed})")
    # Rows of one group mostly come together (the primary key leads with group_id), so a
    # run per group costs C loops rather than a Python step per membership.
    for group_id, run in groupby(rows, key=itemgetter(0)):
        out[group_id].append(list(map(itemgetter(1), run)))
    return out


def _removed_among(conn: Connection, ids: Collection[int]) -> list[int]:
    if len(ids) > _IN_LIST_LIMIT:
        return [r[0] for r in _fetch(conn, "SELECT id FROM users WHERE removed_at IS NOT NULL")]
    out: list[int] = []
    for listed in bulk.id_lists(ids):
        out += [
            r[0]
            for r in _fetch(conn, f"SELECT id FROM users WHERE id IN ({listed}) AND removed_at IS NOT NULL")
        ]
    return out


def effective_on(conn: Connection, grants: list[_LiveGrant]) -> dict[int, Reason]:
    """user id -> the best reason among grants, nested groups expanded."""
    reasons, best, _offered = _ranked(conn, grants)
    return {uid: reasons[rank] for uid, rank in best.items()}


def who_can(ctx: Context, target: str, *, minimum: Role = Role.VIEWER, prefetch: int = PREFETCH) -> WhoCan:
    """Every user with at least minimum on target, highest role first, then by userName
    (then by user id, for the same userName in two sources).

    The answer is a lazy sequence (see WhoCan): its first prefetch rows are read here, the
    others on first use.
    """
    where = Target.parse(target)
    with ctx.engine.connect() as conn:
        folder_id = resolve_folder(conn, where.folder_target)
        reasons, best, offered = _ranked(conn, _live_grants(conn, folder_id, where), minimum)
        counts: Counter[Role] = Counter()
        for rank, n in Counter(best.values()).items():
            counts[reasons[rank].role] += n
        counts_by_role = dict(sorted(counts.items(), reverse=True))
        head = _head(conn, best, offered, [r.role for r in reasons], counts_by_role, prefetch)
    return WhoCan(ctx.engine, reasons, best, head, counts_by_role)


def _head(
    conn: Connection,
    best: dict[int, int],
    offered: dict[int, list[Collection[int]]],
    roles: list[Role],
    counts: dict[Role, int],
    size: int,
) -> list[_UserRow]:
    """The first rows of the answer, at least size of them, reading as few users as possible.

    The result is every user of the highest roles, then the first users (by name) of one
    more role: exactly the start of the full answer.
    """
    if len(best) <= _IN_LIST_LIMIT:
        return _in_answer_order(_user_rows(conn, best), best, roles, one_role=len(counts) == 1)
    head: list[_UserRow] = []
    for role in counts:
        need = size - len(head)
        if need <= 0:
            break
        ranks = {i for i, r in enumerate(roles) if r is role}
        if counts[role] > _IN_LIST_LIMIT:
            head += _first_by_name(conn, best, ranks, need)
            continue
        if sum(len(part) for rank in ranks for part in offered.get(rank, ())) < len(best):
            wanted = {
                uid
                for rank in ranks
                for part in offered.get(rank, ())
                for uid in part
                if best.get(uid) in ranks
            }
        else:
            wanted = {uid for uid, rank in best.items() if rank in ranks}
        head += _in_answer_order(_user_rows(conn, wanted), best, roles, one_role=True)
    return head


def _first_by_name(conn: Connection, best: dict[int, int], ranks: set[int], need: int) -> list[_UserRow]:
    """The first need users (by userName, then id) whose best rank is in ranks.

    Walks the users in name order, which the index on user_name gives without a sort, so a
    role held by tens of thousands costs a few hundred rows rather than all of them.
    """
    # Python orders str by code point; so do SQLite's default collation and PostgreSQL's "C".
    collate = "" if conn.dialect.name == "sqlite" else ' COLLATE "C"'
    mark = _mark(conn)
    sql = (
        "SELECT id, user_name, display_name, active FROM users"
        f" ORDER BY user_name{collate}, id LIMIT {mark} OFFSET {mark}"
    )
    found: list[_UserRow] = []
    offset, chunk = 0, max(need * 4, 500)
    while True:
        rows = _fetch(conn, sql, (chunk, offset))
        for row in rows:
            rank = best.get(row[0])
            if rank is not None and rank in ranks:
                found.append(row)
                if len(found) >= need:
                    return found
        if len(rows) < chunk:
            return found
        offset += chunk
        # Growing chunks keep a sparse role from costing a query per few rows.
        chunk *= 2


def _in_answer_order(
    rows: list[_UserRow], ranks: Mapping[int, int], roles: list[Role], *, one_role: bool
) -> list[_UserRow]:
    """Rows in id order, sorted: highest role first, then userName, then id (stable sorts)."""
    rows.sort(key=itemgetter(1))
    if not one_role:
        order = [-int(role) for role in roles]
        rows.sort(key=lambda row: order[ranks[row[0]]])
    return rows


def _user_rows(conn: Connection, wanted: Collection[int]) -> list[_UserRow]:
    """(id, userName, display name, active) of each user in wanted, by id."""
    columns = "SELECT id, user_name, display_name, active FROM users"
    if len(wanted) > _IN_LIST_LIMIT:
        # Cheaper to scan every user once than to send tens of thousands of ids.
        return [row for row in _fetch(conn, f"{columns} ORDER BY id") if row[0] in wanted]
    out: list[_UserRow] = []
    for listed in bulk.id_lists(wanted):
        out += _fetch(conn, f"{columns} WHERE id IN ({listed}) ORDER BY id")
    return out


def access_of(ctx: Context, user: str) -> tuple[str, list[TargetAccess]]:
    """Every folder (and item with grants of its own) a user reaches, with role and why."""
    with ctx.engine.connect() as conn:
        ref = resolve_user(conn, user)
        direct = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT m.group_id FROM user_memberships m JOIN instance_groups g"
                    " ON g.id = m.group_id WHERE m.user_id = :u AND g.removed_at IS NULL"
                ),
                {"u": ref.id},
            )
        ]
        paths = expand_up(direct, nested_parents(conn))
        names = group_names(conn, set(paths))
        group_list = ", ".join(str(int(g)) for g in paths) or "NULL"
        rows = conn.execute(
            text(
                "SELECT gr.group_id, gr.user_id, gr.role, f.workspace_id, f.name, gr.item_path"
                " FROM grants gr JOIN folders f ON f.id = gr.folder_id"
                " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
                f" WHERE (gr.user_id = :u OR gr.group_id IN ({group_list}))"
                " AND ig.removed_at IS NULL"
            ),
            {"u": ref.id},
        ).all()
    reasons: dict[str, list[Reason]] = defaultdict(list)
    for group_id, user_id, role_text, workspace, folder, item in rows:
        role = Role.parse(role_text)
        on = f"{workspace}/{item}" if item else f"{workspace}/{folder}"
        if user_id is not None:
            reason = Reason(role, on, ref.principal)
        else:
            chain = tuple(names[g] for g in paths[group_id])
            reason = Reason(role, on, f"g/{names[group_id]}", chain)
        reasons[on].append(reason)
    # Items inherit from their folder: an item's answer includes the folder's reasons.
    for on in list(reasons):
        parts = on.split("/")
        if len(parts) > 2 and parts[1] == "f":
            reasons[on] = reasons[on] + reasons.get(f"{parts[0]}/{parts[2]}", [])
    result = [TargetAccess(on, best_reason(rs).role, best_reason(rs)) for on, rs in reasons.items() if rs]
    result.sort(key=lambda a: a.target)
    return ref.user_name, result


@dataclass(frozen=True, slots=True)
class Impact:
    """What a grant change would do to effective access, before it is made."""

    principal: str
    target: str
    before: Role | None
    after: Role | None
    # (userName, role before, role after) for every user whose effective role moves.
    gained: list[tuple[str, Role | None, Role]]
    lost: list[tuple[str, Role, Role | None]]

    def summary(self) -> str:
        from groupwarden.domain.roles import role_label

        head = f"{self.principal}: {role_label(self.before)} -> {role_label(self.after)} on {self.target}"
        if not self.gained and not self.lost:
            return f"{head}; no user's effective access changes"
        parts = []
        if self.gained:
            verb = role_label(self.after)
            parts.append(f"{len(self.gained)} user{'s' if len(self.gained) != 1 else ''} gain {verb}")
        if self.lost:
            parts.append(
                f"{len(self.lost)} user{'s' if len(self.lost) != 1 else ''} lose access or drop a role"
            )
        return f"{head}, {', '.join(parts)}"


def preview_change(ctx: Context, principal: str, target: str, new_role: Role | None) -> Impact:
    """Effective access on target now, and as it would be with principal at new_role (None: revoked)."""
    from groupwarden.domain.principals import PrincipalRef
    from groupwarden.services.directory import resolve_group

    where = Target.parse(target)
    ref = PrincipalRef.parse(principal)
    with ctx.engine.connect() as conn:
        folder_id = resolve_folder(conn, where.folder_target)
        if ref.kind == "g":
            group = resolve_group(conn, ref.name)
            gid, uid, label = group.id, None, group.principal
        else:
            user = resolve_user(conn, ref.name)
            gid, uid, label = None, user.id, user.principal
        on = str(where)
        grants = _live_grants(conn, folder_id, where)
        before_role = next((g[2] for g in grants if g[0] == gid and g[1] == uid and g[3] == on), None)
        changed = [g for g in grants if not (g[0] == gid and g[1] == uid and g[3] == on)]
        if new_role is not None:
            changed.append((gid, uid, new_role, on))
        old = effective_on(conn, grants)
        new = effective_on(conn, changed)
        moved = {
            u
            for u in old.keys() | new.keys()
            if (old[u].role if u in old else None) != (new[u].role if u in new else None)
        }
        names = {r[0]: r[1] for r in _user_rows(conn, moved)}
    gained: list[tuple[str, Role | None, Role]] = []
    lost: list[tuple[str, Role, Role | None]] = []
    for u in moved:
        a = old[u].role if u in old else None
        b = new[u].role if u in new else None
        if b is not None and (a is None or b > a):
            gained.append((names[u], a, b))
        elif a is not None:
            lost.append((names[u], a, b))
    gained.sort()
    lost.sort(key=lambda t: t[0])
    return Impact(label, on, before_role, new_role, gained, lost)
