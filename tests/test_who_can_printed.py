"""who-can prints the whole answer from its columns (issue 11): the table and the --json must
be, to the byte, what the generic printers make of the UserAccess rows."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from typing import Any

import pytest

from groupwarden.cli.commands.access import print_who_can_json, print_who_can_table
from groupwarden.cli.main import main
from groupwarden.cli.output import emit_json, marked, table, table_by_key
from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.domain.roles import Role
from groupwarden.domain.text import cell_width, clip
from groupwarden.services.context import Context
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.store import access as access_store
from support import grant, sync_snapshot, who_can

# Names an identity provider may send: controls, bidi, CJK, a look-alike pair, a mixed script,
# a quote and a backslash, a percent sign, a name longer than a table cell, a missing display name.
TRICKY = [
    ("u-plain", "alice", "Alice"),
    ("u-esc", "mallory\x1b[2J", "Mallory \x1b]0;owned\x07"),
    ("u-bidi", "eve\u202egnp.exe", "Eve \u2066x\u2069"),
    ("u-cjk", "田中", "田中 由紀"),
    ("u-look", "\u0430lice", "Alice (Cyrillic a)"),
    ("u-mixed", "p\u0430ul", None),
    ("u-quote", 'quo"te\\back', '100% "sure"'),
    ("u-long", "x" * 200, "y" * 300),
    ("u-c1", "c1\x9bname", "\x85"),
]


def tricky_org(ctx: Context) -> None:
    users = [SourceUser(up, name, display, []) for up, name, display in TRICKY]
    users.append(SourceUser("u-off", "zed-inactive", "Zed", [], active=False))
    everyone = [u.upstream_id for u in users]
    groups = [
        SourceGroup("g-all", "everyone", user_members=everyone[:5], group_members=["g-team"]),
        SourceGroup("g-team", "team %s {0}", user_members=everyone[5:]),
        SourceGroup("g-ops", "ops\u202e", user_members=["u-plain", "u-cjk"]),
    ]
    sync_snapshot(ctx, Snapshot(users=users, groups=groups))
    add_workspace(ctx, "prod")
    add_folder(ctx, "prod", "finance")
    grant(ctx, "g/everyone", "prod/finance", "viewer")
    grant(ctx, "g/ops\u202e", "prod/finance", "writer")
    grant(ctx, "u/u-plain", "prod/finance", "admin")  # by upstream id: alice has a look-alike


def printed(fn: Callable[[], object]) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        fn()
    return out.getvalue()


@pytest.mark.parametrize("minimum", [Role.VIEWER, Role.WRITER, Role.ADMIN])
def test_the_streamed_table_and_json_are_the_generic_ones(ctx: Context, minimum: Role) -> None:
    tricky_org(ctx)
    answer = who_can(ctx, "prod/finance", minimum=minimum)
    rows = list(answer)
    assert len(rows) == {Role.VIEWER: 10, Role.WRITER: 2, Role.ADMIN: 1}[minimum]
    generic_table = printed(
        lambda: table(
            ["USERNAME", "ROLE", "ACTIVE", "WHY"],
            [
                (marked(a.user_name, a.lookalike), a.role, "yes" if a.active else "no", a.explanation)
                for a in rows
            ],
        )
    )
    assert (
        printed(lambda: print_who_can_table(who_can(ctx, "prod/finance", minimum=minimum), minimum, "t"))
        == generic_table
    )
    generic_json = printed(lambda: emit_json(rows))
    streamed_json = printed(
        lambda: print_who_can_json(who_can(ctx, "prod/finance", minimum=minimum), minimum, "t")
    )
    assert streamed_json == generic_json
    assert [r["user_name"] for r in json.loads(streamed_json)] == [a.user_name for a in rows]


def other_source_with_the_same_names(ctx: Context) -> None:
    """A second source whose users share userNames with the first (ids after theirs), granted
    on the same folder: the answer orders them by userName, then id."""
    users = [SourceUser(f"o-{up}", name, "Other", [], active=False) for up, name, _ in TRICKY[:4]]
    sync_snapshot(
        ctx,
        Snapshot(
            users=users, groups=[SourceGroup("o-g", "others", user_members=[u.upstream_id for u in users])]
        ),
        source="other",
    )
    grant(ctx, "g/others", "prod/finance", "viewer")


@pytest.mark.parametrize("minimum", [Role.VIEWER, Role.WRITER])
def test_an_answer_read_as_columns_prints_what_its_rows_print(
    ctx: Context, minimum: Role, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past IN_LIST_LIMIT users, and with no first page read (as the command asks), the users
    are read as columns (store.user_columns), not as rows: the text must not change."""
    tricky_org(ctx)
    other_source_with_the_same_names(ctx)
    rows = list(who_can(ctx, "prod/finance", minimum=minimum))
    monkeypatch.setattr(access_store, "IN_LIST_LIMIT", 1)
    answer = who_can(ctx, "prod/finance", minimum=minimum, prefetch=0)
    assert answer.loaded == 0
    found = answer.columns()
    assert found.user_names == [a.user_name for a in rows]
    assert found.display_names == [a.display_name for a in rows]
    assert found.active == [a.active for a in rows]
    assert printed(lambda: print_who_can_table(answer, minimum, "t")) == printed(
        lambda: table(
            ["USERNAME", "ROLE", "ACTIVE", "WHY"],
            [
                (marked(a.user_name, a.lookalike), a.role, "yes" if a.active else "no", a.explanation)
                for a in rows
            ],
        )
    )
    assert printed(lambda: print_who_can_json(answer, minimum, "t")) == printed(lambda: emit_json(rows))
    if minimum is Role.VIEWER:
        # The same userName from two sources: by id, the first source's user first.
        twice = [(a.user_name, a.active) for a in rows if a.user_name == "alice"]
        assert twice == [("alice", True), ("alice", False)]


