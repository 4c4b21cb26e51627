"""Role changes on a linked workspace, written through to the Windmill stand-in over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.domain.errors import (
    Ambiguous,
    BadInput,
    GroupwardenError,
    NeedsConfirmation,
    NotFound,
    ReadOnly,
    StaleView,
)
from groupwarden.domain.refs import GroupRef, TargetRef, UserRef, WindmillPrincipal
from groupwarden.domain.roles import Role
from groupwarden.services import grants, resolve
from groupwarden.services.audit import role_changes, verify_chain
from groupwarden.services.context import Context
from groupwarden.services.grants import ANY, Change
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.services.windmill import WindmillLink, pull
from groupwarden.services.windmill import write as windmill_write
from groupwarden.sources.windmill import WindmillClient, WindmillError
from groupwarden.store import windmill as store
from support import org_snapshot, sync_snapshot

TOKEN_VAR = "GW_TEST_WINDMILL_WRITE_TOKEN"
WS = "ops"
FOLDER = f"{WS}/fin"
ITEM = f"{WS}/f/fin/close_books"
ROLES: list[Role | None] = [None, Role.VIEWER, Role.WRITER, Role.ADMIN]


def build(standin: WindmillStandIn) -> None:
    """One workspace: an admin, two users matched to the IdP by email, two instance groups
    (one matched by name, one by external_id), a workspace group, a folder and an item."""
    standin.add_workspace(WS, "Operations")
    standin.add_user(WS, "boss", "boss@windmill.test", admin=True)
    standin.add_user(WS, "alice_w", "ALICE@corp.test")
    standin.add_user(WS, "bob", "bob@corp.test")
    standin.add_instance_group("eng", ["alice@corp.test"])
    standin.add_instance_group("fin_team", ["chloe@corp.test"], external_id="g-fin")
    standin.add_workspace_group(WS, "local_ops", ["bob"])
    standin.add_folder(WS, "fin", ["u/boss"])
    standin.add_item(WS, "script", "f/fin/close_books", {})


@pytest.fixture
def standin(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Iterator[WindmillStandIn]:
    with WindmillStandIn() as server:
        build(server)
        monkeypatch.setenv(TOKEN_VAR, server.superadmin_token)
        sync_snapshot(ctx, org_snapshot())
        pull(ctx, WindmillLink("default", server.url, token_env=TOKEN_VAR))
        yield server


def target(ctx: Context, text: str = FOLDER) -> TargetRef:
    return resolve.target(ctx, text)


def who(ctx: Context, text: str, where: str = FOLDER) -> WindmillPrincipal:
    found = resolve.principal_on_target(ctx, text, target(ctx, where))
    assert isinstance(found, WindmillPrincipal)
    return found


def live_folder(standin: WindmillStandIn) -> tuple[list[str], dict[str, bool]]:
    folder = standin.workspaces[WS].folders["fin"]
    return sorted(folder["owners"]), dict(folder["extra_perms"])


def stored_acl(ctx: Context, kind: str = "folder", path: str = "") -> dict[str, str]:
    with ctx.engine.connect() as conn:
        return store.target_acl(conn, WS, "fin", kind, path)


def folder_state(role: Role | None, owner: str = "g/eng") -> tuple[list[str], dict[str, bool]]:
    owners, perms = ["u/boss"], {"u/boss": True}
    if role is Role.ADMIN:
        owners.append(owner)
        perms[owner] = True
    elif role is not None:
        perms[owner] = role is Role.WRITER
    return sorted(owners), perms


def change(
    ctx: Context, principal: WindmillPrincipal, where: TargetRef, after: Role | None, **options: Any
) -> Change:
    if after is None:
        return grants.revoke(ctx, principal, where, **options)
    return grants.grant(ctx, principal, where, after, **options)


# --- resolution -----------------------------------------------------------------------------------


def test_principals_resolve_to_what_windmill_acls_hold(ctx: Context, standin: WindmillStandIn) -> None:
    # The Windmill group name, or the IdP group matched to it by name or by external_id.
    eng = who(ctx, "g/eng")
    assert eng.owner == "g/eng" and isinstance(eng.idp, GroupRef) and eng.idp.upstream_id == "g-eng"
    assert who(ctx, "g/g-eng").owner == "g/eng"
    assert who(ctx, "g/finance").owner == "g/fin_team"
    assert who(ctx, "g/local_ops").owner == "g/local_ops"
    # Users: the workspace username, whether typed as it or as the IdP userName (email, any case).
    alice = who(ctx, "u/alice")
    assert alice.owner == "u/alice_w" and isinstance(alice.idp, UserRef) and alice.idp.user_name == "alice"
    assert who(ctx, "u/alice_w").owner == "u/alice_w"
    boss = who(ctx, "u/boss")
    assert boss.owner == "u/boss" and boss.idp is None


def test_names_windmill_cannot_hold_are_refused(ctx: Context, standin: WindmillStandIn) -> None:
    with pytest.raises(NotFound, match="IdP group 'cycle-a' has no Windmill group"):
        who(ctx, "g/cycle-a")
    with pytest.raises(NotFound, match="'yuki' is not a user of workspace ops"):
        who(ctx, "u/yuki")
    with pytest.raises(NotFound, match="no group named 'nobody'"):
        who(ctx, "g/nobody")
    standin.add_user(WS, "alice2", "alice@corp.test")
    pull(ctx, WindmillLink("default", standin.url, token_env=TOKEN_VAR))
    with pytest.raises(Ambiguous) as refused:
        who(ctx, "u/alice")
    assert refused.value.candidates == ["u/alice2  (alice@corp.test)", "u/alice_w  (ALICE@corp.test)"]


def test_a_deleted_group_left_in_an_acl_can_be_named_to_revoke_it(
    ctx: Context, standin: WindmillStandIn
) -> None:
    standin.set_folder(WS, "fin", ["u/boss"], {"u/boss": True, "g/gone": True})
    pull(ctx, WindmillLink("default", standin.url, token_env=TOKEN_VAR))
    gone = who(ctx, "g/gone")
    assert (gone.owner, gone.idp) == ("g/gone", None)
    grants.revoke(ctx, gone, target(ctx), expected=Role.WRITER)
    assert live_folder(standin) == (["u/boss"], {"u/boss": True})


def test_a_local_workspace_resolves_as_before(ctx: Context, standin: WindmillStandIn) -> None:
    add_workspace(ctx, "lab")
    add_folder(ctx, "lab", "bench")
    found = resolve.principal_on_target(ctx, "g/eng", target(ctx, "lab/bench"))
    assert isinstance(found, GroupRef) and found.name == "eng"


# --- every transition -----------------------------------------------------------------------------


@pytest.mark.parametrize("before", ROLES, ids=lambda r: str(r))
@pytest.mark.parametrize("after", ROLES, ids=lambda r: str(r))
def test_every_folder_transition_is_written_and_read_back(
    ctx: Context, standin: WindmillStandIn, before: Role | None, after: Role | None
) -> None:
    standin.set_folder(WS, "fin", *folder_state(before))
    pull(ctx, WindmillLink("default", standin.url, token_env=TOKEN_VAR))
    where, eng = target(ctx), who(ctx, "g/eng")
    if before is None and after is None:
        with pytest.raises(GroupwardenError, match="nothing to revoke"):
            change(ctx, eng, where, after, expected=before)
        return
    result = change(ctx, eng, where, after, expected=before)
    assert (result.before, result.after) == (before, after)
    assert live_folder(standin) == folder_state(after)
    expected_store = {"u/boss": "admin"} | ({} if after is None else {"g/eng": after.label})
    assert stored_acl(ctx) == expected_store
    events = role_changes(ctx)
    if before == after:
        assert events == []
    else:
        [event] = events
        assert (event.target, event.principal, event.before, event.after) == (
            FOLDER,
            "g/eng",
            None if before is None else before.label,
            None if after is None else after.label,
        )
        assert event.applied_to == "default"
        assert "applied to windmill default" in event.describe()


@pytest.mark.parametrize("before", ROLES[:3], ids=lambda r: str(r))
@pytest.mark.parametrize("after", ROLES[:3], ids=lambda r: str(r))
def test_every_item_transition_is_written_and_read_back(
    ctx: Context, standin: WindmillStandIn, before: Role | None, after: Role | None
) -> None:
    perms = {} if before is None else {"u/bob": before is Role.WRITER}
    standin.add_item(WS, "script", "f/fin/close_books", perms)
    pull(ctx, WindmillLink("default", standin.url, token_env=TOKEN_VAR))
    where, bob = target(ctx, ITEM), who(ctx, "u/bob", ITEM)
    if before is None and after is None:
        with pytest.raises(GroupwardenError, match="nothing to revoke"):
            change(ctx, bob, where, after, expected=before)
        return
    change(ctx, bob, where, after, expected=before)
    item = standin.workspaces[WS].items["script"]["f/fin/close_books"]
    assert item["extra_perms"] == ({} if after is None else {"u/bob": after is Role.WRITER})
    assert stored_acl(ctx, "script", "f/fin/close_books") == ({} if after is None else {"u/bob": after.label})
    assert len(role_changes(ctx)) == (0 if before == after else 1)


def test_items_have_no_admin(ctx: Context, standin: WindmillStandIn) -> None:
    count = standin.request_count
    with pytest.raises(BadInput, match="no admin role"):
        grants.grant(ctx, who(ctx, "u/bob", ITEM), target(ctx, ITEM), Role.ADMIN)
    assert standin.request_count == count


# --- safety ---------------------------------------------------------------------------------------


def test_a_grant_takes_two_round_trips(ctx: Context, standin: WindmillStandIn) -> None:
    where, eng = target(ctx), who(ctx, "g/eng")
    start = standin.request_count
    grants.grant(ctx, eng, where, Role.WRITER, expected=None)
    assert standin.requests[start:] == [
        "GET /api/w/ops/folders/get/fin",
        "POST /api/w/ops/folders/removeowner/fin",
    ]


def test_a_change_made_out_of_band_to_another_principal_survives(
    ctx: Context, standin: WindmillStandIn
) -> None:
    where, eng = target(ctx), who(ctx, "g/eng")
    # Someone adds bob in Windmill's own UI after our last pull.
    standin.set_folder(WS, "fin", ["u/boss"], {"u/boss": True, "u/bob": True})
    grants.grant(ctx, eng, where, Role.VIEWER, expected=None)
    assert live_folder(standin) == (["u/boss"], {"u/boss": True, "u/bob": True, "g/eng": False})
    # The store caught up with bob too: it holds what the live read showed, plus the change.
    assert stored_acl(ctx) == {"u/boss": "admin", "u/bob": "writer", "g/eng": "viewer"}


def test_a_stale_view_is_refused_with_what_windmill_holds(ctx: Context, standin: WindmillStandIn) -> None:
    where, eng = target(ctx), who(ctx, "g/eng")
    standin.set_folder(WS, "fin", ["u/boss"], {"u/boss": True, "g/eng": False})
    with pytest.raises(StaleView) as refused:
        grants.grant(ctx, eng, where, Role.WRITER, expected=None)
    assert "you saw none, windmill default holds viewer now" in str(refused.value)
    assert live_folder(standin) == (["u/boss"], {"u/boss": True, "g/eng": False})
    assert stored_acl(ctx) == {"u/boss": "admin", "g/eng": "viewer"}
    assert role_changes(ctx) == []
    # ANY skips the check, as scripts that own the state ask.
    grants.grant(ctx, eng, where, Role.WRITER, expected=ANY)
    assert live_folder(standin)[1]["g/eng"] is True


def test_the_last_admin_needs_confirmation(ctx: Context, standin: WindmillStandIn) -> None:
    where, boss = target(ctx), who(ctx, "u/boss")
    count = standin.request_count
    with pytest.raises(NeedsConfirmation, match="last admin of ops/fin"):
        grants.revoke(ctx, boss, where, expected=Role.ADMIN)
    assert standin.request_count == count + 1  # the live read only
    assert live_folder(standin) == (["u/boss"], {"u/boss": True})
    grants.revoke(ctx, boss, where, expected=Role.ADMIN, confirm_last_admin=True)
    assert live_folder(standin) == ([], {})
    assert stored_acl(ctx) == {}


def test_a_refusal_halfway_through_leaves_the_store_as_windmill_is(
    ctx: Context, standin: WindmillStandIn
) -> None:
    standin.set_folder(WS, "fin", ["u/boss", "g/eng"], {"u/boss": True, "g/eng": True})
    where, eng = target(ctx), who(ctx, "g/eng")
    # admin -> none takes removeowner, then acls/remove: the second is refused.
    standin.fail("POST", "/api/w/ops/acls/remove/*", status=403, text="Require Admin privileges")
    with pytest.raises(WindmillError) as failed:
        grants.revoke(ctx, eng, where, expected=ANY)
    message = str(failed.value)
    assert "\n" not in message and standin.superadmin_token not in message
    assert "HTTP 403: Require Admin privileges" in message
    assert "windmill default now holds writer for g/eng on ops/fin" in message
    # removeowner went through (extra_perms stays true: a writer), acls/remove did not.
    assert live_folder(standin) == (["u/boss"], {"u/boss": True, "g/eng": True})
    assert stored_acl(ctx) == {"u/boss": "admin", "g/eng": "writer"}
    assert role_changes(ctx) == []


def quick_client(standin: WindmillStandIn) -> WindmillClient:
    return WindmillClient(standin.url, standin.superadmin_token, max_attempts=1, sleep=lambda _s: None)


def test_windmill_down_halfway_says_the_store_may_be_stale(ctx: Context, standin: WindmillStandIn) -> None:
    standin.set_folder(WS, "fin", ["u/boss", "g/eng"], {"u/boss": True, "g/eng": True})
    pull(ctx, WindmillLink("default", standin.url, token_env=TOKEN_VAR))
    where, eng = target(ctx), who(ctx, "g/eng")
    standin.down_after(2)  # the live read and removeowner; then nothing answers
    with quick_client(standin) as client, pytest.raises(WindmillError) as failed:
        windmill_write.write_through(ctx, eng, where, None, expected=ANY, any_role=ANY, client=client)
    message = str(failed.value)
    assert "\n" not in message and standin.superadmin_token not in message
    assert "could not be read back, so the store may be stale for ops/fin" in message
    assert "nothing was recorded as applied" in message
    assert role_changes(ctx) == []
    # The store still holds what the last pull read: nothing is claimed.
    assert stored_acl(ctx) == {"u/boss": "admin", "g/eng": "admin"}


def test_a_token_without_rights_gets_windmill_text_and_no_token(
    ctx: Context, standin: WindmillStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bob may see the folder (a viewer) but not change it: his token is refused on the write.
    standin.set_folder(WS, "fin", ["u/boss"], {"u/boss": True, "u/bob": False})
    pull(ctx, WindmillLink("default", standin.url, token_env=TOKEN_VAR))
    bob_token = standin.add_token("bob@corp.test")
    monkeypatch.setenv(TOKEN_VAR, bob_token)  # the link reads its token again, from the variable
    where, eng = target(ctx), who(ctx, "g/eng")
    with pytest.raises(WindmillError) as failed:
        grants.grant(ctx, eng, where, Role.WRITER, expected=None)
    message = str(failed.value)
    assert "HTTP 401: You are not owner of the folder fin" in message
    assert bob_token not in message and "\n" not in message
    assert "still holds none for g/eng on ops/fin; nothing was changed" in message
    assert live_folder(standin) == (["u/boss"], {"u/boss": True, "u/bob": False})
    assert role_changes(ctx) == []


def test_read_only_refuses_before_any_call(ctx: Context, standin: WindmillStandIn) -> None:
    where, eng = target(ctx), who(ctx, "g/eng")
    ctx.read_only = True
    count = standin.request_count
    with pytest.raises(ReadOnly):
        grants.grant(ctx, eng, where, Role.WRITER)
    with pytest.raises(ReadOnly):
        grants.revoke(ctx, who(ctx, "u/boss"), where)
    assert standin.request_count == count


def test_a_store_principal_is_refused_on_a_linked_workspace(ctx: Context, standin: WindmillStandIn) -> None:
    count = standin.request_count
    with pytest.raises(BadInput, match="linked to windmill default"):
        grants.grant(ctx, resolve.principal(ctx, "g/eng"), target(ctx), Role.WRITER)
    assert standin.request_count == count


def test_the_audit_chain_verifies_after_write_throughs(ctx: Context, standin: WindmillStandIn) -> None:
    where = target(ctx)
    add_workspace(ctx, "lab")
    add_folder(ctx, "lab", "bench")
    grants.grant(ctx, resolve.principal(ctx, "g/eng"), target(ctx, "lab/bench"), Role.ADMIN)
    grants.grant(ctx, who(ctx, "g/eng"), where, Role.ADMIN, expected=None)
    grants.grant(ctx, who(ctx, "u/alice"), where, Role.VIEWER, expected=None)
    grants.revoke(ctx, who(ctx, "g/eng"), where, expected=Role.ADMIN)
    check = verify_chain(ctx)
    assert (check.events, check.broken) == (4, None)
    applied = [e.applied_to for e in reversed(role_changes(ctx))]
    assert applied == [None, "default", "default", "default"]
    assert [e.principal for e in reversed(role_changes(ctx))][2] == "u/alice_w"
