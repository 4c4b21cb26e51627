"""The demo: its data files, its SCIM server, and a whole prepare_demo run into a real database."""

from __future__ import annotations

import json
import os
import threading
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from groupwarden.demo import TOKEN_ENV, DemoSession, load_organisation, prepare_demo
from groupwarden.demo import windmill as demo_windmill
from groupwarden.demo.server import start_scim_server
from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.domain.errors import BadInput
from groupwarden.services.directory import list_groups
from groupwarden.services.layout import list_workspaces
from groupwarden.services.windmill import drift, list_instances, workspace_links
from support import folder_grants, list_members, who_can

# Starts servers, processes or whole apps: left out of the quick loop (pytest -m 'not slow').
pytestmark = pytest.mark.slow

MARKUP_GROUP = "[bold red]admins[/]"


def load_layout() -> dict[str, Any]:
    return tomllib.loads((files("groupwarden.demo_assets") / "layout.toml").read_text(encoding="utf-8"))


def group_named(org: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in org["groups"] if g["displayName"] == name)


def test_demo_assets_load_through_importlib_resources() -> None:
    assets = files("groupwarden.demo_assets")
    org = json.loads((assets / "organisation.json").read_text(encoding="utf-8"))
    assert org == load_organisation()
    users, groups = org["users"], org["groups"]
    assert 280 <= len(users) <= 320
    assert 30 <= len(groups) <= 40
    assert 0.05 < sum(not u["active"] for u in users) / len(users) < 0.12
    assert all(u["emails"] and u["emails"][0].startswith(u["userName"] + "@") for u in users)
    display_names = [u["displayName"] for u in users]
    assert any("田中" in name for name in display_names)
    assert any(len(name) > 60 for name in display_names)
    assert MARKUP_GROUP in {g["displayName"] for g in groups}
    assert any(not g["members"] for g in groups)

    layout = load_layout()
    assert [w["id"] for w in layout["workspaces"]] == ["prod", "staging", "dev", "analytics"]
    for workspace in layout["workspaces"]:
        for folder in workspace["folders"]:
            admins = [g for g in folder["grants"] if g["role"] == "admin"]
            assert admins, f"{workspace['id']}/{folder['name']} has no admin"
    single = [
        f
        for w in layout["workspaces"]
        for f in w["folders"]
        if sum(g["role"] == "admin" for g in f["grants"]) == 1
    ]
    assert len(single) > 10


def test_generator_is_deterministic_and_the_committed_file_is_current() -> None:
    from groupwarden.demo_assets.make_organisation import make_organisation

    assert make_organisation() == make_organisation()
    assert make_organisation() == load_organisation()


