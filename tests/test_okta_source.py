"""OktaSource against a local server that pages, throttles and fails as Okta documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from groupwarden.domain.directory import Progress
from groupwarden.domain.errors import SyncError
from groupwarden.sources.okta import OktaSource
from idp_fakes import FakeClock, Faults, organisation
from okta_server import OktaServer, start_okta_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[OktaServer]:
    with start_okta_server(clock) as running:
        yield running


def source_for(server: OktaServer, clock: FakeClock, **options: Any) -> OktaSource:
    options.setdefault("token", server.token)
    return OktaSource(server.url, sleep=clock.sleep, clock=clock.time, **options)


def fetch_error(source: OktaSource) -> str:
    with pytest.raises(SyncError) as caught:
        source.fetch()
    message = str(caught.value)
    assert "\n" not in message
    assert "okta-test-token" not in message
    return message


def test_users_groups_members_and_statuses(server: OktaServer, clock: FakeClock) -> None:
    people, teams = organisation()
    server.load(people, teams, kinds={"g03": "APP_GROUP"})
    server.set_status("u05", "LOCKED_OUT")
    server.set_status("u07", "DEPROVISIONED")
    seen: list[Progress] = []

    snapshot = source_for(server, clock).fetch(seen.append)

    users = {u.user_name: u for u in snapshot.users}
    assert len(users) == 7
    alice = users["alice@corp.test"]
    assert (alice.upstream_id, alice.display_name, alice.emails) == (
        "u01",
        "Alice Martin",
        ["alice@corp.test", "alice@home.test"],
    )
    assert (alice.active, alice.raw_status) == (True, "ACTIVE")
    assert (users["bob@corp.test"].active, users["bob@corp.test"].raw_status) == (False, "SUSPENDED")
    assert (users["dan@corp.test"].active, users["dan@corp.test"].raw_status) == (True, "LOCKED_OUT")
    # Only the filtered listing returns deprovisioned users; they still show, inactive.
    assert (users["farid@corp.test"].active, users["farid@corp.test"].raw_status) == (False, "DEPROVISIONED")
    assert users["yuki@corp.test"].display_name == "田中 由紀"
    groups = {g.name: g for g in snapshot.groups}
    assert groups["eng"].user_members == ["u01", "u05", "u06"]
    assert groups["eng"].description == "Engineering"
    assert (groups["eng"].kind, groups["finance"].kind) == ("OKTA_GROUP", "APP_GROUP")
    assert groups["empty"].user_members == []
    assert groups["everyone"].user_members == [f"u0{n}" for n in range(1, 8)]
    assert [p.phase for p in seen] == ["users", "users", "groups", *["members"] * 5]
    assert seen[-1] == Progress("members", 5, 5, 5)
    assert clock.waits == []


def test_paging_follows_link_headers_with_the_largest_limits(server: OktaServer, clock: FakeClock) -> None:
    people, teams = organisation(people=450)
    server.load(people, teams)

    snapshot = source_for(server, clock).fetch()

    assert len(snapshot.users) == 450
    assert len({g.upstream_id for g in snapshot.groups}) == 5
    everyone = next(g for g in snapshot.groups if g.name == "everyone")
    assert len(everyone.user_members) == 450
    user_pages = [p for p in server.faults.paths if p.startswith("/api/v1/users") and "DEPROV" not in p]
    assert len(user_pages) == 3
    assert "limit=200" in user_pages[0] and "after=" in user_pages[1]
    assert any("/api/v1/groups?limit=10000" in p for p in server.faults.paths)


def test_rate_limit_429_waits_until_the_reset(clock: FakeClock) -> None:
    people, teams = organisation()
    with start_okta_server(clock, rate_limit=3) as server:
        server.load(people, teams)
        # Pacing off (no slowing down early), so the window does run out and 429s. One
        # request at a time: the fake clock moves when one sleeps, so a 429 waited out beside
        # another would find its window already over.
        source = source_for(server, clock, page_concurrency=1)
        source_pace = source._pace
        source._pace = lambda *args: None  # type: ignore[method-assign]
        snapshot = source.fetch()
        source._pace = source_pace  # type: ignore[method-assign]
    assert len(snapshot.users) == 7
    assert server.faults.throttled >= 2
    # Each 429 waited until the end of the 60 s window (plus a second of skew margin).
    assert all(55 <= wait <= 61 for wait in clock.waits)


def test_low_remaining_slows_down_before_the_limit(clock: FakeClock) -> None:
    people, teams = organisation()
    with start_okta_server(clock, rate_limit=5) as server:
        server.load(people, teams)
        snapshot = source_for(server, clock).fetch()
    assert len(snapshot.groups) == 5
    # 8 requests through a 5-per-minute window without a single 429: we paced instead.
    assert server.faults.requests == 8
    assert server.faults.throttled == 0
    assert clock.waits and clock.slept >= 60


def test_a_429_storm_completes_honouring_the_waits_within_a_bound(clock: FakeClock) -> None:
    people, teams = organisation(people=450)
    faults = Faults(storm=0.3, storm_seed=11)
    with start_okta_server(clock, faults) as server:
        server.load(people, teams)
        # One request at a time: the seeded storm then hits the same requests on every run.
        snapshot = source_for(server, clock, page_concurrency=1).fetch()
    assert len(snapshot.users) == 450
    assert faults.throttled >= 2
    assert len(clock.waits) == faults.throttled
    assert clock.slept <= 900


def test_endless_throttling_ends_with_a_clear_error(clock: FakeClock) -> None:
    people, teams = organisation()
    with start_okta_server(clock, Faults(storm=1.0)) as server:
        server.load(people, teams)
        message = fetch_error(source_for(server, clock, max_total_wait=200))
    assert "429" in message or "throttling" in message
    assert clock.slept <= 200


def test_wrong_token_is_refused_with_okta_summary(server: OktaServer, clock: FakeClock) -> None:
    server.load(*organisation())
    message = fetch_error(source_for(server, clock, token="okta-test-token-WRONG"))
    assert "HTTP 401" in message and "Invalid token provided" in message
    assert "check the token" in message


def test_permanent_failure_on_a_member_page(clock: FakeClock) -> None:
    people, teams = organisation()
    with start_okta_server(clock, Faults(fail_path="/groups/g03/users")) as server:
        server.load(people, teams)
        message = fetch_error(source_for(server, clock))
    assert "/api/v1/groups/g03/users" in message and "HTTP 500" in message


def test_malformed_page_is_refused(clock: FakeClock) -> None:
    people, teams = organisation()
    with start_okta_server(clock, Faults(malformed=3)) as server:
        server.load(people, teams)
        message = fetch_error(source_for(server, clock))
    assert "not valid JSON" in message


def test_slow_server_times_out_clearly(clock: FakeClock) -> None:
    people, teams = organisation()
    with start_okta_server(clock, Faults(delay=0.5)) as server:
        server.load(people, teams)
        message = fetch_error(source_for(server, clock, timeout=0.1))
    assert "timeout" in message


def test_next_link_to_another_host_is_refused(server: OktaServer, clock: FakeClock) -> None:
    people, _ = organisation(people=250)
    server.load(people, [])
    server.app.base = "http://127.0.0.2:9"
    message = fetch_error(source_for(server, clock))
    assert "refusing to send the token elsewhere" in message


def test_member_missing_from_the_user_listing_is_incomplete(server: OktaServer, clock: FakeClock) -> None:
    people, teams = organisation()
    server.load(people, teams)
    server.app.hidden.add("u04")
    message = fetch_error(source_for(server, clock))
    assert "'u04'" in message and "incomplete" in message
