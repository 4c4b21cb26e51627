"""Every setting, from one place, with one precedence: flag > environment > config file > default.

The config file (TOML) is `--config FILE`, else GROUPWARDEN_CONFIG, else config.toml in the
user config directory. Each setting `name` may be given as the flag `--name-with-dashes`
(where the command has it), the variable GROUPWARDEN_NAME, the key `name` in the file, or left
to its default. The settings that apply to a source (page_size, page_concurrency,
request_timeout, sync_timeout, insecure, ca_bundle) may also be set in that source's section of the file,
which beats the file's top level but not a variable or a flag.

The file names where each source's token is (an environment variable or a file); it never
holds a token, and a key that looks like one is refused wherever it is.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from groupwarden.domain.errors import BadInput

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo
    from pydantic_settings import BaseSettings

SOURCE_KINDS = ("scim", "okta", "graph")
ENV_PREFIX = "GROUPWARDEN_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
DEFAULT_REQUEST_TIMEOUT = 60.0
DEFAULT_SYNC_TIMEOUT = 1800.0
DEFAULT_PAGE_SIZE = 500
DEFAULT_PAGE_CONCURRENCY = 4
# Settings a source section may set for itself; the file's top level sets them for all.
SOURCE_SETTINGS = (
    "page_size",
    "page_concurrency",
    "request_timeout",
    "sync_timeout",
    "insecure",
    "ca_bundle",
)
# A key whose name holds one of these names a secret; the config only says where secrets are.
SECRET_WORDS = ("token", "secret", "password", "passwd", "apikey", "api_key", "credential", "private_key")
WHERE_SUFFIXES = ("_env", "_file")


@dataclass(slots=True)
class SourceConfig:
    name: str
    kind: str
    url: str
    token_env: str | None = None
    token_file: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    page_size: int = DEFAULT_PAGE_SIZE
    # Requests a listing may have in flight at once (1: one page at a time).
    page_concurrency: int = DEFAULT_PAGE_CONCURRENCY
    # Graph: the tenant, and the app registration's client id and where its secret is.
    tenant: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    login_url: str | None = None
    # Incremental sources: a full sync at least this often, to catch what deltas miss
    # (SCIM deletions above all). None: only on demand (a full sync asked for).
    full_sync_hours: float | None = None
    # Seconds: the deadline of each HTTP request, start to last byte, and of a whole sync.
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    sync_timeout: float = DEFAULT_SYNC_TIMEOUT


@dataclass(frozen=True, slots=True)
class WindmillConfig:
    """A `[windmill.NAME]` section: where an instance is and where its token comes from."""

    name: str
    url: str
    token_env: str | None = None
    token_file: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False


@dataclass(slots=True)
class Settings:
    path: Path | None = None
    # A SQLAlchemy URL or a SQLite path; load_settings always fills it (the default file).
    db: str = ""
    read_only: bool = False
    # Use a SQLite file others may write or own; refused by default.
    trust_db_permissions: bool = False
    theme: str | None = None
    # Removing more than this share of the groups, users or memberships needs an explicit
    # permission (Entra's "prevent accidental deletions").
    max_delete_fraction: float = 0.2
    # Removals at or below this count are never called a mass deletion.
    max_delete_floor: int = 10
    # The source settings as the top level gives them, for sources named on the command line.
    page_size: int = DEFAULT_PAGE_SIZE
    page_concurrency: int = DEFAULT_PAGE_CONCURRENCY
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    sync_timeout: float = DEFAULT_SYNC_TIMEOUT
    insecure: bool = False
    ca_bundle: str | None = None
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    windmill: dict[str, WindmillConfig] = field(default_factory=dict)


def _not_bool(value: object) -> object:
    # pydantic takes true as 1; a count or a number of seconds given as true is a mistake.
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


# What each setting must be, for the one line that refuses a bad value.
RULES = {
    "db": "must be a database URL or path (a string)",
    "read_only": "must be true or false",
    "trust_db_permissions": "must be true or false",
    "insecure": "must be true or false",
    "theme": "must be a string",
    "ca_bundle": "must be a path (a string)",
    "max_delete_fraction": "must be a number between 0 and 1",
    "max_delete_floor": "must be a whole number >= 0",
    "page_size": "must be a whole number >= 1",
    "page_concurrency": "must be a whole number >= 1",
    "request_timeout": "must be a number of seconds above 0",
    "sync_timeout": "must be a number of seconds above 0",
}
LAYERED = tuple(RULES)
# Each layered setting's default: the last layer.
DEFAULTS: dict[str, Any] = {
    "db": None,
    "read_only": False,
    "trust_db_permissions": False,
    "theme": None,
    "max_delete_fraction": 0.2,
    "max_delete_floor": 10,
    "page_size": DEFAULT_PAGE_SIZE,
    "page_concurrency": DEFAULT_PAGE_CONCURRENCY,
    "request_timeout": DEFAULT_REQUEST_TIMEOUT,
    "sync_timeout": DEFAULT_SYNC_TIMEOUT,
    "insecure": False,
    "ca_bundle": None,
}
# The settings whose every value of exactly this type is valid as it is: pydantic has nothing to
# check or convert in one (a string for a string setting, true or false for a switch).
PLAIN_TYPES: dict[str, type] = {
    "db": str,
    "theme": str,
    "ca_bundle": str,
    "read_only": bool,
    "trust_db_permissions": bool,
    "insecure": bool,
}

_file_layer: ContextVar[dict[str, Any]] = ContextVar("groupwarden_file_layer")


@cache
def _layered_model() -> type[BaseSettings]:
    """The settings that follow the precedence, as a pydantic-settings model.

    Built on first use: pydantic-settings takes a tenth of a second to import, and the
    terminal UI and the services import this module for its types alone.
    """
    from pydantic import BeforeValidator, Field
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

    class FileLayer(PydanticBaseSettingsSource):
        """The config file's values, already read and checked, as the layer under the environment."""

        def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
            super().__init__(settings_cls)
            self.values = values

        def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
            return self.values.get(field_name), field_name, False

        def __call__(self) -> dict[str, Any]:
            return dict(self.values)

    not_bool = BeforeValidator(_not_bool)
    seconds = Field(gt=0, allow_inf_nan=False)

    class Layered(BaseSettings):
        model_config = SettingsConfigDict(
            env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True, extra="ignore"
        )

        # The defaults are the last layer.
        db: str | None = DEFAULTS["db"]
        read_only: bool = DEFAULTS["read_only"]
        trust_db_permissions: bool = DEFAULTS["trust_db_permissions"]
        theme: str | None = DEFAULTS["theme"]
        max_delete_fraction: Annotated[float, not_bool, Field(ge=0, le=1)] = DEFAULTS["max_delete_fraction"]
        max_delete_floor: Annotated[int, not_bool, Field(ge=0)] = DEFAULTS["max_delete_floor"]
        page_size: Annotated[int, not_bool, Field(ge=1)] = DEFAULTS["page_size"]
        page_concurrency: Annotated[int, not_bool, Field(ge=1)] = DEFAULTS["page_concurrency"]
        request_timeout: Annotated[float, not_bool, seconds] = DEFAULTS["request_timeout"]
        sync_timeout: Annotated[float, not_bool, seconds] = DEFAULTS["sync_timeout"]
        insecure: bool = DEFAULTS["insecure"]
        ca_bundle: str | None = DEFAULTS["ca_bundle"]

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # The order is the precedence: flags (given as init values), environment, file.
            return (init_settings, env_settings, FileLayer(settings_cls, _file_layer.get({})))

    assert set(Layered.model_fields) == set(LAYERED) == set(DEFAULTS)
    return Layered


