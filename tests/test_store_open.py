"""Opening the store safely: permissions others could abuse, read-only sessions that create and
migrate nothing, and errors that carry their remedy to each front end."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from groupwarden.cli.main import _cli_hint, main
from groupwarden.domain.errors import GroupwardenError, Hint, ReadOnly, Remedy
from groupwarden.services.context import Context
from groupwarden.services.layout import add_workspace, list_workspaces
from groupwarden.services.sync import read_token
from groupwarden.store.db import HEAD_REVISION
from groupwarden.tui.text import one_line, tui_hint

NOBODY = 65534


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with one workspace, closed, in a folder of its own."""
    folder = tmp_path / "store"
    folder.mkdir(mode=0o700)
    db = folder / "gw.db"
    ctx = Context.open(str(db))
    add_workspace(ctx, "prod", "Production")
    ctx.close()
    return db


def workspaces(db: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    return run(["--db", str(db), *extra, "workspace", "list", "--json"], capsys)


def test_a_database_file_others_can_write_is_refused_unless_trusted(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store.chmod(0o666)
    before = store.read_bytes()
    code, out, err = workspaces(store, capsys)
    assert (code, out) == (1, "")
    assert f"can be written by others (mode 666); run `chmod 600 {store}`" in err
    assert "(or pass --trust-db-permissions to use it as it is)" in err
    assert len(err.strip().splitlines()) == 1
    assert store.read_bytes() == before

    code, out, _err = workspaces(store, capsys, "--trust-db-permissions")
    assert code == 0 and [w["id"] for w in json.loads(out)] == ["prod"]
    config = tmp_path / "gw.toml"
    config.write_text("trust_db_permissions = true\n")
    assert workspaces(store, capsys, "--config", str(config))[0] == 0
    monkeypatch.setenv("GROUPWARDEN_TRUST_DB_PERMISSIONS", "1")
    assert workspaces(store, capsys)[0] == 0
    store.chmod(0o600)
    monkeypatch.delenv("GROUPWARDEN_TRUST_DB_PERMISSIONS")
    assert workspaces(store, capsys)[0] == 0


def test_a_database_folder_others_can_write_is_refused(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.parent.chmod(0o777)
    code, _out, err = workspaces(store, capsys)
    assert code == 1 and f"the database folder {store.parent} can be written by others" in err
    assert f"chmod go-w {store.parent}" in err
    # A new database in such a folder is refused as well, before anything is created there.
    fresh = store.parent / "fresh.db"
    assert workspaces(fresh, capsys)[0] == 1
    assert not fresh.exists()


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file to another user")
def test_a_database_owned_by_another_user_is_refused(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chown(store, NOBODY, NOBODY)
    code, _out, err = workspaces(store, capsys)
    assert code == 1 and f"belongs to another user (uid {NOBODY})" in err and "chown" in err
    assert workspaces(store, capsys, "--trust-db-permissions")[0] == 0


def test_read_only_on_a_missing_database_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "not" / "there" / "gw.db"
    code, out, err = run(["--db", str(missing), "--read-only", "groups"], capsys)
    assert (code, out) == (2, "")
    assert f"the database {missing} does not exist" in err and "(run without --read-only" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "not").exists()


def test_read_only_switches_no_journal_mode_and_writes_nothing(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    before = store.read_bytes()
    code, out, _err = workspaces(store, capsys, "--read-only")
    assert code == 0 and [w["id"] for w in json.loads(out)] == ["prod"]
    code, _out, err = run(["--db", str(store), "--read-only", "workspace", "add", "dev"], capsys)
    assert code == 1 and "read-only" in err
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert store.read_bytes() == before
    assert sorted(p.name for p in store.parent.iterdir()) == ["gw.db"]


def test_read_only_refuses_a_schema_that_is_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import create_engine

    from groupwarden.store.migrate import upgrade_to_head

    old = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{old}")
    upgrade_to_head(engine, "0001")
    engine.dispose()
    old.chmod(0o600)
    code, _out, err = workspaces(old, capsys, "--read-only")
    assert code == 1
    assert f"has schema 0001 and this version needs {HEAD_REVISION}" in err
    assert "without --read-only to upgrade it" in err
    with sqlite3.connect(old) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
    assert workspaces(old, capsys)[0] == 0
    assert workspaces(old, capsys, "--read-only")[0] == 0


def test_read_only_opens_a_migrated_store_on_each_backend(db_url: str) -> None:
    Context.open(db_url).close()
    ctx = Context.open(db_url, read_only=True)
    try:
        assert list_workspaces(ctx) == []
        with pytest.raises(ReadOnly):
            add_workspace(ctx, "prod", None)
    finally:
        ctx.close()


@pytest.fixture
def locked_store() -> Iterator[tuple[Path, Path]]:
    """A 0400 store in a 0500 folder, owned by whoever will read it, and a copy root may warm up on."""
    base = Path(tempfile.mkdtemp(prefix="gw-ro-"))
    try:
        base.chmod(0o755)
        folder = base / "store"
        folder.mkdir()
        ctx = Context.open(str(folder / "gw.db"))
        add_workspace(ctx, "prod", "Production")
        ctx.close()
        warm = base / "warm"
        warm.mkdir(mode=0o700)
        shutil.copy(folder / "gw.db", warm / "gw.db")
        if os.getuid() == 0:
            for path in (folder, folder / "gw.db"):
                os.chown(path, NOBODY, NOBODY)
        (folder / "gw.db").chmod(0o400)
        folder.chmod(0o500)
        yield folder / "gw.db", warm / "gw.db"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_read_only_reads_a_0400_database_in_a_0500_folder(locked_store: tuple[Path, Path]) -> None:
    db, warm = locked_store
    # As root every file is writable, so the check runs as an ordinary user: the child loads
    # every module on a copy first, then drops to that user (the interpreter's own folder may
    # be closed to it).
    child = (
        "import os, sys\n"
        "from groupwarden.cli.main import main\n"
        f"main(['--db', {str(warm)!r}, '--read-only', 'workspace', 'list', '--json'])\n"
        f"if os.getuid() == 0:\n    os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        "print('READ', flush=True)\n"
        f"sys.exit(main(['--db', {str(db)!r}, '--read-only', 'workspace', 'list', '--json']))\n"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(db.parent / "no-config")}
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    answer = result.stdout.split("READ\n", 1)[1]
    assert [w["id"] for w in json.loads(answer)] == ["prod"]
    assert sorted(p.name for p in db.parent.iterdir()) == ["gw.db"]
    assert db.stat().st_mode & 0o777 == 0o400


# Remedies: the services name them, each front end says how.


def test_every_remedy_has_a_command_line_and_a_terminal_ui_rendering() -> None:
    for remedy in Remedy:
        error = GroupwardenError("refused", hint=Hint(remedy, "corp"))
        assert _cli_hint(error).startswith(" (") and _cli_hint(error).endswith(")")
        shown = tui_hint(error)
        assert shown and "--" not in shown and "groupwarden " not in shown
    assert _cli_hint(GroupwardenError("plain")) == "" and tui_hint(GroupwardenError("plain")) == ""
    assert _cli_hint(GroupwardenError("x", hint=Hint(Remedy.FULL_SYNC, "my corp"))) == (
        " (run `groupwarden sync 'my corp' --full`)"
    )


def test_the_terminal_ui_shows_the_remedy_in_its_own_terms() -> None:
    line = one_line(ReadOnly("granting"))
    assert line == (
        "refused: this session is read-only, so granting is not allowed"
        " (this session is read-only: quit and open it without read-only)"
    )
    assert _cli_hint(ReadOnly("granting")).startswith(" (run without --read-only")


def test_the_token_rules_name_no_command_line_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GroupwardenError) as caught:
        read_token("SOME_VAR", "/some/file")
    assert "--" not in str(caught.value)
    assert caught.value.hint == Hint(Remedy.GIVE_TOKEN)
