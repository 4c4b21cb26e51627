"""What Windmill gets wrong, from a pull of the stand-in and the IdP cache: one constructed case each."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.domain.errors import NotFound
from groupwarden.services.context import Context
from groupwarden.services.windmill import (
    AclEntry,
    AutoAddGroup,
    AutoAddMember,
    MembershipDrift,
    WindmillLink,
    drift,
    match_groups,
    match_users,
    pull,
)
from groupwarden.store import windmill as store
from groupwarden.store.windmill import IdpGroupRow, IdpUserRow, InstanceGroupRow
from support import grant, sync_snapshot

TOKEN_VAR = "GW_TEST_WINDMILL_TOKEN"


@pytest.fixture
def standin() -> Iterator[WindmillStandIn]:
    with WindmillStandIn() as server:
        yield server


@pytest.fixture
def linked(org: Context, standin: WindmillStandIn, monkeypatch: pytest.MonkeyPatch) -> Context:
    """The org's IdP, plus a second source whose two groups both normalise to data_science,
    and a Windmill workspace 'ops' holding one case of each kind of drift."""
    sync_snapshot(
        org,
        Snapshot(
            users=[SourceUser("o-zoe", "zoe", None, ["zoe@other.test"])],
            groups=[
                SourceGroup("ds-1", "Data Science", user_members=["o-zoe"]),
                SourceGroup("ds-2", "data science"),
            ],
        ),
        source="other",
    )
    # An IdP group granted here that Windmill lacks; and one that Windmill has.
    grant(org, "g/cycle-a", "prod/finance", "viewer")
    grant(org, "g/eng", "prod/infra", "writer")

    s = standin
    s.add_workspace("ops", "Operations")
    s.add_user("ops", "alice", "alice@corp.test", admin=True)
    s.add_user("ops", "bob", "BOB@corp.test", operator=True)
    s.add_user("ops", "opsbot", "bot@ops.test")
    s.add_workspace_group("ops", "oncall_local", ["bob"])
    # eng lacks bob (a nested member in the IdP; dan is inactive) and holds a stranger.
    s.add_instance_group("eng", ["alice@corp.test", "stranger@corp.test"])
    # Matched by external_id although its name is nothing like 'finance'; emails in another case.
    s.add_instance_group("money", ["chloe@corp.test", "YUKI@corp.test"], external_id="g-fin")
    s.add_instance_group("ghosts", [])
    s.add_instance_group("phantom", [], external_id="no-such-upstream-id")
    s.add_instance_group("data_science", ["zoe@other.test"])
    s.add_instance_group("Old Team", ["alice@corp.test"])
    s.add_folder("ops", "reports", ["g/old_team", "u/alice"], {"u/departed": False, "g/oncall_local": True})
    s.add_item("ops", "script", "f/reports/daily", {"g/old_team": False, "g/eng": True, "u/ghost_user": True})
    s.add_item("ops", "flow", "f/reports/weekly", {"g/money": False})
    s.set_settings(
        "ops",
        {"auto_invite": {"instance_groups": ["eng", "money"], "instance_groups_roles": {"eng": "operator"}}},
    )
    monkeypatch.setenv(TOKEN_VAR, s.superadmin_token)
    pull(org, WindmillLink("default", s.url, token_env=TOKEN_VAR))
    # Deleted in Windmill after the folder named it: its grants stay behind.
    s.delete_instance_group("old_team")
    pull(org, WindmillLink("default", s.url, token_env=TOKEN_VAR))
    return org


def test_dangling_group_grants_are_found_where_they_are(linked: Context) -> None:
    report = drift(linked)
    assert report.dangling == [
        AclEntry("ops", "ops/reports", "folder", "g/old_team", "admin"),
        AclEntry("ops", "ops/f/reports/daily", "script", "g/old_team", "viewer"),
    ]


def test_membership_drift_lists_missing_and_extra_emails(linked: Context) -> None:
    report = drift(linked)
    assert report.membership_drift == [
        MembershipDrift("eng", "eng", "corp", missing=["bob@corp.test"], extra=["stranger@corp.test"])
    ]


def test_unmatched_groups_both_ways_and_ambiguous_ones_are_reported(linked: Context) -> None:
    unmatched = {(u.side, u.group): u for u in drift(linked).unmatched}
    assert set(unmatched) == {
        ("windmill", "ghosts"),
        ("windmill", "phantom"),
        ("windmill", "data_science"),
        ("idp", "cycle-a"),
    }
    assert "no-such-upstream-id" in unmatched["windmill", "phantom"].detail
    ambiguous = unmatched["windmill", "data_science"]
    assert "2 IdP groups" in ambiguous.detail
    assert sorted(ambiguous.candidates) == [
        "Data Science (source other, upstream id ds-1)",
        "data science (source other, upstream id ds-2)",
    ]
    assert "g/cycle-a" in unmatched["idp", "cycle-a"].detail


def test_unknown_users_are_u_principals_outside_the_workspace(linked: Context) -> None:
    assert drift(linked).unknown_users == [
        AclEntry("ops", "ops/reports", "folder", "u/departed", "viewer"),
        AclEntry("ops", "ops/f/reports/daily", "script", "u/ghost_user", "writer"),
    ]


def test_auto_add_shows_the_role_it_gives_each_member(linked: Context) -> None:
    assert drift(linked).auto_add == [
        AutoAddGroup(
            "ops",
            "eng",
            "operator",
            True,
            [
                AutoAddMember("alice@corp.test", "operator", "alice", "admin"),
                AutoAddMember("stranger@corp.test", "operator", None, None),
            ],
        ),
        AutoAddGroup(
            "ops",
            "money",
            "developer",
            True,
            [
                AutoAddMember("YUKI@corp.test", "developer", None, None),
                AutoAddMember("chloe@corp.test", "developer", None, None),
            ],
        ),
    ]


def test_the_json_form_has_exactly_the_five_keys(linked: Context) -> None:
    data = json.loads(json.dumps(drift(linked).to_dict()))
    assert list(data) == ["dangling", "membership_drift", "unmatched", "unknown_users", "auto_add"]
    assert data["dangling"][0] == {
        "workspace": "ops",
        "target": "ops/reports",
        "kind": "folder",
        "principal": "g/old_team",
        "role": "admin",
    }
    assert data["membership_drift"][0]["missing"] == ["bob@corp.test"]


def test_matching_follows_a_later_idp_sync(linked: Context) -> None:
    """The store keeps Windmill's names; a rename in the IdP changes the match at once."""
    from support import org_snapshot

    snapshot = org_snapshot()
    for group in snapshot.groups:
        if group.upstream_id == "g-a":
            group.name = "Ghosts"
    sync_snapshot(linked, snapshot)
    unmatched = {(u.side, u.group) for u in drift(linked).unmatched}
    assert ("windmill", "ghosts") not in unmatched
    assert ("idp", "Ghosts") not in unmatched and ("idp", "cycle-a") not in unmatched


