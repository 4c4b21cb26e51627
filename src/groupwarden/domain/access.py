"""Effective access: the highest role a user holds on a target, and why.

A user's role on a target is the highest among grants to the user and to every group
the user belongs to, nested groups expanded transitively, on the target and on the
folder it inherits from. Each answer keeps the chain that produced it.

effective_access() is the one implementation of that rule: who-can, a user's access,
the admins of every folder and the impact preview all ask it, through AccessReads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple, Protocol

from groupwarden.domain.roles import Role


@dataclass(frozen=True, slots=True)
class Reason:
    """One route to a role: a grant, and the group chain from the grantee down to the user.

    chain is empty for a grant made to the user directly; otherwise chain[0] is the
    granted group and chain[-1] the group the user is a direct member of.
    """

    role: Role
    granted_on: str
    principal: str
    chain: tuple[str, ...] = ()

    def explain(self) -> str:
        if not self.chain:
            return f"{self.role} via {self.principal} (direct grant), granted on {self.granted_on}"
        groups = " ⊃ ".join(f"g/{name}" for name in self.chain)
        return f"{self.role} via {groups}, granted on {self.granted_on}"

    def sort_key(self) -> tuple[int, int, int, str]:
        # Highest role first, then the most direct route, then a stable order.
        return (-int(self.role), len(self.chain), _on_folder(self.granted_on), self.explain())


def _on_folder(granted_on: str) -> int:
    """0 for a grant on an item (WS/f/FOLDER/ITEM), 1 for one on a folder: items come first."""
    return 0 if granted_on.count("/") > 1 else 1


def best_reason(reasons: Iterable[Reason]) -> Reason:
    return min(reasons, key=Reason.sort_key)


class Paths:
    """The groups a breadth-first walk reached, each with its shortest path, kept as one step.

    A whole path tuple per group would cost its depth, so a chain of N nested groups would
    cost N² to walk; a step costs one entry, and a path is built only when asked for.
    """

    __slots__ = ("_down", "_step", "depth")

    def __init__(self, step: dict[int, int], depth: dict[int, int], *, down: bool) -> None:
        self._step = step
        self._down = down
        # Steps from the start of the walk: 0 for a start itself.
        self.depth = depth

    def __contains__(self, group: object) -> bool:
        return group in self._step

    def __iter__(self) -> Iterator[int]:
        return iter(self._step)

    def __len__(self) -> int:
        return len(self._step)

    def path(self, group: int) -> tuple[int, ...]:
        """expand_down: (root, ..., group); expand_up: (group, ..., start)."""
        out = [group]
        step = self._step
        while (nxt := step[group]) != group:
            out.append(nxt)
            group = nxt
        if self._down:
            out.reverse()
        return tuple(out)


def _walk(starts: Iterable[int], edges: Mapping[int, Iterable[int]], *, down: bool) -> Paths:
    if isinstance(starts, list) and len(starts) == 1 and not edges.get(starts[0]):
        # A group with nothing nested in it, the most common case: no queue needed.
        return Paths({starts[0]: starts[0]}, {starts[0]: 0}, down=down)
    step: dict[int, int] = {}
    depth: dict[int, int] = {}
    queue: deque[int] = deque()
    for start in starts:
        if start not in step:
            step[start] = start
            depth[start] = 0
            queue.append(start)
    while queue:
        current = queue.popleft()
        below = depth[current] + 1
        for nxt in edges.get(current, ()):
            if nxt not in step:
                step[nxt] = current
                depth[nxt] = below
                queue.append(nxt)
    return Paths(step, depth, down=down)


def expand_down(roots: Iterable[int], children: Mapping[int, Iterable[int]]) -> Paths:
    """Every group reachable from roots through nested membership, with its shortest path.

    children maps a group to the groups nested directly inside it. A root's path is (root,).
    Cycles are tolerated: each group is visited once.
    """
    return _walk(roots, children, down=True)


def expand_up(starts: Iterable[int], parents: Mapping[int, Iterable[int]]) -> Paths:
    """Every group that contains one of starts, directly or through nesting.

    parents maps a group to the groups it is directly nested in. Each result's path is the
    chain from that ancestor down to the start group it reaches: (ancestor, ..., start).
    """
    return _walk(starts, parents, down=False)


def reach_within(root: int, children: Mapping[int, Iterable[int]], limit: int) -> set[int] | None:
    """The groups root reaches (itself included) if they are at most limit, else None.

    It stops as soon as the limit is passed, so asking it of every group of a long chain
    costs limit steps each, not the chain's length.
    """
    seen = {root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                if len(seen) > limit:
                    return None
                stack.append(child)
    return seen


class Nesting:
    """Which groups sit directly inside which, and the walks down from each granted group.

    A walk is kept once made: the admins of every folder expand one group many times.
    """

    def __init__(self, children: Mapping[int, Sequence[int]]) -> None:
        self.children = children
        self._below: dict[int, Paths] = {}

    def below(self, group: int) -> Paths:
        paths = self._below.get(group)
        if paths is None:
            paths = self._below[group] = expand_down([group], self.children)
        return paths


class Grant(NamedTuple):
    """A live grant on a target or on the folder it inherits from; exactly one of the ids is set."""

    group_id: int | None
    user_id: int | None
    role: Role
    granted_on: str


class AccessReads(Protocol):
    """What the rule reads from the store."""

    def group_names(self, ids: Collection[int]) -> Mapping[int, str]: ...

    def user_names(self, ids: Collection[int]) -> Mapping[int, str]: ...

    def members(self, group_ids: Collection[int]) -> Mapping[int, Iterable[Collection[int]]]:
        """group id -> the ids of its direct user members (removed ones too), in one or more runs."""
        ...

    def removed_users(self, ids: Collection[int]) -> Iterable[int]: ...


# (-role, chain length, 1 on a folder / 0 on an item, grant index, nested group or None for a
# grant to a user): the order of the first three is the order of Reason.sort_key.
_Route = tuple[int, int, int, int, int | None]
_PREFIX = itemgetter(0, 1, 2)


class Effective:
    """The answer of effective_access(): every route the grants open, best first, and each user's best.

    best maps a user id to the rank of its best route; offered maps a rank to the runs of
    users it was offered to (best one or not, removed ones included). Reasons are built
    only for the ranks asked about: a chain of ten thousand nested groups opens ten
    thousand routes, whose chains together hold fifty million names.
    """

    __slots__ = (
        "_grants",
        "_group_names",
        "_paths",
        "_reasons",
        "_roles",
        "_routes",
        "_user_names",
        "best",
        "offered",
    )

    def __init__(
        self,
        grants: Sequence[Grant],
        paths: Mapping[int, Paths],
        routes: list[_Route],
        group_names: Mapping[int, str],
        user_names: Mapping[int, str],
        best: dict[int, int],
        offered: dict[int, list[Collection[int]]],
        built: dict[int, Reason],
    ) -> None:
        self._grants = grants
        self._paths = paths
        self._routes = routes
        self._group_names = group_names
        self._user_names = user_names
        self._reasons = built
        self.best = best
        self.offered = offered
        self._roles: list[Role] | None = None

    @property
    def roles(self) -> list[Role]:
        """The role of each rank, best first."""
        if self._roles is None:
            self._roles = [self._grants[route[3]].role for route in self._routes]
        return self._roles

    def __len__(self) -> int:
        return len(self._routes)

    def reason(self, rank: int) -> Reason:
        found = self._reasons.get(rank)
        if found is None:
            found = self._reasons[rank] = _reason(
                self._routes[rank], self._grants, self._paths, self._group_names, self._user_names
            )
        return found

    def reason_of(self, user_id: int) -> Reason | None:
        rank = self.best.get(user_id)
        return None if rank is None else self.reason(rank)


def _reason(
    route: _Route,
    grants: Sequence[Grant],
    paths: Mapping[int, Paths],
    group_names: Mapping[int, str],
    user_names: Mapping[int, str],
) -> Reason:
    grant, sub = grants[route[3]], route[4]
    if grant.user_id is not None:
        return Reason(grant.role, grant.granted_on, f"u/{user_names[grant.user_id]}")
    assert grant.group_id is not None and sub is not None
    chain = tuple(group_names[g] for g in paths[grant.group_id].path(sub))
    return Reason(grant.role, grant.granted_on, f"g/{group_names[grant.group_id]}", chain)


def effective_access(
    grants: Iterable[Grant], nesting: Nesting, reads: AccessReads, minimum: Role = Role.VIEWER
) -> Effective:
    """Each user's best route among grants (all on one target and the folder it inherits from)."""
    return effective_access_each({"": list(grants)}, nesting, reads, minimum)[""]


