"""Graph delta rounds reconciled row by row: the same cache, diff and rules as a full sync.

Each test keeps two caches of one tenant: `ctx` follows it by delta rounds, `twin` by full
syncs. Both start from the same full sync and the same grants, so after the same upstream
changes they must export the same and record equivalent runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import groupwarden.services.sync as sync_service
from graph_server import GROUP, USER, GraphServer, start_graph_server
from groupwarden.domain.directory import Progress
from groupwarden.domain.errors import MassDeletionRefused, SyncError
from groupwarden.services.audit import sync_runs
from groupwarden.services.context import Context
from groupwarden.services.export import export_json
from groupwarden.services.grants import orphaned_grants
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.services.reconcile import DeletionGuard
from groupwarden.services.sync import SyncReport, run_sync
from idp_fakes import FakeClock, organisation
from support import drop_pg_database, grant, new_pg_database, pg_admin_url, who_can
from test_graph_source import source_for


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[GraphServer]:
    with start_graph_server(clock) as running:
        people, teams = organisation(people=12)
        teams[0].groups.append("g02")  # eng-oncall inside eng
        running.load(people, teams)
        yield running


@pytest.fixture
def twin(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Context]:
    """A second cache on the same backend as ctx."""
    if backend == "sqlite":
        context = Context.open(str(tmp_path / "twin.db"))
        yield context
        context.close()
        return
    name = new_pg_database(request.getfixturevalue("pg_template"))
    context = Context.open(pg_admin_url(name))
    yield context
    context.close()
    drop_pg_database(name)


def sync(ctx: Context, server: GraphServer, clock: FakeClock, **options: Any) -> SyncReport:
    return run_sync(ctx, source_for(server, clock), **options)


def cursor(ctx: Context) -> str | None:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT sync_state FROM sources WHERE name = 'corp'")).scalar_one()


def start_both(ctx: Context, twin: Context, server: GraphServer, clock: FakeClock) -> None:
    for cache in (ctx, twin):
        assert sync(cache, server, clock).mode == "full"
        add_workspace(cache, "prod")
        add_folder(cache, "prod", "finance")
        grant(cache, "g/finance", "prod/finance", "writer")
        grant(cache, "g/empty", "prod/finance", "viewer")
        grant(cache, "u/farid@corp.test", "prod/finance", "admin")


def both_ways(
    ctx: Context, twin: Context, server: GraphServer, clock: FakeClock
) -> tuple[SyncReport, SyncReport]:
    """ctx by delta, twin in full; the same exports, the same users and groups counted."""
    delta = sync(ctx, server, clock)
    full = sync(twin, server, clock, full=True)
    assert (delta.mode, full.mode) == ("delta", "full")
    assert export_json(ctx) == export_json(twin)
    assert (delta.users, delta.groups) == (full.users, full.groups)
    return delta, full


def test_delta_round_and_full_sync_agree(
    ctx: Context, twin: Context, server: GraphServer, clock: FakeClock
) -> None:
    start_both(ctx, twin, server, clock)
    state = server.state
    # A rename (with a grant), a description, a user who logs in by a new name.
    state.groups["g03"]["displayName"] = "finance-team"
    state.groups["g05"]["description"] = "Everybody"
    state.users["u06"]["userPrincipalName"] = "erin.oneil@corp.test"
    state.users["u03"]["otherMails"] = ["chloe@home.test"]
    state.users["u02"]["accountEnabled"] = True
    # A member leaves a group that stays (members@delta "@removed"), another joins.
    state.members["g01"].remove((USER, "u05"))
    state.members["g03"].append((USER, "u08"))
    # Nesting: eng-oncall leaves eng, joins everyone; a new group holds finance.
    state.members["g01"].remove((GROUP, "g02"))
    state.members["g05"].append((GROUP, "g02"))
    state.groups["g06"] = {"id": "g06", "displayName": "design", "description": None}
    state.members["g06"] = [(USER, "u20"), (GROUP, "g03")]
    state.users["u20"] = {
        "id": "u20",
        "userPrincipalName": "zoe@corp.test",
        "displayName": "Zoë",
        "mail": "zoe@corp.test",
        "otherMails": [],
        "accountEnabled": True,
    }
    # A removed group and a removed user, both with grants.
    del state.groups["g04"], state.members["g04"]
    del state.users["u07"]
    state.members["g05"].remove((USER, "u07"))
    server.commit()

    delta, full = both_ways(ctx, twin, server, clock)

    assert delta.diff.to_dict() == full.diff.to_dict()
    diff = delta.diff
    assert diff.groups_renamed == [("finance", "finance-team")]
    assert diff.groups_added == ["design"] and diff.groups_removed == ["empty"]
    assert diff.users_added == ["zoe@corp.test"] and diff.users_removed == ["farid@corp.test"]
    assert diff.users_changed == ["bob@corp.test", "chloe@corp.test", "erin.oneil@corp.test"]
    assert diff.members_removed == {"eng": ["dan@corp.test"], "everyone": ["farid@corp.test"]}
    assert diff.members_added == {"design": ["zoe@corp.test"], "finance-team": ["user8@corp.test"]}
    assert diff.nested_added == [("design", "finance-team"), ("everyone", "eng-oncall")]
    assert diff.nested_removed == [("eng", "eng-oncall")]
    assert diff.orphaned_grants == [
        "g/empty viewer on prod/finance",
        "u/farid@corp.test admin on prod/finance",
    ]
    # The rename kept its grant; the removed group and user are orphaned and grant nothing.
    assert [(o.principal, o.role.label) for o in orphaned_grants(ctx)] == [
        ("g/empty", "viewer"),
        ("u/farid@corp.test", "admin"),
    ]
    assert {a.user_name for a in who_can(ctx, "prod/finance")} == {
        "chloe@corp.test",
        "yuki@corp.test",
        "user8@corp.test",
    }
    # audit shows the delta run as it shows a full one.
    assert sync_runs(ctx)[0].diff == sync_runs(twin)[0].diff == full.diff.to_dict()
    exported = json.loads(export_json(ctx))
    emails = {u["user_name"]: u["emails"] for u in exported["users"]}
    assert emails["chloe@corp.test"] == ["chloe@corp.test", "chloe@home.test"]


def test_a_deleted_user_leaves_its_groups_when_members_delta_says_nothing(
    ctx: Context, twin: Context, server: GraphServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_both(ctx, twin, server, clock)
    silent = server.app.group_changes

    def group_changes(old: Any, new: Any) -> list[dict[str, Any]]:
        # Graph may report a deleted user by /users/delta alone.
        changes = silent(old, new)
        for change in changes:
            if "members@delta" in change:
                change["members@delta"] = [m for m in change["members@delta"] if m["id"] != "u01"]
        return [c for c in changes if len(c) > 1]

    monkeypatch.setattr(server.app, "group_changes", group_changes)
    del server.state.users["u01"]
    for members in server.state.members.values():
        if (USER, "u01") in members:
            members.remove((USER, "u01"))
    server.commit()

    delta, full = both_ways(ctx, twin, server, clock)

    assert delta.diff.to_dict() == full.diff.to_dict()
    assert delta.diff.members_removed == {"eng": ["alice@corp.test"], "everyone": ["alice@corp.test"]}


def test_a_group_and_its_nested_groups_removed_and_back(
    ctx: Context, twin: Context, server: GraphServer, clock: FakeClock
) -> None:
    start_both(ctx, twin, server, clock)
    kept = (dict(server.state.groups["g02"]), list(server.state.members["g02"]))
    del server.state.groups["g02"], server.state.members["g02"]
    server.state.members["g01"].remove((GROUP, "g02"))
    server.commit()
    delta, full = both_ways(ctx, twin, server, clock)
    assert delta.diff.to_dict() == full.diff.to_dict()
    assert delta.diff.nested_removed == [("eng", "eng-oncall")]
    assert delta.diff.members_removed == {"eng-oncall": ["bob@corp.test", "erin@corp.test"]}

    # Back upstream with the same id: the row comes back, with its members and nesting.
    server.state.groups["g02"], server.state.members["g02"] = kept
    server.state.members["g03"].append((GROUP, "g02"))
    server.commit()
    delta, full = both_ways(ctx, twin, server, clock)
    assert delta.diff.to_dict() == full.diff.to_dict()
    assert delta.diff.groups_added == ["eng-oncall"]
    assert delta.diff.nested_added == [("finance", "eng-oncall")]


def test_mass_deletion_guard_refuses_a_delta_removing_too_many_memberships(
    ctx: Context, server: GraphServer, clock: FakeClock
) -> None:
    sync(ctx, server, clock)
    before, kept = export_json(ctx), cursor(ctx)
    server.state.members["g05"] = server.state.members["g05"][:1]
    server.commit()

    with pytest.raises(MassDeletionRefused) as refused:
        sync(ctx, server, clock)

    assert "memberships" in str(refused.value) and "\n" not in str(refused.value)
    assert export_json(ctx) == before and cursor(ctx) == kept
    assert sync_runs(ctx)[0].outcome == "refused"
    report = sync(ctx, server, clock, guard=DeletionGuard(allow=True))
    assert report.mode == "delta" and report.diff.members_removed_count == 11


def test_mass_deletion_guard_refuses_a_delta_removing_too_many_groups(
    ctx: Context, server: GraphServer, clock: FakeClock
) -> None:
    for n in range(10, 40):
        server.state.groups[f"g{n}"] = {"id": f"g{n}", "displayName": f"team-{n}", "description": None}
        server.state.members[f"g{n}"] = []
    server.commit()
    sync(ctx, server, clock)
    kept = cursor(ctx)
    for n in range(10, 40):
        del server.state.groups[f"g{n}"], server.state.members[f"g{n}"]
    server.commit()
    with pytest.raises(MassDeletionRefused, match="30 of 35 groups"):
        sync(ctx, server, clock)
    assert cursor(ctx) == kept


def test_dry_run_of_a_delta_writes_nothing(ctx: Context, server: GraphServer, clock: FakeClock) -> None:
    sync(ctx, server, clock)
    before, kept = export_json(ctx), cursor(ctx)
    server.state.groups["g06"] = {"id": "g06", "displayName": "design", "description": None}
    server.state.members["g06"] = [(USER, "u01"), (GROUP, "g03")]
    del server.state.groups["g04"], server.state.members["g04"]
    server.commit()
    report = sync(ctx, server, clock, dry_run=True)
    assert report.mode == "delta" and report.dry_run
    assert report.diff.groups_added == ["design"] and report.diff.groups_removed == ["empty"]
    assert report.diff.members_added == {"design": ["alice@corp.test"]}
    assert report.diff.nested_added == [("design", "finance")]
    assert (report.users, report.groups) == (12, 5)
    assert export_json(ctx) == before and cursor(ctx) == kept


def test_a_delta_reads_back_only_the_rows_it_names(
    ctx: Context, server: GraphServer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(ctx, server, clock)
    asked: list[tuple[set[str], set[str]]] = []
    lookup = sync_service.cached_rows

    def spy(conn: Any, name: str, users: Any, groups: Any) -> Any:
        asked.append((set(users), set(groups)))
        return lookup(conn, name, users, groups)

    def whole(*_args: Any) -> Any:
        raise AssertionError("a Graph delta read the whole cache")

    monkeypatch.setattr(sync_service, "cached_rows", spy)
    monkeypatch.setattr(sync_service, "cached_snapshot", whole)
    server.state.users["u03"]["displayName"] = "Chloé Martin"
    server.state.members["g03"].remove((USER, "u04"))
    server.commit()
    seen: list[Progress] = []
    report = sync(ctx, server, clock, progress=seen.append)
    assert report.mode == "delta"
    assert asked == [({"u03"}, {"g03"})]
    assert {p.phase for p in seen} == {"users", "groups", "reconcile"}
    assert report.diff.members_removed == {"finance": ["yuki@corp.test"]}


def test_a_delta_naming_an_unknown_member_is_refused_whole(
    ctx: Context, server: GraphServer, clock: FakeClock
) -> None:
    sync(ctx, server, clock)
    before, kept = export_json(ctx), cursor(ctx)
    server.state.users["u03"]["displayName"] = "Chloé Martin"
    server.state.members["g03"].append((USER, "u-ghost"))
    server.commit()
    with pytest.raises(SyncError) as failed:
        sync(ctx, server, clock)
    message = str(failed.value)
    assert "'u-ghost'" in message and "incomplete" in message and "\n" not in message
    assert export_json(ctx) == before and cursor(ctx) == kept
    assert sync_runs(ctx)[0].outcome == "failed"