def test_drift_of_an_unknown_instance_is_not_found(ctx: Context) -> None:
    with pytest.raises(NotFound, match="'nowhere'"):
        drift(ctx, "nowhere")


def test_match_groups_prefers_external_id_and_never_guesses() -> None:
    idp = [
        IdpGroupRow(1, "Data Science", "up-1", "corp"),
        IdpGroupRow(2, "Finance", "up-2", "corp"),
        IdpGroupRow(3, "finance", "up-3", "other"),
    ]
    found = match_groups(
        [
            InstanceGroupRow("data_science", None, None, ()),
            InstanceGroupRow("finance", None, None, ()),
            InstanceGroupRow("whatever", None, "up-2", ()),
            InstanceGroupRow("data_science_2", None, "gone", ()),
        ],
        idp,
    )
    assert (found["data_science"].idp, found["data_science"].by) == (idp[0], "name")
    assert found["finance"].idp is None and found["finance"].ambiguous
    assert (found["whatever"].idp, found["whatever"].by) == (idp[1], "external_id")
    assert found["data_science_2"].idp is None and not found["data_science_2"].ambiguous


def test_match_users_compares_every_email_without_case() -> None:
    users = [
        IdpUserRow(1, "bob", "bob@corp.test\nb@home.test", True),
        IdpUserRow(2, "ann", "ann@corp.test\nshared@corp.test", True),
        IdpUserRow(3, "max", "shared@corp.test", True),
    ]
    found = match_users(["BOB@corp.test", "b@HOME.test", "shared@corp.test", "nobody@corp.test"], users)
    assert found == {
        "BOB@corp.test": users[0],
        "b@HOME.test": users[0],
        "shared@corp.test": None,
        "nobody@corp.test": None,
    }


def test_the_store_keeps_windmill_names(linked: Context) -> None:
    with linked.engine.connect() as conn:
        found = store.find_instance(conn, "default")
        assert found is not None
        state = store.read_state(conn, found.id)
    assert {g.name for g in state.instance_groups} == {
        "eng",
        "money",
        "ghosts",
        "phantom",
        "data_science",
    }
    assert ("ops", "reports", "folder", "", "g/old_team", "admin") in state.acl