def effective_access_each(
    grants_on: Mapping[str, Sequence[Grant]],
    nesting: Nesting,
    reads: AccessReads,
    minimum: Role = Role.VIEWER,
) -> dict[str, Effective]:
    """effective_access() for each target of grants_on, its grants read from the store once for all.

    Routes are few (one per grant and nested group) while users are many, so each user
    carries only the rank of its best route. A route below minimum cannot be any user's
    best one among those at or above it, so it is dropped before its members are read.
    """
    kept = {
        on: grants if minimum is Role.VIEWER else [g for g in grants if g.role >= minimum]
        for on, grants in grants_on.items()
    }
    every = [g for grants in kept.values() for g in grants]
    granted_users = {g.user_id for g in every if g.user_id is not None}
    user_names = reads.user_names(granted_users) if granted_users else {}
    walks = {g.group_id: nesting.below(g.group_id) for g in every if g.group_id is not None}
    reached = {sub for found in walks.values() for sub in found}
    group_names = reads.group_names(reached) if reached else {}
    members = reads.members(reached) if reached else {}
    # A route to a group without direct members reaches nobody: it is left out before the
    # routes are ranked, so ties are broken only among routes that reach someone.
    filled = {gid for gid, parts in members.items() if any(parts)}
    # Each granted group's routes, (chain length, group reached), made once however many
    # targets it is granted on.
    fan = {gid: [(walk.depth[sub] + 1, sub) for sub in walk if sub in filled] for gid, walk in walks.items()}
    found = {on: _rank(grants, fan, walks, members, group_names, user_names) for on, grants in kept.items()}
    if filled:
        # Direct grants to removed users are not live; removed members are dropped here.
        answers = [answer.best for answer in found.values()]
        # One target's users are its answer's keys already: no set of them is built.
        everyone = answers[0] if len(answers) == 1 else set().union(*answers)
        removed = set(reads.removed_users(everyone))
        for answer in found.values():
            # Walk the smaller side: a few removed users among many, or the reverse.
            gone = removed if len(removed) < len(answer.best) else removed.intersection(answer.best)
            for uid in gone:
                answer.best.pop(uid, None)
    return found


