"""Windmill's permission model as pure rules: roles, write plans, names, owner strings, paths."""

from __future__ import annotations

import pytest

from groupwarden.domain.errors import BadInput
from groupwarden.domain.roles import Role
from groupwarden.domain.windmill import (
    AclWrite,
    check_owner,
    folder_role,
    folder_writes,
    is_personal,
    item_folder,
    item_role,
    item_writes,
    normalise_group_name,
    owner_string,
)

ROLES = [None, Role.VIEWER, Role.WRITER, Role.ADMIN]


def test_folder_role_reads_owners_first_then_extra_perms() -> None:
    owners = ["g/admins"]
    perms = {"g/admins": False, "g/eng": True, "u/ann": False}
    assert folder_role(owners, perms, "g/admins") is Role.ADMIN
    assert folder_role(owners, perms, "g/eng") is Role.WRITER
    assert folder_role(owners, perms, "u/ann") is Role.VIEWER
    assert folder_role(owners, perms, "g/other") is None


def test_item_role_has_no_admin() -> None:
    perms = {"g/eng": True, "u/ann": False}
    assert item_role(perms, "g/eng") is Role.WRITER
    assert item_role(perms, "u/ann") is Role.VIEWER
    assert item_role(perms, "g/x") is None


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (Role.ADMIN, [AclWrite("addowner", "g/eng")]),
        (Role.WRITER, [AclWrite("removeowner", "g/eng", True)]),
        (Role.VIEWER, [AclWrite("removeowner", "g/eng", False)]),
        (None, [AclWrite("removeowner", "g/eng"), AclWrite("acl_remove", "g/eng")]),
    ],
)
@pytest.mark.parametrize("before", ROLES)
def test_folder_writes_follow_the_roles_table(
    before: Role | None, after: Role | None, expected: list[AclWrite]
) -> None:
    assert folder_writes(before, after, "g/eng") == ([] if before == after else expected)


@pytest.mark.parametrize("before", ROLES[:3])
@pytest.mark.parametrize("after", ROLES[:3])
def test_item_writes_use_acls_only(before: Role | None, after: Role | None) -> None:
    calls = item_writes(before, after, "u/ann")
    if before == after:
        assert calls == []
    elif after is None:
        assert calls == [AclWrite("acl_remove", "u/ann")]
    else:
        assert calls == [AclWrite("acl_add", "u/ann", after is Role.WRITER)]


@pytest.mark.parametrize("before", ROLES)
def test_item_admin_is_refused(before: Role | None) -> None:
    with pytest.raises(BadInput, match="no admin"):
        item_writes(before, Role.ADMIN, "g/eng")


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("Data Science", "data_science"),
        ("data_science", "data_science"),
        ("  Ops  Team ", "__ops__team_"),  # nothing is trimmed or collapsed
        ("Eng\tOps", "eng\tops"),  # only the ASCII space becomes '_'
        ("ÉQUIPE Été", "équipe_été"),  # lowercasing is Unicode-wide
        ("R&D-EU", "r&d-eu"),  # other characters are kept
    ],
)
def test_normalise_group_name_as_windmill_does(name: str, stored: str) -> None:
    assert normalise_group_name(name) == stored


@pytest.mark.parametrize("owner", ["u/ann", "g/data_science", "g/eng-oncall", "u/Ann_2"])
def test_owner_strings_windmill_accepts(owner: str) -> None:
    assert check_owner(owner) == owner


@pytest.mark.parametrize(
    ("owner", "why"),
    [
        ("u/ann@example.com", "username"),
        ("u/ann.lee", "username"),
        ("g/r&d", "letters, digits"),
        ("g/data science", "letters, digits"),
        ("x/ann", "u/<username> or g/<group>"),
        ("g/", "u/<username> or g/<group>"),
        ("ann", "u/<username> or g/<group>"),
    ],
)
def test_owner_strings_windmill_refuses(owner: str, why: str) -> None:
    with pytest.raises(BadInput, match=why):
        check_owner(owner)


def test_owner_string_builds_and_checks() -> None:
    assert owner_string("g", "eng") == "g/eng"
    with pytest.raises(BadInput):
        owner_string("u", "ann@example.com")


def test_write_plans_refuse_a_bad_owner() -> None:
    with pytest.raises(BadInput):
        folder_writes(None, Role.VIEWER, "u/ann@example.com")
    with pytest.raises(BadInput):
        item_writes(None, Role.VIEWER, "u/ann.lee")


@pytest.mark.parametrize(
    ("path", "folder", "personal"),
    [
        ("f/finance/close_books", "finance", False),
        ("f/finance/sub/deep", "finance", False),
        ("f/finance", None, False),
        ("f//x", None, False),
        ("u/ann/scratch", None, True),
        ("u/ann", None, False),
        ("g/eng/x", None, False),
    ],
)
def test_item_paths(path: str, folder: str | None, personal: bool) -> None:
    assert item_folder(path) == folder
    assert is_personal(path) is personal
