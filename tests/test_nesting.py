"""Deep nesting stays correct: a long chain of nested groups with a cycle at its end.

The chain g000 ⊃ g001 ⊃ ... ⊃ g(N-1), each group with one user of its own (user000 in g000,
and so on), and the last group holding the middle one, so the bottom half is a cycle.
"""

from __future__ import annotations

import pytest

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.domain.roles import Role
from groupwarden.services.admins import admins_everywhere
from groupwarden.services.context import Context
from groupwarden.services.directory import list_groups
from groupwarden.services.layout import add_folder, add_workspace
from support import access_of, grant, list_members, preview_change, sync_snapshot, who_can

DEPTH = 300
MIDDLE = DEPTH // 2


def chain(first: int, last: int) -> str:
    """The explanation's chain from group first down to group last, along the chain."""
    return " ⊃ ".join(f"g/g{i:03d}" for i in range(first, last + 1))


@pytest.fixture
def deep(ctx: Context) -> Context:
    users = [SourceUser(f"u{i}", f"user{i:03d}") for i in range(DEPTH)]
    groups = [
        SourceGroup(
            f"g{i}",
            f"g{i:03d}",
            user_members=[f"u{i}"],
            group_members=[f"g{i + 1}"] if i + 1 < DEPTH else [f"g{MIDDLE}"],
        )
        for i in range(DEPTH)
    ]
    sync_snapshot(ctx, Snapshot(users=users, groups=groups))
    add_workspace(ctx, "lab")
    add_folder(ctx, "lab", "top")
    add_folder(ctx, "lab", "loop")
    return ctx


def test_effective_member_counts_follow_the_chain_and_the_cycle(deep: Context) -> None:
    counts = {g.name: (g.direct_members, g.effective_members, g.nested_groups) for g in list_groups(deep)}
    # Above the cycle a group holds itself and everything below; in the cycle, the whole cycle.
    assert counts == {f"g{i:03d}": (1, DEPTH - i if i < MIDDLE else DEPTH - MIDDLE, 1) for i in range(DEPTH)}
    assert [g.effective_members for g in list_groups(deep, limit=3)] == [DEPTH, DEPTH - 1, DEPTH - 2]


def test_who_can_on_the_top_explains_each_user_by_the_shortest_chain(deep: Context) -> None:
    grant(deep, "g/g000", "lab/top", "writer")
    answer = who_can(deep, "lab/top")
    assert answer.counts_by_role == {Role.WRITER: DEPTH}
    got = {a.user_name: a.explanation for a in answer}
    assert got == {
        f"user{i:03d}": (
            "writer via g/g000, granted on lab/top"
            if i == 0
            else f"writer via {chain(0, i)}, granted on lab/top"
        )
        for i in range(DEPTH)
    }


def test_who_can_from_inside_the_cycle_goes_round_it(deep: Context) -> None:
    last = DEPTH - 1
    grant(deep, f"g/g{last:03d}", "lab/loop", "viewer")
    got = {a.user_name: a.explanation for a in who_can(deep, "lab/loop")}
    # The last group holds the middle one, so it reaches the bottom half and nothing above.
    expected = {f"user{last:03d}": f"viewer via g/g{last:03d}, granted on lab/loop"}
    for i in range(MIDDLE, last):
        expected[f"user{i:03d}"] = f"viewer via g/g{last:03d} ⊃ {chain(MIDDLE, i)}, granted on lab/loop"
    assert got == expected


def test_access_admins_members_and_preview_agree_on_the_chain(deep: Context) -> None:
    grant(deep, "g/g000", "lab/top", "admin")
    deepest = f"user{DEPTH - 1:03d}"
    user, rows = access_of(deep, deepest)
    assert user == deepest
    assert [(a.target, a.explanation) for a in rows] == [
        ("lab/top", f"admin via {chain(0, DEPTH - 1)}, granted on lab/top")
    ]
    admins = {row.user_name: row.explanation for row in admins_everywhere(deep)}
    assert admins == {a.user_name: a.explanation for a in who_can(deep, "lab/top")}
    members = {m.user_name: m.via_text for m in list_members(deep, "g000")}
    assert members["user000"] == "direct"
    assert members[deepest] == chain(0, DEPTH - 1)
    impact = preview_change(deep, f"g/g{MIDDLE:03d}", "lab/top", Role.ADMIN)
    assert (impact.gained, impact.lost) == ([], [])
    impact = preview_change(deep, "g/g000", "lab/top", None)
    assert len(impact.lost) == DEPTH and impact.gained == []


