"""The identity-provider clients against hostile servers on 127.0.0.1: no hang, no endless
paging, no decompression bomb, no silently short listing, no member filed under the wrong kind.

Deadlines are tested with small limits against a server that drips its body; what is
asserted is the error and that nothing was written, never how long anything took.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from groupwarden.domain.errors import SyncError
from groupwarden.services.audit import sync_runs
from groupwarden.services.context import Context
from groupwarden.services.export import export_json
from groupwarden.services.sync import run_sync
from groupwarden.sources.graph import GraphSource
from groupwarden.sources.http import MIB, HttpClient
from groupwarden.sources.okta import OktaSource
from groupwarden.sources.scim import PAGE_CONCURRENCY, ScimSource
from hostile_server import (
    BombApp,
    CompressedApp,
    DripApp,
    OnwardGraphApp,
    OnwardOktaApp,
    RepeatingScimApp,
    ShrinkingScimApp,
    gzip_bomb,
)
from scim_server import Faults, RawScimApp, ServedApp, start_scim_server

TOKEN = "hostile-test-token-Vb81x"


@pytest.fixture
def served() -> Iterator[list[ServedApp]]:
    started: list[ServedApp] = []
    yield started
    for app in started:
        app.stop()


def serve(started: list[ServedApp], app: Any, path: str = "/v2") -> ServedApp:
    running = ServedApp(app, path)
    started.append(running)
    if hasattr(app, "base"):
        app.base = running.url.removesuffix(path)
    return running


def no_sleep(_seconds: float) -> None:
    pass


def fetch_error(source: ScimSource | OktaSource | GraphSource) -> str:
    with pytest.raises(SyncError) as caught:
        source.fetch()
    message = str(caught.value)
    assert "\n" not in message
    assert TOKEN not in message
    return message


def make_source(kind: str, url: str, **options: Any) -> ScimSource | OktaSource | GraphSource:
    if kind == "scim":
        return ScimSource(url, TOKEN, sleep=no_sleep, **options)
    if kind == "okta":
        return OktaSource(url, TOKEN, sleep=no_sleep, **options)
    return GraphSource("tenant", token=TOKEN, graph_url=url, sleep=no_sleep, **options)


def user(uid: str, name: str) -> dict[str, Any]:
    return {"id": uid, "userName": name}


def group(gid: str, name: str, *members: dict[str, Any]) -> dict[str, Any]:
    return {"id": gid, "displayName": name, "members": list(members)}


# --- deadlines --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["scim", "okta", "graph"])
def test_a_dripping_server_is_cut_off_at_the_request_timeout(served: list[ServedApp], kind: str) -> None:
    running = serve(served, DripApp(), "")
    message = fetch_error(make_source(kind, running.url, request_timeout=0.5))
    assert "request timeout of 0.5 s" in message
    assert f"GET {running.url}/" in message


def test_a_dripping_server_is_cut_off_at_the_sync_timeout(served: list[ServedApp]) -> None:
    running = serve(served, DripApp())
    message = fetch_error(make_source("scim", running.url, sync_timeout=0.5))
    assert "time limit of 0.5 s (the sync timeout)" in message
    assert f"GET {running.url}/ServiceProviderConfig" in message


def test_a_wait_that_would_pass_the_sync_deadline_is_not_slept() -> None:
    waits: list[float] = []
    with start_scim_server(faults=Faults(throttle=1, retry_after="30")) as server:
        source = ScimSource(server.url, server.token, sleep=waits.append, sync_timeout=20)
        with pytest.raises(SyncError) as caught:
            source.fetch()
    assert "time limit of 20 s (the sync timeout)" in str(caught.value)
    assert "/Users" in str(caught.value)
    assert waits == []


def test_a_stalled_sync_writes_nothing(ctx: Context, served: list[ServedApp]) -> None:
    with start_scim_server() as server:
        alice = server.add_user("alice")
        server.add_group("eng", users=[alice])
        run_sync(ctx, ScimSource(server.url, server.token, name="corp", sleep=no_sleep))
    before = export_json(ctx)
    running = serve(served, DripApp())

    with pytest.raises(SyncError) as caught:
        run_sync(ctx, ScimSource(running.url, TOKEN, name="corp", request_timeout=0.5))

    assert "request timeout of 0.5 s" in str(caught.value)
    assert export_json(ctx) == before
    runs = sync_runs(ctx)
    assert [r.outcome for r in runs] == ["failed", "ok"]
    assert runs[0].error == str(caught.value)


# --- decompression ----------------------------------------------------------------------------


def test_a_gzip_bomb_is_refused_at_the_size_cap(served: list[ServedApp]) -> None:
    bomb = gzip_bomb(200 * MIB, level=1)
    running = serve(served, BombApp(bomb))
    client = HttpClient(max_body=8 * MIB, sleep=no_sleep)
    source = ScimSource(running.url, None, client=client)
    message = fetch_error(source)
    client.close()
    assert "sent more than 8 MiB once decompressed" in message
    assert f"GET {running.url}/ServiceProviderConfig" in message


def test_a_plain_body_over_the_cap_is_refused(served: list[ServedApp]) -> None:
    running = serve(served, RawScimApp([user(f"u{n}", f"user{n}") for n in range(50)], []))
    with HttpClient(max_body=1000, sleep=no_sleep) as client, pytest.raises(SyncError) as caught:
        client.get(f"{running.url}/Users", {"count": 50})
    assert "sent more than 1000 bytes, far more than a page" in str(caught.value)


@pytest.mark.parametrize(
    ("coding", "body", "expected"),
    [
        ("br", b"\x1b\x00", "content coding 'br', which we did not ask for"),
        ("gzip", b"\x1f\x8b\x08\x00not-gzip-at-all", "gzip body that does not decompress"),
    ],
)
def test_a_body_we_cannot_decode_is_one_line(
    served: list[ServedApp], coding: str, body: bytes, expected: str
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Encoding", coding), ("Content-Length", str(len(body)))])
        return [body]

    running = serve(served, app)
    message = fetch_error(make_source("scim", running.url))
    assert expected in message and f"GET {running.url}/ServiceProviderConfig" in message


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_pages_give_the_same_snapshot(served: list[ServedApp], coding: str) -> None:
    users = [user(f"u{n}", f"user{n}") for n in range(30)]
    groups = [group("g1", "all", *({"value": u["id"], "type": "User"} for u in users))]
    plain = serve(served, RawScimApp(users, groups))
    packed = serve(served, CompressedApp(RawScimApp(users, groups), coding))

    expected = ScimSource(plain.url, None, page_size=7).fetch()
    assert ScimSource(packed.url, None, page_size=7).fetch() == expected
    assert len(expected.users) == 30 and len(expected.groups[0].user_members) == 30


# --- paging without an end --------------------------------------------------------------------


def test_a_scim_server_serving_the_same_page_again_is_stopped(served: list[ServedApp]) -> None:
    app = RepeatingScimApp()
    running = serve(served, app)
    message = fetch_error(make_source("scim", running.url, page_size=2))
    assert "2 of the 2 users of a page were listed twice" in message
    assert message.endswith("sync aborted")
    # The first page, the second, and at most the pages fetched ahead beside it.
    assert 2 <= app.list_requests <= 2 + 2 * PAGE_CONCURRENCY


def test_scim_pages_that_shrink_below_the_total_are_stopped(served: list[ServedApp]) -> None:
    app = ShrinkingScimApp(total=1000)
    running = serve(served, app)
    message = fetch_error(make_source("scim", running.url, page_size=10))
    assert "pages and still short of totalResults (1000)" in message
    # 1000 in pages of 10 implies 100 pages; twice that and ten more are allowed, and at
    # most the pages fetched ahead beside them.
    assert 210 <= app.list_requests <= 210 + 2 * PAGE_CONCURRENCY


def test_an_okta_link_that_always_points_onward_is_stopped(served: list[ServedApp]) -> None:
    app = OnwardOktaApp()
    running = serve(served, app, "")
    message = fetch_error(make_source("okta", running.url))
    assert "listing users" in message and "1 of the 1 users of a page were listed twice" in message
    assert app.requests == 2


def test_a_graph_next_link_that_always_points_onward_is_stopped(served: list[ServedApp]) -> None:
    app = OnwardGraphApp()
    running = serve(served, app, "")
    message = fetch_error(make_source("graph", running.url))
    assert "listing users" in message and "1 of the 1 users of a page were listed twice" in message
    # Two delta links, then two pages of users.
    assert app.requests == 4


# --- a listing that ends early ----------------------------------------------------------------


def test_a_total_one_too_low_with_short_pages_is_refused(served: list[ServedApp]) -> None:
    users = [user(f"u{n}", f"user{n}") for n in range(5)]
    running = serve(served, RawScimApp(users, [], claimed_total=4))
    message = fetch_error(make_source("scim", running.url, page_size=2))
    assert "still lists resources past its totalResults (4)" in message


def test_a_total_one_too_low_in_one_page_is_refused(served: list[ServedApp]) -> None:
    users = [user(f"u{n}", f"user{n}") for n in range(5)]
    running = serve(served, RawScimApp(users, [], claimed_total=4))
    message = fetch_error(make_source("scim", running.url, page_size=100))
    assert "listed 5 resources, more than its totalResults (4)" in message


def test_an_empty_directory_is_a_complete_listing(served: list[ServedApp]) -> None:
    running = serve(served, RawScimApp([], []))
    snapshot = make_source("scim", running.url).fetch()
    assert snapshot.users == [] and snapshot.groups == []


# --- members without a type ---------------------------------------------------------------------


def test_an_untyped_member_whose_id_is_a_user_and_a_group_is_refused(served: list[ServedApp]) -> None:
    users = [user("5", "five")]
    groups = [group("5", "team five"), group("g1", "eng", {"value": "5"})]
    running = serve(served, RawScimApp(users, groups))
    message = fetch_error(make_source("scim", running.url))
    assert "group 'eng' names member '5' without a type" in message
    assert "both a user and a group have that id" in message


def test_typed_members_may_share_ids_across_kinds(served: list[ServedApp]) -> None:
    users = [user("5", "five")]
    groups = [
        group("5", "team five", {"value": "5", "type": "User"}),
        group("g1", "eng", {"value": "5", "type": "Group"}, {"value": "5", "type": "User"}),
    ]
    running = serve(served, RawScimApp(users, groups))
    snapshot = make_source("scim", running.url).fetch()
    eng = snapshot.groups[1]
    assert (eng.user_members, eng.group_members) == (["5"], ["5"])
