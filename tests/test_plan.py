"""plan/apply of a layout file: on a workspace linked to the Windmill stand-in, and on a local one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.domain.errors import NotFound, ReadOnly
from groupwarden.domain.roles import Role
from groupwarden.services import grants, resolve
from groupwarden.services.audit import role_changes, verify_chain
from groupwarden.services.context import Context
from groupwarden.services.plan import apply_layout, plan_layout
from groupwarden.services.windmill import WindmillLink, pull
from groupwarden.store import windmill as store
from support import folder_grants, org_snapshot, sync_snapshot
from test_windmill_write import WS, build

TOKEN_VAR = "GW_TEST_WINDMILL_PLAN_TOKEN"

LINKED = """
[[workspaces]]
id = "ops"

[[workspaces.folders]]
name = "fin"
grants = [
  { principal = "u/boss", role = "admin" },
  { principal = "g/eng", role = "writer" },
  { principal = "u/alice", role = "viewer" },
]

[[workspaces.folders.items]]
path = "f/fin/close_books"
grants = [{ principal = "g/finance", role = "viewer" }]
"""


@pytest.fixture
def standin(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> Iterator[WindmillStandIn]:
    with WindmillStandIn() as server:
        build(server)
        server.set_folder(WS, "fin", ["u/boss"], {"u/boss": True, "g/eng": False})
        server.add_item(WS, "script", "f/fin/close_books", {"g/eng": True})
        server.add_folder(WS, "other", ["g/eng"])
        monkeypatch.setenv(TOKEN_VAR, server.superadmin_token)
        sync_snapshot(ctx, org_snapshot())
        pull(ctx, WindmillLink("default", server.url, token_env=TOKEN_VAR))
        yield server


def layout_file(tmp_path: Path, text: str, name: str = "layout.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def change(principal: str, target: str, before: str | None, after: str | None) -> dict[str, str | None]:
    return {"principal": principal, "target": target, "before": before, "after": after}


def test_plan_reads_windmill_live_and_apply_makes_it_so(
    ctx: Context, standin: WindmillStandIn, tmp_path: Path
) -> None:
    path = layout_file(tmp_path, LINKED)
    # bob was granted in Windmill's own UI after the last pull: the plan sees him, and removes him.
    standin.workspaces[WS].folders["fin"]["extra_perms"]["u/bob"] = False
    other_before = dict(standin.workspaces[WS].folders["other"])

    plan = plan_layout(ctx, path)

    expected = [
        change("g/eng", "ops/fin", "viewer", "writer"),
        change("u/alice_w", "ops/fin", None, "viewer"),
        change("u/bob", "ops/fin", "viewer", None),
        change("g/fin_team", "ops/f/fin/close_books", None, "viewer"),
        change("g/eng", "ops/f/fin/close_books", "writer", None),
    ]
    assert plan.to_dict() == {"changes": expected}
    # The plan brought the store up to date with what it read.
    with ctx.engine.connect() as conn:
        assert store.target_acl(conn, WS, "fin", "folder", "")["u/bob"] == "viewer"

    report = apply_layout(ctx, path)

    assert report.to_dict() == {"applied": expected, "refused": None, "not_attempted": []}
    fin = standin.workspaces[WS].folders["fin"]
    assert (fin["owners"], fin["extra_perms"]) == (
        ["u/boss"],
        {"u/boss": True, "g/eng": True, "u/alice_w": False},
    )
    assert standin.workspaces[WS].items["script"]["f/fin/close_books"]["extra_perms"] == {"g/fin_team": False}
    # A folder the file does not name is left alone.
    assert standin.workspaces[WS].folders["other"] == other_before
    assert plan_layout(ctx, path).changes == []
    events = role_changes(ctx)
    assert len(events) == 5 and {e.applied_to for e in events} == {"default"}
    assert verify_chain(ctx).broken is None


def test_apply_stops_at_the_first_refusal(ctx: Context, standin: WindmillStandIn, tmp_path: Path) -> None:
    # No admin listed: removing the last admin (u/boss) needs a confirmation apply was not given.
    path = layout_file(tmp_path, LINKED.replace('{ principal = "u/boss", role = "admin" },', ""))
    report = apply_layout(ctx, path)
    assert [c.to_dict() for c in report.applied] == [
        change("g/eng", "ops/fin", "viewer", "writer"),
        change("u/alice_w", "ops/fin", None, "viewer"),
    ]
    assert report.refused is not None
    assert report.refused.change.to_dict() == change("u/boss", "ops/fin", "admin", None)
    assert "last admin of ops/fin" in report.refused.reason
    assert [c.to_dict() for c in report.not_attempted] == [
        change("g/fin_team", "ops/f/fin/close_books", None, "viewer"),
        change("g/eng", "ops/f/fin/close_books", "writer", None),
    ]
    assert standin.workspaces[WS].folders["fin"]["owners"] == ["u/boss"]
    assert len(role_changes(ctx)) == 2
    # What is left is what the next plan lists; with the confirmation, apply finishes.
    assert [c.principal for c in plan_layout(ctx, path).changes] == ["u/boss", "g/fin_team", "g/eng"]
    assert apply_layout(ctx, path, confirm_last_admin=True).refused is None
    assert plan_layout(ctx, path).changes == []


def test_a_windmill_refusal_stops_apply_with_its_text(
    ctx: Context, standin: WindmillStandIn, tmp_path: Path
) -> None:
    path = layout_file(tmp_path, LINKED)
    standin.fail(
        "POST",
        "/api/w/ops/folders/removeowner/fin",
        nth=2,
        status=401,
        text="You are not owner of the folder fin",
    )
    report = apply_layout(ctx, path)
    assert len(report.applied) == 1
    assert (
        report.refused is not None
        and "HTTP 401: You are not owner of the folder fin" in report.refused.reason
    )
    assert standin.superadmin_token not in report.refused.reason
    assert report.refused.change.principal == "u/alice_w"
    assert [c.principal for c in report.not_attempted] == ["g/fin_team", "g/eng"]
    assert "u/alice_w" not in standin.workspaces[WS].folders["fin"]["extra_perms"]


def test_a_folder_missing_on_a_linked_workspace_is_an_error(
    ctx: Context, standin: WindmillStandIn, tmp_path: Path
) -> None:
    path = layout_file(
        tmp_path, LINKED.replace('name = "fin"', 'name = "nowhere"').split("[[workspaces.folders.items]]")[0]
    )
    with pytest.raises(NotFound, match="groupwarden does not create Windmill folders"):
        plan_layout(ctx, path)
    with pytest.raises(NotFound):
        apply_layout(ctx, path)
    assert "nowhere" not in standin.workspaces[WS].folders


LOCAL = """
[[workspaces]]
id = "lab"
name = "Lab"

