"""store.sync and store.sources: the named rows a sync reads back and the source's sync state."""

from __future__ import annotations

from groupwarden.domain.directory import Snapshot
from groupwarden.services.cached import cached_rows, cached_snapshot
from groupwarden.services.context import Context
from groupwarden.services.reconcile import DeletionGuard, reconcile
from groupwarden.store import sources
from groupwarden.store import sync as cache
from groupwarden.store.bulk import pack_pair
from support import org_snapshot, sync_snapshot


def test_cached_snapshot_reads_back_what_a_sync_wrote(ctx: Context) -> None:
    snapshot = org_snapshot()
    sync_snapshot(ctx, snapshot)
    with ctx.engine.connect() as conn:
        cached = cached_snapshot(conn, "corp")
    # Emails keep their order (primary first), no email stays an empty list, NULLs stay None.
    assert cached.users == snapshot.users
    assert cached.groups == snapshot.groups


def test_removed_rows_stay_but_are_not_live(ctx: Context) -> None:
    snapshot = org_snapshot()
    sync_snapshot(ctx, snapshot)
    without_bob = Snapshot(
        users=[u for u in snapshot.users if u.upstream_id != "u-bob"],
        groups=org_snapshot().groups,
    )
    for group in without_bob.groups:
        group.user_members = [m for m in group.user_members if m != "u-bob"]
    sync_snapshot(ctx, without_bob)
    with ctx.engine.connect() as conn:
        source_id = sources.find_source_id(conn, "corp")
        assert source_id is not None
        rows = cache.user_rows(conn, source_id)
        bob = rows["u-bob"]
        assert bob.removed_at is not None and bob.user_name == "bob"
        assert rows["u-alice"].removed_at is None
        assert "u-bob" not in {row.upstream_id for row in cache.live_users(conn, source_id)}
        assert cache.count_users(conn, source_id) == 5
        assert [row.user_name for row in cache.live_users(conn, source_id, {"u-bob", "u-alice"})] == ["alice"]
        oncall = cache.group_rows(conn, source_id, {"g-oncall"})["g-oncall"]
        assert pack_pair(oncall.id, bob.id) not in cache.user_member_keys(conn, source_id)
        assert pack_pair(oncall.id, rows["u-dan"].id) in cache.user_member_keys(conn, source_id)
        assert cache.user_names(conn, {bob.id}) == {bob.id: "bob"}
        lookup = cached_rows(conn, "corp", ["u-bob", "u-dan"], ["g-oncall", "g-missing"])
    assert [u.user_name for u in lookup.users] == ["dan"]
    assert [(g.name, g.user_members) for g in lookup.groups] == [("eng-oncall", [])]


def test_sync_state_is_kept_per_source(ctx: Context) -> None:
    with ctx.engine.connect() as conn:
        assert sources.sync_state(conn, "corp") == (None, None)
    sync_snapshot(ctx, org_snapshot())
    with ctx.engine.begin() as conn:
        assert sources.sync_state(conn, "corp").cursor is None
        sources.store_sync_state(conn, "corp", "cursor-1")
    with ctx.engine.connect() as conn:
        state = sources.sync_state(conn, "corp")
        assert state.cursor == "cursor-1"
        assert state.last_sync_at is not None


def test_a_dry_run_adds_no_source(ctx: Context) -> None:
    with ctx.engine.connect() as conn, conn.begin():
        diff = reconcile(
            conn,
            org_snapshot(),
            source_name="corp",
            source_kind="scim",
            source_url="http://idp.test/scim",
            guard=DeletionGuard(),
            write=False,
        )
        assert sources.find_source_id(conn, "corp") is None
    assert sorted(diff.users_added) == sorted(u.user_name for u in org_snapshot().users)
    with ctx.engine.connect() as conn:
        assert sources.find_source_id(conn, "corp") is None
