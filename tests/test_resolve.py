"""Resolving once, at the edge: typed references in, no name looked up again below."""

from __future__ import annotations

import subprocess
import sys

import pytest

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.domain.errors import Ambiguous, BadInput, NotFound
from groupwarden.domain.principals import Target
from groupwarden.domain.refs import GroupRef, TargetRef, UserRef
from groupwarden.services import access, directory, grants, resolve
from groupwarden.services.context import Context
from support import org_snapshot, sync_snapshot


def test_resolve_turns_text_into_typed_references(org: Context) -> None:
    eng = resolve.principal(org, "g/eng")
    assert isinstance(eng, GroupRef) and (eng.name, eng.upstream_id, eng.source) == ("eng", "g-eng", "corp")
    assert resolve.principal(org, "g/g-eng") == eng
    bob = resolve.principal(org, "u/bob")
    assert isinstance(bob, UserRef) and bob.principal == "u/bob"
    item = resolve.target(org, "prod/f/finance/payroll")
    folder = resolve.target(org, "prod/finance")
    assert item == TargetRef(folder.folder_id, Target("prod", "finance", "payroll"))
    assert str(item) == "prod/f/finance/payroll" and item.folder_text == "prod/finance"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda ctx: resolve.principal(ctx, "eng"), BadInput),
        (lambda ctx: resolve.principal(ctx, "g/nobody"), NotFound),
        (lambda ctx: resolve.user(ctx, "nobody"), NotFound),
        (lambda ctx: resolve.target(ctx, "prod/missing"), NotFound),
        (lambda ctx: resolve.target(ctx, "nowhere/finance"), NotFound),
        (lambda ctx: resolve.target(ctx, "prod"), BadInput),
    ],
)
def test_bad_names_are_refused_at_the_edge(org: Context, call: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        call(org)  # type: ignore[operator]


def test_an_ambiguous_name_lists_every_candidate_but_a_held_reference_just_works(org: Context) -> None:
    other_org = Snapshot(
        users=[SourceUser("x-bob", "bob")], groups=[SourceGroup("x-eng", "eng", user_members=["x-bob"])]
    )
    sync_snapshot(org, other_org, source="other")
    with pytest.raises(Ambiguous) as info:
        resolve.group(org, "eng")
    assert info.value.candidates == [
        "eng  (source corp, upstream id g-eng)",
        "eng  (source other, upstream id x-eng)",
    ]
    with pytest.raises(Ambiguous):
        resolve.user(org, "bob")
    # The screen holds the rows it listed: their references name one group each, no retry by id.
    rows = {g.source: g for g in directory.list_groups(org) if g.name == "eng"}
    other = rows["other"].ref
    assert [m.user_name for m in directory.list_members(org, other)] == ["bob"]
    assert [m.user_name for m in directory.list_members(org, rows["corp"].ref)] == ["alice", "bob", "dan"]
    finance = resolve.target(org, "prod/finance")
    grants.grant(org, other, finance, "viewer")
    [row] = grants.group_grants(org, other)
    assert (row.principal_ref, row.target_ref) == (other, finance)
    assert grants.group_grants(org, rows["corp"].ref) == []
    assert [a.user_name for a in access.who_can(org, finance)] == ["bob"]
    assert access.who_can(org, finance)[0].user_id == resolve.user(org, "x-bob").id


def test_a_group_removed_after_it_was_resolved_cannot_be_granted(org: Context) -> None:
    finance = resolve.group(org, "finance")
    target = resolve.target(org, "prod/finance")
    snapshot = org_snapshot()
    snapshot.groups = [g for g in snapshot.groups if g.name != "finance"]
    sync_snapshot(org, snapshot)
    with pytest.raises(NotFound, match="removed upstream"):
        grants.grant(org, finance, target, "viewer")
    assert grants.folder_grants(org, target) == []


def test_grants_and_layout_import_without_a_cycle() -> None:
    # Importing the role changes alone must not pull in the layout service (it used to, both ways).
    code = "import sys, groupwarden.services.grants; print('groupwarden.services.layout' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
