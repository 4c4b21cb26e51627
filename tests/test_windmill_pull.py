"""Pulling a Windmill instance (the stand-in, over a real socket) into the store."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from groupwarden.demo.windmill_server import WindmillStandIn, populate
from groupwarden.domain.directory import Progress
from groupwarden.domain.errors import BadInput, SyncError
from groupwarden.domain.windmill import ITEM_KINDS, item_folder
from groupwarden.services.audit import sync_runs
from groupwarden.services.backup import backup_data
from groupwarden.services.context import Context
from groupwarden.services.layout import list_workspaces
from groupwarden.services.windmill import (
    AclChange,
    WindmillLink,
    list_instances,
    pull,
    workspace_links,
)
from groupwarden.store import windmill as store
from groupwarden.store.windmill import (
    AclRow,
    AutoAddRow,
    FolderRow,
    InstanceGroupRow,
    InstanceState,
    ItemRow,
    UserRow,
    WorkspaceGroupRow,
)
from support import grant

TOKEN_VAR = "GW_TEST_WINDMILL_TOKEN"


@pytest.fixture
def standin() -> Iterator[WindmillStandIn]:
    with WindmillStandIn() as server:
        populate(server, workspaces=2, folders=3, items=6, users=5, instance_groups=3)
        yield server


@pytest.fixture
def link(standin: WindmillStandIn, monkeypatch: pytest.MonkeyPatch) -> WindmillLink:
    monkeypatch.setenv(TOKEN_VAR, standin.superadmin_token)
    return WindmillLink("default", standin.url, token_env=TOKEN_VAR)


def stored(ctx: Context, name: str = "default") -> InstanceState:
    with ctx.engine.connect() as conn:
        found = store.find_instance(conn, name)
        assert found is not None
        return store.read_state(conn, found.id)


def expected_state(standin: WindmillStandIn) -> InstanceState:
    """What the stand-in holds, read from its own memory (not through the client)."""
    state = InstanceState()
    for ws in sorted(standin.workspaces.values(), key=lambda w: w.id):
        if ws.deleted:
            continue
        state.workspaces[ws.id] = ws.name
        for folder in ws.folders.values():
            state.folders.append(FolderRow(ws.id, folder["name"], folder["summary"] or ""))
            for principal in set(folder["owners"]) | set(folder["extra_perms"]):
                role = (
                    "admin"
                    if principal in folder["owners"]
                    else "writer"
                    if folder["extra_perms"][principal]
                    else "viewer"
                )
                state.acl.append(AclRow(ws.id, folder["name"], "folder", "", principal, role))
        for kind in ITEM_KINDS:
            for path, item in ws.items[kind].items():
                folder_name = item_folder(path)
                if folder_name is None:
                    continue
                state.items.append(ItemRow(ws.id, kind, path, folder_name))
                for principal, write in item["extra_perms"].items():
                    state.acl.append(
                        AclRow(ws.id, folder_name, kind, path, principal, "writer" if write else "viewer")
                    )
        for user in ws.users.values():
            state.users.append(
                UserRow(ws.id, user["username"], user["email"], user["is_admin"], user["operator"], False)
            )
        for group in ws.groups.values():
            state.workspace_groups.append(
                WorkspaceGroupRow(ws.id, group["name"], group["summary"], tuple(sorted(group["members"])))
            )
        invite = ws.settings["auto_invite"]
        for name in invite["instance_groups"]:
            state.auto_add.append(
                AutoAddRow(ws.id, name, invite["instance_groups_roles"].get(name, "developer"))
            )
    state.instance_groups = [
        InstanceGroupRow(g["name"], g["summary"], g.get("external_id"), tuple(sorted(g["emails"])))
        for g in standin.instance_groups.values()
    ]
    return state


def same(a: InstanceState, b: InstanceState) -> None:
    assert a.workspaces == b.workspaces
    for name in ("folders", "users", "instance_groups", "workspace_groups", "acl", "items", "auto_add"):
        assert sorted(getattr(a, name)) == sorted(getattr(b, name)), name


def dump(ctx: Context, *skip: str) -> dict[str, Any]:
    tables: dict[str, Any] = backup_data(ctx)["tables"]
    return {name: rows for name, rows in tables.items() if name not in skip}


def test_a_pull_stores_exactly_what_the_instance_holds(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    seen: list[Progress] = []
    report = pull(ctx, link, progress=seen.append)

    same(stored(ctx), expected_state(standin))
    assert report.workspaces == 2 and report.folders == 6 and report.instance_groups == 3
    assert report.archived == ["old00"]
    assert {p.phase for p in seen} >= {"workspaces", "folders", "items", "users", "groups", "reconcile"}
    # The archived workspace is listed by Windmill but not linked, nor created here.
    links = workspace_links(ctx)
    assert sorted(links) == ["ws00", "ws01"]
    assert links["ws00"].instance == "default" and links["ws00"].name == "Workspace 0"
    assert "old00" not in {w.id for w in list_workspaces(ctx)}
    # Folders are mirrored into the workspace's folders, where the existing panes list them.
    spaces = {w.id: [f.name for f in w.folders] for w in list_workspaces(ctx)}
    assert spaces["ws00"] == ["folder_0000", "folder_0001", "folder_0002"]
    [instance] = list_instances(ctx)
    assert (instance.name, instance.url, instance.standin, instance.workspaces) == (
        "default",
        standin.url,
        False,
        2,
    )
    assert instance.last_pull_at is not None
    [run] = sync_runs(ctx)
    assert (run.source, run.outcome, run.error) == ("windmill:default", "ok", None)
    assert run.diff["workspaces_linked"] == ["ws00", "ws01"]
    assert len(run.diff["folders_added"]) == 6
    assert len(run.diff["acl_added"]) == len(expected_state(standin).acl)
    with ctx.engine.connect() as conn:
        found = store.find_instance(conn, "default")
    assert found is not None
    # Where the token comes from, never the token.
    assert (found.token_env, found.token_file) == (TOKEN_VAR, None)


def test_a_pull_without_change_records_an_empty_diff(ctx: Context, link: WindmillLink) -> None:
    pull(ctx, link)
    before = dump(ctx, "sync_runs", "windmill_instances")
    report = pull(ctx, link)
    assert report.diff.is_empty()
    assert dump(ctx, "sync_runs", "windmill_instances") == before
    latest = sync_runs(ctx)[0]
    assert latest.outcome == "ok"
    assert not any(latest.diff.values())


def acl_roles(state: InstanceState) -> dict[tuple[str, str, str], str]:
    return {(f"{r.workspace_id}/{r.path or r.folder}", r.kind, r.principal): r.role for r in state.acl}


def test_changes_made_in_windmill_show_in_the_next_diff(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    pull(ctx, link)
    old = acl_roles(expected_state(standin))
    standin.set_folder("ws00", "folder_0001", ["g/team_2"], {"g/team_2": True, "u/user_3": False})
    standin.add_user("ws01", "newbie", "newbie@example.test")
    standin.remove_user("ws01", "user_4")
    standin.delete_instance_group("team_1")
    standin.add_folder("ws01", "fresh", ["u/newbie"])
    standin.instance_groups["team_0"]["emails"].append("late@example.test")
    new = acl_roles(expected_state(standin))

    report = pull(ctx, link)

    same(stored(ctx), expected_state(standin))
    diff = report.diff
    assert diff.users_added == ["ws01/u/newbie"]
    assert diff.users_removed == ["ws01/u/user_4"]
    assert diff.groups_removed == ["g/team_1"]
    assert diff.groups_added == []
    assert diff.folders_added == ["ws01/fresh"]
    assert diff.folders_removed == []
    assert diff.members_added == {"g/team_0": ["late@example.test"]}
    assert diff.members_removed == {}
    assert AclChange("u/newbie", "ws01/fresh", "folder", None, "admin") in diff.acl_added
    # Windmill drops a deleted user's u/ entries, keeps a deleted group's g/ ones.
    assert any(key[2] == "u/user_4" for key in old.keys() - new.keys())
    assert not any(
        key[2] == "g/team_1" and not key[0].startswith("ws00/folder_0001") for key in old.keys() - new.keys()
    )
    # Every entry that changed, and nothing else, as read from the stand-in's own memory.
    assert {((c.target, c.kind, c.principal), c.before, c.after) for c in diff.acl_added} == {
        (key, None, new[key]) for key in new.keys() - old.keys()
    }
    assert {((c.target, c.kind, c.principal), c.before, c.after) for c in diff.acl_removed} == {
        (key, old[key], None) for key in old.keys() - new.keys()
    }
    assert {((c.target, c.kind, c.principal), c.before, c.after) for c in diff.acl_changed} == {
        (key, old[key], new[key]) for key in old.keys() & new.keys() if old[key] != new[key]
    }
    assert diff.acl_removed and diff.acl_added
    assert sync_runs(ctx)[0].diff["users_removed"] == ["ws01/u/user_4"]


def test_a_pull_failing_on_its_last_call_leaves_every_table_as_it_was(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    # ws01's folders take two pages of Windmill's default 1000.
    for n in range(1000):
        standin.add_folder("ws01", f"bulk_{n:04d}", ["u/user_0"])
    pull(ctx, link)
    standin.add_folder("ws00", "never_stored", ["u/user_0"])
    standin.delete_instance_group("team_2")
    before = dump(ctx, "sync_runs")
    standin.fail("GET", "/api/w/ws01/folders/list", nth=2, status=400, text="Bad request: disk full")

    with pytest.raises(SyncError) as info:
        pull(ctx, link)

    message = str(info.value)
    assert "\n" not in message and "disk full" in message and "HTTP 400" in message
    assert "GET /api/w/ws01/folders/list?page=2" in standin.requests[-1]
    assert standin.superadmin_token not in message
    assert dump(ctx, "sync_runs") == before
    failed = sync_runs(ctx)[0]
    assert failed.outcome == "failed" and failed.diff == {}
    assert failed.error is not None and "disk full" in failed.error
    assert standin.superadmin_token not in failed.error


def test_a_token_without_rights_fails_cleanly(
    ctx: Context, standin: WindmillStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VAR, standin.nobody_token)
    with pytest.raises(SyncError) as info:
        pull(ctx, WindmillLink("prod", standin.url, token_env=TOKEN_VAR))
    message = str(info.value)
    assert "HTTP 401" in message and "super admin" in message and "\n" not in message
    assert standin.nobody_token not in message
    assert list_instances(ctx) == [] and workspace_links(ctx) == {}
    [run] = sync_runs(ctx)
    assert (run.source, run.outcome) == ("windmill:prod", "failed")


def test_a_missing_token_is_bad_input_and_records_nothing(ctx: Context, standin: WindmillStandIn) -> None:
    with pytest.raises(BadInput, match="GW_TEST_UNSET"):
        pull(ctx, WindmillLink("default", standin.url, token_env="GW_TEST_UNSET"))
    with pytest.raises(BadInput, match="token"):
        pull(ctx, WindmillLink("default", standin.url))
    with pytest.raises(BadInput, match="https"):
        pull(ctx, WindmillLink("default", "http://windmill.example.test", token_env=TOKEN_VAR))
    assert sync_runs(ctx) == []


def test_a_token_file_link_records_the_path(ctx: Context, standin: WindmillStandIn, tmp_path: Path) -> None:
    token_file = tmp_path / "windmill.token"
    token_file.write_text(standin.superadmin_token + "\n")
    token_file.chmod(0o600)
    pull(ctx, WindmillLink("lab", standin.url, token_file=str(token_file), standin=True))
    with ctx.engine.connect() as conn:
        found = store.find_instance(conn, "lab")
    assert found is not None
    assert (found.token_env, found.token_file, found.standin) == (None, str(token_file), True)
    assert list_instances(ctx)[0].standin


def test_an_archived_workspace_is_unlinked_and_stays_local(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    pull(ctx, link)
    standin.workspaces["ws01"].deleted = True

    report = pull(ctx, link)

    assert report.diff.workspaces_unlinked == ["ws01"]
    assert report.archived == ["old00", "ws01"]
    assert sorted(workspace_links(ctx)) == ["ws00"]
    state = stored(ctx)
    assert not [r for r in state.acl + state.users if r.workspace_id == "ws01"]
    # The workspace and its folders stay, as a local workspace.
    spaces = {w.id: len(w.folders) for w in list_workspaces(ctx)}
    assert spaces["ws01"] == 3
    assert report.diff.folders_removed == []
    assert {c.target.split("/")[0] for c in report.diff.acl_removed} == {"ws01"}


def test_a_local_workspace_with_grants_is_not_linked(
    org: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    standin.add_workspace("prod", "Windmill prod")
    standin.add_folder("prod", "finance", ["u/user_0"])
    grant(org, "g/eng", "prod/finance", "writer")
    before = dump(org, "sync_runs")

    with pytest.raises(SyncError) as info:
        pull(org, link)

    message = str(info.value)
    assert "'prod'" in message and "local workspace" in message and "\n" not in message
    assert dump(org, "sync_runs") == before
    assert sync_runs(org)[0].outcome == "failed"


def test_a_local_workspace_without_grants_is_adopted(
    org: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    standin.add_workspace("prod", "Windmill prod")
    standin.add_folder("prod", "finance", ["u/user_0"])

    report = pull(org, link)

    assert "prod" in report.diff.workspaces_linked
    # infra was a local folder; Windmill has no such folder, so it goes.
    assert report.diff.folders_removed == ["prod/infra"]
    assert "prod/finance" not in report.diff.folders_added
    assert workspace_links(org)["prod"].name == "Windmill prod"
    folders = {w.id: [(f.name, f.summary) for f in w.folders] for w in list_workspaces(org)}
    assert folders["prod"] == [("finance", "")]


def test_a_dry_run_writes_nothing(ctx: Context, standin: WindmillStandIn, link: WindmillLink) -> None:
    before = dump(ctx)
    report = pull(ctx, link, dry_run=True)
    assert report.dry_run and report.run_id is None
    assert report.diff.workspaces_linked == ["ws00", "ws01"]
    assert dump(ctx) == before


def test_the_token_is_stored_nowhere(ctx: Context, standin: WindmillStandIn, link: WindmillLink) -> None:
    pull(ctx, link)
    standin.fail("GET", "/api/w/*/folders/list", status=401, text=f"bad token {standin.superadmin_token}")
    with pytest.raises(SyncError) as info:
        pull(ctx, link)
    assert standin.superadmin_token not in str(info.value)
    # Every text column of every table, as one JSON text.
    everything = json.dumps(backup_data(ctx), ensure_ascii=False)
    assert TOKEN_VAR in everything
    assert standin.superadmin_token not in everything


def test_a_backup_carries_the_windmill_state(ctx: Context, link: WindmillLink, tmp_path: Path) -> None:
    from groupwarden.services.backup import restore, write_backup

    pull(ctx, link)
    write_backup(ctx, tmp_path / "backup.json")
    # Restored into a fresh SQLite store, whatever the backend of the first.
    copy = Context.open(str(tmp_path / "copy.db"))
    try:
        restore(copy, tmp_path / "backup.json")
        assert dump(copy) == dump(ctx)
        assert sorted(workspace_links(copy)) == ["ws00", "ws01"]
    finally:
        copy.close()


def test_a_recorded_diff_keeps_a_bounded_number_of_entries() -> None:
    from groupwarden.services.windmill import WindmillDiff

    diff = WindmillDiff(folders_added=["w/a", "w/b", "w/c"], users_added=["w/u/x"])
    diff.members_added = {"g/one": ["a@x.test"], "g/two": ["b@x.test"], "g/six": ["c@x.test"]}
    data = diff.to_dict(2)
    assert data["folders_added"] == ["w/a", "w/b"] and data["users_added"] == ["w/u/x"]
    assert data["members_added"] == {"g/one": ["a@x.test"], "g/two": ["b@x.test"]}
    assert data["truncated"] == {"folders_added": 3, "members_added": 3}
    assert "truncated" not in diff.to_dict()
    assert diff.to_dict()["folders_added"] == ["w/a", "w/b", "w/c"]


def test_a_surprise_in_an_answer_fails_the_pull_and_writes_nothing(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    pull(ctx, link)
    before = dump(ctx, "sync_runs")
    standin.answer("GET", "/api/w/ws01/users/list", b'[{"username": "x", "email": 7}]')
    with pytest.raises(SyncError, match="unexpected answer from windmill") as info:
        pull(ctx, link)
    assert "users/list" in str(info.value)
    assert dump(ctx, "sync_runs") == before
    assert sync_runs(ctx)[0].outcome == "failed"


def test_a_folder_name_the_store_cannot_hold_fails_the_pull(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    standin.add_folder("ws00", "bad-name", ["u/user_0"])
    with pytest.raises(SyncError, match="folder 'bad-name' of ws00") as info:
        pull(ctx, link)
    assert "\n" not in str(info.value)
    assert list_instances(ctx) == [] and workspace_links(ctx) == {}


def test_a_read_only_session_may_not_pull(ctx: Context, link: WindmillLink) -> None:
    from groupwarden.domain.errors import ReadOnly

    ctx.read_only = True
    with pytest.raises(ReadOnly):
        pull(ctx, link)
    assert sync_runs(ctx) == []


def test_a_re_pull_rewrites_only_the_workspaces_that_changed(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    pull(ctx, link)
    with ctx.engine.connect() as conn:
        found = store.find_instance(conn, "default")
        assert found is not None
        digests = store.workspace_digests(conn, found.id)
    standin.workspaces["ws01"].name = "Renamed in Windmill"
    standin.add_item("ws01", "flow", "f/folder_0000/new_flow", {"u/user_2": True})

    report = pull(ctx, link)

    same(stored(ctx), expected_state(standin))
    assert workspace_links(ctx)["ws01"].name == "Renamed in Windmill"
    assert [(c.target, c.kind, c.principal, c.after) for c in report.diff.acl_added] == [
        ("ws01/f/folder_0000/new_flow", "flow", "u/user_2", "writer")
    ]
    with ctx.engine.connect() as conn:
        now = store.workspace_digests(conn, found.id)
    assert now["ws00"] == digests["ws00"] and now["ws01"] != digests["ws01"]


# --- the exact diff and run rows, first pull and re-pull ------------------------------------------


def expected_first_diff(standin: WindmillStandIn) -> dict[str, Any]:
    """The diff of a first pull into an empty store, built from the stand-in's own memory."""
    state = expected_state(standin)
    acl = sorted((r.workspace_id, r.kind, r.path or r.folder, r.principal, r.role) for r in state.acl)
    return {
        "workspaces_linked": sorted(state.workspaces),
        "workspaces_unlinked": [],
        "folders_added": sorted(f"{f.workspace_id}/{f.name}" for f in state.folders),
        "folders_removed": [],
        "acl_added": [
            {"principal": p, "target": f"{w}/{where}", "kind": k, "before": None, "after": role}
            for w, k, where, p, role in acl
        ],
        "acl_changed": [],
        "acl_removed": [],
        "groups_added": sorted(
            [f"g/{g.name}" for g in state.instance_groups]
            + [f"{g.workspace_id}/g/{g.name}" for g in state.workspace_groups]
        ),
        "groups_removed": [],
        "members_added": {},
        "members_removed": {},
        "users_added": sorted(f"{u.workspace_id}/u/{u.username}" for u in state.users),
        "users_removed": [],
    }