def test_a_diamond_is_explained_by_one_route_everywhere(ctx: Context) -> None:
    # top ⊃ left ⊃ bottom and top ⊃ right ⊃ bottom: two routes of one length to ivy.
    groups = [
        SourceGroup("g-top", "top", group_members=["g-right", "g-left"]),
        SourceGroup("g-right", "right", group_members=["g-bottom"]),
        SourceGroup("g-left", "left", group_members=["g-bottom"]),
        SourceGroup("g-bottom", "bottom", user_members=["u-ivy"]),
    ]
    sync_snapshot(ctx, Snapshot(users=[SourceUser("u-ivy", "ivy")], groups=groups))
    add_workspace(ctx, "lab")
    add_folder(ctx, "lab", "gem")
    grant(ctx, "g/top", "lab/gem", "admin")
    [answer] = who_can(ctx, "lab/gem")
    assert answer.explanation in {
        "admin via g/top ⊃ g/right ⊃ g/bottom, granted on lab/gem",
        "admin via g/top ⊃ g/left ⊃ g/bottom, granted on lab/gem",
    }
    assert [a.explanation for a in access_of(ctx, "ivy")[1]] == [answer.explanation]
    assert [row.explanation for row in admins_everywhere(ctx)] == [answer.explanation]
    assert [m.via_text for m in list_members(ctx, "top")] == [
        answer.explanation[len("admin via ") : -len(", granted on lab/gem")]
    ]


def test_counts_agree_where_the_database_counts_and_where_python_does(ctx: Context) -> None:
    # A chain of 80 without a cycle: the bottom groups reach few enough to be counted by the
    # database one by one, the upper ones are counted together; both must say depth - i.
    depth = 80
    users = [SourceUser(f"u{i}", f"user{i:02d}") for i in range(depth)]
    groups = [
        SourceGroup(
            f"g{i}",
            f"c{i:02d}",
            user_members=[f"u{i}", "u0"],
            group_members=[f"g{i + 1}"] if i + 1 < depth else [],
        )
        for i in range(depth)
    ]
    sync_snapshot(ctx, Snapshot(users=users, groups=groups))
    counts = {g.name: g.effective_members for g in list_groups(ctx)}
    # user00 is in every group, so it is counted once: a group holds users i.. and user00.
    assert counts == {f"c{i:02d}": depth - i + (i > 0) for i in range(depth)}


def test_members_read_a_group_at_a_time_or_by_chunks_agree(
    deep: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """store.members_of reads few groups a query each and many in chunks (GROUP BY): the two
    must hand the same members over, an empty group included."""
    from groupwarden.store import access as access_store

    empty = sync_snapshot(deep, Snapshot(users=[], groups=[SourceGroup("g-empty", "empty")]), source="other")
    assert empty.groups_added == ["empty"]

    def read() -> dict[int, list[int]]:
        with deep.engine.connect() as conn:
            ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM instance_groups").fetchall()]
            found = access_store.members_of(conn, ids)
        return {g: sorted(uid for run in runs for uid in run) for g, runs in found.items()}

    for limit in ("GROUPS_ONE_BY_ONE", "GROUPS_ONE_BY_ONE_SQLITE"):
        monkeypatch.setattr(access_store, limit, 10**6)
    one_by_one = read()
    for limit in ("GROUPS_ONE_BY_ONE", "GROUPS_ONE_BY_ONE_SQLITE"):
        monkeypatch.setattr(access_store, limit, 0)
    by_chunks = read()
    # A group without members has no row to group by: its key is missing, not empty.
    assert [m for m in one_by_one.values() if not m] == [[]]
    assert {g: m for g, m in one_by_one.items() if m} == by_chunks
    assert len(by_chunks) == DEPTH and sum(map(len, by_chunks.values())) == DEPTH
