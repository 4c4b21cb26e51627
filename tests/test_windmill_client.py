"""WindmillClient against the stand-in, over a real socket on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from groupwarden.demo.windmill_server import WindmillStandIn, populate
from groupwarden.domain.directory import Progress
from groupwarden.domain.errors import BadInput, SyncError
from groupwarden.domain.roles import Role
from groupwarden.domain.windmill import folder_role, folder_writes, item_role, item_writes
from groupwarden.sources.windmill import AutoAdd, WindmillClient, WindmillError

ROLES = [None, Role.VIEWER, Role.WRITER, Role.ADMIN]


@pytest.fixture
def standin() -> Iterator[WindmillStandIn]:
    with WindmillStandIn() as server:
        populate(server, workspaces=2, folders=4, items=6, users=6, instance_groups=3)
        yield server


def make_client(server: WindmillStandIn, token: str | None = None, **options: object) -> WindmillClient:
    settings: dict[str, object] = {"max_attempts": 1, "sleep": lambda _: None}
    settings.update(options)
    return WindmillClient(server.url, token or server.superadmin_token, **settings)  # type: ignore[arg-type]


@pytest.fixture
def client(standin: WindmillStandIn) -> Iterator[WindmillClient]:
    with make_client(standin) as c:
        yield c


def fail_message(excinfo: pytest.ExceptionInfo[WindmillError], *tokens: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for token in tokens:
        assert token not in message
    return message


# --- reads --------------------------------------------------------------------------------------


def test_every_read_call_and_its_shape(standin: WindmillStandIn, client: WindmillClient) -> None:
    workspaces = {w.id: w for w in client.workspaces()}
    assert set(workspaces) == {"ws00", "ws01", "old00"}
    assert workspaces["old00"].archived and not workspaces["ws00"].archived

    folders = client.folders("ws00")
    assert [f.name for f in folders] == ["folder_0000", "folder_0001", "folder_0002", "folder_0003"]
    assert folders[0].owners == ("g/team_0",)
    assert folders[0].extra_perms["g/team_0"] is True
    assert client.folder("ws00", "folder_0001") == folders[1]

    scripts = client.items("ws00", "script")
    assert {i.path for i in scripts} >= {"f/folder_0000/item_000", "u/user_0/scratch"}
    assert all(i.kind == "script" for i in scripts)
    flows = client.items("ws00", "flow")
    assert [i.path for i in flows][:1] == ["f/folder_0000/item_001"]
    stored = standin.workspaces["ws00"].items["flow"]["f/folder_0000/item_001"]["extra_perms"]
    assert flows[0].extra_perms == stored
    assert client.acl("ws00", "flow", "f/folder_0000/item_001") == stored
    assert client.acl("ws00", "folder", "folder_0000") == folders[0].extra_perms

    users = {u.username: u for u in client.users("ws00")}
    assert users["user_0"].is_admin and users["user_1"].operator
    assert users["user_2"].email == "user_2@example.test"

    groups = {g.name: g for g in client.instance_groups()}
    assert set(groups) == {"team_0", "team_1", "team_2"}
    assert groups["team_1"].members == ("user_1@example.test", "user_4@example.test")
    detail = client.instance_group("team_0")
    assert {(w.workspace_id, w.role) for w in detail.workspaces} == {
        ("ws00", "developer"),
        ("ws01", "developer"),
    }

    assert [g.name for g in client.workspace_groups("ws00")] == ["local_0", "local_1"]
    assert client.workspace_group("ws00", "local_0").members == ("user_0", "user_3")
    assert client.auto_add("ws00") == AutoAdd(("team_0",), {"team_0": "developer"})
    assert client.auto_add("ws00").role_of("team_9") == "developer"
    assert {w.id for w in client.my_workspaces()} == set()  # the superadmin is no member


def test_auto_add_reads_the_older_flat_keys(standin: WindmillStandIn, client: WindmillClient) -> None:
    standin.set_settings(
        "ws00",
        {"auto_add_instance_groups": ["team_1"], "auto_add_instance_groups_roles": {"team_1": "operator"}},
    )
    assert client.auto_add("ws00") == AutoAdd(("team_1",), {"team_1": "operator"})
    standin.set_settings("ws00", {"auto_add_instance_groups": None, "auto_add_instance_groups_roles": None})
    assert client.auto_add("ws00") == AutoAdd((), {})
    standin.set_settings("ws00", {"auto_invite": None})
    assert client.auto_add("ws00") == AutoAdd((), {})


def test_instance_group_names_are_normalised(standin: WindmillStandIn, client: WindmillClient) -> None:
    assert standin.add_instance_group("Data Science", ["ann@example.test"]) == "data_science"
    assert "data_science" in {g.name for g in client.instance_groups()}


# --- paging -------------------------------------------------------------------------------------


def test_folders_are_paged_to_the_end(standin: WindmillStandIn) -> None:
    for n in range(4, 7):
        standin.add_folder("ws00", f"folder_{n:04d}", ["g/team_0"])
    with make_client(standin, per_page=3) as c:
        names = [f.name for f in c.folders("ws00")]
    assert names == [f"folder_{n:04d}" for n in range(7)]
    asked = [r for r in standin.requests if "/folders/list" in r]
    assert [r.split("?")[1] for r in asked] == ["page=1&per_page=3", "page=2&per_page=3", "page=3&per_page=3"]


def test_a_full_last_page_is_followed_by_an_empty_one(standin: WindmillStandIn) -> None:
    for n in range(4, 6):
        standin.add_folder("ws00", f"folder_{n:04d}", ["g/team_0"])
    seen: list[Progress] = []
    with make_client(standin, per_page=3) as c:
        assert len(c.folders("ws00", seen.append)) == 6
    assert sum("/folders/list" in r for r in standin.requests) == 3
    assert [(p.pages, p.items) for p in seen] == [(1, 3), (2, 6), (3, 6)]


def test_a_server_ignoring_page_is_stopped(standin: WindmillStandIn) -> None:
    standin.ignore_paging = True
    with make_client(standin, per_page=2) as c, pytest.raises(WindmillError) as excinfo:
        c.folders("ws00")
    assert "ignores paging" in fail_message(excinfo, standin.superadmin_token)
    assert sum("/folders/list" in r for r in standin.requests) == 2


def test_more_rows_than_per_page_is_a_surprise(standin: WindmillStandIn) -> None:
    standin.answer(
        "GET",
        "/api/w/ws00/folders/list",
        b"[" + b",".join([b'{"name":"a","owners":[],"extra_perms":{}}'] * 3) + b"]",
    )
    with make_client(standin, per_page=2) as c, pytest.raises(WindmillError, match="3 rows for per_page=2"):
        c.folders("ws00")


# --- writes -------------------------------------------------------------------------------------


def test_each_write_call_and_its_effect(standin: WindmillStandIn, client: WindmillClient) -> None:
    standin.set_folder("ws00", "folder_0000", ["g/team_0"], {"g/team_0": True, "u/user_3": False})

    client.add_owner("ws00", "folder_0000", "g/team_1")
    folder = client.folder("ws00", "folder_0000")
    assert folder.owners == ("g/team_0", "g/team_1") and folder.extra_perms["g/team_1"] is True

    # Without write, removeowner touches owners only: the former owner keeps extra_perms = true.
    client.remove_owner("ws00", "folder_0000", "g/team_1")
    folder = client.folder("ws00", "folder_0000")
    assert "g/team_1" not in folder.owners and folder.extra_perms["g/team_1"] is True

    # With write, it sets extra_perms even for a principal that was absent.
    client.remove_owner("ws00", "folder_0000", "g/team_2", write=False)
    assert client.folder("ws00", "folder_0000").extra_perms["g/team_2"] is False

    client.acl_add("ws00", "folder", "folder_0000", "g/local_0", write=True)
    client.acl_remove("ws00", "folder", "folder_0000", "u/user_3")
    client.acl_remove("ws00", "folder", "folder_0000", "u/never_there")  # 200 when absent
    perms = client.folder("ws00", "folder_0000").extra_perms
    assert perms == {"g/team_0": True, "g/team_1": True, "g/team_2": False, "g/local_0": True}

    item = "f/folder_0000/item_000"
    client.acl_add("ws00", "script", item, "u/user_4", write=False)
    assert client.acl("ws00", "script", item)["u/user_4"] is False
    client.acl_remove("ws00", "script", item, "u/user_4")
    assert "u/user_4" not in client.acl("ws00", "script", item)


@pytest.mark.parametrize("after", ROLES)
@pytest.mark.parametrize("before", ROLES)
def test_folder_role_transitions_through_the_planned_calls(
    standin: WindmillStandIn, client: WindmillClient, before: Role | None, after: Role | None
) -> None:
    p = "g/team_1"
    owners, perms = ["g/team_0"], {"g/team_0": True, "u/user_2": False}
    if before is Role.ADMIN:
        owners.append(p)
    if before is not None:
        perms[p] = before is not Role.VIEWER
    standin.set_folder("ws00", "folder_0002", owners, perms)

    for call in folder_writes(before, after, p):
        client.apply("ws00", "folder", "folder_0002", call)

    folder = client.folder("ws00", "folder_0002")
    assert folder_role(folder.owners, folder.extra_perms, p) is after
    # Nobody else moved.
    assert folder_role(folder.owners, folder.extra_perms, "g/team_0") is Role.ADMIN
    assert folder_role(folder.owners, folder.extra_perms, "u/user_2") is Role.VIEWER
    assert (p in folder.extra_perms) is (after is not None)


@pytest.mark.parametrize("after", ROLES[:3])
@pytest.mark.parametrize("before", ROLES[:3])
def test_item_role_transitions_through_the_planned_calls(
    standin: WindmillStandIn, client: WindmillClient, before: Role | None, after: Role | None
) -> None:
    path, p = "f/folder_0001/item_002", "u/user_5"
    perms = {"g/team_2": True} if before is None else {"g/team_2": True, p: before is Role.WRITER}
    standin.add_item("ws00", "app", path, perms)

    for call in item_writes(before, after, p):
        client.apply("ws00", "app", path, call)

    acl = client.acl("ws00", "app", path)
    assert item_role(acl, p) is after
    assert acl["g/team_2"] is True


def test_a_write_on_a_folder_takes_one_round_trip(standin: WindmillStandIn, client: WindmillClient) -> None:
    before = standin.request_count
    folder = client.folder("ws00", "folder_0003")  # the live re-read a stale check needs
    for call in folder_writes(
        folder_role(folder.owners, folder.extra_perms, "g/team_2"), Role.WRITER, "g/team_2"
    ):
        client.apply("ws00", "folder", "folder_0003", call)
    assert standin.request_count - before == 2


def test_an_out_of_band_change_survives_a_single_principal_write(
    standin: WindmillStandIn, client: WindmillClient
) -> None:
    client.folder("ws00", "folder_0003")
    # Meanwhile, in Windmill's own UI:
    standin.workspaces["ws00"].folders["folder_0003"]["extra_perms"]["u/user_4"] = True
    client.remove_owner("ws00", "folder_0003", "g/team_1", write=False)
    perms = client.folder("ws00", "folder_0003").extra_perms
    assert perms["u/user_4"] is True and perms["g/team_1"] is False


def test_deleted_groups_leave_their_grants_for_a_namesake(
    standin: WindmillStandIn, client: WindmillClient
) -> None:
    standin.delete_instance_group("team_1")
    assert "team_1" not in {g.name for g in client.instance_groups()}
    assert client.folder("ws00", "folder_0001").owners == ("g/team_1",)
    standin.add_instance_group("Team 1", ["eve@example.test"])
    assert client.instance_group("team_1").emails == ("eve@example.test",)
    assert client.folder("ws00", "folder_0001").owners == ("g/team_1",)


def test_update_replaces_owners_and_extra_perms_whole(standin: WindmillStandIn) -> None:
    standin.set_folder("ws00", "folder_0000", ["g/team_0"], {"g/team_0": True, "u/user_3": False})
    headers = {"Authorization": f"Bearer {standin.superadmin_token}"}
    url = f"{standin.url}/api/w/ws00/folders/update/folder_0000"
    with httpx.Client(headers=headers) as http:
        refused = http.post(url, json={"owners": ["g/team_2"], "extra_perms": {"g/team_0": True}})
        assert refused.status_code == 400 and "g/team_2 would not have permission" in refused.text
        assert (
            http.post(url, json={"owners": ["g/team_2"], "extra_perms": {"g/team_2": True}}).status_code
            == 200
        )
    folder = standin.workspaces["ws00"].folders["folder_0000"]
    assert folder["owners"] == ["g/team_2"] and folder["extra_perms"] == {"g/team_2": True}


# --- errors -------------------------------------------------------------------------------------


def test_refusals_show_windmill_text_and_never_the_token(standin: WindmillStandIn) -> None:
    member = standin.add_token("user_3@example.test")  # a developer; team_1 owns folder_0001
    admin = standin.add_token("user_0@example.test")  # a workspace admin, no superadmin

    with make_client(standin, standin.nobody_token) as c, pytest.raises(WindmillError) as excinfo:
        c.folders("ws00")
    message = fail_message(excinfo, standin.nobody_token)
    assert excinfo.value.status == 401 and "HTTP 401: You are not a member of workspace ws00" in message

    with make_client(standin, admin) as c, pytest.raises(WindmillError) as excinfo:
        c.workspaces()
    message = fail_message(excinfo, admin)
    assert "This endpoint requires the caller to be a super admin" in message
    assert "needs a superadmin token" in message

    standin.set_folder("ws00", "folder_0001", ["g/team_1"], {"g/team_1": True, "u/user_3": False})
    with make_client(standin, member) as c:
        with pytest.raises(WindmillError) as excinfo:
            c.add_owner("ws00", "folder_0001", "u/user_3")
        assert "HTTP 401: You are not owner of the folder folder_0001" in fail_message(excinfo, member)
        with pytest.raises(WindmillError) as excinfo:
            c.auto_add("ws00")
        assert "HTTP 403: Require Admin privileges" in fail_message(excinfo, member)

    with make_client(standin, "not-a-token") as c, pytest.raises(WindmillError) as excinfo:
        c.instance_groups()
    assert "HTTP 401: Unauthorized" in fail_message(excinfo, "not-a-token")

    with make_client(standin) as c:
        with pytest.raises(WindmillError) as excinfo:
            c.folder("ws00", "nope")
        assert excinfo.value.status == 404
        assert "HTTP 404: Not found: Folder not found at name nope" in fail_message(
            excinfo, standin.superadmin_token
        )
        with pytest.raises(WindmillError) as excinfo:
            c.add_owner("ws00", "folder_0000", "u/ann@example.test")
        assert excinfo.value.status == 400 and "Invalid owner" in str(excinfo.value)
        with pytest.raises(WindmillError, match="Cannot remove write permission for folder owner"):
            c.acl_add("ws00", "folder", "folder_0000", "g/team_0", write=False)


def test_a_token_the_server_echoes_is_scrubbed(standin: WindmillStandIn, client: WindmillClient) -> None:
    standin.fail(
        "GET", "/api/groups/list", status=400, text=f"bad request from Bearer {standin.superadmin_token}"
    )
    with pytest.raises(WindmillError) as excinfo:
        client.instance_groups()
    assert "bad request from Bearer ***" in fail_message(excinfo, standin.superadmin_token)


def test_the_token_goes_in_the_header_only(standin: WindmillStandIn, client: WindmillClient) -> None:
    client.pull()
    assert standin.requests and not any(standin.superadmin_token in r for r in standin.requests)
    assert not any("token" in r.partition("?")[2] for r in standin.requests)
    assert standin.superadmin_token not in repr(client)


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        ("/api/w/ws00/folders/list", b'{"name": "x"}', "Expected `array`, got `object`"),
        (
            "/api/w/ws00/folders/list",
            b'[{"name": "x", "extra_perms": {}}]',
            "missing required field `owners`",
        ),
        (
            "/api/w/ws00/folders/list",
            b'[{"name": "x", "owners": [], "extra_perms": {"g/a": "yes"}}]',
            "Expected `bool`",
        ),
        (
            "/api/w/ws00/folders/list",
            b'[{"name": "x", "owners": ["x/a"], "extra_perms": {}}]',
            "neither u/<user> nor g/<group>",
        ),
        ("/api/w/ws00/folders/list", b"<html>login</html>", "not JSON"),
        (
            "/api/w/ws00/users/list",
            b'[{"username": "a", "email": "a@x", "is_admin": "yes", "operator": false, "disabled": false}]',
            "Expected `bool`",
        ),
        ("/api/groups/list", b'[{"name": "g", "emails": "a@x"}]', "Expected `array | null`"),
        (
            "/api/w/ws00/workspaces/get_settings",
            b'{"auto_invite": {"instance_groups": ["g"], "instance_groups_roles": {"g": "owner"}}}',
            "unknown role 'owner'",
        ),
        ("/api/w/ws00/workspaces/get_settings", b'{"workspace_id": "ws00"}', "unknown settings shape"),
        (
            "/api/w/ws00/workspaces/get_settings",
            b'{"auto_invite": {"instance_groups": "g"}}',
            "not a list of names",
        ),
    ],
)
def test_a_surprise_shape_fails_loudly(
    standin: WindmillStandIn, client: WindmillClient, path: str, body: bytes, detail: str
) -> None:
    standin.answer("GET", path, body)
    with pytest.raises(WindmillError) as excinfo:
        client.pull()
    message = fail_message(excinfo, standin.superadmin_token)
    assert message.startswith(f"unexpected answer from windmill: GET {path}: ")
    assert detail in message


def test_a_listing_with_a_duplicate_is_refused(standin: WindmillStandIn, client: WindmillClient) -> None:
    row = b'{"name": "x", "owners": [], "extra_perms": {}}'
    standin.answer("GET", "/api/w/ws00/folders/list", b"[" + row + b"," + row + b"]")
    with pytest.raises(WindmillError, match="'x' is listed twice"):
        client.folders("ws00")


# --- the pull -----------------------------------------------------------------------------------


def test_pull_reads_every_workspace_that_is_not_archived(
    standin: WindmillStandIn, client: WindmillClient
) -> None:
    phases: set[str] = set()
    snapshot = client.pull(lambda p: phases.add(p.phase))
    assert [w.workspace.id for w in sorted(snapshot.workspaces, key=lambda w: w.workspace.id)] == [
        "ws00",
        "ws01",
    ]
    assert [w.id for w in snapshot.archived] == ["old00"]
    assert not any("/w/old00/" in r for r in standin.requests)
    ws = next(w for w in snapshot.workspaces if w.workspace.id == "ws00")
    assert len(ws.folders) == 4 and len(ws.items) == 4 * 6
    assert all(i.path.startswith("f/") for i in ws.items)  # u/<user>/ scripts left out
    assert {g.name: g.members for g in ws.groups}["local_1"] == ("user_1", "user_4")
    assert len(ws.users) == 6 and ws.auto_add.instance_groups == ("team_0",)
    assert {g.name for g in snapshot.instance_groups} == {"team_0", "team_1", "team_2"}
    assert phases == {"workspaces", "instance groups", "folders", "items", "users", "groups", "settings"}


def test_pull_fails_whole_when_the_last_page_of_the_last_list_fails(standin: WindmillStandIn) -> None:
    for n in range(4, 6):
        standin.add_item("ws01", "schedule", f"f/folder_0000/extra_{n}", {})
    with make_client(standin, per_page=2) as c:
        c.items("ws01", "schedule")
        pages = sum("/ws01/schedules/list" in r for r in standin.requests)
        assert pages > 1
        standin.fail("GET", "/api/w/ws01/schedules/list", nth=pages, status=502, text="Bad gateway")
        with pytest.raises(WindmillError) as excinfo:
            c.pull()
    assert "HTTP 502" in fail_message(excinfo, standin.superadmin_token)


def test_pull_fails_whole_when_the_last_call_drops(standin: WindmillStandIn, client: WindmillClient) -> None:
    standin.fail("GET", "/api/w/*/workspaces/get_settings", nth=2, drop=True)
    with pytest.raises(WindmillError) as excinfo:
        client.pull()
    assert excinfo.value.status is None
    assert "get_settings" in fail_message(excinfo, standin.superadmin_token)


def test_a_server_that_goes_down_is_reported(standin: WindmillStandIn, client: WindmillClient) -> None:
    standin.down_after(3)
    with pytest.raises(WindmillError) as excinfo:
        client.pull()
    assert excinfo.value.status is None
    fail_message(excinfo, standin.superadmin_token)
    standin.wait_until_down()
    with make_client(standin) as fresh, pytest.raises(WindmillError, match="ConnectError"):
        fresh.instance_groups()


def test_a_server_error_is_retried(standin: WindmillStandIn) -> None:
    standin.fail("GET", "/api/w/ws00/folders/list", status=503, text="busy")
    with make_client(standin, max_attempts=3) as c:
        assert len(c.folders("ws00")) == 4
    assert sum("/ws00/folders/list" in r for r in standin.requests) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://windmill.example.test",
        "https://user:pw@windmill.example.test",
        "https://w.example.test/?token=x",
        "ftp://x",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(SyncError):
        WindmillClient(url, "t")


def test_https_and_loopback_http_are_accepted() -> None:
    with WindmillClient("https://windmill.example.test/api/", "t") as c:
        assert c.url == "https://windmill.example.test"
    WindmillClient("http://[::1]:8000", "t").close()


def test_a_user_email_is_refused_before_any_call(standin: WindmillStandIn) -> None:
    with pytest.raises(BadInput):
        folder_writes(None, Role.VIEWER, "u/user_3@example.test")
    assert standin.request_count == 0
