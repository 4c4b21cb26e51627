"""GraphSource against a local Graph and token endpoint that behave as Microsoft documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from graph_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    GROUP,
    STATIC_TOKEN,
    TENANT,
    USER,
    GraphServer,
    start_graph_server,
)
from groupwarden.domain.errors import MassDeletionRefused, SyncError
from groupwarden.services.audit import sync_runs
from groupwarden.services.context import Context
from groupwarden.services.export import export_json
from groupwarden.services.reconcile import DeletionGuard
from groupwarden.services.sync import run_sync
from groupwarden.sources.graph import GraphSource
from idp_fakes import FakeClock, Faults, organisation


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[GraphServer]:
    with start_graph_server(clock) as running:
        people, teams = organisation()
        # A nested group: eng-oncall inside eng.
        teams[0].groups.append("g02")
        running.load(people, teams)
        yield running


def source_for(server: GraphServer, clock: FakeClock, **options: Any) -> GraphSource:
    if "token" not in options:
        options.setdefault("client_id", CLIENT_ID)
        options.setdefault("client_secret", CLIENT_SECRET)
    return GraphSource(
        TENANT,
        name="corp",
        graph_url=server.url,
        login_url=server.url,
        sleep=clock.sleep,
        clock=clock.time,
        **options,
    )


def fetch_error(source: GraphSource) -> str:
    with pytest.raises(SyncError) as caught:
        source.fetch()
    message = str(caught.value)
    assert "\n" not in message
    for secret in (CLIENT_SECRET, STATIC_TOKEN, "graph-access-"):
        assert secret not in message
    return message


def exported(ctx: Context) -> dict[str, Any]:
    data = json.loads(export_json(ctx))
    return {
        "groups": {g["name"]: (g["members"], g["groups"], g["description"]) for g in data["groups"]},
        "users": {u["user_name"]: (u["display_name"], u["emails"], u["active"]) for u in data["users"]},
    }


# --- full listing -------------------------------------------------------------------------


def test_full_listing_with_a_nested_group(server: GraphServer, clock: FakeClock) -> None:
    server.state.members["g03"].append(("#microsoft.graph.device", "d-1"))
    source = source_for(server, clock)
    snapshot = source.fetch()
    users = {u.user_name: u for u in snapshot.users}
    assert users["alice@corp.test"].emails == ["alice@corp.test", "alice@home.test"]
    assert users["alice@corp.test"].display_name == "Alice Martin"
    assert not users["bob@corp.test"].active and users["yuki@corp.test"].display_name == "田中 由紀"
    groups = {g.name: g for g in snapshot.groups}
    assert groups["eng"].user_members == ["u01", "u05", "u06"]
    assert groups["eng"].group_members == ["g02"]
    assert groups["finance"].description == "Money flows"
    assert snapshot.warnings == ["corp: ignored 1 group members of type #microsoft.graph.device"]
    assert source.tokens_fetched == 1
    users_query = next(p for p in server.faults.paths if p.startswith("/v1.0/users?"))
    assert "%24top=999" in users_query and "userPrincipalName" in users_query


def test_paging_follows_next_links(clock: FakeClock) -> None:
    people, teams = organisation(people=2100)
    with start_graph_server(clock) as server:
        server.load(people, teams)
        snapshot = source_for(server, clock).fetch()
    assert len(snapshot.users) == 2100
    assert len(next(g for g in snapshot.groups if g.name == "everyone").user_members) == 2100
    assert sum(1 for p in server.faults.paths if "skiptoken" in p) == 2 + 2


def test_static_bearer_token(server: GraphServer, clock: FakeClock) -> None:
    source = source_for(server, clock, token=STATIC_TOKEN)
    assert len(source.fetch().users) == 7
    assert source.tokens_fetched == 0


def test_bad_client_secret_is_one_clear_line(server: GraphServer, clock: FakeClock) -> None:
    message = fetch_error(source_for(server, clock, client_secret="graph-test-secret-WRONG"))
    assert "refused the client credentials" in message and "AADSTS7000215" in message
    assert "graph-test-secret-WRONG" not in message


def test_token_expiring_during_a_sync_is_refreshed_once(server: GraphServer, clock: FakeClock) -> None:
    real_route = server.app.route

    def route(path: str, query: dict[str, str]) -> dict[str, Any]:
        if path.endswith("/v1.0/groups"):
            # The token dies after the list of groups: every member listing, side by side,
            # finds it dead, and one new token serves them all.
            server.app.expire_tokens()
        return real_route(path, query)

    server.app.route = route  # type: ignore[method-assign]
    source = source_for(server, clock)
    snapshot = source.fetch()
    assert len(snapshot.groups) == 5
    assert source.tokens_fetched == 2
    assert server.app.issued == 2


def test_token_refresh_before_it_expires(server: GraphServer, clock: FakeClock) -> None:
    server.app.token_lifetime = 125  # refreshed 120 s early: after 5 s of waiting on 429s
    server.faults.storm, server.faults.storm_seed = 0.3, 3
    source = source_for(server, clock)
    assert len(source.fetch().users) == 7
    assert clock.slept > 5 and source.tokens_fetched >= 2
    # Refreshed ahead of time: no request was sent with an expired token.
    assert server.app.issued == source.tokens_fetched


def test_429_and_503_storm_completes_with_bounded_waits(clock: FakeClock) -> None:
    people, teams = organisation(people=2100)
    faults = Faults(storm=0.35, storm_seed=5)
    with start_graph_server(clock, faults) as server:
        server.load(people, teams)
        # One request at a time: the seeded storm then hits the same requests on every run.
        snapshot = source_for(server, clock, page_concurrency=1).fetch()
    assert len(snapshot.users) == 2100
    assert faults.throttled >= 4
    # 429s carry Retry-After: 3 and are waited exactly; 503s without it back off with jitter.
    assert 3.0 in clock.waits
    assert any(w != 3.0 for w in clock.waits)
    assert clock.slept <= 900


def test_permanent_failure_malformed_page_and_slow_server(clock: FakeClock) -> None:
    people, teams = organisation()
    with start_graph_server(clock, Faults(fail_path="/g04/members")) as server:
        server.load(people, teams)
        assert "HTTP 500" in fetch_error(source_for(server, clock))
    with start_graph_server(clock, Faults(malformed=4)) as server:
        server.load(people, teams)
        assert "not valid JSON" in fetch_error(source_for(server, clock))
    with start_graph_server(clock, Faults(delay=0.5)) as server:
        server.load(people, teams)
        assert "timeout" in fetch_error(source_for(server, clock, timeout=0.1))


def test_unknown_member_is_an_incomplete_listing(server: GraphServer, clock: FakeClock) -> None:
    server.state.members["g03"].append((USER, "u-ghost"))
    assert "incomplete" in fetch_error(source_for(server, clock))


# --- delta, through run_sync --------------------------------------------------------------


def sync(ctx: Context, server: GraphServer, clock: FakeClock, **options: Any) -> Any:
    return run_sync(ctx, source_for(server, clock), **options)


def stored_state(ctx: Context) -> str | None:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT sync_state FROM sources WHERE name = 'corp'")).scalar_one()


def change_the_directory(server: GraphServer) -> None:
    state = server.state
    state.users["u20"] = {
        "id": "u20",
        "userPrincipalName": "zoe@corp.test",
        "displayName": "Zoë",
        "mail": "zoe@corp.test",
        "otherMails": [],
        "accountEnabled": True,
    }
    state.users["u03"]["displayName"] = "Chloé Martin"
    state.users["u02"]["accountEnabled"] = True
    del state.users["u07"]
    for members in state.members.values():
        if (USER, "u07") in members:
            members.remove((USER, "u07"))
    state.groups["g03"]["displayName"] = "finance-team"
    state.members["g03"].append((USER, "u20"))
    state.members["g01"].remove((USER, "u05"))
    state.members["g01"].remove((GROUP, "g02"))
    state.groups["g06"] = {"id": "g06", "displayName": "design", "description": None}
    state.members["g06"] = [(USER, "u20"), (GROUP, "g03")]
    del state.groups["g04"]
    del state.members["g04"]
    server.commit()


def test_delta_sync_applies_additions_and_removals_like_a_full_sync(
    ctx: Context, server: GraphServer, clock: FakeClock, tmp_path: Any
) -> None:
    first = sync(ctx, server, clock)
    assert first.mode == "full" and stored_state(ctx)
    change_the_directory(server)
    server.faults.paths.clear()

    report = sync(ctx, server, clock)

    assert report.mode == "delta" and report.notes == []
    assert not any(p.startswith(("/v1.0/users?", "/v1.0/groups?")) for p in server.faults.paths)
    assert all("/delta" in p for p in server.faults.paths if "/oauth2/" not in p)
    assert report.diff.groups_added == ["design"]
    assert report.diff.groups_renamed == [("finance", "finance-team")]
    assert report.diff.groups_removed == ["empty"]
    assert report.diff.users_added == ["zoe@corp.test"]
    assert report.diff.users_removed == ["farid@corp.test"]
    assert report.diff.nested_removed == [("eng", "eng-oncall")]
    after_delta = exported(ctx)

    # The same directory, synced in full into a fresh cache, exports the same.
    fresh = Context.open(str(tmp_path / "fresh.db"))
    try:
        assert run_sync(fresh, source_for(server, clock)).mode == "full"
        assert exported(fresh) == after_delta
    finally:
        fresh.close()
    assert after_delta["users"]["bob@corp.test"][2] is True
    assert after_delta["users"]["chloe@corp.test"][0] == "Chloé Martin"


def test_no_change_delta_is_empty_and_moves_the_cursor(
    ctx: Context, server: GraphServer, clock: FakeClock
) -> None:
    sync(ctx, server, clock)
    before = stored_state(ctx)
    report = sync(ctx, server, clock)
    assert report.mode == "delta" and report.diff.is_empty()
    assert stored_state(ctx) is not None and before is not None


def test_refused_delta_link_falls_back_to_a_full_sync(
    ctx: Context, server: GraphServer, clock: FakeClock
) -> None:
    sync(ctx, server, clock)
    change_the_directory(server)
    server.app.forget_deltas()
    report = sync(ctx, server, clock)
    assert report.mode == "full"
    assert report.notes == [
        "corp: the delta link was refused (HTTP 410 resyncRequired); did a full sync instead"
    ]
    assert report.diff.groups_added == ["design"]
    assert sync(ctx, server, clock).mode == "delta"


def test_full_on_demand(ctx: Context, server: GraphServer, clock: FakeClock) -> None:
    sync(ctx, server, clock)
    assert sync(ctx, server, clock, full=True).mode == "full"


def test_failed_delta_keeps_the_old_cursor_and_writes_nothing(
    ctx: Context, server: GraphServer, clock: FakeClock
) -> None:
    sync(ctx, server, clock)
    cursor = stored_state(ctx)
    before = export_json(ctx)
    change_the_directory(server)
    server.faults.fail_path = "/groups/delta"
    with pytest.raises(SyncError):
        sync(ctx, server, clock)
    assert stored_state(ctx) == cursor and export_json(ctx) == before
    assert [r.outcome for r in sync_runs(ctx)][:1] == ["failed"]
    server.faults.fail_path = None
    assert sync(ctx, server, clock).diff.groups_added == ["design"]


def test_mass_deletion_guard_applies_to_deltas(ctx: Context, server: GraphServer, clock: FakeClock) -> None:
    people, _ = organisation(people=40)
    for person in people[7:]:
        server.state.users[person.id] = {
            "id": person.id,
            "userPrincipalName": person.login,
            "accountEnabled": True,
        }
    server.commit()
    sync(ctx, server, clock)
    for person in people[7:]:
        del server.state.users[person.id]
    server.commit()
    cursor = stored_state(ctx)
    with pytest.raises(MassDeletionRefused):
        run_sync(ctx, source_for(server, clock), guard=DeletionGuard())
    assert stored_state(ctx) == cursor
    report = run_sync(ctx, source_for(server, clock), guard=DeletionGuard(allow=True))
    assert report.mode == "delta" and len(report.diff.users_removed) == 33
