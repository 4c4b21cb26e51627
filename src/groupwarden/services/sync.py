"""Running a sync: fetch everything, reconcile in one transaction, record the run."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from groupwarden.config import Settings, SourceConfig, checked_url
from groupwarden.domain.directory import Progress, ProgressCallback, Snapshot
from groupwarden.domain.errors import BadInput, Hint, MassDeletionRefused, Remedy, SyncError
from groupwarden.domain.secrets import register_secret, scrub
from groupwarden.services.audit import record_run
from groupwarden.services.cached import cached_rows, cached_snapshot
from groupwarden.services.context import Context
from groupwarden.services.reconcile import DeletionGuard, SyncDiff, reconcile, reconcile_delta
from groupwarden.sources.base import Fetched, IncrementalSource, Previous, Source
from groupwarden.store.db import write_transaction
from groupwarden.store.sources import store_sync_state, sync_state
from groupwarden.store.sync import refresh_directory_statistics

# After a sync this big, PostgreSQL's planner statistics are stale enough to pick bad
# plans (access took 3x longer right after a first 1M-membership load); refresh them.
BIG_CHANGE = 10_000


@dataclass(slots=True)
class SyncReport:
    source: str
    diff: SyncDiff
    dry_run: bool
    run_id: int | None = None
    users: int = 0
    groups: int = 0
    warnings: list[str] = field(default_factory=list)
    #: 'full' or 'delta' (only the changes since the last sync, applied onto the cache).
    mode: str = "full"
    #: Worth telling the admin: a refused delta link, a scheduled full sync.
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "mode": self.mode,
            "notes": self.notes,
            "run_id": self.run_id,
            "users": self.users,
            "groups": self.groups,
            "diff": self.diff.to_dict(),
        }


def read_token(token_env: str | None, token_file: str | None) -> str | None:
    """The token from an environment variable or an owner-only file; never from anywhere else."""
    if token_env and token_file:
        raise BadInput(
            "the token is named twice, by an environment variable and by a file; name one",
            hint=Hint(Remedy.GIVE_TOKEN),
        )
    if token_env:
        value = os.environ.get(token_env)
        if not value:
            raise BadInput(f"environment variable {token_env} is not set or empty; it must hold the token")
        register_secret(value)
        return value.strip()
    if token_file:
        path = Path(token_file).expanduser()
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise BadInput(f"cannot read token file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise BadInput(
                f"token file {path} is readable by others (mode {stat.S_IMODE(mode):o});"
                f" run `chmod 600 {path}` and try again"
            )
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BadInput(f"cannot read token file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise BadInput(f"token file {path} is not UTF-8 text") from None
        if not value:
            raise BadInput(f"token file {path} is empty")
        register_secret(value)
        return value
    return None


def build_source(config: SourceConfig) -> Source:
    """A client for a configured (or ad-hoc) source."""
    # The settings checked these already where the user gave them; a SourceConfig built in
    # code (the demo, a test, a later front end) passes the same one check here.
    insecure = not config.verify_tls
    checked_url(f"source {config.name!r}: url", config.url, insecure=insecure)
    if config.login_url:
        checked_url(f"source {config.name!r}: login_url", config.login_url, insecure=insecure)
    token = read_token(config.token_env, config.token_file)
    if config.kind == "scim":
        from groupwarden.sources.scim import ScimSource

        return ScimSource(
            config.url,
            token,
            name=config.name,
            ca_bundle=config.ca_bundle,
            verify=config.verify_tls,
            page_size=config.page_size,
            page_concurrency=config.page_concurrency,
            full_sync_hours=config.full_sync_hours,
            request_timeout=config.request_timeout,
            sync_timeout=config.sync_timeout,
        )
    if config.kind == "okta":
        from groupwarden.sources.okta import OktaSource

        if token is None:
            raise BadInput(
                f"source {config.name!r}: an Okta source needs an API token",
                hint=Hint(Remedy.GIVE_TOKEN, config.name),
            )
        return OktaSource(
            config.url,
            token,
            name=config.name,
            ca_bundle=config.ca_bundle,
            verify=config.verify_tls,
            request_timeout=config.request_timeout,
            sync_timeout=config.sync_timeout,
        )
    if config.kind == "graph":
        from groupwarden.sources.graph import LOGIN_URL, GraphSource

        secret = None
        if token is None:
            if not config.client_id:
                raise BadInput(
                    f"source {config.name!r}: a Graph source needs a client id with its client secret,"
                    " or a ready bearer token",
                    hint=Hint(Remedy.GIVE_CLIENT_SECRET, config.name),
                )
            secret = read_token(config.client_secret_env, config.client_secret_file)
            if secret is None:
                raise BadInput(
                    f"source {config.name!r}: the client secret is not named",
                    hint=Hint(Remedy.GIVE_CLIENT_SECRET, config.name),
                )
        return GraphSource(
            config.tenant or "",
            token=token,
            client_id=config.client_id,
            client_secret=secret,
            name=config.name,
            graph_url=config.url,
            login_url=config.login_url or LOGIN_URL,
            ca_bundle=config.ca_bundle,
            verify=config.verify_tls,
            request_timeout=config.request_timeout,
            sync_timeout=config.sync_timeout,
        )
    raise BadInput(f"source {config.name!r}: {config.kind} sources are not supported")


def named_source(settings: Settings, name: str) -> SourceConfig:
    try:
        return settings.sources[name]
    except KeyError:
        known = ", ".join(sorted(settings.sources)) or "none configured"
        raise BadInput(f"no source named {name!r} in {settings.path} (known: {known})") from None


def fetch_for_sync(
    ctx: Context, source: Source, *, full: bool = False, progress: ProgressCallback | None = None
) -> Fetched:
    """The whole directory, or the source's changes since its last sync when it can give them."""
    if not isinstance(source, IncrementalSource):
        return Fetched(source.fetch(progress))
    previous: Previous | None = None
    if not full:
        with ctx.engine.connect() as conn:
            state = sync_state(conn, source.name).cursor
        if state is not None:

            def load() -> Snapshot:
                with ctx.engine.connect() as conn:
                    return cached_snapshot(conn, source.name)

            def lookup(user_ids: Collection[str], group_ids: Collection[str]) -> Snapshot:
                with ctx.engine.connect() as conn:
                    return cached_rows(conn, source.name, user_ids, group_ids)

            previous = Previous(state, load, lookup)
    return source.fetch_changes(previous, progress)


