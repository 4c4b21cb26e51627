"""Effective access queries: who can reach a target, and what a user can reach. Always with why."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import not_
from typing import TypeVar, overload

from sqlalchemy import Connection, Engine

from groupwarden.domain.access import (
    Effective,
    Grant,
    Nesting,
    Reason,
    effective_access,
    effective_access_each,
    expand_up,
)
from groupwarden.domain.errors import BadInput
from groupwarden.domain.refs import GroupRef, Principal, TargetRef, UserRef, WindmillPrincipal
from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from groupwarden.services.directory import Lookalikes
from groupwarden.store import access as store
from groupwarden.store import directory as directory_store
from groupwarden.store import grants as grants_store
from groupwarden.store import windmill as windmill_store
from groupwarden.store.access import USER_ACTIVE, USER_DISPLAY, USER_ID, USER_NAME, UserRow

T = TypeVar("T")

# Rows who_can() reads before it returns: a screen's first page. The rest load on demand.
PREFETCH = 200


class UserAccess:
    """One user's effective role on a target, and the reason for it.

    A slotted class rather than a frozen dataclass: a who-can answer holds tens of thousands
    of these, and a frozen dataclass costs three times as much to build.
    """

    __slots__ = (
        "active",
        "display_name",
        "explanation",
        "lookalike",
        "name_source",
        "note",
        "reason",
        "role",
        "user_id",
        "user_name",
        "windmill_user",
    )

    user_id: int
    user_name: str
    display_name: str | None
    active: bool
    role: Role
    reason: Reason
    explanation: str
    #: On a linked workspace: where the two memberships of a granted group disagree about
    #: this user ("in Windmill, not in the IdP (g/x)"); None on local workspaces.
    note: str | None
    #: "idp" when user_name is the IdP userName, "windmill" when it is the Windmill username
    #: (a Windmill user with no IdP identity).
    name_source: str
    #: The user's Windmill username on a linked workspace; None on local workspaces.
    windmill_user: str | None
    #: Why the userName reads like another one (directory.Lookalikes), or None.
    lookalike: str | None

    def __init__(
        self,
        user_id: int,
        user_name: str,
        display_name: str | None,
        active: bool,
        role: Role,
        reason: Reason,
        explanation: str | None = None,
        lookalike: str | None = None,
        *,
        note: str | None = None,
        name_source: str = "idp",
        windmill_user: str | None = None,
    ) -> None:
        self.user_id = user_id
        self.user_name = user_name
        self.display_name = display_name
        self.active = active
        self.role = role
        self.reason = reason
        # WhoCan passes the text it formatted once per reason; many users share a reason.
        self.explanation = reason.explain() if explanation is None else explanation
        self.note = note
        self.name_source = name_source
        self.windmill_user = windmill_user
        self.lookalike = lookalike

    def to_dict(self) -> dict[str, object]:
        return {
            "user_name": self.user_name,
            "display_name": self.display_name,
            "active": self.active,
            **reason_dict(self.reason),
            "lookalike": self.lookalike,
            # Only on a linked workspace, so local answers read as before.
            **(
                {"windmill_user": self.windmill_user, "note": self.note}
                if self.windmill_user is not None
                else {}
            ),
        }

    def _fields(self) -> tuple[int, str, str | None, bool, Role, Reason, str | None, str, str | None]:
        return (
            self.user_id,
            self.user_name,
            self.display_name,
            self.active,
            self.role,
            self.reason,
            self.note,
            self.name_source,
            self.windmill_user,
        )

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
            f" reason={self.reason!r}"
            + (
                ""
                if self.windmill_user is None
                else f", note={self.note!r}, windmill_user={self.windmill_user!r}"
            )
            + ")"
        )


@dataclass(frozen=True, slots=True)
class TargetAccess:
    target: str
    role: Role
    reason: Reason

    @property
    def explanation(self) -> str:
        return self.reason.explain()

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target, **reason_dict(self.reason)}


@dataclass(frozen=True, slots=True)
class UserReach:
    """Every target one user reaches, as `access` prints it."""

    user_name: str
    access: list[TargetAccess]
    lookalike: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "user_name": self.user_name,
            "lookalike": self.lookalike,
            "access": [a.to_dict() for a in self.access],
        }


def reason_dict(reason: Reason) -> dict[str, object]:
    """A role and the route that gave it, as who-can and access print them in JSON."""
    return {
        "role": reason.role.label,
        "explanation": reason.explain(),
        "via": reason.principal,
        "chain": [f"g/{n}" for n in reason.chain],
        "granted_on": reason.granted_on,
    }


@dataclass(frozen=True, slots=True)
class AnswerColumns:
    """A who-can answer column by column, in answer order (WhoCan.columns())."""

    user_names: list[str]
    #: None when columns() was not asked for them.
    display_names: list[str | None] | None
    active: list[bool]
    #: Each user's rank: WhoCan.why(rank) gives its role and reason, shared by many users.
    ranks: list[int]
    #: userName -> its look-alike mark (Lookalikes.note), for the marked names only.
    lookalikes: dict[str, str]


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
        self, engine: Engine, found: Effective, head: list[UserRow], counts_by_role: dict[Role, int]
    ) -> None:
        self._engine = engine
        self._found = found
        self._roles = found.roles
        # Filled per rank on first use: most ranks are never shown (a deep chain has thousands).
        self._reasons: list[Reason | None] = [None] * len(found)
        self._explanations: list[str] = [""] * len(found)
        self._ranks = found.best
        self._rows = head
        self._complete = len(head) >= len(self._ranks)
        self._lock = threading.Lock()
        self._marks: Lookalikes | None = None
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
        yield from self._stream(head)
        self.load_all()
        yield from self._stream(self._rows[len(head) :])

    def _stream(self, rows: list[UserRow]) -> Iterator[UserAccess]:
        roles, reasons, explanations, ranks = self._roles, self._reasons, self._explanations, self._ranks
        marks = self._lookalikes(list(map(USER_NAME, rows))) if rows else None
        for uid, name, display, active in rows:
            rank = ranks[uid]
            reason = reasons[rank]
            if reason is None:
                reason = self._reason(rank)
            assert marks is not None
            yield UserAccess(
                uid, name, display, bool(active), roles[rank], reason, explanations[rank], marks.user(name)
            )

    def _lookalikes(self, names: list[str]) -> Lookalikes:
        # A page's names are looked up alone; past that, every live userName is read once.
        if self._marks is not None:
            return self._marks
        with self._engine.connect() as conn:
            if len(names) <= PREFETCH:
                return Lookalikes.read(conn, groups=False, users=names)
            self._marks = Lookalikes.read(conn, groups=False)
        return self._marks

    def _reason(self, rank: int) -> Reason:
        reason = self._found.reason(rank)
        # Explanation before reason: a thread that sees the reason set finds its text too.
        self._explanations[rank] = reason.explain()
        self._reasons[rank] = reason
        return reason

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

    #: Whether columns() and why() read this answer; a linked workspace's rows carry
    #: Windmill fields of their own and are read as UserAccess.
    plain = True

    def columns(self, *, display_names: bool = True) -> AnswerColumns:
        """The whole answer column by column: what a printer of every row reads, without an
        object per row (the users are read as columns, and reordered in C loops)."""
        if self._complete:
            rows = self._rows
            names = list(map(USER_NAME, rows))
            shown = list(map(USER_DISPLAY, rows)) if display_names else None
            active = list(map(bool, map(USER_ACTIVE, rows)))
            ranks = list(map(self._ranks.__getitem__, map(USER_ID, rows)))
        else:
            # Read in one go, not through load_all(): the rows would be built only to be
            # taken apart again.
            with self._engine.connect() as conn:
                found = store.user_columns(conn, self._ranks, display_names=display_names)
            names, shown, active = found.user_names, found.display_names, found.active
            ranks = list(map(self._ranks.__getitem__, found.ids))
            if len(self.counts_by_role) > 1:
                picked = _by_role(ranks, self._roles)
                names, active, ranks = _pick(names, picked), _pick(active, picked), _pick(ranks, picked)
                shown = None if shown is None else _pick(shown, picked)
        return AnswerColumns(names, shown, active, ranks, self._lookalikes(names).marked("u", names))

    def why(self, rank: int) -> tuple[Role, Reason, str]:
        """The role, the reason and its explanation of the users of one rank."""
        reason = self._reasons[rank]
        if reason is None:
            reason = self._reason(rank)
        return self._roles[rank], reason, self._explanations[rank]

    def load_all(self) -> WhoCan:
        """Read every row not prefetched yet (one query); a no-op once done."""
        with self._lock:
            if self._complete:
                return self
            have = set(map(USER_ID, self._rows))
            with self._engine.connect() as conn:
                found = store.user_rows(conn, self._ranks)
            rest = list(compress(found, map(not_, map(have.__contains__, map(USER_ID, found)))))
            _in_answer_order(rest, self._ranks, self._roles, one_role=len(self.counts_by_role) == 1)
            # A new list, so an iteration over the old head is not disturbed.
            self._rows = self._rows + rest
            self._complete = True
            return self

    def _build(self, rows: list[UserRow]) -> list[UserAccess]:
        return list(self._stream(rows))


def who_can(
    ctx: Context, target: TargetRef, *, minimum: Role = Role.VIEWER, prefetch: int = PREFETCH
) -> WhoCan:
    """Every user with at least minimum on target, highest role first, then by userName
    (then by user id, for the same userName in two sources).

    The answer is a lazy sequence (see WhoCan): its first prefetch rows are read here, the
    others on first use. On a linked workspace the answer is Windmill's (services.windmill.access).
    """
    with ctx.engine.connect() as conn:
        link = windmill_store.workspace_link(conn, target.target.workspace)
        if link is not None:
            # Imported here: services.windmill.access builds on this module's types.
            from groupwarden.services.windmill import access as linked

            return linked.who_can(conn, link, target, minimum)
        found = _effective(conn, grants_store.live_grants_on(conn, target), minimum)
        counts: Counter[Role] = Counter()
        for rank, n in Counter(found.best.values()).items():
            counts[found.roles[rank]] += n
        counts_by_role = dict(sorted(counts.items(), reverse=True))
        head = _head(conn, found, counts_by_role, prefetch)
    return WhoCan(ctx.engine, found, head, counts_by_role)


def _effective(
    conn: Connection, grants: list[Grant], minimum: Role = Role.VIEWER, nesting: Nesting | None = None
) -> Effective:
    """The rule, on one target's live grants, reading the store through conn."""
    if nesting is None:
        nesting = _nesting(conn, grants)
    return effective_access(grants, nesting, store.StoreReads(conn), minimum)


