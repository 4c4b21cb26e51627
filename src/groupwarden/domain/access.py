"""Effective access: the highest role a user holds on a target, and why.

A user's role on a target is the highest among grants to the user and to every group
the user belongs to, nested groups expanded transitively, on the target and on the
folder it inherits from. Each answer keeps the chain that produced it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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
        return (
            -int(self.role),
            len(self.chain),
            0 if self.granted_on.count("/") > 1 else 1,
            self.explain(),
        )


def best_reason(reasons: Iterable[Reason]) -> Reason:
    return min(reasons, key=Reason.sort_key)


def expand_down(roots: Iterable[int], children: Mapping[int, Iterable[int]]) -> dict[int, tuple[int, ...]]:
    """Every group reachable from roots through nested membership, with its shortest path.

    children maps a group to the groups nested directly inside it. A root maps to (root,).
    Cycles are tolerated: each group is visited once.
    """
    paths: dict[int, tuple[int, ...]] = {}
    queue: deque[int] = deque()
    for root in roots:
        if root not in paths:
            paths[root] = (root,)
            queue.append(root)
    while queue:
        current = queue.popleft()
        for child in children.get(current, ()):
            if child not in paths:
                paths[child] = (*paths[current], child)
                queue.append(child)
    return paths


def expand_up(starts: Iterable[int], parents: Mapping[int, Iterable[int]]) -> dict[int, tuple[int, ...]]:
    """Every group that contains one of starts, directly or through nesting.

    parents maps a group to the groups it is directly nested in. Each result maps to the
    chain from that ancestor down to the start group it reaches: (ancestor, ..., start).
    """
    paths: dict[int, tuple[int, ...]] = {}
    queue: deque[int] = deque()
    for start in starts:
        if start not in paths:
            paths[start] = (start,)
            queue.append(start)
    while queue:
        current = queue.popleft()
        for parent in parents.get(current, ()):
            if parent not in paths:
                paths[parent] = (parent, *paths[current])
                queue.append(parent)
    return paths
