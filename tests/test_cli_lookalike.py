"""Look-alike names (issue 9, item 16): marked in the tables and in --json, and refused when
typed by name, on the command line as a script drives it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from groupwarden.cli.main import main
from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.services.context import Context
from groupwarden.services.layout import add_folder, add_workspace
from support import sync_snapshot

CYRILLIC_ADMINS = "\u0430dmins"  # а, a Cyrillic a
MIXED_USER = "p\u0430ul"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(ctx: Context, db_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    users = [
        SourceUser("u-alice", "alice", "Alice", []),
        SourceUser("u-paul", MIXED_USER, "Paul", []),
    ]
    groups = [
        SourceGroup("g-admins", "admins", user_members=["u-alice"]),
        SourceGroup("g-cyr", CYRILLIC_ADMINS, user_members=["u-paul"]),
        SourceGroup("g-eng", "eng", user_members=["u-alice", "u-paul"]),
    ]
    sync_snapshot(ctx, Snapshot(users=users, groups=groups))
    add_workspace(ctx, "prod")
    add_folder(ctx, "prod", "finance")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--db", db_url, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_a_cyrillic_group_next_to_admins_is_marked_in_groups_and_json(cli: Run) -> None:
    code, out, _err = cli("groups")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "⚠ looks like g/admins" in lines[CYRILLIC_ADMINS]
    assert f"⚠ looks like g/{CYRILLIC_ADMINS}" in lines["admins"]
    assert "⚠" not in lines["eng"]
    code, out, _err = cli("groups", "--json")
    marks = {g["name"]: g["lookalike"] for g in json.loads(out)}
    assert marks == {
        "admins": f"looks like g/{CYRILLIC_ADMINS}",
        CYRILLIC_ADMINS: "looks like g/admins",
        "eng": None,
    }


def test_a_lookalike_typed_by_name_is_refused_and_works_by_upstream_id(cli: Run) -> None:
    code, _out, err = cli("grant", f"g/{CYRILLIC_ADMINS}", "prod/finance", "viewer")
    assert code == 2
    assert err.count("\n") == 1 and "looks like g/admins" in err and "give its upstream id: g/g-cyr" in err
    code, _out, err = cli("members", CYRILLIC_ADMINS)
    assert code == 2 and "g/g-cyr" in err
    code, out, _err = cli("grants", "prod/finance", "--json")
    assert json.loads(out) == []
    code, _out, err = cli("grant", "g/g-cyr", "prod/finance", "viewer")
    assert code == 0, err
    code, out, _err = cli("grants", "prod/finance", "--json")
    rows = json.loads(out)
    assert [(g["principal"], g["lookalike"]) for g in rows] == [
        (f"g/{CYRILLIC_ADMINS}", "looks like g/admins")
    ]
    code, out, _err = cli("grants", "prod/finance")
    assert f"g/{CYRILLIC_ADMINS} ⚠ looks like g/admins" in out


def test_a_mixed_script_user_is_marked_in_who_can_members_and_access(cli: Run) -> None:
    assert cli("grant", "g/eng", "prod/finance", "writer")[0] == 0
    code, out, _err = cli("who-can", "prod/finance")
    assert code == 0
    assert f"{MIXED_USER} ⚠ mixed scripts" in out and "alice ⚠" not in out
    code, out, _err = cli("who-can", "prod/finance", "--json")
    assert {a["user_name"]: a["lookalike"] for a in json.loads(out)} == {
        "alice": None,
        MIXED_USER: "mixed scripts",
    }
    code, out, _err = cli("members", "eng", "--json")
    data = json.loads(out)
    assert data["group"]["lookalike"] is None
    assert {m["user_name"]: m["lookalike"] for m in data["members"]} == {
        "alice": None,
        MIXED_USER: "mixed scripts",
    }
    code, _out, err = cli("access", MIXED_USER)
    assert code == 2 and "mixes scripts" in err and "u/u-paul" in err
    code, out, _err = cli("access", "u-paul", "--json")
    assert code == 0 and json.loads(out)["lookalike"] == "mixed scripts"
