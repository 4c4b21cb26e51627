"""Settings from the config file (TOML) and GROUPWARDEN_* environment variables.

The file lives in the user config dir (or --config / GROUPWARDEN_CONFIG). It names where
each source's token is (an environment variable or a file); it never holds a token.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groupwarden.domain.errors import BadInput

SOURCE_KINDS = ("scim", "okta", "graph")


@dataclass(slots=True)
class SourceConfig:
    name: str
    kind: str
    url: str
    token_env: str | None = None
    token_file: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    page_size: int = 500
    # Graph: the tenant, and the app registration's client id and where its secret is.
    tenant: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    login_url: str | None = None
    # Incremental sources: a full sync at least this often, to catch what deltas miss
    # (SCIM deletions above all). None: only on demand (--full).
    full_sync_hours: float | None = None
    # Seconds one request may take, body included, and the whole fetch of a sync.
    request_timeout: float = 60.0
    sync_timeout: float = 1800.0


@dataclass(slots=True)
class Settings:
    path: Path | None = None
    db: str | None = None
    read_only: bool = False
    theme: str | None = None
    # Removing more than this share of the groups, users or memberships needs
    # --allow-mass-delete (Entra's "prevent accidental deletions").
    max_delete_fraction: float = 0.2
    # Removals at or below this count are never called a mass deletion.
    max_delete_floor: int = 10
    sources: dict[str, SourceConfig] = field(default_factory=dict)


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path("groupwarden") / "config.toml"


def config_path(explicit: str | None) -> Path:
    value = explicit or os.environ.get("GROUPWARDEN_CONFIG")
    return Path(value).expanduser() if value else default_config_path()


def _bool_env(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on")


def load_settings(explicit: str | None = None) -> Settings:
    """Read the config file (absent is fine, unless named explicitly), then the environment."""
    path = config_path(explicit)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"config file {path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise BadInput(f"cannot read config file {path}: {exc.strerror}") from None
    elif explicit or os.environ.get("GROUPWARDEN_CONFIG"):
        raise BadInput(f"config file {path} does not exist")
    settings = Settings(path=path)
    settings.db = _str(data, "db", path)
    settings.read_only = bool(data.get("read_only", False))
    settings.theme = _str(data, "theme", path)
    sync = data.get("sync", {})
    if not isinstance(sync, dict):
        raise BadInput(f"config file {path}: [sync] must be a table")
    fraction = sync.get("max_delete_fraction", settings.max_delete_fraction)
    if not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
        raise BadInput(f"config file {path}: sync.max_delete_fraction must be between 0 and 1")
    settings.max_delete_fraction = float(fraction)
    floor = sync.get("max_delete_floor", settings.max_delete_floor)
    if not isinstance(floor, int) or floor < 0:
        raise BadInput(f"config file {path}: sync.max_delete_floor must be a whole number >= 0")
    settings.max_delete_floor = floor
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise BadInput(f"config file {path}: [sources] must hold one table per source")
    for name, table in sources.items():
        settings.sources[name] = _source(name, table, path)
    env_read_only = _bool_env("GROUPWARDEN_READ_ONLY")
    if env_read_only is not None:
        settings.read_only = env_read_only
    return settings


def _str(data: dict[str, Any], key: str, path: Path) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"config file {path}: {key} must be a string")
    return value


def _source(name: str, table: Any, path: Path) -> SourceConfig:
    where = f"config file {path}, source {name!r}"
    if not isinstance(table, dict):
        raise BadInput(f"{where}: must be a table")
    for key in ("token", "client_secret", "secret", "password"):
        if key in table:
            raise BadInput(
                f"{where}: holds a secret ({key}); the config names where it is"
                " (token_env or token_file, client_secret_env or client_secret_file), never the token itself"
            )
    kind = table.get("type", "scim")
    if kind not in SOURCE_KINDS:
        raise BadInput(f"{where}: type must be one of {', '.join(SOURCE_KINDS)}")
    for key in (
        "url",
        "token_env",
        "token_file",
        "ca_bundle",
        "tenant",
        "client_id",
        "client_secret_env",
        "client_secret_file",
        "login_url",
    ):
        if key in table and not isinstance(table[key], str):
            raise BadInput(f"{where}: {key} must be a string")
    url = table.get("url")
    if kind == "graph":
        url = url or "https://graph.microsoft.com"
        if not table.get("tenant"):
            raise BadInput(f"{where}: tenant is required for a graph source")
        if not (table.get("token_env") or table.get("token_file")) and not (
            table.get("client_id") and (table.get("client_secret_env") or table.get("client_secret_file"))
        ):
            raise BadInput(
                f"{where}: give client_id with client_secret_env (or client_secret_file),"
                " or token_env (or token_file) for a ready bearer token"
            )
    if not isinstance(url, str) or not url:
        raise BadInput(f"{where}: url is required")
    full_sync_hours = table.get("full_sync_hours")
    if full_sync_hours is not None and (
        not isinstance(full_sync_hours, int | float)
        or isinstance(full_sync_hours, bool)
        or full_sync_hours <= 0
    ):
        raise BadInput(f"{where}: full_sync_hours must be a number of hours above 0")
    page_size = table.get("page_size", 500)
    if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
        raise BadInput(f"{where}: page_size must be a whole number >= 1")
    return SourceConfig(
        name=name,
        kind=kind,
        url=url,
        token_env=table.get("token_env"),
        token_file=table.get("token_file"),
        ca_bundle=table.get("ca_bundle"),
        verify_tls=bool(table.get("verify_tls", True)),
        page_size=page_size,
        tenant=table.get("tenant"),
        client_id=table.get("client_id"),
        client_secret_env=table.get("client_secret_env"),
        client_secret_file=table.get("client_secret_file"),
        login_url=table.get("login_url"),
        full_sync_hours=float(full_sync_hours) if full_sync_hours is not None else None,
    )


def save_setting(path: Path, key: str, value: str) -> None:
    """Set one top-level key in the config file, keeping everything else in it."""
    import tomli_w

    data: dict[str, Any] = {}
    if path.exists():
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    tmp.replace(path)
