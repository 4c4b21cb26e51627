"""Sync end to end: a real scim2-server over a real socket, the real client, the real cache."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from groupwarden.domain.errors import MassDeletionRefused, SyncError
from groupwarden.services.audit import sync_runs
from groupwarden.services.context import Context
from groupwarden.services.export import export_json
from groupwarden.services.grants import orphaned_grants
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.services.reconcile import DeletionGuard
from groupwarden.services.sync import SyncReport, run_sync
from groupwarden.sources.scim import ScimSource
from scim_server import ScimServer, start_scim_server
from support import grant, who_can


@pytest.fixture
def server() -> Iterator[ScimServer]:
    with start_scim_server() as running:
        yield running


class Org:
    """The ids the server gave to a small organisation."""

    def __init__(self, server: ScimServer) -> None:
        self.alice = server.add_user(
            "alice", display_name="Alice Martin", emails=["alice@corp.test"], primary_email="alice@corp.test"
        )
        self.bob = server.add_user("bob", display_name="Bob", active=False)
        self.chloe = server.add_user("chloé", display_name="Chloé Durand")
        self.yuki = server.add_user("yuki", display_name="田中 由紀")
        self.oncall = server.add_group("eng-oncall", users=[self.bob])
        self.eng = server.add_group("eng", users=[self.alice], groups=[self.oncall])
        self.finance = server.add_group("finance", users=[self.chloe, self.yuki])


def sync(ctx: Context, server: ScimServer, **options: object) -> SyncReport:
    source = ScimSource(
        server.url,
        server.token,
        name="corp",
        page_size=int(str(options.pop("page_size", 100))),
        sleep=lambda _s: None,
    )
    return run_sync(ctx, source, **options)  # type: ignore[arg-type]


def members(ctx: Context) -> dict[str, list[str]]:
    data = json.loads(export_json(ctx))
    return {g["name"]: g["members"] for g in data["groups"]}


def test_full_sync_caches_users_groups_and_nested_memberships(ctx: Context, server: ScimServer) -> None:
    org = Org(server)
    report = sync(ctx, server)
    assert (report.users, report.groups) == (4, 3)
    assert report.diff.groups_added == ["eng", "eng-oncall", "finance"]
    data = json.loads(export_json(ctx))
    groups = {g["name"]: g for g in data["groups"]}
    assert groups["eng"]["members"] == ["alice"]
    assert groups["eng"]["groups"] == [org.oncall]
    assert groups["finance"]["members"] == ["chloé", "yuki"]
    users = {u["user_name"]: u for u in data["users"]}
    assert users["bob"]["active"] is False
    assert users["yuki"]["display_name"] == "田中 由紀"
    assert users["alice"]["emails"] == ["alice@corp.test"]
    assert [r.outcome for r in sync_runs(ctx)] == ["ok"]


def test_second_sync_applies_renames_moves_and_deletions_keeping_grants(
    ctx: Context, server: ScimServer
) -> None:
    org = Org(server)
    sync(ctx, server)
    add_workspace(ctx, "prod")
    add_folder(ctx, "prod", "finance")
    grant(ctx, "g/finance", "prod/finance", "writer")
    grant(ctx, "g/eng-oncall", "prod/finance", "viewer")
    # Upstream: finance renamed and yuki moved out to eng; eng-oncall deleted; chloé's account
    # gone (an IdP drops a deleted user from its groups; scim2-server leaves that to the client).
    server.replace_group(org.finance, "finance-team", users=[])
    server.replace_group(org.eng, "eng", users=[org.alice, org.yuki])
    server.delete_group(org.oncall)
    server.delete_user(org.chloe)
    report = sync(ctx, server)
    diff = report.diff
    assert diff.groups_renamed == [("finance", "finance-team")]
    assert diff.groups_removed == ["eng-oncall"]
    assert diff.users_removed == ["chloé"]
    assert diff.members_added == {"eng": ["yuki"]}
    assert diff.members_removed == {"eng-oncall": ["bob"], "finance-team": ["chloé", "yuki"]}
    assert diff.nested_removed == [("eng", "eng-oncall")]
    assert diff.orphaned_grants == ["g/eng-oncall viewer on prod/finance"]
    assert members(ctx) == {"eng": ["alice", "yuki"], "finance-team": []}
    # The renamed group keeps its grant; the removed one is orphaned and grants nothing.
    assert [(o.principal, o.role.label) for o in orphaned_grants(ctx)] == [("g/eng-oncall", "viewer")]
    assert who_can(ctx, "prod/finance") == []
    stored = json.loads(export_json(ctx))
    assert stored["workspaces"][0]["folders"][0]["grants"] == [
        {"principal": "g/finance-team", "role": "writer"}
    ]
    runs = sync_runs(ctx)
    assert runs[0].diff["groups_renamed"] == [["finance", "finance-team"]]


def test_nested_cycle_syncs_and_expands_without_hanging(ctx: Context, server: ScimServer) -> None:
    a_user = server.add_user("ann")
    b_user = server.add_user("ben")
    a = server.add_group("ring-a", users=[a_user])
    b = server.add_group("ring-b", users=[b_user], groups=[a])
    server.replace_group(a, "ring-a", users=[a_user], groups=[b])
    sync(ctx, server)
    add_workspace(ctx, "lab")
    add_folder(ctx, "lab", "loop")
    grant(ctx, "g/ring-a", "lab/loop", "writer")
    assert {(x.user_name, x.explanation) for x in who_can(ctx, "lab/loop")} == {
        ("ann", "writer via g/ring-a, granted on lab/loop"),
        ("ben", "writer via g/ring-a ⊃ g/ring-b, granted on lab/loop"),
    }


def test_short_pages_are_followed_until_total_results(ctx: Context, server: ScimServer) -> None:
    ids = [server.add_user(f"user{i:03}") for i in range(53)]
    server.add_group("everyone", users=ids)
    server.faults.max_count = 7
    report = sync(ctx, server, page_size=20)
    assert report.users == 53
    assert len(members(ctx)["everyone"]) == 53
    # 53 users in pages of 7 is 8 requests, and one for the group; each listing then asks
    # for the page past its end, which must be empty.
    assert server.faults.list_requests == 11
    assert "startIndex=54&count=20" in server.faults.queries


def test_server_failing_halfway_writes_nothing(ctx: Context, server: ScimServer) -> None:
    org = Org(server)
    sync(ctx, server)
    before = export_json(ctx)
    server.replace_group(org.finance, "renamed")
    for i in range(30):
        server.add_user(f"late{i}")
    server.faults.list_requests = 0
    server.faults.max_count = 10
    server.faults.fail_after = 2
    with pytest.raises(SyncError) as info:
        sync(ctx, server, page_size=10)
    assert "500" in str(info.value)
    assert server.token not in str(info.value)
    assert export_json(ctx) == before
    runs = sync_runs(ctx)
    assert [r.outcome for r in runs] == ["failed", "ok"]
    assert runs[0].error == str(info.value)


def test_mass_deletion_is_refused_unless_allowed(ctx: Context, server: ScimServer) -> None:
    users = [server.add_user(f"u{i}") for i in range(40)]
    groups = [server.add_group(f"team{i}", users=users[i : i + 3]) for i in range(30)]
    sync(ctx, server)
    before = export_json(ctx)
    for gid in groups[:25]:
        server.delete_group(gid)
    with pytest.raises(MassDeletionRefused) as info:
        sync(ctx, server)
    assert "25 of 30 groups" in str(info.value)
    assert export_json(ctx) == before
    assert sync_runs(ctx)[0].outcome == "refused"
    report = sync(ctx, server, guard=DeletionGuard(allow=True))
    assert len(report.diff.groups_removed) == 25


def test_throttled_server_is_retried_after_its_retry_after(ctx: Context, server: ScimServer) -> None:
    Org(server)
    server.faults.throttle = 2
    server.faults.retry_after = "3"
    waits: list[float] = []
    source = ScimSource(server.url, server.token, name="corp", sleep=waits.append)
    report = run_sync(ctx, source)
    assert report.users == 4
    assert waits == [3.0, 3.0]


def test_malformed_response_aborts_with_nothing_written(ctx: Context, server: ScimServer) -> None:
    Org(server)
    server.faults.malformed = 2
    with pytest.raises(SyncError):
        sync(ctx, server)
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM users")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM instance_groups")).scalar() == 0


def test_dry_run_reports_the_diff_and_writes_nothing(ctx: Context, server: ScimServer) -> None:
    Org(server)
    report = sync(ctx, server, dry_run=True)
    assert report.dry_run and report.run_id is None
    assert report.diff.users_added == ["alice", "bob", "chloé", "yuki"]
    assert report.diff.members_added == {
        "eng": ["alice"],
        "eng-oncall": ["bob"],
        "finance": ["chloé", "yuki"],
    }
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM users")).scalar() == 0
    assert sync_runs(ctx) == []


def test_no_change_resync_reports_no_changes(ctx: Context, server: ScimServer) -> None:
    Org(server)
    sync(ctx, server)
    before = export_json(ctx)
    assert sync(ctx, server).diff.is_empty()
    assert export_json(ctx) == before


def test_read_only_session_cannot_sync(ctx: Context, server: ScimServer) -> None:
    from groupwarden.domain.errors import ReadOnly

    Org(server)
    ctx.read_only = True
    with pytest.raises(ReadOnly):
        sync(ctx, server)
    assert sync(ctx, server, dry_run=True).diff.users_added


def test_big_sync_refreshes_planner_statistics(
    ctx: Context, server: ScimServer, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from groupwarden.services import sync as sync_service

    Org(server)
    monkeypatch.setattr(sync_service, "BIG_CHANGE", 5)
    sync(ctx, server)
    if backend == "postgresql":
        with ctx.engine.connect() as conn:
            analysed = conn.execute(
                text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
            ).scalars()
            assert {"users", "instance_groups", "user_memberships", "group_memberships"} <= set(analysed)
