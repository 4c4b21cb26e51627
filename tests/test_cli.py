"""The command line, driven as a script would: exit codes, stdout, stderr, and the cache after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from groupwarden.cli.main import main
from scim_server import ScimServer, start_scim_server


class Cli:
    def __init__(self, db: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = db
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--db", str(self.db), *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, err
        return out

    def export(self) -> str:
        return self.ok("export", "--format", "json")


@pytest.fixture
def server() -> Iterator[ScimServer]:
    with start_scim_server() as running:
        alice = running.add_user("alice", display_name="Alice", emails=["alice@corp.test"])
        bob = running.add_user("bob", display_name="[bold red]Bob[/]")
        oncall = running.add_group("eng-oncall", users=[bob])
        running.add_group("eng", users=[alice], groups=[oncall])
        running.add_group("\x1b[31mevil", users=[alice])
        yield running


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(db_url, capsys)


@pytest.fixture
def synced(cli: Cli, server: ScimServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("SCIM_TOKEN", server.token)
    cli.ok("sync", "--scim", server.url, "--token-env", "SCIM_TOKEN", "--name", "corp")
    cli.ok("workspace", "add", "prod", "--name", "Production")
    cli.ok("folder", "add", "prod", "finance", "--summary", "money")
    return cli


def test_help_does_not_import_the_tui_the_scim_models_or_sqlalchemy() -> None:
    code = (
        "import sys\nfrom groupwarden.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('textual', 'scim2_models', 'sqlalchemy', 'httpx') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "who-can" in out and "import-layout" in out


def test_module_entry_point_prints_the_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "groupwarden", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("groupwarden ")


def test_sync_then_query_every_way(synced: Cli, server: ScimServer) -> None:
    groups = json.loads(synced.ok("groups", "--json"))
    assert [g["name"] for g in groups] == ["\x1b[31mevil", "eng", "eng-oncall"]
    eng = next(g for g in groups if g["name"] == "eng")
    assert (eng["direct_members"], eng["effective_members"], eng["nested_groups"]) == (1, 2, 1)

    text_out = synced.ok("groups")
    assert "\x1b" not in text_out and "\\x1b[31mevil" in text_out

    members = json.loads(synced.ok("members", "eng", "--json"))["members"]
    assert [(m["user_name"], m["via"]) for m in members] == [("alice", None), ("bob", ["eng", "eng-oncall"])]
    assert "[bold red]Bob[/]" in synced.ok("members", "eng")

    assert synced.ok("grant", "g/eng", "prod/finance", "writer").strip() == (
        "g/eng: none -> writer on prod/finance"
    )
    synced.ok("grant", "u/alice", "prod/finance", "admin")
    who = json.loads(synced.ok("who-can", "prod/finance", "--json"))
    assert [(w["user_name"], w["role"], w["explanation"]) for w in who] == [
        ("alice", "admin", "admin via u/alice (direct grant), granted on prod/finance"),
        ("bob", "writer", "writer via g/eng ⊃ g/eng-oncall, granted on prod/finance"),
    ]
    assert "writer via g/eng ⊃ g/eng-oncall" in synced.ok("who-can", "prod/finance")
    access = json.loads(synced.ok("access", "bob", "--json"))
    assert access["access"][0]["chain"] == ["g/eng", "g/eng-oncall"]
    audit = json.loads(synced.ok("audit", "--json"))
    assert [e["kind"] for e in audit] == ["role_change", "role_change", "sync_run"]
    assert audit[0]["after"] == "admin" and audit[0]["actor"]
    assert "sync    corp: ok" in synced.ok("audit")


def test_export_json_has_the_documented_shape(synced: Cli) -> None:
    synced.ok("grant", "g/eng", "prod/finance", "viewer")
    data = json.loads(synced.export())
    assert set(data) >= {"groups", "users", "workspaces", "orphaned_grants"}
    eng = next(g for g in data["groups"] if g["name"] == "eng")
    assert set(eng) >= {"id", "name", "source", "members", "groups"}
    assert eng["source"] == "corp" and eng["members"] == ["alice"]
    user = data["users"][0]
    assert set(user) >= {"id", "user_name", "emails", "active"}
    folder = data["workspaces"][0]["folders"][0]
    assert folder["name"] == "finance"
    assert folder["grants"] == [{"principal": "g/eng", "role": "viewer"}]
    assert data["orphaned_grants"] == []
    csv_out = synced.ok("export", "--format", "csv")
    assert csv_out.splitlines()[0].startswith("record,source,group_id")
    assert "grant,,,,,,,prod/finance,g/eng,viewer,false" in csv_out


def test_export_to_a_file(synced: Cli, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    synced.ok("export", "--output", str(target))
    assert json.loads(target.read_text())["users"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["grant", "eng", "prod/finance", "writer"],
        ["grant", "g/eng", "prod/finance", "superuser"],
        ["grant", "g/eng", "prod", "writer"],
        ["grant", "g/eng", "prod/bad-name", "writer"],
        ["grant", "g/eng", "prod/nothere", "writer"],
        ["grant", "g/nobody", "prod/finance", "writer"],
        ["grant", "u/nobody", "prod/finance", "writer"],
        ["grant", "g/eng", "prod/finance"],
        ["grant", "g/eng", "prod/finance", "writer", "--expect", "boss"],
        ["revoke", "g/eng", "prod/finance", "--expect", "owner"],
        ["revoke", "nobody", "prod/finance"],
        ["members", "nobody"],
        ["members"],
        ["workspace", "add", "bad workspace"],
        ["workspace"],
        ["folder", "add", "prod", "bad/name"],
        ["folder", "add", "nowhere", "x"],
        ["who-can", "prod"],
        ["who-can", "prod/finance", "--min", "god"],
        ["access", "nobody"],
        ["audit", "--limit", "-1"],
        ["audit", "--limit", "many"],
        ["export", "--format", "xml"],
        ["grants"],
        ["grants", "prod/finance", "--group", "eng"],
        ["import-layout", "/nonexistent/layout.toml"],
        ["sync", "--scim", "ftp://idp.test/scim", "--token-env", "SCIM_TOKEN"],
        ["sync", "--scim", "https://user:pw@idp.test/scim", "--token-env", "SCIM_TOKEN"],
        ["sync", "--scim", "http://127.0.0.1:9/scim", "--token-env", "NOT_SET_ANYWHERE"],
        ["sync", "nosuchsource"],
        ["sync"],
        ["sync", "--page-size", "0", "--scim", "http://127.0.0.1:9/v2", "--token-env", "SCIM_TOKEN"],
        ["no-such-command"],
        ["backup"],
        ["sync", "--scim", "http://127.0.0.1:99999/v2", "--token-env", "SCIM_TOKEN"],
        ["sync", "--scim", "http://[::1/v2", "--token-env", "SCIM_TOKEN"],
        ["sync", "--scim", "http://127.0.0.1:1/v2?api_token=secret", "--token-env", "SCIM_TOKEN"],
        ["audit", "--limit", "99999999999999999999"],
        ["restore", "/nonexistent/backup.json"],
        ["backup", "/nonexistent-dir/backup.json"],
        # A final newline slipped past `^...$` with re.match; '..' and empty segments are
        # not item path segments.
        ["folder", "add", "prod", "x\n"],
        ["workspace", "add", "ws\n"],
        ["grant", "g/eng", "prod/finance\n", "writer"],
        ["grant", "g/eng", "prod/f/finance/report\n", "writer"],
        ["grant", "g/eng", "prod/f/finance/../../etc", "writer"],
        ["grant", "g/eng", "prod/f/finance/a//b", "writer"],
        ["grant", "g/eng", "prod/f/finance/./report", "writer"],
    ],
)
def test_bad_input_exits_2_with_a_message_and_changes_nothing(synced: Cli, args: list[str]) -> None:
    before = synced.export()
    code, out, err = synced(*args)
    assert code == 2, (out, err)
    assert "error:" in err
    assert "Traceback" not in err
    assert synced.export() == before


def test_ambiguous_group_lists_every_candidate(
    synced: Cli, server: ScimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_scim_server() as other:
        other.add_group("eng")
        monkeypatch.setenv("OTHER_TOKEN", other.token)
        synced.ok("sync", "--scim", other.url, "--token-env", "OTHER_TOKEN", "--name", "other")
    code, _out, err = synced("members", "eng")
    assert code == 2
    assert "ambiguous" in err and "source corp" in err and "source other" in err


def test_read_only_refuses_changes_but_answers_queries(synced: Cli) -> None:
    before = synced.export()
    code, _out, err = synced("--read-only", "grant", "g/eng", "prod/finance", "writer")
    assert code == 1 and "read-only" in err
    code, _out, err = synced("--read-only", "workspace", "add", "dev")
    assert code == 1 and "read-only" in err
    assert synced.export() == before
    assert synced("--read-only", "groups")[0] == 0


def test_read_only_from_the_config_file(synced: Cli, tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text("read_only = true\n")
    code, _out, err = synced("--config", str(config), "grant", "g/eng", "prod/finance", "writer")
    assert code == 1 and "read-only" in err


def test_stale_expectation_and_last_admin_are_refused(synced: Cli) -> None:
    synced.ok("grant", "g/eng", "prod/finance", "admin", "--expect", "none")
    code, _out, err = synced("grant", "g/eng", "prod/finance", "viewer", "--expect", "writer")
    assert code == 1 and "you saw writer, it is now admin" in err
    code, _out, err = synced("revoke", "g/eng", "prod/finance")
    assert code == 1 and "last admin" in err
    synced.ok("revoke", "g/eng", "prod/finance", "--confirm-last-admin")
    assert json.loads(synced.ok("grants", "prod/finance", "--json")) == []
    assert synced.ok("grants", "prod/finance").strip() == "no grants"
    assert synced.ok("grants", "--orphaned").strip() == "no orphaned grants"


def test_import_layout_is_idempotent_and_all_or_nothing(synced: Cli, tmp_path: Path) -> None:
    layout = tmp_path / "layout.toml"
    layout.write_text(
        '[[workspaces]]\nid = "staging"\nname = "Staging"\n'
        '[[workspaces.folders]]\nname = "apps"\nsummary = "the apps"\n'
        'grants = [{principal = "g/eng", role = "writer"}, {principal = "u/alice", role = "admin"}]\n'
    )
    assert synced.ok("import-layout", str(layout)).strip() == (
        "1 workspaces added, 1 folders added, 2 grants set, 0 already in place"
    )
    assert synced.ok("import-layout", str(layout)).strip() == (
        "0 workspaces added, 0 folders added, 0 grants set, 2 already in place"
    )
    as_json = tmp_path / "layout.json"
    as_json.write_text(
        json.dumps(
            {
                "workspaces": [
                    {
                        "id": "dev",
                        "folders": [
                            {"name": "ok", "grants": [{"principal": "g/eng", "role": "viewer"}]},
                            {"name": "bad", "grants": [{"principal": "g/ghost", "role": "viewer"}]},
                        ],
                    }
                ]
            }
        )
    )
    before = synced.export()
    code, _out, err = synced("import-layout", str(as_json))
    assert code == 2 and "ghost" in err
    assert synced.export() == before
    broken = tmp_path / "broken.toml"
    broken.write_text("[[workspaces]\n")
    code, _out, err = synced("import-layout", str(broken))
    assert code == 2 and "not valid TOML" in err


def test_import_layout_grants_on_items_and_refuses_one_principal_named_two_ways(
    synced: Cli, tmp_path: Path
) -> None:
    layout = tmp_path / "items.toml"
    layout.write_text(
        '[[workspaces]]\nid = "prod"\n[[workspaces.folders]]\nname = "finance"\n'
        'items = [{path = "f/finance/payroll", grants = [{principal = "g/eng", role = "viewer"}]}]\n'
    )
    assert synced.ok("import-layout", str(layout)).strip() == (
        "0 workspaces added, 0 folders added, 1 grants set, 0 already in place"
    )
    rows = json.loads(synced.ok("grants", "prod/finance", "--json"))
    assert [(g["target"], g["principal"], g["role"]) for g in rows] == [
        ("prod/f/finance/payroll", "g/eng", "viewer")
    ]
    eng = next(g for g in json.loads(synced.ok("groups", "--json")) if g["name"] == "eng")
    twice = tmp_path / "twice.toml"
    twice.write_text(
        '[[workspaces]]\nid = "prod"\n[[workspaces.folders]]\nname = "finance"\n'
        'grants = [{principal = "g/eng", role = "admin"},'
        f' {{principal = "g/{eng["id"]}", role = "viewer"}}]\n'
    )
    before = synced.export()
    code, _out, err = synced("import-layout", str(twice))
    assert code == 2
    assert f"g/{eng['id']} and g/eng (at workspaces[0].folders[0].grants[0]) are the same group" in err
    assert synced.export() == before
    unknown_key = tmp_path / "typo.toml"
    unknown_key.write_text('[[workspaces]]\nid = "prod"\n[[workspaces.folders]]\nname = "x"\ngrant = []\n')
    code, _out, err = synced("import-layout", str(unknown_key))
    assert code == 2 and "unknown key 'grant' (line 5)" in err
    assert synced.export() == before


def test_import_layout_asks_before_lowering_the_last_admin_and_accepts_the_confirmation(
    synced: Cli, tmp_path: Path
) -> None:
    def layout(role: str) -> str:
        path = tmp_path / f"{role}.toml"
        path.write_text(
            '[[workspaces]]\nid = "prod"\n[[workspaces.folders]]\nname = "finance"\n'
            f'grants = [{{principal = "u/alice", role = "{role}"}}]\n'
        )
        return str(path)

    synced.ok("import-layout", layout("admin"))
    before = synced.export()
    code, _out, err = synced("import-layout", layout("viewer"))
    assert code == 1 and err.rstrip().endswith("(confirm with --confirm-last-admin)")
    assert synced.export() == before
    assert synced.ok("import-layout", layout("viewer"), "--confirm-last-admin").strip() == (
        "0 workspaces added, 0 folders added, 1 grants set, 0 already in place"
    )
    rows = json.loads(synced.ok("grants", "prod/finance", "--json"))
    assert [(g["principal"], g["role"]) for g in rows] == [("u/alice", "viewer")]


def test_token_file_must_be_owner_only(synced: Cli, server: ScimServer, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(server.token + "\n")
    os.chmod(token_file, 0o644)
    code, _out, err = synced("sync", "--scim", server.url, "--token-file", str(token_file), "--name", "corp")
    assert code == 2 and "readable by others" in err and "chmod 600" in err
    os.chmod(token_file, 0o600)
    out = synced.ok("sync", "--scim", server.url, "--token-file", str(token_file), "--name", "corp")
    assert "no changes" in out


def test_sync_failure_is_one_line_without_the_token(
    synced: Cli, server: ScimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRONG_TOKEN", "not-the-right-token-123")
    before = synced.export()
    code, _out, err = synced("sync", "--scim", server.url, "--token-env", "WRONG_TOKEN", "--name", "corp")
    assert code == 1
    assert "not-the-right-token-123" not in err
    assert len(err.strip().splitlines()) == 1
    assert synced.export() == before


def test_named_source_from_the_config_file(
    cli: Cli, server: ScimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(f'[sources.corp]\ntype = "scim"\nurl = "{server.url}"\ntoken_env = "CORP_TOKEN"\n')
    monkeypatch.setenv("CORP_TOKEN", server.token)
    out = cli.ok("--config", str(config), "sync", "corp", "--dry-run")
    assert out.startswith("dry run, nothing written: corp: 2 users, 3 groups")
    assert json.loads(cli.export())["users"] == []
    out = cli.ok("--config", str(config), "sync", "corp", "--json")
    assert json.loads(out)["diff"]["groups_added"] == ["\x1b[31mevil", "eng", "eng-oncall"]
    config.write_text('[sources.corp]\ntype = "scim"\nurl = "x"\ntoken = "literal-secret"\n')
    code, _out, err = cli("--config", str(config), "sync", "corp")
    assert code == 2 and "never the token" in err and "literal-secret" not in err


def test_backup_and_restore_round_trip(
    synced: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synced.ok("grant", "g/eng", "prod/finance", "writer")
    dump = tmp_path / "backup.json"
    assert "1 grants" in synced.ok("backup", str(dump))
    target = Cli(str(tmp_path / "restored.db"), capsys)
    assert "1 audit_events" in target.ok("restore", str(dump))
    assert target.export() == synced.export()
    code, _out, err = target("restore", str(dump))
    assert code == 1 and "empty database" in err
    assert err.rstrip().endswith("(restore into a new database, given with --db)")


def test_a_missing_group_workspace_or_folder_names_the_command_that_helps(synced: Cli) -> None:
    """The services name the remedy; the command line renders it as a command."""
    code, _out, err = synced("grant", "g/nobody", "prod/finance", "viewer")
    assert code == 2 and err.rstrip().endswith("(by name or upstream id) (see `groupwarden groups`)")
    code, _out, err = synced("grant", "g/eng", "staging/finance", "viewer")
    assert code == 2 and err.rstrip().endswith(
        "no workspace 'staging' (add it with `groupwarden workspace add`)"
    )
    code, _out, err = synced("grant", "g/eng", "prod/payroll", "viewer")
    assert code == 2 and err.rstrip().endswith(
        "no folder 'payroll' in workspace 'prod' (add it with `groupwarden folder add`)"
    )
    code, _out, err = synced("folder", "add", "staging", "x")
    assert code == 2 and err.rstrip().endswith("(add it with `groupwarden workspace add`)")


def test_unreadable_inputs_are_one_clear_line(synced: Cli, tmp_path: Path, server: ScimServer) -> None:
    """Directories, non-UTF-8 files and wrongly typed layouts: an error line, never a traceback."""
    folder = tmp_path / "a-directory"
    folder.mkdir(mode=0o700)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    binary.chmod(0o600)
    wrong_types = tmp_path / "types.json"
    wrong_types.write_text(json.dumps({"workspaces": [{"id": "dev", "folders": 5}]}))
    wrong_summary = tmp_path / "summary.toml"
    wrong_summary.write_text(
        '[[workspaces]]\nid = "dev"\n[[workspaces.folders]]\nname = "x"\nsummary = [1]\n'
    )
    before = synced.export()
    for args in (
        ["--config", str(folder), "groups"],
        ["sync", "--scim", server.url, "--token-file", str(folder)],
        ["sync", "--scim", server.url, "--token-file", str(binary)],
        ["import-layout", str(binary)],
        ["import-layout", str(wrong_types)],
        ["import-layout", str(wrong_summary)],
    ):
        code, _out, err = synced(*args)
        assert code == 2, (args, err)
        assert err.startswith("groupwarden: error:") and "Traceback" not in err
    assert synced.export() == before


def test_bad_database_urls_are_one_line_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    for url in ("foo://admin:hunter2@host/db", "postgresql+psycopg://admin:hunter2@host:notaport/db"):
        code, _out, err = Cli(url, capsys)("groups")
        assert code == 1
        assert err.startswith("groupwarden: error: cannot open the database") and "hunter2" not in err
        assert len(err.strip().splitlines()) == 1


def test_restore_of_a_damaged_backup_changes_nothing(
    synced: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "backup.json"
    synced.ok("backup", str(dump))
    data = json.loads(dump.read_text())
    data["tables"]["users"]["rows"][0].pop()
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps(data))
    target = Cli(str(tmp_path / "fresh.db"), capsys)
    code, _out, err = target("restore", str(damaged))
    assert code == 2 and "do not match" in err
    assert json.loads(target.export())["users"] == []


def test_json_output_escapes_terminal_controls(synced: Cli, server: ScimServer) -> None:
    raw = synced.ok("groups", "--json")
    assert "\x1b" not in raw
    assert "\\u001b[31mevil" in raw
    assert json.loads(raw)[0]["name"] == "\x1b[31mevil"


def test_a_megabyte_name_is_cut_in_tables_and_kept_whole_in_the_store(
    cli: Cli, server: ScimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = "x" * 1_000_000
    carol = server.add_user("carol", display_name=huge)
    server.add_group("big-names", users=[carol])
    monkeypatch.setenv("SCIM_TOKEN", server.token)
    cli.ok("sync", "--scim", server.url, "--token-env", "SCIM_TOKEN", "--name", "corp")
    out = cli.ok("members", "big-names")
    # Before: the row was padded to the huge name's width, a megabyte of output.
    assert len(out) < 5_000
    assert "xxxx…" in out
    members = json.loads(cli.ok("members", "big-names", "--json"))["members"]
    assert [m["display_name"] for m in members] == [huge]


def test_a_name_longer_than_the_store_keeps_is_one_line_and_changes_nothing(
    cli: Cli, server: ScimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_TOKEN", server.token)
    cli.ok("sync", "--scim", server.url, "--token-env", "SCIM_TOKEN", "--name", "corp")
    before = cli.export()
    server.add_group("x" * 1_000_000)
    code, _out, err = cli("sync", "--scim", server.url, "--token-env", "SCIM_TOKEN", "--name", "corp")
    assert code == 1
    assert "group name of 1,000,000 characters" in err
    assert len(err) < 1_000 and "Traceback" not in err
    assert cli.export() == before