def _nesting(conn: Connection, grants: list[Grant]) -> Nesting:
    # Without a grant to a group, nesting cannot matter: its edges are not read.
    return Nesting(directory_store.nested_children(conn) if any(g.group_id for g in grants) else {})


def _head(conn: Connection, found: Effective, counts: dict[Role, int], size: int) -> list[UserRow]:
    """The first rows of the answer, at least size of them, reading as few users as possible.

    The result is every user of the highest roles, then the first users (by name) of one
    more role: exactly the start of the full answer.
    """
    best, offered, roles = found.best, found.offered, found.roles
    if len(best) <= store.IN_LIST_LIMIT:
        return _in_answer_order(store.user_rows(conn, best), best, roles, one_role=len(counts) == 1)
    head: list[UserRow] = []
    for role in counts:
        need = size - len(head)
        if need <= 0:
            break
        ranks = {i for i, r in enumerate(roles) if r is role}
        if counts[role] > store.IN_LIST_LIMIT:
            head += store.first_users_by_name(conn, best, ranks, need)
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
        head += _in_answer_order(store.user_rows(conn, wanted), best, roles, one_role=True)
    return head


def _in_answer_order(
    rows: list[UserRow], ranks: Mapping[int, int], roles: list[Role], *, one_role: bool
) -> list[UserRow]:
    """Rows in id order, sorted: highest role first, then userName, then id (stable sorts)."""
    rows.sort(key=USER_NAME)
    if not one_role:
        rows[:] = map(rows.__getitem__, _by_role(list(map(ranks.__getitem__, map(USER_ID, rows))), roles))
    return rows