def _rank(
    grants: Sequence[Grant],
    fan: Mapping[int, list[tuple[int, int]]],
    walks: Mapping[int, Paths],
    members: Mapping[int, Iterable[Collection[int]]],
    group_names: Mapping[int, str],
    user_names: Mapping[int, str],
) -> Effective:
    """The rule on one target's grants: every route ranked, and each user's best one."""
    routes: list[_Route] = []
    for i, g in enumerate(grants):
        role = -int(g.role)
        on_folder = 0 if g.granted_on.count("/") > 1 else 1
        if g.group_id is None:
            routes.append((role, 0, on_folder, i, None))
        else:
            routes += [(role, length, on_folder, i, sub) for length, sub in fan[g.group_id]]
    best: dict[int, int] = {}
    if len(routes) == 1:
        # One route (a user's access to most folders): nothing to rank.
        route = routes[0]
        runs: list[Collection[int]]
        if route[4] is None:
            uid = grants[route[3]].user_id
            assert uid is not None
            runs = [(uid,)]
        else:
            runs = list(members.get(route[4], ()))
        for part in runs:
            best.update(dict.fromkeys(part, 0))
        return Effective(grants, walks, routes, group_names, user_names, best, {0: runs}, {})
    # By the prefix, then by grant and group: an order the tie-break below refines.
    routes.sort()
    built = _break_ties(routes, grants, walks, group_names, user_names)
    # The best route to each user granted directly, and to the members of each group.
    to_user: dict[int, int] = {}
    to_group: dict[int, int] = {}
    for rank, route in enumerate(routes):
        sub = route[4]
        if sub is None:
            uid = grants[route[3]].user_id
            assert uid is not None
            to_user.setdefault(uid, rank)
        else:
            to_group.setdefault(sub, rank)
    offered: dict[int, list[Collection[int]]] = {}
    # Worst route first: every better one overwrites, so each user ends with its best rank.
    for rank in range(len(routes) - 1, -1, -1):
        sub = routes[rank][4]
        if sub is None:
            uid = grants[routes[rank][3]].user_id
            assert uid is not None
            if to_user[uid] == rank:
                best[uid] = rank
                offered.setdefault(rank, []).append((uid,))
        elif to_group[sub] == rank:
            runs = list(members.get(sub, ()))
            for part in runs:
                best.update(dict.fromkeys(part, rank))
            offered.setdefault(rank, []).extend(runs)
    return Effective(grants, walks, routes, group_names, user_names, best, offered, built)