[[workspaces.folders]]
name = "bench"
grants = [{ principal = "g/eng", role = "admin" }, { principal = "u/alice", role = "viewer" }]

[[workspaces.folders.items]]
path = "f/bench/tool"
grants = [{ principal = "g/finance", role = "writer" }]
"""


def test_a_local_workspace_plans_against_the_store(ctx: Context, tmp_path: Path) -> None:
    sync_snapshot(ctx, org_snapshot())
    path = layout_file(tmp_path, LOCAL)
    plan = plan_layout(ctx, path)
    assert plan.to_dict() == {
        "changes": [
            change("g/eng", "lab/bench", None, "admin"),
            change("u/alice", "lab/bench", None, "viewer"),
            change("g/finance", "lab/f/bench/tool", None, "writer"),
        ]
    }
    report = apply_layout(ctx, path)
    assert report.refused is None and len(report.applied) == 3
    assert {(g.principal, g.target, g.role) for g in folder_grants(ctx, "lab/bench")} == {
        ("g/eng", "lab/bench", Role.ADMIN),
        ("u/alice", "lab/bench", Role.VIEWER),
        ("g/finance", "lab/f/bench/tool", Role.WRITER),
    }
    assert plan_layout(ctx, path).changes == []

    # Someone grants bob by hand; the file changes eng's role and drops alice.
    grants.grant(ctx, resolve.principal(ctx, "u/bob"), resolve.target(ctx, "lab/bench"), Role.WRITER)
    changed = layout_file(
        tmp_path,
        LOCAL.replace('role = "admin" }, { principal = "u/alice", role = "viewer" }', 'role = "writer" }'),
    )
    assert plan_layout(ctx, changed).to_dict() == {
        "changes": [
            change("g/eng", "lab/bench", "admin", "writer"),
            change("u/alice", "lab/bench", "viewer", None),
            change("u/bob", "lab/bench", "writer", None),
        ]
    }
    # eng was the folder's only admin: the local rule holds in apply too.
    report = apply_layout(ctx, changed)
    assert report.refused is not None and "last admin of lab/bench" in report.refused.reason
    assert report.applied == [] and len(report.not_attempted) == 2
    assert apply_layout(ctx, changed, confirm_last_admin=True).refused is None
    assert plan_layout(ctx, changed).changes == []
    assert verify_chain(ctx).broken is None


def test_plan_changes_nothing_and_apply_refuses_in_read_only(
    ctx: Context, standin: WindmillStandIn, tmp_path: Path
) -> None:
    path = layout_file(tmp_path, LINKED)
    ctx.read_only = True
    count = standin.request_count
    assert len(plan_layout(ctx, path).changes) == 4
    assert standin.request_count == count + 2  # the live reads: one folder, one item
    before = standin.request_count
    with pytest.raises(ReadOnly):
        apply_layout(ctx, path)
    assert standin.request_count == before


def run_cli(ctx: Context, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from groupwarden.cli.main import main

    capsys.readouterr()
    code = main(["--db", ctx.engine.url.render_as_string(hide_password=False), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_and_apply_on_the_command_line(
    ctx: Context, standin: WindmillStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    path = str(layout_file(tmp_path, LINKED))
    code, out, _err = run_cli(ctx, capsys, "plan", path, "--json")
    assert code == 0
    planned = json.loads(out)["changes"]
    assert change("g/eng", "ops/fin", "viewer", "writer") in planned
    # Without a terminal to ask, apply wants --yes and changes nothing.
    code, _out, err = run_cli(ctx, capsys, "apply", path)
    assert code == 2 and "--yes" in err
    assert standin.workspaces[WS].folders["fin"]["extra_perms"]["g/eng"] is False
    code, out, _err = run_cli(ctx, capsys, "apply", path, "--yes")
    assert code == 0
    assert out.count("applied: ") == len(planned)
    assert standin.workspaces[WS].folders["fin"]["extra_perms"]["g/eng"] is True
    code, out, _err = run_cli(ctx, capsys, "plan", path)
    assert code == 0 and out.startswith("no changes")


def test_grant_on_a_linked_folder_from_the_command_line_is_written_through(
    ctx: Context, standin: WindmillStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    # The IdP userName is given; Windmill's ACL gets the workspace's own username.
    code, out, err = run_cli(ctx, capsys, "grant", "u/alice", "ops/fin", "writer", "--expect", "none")
    assert code == 0, err
    assert "applied to windmill default" in out
    assert standin.workspaces[WS].folders["fin"]["extra_perms"]["u/alice_w"] is True
    code, _out, err = run_cli(ctx, capsys, "grant", "u/alice", "ops/fin", "admin", "--expect", "viewer")
    assert code == 1 and "writer" in err
    code, out, err = run_cli(ctx, capsys, "revoke", "u/alice", "ops/fin", "--expect", "writer")
    assert code == 0, err
    assert "u/alice_w" not in standin.workspaces[WS].folders["fin"]["extra_perms"]