def cut(data: dict[str, Any], limit: int) -> dict[str, Any]:
    """data as a run records it: each list or mapping cut to its first limit entries."""
    out: dict[str, Any] = {}
    truncated: dict[str, int] = {}
    for name, value in data.items():
        if len(value) > limit:
            truncated[name] = len(value)
            value = value[:limit] if isinstance(value, list) else dict(list(value.items())[:limit])
        out[name] = value
    return {**out, "truncated": truncated} if truncated else out


def test_a_first_pull_reports_and_records_every_entry_in_order(
    ctx: Context,
    standin: WindmillStandIn,
    link: WindmillLink,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    expected = expected_first_diff(standin)
    assert len(expected["acl_added"]) > 40  # more than the cut below, in every list that matters

    report = pull(ctx, link)

    assert report.diff.to_dict() == expected
    [run] = sync_runs(ctx)
    assert (run.source, run.actor, run.outcome, run.error) == (
        "windmill:default",
        "tester@bastion",
        "ok",
        None,
    )
    assert run.diff == expected
    assert report.run_id == run.id
    same(stored(ctx), expected_state(standin))
    assert report.acl_entries == len(expected["acl_added"])
    assert report.items == len(expected_state(standin).items)

    # A run keeps the first entries of each list, in the same order, and the full lengths.
    other = Context.open(str(tmp_path / "cut.db"))
    try:
        other.actor, other.clock = ctx.actor, ctx.clock
        # The package exports the function pull under the module's name.
        monkeypatch.setattr(
            importlib.import_module("groupwarden.services.windmill.pull"), "RUN_DIFF_LIMIT", 5
        )
        report = pull(other, link)
        assert report.diff.to_dict() == expected
        assert sync_runs(other)[0].diff == cut(expected, 5)
    finally:
        other.close()


def test_a_re_pull_records_the_same_diff_it_reports(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink
) -> None:
    pull(ctx, link)
    standin.set_folder("ws00", "folder_0001", ["g/team_2"], {"g/team_2": True, "u/user_3": False})
    standin.remove_user("ws01", "user_4")
    standin.add_folder("ws01", "fresh", ["u/newbie"])
    standin.add_item("ws00", "app", "f/folder_0002/late", {"g/local_0": False, "u/user_2": True})

    report = pull(ctx, link)

    data = report.diff.to_dict()
    assert sync_runs(ctx)[0].diff == data
    for name in ("acl_added", "acl_changed", "acl_removed"):
        keys = [
            (c["target"].split("/", 1)[0], c["kind"], c["target"].split("/", 1)[1], c["principal"])
            for c in data[name]
        ]
        assert keys == sorted(keys) and len(set(keys)) == len(keys), name
    assert data["acl_added"][:2] == [
        {
            "principal": "g/local_0",
            "target": "ws00/f/folder_0002/late",
            "kind": "app",
            "before": None,
            "after": "viewer",
        },
        {
            "principal": "u/user_2",
            "target": "ws00/f/folder_0002/late",
            "kind": "app",
            "before": None,
            "after": "writer",
        },
    ]
    same(stored(ctx), expected_state(standin))


def test_a_first_pull_stores_what_a_pull_over_older_state_stores(
    ctx: Context, standin: WindmillStandIn, link: WindmillLink, tmp_path: Path
) -> None:
    # Into another store first, a different instance: every workspace differs from the final one.
    other = Context.open(str(tmp_path / "other.db"))
    try:
        for ws in ("ws00", "ws01"):
            standin.add_folder(ws, "temporary", ["u/user_1"], {"g/team_0": False})
            standin.add_item(ws, "flow", "f/folder_0000/temporary", {"u/user_2": True})
        standin.set_folder("ws00", "folder_0001", ["g/team_2"], {"g/team_2": True, "u/user_3": False})
        pull(other, link)
        standin.workspaces["ws00"].folders.pop("temporary")
        standin.workspaces["ws01"].folders.pop("temporary")
        for ws in ("ws00", "ws01"):
            standin.workspaces[ws].items["flow"].pop("f/folder_0000/temporary")
        standin.add_user("ws01", "newbie", "newbie@example.test")

        again = pull(other, link)
        first = pull(ctx, link)

        same(stored(other), stored(ctx))
        same(stored(ctx), expected_state(standin))
        assert stored(other).digests == stored(ctx).digests
        folders = [(w.id, [(f.name, f.summary) for f in w.folders]) for w in list_workspaces(ctx)]
        assert [(w.id, [(f.name, f.summary) for f in w.folders]) for w in list_workspaces(other)] == folders
        assert again.diff.folders_removed == ["ws00/temporary", "ws01/temporary"]
        assert first.diff.workspaces_linked == ["ws00", "ws01"]
    finally:
        other.close()