def _break_ties(
    routes: list[_Route],
    grants: Sequence[Grant],
    paths: Mapping[int, Paths],
    group_names: Mapping[int, str],
    user_names: Mapping[int, str],
) -> dict[int, Reason]:
    """Order routes of equal role, length and kind by their explanation, as Reason.sort_key does.

    Only tied routes build their explanation (a deep chain has a route per depth, no ties);
    the reasons built are returned by rank, for Effective to keep.
    """
    built: dict[int, Reason] = {}
    if len(routes) < 2:
        return built
    start = 0
    for _key, run in groupby(routes, key=_PREFIX):
        size = sum(1 for _ in run)
        if size > 1:
            tied = [
                (_reason(r, grants, paths, group_names, user_names), r) for r in routes[start : start + size]
            ]
            tied.sort(key=lambda pair: pair[0].explain())
            for rank, (reason, route) in enumerate(tied, start):
                routes[rank] = route
                built[rank] = reason
        start += size
    return built


def effective_member_counts(
    roots: Iterable[int],
    children: Mapping[int, Sequence[int]],
    members: Mapping[int, Iterable[Collection[int]]],
) -> dict[int, int]:
    """How many distinct users each group of roots holds, its nested groups' members included.

    members maps a group to its direct members' ids, in one or more runs.

    Groups in a cycle hold the same users, so each strongly connected component is counted
    once, children before parents. A parent takes over the user set of its largest child
    when no other group still needs that set, and adds the smaller ones to it: a chain of N
    groups costs N steps rather than N² (each group's whole chain counted again).
    """
    component, components = _components(roots, children)
    below: list[set[int]] = [set() for _ in components]
    for c, groups in enumerate(components):
        below[c] = {
            component[child] for g in groups for child in children.get(g, ()) if component[child] != c
        }
    waiting = [0] * len(components)
    for reached in below:
        for kid in reached:
            waiting[kid] += 1
    users: list[set[int] | None] = [None] * len(components)
    counts: list[int] = [0] * len(components)
    for c, groups in enumerate(components):
        kids = sorted(below[c], key=lambda k: len(users[k] or ()), reverse=True)
        for kid in kids:
            waiting[kid] -= 1
        if kids and waiting[kids[0]] == 0:
            held = users[kids[0]]
            users[kids[0]] = None
        else:
            held = set(users[kids[0]] or ()) if kids else set()
        assert held is not None
        for kid in kids[1:]:
            held |= users[kid] or set()
            if waiting[kid] == 0:
                users[kid] = None
        for g in groups:
            for part in members.get(g, ()):
                held.update(part)
        counts[c] = len(held)
        users[c] = held if waiting[c] else None
    return {g: counts[c] for g, c in component.items()}


def _components(
    roots: Iterable[int], children: Mapping[int, Sequence[int]]
) -> tuple[dict[int, int], list[list[int]]]:
    """Tarjan's strongly connected components of the groups reachable from roots, without recursion.

    Components come children first: each one after every component it reaches.
    """
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    component: dict[int, int] = {}
    components: list[list[int]] = []
    for root in roots:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[int, Iterator[int]]] = [(root, iter(children.get(root, ())))]
        while work:
            v, kids = work[-1]
            for w in kids:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(children.get(w, ()))))
                    break
                if w in on_stack and index[w] < low[v]:
                    low[v] = index[w]
            else:
                work.pop()
                if work and low[v] < low[work[-1][0]]:
                    low[work[-1][0]] = low[v]
                if low[v] == index[v]:
                    found: list[int] = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component[w] = len(components)
                        found.append(w)
                        if w == v:
                            break
                    components.append(found)
    return component, components
