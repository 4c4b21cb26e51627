"""`groupwarden windmill pull | drift | list`, end to end against the stand-in on a real socket."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from groupwarden.cli.main import main
from groupwarden.demo.windmill_server import WindmillStandIn, populate
from groupwarden.services.context import Context
from groupwarden.services.windmill import drift

pytestmark = pytest.mark.slow

TOKEN_VAR = "GW_TEST_WINDMILL_TOKEN"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[WindmillStandIn]:
    with WindmillStandIn() as server:
        populate(server, workspaces=2, folders=3, items=4, users=5, instance_groups=3)
        monkeypatch.setenv(TOKEN_VAR, server.superadmin_token)
        yield server


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--db", db_url, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_pull_by_flags_then_list_and_a_second_pull_changes_nothing(
    cli: Run, standin: WindmillStandIn
) -> None:
    code, out, err = cli("windmill", "pull", "--url", standin.url, "--token-env", TOKEN_VAR, "--dry-run")
    assert code == 0, err
    assert out.startswith(f"dry run, nothing written: windmill default ({standin.url}): 2 workspaces")
    assert cli("windmill", "list")[1].startswith("no Windmill instance linked yet")
    code, out, err = cli("windmill", "pull", "--url", standin.url, "--token-env", TOKEN_VAR, "--json")
    assert code == 0, err
    diff = json.loads(out)
    assert len(diff["workspaces_linked"]) == 2 and len(diff["folders_added"]) == 6
    code, out, _err = cli("windmill", "list")
    header, row = out.splitlines()
    assert header.split() == ["NAME", "URL", "STAND-IN", "LAST", "PULL", "WORKSPACES"]
    assert row.split()[:2] == ["default", standin.url] and row.split()[-1] == "2"
    code, out, err = cli("windmill", "pull", "--url", standin.url, "--token-env", TOKEN_VAR)
    assert code == 0, err
    assert out.rstrip().endswith("; no changes") and standin.superadmin_token not in out + err


def test_pull_a_configured_instance_and_drift_prints_the_services_report(
    cli: Run, standin: WindmillStandIn, db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[windmill.prod]\nurl = "{standin.url}"\ntoken_env = "{TOKEN_VAR}"\n')
    code, out, err = cli("--config", str(config), "windmill", "pull", "prod")
    assert code == 0, err
    assert out.startswith(f"windmill prod ({standin.url}): 2 workspaces, 6 folders")
    code, out, err = cli("windmill", "drift", "prod", "--json")
    assert code == 0, err
    ctx = Context.open(db_url)
    try:
        assert json.loads(out) == json.loads(json.dumps(drift(ctx, "prod").to_dict()))
    finally:
        ctx.close()
    assert set(json.loads(out)) == {"dangling", "membership_drift", "unmatched", "unknown_users", "auto_add"}
    code, out, err = cli("windmill", "drift", "prod")
    assert code == 0, err
    for heading in (
        "dangling principals (",
        "membership drift (",
        "unmatched groups (",
        "unknown users (",
        "auto-add (",
    ):
        assert heading in out


def test_a_failing_pull_is_one_line_without_the_token_and_writes_nothing(
    cli: Run, standin: WindmillStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VAR, standin.nobody_token)
    code, out, err = cli("windmill", "pull", "--url", standin.url, "--token-env", TOKEN_VAR)
    assert code == 1 and out == ""
    assert err.startswith("groupwarden: error: ") and err.count("\n") == 1
    assert standin.nobody_token not in err
    assert cli("windmill", "list")[1].startswith("no Windmill instance linked yet")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["windmill", "pull"], "no [windmill.default] section in the config file"),
        (["windmill", "pull", "--url", "http://127.0.0.1:1"], "no token given"),
        (
            ["windmill", "pull", "--url", "http://127.0.0.1:1/?token=x", "--token-env", TOKEN_VAR],
            "query string",
        ),
        (["windmill", "pull", "--url", "http://wm.example.test", "--token-env", TOKEN_VAR], "must use https"),
        (
            ["windmill", "pull", "bad name", "--url", "https://wm.test", "--token-env", TOKEN_VAR],
            "bad Windmill",
        ),
        (["windmill", "pull", "a", "--name", "b"], "named twice"),
        (["windmill", "drift", "nowhere"], "no Windmill instance named 'nowhere'"),
        (["windmill"], "required"),
    ],
)
def test_bad_input_exits_2_and_changes_nothing(cli: Run, args: list[str], says: str) -> None:
    code, _out, err = cli(*args)
    assert code == 2 and says in err
    assert cli("windmill", "list")[1].startswith("no Windmill instance linked yet")


def test_a_config_section_is_checked_like_a_source(cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[windmill.prod]\nurl = "https://user:hunter2pass@wm.test"\ntoken_env = "X"\n')
    code, _out, err = cli("--config", str(config), "windmill", "list")
    assert code == 2 and "must not hold credentials" in err and "hunter2pass" not in err
    config.write_text('[windmill.prod]\nurl = "https://wm.test"\ntoken = "sekrit123"\n')
    code, _out, err = cli("--config", str(config), "windmill", "list")
    assert code == 2 and "looks like a secret" in err and "sekrit123" not in err
