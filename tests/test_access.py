"""Effective access and its explanations: nested groups, cycles, items, orphaned grants."""

from __future__ import annotations

from groupwarden.domain.roles import Role
from groupwarden.services.context import Context
from support import access_of, grant, org_snapshot, preview_change, sync_snapshot, who_can


def by_user(ctx: Context, target: str) -> dict[str, tuple[Role, str]]:
    return {a.user_name: (a.role, a.explanation) for a in who_can(ctx, target)}


def test_nested_group_grant_reaches_members_of_the_nested_group(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "writer")
    result = by_user(org, "prod/finance")
    assert result == {
        "alice": (Role.WRITER, "writer via g/eng, granted on prod/finance"),
        "bob": (Role.WRITER, "writer via g/eng ⊃ g/eng-oncall, granted on prod/finance"),
        "dan": (Role.WRITER, "writer via g/eng ⊃ g/eng-oncall, granted on prod/finance"),
    }


def test_highest_role_wins_and_the_explanation_names_it(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "viewer")
    grant(org, "g/eng-oncall", "prod/finance", "admin")
    grant(org, "u/alice", "prod/finance", "writer")
    result = by_user(org, "prod/finance")
    assert result["bob"] == (Role.ADMIN, "admin via g/eng-oncall, granted on prod/finance")
    assert result["alice"] == (Role.WRITER, "writer via u/alice (direct grant), granted on prod/finance")


def test_cycle_of_nested_groups_terminates_and_covers_both(org: Context) -> None:
    grant(org, "g/cycle-a", "prod/infra", "viewer")
    result = by_user(org, "prod/infra")
    assert set(result) == {"erin", "yuki"}
    assert result["yuki"][1] == "viewer via g/cycle-a ⊃ g/cycle-b, granted on prod/infra"


def test_item_inherits_its_folder_and_adds_its_own_grants(org: Context) -> None:
    grant(org, "g/finance", "prod/finance", "viewer")
    grant(org, "u/chloé", "prod/f/finance/payroll", "admin")
    result = by_user(org, "prod/f/finance/payroll")
    assert result["yuki"] == (Role.VIEWER, "viewer via g/finance, granted on prod/finance")
    assert result["chloé"] == (
        Role.ADMIN,
        "admin via u/chloé (direct grant), granted on prod/f/finance/payroll",
    )
    # The item's own grant does not leak to the folder.
    assert by_user(org, "prod/finance")["chloé"][0] is Role.VIEWER


def test_access_of_user_lists_every_folder_with_the_chain(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "writer")
    grant(org, "g/eng-oncall", "prod/infra", "viewer")
    user, rows = access_of(org, "bob")
    assert user == "bob"
    assert [(a.target, a.role, a.explanation) for a in rows] == [
        ("prod/finance", Role.WRITER, "writer via g/eng ⊃ g/eng-oncall, granted on prod/finance"),
        ("prod/infra", Role.VIEWER, "viewer via g/eng-oncall, granted on prod/infra"),
    ]


def test_removed_group_leaves_an_orphaned_grant_that_grants_nothing(org: Context) -> None:
    from groupwarden.services.grants import orphaned_grants

    grant(org, "g/finance", "prod/finance", "writer")
    snapshot = org_snapshot()
    snapshot.groups = [g for g in snapshot.groups if g.name != "finance"]
    diff = sync_snapshot(org, snapshot)
    assert diff.groups_removed == ["finance"]
    assert diff.orphaned_grants == ["g/finance writer on prod/finance"]
    assert by_user(org, "prod/finance") == {}
    assert [(g.principal, g.orphaned) for g in orphaned_grants(org)] == [("g/finance", True)]
    assert access_of(org, "chloé")[1] == []


def test_rename_upstream_keeps_the_grant(org: Context) -> None:
    grant(org, "g/finance", "prod/finance", "writer")
    snapshot = org_snapshot()
    next(g for g in snapshot.groups if g.upstream_id == "g-fin").name = "finance-team"
    diff = sync_snapshot(org, snapshot)
    assert diff.groups_renamed == [("finance", "finance-team")]
    assert by_user(org, "prod/finance")["yuki"] == (
        Role.WRITER,
        "writer via g/finance-team, granted on prod/finance",
    )


def test_preview_counts_who_gains_and_who_loses(org: Context) -> None:
    grant(org, "u/bob", "prod/finance", "viewer")
    impact = preview_change(org, "g/eng", "prod/finance", Role.WRITER)
    assert impact.before is None
    assert [g[0] for g in impact.gained] == ["alice", "bob", "dan"]
    assert impact.summary() == "g/eng: none -> writer on prod/finance, 3 users gain writer"
    grant(org, "g/eng", "prod/finance", "writer")
    impact = preview_change(org, "g/eng", "prod/finance", None)
    assert [(name, before, after) for name, before, after in impact.lost] == [
        ("alice", Role.WRITER, None),
        ("bob", Role.WRITER, Role.VIEWER),
        ("dan", Role.WRITER, None),
    ]


def test_access_of_and_who_can_break_a_tie_between_equal_chains_the_same_way(ctx: Context) -> None:
    from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
    from groupwarden.services.layout import add_folder, add_workspace

    # Two routes of one length: top ⊃ x-team and top ⊃ a-team, both holding uma. x-team
    # comes first in every listing, but the explanation that sorts first wins, on both sides.
    sync_snapshot(
        ctx,
        Snapshot(
            users=[SourceUser("u-uma", "uma")],
            groups=[
                SourceGroup("g-x", "x-team", user_members=["u-uma"]),
                SourceGroup("g-a", "a-team", user_members=["u-uma"]),
                SourceGroup("g-top", "top", group_members=["g-x", "g-a"]),
            ],
        ),
    )
    add_workspace(ctx, "prod")
    add_folder(ctx, "prod", "tied")
    grant(ctx, "g/top", "prod/tied", "viewer")
    expected = "viewer via g/top ⊃ g/a-team, granted on prod/tied"
    assert by_user(ctx, "prod/tied") == {"uma": (Role.VIEWER, expected)}
    assert [(a.target, a.explanation) for a in access_of(ctx, "uma")[1]] == [("prod/tied", expected)]
