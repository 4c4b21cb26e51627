"""The demo: a real SCIM server holding a made-up organisation, synced into a fresh database,
and a Windmill stand-in built from the same organisation, linked by a pull.

Everything after seeding goes through the real paths: the token is read from an
environment variable by build_source, the sync is run_sync, the grants come from
import_layout, the stand-in is read by services.windmill.pull. Only the data is made up.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from groupwarden.config import Settings, SourceConfig
from groupwarden.demo.seed import seed_organisation
from groupwarden.demo.server import ScimServer, start_scim_server
from groupwarden.demo.windmill import LinkedStandIn, link_standin, load_description
from groupwarden.domain.directory import Progress
from groupwarden.domain.errors import BadInput
from groupwarden.services.audit import sync_runs
from groupwarden.services.context import Context
from groupwarden.services.layout import LayoutResult, import_layout, list_workspaces
from groupwarden.services.sync import SyncReport, build_source, run_sync
from groupwarden.services.windmill import workspace_links
from groupwarden.store.db import safe_url

__all__ = ["DemoSession", "ScimServer", "demo_assets", "load_organisation", "prepare_demo"]

TOKEN_ENV = "GROUPWARDEN_DEMO_TOKEN"
SOURCE_NAME = "demo"


def demo_assets() -> Traversable:
    """The directory of the demo's data files, wherever the package is installed."""
    return files("groupwarden.demo_assets")


def load_organisation() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((demo_assets() / "organisation.json").read_text(encoding="utf-8"))
    return data


def shown_db(db: str) -> str:
    """A database path or URL as it may be shown: a password in a URL is hidden."""
    return safe_url(db) if "://" in db else str(Path(db).expanduser().resolve())


def default_demo_db() -> Path:
    from platformdirs import user_data_path

    return user_data_path("groupwarden") / "demo.db"


@dataclass(slots=True)
class DemoSession:
    ctx: Context
    server: ScimServer
    source_config: SourceConfig
    settings: Settings
    organisation: dict[str, Any]
    sync_report: SyncReport
    layout_result: LayoutResult
    windmill: LinkedStandIn
    # Kept to clean up the environment variable on close; never shown.
    token: str = field(repr=False)

    @property
    def database(self) -> str:
        """Where the demo database is, as it may be shown."""
        return shown_db(self.settings.db or "")

    def summary(self) -> str:
        users = self.organisation["users"]
        inactive = sum(1 for user in users if not user["active"])
        diff = self.sync_report.diff
        linked = workspace_links(self.ctx)
        spaces = [space for space in list_workspaces(self.ctx) if space.id not in linked]
        folders = [folder for space in spaces for folder in space.folders]
        grants = sum(folder.grants for folder in folders)
        return "\n".join(
            [
                f"demo SCIM server: {self.server.url} (source {self.source_config.name!r})",
                f"{self.sync_report.users} users ({inactive} inactive), {self.sync_report.groups} groups,"
                f" {diff.members_added_count} memberships, {len(diff.nested_added)} nested groups",
                f"{len(spaces)} workspaces, {len(folders)} folders, {grants} grants",
                f"sync: {diff.summary()}",
                self.windmill.summary(),
                f"database: {self.database}",
            ]
        )

    def close(self) -> None:
        """Close the database and stop the server; the database file stays for a later look."""
        self.ctx.close()
        self.server.stop()
        self.windmill.close()
        # Only our own token: a later demo in this process may have set its own meanwhile.
        if os.environ.get(TOKEN_ENV) == self.token:
            del os.environ[TOKEN_ENV]

    def __enter__(self) -> DemoSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def prepare_demo(db: str | None, *, progress: Callable[[str], None] | None = None) -> DemoSession:
    """Serve the demo organisation over SCIM, sync it into a database and import the demo layout.

    db is a path or SQLAlchemy URL, used as it is; without it the demo uses demo.db in the
    user data directory, deleted first so that each demo starts clean (never the real
    database). The caller closes the session.
    """
    say = progress or (lambda _message: None)
    if db is None:
        path = default_demo_db()
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        db = str(path)
    organisation = load_organisation()
    say(f"opening the demo database {shown_db(db)}")
    ctx = Context.open(db)
    # Each demo server assigns new ids, so a second demo sync into the same database would
    # look like every user and group removed upstream: refused as a mass deletion.
    if any(run.source == SOURCE_NAME for run in sync_runs(ctx)):
        ctx.close()
        raise BadInput(
            f"the database {shown_db(db)} already holds a demo; remove it or name another one"
            " (without a database the demo starts from a fresh one each time)"
        )
    token = secrets.token_urlsafe(32)
    say("starting the demo SCIM server on 127.0.0.1")
    server = start_scim_server(token)
    try:
        seed_organisation(server.url, token, organisation, say)
        # The sync reads the token the way it reads any source's: from the environment.
        os.environ[TOKEN_ENV] = token
        source_config = SourceConfig(name=SOURCE_NAME, kind="scim", url=server.url, token_env=TOKEN_ENV)
        settings = Settings(db=db, sources={SOURCE_NAME: source_config})

        def sync_progress(step: Progress) -> None:
            if step.phase == "reconcile":
                say(f"sync: writing {step.total} users and groups to the database")
            else:
                total = f"/{step.total}" if step.total is not None else ""
                say(f"sync: listed {step.items}{total} {step.phase}")

        report = run_sync(ctx, build_source(source_config), progress=sync_progress)
        say("importing the demo workspaces, folders and grants")
        with as_file(demo_assets() / "layout.toml") as layout_path:
            layout = import_layout(ctx, layout_path)
        say("starting the Windmill stand-in on 127.0.0.1 and pulling it")
        description = load_description((demo_assets() / "windmill.toml").read_text(encoding="utf-8"))
        windmill = link_standin(ctx, organisation, description)
    except BaseException:
        ctx.close()
        server.stop()
        if os.environ.get(TOKEN_ENV) == token:
            del os.environ[TOKEN_ENV]
        raise
    return DemoSession(ctx, server, source_config, settings, organisation, report, layout, windmill, token)