def _layered(flags: Mapping[str, Any], file_values: dict[str, Any], file_where: str) -> dict[str, Any]:
    """Each layered setting's value: from the flags, else the environment, else file_values."""
    plain = _plain_layers(flags, file_values)
    if plain is not None:
        return plain
    from pydantic import ValidationError

    token = _file_layer.set(file_values)
    try:
        return _layered_model()(**flags).model_dump()
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        env = ENV_PREFIX + name.upper()
        if name in flags:
            origin = "--" + name.replace("_", "-")
        elif os.environ.get(env, "") != "":
            origin = env
        else:
            origin = f"{file_where}: {name}"
        raise BadInput(f"{origin} {RULES.get(name, 'is not valid')}") from None
    finally:
        _file_layer.reset(token)


def _plain_layers(flags: Mapping[str, Any], file_values: dict[str, Any]) -> dict[str, Any] | None:
    """The layered values when no layer needs pydantic, else None (and pydantic decides).

    No layered setting in the environment, and every flag and file value one that pydantic
    would take as it is (PLAIN_TYPES): then the higher layer simply wins. The terminal UI
    starts so, without importing pydantic-settings (a tenth of a second or more).
    """
    given = {**file_values, **flags}
    if not all(name in PLAIN_TYPES and type(value) is PLAIN_TYPES[name] for name, value in given.items()):
        return None
    if any(_layered_variable(name) for name, value in os.environ.items() if value != ""):
        return None
    return {**DEFAULTS, **given}


