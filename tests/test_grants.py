"""Role changes: audit in the same transaction, stale views, the last admin, read-only."""

from __future__ import annotations

import pytest

from groupwarden.domain.directory import Snapshot, SourceGroup
from groupwarden.domain.errors import Ambiguous, BadInput, NeedsConfirmation, NotFound, ReadOnly, StaleView
from groupwarden.domain.roles import Role
from groupwarden.services.audit import role_changes
from groupwarden.services.context import Actor, Context
from groupwarden.services.export import export_json
from support import folder_grants, grant, org_snapshot, revoke, sync_snapshot


def roles_on(ctx: Context, target: str) -> dict[str, Role]:
    return {g.principal: g.role for g in folder_grants(ctx, target)}


def test_grant_change_revoke_each_write_one_audit_event(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "viewer")
    grant(org, "g/eng", "prod/finance", "writer")
    grant(org, "u/alice", "prod/finance", "admin")
    revoke(org, "g/eng", "prod/finance")
    events = [
        (e.action, e.principal, e.target, e.before, e.after, e.actor, e.host)
        for e in reversed(role_changes(org))
    ]
    assert events == [
        ("grant", "g/eng", "prod/finance", None, "viewer", "tester", "bastion"),
        ("change", "g/eng", "prod/finance", "viewer", "writer", "tester", "bastion"),
        ("grant", "u/alice", "prod/finance", None, "admin", "tester", "bastion"),
        ("revoke", "g/eng", "prod/finance", "writer", None, "tester", "bastion"),
    ]
    assert roles_on(org, "prod/finance") == {"u/alice": Role.ADMIN}


def test_granting_the_same_role_again_changes_nothing(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "viewer")
    change = grant(org, "g/eng", "prod/finance", "viewer")
    assert not change.changed
    assert len(role_changes(org)) == 1


def test_change_against_a_stale_view_is_refused_and_names_who_changed_it(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "viewer")
    other = Context(org.engine, actor=Actor("bob", "bastion-2", "10.0.0.7"), clock=org.clock)
    grant(other, "g/eng", "prod/finance", "admin", expected=Role.VIEWER)
    with pytest.raises(StaleView) as info:
        grant(org, "g/eng", "prod/finance", "writer", expected=Role.VIEWER)
    assert "you saw viewer, it is now admin" in str(info.value)
    assert "bob@bastion-2" in str(info.value)
    with pytest.raises(StaleView):
        revoke(org, "g/eng", "prod/finance", expected=Role.VIEWER)
    with pytest.raises(StaleView):
        grant(org, "u/alice", "prod/finance", "viewer", expected=Role.VIEWER)
    assert roles_on(org, "prod/finance") == {"g/eng": Role.ADMIN}


def test_last_admin_of_a_folder_needs_confirmation(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "admin")
    with pytest.raises(NeedsConfirmation):
        revoke(org, "g/eng", "prod/finance")
    with pytest.raises(NeedsConfirmation):
        grant(org, "g/eng", "prod/finance", "writer")
    assert roles_on(org, "prod/finance") == {"g/eng": Role.ADMIN}
    grant(org, "u/bob", "prod/finance", "admin")
    revoke(org, "g/eng", "prod/finance")  # bob is still admin
    revoke(org, "u/bob", "prod/finance", confirm_last_admin=True)
    assert roles_on(org, "prod/finance") == {}


def test_read_only_refuses_every_change_in_the_service_layer(org: Context) -> None:
    from groupwarden.services.layout import add_folder, add_workspace

    grant(org, "g/eng", "prod/finance", "viewer")
    before = export_json(org)
    org.read_only = True
    for change in (
        lambda: grant(org, "g/eng", "prod/finance", "admin"),
        lambda: revoke(org, "g/eng", "prod/finance"),
        lambda: add_workspace(org, "dev"),
        lambda: add_folder(org, "prod", "new"),
    ):
        with pytest.raises(ReadOnly):
            change()
    assert export_json(org) == before


def test_ambiguous_group_name_lists_candidates_and_upstream_id_resolves(org: Context) -> None:
    snapshot = Snapshot(users=[], groups=[SourceGroup("x-eng", "eng")])
    sync_snapshot(org, snapshot, source="other")
    with pytest.raises(Ambiguous) as info:
        grant(org, "g/eng", "prod/finance", "viewer")
    message = str(info.value)
    assert "upstream id g-eng" in message and "upstream id x-eng" in message
    assert roles_on(org, "prod/finance") == {}
    grant(org, "g/x-eng", "prod/finance", "viewer")
    assert list(roles_on(org, "prod/finance")) == ["g/eng"]


@pytest.mark.parametrize(
    ("principal", "target", "role", "error"),
    [
        ("eng", "prod/finance", "viewer", BadInput),
        ("x/eng", "prod/finance", "viewer", BadInput),
        ("g/", "prod/finance", "viewer", BadInput),
        ("g/eng", "prod", "viewer", BadInput),
        ("g/eng", "prod/fin-ance", "viewer", BadInput),
        ("g/eng", "pr od/finance", "viewer", BadInput),
        ("g/eng", "prod/finance", "owner", BadInput),
        ("g/nobody", "prod/finance", "viewer", NotFound),
        ("u/nobody", "prod/finance", "viewer", NotFound),
        ("g/eng", "prod/missing", "viewer", NotFound),
        ("g/eng", "nowhere/finance", "viewer", NotFound),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    org: Context, principal: str, target: str, role: str, error: type[Exception]
) -> None:
    before = export_json(org)
    with pytest.raises(error):
        grant(org, principal, target, role)
    assert export_json(org) == before
    assert role_changes(org) == []


def test_removed_group_grant_can_be_revoked_for_clean_up(org: Context) -> None:
    grant(org, "g/finance", "prod/finance", "writer")
    snapshot = org_snapshot()
    snapshot.groups = [g for g in snapshot.groups if g.name != "finance"]
    sync_snapshot(org, snapshot)
    with pytest.raises(NotFound):
        grant(org, "g/finance", "prod/infra", "viewer")
    revoke(org, "g/finance", "prod/finance")
    assert roles_on(org, "prod/finance") == {}