def test_the_command_prints_every_row_and_an_empty_answer(
    ctx: Context, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tricky_org(ctx)
    add_folder(ctx, "prod", "empty")
    assert main(["--db", db_url, "who-can", "prod/finance", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 10
    assert listed[0]["user_name"] == "alice" and listed[0]["role"] == "admin"
    assert {r["user_name"]: r["lookalike"] for r in listed}["\u0430lice"] == "looks like u/alice"
    assert main(["--db", db_url, "who-can", "prod/empty", "--json"]) == 0
    assert capsys.readouterr().out == "[]\n"
    assert main(["--db", db_url, "who-can", "prod/empty"]) == 0
    assert capsys.readouterr().out == "nobody has viewer or more on prod/empty\n"
    assert main(["--db", db_url, "who-can", "prod/finance"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x9b" not in out
    assert len(out.splitlines()) == 11


def reference_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """table() as it was before it went column by column: a cell at a time."""
    cells = [[clip("" if v is None else str(v), 120) for v in row] for row in rows]
    widths = [cell_width(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], cell_width(value))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (widths[i] - cell_width(v)) for i, v in enumerate(values)).rstrip()

    return "".join(line(r) + "\n" for r in [list(headers), *cells])


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [("alice", 1, True, None), ("bob", True, 1, "x")],
        [("田中", "wide", 2.5, "tail  "), ("a\x1bb", "\u202e", None, "é" * 130), ("x" * 121, "", 0, "")],
        [(n, Role.WRITER, "yes", "why") for n in ("b", "a", "c")],
    ],
)
def test_the_column_table_prints_what_a_cell_by_cell_table_did(rows: list[tuple[Any, ...]]) -> None:
    headers = ["NAME", "ROLE", "X", "WHY"]
    assert printed(lambda: table(headers, rows)) == reference_table(headers, rows)


def test_a_table_by_key_prints_what_table_prints() -> None:
    headers = ["NAME", "ROLE", "WHY"]
    names = ["b", "田中", "a\x1bz", "x" * 130, ""]
    rest = {0: ("writer", "via g/x\u202e"), 1: ("", ""), 2: ("admin", "unused, wider than the rest")}
    keys = [0, 1, 0, 1, 0]
    assert printed(lambda: table_by_key(headers, names, keys, rest)) == reference_table(
        headers, [(n, *rest[k]) for n, k in zip(names, keys, strict=True)]
    )
    assert printed(lambda: table_by_key(headers, [], [], rest)) == reference_table(headers, [])


def test_columns_out_of_order_are_put_in_name_then_id_order() -> None:
    """user_columns() checks the order SQLite handed over, and sorts when it is not by
    userName then id (SQLite keeps a subquery's order through an aggregate, without promising it)."""
    shuffled = access_store.UserColumns(
        [5, 2, 9, 1], ["b", "a", "a", "c"], ["B", None, "A2", "C"], [True, False, True, True]
    )
    assert not access_store._in_name_order(shuffled)
    fixed = access_store._sorted_by_name(shuffled)
    assert access_store._in_name_order(fixed)
    assert fixed == access_store.UserColumns(
        [2, 9, 5, 1], ["a", "a", "b", "c"], [None, "A2", "B", "C"], [False, True, True, True]
    )
    ties_out_of_order = access_store.UserColumns([9, 2], ["a", "a"], None, [True, True])
    assert not access_store._in_name_order(ties_out_of_order)
    assert access_store._sorted_by_name(ties_out_of_order).ids == [2, 9]