def _layered_variable(name: str) -> bool:
    """Whether an environment variable sets a layered setting (pydantic matches them in any case)."""
    lowered = name.lower()
    prefix = ENV_PREFIX.lower()
    return lowered.startswith(prefix) and lowered[len(prefix) :] in DEFAULTS


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path("groupwarden") / "config.toml"


def default_db_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("groupwarden") / "groupwarden.db"


def config_path(explicit: str | None) -> Path:
    value = explicit or os.environ.get(CONFIG_ENV)
    return Path(value).expanduser() if value else default_config_path()


def load_settings(explicit: str | None = None, flags: Mapping[str, object] | None = None) -> Settings:
    """Merge flags, GROUPWARDEN_* variables, the config file and the defaults, in that order.

    explicit is --config; flags maps setting names to the values given on the command line
    (leave out a flag that was not given). A config file that is absent is fine, unless it
    was named explicitly.
    """
    flags = {name: value for name, value in (flags or {}).items() if value is not None}
    path = config_path(explicit)
    data = _read_file(path, named=bool(explicit or os.environ.get(CONFIG_ENV)))
    where = f"config file {path}"
    refuse_secret_keys(data, where)
    sync = data.get("sync", {})
    if not isinstance(sync, dict):
        raise BadInput(f"{where}: [sync] must be a table")
    top = {key: value for key, value in data.items() if key in LAYERED}
    top.update({key: sync[key] for key in ("max_delete_fraction", "max_delete_floor") if key in sync})
    layered = _layered(flags, top, where)
    settings = Settings(path=path, **layered)
    settings.db = settings.db or str(default_db_path())
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise BadInput(f"{where}: [sources] must hold one table per source")
    for name, table in sources.items():
        source_where = f"{where}, source {name!r}"
        if not isinstance(table, dict):
            raise BadInput(f"{source_where}: must be a table")
        own = {key: table[key] for key in SOURCE_SETTINGS if key in table}
        # The source's own keys beat the top level's; flags and variables beat both.
        source_layer = _layered(flags, {**top, **own}, source_where) if own else layered
        settings.sources[name] = _source(name, table, source_where, source_layer)
    instances = data.get("windmill", {})
    if not isinstance(instances, dict):
        raise BadInput(f"{where}: [windmill] must hold one table per instance")
    for name, table in instances.items():
        settings.windmill[name] = _windmill(name, table, f"{where}, windmill {name!r}", layered)
    return settings


WINDMILL_KEYS = ("url", "token_env", "token_file", "ca_bundle", "insecure")


def _windmill(name: str, table: object, where: str, layered: dict[str, Any]) -> WindmillConfig:
    """A `[windmill.NAME]` section, checked like a source: the same URL rule."""
    if not isinstance(table, dict):
        raise BadInput(f"{where}: must be a table")
    for key, value in table.items():
        if key not in WINDMILL_KEYS:
            raise BadInput(f"{where}: unknown key {key!r}; expected one of: {', '.join(WINDMILL_KEYS)}")
        if key == "insecure" and not isinstance(value, bool):
            raise BadInput(f"{where}: insecure must be true or false")
        if key != "insecure" and not isinstance(value, str):
            raise BadInput(f"{where}: {key} must be a string")
    if table.get("token_env") and table.get("token_file"):
        raise BadInput(f"{where}: give token_env or token_file, not both")
    url = table.get("url")
    if not url:
        raise BadInput(f"{where}: url is required")
    insecure = bool(table.get("insecure")) or bool(layered["insecure"])
    return WindmillConfig(
        name=name,
        url=checked_url(f"{where}: url", url, insecure=insecure),
        token_env=table.get("token_env"),
        token_file=table.get("token_file"),
        ca_bundle=table.get("ca_bundle", layered["ca_bundle"]),
        insecure=insecure,
    )


