"""ScimSource against a real scim2-server on 127.0.0.1, and against raw hand-written JSON."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from groupwarden.domain.directory import Progress, Snapshot
from groupwarden.domain.errors import SyncError
from groupwarden.sources import scim
from groupwarden.sources.http import HttpClient, retry_after_wait, safe_url
from groupwarden.sources.scim import ENTERPRISE_USER as ENTERPRISE
from groupwarden.sources.scim import ScimSource
from scim_server import ScimServer, ServedApp, serve_raw, start_scim_server


class FakeClock:
    """Records every wait instead of sleeping through it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def server() -> Iterator[ScimServer]:
    with start_scim_server() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def source_for(server: ScimServer | ServedApp, clock: FakeClock, **options: Any) -> ScimSource:
    token = server.token if isinstance(server, ScimServer) else None
    return ScimSource(server.url, token, sleep=clock.sleep, **options)


def fetch_error(source: ScimSource) -> str:
    with pytest.raises(SyncError) as caught:
        source.fetch()
    message = str(caught.value)
    assert "\n" not in message
    return message


def user(uid: Any, user_name: str, **fields: Any) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": uid,
            "userName": user_name, **fields}  # fmt: skip


def group(gid: Any, name: str | None, *members: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": gid,
            "displayName": name, "members": list(members), **fields}  # fmt: skip


@pytest.fixture
def raw_server() -> Iterator[list[ServedApp]]:
    started: list[ServedApp] = []
    yield started
    for app in started:
        app.stop()


# --- the real server ---------------------------------------------------------------------


def test_full_listing_is_parsed(server: ScimServer, clock: FakeClock) -> None:
    zoe = server.add_user(
        "zoe",
        display_name="Zoë Åström-Núñez",
        emails=["zoe@home.example.org", "zoe@corp.example.com"],
        primary_email="zoe@corp.example.com",
    )
    yamada = server.add_user("yamada", display_name="山田 太郎", emails=["taro@example.jp"])
    gone = server.add_user("gone", active=False)
    formal = server.add_user("formal", name={"formatted": "Ms. Formal Name"})
    eng = server.add_group("eng", users=[zoe, yamada])
    server.add_group("全員", users=[gone, formal], groups=[eng])
    server.add_group("empty")
    seen: list[Progress] = []

    snapshot = source_for(server, clock).fetch(seen.append)

    users = {u.user_name: u for u in snapshot.users}
    assert sorted(users) == ["formal", "gone", "yamada", "zoe"]
    assert users["zoe"].upstream_id == zoe
    assert users["zoe"].display_name == "Zoë Åström-Núñez"
    assert users["zoe"].emails == ["zoe@corp.example.com", "zoe@home.example.org"]
    assert users["yamada"].display_name == "山田 太郎"
    assert users["yamada"].emails == ["taro@example.jp"]
    assert users["zoe"].active and not users["gone"].active
    assert users["gone"].display_name is None and users["gone"].emails == []
    assert users["formal"].display_name == "Ms. Formal Name"
    assert all(u.raw_status is None for u in snapshot.users)

    groups = {g.name: g for g in snapshot.groups}
    assert groups["eng"].user_members == [zoe, yamada]
    assert groups["eng"].group_members == []
    assert groups["全員"].user_members == [gone, formal]
    assert groups["全員"].group_members == [eng]
    assert groups["empty"].user_members == groups["empty"].group_members == []
    assert snapshot.warnings == []
    assert seen == [
        Progress(phase="users", pages=1, items=4, total=4),
        Progress(phase="groups", pages=1, items=3, total=3),
    ]
    assert clock.waits == []
    assert gc.get_freeze_count() == 0


def test_many_short_pages_reach_total_results(server: ScimServer, clock: FakeClock) -> None:
    ids = [server.add_user(f"user{n:03}") for n in range(250)]
    server.add_group("everyone", users=ids)
    server.faults.max_count = 37
    seen: list[Progress] = []

    snapshot = source_for(server, clock, page_size=100).fetch(seen.append)

    assert sorted(u.upstream_id for u in snapshot.users) == sorted(ids)
    assert snapshot.groups[0].user_members == ids
    user_pages = [p for p in seen if p.phase == "users"]
    assert [p.items for p in user_pages] == [37, 74, 111, 148, 185, 222, 250]
    assert [p.pages for p in user_pages] == [1, 2, 3, 4, 5, 6, 7]
    assert {p.total for p in user_pages} == {250}
    assert seen[-1] == Progress(phase="groups", pages=1, items=1, total=1)
    # The client asked for its own page size and advanced by what it actually received
    # (the pages fetched ahead arrive in any order).
    assert server.faults.queries[0] == "startIndex=1&count=100"
    assert "startIndex=38&count=100" in server.faults.queries


