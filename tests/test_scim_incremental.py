"""Incremental SCIM syncs (meta.lastModified filter) on a real scim2-server; full syncs on a schedule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from groupwarden.services.context import Context
from groupwarden.services.export import export_json
from groupwarden.services.sync import run_sync
from groupwarden.sources.scim import ScimSource
from scim_server import ScimServer, start_scim_server


@pytest.fixture
def server() -> Iterator[ScimServer]:
    with start_scim_server() as running:
        yield running


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def source(server: ScimServer, clock: Clock, hours: float | None = 24) -> ScimSource:
    return ScimSource(
        server.url, server.token, name="corp", sleep=lambda _s: None, full_sync_hours=hours, clock=clock
    )


def groups(ctx: Context) -> dict[str, list[str]]:
    return {g["name"]: g["members"] for g in json.loads(export_json(ctx))["groups"]}


def test_changes_are_fetched_by_filter_and_deletions_wait_for_the_full_sync(
    ctx: Context, server: ScimServer, tmp_path: Path
) -> None:
    clock = Clock()
    alice = server.add_user("alice")
    bob = server.add_user("bob")
    eng = server.add_group("eng", users=[alice])
    ops = server.add_group("ops", users=[bob])
    assert run_sync(ctx, source(server, clock)).mode == "full"

    carol = server.add_user("carol")
    server.replace_group(eng, "engineering", users=[alice, carol])
    # An IdP removes a deleted user from its groups; scim2-server leaves that to us.
    server.replace_group(ops, "ops")
    server.delete_user(bob)
    server.faults.queries.clear()
    clock.now += 3600
    report = run_sync(ctx, source(server, clock))

    assert report.mode == "delta"
    assert all("meta.lastModified" in q for q in server.faults.queries)
    assert report.diff.users_added == ["carol"]
    assert report.diff.groups_renamed == [("eng", "engineering")]
    assert groups(ctx)["engineering"] == ["alice", "carol"]
    # A filter cannot see a deletion: bob stays until the scheduled full sync.
    assert report.diff.users_removed == []

    clock.now += 24 * 3600
    report = run_sync(ctx, source(server, clock))
    assert report.mode == "full"
    assert report.notes == ["corp: a full sync is due (every 24 h), to catch deletions"]
    assert report.diff.users_removed == ["bob"]

    # What the incremental syncs built is what a full sync into a fresh cache builds.
    fresh = Context.open(str(tmp_path / "fresh.db"))
    try:
        run_sync(fresh, source(server, clock, hours=None))
        assert export_json(fresh) == export_json(ctx)
    finally:
        fresh.close()


def test_without_a_schedule_every_sync_is_full(ctx: Context, server: ScimServer) -> None:
    clock = Clock()
    server.add_user("alice")
    run_sync(ctx, source(server, clock, hours=None))
    report = run_sync(ctx, source(server, clock, hours=None))
    assert report.mode == "full" and report.notes == []
    assert not any("filter" in q for q in server.faults.queries)


def test_full_on_demand(ctx: Context, server: ScimServer) -> None:
    clock = Clock()
    server.add_user("alice")
    run_sync(ctx, source(server, clock))
    assert run_sync(ctx, source(server, clock)).mode == "delta"
    report: Any = run_sync(ctx, source(server, clock), full=True)
    assert report.mode == "full"