def _read_file(path: Path, *, named: bool) -> dict[str, Any]:
    if not path.exists():
        if named:
            raise BadInput(f"config file {path} does not exist")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise BadInput(f"cannot read config file {path}: {exc.strerror}") from None


def names_a_secret(key: str) -> bool:
    """Whether a config key would hold a secret itself (token_env and token_file only say where)."""
    lowered = key.lower().replace("-", "_")
    if lowered.endswith(WHERE_SUFFIXES):
        return False
    return any(word in lowered for word in SECRET_WORDS)


def refuse_secret_keys(data: Mapping[str, Any], where: str, section: str = "") -> None:
    """Refuse any key, at any depth, that names a secret: the config file is no place for one."""
    for key, value in data.items():
        key = str(key)
        if isinstance(value, dict):
            refuse_secret_keys(value, where, f"{section}.{key}" if section else key)
            continue
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    refuse_secret_keys(item, where, f"{section}.{key}" if section else key)
        if names_a_secret(key):
            shown = f"[{section}]" if section else "the top level"
            raise BadInput(
                f"{where}: key {key!r} in {shown} looks like a secret; the config names where a"
                " secret is, never the token itself: use token_env or token_file"
                " (client_secret_env or client_secret_file for a client secret)"
            )


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def checked_url(where: str, value: str, *, insecure: bool) -> str:
    """The one check for every URL a token is sent to (a source's, a Windmill link's).

    No credentials and no query string or fragment (the URL is recorded and shown with every
    run, and paths are appended to it); https, unless insecure or the host is loopback.
    The error never repeats the URL: it may hold a password or a key.
    """
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- reading it validates the port
    except ValueError:
        raise BadInput(f"{where}: not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"{where}: needs an http(s) URL with a host")
    if "@" in parts.netloc:
        raise BadInput(
            f"{where}: the URL must not hold credentials (user:password@);"
            " the token's place is token_env or token_file"
        )
    if "?" in value or "#" in value:
        raise BadInput(f"{where}: the URL must not hold a query string or fragment; give only the base URL")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        raise BadInput(
            f"{where}: the URL must use https (plain http only to a loopback address,"
            " or with insecure = true / --insecure)"
        )
    return value.rstrip("/")


def _source(name: str, table: dict[str, Any], where: str, layered: dict[str, Any]) -> SourceConfig:
    kind = table.get("type", "scim")
    if kind not in SOURCE_KINDS:
        raise BadInput(f"{where}: type must be one of {', '.join(SOURCE_KINDS)}")
    for key in (
        "url",
        "token_env",
        "token_file",
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
    url = checked_url(f"{where}: url", url, insecure=layered["insecure"])
    login_url = table.get("login_url")
    if login_url is not None:
        login_url = checked_url(f"{where}: login_url", login_url, insecure=layered["insecure"])
    full_sync_hours = table.get("full_sync_hours")
    if full_sync_hours is not None and (
        not isinstance(full_sync_hours, int | float)
        or isinstance(full_sync_hours, bool)
        or full_sync_hours <= 0
    ):
        raise BadInput(f"{where}: full_sync_hours must be a number of hours above 0")
    return SourceConfig(
        name=name,
        kind=kind,
        url=url,
        token_env=table.get("token_env"),
        token_file=table.get("token_file"),
        ca_bundle=layered["ca_bundle"],
        verify_tls=not layered["insecure"],
        page_size=layered["page_size"],
        page_concurrency=layered["page_concurrency"],
        tenant=table.get("tenant"),
        client_id=table.get("client_id"),
        client_secret_env=table.get("client_secret_env"),
        client_secret_file=table.get("client_secret_file"),
        login_url=login_url,
        full_sync_hours=float(full_sync_hours) if full_sync_hours is not None else None,
        request_timeout=layered["request_timeout"],
        sync_timeout=layered["sync_timeout"],
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