def test_page_size_is_capped_by_service_provider_config(server: ScimServer, clock: FakeClock) -> None:
    server.add_user("only")
    source_for(server, clock, page_size=5000).fetch()
    assert server.faults.queries[0] == "startIndex=1&count=1000"


def test_rate_limit_retry_after_is_honoured(server: ScimServer, clock: FakeClock) -> None:
    server.add_user("patient")
    server.faults.throttle = 2
    server.faults.retry_after = "3"

    snapshot = source_for(server, clock).fetch()

    assert [u.user_name for u in snapshot.users] == ["patient"]
    assert clock.waits == [3.0, 3.0]


def test_retry_after_wait_is_capped(server: ScimServer, clock: FakeClock) -> None:
    server.faults.throttle = 1
    server.faults.retry_after = "3600"
    source_for(server, clock).fetch()
    assert clock.waits == [60.0]


def test_server_failing_halfway_is_a_one_line_error(server: ScimServer, clock: FakeClock) -> None:
    for n in range(5):
        server.add_user(f"u{n}")
    server.faults.max_count = 2
    server.faults.fail_after = 1
    seen: list[Progress] = []

    with pytest.raises(SyncError) as caught:
        # One page at a time, so the waits counted are the failing page's alone.
        source_for(server, clock, page_concurrency=1).fetch(seen.append)

    message = str(caught.value)
    assert "\n" not in message
    assert server.token not in message
    assert "HTTP 500 after 5 attempts" in message
    assert f"{server.url}/Users?startIndex=3" in message
    assert len(clock.waits) == 4
    assert all(0 < wait <= 60 for wait in clock.waits)
    assert seen == [Progress(phase="users", pages=1, items=2, total=5)]


def test_malformed_page_is_refused(server: ScimServer, clock: FakeClock) -> None:
    for n in range(3):
        server.add_user(f"u{n}")
    server.faults.max_count = 1
    server.faults.malformed = 2
    # The fault hits the second request to arrive: one page at a time, the second page.
    message = fetch_error(source_for(server, clock, page_concurrency=1))
    assert "not valid JSON" in message
    assert "startIndex=2" in message


def test_wrong_token_is_refused_without_showing_it(server: ScimServer, clock: FakeClock) -> None:
    wrong = "wrong-token-8c1e"
    message = fetch_error(ScimSource(server.url, wrong, sleep=clock.sleep))
    assert "HTTP 401" in message and "token" in message
    assert wrong not in message and server.token not in message
    assert clock.waits == []


def test_directory_changing_during_the_sync_is_refused(server: ScimServer, clock: FakeClock) -> None:
    for n in range(4):
        server.add_user(f"u{n}")
    server.faults.max_count = 2

    def add_one(number: int) -> None:
        if number == 2:
            server.add_user("latecomer")

    server.faults.before_list = add_one
    message = fetch_error(source_for(server, clock))
    assert "changed during the sync" in message


def test_slow_server_times_out_clearly(server: ScimServer, clock: FakeClock) -> None:
    server.faults.delay = 0.5
    message = fetch_error(source_for(server, clock, timeout=0.1))
    assert "timeout" in message and "/Users" in message
    assert server.token not in message
    assert len(clock.waits) == 4


def test_credentials_in_the_url_are_never_shown(server: ScimServer, clock: FakeClock) -> None:
    secret_url = server.url.replace("http://", "http://admin:hunter2@")
    source = ScimSource(secret_url, "wrong-token", sleep=clock.sleep)
    assert source.url == server.url == source.name
    assert "hunter2" not in repr(source)
    message = fetch_error(source)
    assert "hunter2" not in message and "admin" not in message


def test_nothing_listening_is_a_clear_error(clock: FakeClock) -> None:
    with start_scim_server() as stopped:
        url = stopped.url
    message = fetch_error(ScimSource(url, "t0ken", sleep=clock.sleep))
    assert "ConnectError after 5 attempts" in message
    assert "t0ken" not in message