def _pick(column: list[T], positions: list[int]) -> list[T]:
    return list(map(column.__getitem__, positions))


def _by_role(ranks: list[int], roles: list[Role]) -> list[int]:
    """The positions of ranks (one per user), highest role first; within a role, in the order given."""
    # Sorted by a list of keys rather than a key function: the loops stay in C.
    order = [-int(role) for role in roles]
    keys = list(map(order.__getitem__, ranks))
    return sorted(range(len(keys)), key=keys.__getitem__)


class _OneUser:
    """domain.access.AccessReads for one user's own access: the names are read once, up front."""

    def __init__(self, user: UserRef, groups: Collection[int], group_names: Mapping[int, str]) -> None:
        self.user = user
        self.groups = set(groups)
        self.names = group_names
        self.own_name = {user.id: user.user_name}

    def group_names(self, ids: Collection[int]) -> Mapping[int, str]:
        return self.names

    def user_names(self, ids: Collection[int]) -> Mapping[int, str]:
        return self.own_name

    def members(self, group_ids: Collection[int]) -> Mapping[int, list[tuple[int]]]:
        return {g: [(self.user.id,)] for g in group_ids if g in self.groups}

    def removed_users(self, ids: Collection[int]) -> list[int]:
        return []


def access_of(ctx: Context, user: UserRef) -> tuple[str, list[TargetAccess]]:
    """Every folder (and item with grants of its own) a user reaches, with role and why; on
    linked workspaces, through the user's Windmill accounts (by email)."""
    from groupwarden.services.windmill import access as linked

    with ctx.engine.connect() as conn:
        on_windmill = linked.access_of(conn, user)
        direct = directory_store.live_groups_of_user(conn, user.id)
        children = directory_store.nested_children(conn)
        parents: dict[int, list[int]] = defaultdict(list)
        for parent, kids in children.items():
            for child in kids:
                parents[child].append(parent)
        above = set(expand_up(direct, parents))
        names = directory_store.group_names(conn, above)
        found = grants_store.live_grants_naming(conn, user.id, above)
    # Only the user's groups and those above them lead to the user: a shortest route from a
    # granted group passes through them alone, so the walks stay inside them. The children
    # keep their order, so that the walks choose between equal routes as who_can's do.
    nesting = Nesting({g: [c for c in children[g] if c in above] for g in above if g in children})
    reads = _OneUser(user, direct, names)
    on_folder: dict[str, list[Grant]] = defaultdict(list)
    on_item: dict[str, list[Grant]] = defaultdict(list)
    folder_of: dict[str, str] = {}
    for g in found:
        if g.item:
            on_item[g.item].append(g.grant)
            folder_of[g.item] = g.folder
        else:
            on_folder[g.folder].append(g.grant)
    # Items inherit from their folder: an item's answer includes the folder's grants.
    targets = dict(on_folder)
    for item, grants in on_item.items():
        targets[item] = grants + on_folder.get(folder_of[item], [])
    result = []
    for on, answer in effective_access_each(targets, nesting, reads).items():
        reason = answer.reason_of(user.id)
        if reason is not None:
            result.append(TargetAccess(on, reason.role, reason))
    result += on_windmill
    result.sort(key=lambda a: a.target)
    return user.user_name, result


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


