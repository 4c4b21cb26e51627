"""Look-alike marks read from the skeletons the store keeps (migration 0005): the same marks
whether every name is read or a page of them is looked up, kept true across renames,
removals, restores and the upgrade of an older store."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.services.backup import restore, write_backup
from groupwarden.services.context import Context
from groupwarden.services.directory import Lookalikes
from groupwarden.store.db import create_db_engine, resolve_url
from groupwarden.store.migrate import alembic_config, upgrade_to_head
from support import sync_snapshot

CYRILLIC_ADMIN = "\u0430dmin"  # а, a Cyrillic a
ONE_PAUL = "pau1"  # a one reads like an l


def users(*names: str) -> list[SourceUser]:
    return [SourceUser(f"u-{i}", name, None, []) for i, name in enumerate(names)]


def snapshot(*names: str, groups: tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(
        users=users(*names), groups=[SourceGroup(f"g-{i}", name) for i, name in enumerate(groups)]
    )


def marks(ctx: Context, user_names: list[str], group_names: list[str]) -> tuple[dict[str, str | None], ...]:
    """Each name's mark read wholesale, and read by looking the names up: both are returned."""
    with ctx.engine.connect() as conn:
        every = Lookalikes.read(conn)
        probed = Lookalikes.read(conn, groups=group_names, users=user_names)
    return (
        {n: every.user(n) for n in user_names} | {f"g/{n}": every.group(n) for n in group_names},
        {n: probed.user(n) for n in user_names} | {f"g/{n}": probed.group(n) for n in group_names},
    )


def test_names_looked_up_get_the_marks_a_full_read_gives(ctx: Context) -> None:
    names = ["admin", CYRILLIC_ADMIN, "paul", ONE_PAUL, "carol", "dave"]
    sync_snapshot(ctx, snapshot(*names, groups=("Ops", "0ps", "eng")))
    every, probed = marks(ctx, names, ["Ops", "0ps", "eng"])
    assert every == probed
    assert every == {
        "admin": f"looks like u/{CYRILLIC_ADMIN}",
        CYRILLIC_ADMIN: "looks like u/admin",
        "paul": "looks like u/pau1",
        ONE_PAUL: "looks like u/paul",
        "carol": None,
        "dave": None,
        "g/Ops": "looks like g/0ps",
        "g/0ps": "looks like g/Ops",
        "g/eng": None,
    }


def test_a_rename_and_a_removal_move_the_marks(ctx: Context) -> None:
    sync_snapshot(ctx, snapshot("admin", "paul", "carol", "dave"))
    assert marks(ctx, ["admin", "paul"], [])[0] == {"admin": None, "paul": None}
    # u-1 is renamed to a look-alike of admin: its stored skeleton follows the name.
    sync_snapshot(ctx, snapshot("admin", CYRILLIC_ADMIN, "carol", "dave"))
    every, probed = marks(ctx, ["admin", CYRILLIC_ADMIN, "paul"], [])
    assert (
        every
        == probed
        == {
            "admin": f"looks like u/{CYRILLIC_ADMIN}",
            CYRILLIC_ADMIN: "looks like u/admin",
            "paul": None,
        }
    )
    # Removed upstream: a name that is no longer live marks nobody.
    sync_snapshot(ctx, Snapshot(users=users("admin")[:1] + users("x", "y", "carol", "dave")[2:], groups=[]))
    every, probed = marks(ctx, ["admin"], [])
    assert every == probed == {"admin": None}


def test_the_same_name_in_two_sources_is_not_a_lookalike(ctx: Context) -> None:
    sync_snapshot(ctx, snapshot("admin", "paul"), source="corp")
    sync_snapshot(ctx, snapshot("admin"), source="partner")
    every, probed = marks(ctx, ["admin", "paul"], [])
    assert every == probed == {"admin": None, "paul": None}


def test_a_restore_computes_the_skeletons_again(ctx: Context, tmp_path: Path, db_url: str) -> None:
    sync_snapshot(ctx, snapshot("admin", CYRILLIC_ADMIN, groups=("Ops", "0ps")))
    path = tmp_path / "backup.json"
    write_backup(ctx, path)
    assert "skeleton" not in path.read_text(encoding="utf-8")
    with ctx.engine.begin() as conn:
        for table in ("user_memberships", "group_memberships", "users", "instance_groups", "sources"):
            # The append-only tables are empty here; the directory tables are cleared for the restore.
            conn.execute(text(f"DELETE FROM {table}"))
    restore(ctx, path)
    every, probed = marks(ctx, ["admin", CYRILLIC_ADMIN], ["Ops", "0ps"])
    assert every == probed
    assert every["admin"] == f"looks like u/{CYRILLIC_ADMIN}"
    assert every["g/0ps"] == "looks like g/Ops"


def test_the_upgrade_fills_the_skeletons_and_keeps_every_row(db_url: str, backend: str) -> None:
    engine = create_db_engine(resolve_url(db_url))
    if backend == "postgresql":  # the template is at head already: take it back
        from alembic import command

        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
    upgrade_to_head(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO sources (id, name, kind, url) VALUES (1, 'corp', 'scim', 'https://idp')")
        )
        for uid, name in enumerate(["admin", CYRILLIC_ADMIN, "Zed", "alice"], 1):
            conn.execute(
                text(
                    "INSERT INTO users (id, source_id, upstream_id, user_name, emails, active)"
                    " VALUES (:id, 1, :up, :name, '', true)"
                ),
                {"id": uid, "up": f"u{uid}", "name": name},
            )
        conn.execute(text("INSERT INTO workspaces (id, name) VALUES ('ws', 'ws')"))
        conn.execute(
            text(
                "INSERT INTO windmill_acl (workspace_id, folder, kind, path, principal, role)"
                " VALUES ('ws', 'f1', 'folder', '', 'g/ops', 'writer')"
            )
        )
    upgrade_to_head(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM users WHERE skeleton IS NULL")).scalar() == 0
        # Rebuilt WITHOUT ROWID on SQLite, its rows kept.
        assert conn.execute(text("SELECT principal, role FROM windmill_acl")).all() == [("g/ops", "writer")]
        # Code-point order on either backend: capitals before small letters, Cyrillic last.
        ordered = [r[0] for r in conn.execute(text("SELECT user_name FROM users ORDER BY user_name"))]
    engine.dispose()
    assert ordered == ["Zed", "admin", "alice", CYRILLIC_ADMIN]
    ctx = Context.open(db_url)
    try:
        every, probed = marks(ctx, ["admin", CYRILLIC_ADMIN, "Zed"], [])
    finally:
        ctx.close()
    assert (
        every
        == probed
        == {
            "admin": f"looks like u/{CYRILLIC_ADMIN}",
            CYRILLIC_ADMIN: "looks like u/admin",
            "Zed": None,
        }
    )


def test_a_lookalike_from_another_source_marks_both(ctx: Context) -> None:
    sync_snapshot(ctx, snapshot("admin", "carol"), source="corp")
    sync_snapshot(
        ctx, Snapshot(users=[SourceUser("p-1", CYRILLIC_ADMIN, None, [])], groups=[]), source="partner"
    )
    every, probed = marks(ctx, ["admin", CYRILLIC_ADMIN, "carol"], [])
    assert (
        every
        == probed
        == {
            "admin": f"looks like u/{CYRILLIC_ADMIN}",
            CYRILLIC_ADMIN: "looks like u/admin",
            "carol": None,
        }
    )