# --- raw JSON, as real identity providers send it ----------------------------------------


def test_tolerates_what_real_providers_send(raw_server: list[ServedApp], clock: FakeClock) -> None:
    users = [
        user("u1", "alice", active="False", emails=[{"value": "a@corp"},
             {"value": "alice@corp.example", "primary": "true"}], fooBar=1,
             **{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R"}}),
        user("u2", "bob", active="TRUE", fooBar=2, costCenter="42"),
        user(3, "carol"),
    ]  # fmt: skip
    groups = [
        group("g1", "untyped", {"value": "u1"}, {"value": "g2"}, {"value": "3", "type": "user"}),
        group("g2", "nested", {"value": "u2", "type": "User", "display": "Bob"}, extra=True),
    ]
    raw_server.append(served := serve_raw(users, groups))

    snapshot = source_for(served, clock).fetch()

    alice, bob, carol = snapshot.users
    assert (alice.active, bob.active, carol.active) == (False, True, True)
    assert alice.emails == ["alice@corp.example", "a@corp"]
    assert carol.upstream_id == "3" and carol.display_name is None
    untyped, nested = snapshot.groups
    assert sorted(untyped.user_members) == ["3", "u1"] and untyped.group_members == ["g2"]
    assert nested.user_members == ["u2"]
    assert sorted(snapshot.warnings) == [
        f"{served.url}: ignored the non-standard SCIM attribute Group.extra",
        f"{served.url}: ignored the non-standard SCIM attribute User.costCenter",
        f"{served.url}: ignored the non-standard SCIM attribute User.fooBar",
    ]


@pytest.mark.parametrize(
    ("users", "groups", "expected"),
    [
        ([user(None, "noid")], [], "user #1 ('noid') has no id"),
        ([user("u1", "")], [], "user 'u1' has no userName"),
        ([user("u1", "a", active="maybe")], [], "active='maybe'"),
        ([], [group(None, "eng")], "group #1 ('eng') has no id"),
        ([], [group("g1", None)], "group 'g1' has no displayName"),
        ([user("u1", "a")], [group("g1", "eng", {"type": "User"})], "member without a value"),
        ([user("u1", "a")], [group("g1", "eng", {"value": "ghost"})], "member 'ghost'"),
        ([user("u1", "a")], [group("g1", "eng", {"value": "x", "type": "User"})], "user 'x'"),
        ([user("u1", "a"), user("u1", "b")], [], "listed twice"),
    ],
)
def test_strict_about_what_matters(
    raw_server: list[ServedApp],
    clock: FakeClock,
    users: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    expected: str,
) -> None:
    raw_server.append(served := serve_raw(users, groups))
    message = fetch_error(source_for(served, clock))
    assert expected in message
    assert message.endswith("sync aborted")


def test_empty_page_before_total_results_is_incomplete(raw_server: list[ServedApp], clock: FakeClock) -> None:
    raw_server.append(served := serve_raw([user("u1", "a"), user("u2", "b")], [], claimed_total=5))
    message = fetch_error(source_for(served, clock))
    assert "empty page at startIndex 3" in message and "incomplete" in message


# --- the HTTP layer -------------------------------------------------------------------------


def test_safe_url_strips_credentials() -> None:
    assert (
        safe_url("https://me:pw@idp.example.com:8443/scim/v2/Users?startIndex=1&access_token=abc")
        == "https://idp.example.com:8443/scim/v2/Users?startIndex=1&access_token=%2A%2A%2A"
    )


def test_retry_after_as_http_date() -> None:
    later = formatdate(timeval=None, usegmt=True)
    response = httpx.Response(429, headers={"Retry-After": later})
    wait = retry_after_wait(response)
    assert wait is not None and 0 <= wait <= 1
    assert retry_after_wait(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert retry_after_wait(httpx.Response(503)) is None


def test_custom_server_wait_and_jittered_backoff(clock: FakeClock) -> None:
    calls = iter([503, 503, 429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(calls)
        return httpx.Response(status, json={"ok": True}, headers={"X-Rate-Limit-Reset": "9"})

    def reset_header(response: httpx.Response) -> float | None:
        return float(response.headers["X-Rate-Limit-Reset"]) if response.status_code == 429 else None

    with HttpClient(
        sleep=clock.sleep,
        rng=random.Random(1),
        server_wait=reset_header,
        transport=httpx.MockTransport(handler),
    ) as http:
        body, _ = http.get_json("https://idp.example.com/api")
    assert body == {"ok": True}
    assert 0.5 <= clock.waits[0] <= 1.0 and 1.0 <= clock.waits[1] <= 2.0
    assert clock.waits[2] == 9.0


def test_source_identity() -> None:
    source = ScimSource("https://idp.example.com/scim/v2/", None)
    assert (source.kind, source.url, source.name) == (
        "scim",
        "https://idp.example.com/scim/v2",
        "https://idp.example.com/scim/v2",
    )


# --- typed pages and the raw reader ---------------------------------------------------------


def fetch_counting_raw_pages(
    served: ServedApp, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> tuple[Snapshot, int]:
    """The snapshot, and how many list pages went to the raw reader."""
    raw_pages = 0
    decode = scim.decode_json

    def counted(response: httpx.Response) -> Any:
        nonlocal raw_pages
        raw_pages += 1
        return decode(response)

    monkeypatch.setattr(scim, "decode_json", counted)
    snapshot = source_for(served, clock).fetch()
    monkeypatch.undo()
    return snapshot, raw_pages


def test_pages_the_typed_reader_refuses_give_the_same_snapshot(
    raw_server: list[ServedApp], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [
        user("u1", "alice", displayName="Alice",
             emails=[{"value": "a@corp"}, {"value": "al@corp", "primary": True}]),
        user("u2", "bob", name={"formatted": "Bob B."}, active=False),
        user("u3", "carol", **{ENTERPRISE: {"department": "R&D"}}),
    ]  # fmt: skip
    groups = [
        group("g1", "eng", {"value": "u1", "type": "User"}, {"value": "g2", "type": "Group"}),
        group("g2", "ops", {"value": "u2", "type": "User"}, {"value": "u3", "type": "User"}),
    ]
    raw_server.append(plain := serve_raw(users, groups))
    # The same directory as some providers send it: shapes the typed reader does not take
    # (an email that is not an object, a display name that is a number, a number as a
    # member id where the user's id is a string of digits) but that change nothing we keep.
    odd_users = [dict(u) for u in users]
    odd_users[0]["emails"] = [*users[0]["emails"], "not-an-address"]
    odd_users[1]["displayName"] = 42
    odd_users[2]["id"] = "3"
    odd_groups = [dict(g) for g in groups]
    odd_groups[1]["members"] = [{"value": "u2", "type": "User"}, {"value": 3, "type": "User"}]
    raw_server.append(odd := serve_raw(odd_users, odd_groups))

    expected, raw_pages = fetch_counting_raw_pages(plain, clock, monkeypatch)
    assert raw_pages == 0
    fallen_back, raw_pages = fetch_counting_raw_pages(odd, clock, monkeypatch)
    assert raw_pages == 2

    for snapshot in (expected, fallen_back):
        alice, bob, _carol = snapshot.users
        assert (alice.display_name, alice.emails) == ("Alice", ["al@corp", "a@corp"])
        assert (bob.display_name, bob.active) == ("Bob B.", False)
        assert snapshot.warnings == []
    assert fallen_back.users[:2] == expected.users[:2]
    assert fallen_back.users[2].upstream_id == "3"
    assert fallen_back.groups[0] == expected.groups[0]
    assert fallen_back.groups[1].user_members == ["u2", "3"]


def test_unknown_attributes_are_reported_once_each_across_pages(
    raw_server: list[ServedApp], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [
        user(f"u{n}", f"user{n}", costCenter=str(n), **({"USERNAME": "x"} if n == 3 else {}))
        for n in range(5)
    ]
    users.append(user("u5", "standard", **{ENTERPRISE: {}, "urn:example:custom:User": {"x": 1}}))
    raw_server.append(served := serve_raw(users, [group("g1", "all", *({"value": u["id"]} for u in users))]))

    snapshot, raw_pages = fetch_counting_raw_pages(served, clock, monkeypatch)

    # Unknown names are found without the raw reader; case-variants of standard names are
    # known (SCIM names are case-insensitive), extension URNs are standard.
    assert raw_pages == 0
    assert snapshot.warnings == [f"{served.url}: ignored the non-standard SCIM attribute User.costCenter"]
    assert sorted(snapshot.groups[0].user_members) == sorted(u["id"] for u in users)