def preview_change(
    ctx: Context, principal: Principal | WindmillPrincipal, target: TargetRef, new_role: Role | None
) -> Impact:
    """Effective access on target now, and as it would be with principal at new_role (None: revoked).

    A WindmillPrincipal on a linked target is previewed on Windmill's state.
    """
    if isinstance(principal, WindmillPrincipal):
        from groupwarden.services.windmill import access as linked

        with ctx.engine.connect() as conn:
            link = windmill_store.workspace_link(conn, target.target.workspace)
            if link is None:
                raise BadInput(
                    f"workspace {target.target.workspace} is not linked to Windmill;"
                    f" name {principal.owner} as the IdP names it"
                )
            return linked.preview_change(conn, link, principal, target, new_role)
    gid = principal.id if isinstance(principal, GroupRef) else None
    uid = principal.id if isinstance(principal, UserRef) else None
    on = str(target)
    with ctx.engine.connect() as conn:
        grants = grants_store.live_grants_on(conn, target)
        mine = [g for g in grants if g.group_id == gid and g.user_id == uid and g.granted_on == on]
        before_role = mine[0].role if mine else None
        changed = [g for g in grants if g not in mine]
        if new_role is not None:
            changed.append(Grant(gid, uid, new_role, on))
        nesting = _nesting(conn, grants + changed)
        old, new = _effective(conn, grants, nesting=nesting), _effective(conn, changed, nesting=nesting)
        old_roles, new_roles = old.roles, new.roles
        was = {u: old_roles[rank] for u, rank in old.best.items()}
        now = {u: new_roles[rank] for u, rank in new.best.items()}
        moved = {u for u in was.keys() | now.keys() if was.get(u) != now.get(u)}
        names = store.user_names(conn, moved)
    gained: list[tuple[str, Role | None, Role]] = []
    lost: list[tuple[str, Role, Role | None]] = []
    for u in moved:
        a, b = was.get(u), now.get(u)
        if b is not None and (a is None or b > a):
            gained.append((names[u], a, b))
        elif a is not None:
            lost.append((names[u], a, b))
    gained.sort()
    lost.sort(key=lambda change: change[0])  # by userName only, as before
    return Impact(principal.principal, on, before_role, new_role, gained, lost)
