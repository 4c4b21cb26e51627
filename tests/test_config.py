"""Settings: one precedence for every setting (flag > environment > config file > default),
URL checks wherever a source is defined, and no secret in the config file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from groupwarden.cli.main import main
from groupwarden.config import Settings, checked_url, default_db_path, load_settings
from groupwarden.domain.errors import BadInput

PAIRS = [
    ("flag", "env"),
    ("flag", "file"),
    ("flag", "default"),
    ("env", "file"),
    ("env", "default"),
    ("file", "default"),
]
SOURCE_URL = "https://idp.example.com/scim/v2"

# The value each layer gives a setting; for a switch, the higher layer says true, the lower false.
VALUES: dict[str, dict[str, Any]] = {
    "db": {"flag": "/flag/gw.db", "env": "/env/gw.db", "file": "/file/gw.db"},
    "request_timeout": {"flag": 7.0, "env": 8.0, "file": 9.0, "default": 60.0},
    "page_size": {"flag": 7, "env": 8, "file": 9, "default": 500},
    "read_only": {},
}


def value_for(setting: str, layer: str, *, winner: bool) -> Any:
    if setting == "read_only":
        return winner
    if setting == "db" and layer == "default":
        return str(default_db_path())
    return VALUES[setting][layer]


def resolved(settings: Settings, setting: str) -> Any:
    if setting == "page_size":
        # A source setting, given in the source's own section of the file.
        return settings.sources["corp"].page_size
    return getattr(settings, setting)


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("higher", "lower"), PAIRS)
@pytest.mark.parametrize("setting", ["db", "read_only", "request_timeout", "page_size"])
def test_each_layer_beats_the_ones_below_it(
    setting: str, higher: str, lower: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source: dict[str, Any] = {"url": SOURCE_URL, "token_env": "CORP_TOKEN"}
    data: dict[str, Any] = {"sources": {"corp": source}}
    flags: dict[str, Any] = {}
    for layer, winner in ((higher, True), (lower, False)):
        value = value_for(setting, layer, winner=winner)
        if layer == "flag":
            flags[setting] = value
        elif layer == "env":
            shown = ("1" if value else "0") if isinstance(value, bool) else str(value)
            monkeypatch.setenv(f"GROUPWARDEN_{setting.upper()}", shown)
        elif layer == "file":
            (source if setting == "page_size" else data)[setting] = value
    config = write_config(tmp_path / "gw.toml", data)
    settings = load_settings(str(config), flags)
    assert resolved(settings, setting) == value_for(setting, higher, winner=True)


def test_a_variable_that_says_false_beats_the_file_that_says_true(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "gw.toml", {"read_only": True, "trust_db_permissions": True})
    monkeypatch.setenv("GROUPWARDEN_READ_ONLY", "false")
    monkeypatch.setenv("GROUPWARDEN_TRUST_DB_PERMISSIONS", "0")
    settings = load_settings(str(config))
    assert (settings.read_only, settings.trust_db_permissions) == (False, False)


def test_an_empty_variable_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "gw.toml", {"db": "/file/gw.db", "request_timeout": 5})
    monkeypatch.setenv("GROUPWARDEN_DB", "")
    monkeypatch.setenv("GROUPWARDEN_REQUEST_TIMEOUT", "")
    settings = load_settings(str(config))
    assert (settings.db, settings.request_timeout) == ("/file/gw.db", 5.0)


def test_a_source_section_beats_the_top_level_but_not_a_variable_or_a_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {
        "request_timeout": 11,
        "sync_timeout": 300,
        "page_size": 50,
        "sources": {
            "own": {"url": SOURCE_URL, "request_timeout": 22, "sync_timeout": 600, "page_size": 70},
            "plain": {"url": SOURCE_URL},
        },
    }
    config = write_config(tmp_path / "gw.toml", data)
    settings = load_settings(str(config))
    own, plain = settings.sources["own"], settings.sources["plain"]
    assert (own.request_timeout, own.sync_timeout, own.page_size) == (22.0, 600.0, 70)
    assert (plain.request_timeout, plain.sync_timeout, plain.page_size) == (11.0, 300.0, 50)
    assert (settings.request_timeout, settings.sync_timeout) == (11.0, 300.0)

    monkeypatch.setenv("GROUPWARDEN_SYNC_TIMEOUT", "900")
    settings = load_settings(str(config), {"request_timeout": 3.0})
    own = settings.sources["own"]
    assert (own.request_timeout, own.sync_timeout, own.page_size) == (3.0, 900.0, 70)


def test_timeouts_default_to_a_minute_per_request_and_half_an_hour_per_sync(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gw.toml", {"sources": {"corp": {"url": SOURCE_URL}}})
    corp = load_settings(str(config)).sources["corp"]
    assert (corp.request_timeout, corp.sync_timeout) == (60.0, 1800.0)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("file", 0),
        ("file", -5),
        ("file", "soon"),
        ("file", True),
        ("section", 0),
        ("env", "0"),
        ("env", "nope"),
        ("env", "inf"),
        ("flag", 0.0),
        ("flag", -1.0),
    ],
)
def test_a_timeout_that_is_not_a_positive_number_is_one_line_naming_where(
    where: str, value: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data: dict[str, Any] = {"sources": {"corp": {"url": SOURCE_URL}}}
    flags: dict[str, Any] = {}
    if where == "file":
        data["request_timeout"] = value
    elif where == "section":
        data["sources"]["corp"]["request_timeout"] = value
    elif where == "env":
        monkeypatch.setenv("GROUPWARDEN_REQUEST_TIMEOUT", value)
    else:
        flags["request_timeout"] = value
    config = write_config(tmp_path / "gw.toml", data)
    with pytest.raises(BadInput) as caught:
        load_settings(str(config), flags)
    message = str(caught.value)
    assert "request_timeout must be a number of seconds above 0" in message.replace(
        "GROUPWARDEN_REQUEST_TIMEOUT", "request_timeout"
    ).replace("--request-timeout", "request_timeout")
    assert "\n" not in message
    named = {
        "file": str(config),
        "section": "source 'corp'",
        "env": "GROUPWARDEN_REQUEST_TIMEOUT",
        "flag": "--request-timeout",
    }[where]
    assert named in message


def test_sync_timeout_flag_on_the_command_line_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "gw.db"
    code = main(["--db", str(db), "sync", "--scim", "http://127.0.0.1:9/v2", "--sync-timeout", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "groupwarden: error: --sync-timeout must be a number of seconds above 0"
    assert not db.exists()


# The config file, driven through the command line.


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_variable_names_the_database_over_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from_file, from_env, from_flag = tmp_path / "file.db", tmp_path / "env.db", tmp_path / "flag.db"
    config = write_config(tmp_path / "gw.toml", {"db": str(from_file)})
    monkeypatch.setenv("GROUPWARDEN_CONFIG", str(config))
    assert run(["workspace", "add", "one"], capsys)[0] == 0
    monkeypatch.setenv("GROUPWARDEN_DB", str(from_env))
    assert run(["workspace", "add", "two"], capsys)[0] == 0
    assert run(["--db", str(from_flag), "workspace", "add", "three"], capsys)[0] == 0
    for db, expected in ((from_file, ["one"]), (from_env, ["two"]), (from_flag, ["three"])):
        code, out, _err = run(["--db", str(db), "workspace", "list", "--json"], capsys)
        assert code == 0
        assert [w["id"] for w in json.loads(out)] == expected


def test_read_only_follows_the_same_order_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "gw.db")
    config = write_config(tmp_path / "gw.toml", {"read_only": True})
    assert run(["--db", db, "workspace", "add", "one"], capsys)[0] == 0
    code, _out, err = run(["--db", db, "--config", str(config), "workspace", "add", "two"], capsys)
    assert code == 1 and "read-only" in err
    monkeypatch.setenv("GROUPWARDEN_READ_ONLY", "0")
    assert run(["--db", db, "--config", str(config), "workspace", "add", "three"], capsys)[0] == 0
    code, _out, err = run(
        ["--db", db, "--read-only", "--config", str(config), "workspace", "add", "x"], capsys
    )
    assert code == 1 and "read-only" in err


# URLs, wherever a source is defined.


@pytest.mark.parametrize(
    ("url", "problem", "hidden"),
    [
        ("https://admin:hunter2@idp.example.com/scim", "must not hold credentials", "hunter2"),
        ("https://idp.example.com/scim?apikey=s3cr3t-value", "query string", "s3cr3t-value"),
        ("https://idp.example.com/scim#s3cr3t-value", "fragment", "s3cr3t-value"),
        ("https://idp.example.com/scim?", "query string", None),
        ("http://idp.example.com/scim", "must use https", None),
        ("ftp://idp.example.com/scim", "http(s) URL", None),
        ("https://idp.example.com:99999/scim", "not a valid URL", None),
    ],
)
def test_a_config_file_source_url_is_refused_naming_the_source_and_the_problem(
    url: str, problem: str, hidden: str | None, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gw.toml", {"sources": {"corp": {"url": url, "token_env": "T"}}})
    with pytest.raises(BadInput) as caught:
        load_settings(str(config))
    message = str(caught.value)
    assert "source 'corp'" in message and problem in message
    assert "\n" not in message
    if hidden:
        assert hidden not in message


def test_a_graph_login_url_in_the_config_file_is_checked_too(tmp_path: Path) -> None:
    source = {
        "type": "graph",
        "tenant": "t",
        "client_id": "c",
        "client_secret_env": "S",
        "login_url": "https://user:pw@login.example.com",
    }
    config = write_config(tmp_path / "gw.toml", {"sources": {"entra": source}})
    with pytest.raises(BadInput, match=r"source 'entra': login_url: the URL must not hold credentials"):
        load_settings(str(config))


def test_plain_http_is_allowed_to_loopback_and_with_insecure(tmp_path: Path) -> None:
    sources = {
        "local": {"url": "http://127.0.0.1:8080/scim/"},
        "named": {"url": "http://localhost:8080/scim"},
        "six": {"url": "http://[::1]:8080/scim"},
        "lab": {"url": "http://idp.lab.test/scim", "insecure": True},
    }
    config = write_config(tmp_path / "gw.toml", {"sources": sources})
    settings = load_settings(str(config))
    assert settings.sources["local"].url == "http://127.0.0.1:8080/scim"
    assert settings.sources["local"].verify_tls is True
    assert settings.sources["lab"].verify_tls is False

    everywhere = write_config(
        tmp_path / "insecure.toml", {"insecure": True, "sources": {"lab": {"url": "http://idp.lab.test/x"}}}
    )
    assert load_settings(str(everywhere)).sources["lab"].verify_tls is False
    remote = write_config(tmp_path / "remote.toml", {"sources": {"lab": {"url": "http://idp.lab.test/x"}}})
    with pytest.raises(BadInput, match="must use https"):
        load_settings(str(remote))
    assert load_settings(str(remote), {"insecure": True}).sources["lab"].url == "http://idp.lab.test/x"


def test_checked_url_keeps_a_clean_url_and_never_repeats_a_bad_one() -> None:
    assert checked_url("--scim", "https://idp.example.com/scim/v2/", insecure=False) == (
        "https://idp.example.com/scim/v2"
    )
    with pytest.raises(BadInput) as caught:
        checked_url("--scim", "https://me:pa55@[::1/x", insecure=False)
    assert "pa55" not in str(caught.value) and str(caught.value).startswith("--scim: ")


def test_an_ad_hoc_url_to_a_remote_host_needs_https_or_insecure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "gw.db")
    adhoc = ["--db", db, "sync", "--scim", "http://idp.invalid/scim", "--token-env", "UNSET_TOKEN"]
    code, _out, err = run(adhoc, capsys)
    assert code == 2 and "--scim: the URL must use https" in err
    # With --insecure the URL passes; the missing token stops it next, before any connection.
    code, _out, err = run([*adhoc, "--insecure"], capsys)
    assert code == 2 and "UNSET_TOKEN is not set" in err and "https" not in err


# Secrets never live in the config file.


@pytest.mark.parametrize(
    ("data", "key", "section"),
    [
        ({"token": "abc"}, "token", "the top level"),
        ({"sources": {"corp": {"url": SOURCE_URL, "Token": "abc"}}}, "Token", "[sources.corp]"),
        ({"sources": {"corp": {"url": SOURCE_URL, "api_token": "abc"}}}, "api_token", "[sources.corp]"),
        ({"sources": {"corp": {"url": SOURCE_URL, "PASSWORD": "abc"}}}, "PASSWORD", "[sources.corp]"),
        ({"sources": {"e": {"url": SOURCE_URL, "client_secret": "abc"}}}, "client_secret", "[sources.e]"),
        ({"windmill": {"prod": {"url": SOURCE_URL, "apiKey": "abc"}}}, "apiKey", "[windmill.prod]"),
        ({"sync": {"passwd": "abc"}}, "passwd", "[sync]"),
        ({"links": [{"url": SOURCE_URL, "api_key": "abc"}]}, "api_key", "[links]"),
        ({"Secret": "abc"}, "Secret", "the top level"),
    ],
)
def test_a_key_that_names_a_secret_is_refused_at_any_level(
    data: dict[str, Any], key: str, section: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gw.toml", data)
    with pytest.raises(BadInput) as caught:
        load_settings(str(config))
    message = str(caught.value)
    assert f"key {key!r} in {section}" in message
    assert "token_env or token_file" in message
    assert "abc" not in message and "\n" not in message


def test_keys_that_say_where_a_secret_is_are_allowed(tmp_path: Path) -> None:
    sources = {
        "corp": {"url": SOURCE_URL, "token_env": "CORP_TOKEN"},
        "file": {"url": SOURCE_URL, "token_file": "~/corp.token"},
        "entra": {"type": "graph", "tenant": "t", "client_id": "c", "client_secret_file": "~/s"},
        "entra2": {"type": "graph", "tenant": "t", "client_id": "c", "client_secret_env": "S"},
    }
    config = write_config(tmp_path / "gw.toml", {"sources": sources})
    settings = load_settings(str(config))
    assert settings.sources["corp"].token_env == "CORP_TOKEN"
    assert settings.sources["entra"].client_secret_file == "~/s"


def test_the_types_import_without_pydantic_settings(tmp_path: Path) -> None:
    """The terminal UI and the services import config for its types; only a load with something
    to check pays for pydantic (here a number from the environment)."""
    import subprocess
    import sys

    config = write_config(tmp_path / "gw.toml", {"db": "/file/gw.db", "read_only": True})
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("GROUPWARDEN_")}
    code = (
        "import os, sys\nimport groupwarden.config, groupwarden.services.sync, groupwarden.tui.app\n"
        "print('LOADED', 'pydantic_settings' in sys.modules)\n"
        f"groupwarden.config.load_settings({str(config)!r}, {{'trust_db_permissions': True}})\n"
        "print('LOADED', 'pydantic_settings' in sys.modules)\n"
        "os.environ['GROUPWARDEN_PAGE_SIZE'] = '7'\n"
        f"groupwarden.config.load_settings({str(config)!r})\n"
        "print('LOADED', 'pydantic_settings' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.split() == ["LOADED", "False", "LOADED", "False", "LOADED", "True"]


# Values pydantic takes as they are (strings, switches), in every layer but the environment.
PLAIN_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {}),
    ({"db": "/flag/gw.db", "read_only": True}, {}),
    ({}, {"db": "/file/gw.db", "theme": "nord", "insecure": True, "ca_bundle": "/ca.pem"}),
    ({"db": "/flag/gw.db", "trust_db_permissions": True}, {"db": "/file/gw.db", "read_only": False}),
    ({"insecure": True}, {"insecure": False, "sources": {"corp": {"url": "http://idp.example.com/scim"}}}),
    ({}, {"db": "", "sources": {"corp": {"url": SOURCE_URL, "ca_bundle": "/own.pem", "insecure": True}}}),
]


@pytest.mark.parametrize(("flags", "data"), PLAIN_CASES)
def test_settings_loaded_without_pydantic_are_the_ones_pydantic_gives(
    flags: dict[str, Any], data: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(write_config(tmp_path / "gw.toml", data))
    for key in [key for key in os.environ if key.upper().startswith("GROUPWARDEN_")]:
        monkeypatch.delenv(key)
    quick = load_settings(config, flags)
    # A variable that gives the default sends every layer through pydantic, changing nothing.
    monkeypatch.setenv("GROUPWARDEN_PAGE_SIZE", "500")
    assert load_settings(config, flags) == quick


@pytest.mark.parametrize("name", ["GROUPWARDEN_READ_ONLY", "groupwarden_read_only", "GroupWarden_Read_Only"])
def test_a_variable_in_any_case_still_beats_the_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "gw.toml", {"read_only": True})
    monkeypatch.setenv(name, "0")
    assert load_settings(str(config)).read_only is False


def test_a_source_built_in_code_passes_the_same_url_check() -> None:
    from groupwarden.config import SourceConfig
    from groupwarden.services.sync import build_source

    for url, problem in (
        ("https://idp.example.com/scim?apikey=k3y", "query string"),
        ("https://u:p4ss@idp.example.com/scim", "credentials"),
        ("http://idp.example.com/scim", "must use https"),
    ):
        with pytest.raises(BadInput) as caught:
            build_source(SourceConfig(name="coded", kind="scim", url=url, token_env="UNSET_TOKEN"))
        assert "source 'coded': url" in str(caught.value) and problem in str(caught.value)
        assert "k3y" not in str(caught.value) and "p4ss" not in str(caught.value)
