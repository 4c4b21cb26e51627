"""Layout files are checked whole before anything is written: unknown keys and a principal
listed twice on one target are refused, naming where."""

from __future__ import annotations

import pytest

from groupwarden.domain.errors import BadInput
from groupwarden.domain.layout import parse_layout
from groupwarden.domain.principals import Target
from groupwarden.domain.roles import Role

GOOD = """
[[workspaces]]
id = "prod"
name = "Production"

[[workspaces.folders]]
name = "finance"
summary = "Money"
grants = [
  { principal = "g/eng", role = "writer" },
  { principal = "u/alice", role = "admin" },
]
items = [
  { path = "f/finance/payroll", grants = [{ principal = "g/eng", role = "viewer" }] },
]
"""


def parse(raw: str, json_format: bool = False) -> object:
    return parse_layout(raw, json_format=json_format, where="layout file l.toml")


def test_a_good_layout_reads_whole_with_items() -> None:
    layout = parse_layout(GOOD, json_format=False, where="l.toml")
    targets = layout.targets()
    assert [t for t, _g in targets] == [Target("prod", "finance"), Target("prod", "finance", "payroll")]
    assert [(g.principal, g.role) for g in targets[0][1]] == [("g/eng", Role.WRITER), ("u/alice", Role.ADMIN)]
    assert [(g.principal, g.role) for g in targets[1][1]] == [("g/eng", Role.VIEWER)]


def test_a_principal_granted_twice_on_one_folder_is_refused() -> None:
    raw = GOOD.replace('{ principal = "u/alice", role = "admin" }', '{ principal = "g/eng", role = "admin" }')
    with pytest.raises(BadInput, match=r"g/eng is granted twice here .*grants\[0\]"):
        parse(raw)


@pytest.mark.parametrize(
    ("raw", "key", "line"),
    [
        (GOOD.replace("grants = [\n  {", "grant = [\n  {"), "grant", 9),
        (GOOD.replace('summary = "Money"', 'sumary = "Money"'), "sumary", 8),
        (GOOD.replace('role = "writer"', 'role = "writer", expires = "never"'), "expires", 10),
        ('workspace = []\n[[workspaces]]\nid = "x"\n', "workspace", 1),
    ],
)
def test_an_unknown_key_is_refused_with_its_name_and_line(raw: str, key: str, line: int) -> None:
    with pytest.raises(BadInput, match=rf"unknown key '{key}' \(line {line}\)"):
        parse(raw)


def test_json_layouts_follow_the_same_rules() -> None:
    raw = '{"workspaces": [{"id": "prod", "folders": [{"name": "finance", "grantz": []}]}]}'
    with pytest.raises(BadInput, match=r"unknown key 'grantz' \(line 1\)"):
        parse(raw, json_format=True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (GOOD.replace('role = "writer"', 'role = "owner"'), "unknown role"),
        (GOOD.replace("f/finance/payroll", "f/infra/payroll"), "not under f/finance/"),
        (GOOD.replace("f/finance/payroll", "f/finance/../x"), "bad item name"),
        (GOOD + '\n[[workspaces.folders]]\nname = "finance"\n', "listed twice"),
        ("[[workspaces]]\nname = 'no id'\n", "needs an 'id'"),
        ("workspaces = 3\n", "expected a list"),
        ("not toml at all = = =", "not valid TOML"),
    ],
)
def test_bad_layouts_are_one_clear_error(raw: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse(raw)
