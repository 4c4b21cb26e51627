"""Exports and backups on a shared machine, full of hostile names: owner-only files, written
atomically, never through a link; no byte that drives a terminal or a spreadsheet (issue 9
items 8a, 8b and 15)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from groupwarden.cli.main import main
from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.domain.text import csv_cell, safe_json
from groupwarden.services.backup import write_backup
from groupwarden.services.context import Context
from groupwarden.services.export import export_csv, export_json
from groupwarden.services.layout import add_folder, add_workspace
from support import grant, sync_snapshot

OSC52 = "\x1b]52;c;ZXZpbA==\x07"
HOSTILE_NAMES = [
    f"clip{OSC52}board",
    "csi\x9b31mred",
    "evil\u202eexe.txt",
    "mark\u200eleft",
    "bel\x07",
    '=HYPERLINK("http://127.0.0.1/x")',
    "+1+cmd",
    "-2-cmd",
    "@SUM(A1)",
    "\t=tab",
    "\r=cr",
]
# What no export may carry raw: C0 controls but the CSV/JSON line feed, DEL, C1, bidi controls.
RAW_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


# PostgreSQL text cannot hold NUL at all; SQLite can, so an export from it must escape it.
NUL_NAME = "nul\x00x"


def names(backend: str) -> list[str]:
    return HOSTILE_NAMES + ([NUL_NAME] if backend == "sqlite" else [])


@pytest.fixture
def hostile(ctx: Context, backend: str) -> Context:
    users = [SourceUser(f"u{n}", name, name, [f"{n}@corp.test"]) for n, name in enumerate(names(backend))]
    groups = [
        SourceGroup(f"g{n}", name, description=name, user_members=[f"u{n}"])
        for n, name in enumerate(names(backend))
    ]
    sync_snapshot(ctx, Snapshot(users=users, groups=groups))
    add_workspace(ctx, "prod")
    add_folder(ctx, "prod", "finance", "=1+1 \x1b[2J")
    grant(ctx, "g/@SUM(A1)", "prod/finance", "viewer")
    return ctx


def test_json_export_escapes_every_control_c1_and_bidi_character(hostile: Context, backend: str) -> None:
    text = export_json(hostile)
    assert RAW_UNSAFE.search(text) is None
    assert "\\u009b31mred" in text and "\\u202eexe" in text and "\\u001b]52" in text
    data = json.loads(text)
    assert sorted(u["user_name"] for u in data["users"]) == sorted(names(backend))
    assert data["workspaces"][0]["folders"][0]["summary"] == "=1+1 \x1b[2J"


def test_csv_export_is_safe_to_print_and_to_open_in_a_spreadsheet(hostile: Context, backend: str) -> None:
    text = export_csv(hostile)
    assert RAW_UNSAFE.search(text) is None
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "clip\\x1b]52;c;ZXZpbA==\\x07board" in cells
    assert "csi\\x9b31mred" in cells and "evil\\u202eexe.txt" in cells and "bel\\x07" in cells
    assert ("nul\\x00x" in cells) == (backend == "sqlite")
    assert '\'=HYPERLINK("http://127.0.0.1/x")' in cells and "'+1+cmd" in cells
    assert "'-2-cmd" in cells and "'@SUM(A1)" in cells and "\\x09=tab" in cells and "\\x0d=cr" in cells
    assert "grant,,,,,,,prod/finance,g/'@SUM(A1)" not in text  # only a leading = + - @ is quoted
    assert "grant,,,,,,,prod/finance,g/@SUM(A1),viewer,false" in text


def test_one_rule_for_cells_and_json_everywhere() -> None:
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("a=1") == "a=1" and csv_cell("") == ""
    assert csv_cell("\x1b[31m-x") == "\\x1b[31m-x"
    assert safe_json({"k": "\x9b\u2066\x1b\n"}) == '{\n  "k": "\\u009b\\u2066\\u001b\\n"\n}'


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common 022 umask, under which a plain open() makes a file others can read."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def run_cli(db: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--db", db, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_output_is_owner_only_atomic_and_never_follows_a_link(
    hostile: Context, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], usual_umask: None
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "export.csv"
    assert run_cli(db_url, capsys, "export", "--format", "csv", "--output", str(out))[0] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text(encoding="utf-8") == export_csv(hostile)
    # Someone else's link at the output path: the link is replaced, its target left alone.
    victim = folder / "victim.txt"
    victim.write_text("keep me")
    linked = folder / "linked.json"
    linked.symlink_to(victim)
    assert run_cli(db_url, capsys, "export", "--output", str(linked))[0] == 0
    assert victim.read_text() == "keep me"
    assert not linked.is_symlink() and stat.S_IMODE(linked.stat().st_mode) == 0o600
    assert json.loads(linked.read_text(encoding="utf-8"))["format"] == "groupwarden-export"
    assert sorted(p.name for p in folder.iterdir()) == ["export.csv", "linked.json", "victim.txt"]
    code, _out, err = run_cli(db_url, capsys, "export", "--output", str(tmp_path / "missing" / "x.json"))
    assert (
        code == 2 and err.startswith("groupwarden: error: cannot write export") and len(err.splitlines()) == 1
    )


def test_backup_never_reuses_or_follows_a_file_left_next_to_it(
    ctx: Context, tmp_path: Path, usual_umask: None
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    dump = folder / "backup.json"
    planted = folder / "backup.json.tmp"
    planted.write_text("planted")
    planted.chmod(0o666)
    write_backup(ctx, dump)
    assert planted.read_text() == "planted" and stat.S_IMODE(planted.stat().st_mode) == 0o666
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert json.loads(dump.read_text())["format"] == "groupwarden-backup"

    planted.unlink()
    victim = folder / "victim.txt"
    victim.write_text("keep me")
    planted.symlink_to(victim)
    write_backup(ctx, dump)
    assert victim.read_text() == "keep me" and planted.is_symlink()
    # Nothing else was left behind: only the backup and what was planted.
    assert sorted(p.name for p in folder.iterdir()) == ["backup.json", "backup.json.tmp", "victim.txt"]