def _apply(
    conn: Connection,
    source: Source,
    fetched: Fetched,
    *,
    guard: DeletionGuard,
    write: bool,
    now: datetime | None = None,
) -> tuple[SyncDiff, int, int]:
    """Reconcile what was fetched; with the number of users and groups the source then has."""
    where = {"source_name": source.name, "source_kind": source.kind, "source_url": source.url}
    if fetched.delta is not None:
        return reconcile_delta(conn, fetched.delta, **where, guard=guard, write=write, now=now)
    snapshot = fetched.snapshot
    assert snapshot is not None
    diff = reconcile(conn, snapshot, **where, guard=guard, write=write, now=now)
    return diff, len(snapshot.users), len(snapshot.groups)


def refresh_after(ctx: Context, diff: SyncDiff) -> None:
    """What a committed sync that changed a lot leaves to do: fresh planner statistics."""
    if diff.changed_rows() >= BIG_CHANGE:
        refresh_directory_statistics(ctx.engine)


def run_sync(
    ctx: Context,
    source: Source,
    *,
    dry_run: bool = False,
    guard: DeletionGuard | None = None,
    progress: ProgressCallback | None = None,
    full: bool = False,
) -> SyncReport:
    """Fetch the whole directory or its changes, then reconcile them in one transaction (or just diff).

    An incremental source gives only what changed since its last sync, when it can; its new
    cursor is stored in the reconcile's transaction, so a failed sync keeps the old one.
    full=True ignores the cursor. Any failure leaves the cache exactly as it was; a failed
    or refused run is recorded.
    """
    guard = guard or DeletionGuard()
    if not dry_run:
        ctx.require_writable("syncing")
    started = ctx.clock()
    try:
        fetched = fetch_for_sync(ctx, source, full=full, progress=progress)
        if fetched.delta is not None:
            delta, warnings = fetched.delta, fetched.delta.warnings
            size = len(delta.users) + len(delta.users_removed) + len(delta.groups) + len(delta.groups_removed)
        else:
            assert fetched.snapshot is not None
            snapshot, warnings = fetched.snapshot, fetched.snapshot.warnings
            size = len(snapshot.users) + len(snapshot.groups)
        if progress:
            progress(Progress("reconcile", 0, 0, size))
        if dry_run:
            with ctx.engine.connect() as conn, conn.begin():
                diff, users, groups = _apply(
                    conn, source, fetched, guard=DeletionGuard(allow=True), write=False
                )
                conn.rollback()
            return SyncReport(
                source.name, diff, True, None, users, groups, warnings, fetched.mode, fetched.notes
            )
        with write_transaction(ctx.engine) as conn:
            diff, users, groups = _apply(conn, source, fetched, guard=guard, write=True, now=ctx.clock())
            if isinstance(source, IncrementalSource):
                store_sync_state(conn, source.name, fetched.state)
            run_id = record_run(
                conn,
                source_name=source.name,
                actor=ctx.actor,
                now=ctx.clock(),
                started_at=started,
                outcome="ok",
                diff=diff.to_dict(),
            )
        refresh_after(ctx, diff)
        return SyncReport(
            source.name, diff, False, run_id, users, groups, warnings, fetched.mode, fetched.notes
        )
    except SyncError as exc:
        # The one place a failed sync's text is made: a server may have echoed our token.
        exc.args = (scrub(str(exc)),)
        if not dry_run:
            outcome = "refused" if isinstance(exc, MassDeletionRefused) else "failed"
            with write_transaction(ctx.engine) as conn:
                record_run(
                    conn,
                    source_name=source.name,
                    actor=ctx.actor,
                    now=ctx.clock(),
                    started_at=started,
                    outcome=outcome,
                    error=str(exc),
                )
        raise
