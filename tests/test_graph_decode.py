"""Graph list pages read by the msgspec structs must read as the raw-dict reader reads them.

A page the structs accept is read by the typed path, one they refuse by the raw reader: for
each shape below, either the typed decode refuses it, or both paths give the same result.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from graph_server import GROUP, USER, GraphServer, start_graph_server
from groupwarden.domain.errors import SyncError
from groupwarden.sources.graph import (
    GROUP_PAGE,
    MEMBER_PAGE,
    USER_PAGE,
    GraphSource,
    _typed_groups,
    _typed_members,
    _typed_users,
)
from idp_fakes import FakeClock, organisation

SOURCE = GraphSource("tenant", token="t", name="corp")


def user(**fields: Any) -> dict[str, Any]:
    return {"id": "u1", "userPrincipalName": "ann@corp.test", **fields}


USERS = [
    user(),
    user(displayName="Ann", mail="ann@corp.test", otherMails=[], accountEnabled=True),
    user(displayName="", mail="", otherMails=None, accountEnabled=False),
    user(displayName=None, mail=None, accountEnabled=None),
    user(mail="a@corp.test", otherMails=["", "b@corp.test", "a@corp.test", "b@corp.test"]),
    user(otherMails=["b@corp.test"]),
    user(unknown={"nested": [1, 2]}, **{"@odata.type": USER}),
    # The raw reader's call: the structs must refuse these.
    user(id=17),
    user(id=True),
    user(id=""),
    user(userPrincipalName=""),
    {"id": "u1"},
    user(otherMails=["b@corp.test", 5]),
    user(otherMails="b@corp.test"),
    user(accountEnabled="false"),
    user(displayName=5),
    user(mail=["a@corp.test"]),
    "not an object",
]

GROUPS = [
    {"id": "g1", "displayName": "eng"},
    {"id": "g1", "displayName": "eng", "description": ""},
    {"id": "g1", "displayName": "eng", "description": "Engineering", "extra": None},
    {"id": 4, "displayName": "eng"},
    {"id": "g1", "displayName": ""},
    {"id": "g1", "displayName": "eng", "description": 3},
    {"id": "g1"},
]

MEMBERS = [
    [{"@odata.type": USER, "id": "u1"}, {"@odata.type": USER, "id": "u2"}],
    [{"@odata.type": USER, "id": "u1"}, {"@odata.type": GROUP, "id": "g2"}],
    [
        {"@odata.type": "#microsoft.graph.device", "id": "d1"},
        {"id": "x1"},
        {"@odata.type": None, "id": "x2"},
        {"@odata.type": GROUP, "id": "g2"},
        {"@odata.type": USER, "id": "u1"},
    ],
    [],
    [{"@odata.type": USER, "id": 7}],
    [{"@odata.type": 3, "id": "x1"}],
    [{"@odata.type": USER}],
    [{"@odata.type": USER, "id": ""}],
    ["u1"],
]


def page(items: list[Any]) -> bytes:
    return json.dumps({"value": items}).encode()


def raw_or_error(read: Any) -> Any:
    try:
        return read()
    except SyncError as error:
        return f"SyncError: {error}"


@pytest.mark.parametrize("item", USERS)
def test_typed_users_read_as_the_raw_reader(item: Any) -> None:
    raw = raw_or_error(lambda: [SOURCE._user(item, 1)])
    try:
        decoded = USER_PAGE.decode(page([item]))
    except msgspec.ValidationError:
        return
    assert _typed_users(decoded.value) == raw


@pytest.mark.parametrize("item", GROUPS)
def test_typed_groups_read_as_the_raw_reader(item: Any) -> None:
    raw = raw_or_error(lambda: [SOURCE._group(item, 1)])
    try:
        decoded = GROUP_PAGE.decode(page([item]))
    except msgspec.ValidationError:
        return
    assert _typed_groups(decoded.value) == raw


@pytest.mark.parametrize("items", MEMBERS)
def test_typed_members_read_as_the_raw_reader(items: list[Any]) -> None:
    raw_ignored: dict[str, int] = {}
    raw = raw_or_error(lambda: SOURCE._members("eng", items, raw_ignored))
    try:
        decoded = MEMBER_PAGE.decode(page(items))
    except msgspec.ValidationError:
        return
    typed_ignored: dict[str, int] = {}
    assert (_typed_members(decoded.value, typed_ignored), typed_ignored) == (raw, raw_ignored)


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"values": []}', b'{"value": {}}', b'{"value": [], "@odata.nextLink": 5}', b'{"value": ['],
)
def test_pages_of_another_shape_are_refused(body: bytes) -> None:
    with pytest.raises((msgspec.ValidationError, msgspec.DecodeError)):
        USER_PAGE.decode(body)


# --- whole fetches, with pages on both paths ----------------------------------------------


def loaded(clock: FakeClock) -> GraphServer:
    server = start_graph_server(clock)
    people, teams = organisation()
    server.load(people, teams)
    return server


def fetch(server: GraphServer, clock: FakeClock) -> Any:
    return GraphSource(
        "tenant", token="graph-test-static-token-Qw1", name="corp", graph_url=server.url, sleep=clock.sleep
    ).fetch()


def test_an_unusual_page_is_read_by_the_raw_reader() -> None:
    clock = FakeClock()
    with loaded(clock) as server:
        usual = fetch(server, clock)
        first = next(iter(server.state.users.values()))
        first["accountEnabled"] = "no"  # not False: the raw reader counts it active
        first["otherMails"] = [*first["otherMails"], 42, "extra@corp.test"]
        server.state.members["g01"].append(("#microsoft.graph.device", "d1"))
        server.commit()
        unusual = fetch(server, clock)
    changed = next(u for u in unusual.users if u.upstream_id == first["id"])
    assert changed.active is True
    assert changed.emails[-1] == "extra@corp.test"
    assert [u for u in unusual.users if u is not changed] == [
        u for u in usual.users if u.upstream_id != first["id"]
    ]
    assert [g.user_members for g in unusual.groups] == [g.user_members for g in usual.groups]
    assert unusual.warnings == ["corp: ignored 1 group members of type #microsoft.graph.device"]


def test_a_refused_page_keeps_the_raw_readers_error() -> None:
    clock = FakeClock()
    with loaded(clock) as server:
        first = next(iter(server.state.users.values()))
        del first["userPrincipalName"]
        server.commit()
        with pytest.raises(SyncError, match=f"user '{first['id']}' has no userPrincipalName"):
            fetch(server, clock)
    with loaded(clock) as server:
        server.state.members["g01"].append((USER, ""))
        server.commit()
        with pytest.raises(SyncError, match="group 'eng' has a member without an id"):
            fetch(server, clock)
