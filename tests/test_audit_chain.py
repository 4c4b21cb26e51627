"""The audit history is a hash chain: edits show, the migration chains old events, the actor
cannot be faked, and the database role is recorded (issue 9 items 12 and 13)."""

from __future__ import annotations

import json
import os
import pwd
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from groupwarden.cli.main import main
from groupwarden.domain.audit_chain import GENESIS, ChainCheck
from groupwarden.services.audit import role_changes, verify_chain
from groupwarden.services.backup import backup_data, restore, write_backup
from groupwarden.services.context import Actor, Context
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.store.db import create_db_engine, resolve_url
from groupwarden.store.migrate import alembic_config, upgrade_to_head
from support import StepClock, grant, org_snapshot, revoke, sync_snapshot


def tamper(engine: Engine, statement: str) -> None:
    """Run an UPDATE or DELETE on audit_events past its append-only triggers, as someone with
    write access to the database file or server could."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
            conn.execute(text(statement))
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
            return
        for event in ("update", "delete"):
            conn.execute(text(f"DROP TRIGGER audit_events_no_{event}"))
        conn.execute(text(statement))
        for event in ("UPDATE", "DELETE"):
            conn.execute(
                text(
                    f"CREATE TRIGGER audit_events_no_{event.lower()} BEFORE {event} ON audit_events"
                    " BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
                )
            )


def changed(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "writer")
    grant(org, "u/alice", "prod/finance", "admin")
    grant(org, "g/eng", "prod/finance", "viewer")
    revoke(org, "g/eng", "prod/finance")


def run_cli(db_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--db", db_url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_role_change_links_to_the_one_before(org: Context) -> None:
    changed(org)
    rows = backup_data(org)["tables"]["audit_events"]
    columns = rows["columns"]
    events = [dict(zip(columns, row, strict=True)) for row in rows["rows"]]
    assert len(events) == 4
    assert events[0]["prev_hash"] == GENESIS
    for before, after in pairwise(events):
        assert after["prev_hash"] == before["event_hash"]
    assert len({e["event_hash"] for e in events}) == 4
    check = verify_chain(org)
    assert (check.events, check.broken) == (4, None)


def test_audit_verify_names_the_first_edited_or_removed_event(
    org: Context, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    changed(org)
    assert run_cli(db_url, capsys, "audit", "--verify") == (0, "audit chain intact: 4 events\n", "")
    ids = [e.id for e in sorted(role_changes(org), key=lambda e: e.id)]

    tamper(org.engine, f"UPDATE audit_events SET actor = 'alice' WHERE id = {ids[1]}")
    code, out, err = run_cli(db_url, capsys, "audit", "--verify")
    assert (code, out) == (1, "")
    assert err == (
        f"groupwarden: error: audit chain broken at audit event {ids[1]}:"
        " its content does not match its hash (it was edited)\n"
    )

    tamper(org.engine, f"DELETE FROM audit_events WHERE id = {ids[1]}")
    code, _out, err = run_cli(db_url, capsys, "audit", "--verify")
    assert code == 1
    assert f"audit event {ids[2]}: it does not follow the event before it" in err

    tamper(org.engine, f"DELETE FROM audit_events WHERE id = {ids[0]}")
    assert (
        f"audit event {ids[2]}: it does not start the chain"
        in run_cli(db_url, capsys, "audit", "--verify")[2]
    )


def test_migration_0003_chains_the_events_already_there(db_url: str, backend: str) -> None:
    engine = create_db_engine(resolve_url(db_url))
    with engine.begin() as conn:
        if backend == "postgresql":  # the template is at head already: take it back
            from alembic import command

            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
    upgrade_to_head(engine, "0002")
    with engine.begin() as conn:
        for n, after in enumerate(("viewer", "writer", "admin")):
            conn.execute(
                text(
                    "INSERT INTO audit_events (at, actor, actor_host, action, target, principal, after)"
                    f" VALUES ('2026-01-01 10:00:0{n}', 'root', 'host', 'grant', 'prod/finance', 'g/eng',"
                    f" '{after}')"
                )
            )
    engine.dispose()
    ctx = Context.open(db_url)
    check = verify_chain(ctx)
    assert (check.events, check.broken) == (3, None)
    # The migration lifted the append-only rule for its own fill only.
    with pytest.raises(DBAPIError, match="append-only"), ctx.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'alice'"))
    ctx.actor = Actor("tester", "bastion", None)
    add_workspace(ctx, "dev")
    add_folder(ctx, "dev", "sandbox")
    sync_snapshot(ctx, org_snapshot())
    grant(ctx, "g/eng", "dev/sandbox", "viewer")
    assert verify_chain(ctx) == ChainCheck(4, None)
    ctx.close()


def test_the_os_user_comes_from_the_real_uid_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pwd.getpwuid(os.getuid()).pw_name
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "mallory-not-a-user")
    assert Actor.current().user == real


def test_the_ssh_client_address_is_kept_with_controls_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_CLIENT", "10.0.0.7\x1b]52;c;ZXZpbA==\x07\x9b31m 52100 22")
    address = Actor.current().address
    assert address == "10.0.0.7\\x1b]52;c;ZXZpbA==\\x07\\x9b31m"
    monkeypatch.setenv("SSH_CLIENT", "1" * 500 + " 1 22")
    assert len(Actor.current().address or "") == 100
    monkeypatch.delenv("SSH_CLIENT")
    assert Actor.current().address is None


def test_the_database_role_is_recorded_and_shown(
    org: Context, db_url: str, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    org.actor = Actor("alice", "bastion", "10.0.0.7")
    grant(org, "g/eng", "prod/finance", "writer")
    expected = None
    if backend == "postgresql":
        with org.engine.connect() as conn:
            expected = conn.execute(text("SELECT session_user")).scalar_one()
        assert expected
    assert [e.db_role for e in role_changes(org)] == [expected]
    _code, out, _err = run_cli(db_url, capsys, "audit", "--json")
    assert json.loads(out)[0]["db_role"] == expected
    _code, out, _err = run_cli(db_url, capsys, "audit")
    where = "by alice@bastion from 10.0.0.7"
    assert where + (f" (database role {expected})" if expected else "") + "\n" in out


def test_a_restored_chain_goes_on_intact(tmp_path: Path) -> None:
    """A role change on a store restored elsewhere links to the restored chain."""
    source = Context.open(str(tmp_path / "a.db"))
    source.actor, source.clock = Actor("tester", "bastion", None), StepClock()
    sync_snapshot(source, org_snapshot())
    add_workspace(source, "prod")
    add_folder(source, "prod", "finance")
    changed(source)
    write_backup(source, tmp_path / "dump.json")
    source.close()
    target = Context.open(str(tmp_path / "b.db"))
    target.actor = Actor("tester", "bastion", None)
    restore(target, tmp_path / "dump.json")
    grant(target, "g/eng", "prod/finance", "admin")
    assert verify_chain(target).events == 5 and verify_chain(target).broken is None
    target.close()
