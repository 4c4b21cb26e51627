"""The truth of a linked workspace: who-can, access, grant listings, the impact preview and the
export answer from Windmill's pulled ACLs and memberships, explained through the IdP's nesting."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.domain.refs import GroupRef, WindmillPrincipal
from groupwarden.domain.roles import Role
from groupwarden.domain.windmill import ITEM_KINDS, item_folder
from groupwarden.services import access, grants, resolve
from groupwarden.services.context import Context
from groupwarden.services.export import export_csv, export_data
from groupwarden.services.layout import list_workspaces
from groupwarden.services.windmill import WindmillLink, pull
from support import access_of, folder_grants, grant, who_can

TOKEN_VAR = "GW_TEST_WINDMILL_TOKEN"
ROLES = {"viewer": Role.VIEWER, "writer": Role.WRITER, "admin": Role.ADMIN}


@pytest.fixture
def standin() -> Iterator[WindmillStandIn]:
    with WindmillStandIn() as server:
        yield server


def build(s: WindmillStandIn) -> None:
    """A small instance over the org fixture's IdP (alice in eng; eng ⊃ eng-oncall holding bob and
    the inactive dan; finance holding chloé and yuki)."""
    s.add_workspace("lab", "Lab")
    s.add_user("lab", "alice", "alice@corp.test")
    s.add_user("lab", "bob", "BOB@corp.test")  # the IdP has bob@corp.test: emails compare without case
    s.add_user("lab", "chloe", "chloe@corp.test", operator=True)
    s.add_user("lab", "yuki", "yuki@corp.test", admin=True)
    s.add_user("lab", "stranger", "stranger@corp.test")  # no IdP identity
    s.add_user("lab", "olga", "olga@corp.test")
    s.workspaces["lab"].users["olga"]["disabled"] = True
    # eng by name, with one extra member (stranger); money by external_id, missing yuki.
    s.add_instance_group("eng", ["alice@corp.test", "bob@corp.test", "stranger@corp.test"])
    s.add_instance_group("money", ["chloe@corp.test"], external_id="g-fin")
    s.add_workspace_group("lab", "local_ops", ["stranger", "chloe"])
    s.add_folder("lab", "reports", ["g/eng"], {"g/money": False, "u/olga": True, "g/gone": False})
    s.add_folder("lab", "quiet", [], {})
    s.add_item("lab", "script", "f/reports/daily", {"g/local_ops": True, "u/chloe": True})
    s.add_item("lab", "flow", "f/reports/weekly", {"g/money": True})
    s.add_item("lab", "app", "f/quiet/panel", {"u/alice": False})
    # A second workspace where alice goes by another username.
    s.add_workspace("lab2", "Lab 2")
    s.add_user("lab2", "amartin", "ALICE@corp.test")
    s.add_folder("lab2", "books", [], {"u/amartin": True})


@pytest.fixture
def linked(org: Context, standin: WindmillStandIn, monkeypatch: pytest.MonkeyPatch) -> Context:
    build(standin)
    monkeypatch.setenv(TOKEN_VAR, standin.superadmin_token)
    pull(org, WindmillLink("default", standin.url, token_env=TOKEN_VAR))
    return org


def brute_force(s: WindmillStandIn, ws_id: str, path: str, folder: str) -> dict[str, Role]:
    """Each Windmill user's role on a folder (path '') or item, read from the stand-in's memory:
    every ACL entry that names the user or a group holding them, then the workspace roles."""
    ws = s.workspaces[ws_id]
    entries: list[tuple[str, Role]] = []
    f = ws.folders[folder]
    for principal in set(f["owners"]) | set(f["extra_perms"]):
        if principal in f["owners"]:
            entries.append((principal, Role.ADMIN))
        else:
            entries.append((principal, Role.WRITER if f["extra_perms"][principal] else Role.VIEWER))
    for kind in ITEM_KINDS:
        item = ws.items[kind].get(path) if path else None
        if item is not None:
            for principal, write in item["extra_perms"].items():
                entries.append((principal, Role.WRITER if write else Role.VIEWER))
    out: dict[str, Role] = {}
    for user in ws.users.values():
        groups = {
            f"g/{g['name']}"
            for g in s.instance_groups.values()
            if user["email"].lower() in {e.lower() for e in g["emails"]}
        }
        groups |= {f"g/{g['name']}" for g in ws.groups.values() if user["username"] in g["members"]}
        held = [role for principal, role in entries if principal in groups | {f"u/{user['username']}"}]
        best = max(held, default=None)
        if user["is_admin"]:
            best = Role.ADMIN
        elif user["operator"] and best is not None:
            best = min(best, Role.VIEWER)
        if best is not None:
            out[user["username"]] = best
    return out


def test_who_can_equals_windmills_acls_resolved_through_its_memberships(
    linked: Context, standin: WindmillStandIn
) -> None:
    targets = [("lab", "", "reports"), ("lab", "", "quiet")]
    for ws in standin.workspaces.values():
        for kind in ITEM_KINDS:
            for path in ws.items[kind]:
                folder = item_folder(path)
                if folder is not None:
                    targets.append((ws.id, path, folder))
    targets.append(("lab2", "", "books"))
    for ws_id, path, folder in targets:
        shown = f"{ws_id}/{path or folder}"
        got = {a.windmill_user: a.role for a in who_can(linked, shown)}
        assert got == brute_force(standin, ws_id, path, folder), shown


def test_who_can_explains_through_the_idp_and_marks_each_membership_difference(linked: Context) -> None:
    rows = who_can(linked, "lab/reports")
    got = {a.windmill_user: a for a in rows}
    assert [a.user_name for a in rows] == ["alice", "bob", "stranger", "yuki", "olga", "chloé"]
    assert got["alice"].explanation == "admin via g/eng, granted on lab/reports"
    # bob is in Windmill's eng directly; the IdP has him through eng-oncall: the chain is the IdP's.
    assert got["bob"].explanation == "admin via g/eng ⊃ g/eng-oncall, granted on lab/reports"
    assert got["bob"].note is None
    assert got["stranger"].explanation == "admin via g/eng, granted on lab/reports"
    assert got["stranger"].note == "in Windmill, not in the IdP (g/eng)"
    assert (got["stranger"].user_name, got["stranger"].name_source) == ("stranger", "windmill")
    assert got["stranger"].user_id < 0 and got["stranger"].display_name is None
    assert got["yuki"].explanation == "admin as workspace admin of lab"
    assert got["yuki"].note == "in the IdP, not in Windmill (g/money)"
    # Matched by external_id: the IdP's name leads, with Windmill's beside it.
    assert got["chloe"].explanation == "viewer via g/finance (Windmill g/money), granted on lab/reports"
    assert (got["chloe"].user_name, got["chloe"].display_name, got["chloe"].name_source) == (
        "chloé",
        "Chloé Durand",
        "idp",
    )
    assert got["olga"].role is Role.WRITER and got["olga"].active is False
    assert got["olga"].explanation == "writer via u/olga (direct grant), granted on lab/reports"
    assert all(a.active for a in rows if a.windmill_user != "olga")
    assert rows.counts_by_role == {Role.ADMIN: 4, Role.WRITER: 1, Role.VIEWER: 1}
    assert [a.windmill_user for a in who_can(linked, "lab/reports", minimum=Role.WRITER)] == [
        "alice",
        "bob",
        "stranger",
        "yuki",
        "olga",
    ]


def test_an_operator_never_edits_and_the_reason_says_so(linked: Context) -> None:
    got = {a.windmill_user: a for a in who_can(linked, "lab/f/reports/daily")}
    assert got["chloe"].role is Role.VIEWER
    assert got["chloe"].explanation == (
        "viewer as operator of lab: operators never edit"
        " (the ACLs give writer via u/chloe (direct grant), granted on lab/f/reports/daily)"
    )
    # The item's own entry outranks the folder's for stranger only where it is higher.
    assert got["stranger"].explanation == "admin via g/eng, granted on lab/reports"


def test_local_workspaces_answer_as_before(linked: Context) -> None:
    grant(linked, "g/eng", "prod/infra", "writer")
    rows = who_can(linked, "prod/infra")
    assert {a.user_name: a.explanation for a in rows} == {
        "alice": "writer via g/eng, granted on prod/infra",
        "bob": "writer via g/eng ⊃ g/eng-oncall, granted on prod/infra",
        "dan": "writer via g/eng ⊃ g/eng-oncall, granted on prod/infra",
    }
    assert all(a.note is None and a.windmill_user is None and a.name_source == "idp" for a in rows)


def test_access_of_reaches_linked_workspaces_by_email(linked: Context) -> None:
    grant(linked, "g/eng", "prod/infra", "writer")
    name, rows = access_of(linked, "alice")
    assert name == "alice"
    assert [(a.target, a.role, a.explanation) for a in rows] == [
        ("lab/f/quiet/panel", Role.VIEWER, "viewer via u/alice (direct grant), granted on lab/f/quiet/panel"),
        ("lab/reports", Role.ADMIN, "admin via g/eng, granted on lab/reports"),
        ("lab2/books", Role.WRITER, "writer via u/amartin (direct grant), granted on lab2/books"),
        ("prod/infra", Role.WRITER, "writer via g/eng, granted on prod/infra"),
    ]
    # As on a local workspace, an item is listed when its own entries reach the user. A
    # workspace admin reaches every folder of the workspace, granted or not.
    _, rows = access_of(linked, "yuki")
    assert {a.target: a.explanation for a in rows if not a.target.startswith("lab/f/")} == {
        "lab/quiet": "admin as workspace admin of lab",
        "lab/reports": "admin as workspace admin of lab",
    }


def test_grant_listings_show_windmills_entries_and_flag_a_dangling_one(linked: Context) -> None:
    rows = folder_grants(linked, "lab/reports")
    assert [(g.target, g.principal, g.role, g.orphaned, g.kind) for g in rows] == [
        ("lab/f/reports/daily", "g/local_ops", Role.WRITER, False, "script"),
        ("lab/f/reports/daily", "u/chloe", Role.WRITER, False, "script"),
        ("lab/f/reports/weekly", "g/money", Role.WRITER, False, "flow"),
        ("lab/reports", "g/eng", Role.ADMIN, False, "folder"),
        ("lab/reports", "g/gone", Role.VIEWER, True, "folder"),
        ("lab/reports", "g/money", Role.VIEWER, False, "folder"),
        ("lab/reports", "u/olga", Role.WRITER, False, "folder"),
    ]
    assert {g.linked for g in rows} == {"default"} and {g.granted_by for g in rows} == {"windmill default"}
    money = next(g for g in rows if g.principal == "g/money")
    assert isinstance(money.principal_ref, WindmillPrincipal)
    assert money.principal_ref.owner == "g/money" and money.principal_ref.workspace == "lab"
    assert isinstance(money.principal_ref.idp, GroupRef) and money.principal_ref.idp.name == "finance"
    assert [g.principal for g in folder_grants(linked, "lab/reports", include_items=False)] == [
        "g/eng",
        "g/gone",
        "g/money",
        "u/olga",
    ]
    assert [(g.target, g.principal) for g in folder_grants(linked, "lab/f/reports/weekly")] == [
        ("lab/f/reports/weekly", "g/money"),
        ("lab/reports", "g/eng"),
        ("lab/reports", "g/gone"),
        ("lab/reports", "g/money"),
        ("lab/reports", "u/olga"),
    ]
    # The IdP group finance: its local grants and the entries of the Windmill group matched to it.
    grant(linked, "g/finance", "prod/finance", "viewer")
    got = grants.group_grants(linked, resolve.group(linked, "finance"))
    assert [(g.target, g.principal, g.linked) for g in got] == [
        ("prod/finance", "g/finance", None),
        ("lab/f/reports/weekly", "g/money", "default"),
        ("lab/reports", "g/money", "default"),
    ]
    got = grants.group_grants(linked, WindmillPrincipal("default", "lab", "g/gone"))
    assert [(g.target, g.orphaned) for g in got] == [("lab/reports", True)]


def test_preview_computes_the_impact_on_windmills_state(linked: Context) -> None:
    target = resolve.target(linked, "lab/reports")
    impact = access.preview_change(
        linked, WindmillPrincipal("default", "lab", "g/money"), target, Role.WRITER
    )
    # chloé is an operator: a writer grant does not move her; yuki is admin anyway.
    assert (impact.before, impact.after, impact.gained, impact.lost) == (Role.VIEWER, Role.WRITER, [], [])
    impact = access.preview_change(linked, WindmillPrincipal("default", "lab", "g/eng"), target, None)
    assert impact.before is Role.ADMIN and impact.gained == []
    assert impact.lost == [
        ("alice", Role.ADMIN, None),
        ("bob", Role.ADMIN, None),
        ("stranger", Role.ADMIN, None),
    ]
    quiet = resolve.target(linked, "lab/quiet")
    impact = access.preview_change(
        linked, WindmillPrincipal("default", "lab", "g/local_ops"), quiet, Role.WRITER
    )
    # The operator among the group's members gains viewer only.
    assert impact.before is None and impact.lost == []
    assert impact.gained == [("chloé", None, Role.VIEWER), ("stranger", None, Role.WRITER)]
    assert impact.summary() == "g/local_ops: none -> writer on lab/quiet, 2 users gain writer"


def test_export_carries_windmills_acls_and_the_link(linked: Context) -> None:
    data = export_data(linked)
    spaces = {w["id"]: w for w in data["workspaces"]}
    assert spaces["lab"]["windmill"] == "default" and "windmill" not in spaces["prod"]
    reports = next(f for f in spaces["lab"]["folders"] if f["name"] == "reports")
    assert reports["grants"] == [
        {"principal": "g/eng", "role": "admin"},
        {"principal": "g/gone", "role": "viewer"},
        {"principal": "g/money", "role": "viewer"},
        {"principal": "u/olga", "role": "writer"},
    ]
    assert reports["items"] == [
        {
            "path": "f/reports/daily",
            "grants": [
                {"principal": "g/local_ops", "role": "writer"},
                {"principal": "u/chloe", "role": "writer"},
            ],
        },
        {"path": "f/reports/weekly", "grants": [{"principal": "g/money", "role": "writer"}]},
    ]
    assert "grant,,,,,,,lab/f/reports/daily,u/chloe,writer,false" in export_csv(linked).splitlines()
    assert json.loads(json.dumps(data)) == data


def test_workspace_list_says_which_instance_a_workspace_is_linked_to(linked: Context) -> None:
    spaces = {w.id: w for w in list_workspaces(linked)}
    assert spaces["lab"].linked == "default" and spaces["prod"].linked is None
    # A linked folder counts Windmill's entries, its items' included.
    assert {f.name: f.grants for f in spaces["lab"].folders} == {"quiet": 1, "reports": 7}


def test_access_of_and_who_can_agree_on_every_linked_target(linked: Context) -> None:
    for user in ("alice", "bob", "chloé", "yuki"):
        _, rows = access_of(linked, user)
        for a in rows:
            if a.target.startswith("prod/"):
                continue
            [mine] = [w for w in who_can(linked, a.target) if w.user_name == user]
            assert (mine.role, mine.explanation) == (a.role, a.explanation), (user, a.target)


def test_a_written_through_grant_shows_in_who_can_as_its_preview_said(
    linked: Context, standin: WindmillStandIn
) -> None:
    quiet = resolve.target(linked, "lab/quiet")
    # Named by the IdP group's name: the Windmill group it is matched to is what changes.
    who = resolve.principal_on_target(linked, "g/finance", quiet)
    assert isinstance(who, WindmillPrincipal) and who.owner == "g/money"
    impact = access.preview_change(linked, who, quiet, Role.WRITER)
    assert impact.gained == [("chloé", None, Role.VIEWER)]
    before = {a.windmill_user: a.role for a in who_can(linked, "lab/quiet")}
    grants.grant(linked, who, quiet, Role.WRITER, expected=None)
    after = {a.windmill_user: a.role for a in who_can(linked, "lab/quiet")}
    assert {u: r for u, r in after.items() if before.get(u) != r} == {"chloe": Role.VIEWER}
    assert after == brute_force(standin, "lab", "", "quiet")
    assert [(g.principal, g.role) for g in folder_grants(linked, "lab/quiet", include_items=False)] == [
        ("g/money", Role.WRITER)
    ]