def test_demo_server_needs_its_token_and_stops() -> None:
    with start_scim_server("demo-test-token") as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v2")
        refused = httpx.get(f"{server.url}/Users", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        listed = httpx.get(f"{server.url}/Users", headers={"Authorization": "Bearer demo-test-token"})
        assert listed.status_code == 200 and listed.json()["totalResults"] == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/Users", timeout=2)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSession]:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    messages: list[str] = []
    session = prepare_demo(str(db), progress=messages.append)
    assert messages, "prepare_demo reported no progress"
    yield session
    session.close()
    assert TOKEN_ENV not in os.environ


def test_demo_counts_match_the_organisation(demo: DemoSession) -> None:
    org = load_organisation()
    with demo.ctx.engine.connect() as conn:
        users = conn.execute(
            text("SELECT COUNT(*), SUM(CASE WHEN active THEN 0 ELSE 1 END) FROM users")
        ).one()
        user_links = conn.execute(text("SELECT COUNT(*) FROM user_memberships")).scalar_one()
        group_links = conn.execute(text("SELECT COUNT(*) FROM group_memberships")).scalar_one()
    assert users[0] == len(org["users"])
    assert users[1] == sum(not u["active"] for u in org["users"])
    assert user_links == sum("user" in m for g in org["groups"] for m in g["members"])
    assert group_links == sum("group" in m for g in org["groups"] for m in g["members"])
    groups = list_groups(demo.ctx)
    assert sorted(g.name for g in groups) == sorted(g["displayName"] for g in org["groups"])
    summary = demo.summary()
    assert f"{len(org['users'])} users" in summary
    assert demo.database in summary


def test_demo_users_keep_their_names_and_emails(demo: DemoSession) -> None:
    org = load_organisation()
    expected = {u["userName"]: u for u in org["users"]}
    with demo.ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT user_name, display_name, emails, active FROM users")).all()
    for user_name, display_name, emails, active in rows:
        source = expected[user_name]
        assert display_name == source["displayName"]
        assert emails.split("\n") == source["emails"]
        assert bool(active) == source["active"]


def test_demo_nesting_and_the_cycle(demo: DemoSession) -> None:
    org = load_organisation()
    jp_only = [m["user"] for m in group_named(org, "営業部 (Sales JP)")["members"] if "user" in m]
    members = list_members(demo.ctx, "all-staff")
    via = {m.user_name: m.via for m in members}
    chain = ("all-staff", "sales", "sales-apac", "営業部 (Sales JP)")
    assert any(via.get(u) == chain for u in jp_only)

    sre = {m["user"] for m in group_named(org, "sre")["members"] if "user" in m}
    responders = {m["user"] for m in group_named(org, "incident-response")["members"] if "user" in m}
    sre_members = list_members(demo.ctx, "sre")
    responder_members = list_members(demo.ctx, "incident-response")
    assert {m.user_name for m in sre_members} == sre | responders
    assert {m.user_name for m in responder_members} == sre | responders
    assert any(m.via == ("sre", "incident-response") for m in sre_members)
    assert any(m.via == ("incident-response", "sre") for m in responder_members)


def test_demo_markup_group_and_empty_group(demo: DemoSession) -> None:
    rows = {g.name: g for g in list_groups(demo.ctx)}
    assert rows[MARKUP_GROUP].direct_members == 3
    assert rows["legacy-vpn-users"].direct_members == 0
    grants = folder_grants(demo.ctx, "prod/customer_data")
    assert f"g/{MARKUP_GROUP}" in {g.principal for g in grants}


def test_demo_layout_is_imported(demo: DemoSession) -> None:
    layout = load_layout()
    linked = workspace_links(demo.ctx)
    spaces = {w.id: w for w in list_workspaces(demo.ctx) if w.id not in linked}
    assert set(spaces) == {w["id"] for w in layout["workspaces"]}
    for workspace in layout["workspaces"]:
        assert spaces[workspace["id"]].name == workspace["name"]
        assert {f.name for f in spaces[workspace["id"]].folders} == {f["name"] for f in workspace["folders"]}
        for folder in workspace["folders"]:
            target = f"{workspace['id']}/{folder['name']}"
            got = {(g.principal, g.role.label) for g in folder_grants(demo.ctx, target)}
            assert got == {(g["principal"], g["role"]) for g in folder["grants"]}, target


def test_demo_who_can_explains_through_nested_groups(demo: DemoSession) -> None:
    org = load_organisation()
    # A Sales JP member who is in no other group reaches the dashboards only through all-staff.
    elsewhere = {
        m["user"] for g in org["groups"] if g["key"] != "sales-jp" for m in g["members"] if "user" in m
    }
    jp_user = next(
        m["user"]
        for m in group_named(org, "営業部 (Sales JP)")["members"]
        if "user" in m and m["user"] not in elsewhere
    )
    access = {a.user_name: a for a in who_can(demo.ctx, "analytics/dashboards")}
    assert access[jp_user].explanation == (
        "viewer via g/all-staff ⊃ g/sales ⊃ g/sales-apac ⊃ g/営業部 (Sales JP),"
        " granted on analytics/dashboards"
    )


def test_demo_token_stays_out_of_the_database(demo: DemoSession) -> None:
    token = demo.token
    assert os.environ[TOKEN_ENV] == token
    assert token not in demo.summary() and token not in repr(demo)
    db = Path(demo.database)
    demo.ctx.engine.dispose()
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            assert token.encode() not in path.read_bytes()


@pytest.mark.slow
def test_demo_default_database_starts_clean_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    for _ in range(2):
        with prepare_demo(None) as session:
            assert Path(session.database).is_relative_to(tmp_path)
            assert session.sync_report.diff.groups_added


def test_demo_refuses_a_database_that_already_holds_a_demo(demo: DemoSession) -> None:
    with pytest.raises(BadInput, match="already holds a demo"):
        prepare_demo(demo.database)


def test_demo_links_a_windmill_standin_labelled_as_such(demo: DemoSession) -> None:
    [instance] = list_instances(demo.ctx)
    assert (instance.name, instance.standin, instance.workspaces) == ("demo", True, 2)
    links = workspace_links(demo.ctx)
    assert {wid: (row.instance, row.standin) for wid, row in links.items()} == {
        "ops": ("demo", True),
        "lab": ("demo", True),
    }
    # Local and linked workspaces side by side, the linked ones with Windmill's folders.
    spaces = {w.id: w for w in list_workspaces(demo.ctx)}
    assert {"prod", "staging", "dev", "analytics", "ops", "lab"} == set(spaces)
    assert {f.name for f in spaces["ops"].folders} == {"deploys", "incidents", "access_reviews"}
    summary = demo.summary().splitlines()
    # The local line counts the local workspaces only, as before the stand-in was linked.
    assert "4 workspaces, 24 folders, 65 grants" in summary
    line = next(text for text in summary if text.startswith("windmill stand-in:"))
    assert line.startswith("windmill stand-in: 2 workspaces linked, 20 ACL entries; drift: dangling 1,")
    assert demo.windmill.standin.url in line


def test_demo_standin_groups_are_the_organisation_groups_as_windmill_names_them(demo: DemoSession) -> None:
    groups = demo.windmill.standin.instance_groups
    org = load_organisation()
    # Every IdP group, normalised, but the one deleted on purpose; plus one made in Windmill only.
    expected = {g["displayName"].replace(" ", "_").lower() for g in org["groups"]} - {"legacy-vpn-users"}
    assert set(groups) == expected | {"night_shift"}
    assert "équipe_qualité" in groups and "[bold_red]admins[/]" in groups
    # sre holds its active members and incident-response's (nested), less the push that failed.
    users = {u["key"]: u for u in org["users"]}
    direct = {
        m["user"]
        for name in ("sre", "incident-response")
        for m in group_named(org, name)["members"]
        if "user" in m
    }
    emails = {users[k]["emails"][0] for k in direct if users[k]["active"]} - {"oscar.davies@example.com"}
    assert sorted(groups["sre"]["emails"]) == sorted(emails)
    assert "temp.auditor@example.net" in groups["security"]["emails"]


def test_demo_windmill_drift_shows_each_deliberate_drift(demo: DemoSession) -> None:
    report = drift(demo.ctx, "demo")
    assert [(e.principal, e.target) for e in report.dangling] == [
        ("g/legacy-vpn-users", "ops/access_reviews")
    ]
    assert [(e.principal, e.target) for e in report.unknown_users] == [("u/theo_moreau", "ops/incidents")]
    moved = {m.group: (m.missing, m.extra) for m in report.membership_drift}
    assert moved == {
        "sre": (["oscar.davies@example.com"], []),
        "security": ([], ["temp.auditor@example.net"]),
    }
    assert {(u.side, u.group) for u in report.unmatched} == {
        ("windmill", "night_shift"),
        ("idp", "legacy-vpn-users"),
    }
    assert {(a.workspace, a.group, a.role) for a in report.auto_add} == {
        ("ops", "eng-platform", "developer"),
        ("lab", "data-science", "developer"),
    }


def test_demo_windmill_token_stays_out_of_the_summary_and_the_database(demo: DemoSession) -> None:
    token = demo.windmill.token
    assert token == demo.windmill.standin.superadmin_token
    assert token not in demo.summary() and token not in repr(demo)
    db = Path(demo.database)
    demo.ctx.engine.dispose()
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            assert token.encode() not in path.read_bytes()


def test_demo_close_stops_the_standin_and_clears_its_token(tmp_path: Path) -> None:
    session = prepare_demo(str(tmp_path / "demo.db"))
    url = session.windmill.standin.url
    assert httpx.get(f"{url}/api/groups/list", timeout=5).status_code == 401
    session.close()
    assert demo_windmill.TOKEN_ENV not in os.environ
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/api/groups/list", timeout=5)


def test_standin_holds_a_request_until_released() -> None:
    with WindmillStandIn() as standin:
        held = standin.hold("GET", "/api/groups/list")
        headers = {"Authorization": f"Bearer {standin.superadmin_token}"}
        answers: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: answers.append(
                httpx.get(f"{standin.url}/api/groups/list", headers=headers, timeout=30)
            )
        )
        waiting.start()
        assert held.arrived.wait(10)
        # Other calls are answered while one is held.
        other = httpx.get(f"{standin.url}/api/workspaces/list_as_superadmin", headers=headers, timeout=10)
        assert other.status_code == 200
        assert not answers
        held.release()
        waiting.join(10)
        assert [a.status_code for a in answers] == [200]
