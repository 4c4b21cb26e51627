"""SCIM, Okta and Graph describing the same organisation give the same cache, through the CLI.

Each source is synced with `groupwarden sync ... --name corp` into its own database, so the
exports' `source` fields agree. Fields only some providers have are left out of the
comparison on purpose: a group's `kind` (Okta's OKTA_GROUP / APP_GROUP) and a user's
`status` (Okta's raw status word) everywhere, and a group's `description` between SCIM
(whose core Group schema has none) and the others. Everything else must be identical.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graph_server import CLIENT_ID, CLIENT_SECRET, TENANT, GraphServer, start_graph_server
from groupwarden.cli.main import main
from idp_fakes import Person, Team, organisation
from okta_server import OktaServer, start_okta_server
from scim_server import ServedApp, serve_raw

SECRETS = ("okta-test-token", CLIENT_SECRET, "graph-access-", "scim-raw-token")


def scim_resources(
    people: list[Person], teams: list[Team]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    users = [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": p.id,
            "userName": p.login,
            "displayName": p.display_name,
            "emails": [{"value": e, "primary": n == 0} for n, e in enumerate(p.emails)],
            "active": p.active,
        }
        for p in people
    ]
    groups = [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": t.id,
            "displayName": t.name,
            "members": [{"value": u, "type": "User"} for u in t.users],
        }
        for t in teams
    ]
    return users, groups


@pytest.fixture
def servers() -> Iterator[tuple[ServedApp, OktaServer, GraphServer]]:
    people, teams = organisation(people=260)
    scim = serve_raw(*scim_resources(people, teams))
    okta = start_okta_server()
    okta.load(people, teams)
    graph = start_graph_server()
    graph.load(people, teams)
    try:
        yield scim, okta, graph
    finally:
        for server in (scim, okta, graph):
            server.stop()


def cli(db: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    capsys.readouterr()
    code = main(["--db", str(db), *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def comparable(export: str, *, description: bool = True) -> dict[str, Any]:
    data = json.loads(export)
    for group in data["groups"]:
        group.pop("kind")
        if not description:
            group.pop("description")
    for user in data["users"]:
        user.pop("status")
    return dict(data)


def test_every_source_gives_the_same_export(
    servers: tuple[ServedApp, OktaServer, GraphServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scim, okta, graph = servers
    monkeypatch.setenv("SCIM_TOKEN", "scim-raw-token")
    monkeypatch.setenv("OKTA_TOKEN", okta.token)
    monkeypatch.setenv("GRAPH_SECRET", CLIENT_SECRET)
    runs = {
        "scim": ["--scim", scim.url, "--token-env", "SCIM_TOKEN", "--page-size", "100"],
        "okta": ["--okta", okta.url, "--token-env", "OKTA_TOKEN"],
        "graph": [
            "--graph",
            TENANT,
            "--client-id",
            CLIENT_ID,
            "--client-secret-env",
            "GRAPH_SECRET",
            "--graph-url",
            graph.url,
            "--login-url",
            graph.url,
        ],
    }
    exports: dict[str, dict[str, Any]] = {}
    for kind, args in runs.items():
        db = tmp_path / f"{kind}.db"
        out, err = cli(db, capsys, "sync", *args, "--name", "corp")
        assert out.startswith("corp: 260 users, 5 groups"), out
        export, _ = cli(db, capsys, "export", "--format", "json")
        exports[kind] = comparable(export)
        exports[f"{kind} without descriptions"] = comparable(export, description=False)
        for secret in SECRETS:
            assert secret not in out + err + export
        with sqlite3.connect(db) as conn:
            dump = "\n".join(conn.iterdump())
        for secret in SECRETS:
            assert secret not in dump
    assert exports["okta"] == exports["graph"]
    assert exports["scim without descriptions"] == exports["okta without descriptions"]
    assert len(exports["scim"]["users"]) == 260
    assert {g["name"]: g["description"] for g in exports["okta"]["groups"]}["eng"] == "Engineering"


def test_graph_second_sync_is_incremental_through_the_cli(
    servers: tuple[ServedApp, OktaServer, GraphServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, graph = servers
    monkeypatch.setenv("GRAPH_SECRET", CLIENT_SECRET)
    db = tmp_path / "graph.db"
    args = ["sync", "--graph", TENANT, "--client-id", CLIENT_ID, "--client-secret-env", "GRAPH_SECRET"]
    args += ["--graph-url", graph.url, "--login-url", graph.url, "--name", "corp", "--json"]
    first, _ = cli(db, capsys, *args)
    assert json.loads(first)["mode"] == "full"
    graph.state.groups["g04"]["displayName"] = "renamed"
    graph.commit()
    second, _ = cli(db, capsys, *args)
    report = json.loads(second)
    assert report["mode"] == "delta"
    assert report["diff"]["groups_renamed"] == [["empty", "renamed"]]
    full, _ = cli(db, capsys, *args, "--full")
    assert json.loads(full)["mode"] == "full"


def test_bad_source_options_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "x.db")
    for args, expected in (
        (["--okta", "https://a.test", "--scim", "https://b.test"], "not --scim and --okta"),
        (["--graph", TENANT], "--client-id"),
        (["--okta", "ftp://a.test", "--token-env", "X"], "http(s) URL"),
    ):
        capsys.readouterr()
        assert main(["--db", db, "sync", *args]) == 2
        assert expected in capsys.readouterr().err
