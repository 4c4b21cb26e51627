"""Running a sync: fetch everything, reconcile in one transaction, record the run."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from groupwarden.config import Settings, SourceConfig
from groupwarden.domain.directory import Progress, ProgressCallback
from groupwarden.domain.errors import BadInput, MassDeletionRefused, SyncError
from groupwarden.services.audit import record_run
from groupwarden.services.context import Context
from groupwarden.services.reconcile import DeletionGuard, SyncDiff, reconcile
from groupwarden.sources.base import Source
from groupwarden.store.db import write_transaction


@dataclass(slots=True)
class SyncReport:
    source: str
    diff: SyncDiff
    dry_run: bool
    run_id: int | None = None
    users: int = 0
    groups: int = 0
    warnings: list[str] = field(default_factory=list)


def read_token(token_env: str | None, token_file: str | None) -> str | None:
    """The token from an environment variable or an owner-only file; never from anywhere else."""
    if token_env and token_file:
        raise BadInput("give the token by --token-env or by --token-file, not both")
    if token_env:
        value = os.environ.get(token_env)
        if not value:
            raise BadInput(f"environment variable {token_env} is not set or empty; it must hold the token")
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
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise BadInput(f"token file {path} is empty")
        return value
    return None


def build_source(config: SourceConfig) -> Source:
    """A client for a configured (or ad-hoc) source."""
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
        )
    raise BadInput(f"source {config.name!r}: {config.kind} sources are not supported yet")


def named_source(settings: Settings, name: str) -> SourceConfig:
    try:
        return settings.sources[name]
    except KeyError:
        known = ", ".join(sorted(settings.sources)) or "none configured"
        raise BadInput(f"no source named {name!r} in {settings.path} (known: {known})") from None


def run_sync(
    ctx: Context,
    source: Source,
    *,
    dry_run: bool = False,
    guard: DeletionGuard | None = None,
    progress: ProgressCallback | None = None,
) -> SyncReport:
    """Fetch the whole directory, then reconcile it in one transaction (or just diff it).

    Any failure leaves the cache exactly as it was; a failed or refused run is recorded.
    """
    guard = guard or DeletionGuard()
    if not dry_run:
        ctx.require_writable("syncing")
    started = ctx.clock()
    try:
        snapshot = source.fetch(progress)
        if progress:
            progress(Progress("reconcile", 0, 0, len(snapshot.users) + len(snapshot.groups)))
        if dry_run:
            with ctx.engine.connect() as conn, conn.begin():
                diff = reconcile(
                    conn,
                    snapshot,
                    source_name=source.name,
                    source_kind=source.kind,
                    source_url=source.url,
                    guard=DeletionGuard(allow=True),
                    write=False,
                )
                conn.rollback()
            return SyncReport(
                source.name,
                diff,
                True,
                None,
                len(snapshot.users),
                len(snapshot.groups),
                snapshot.warnings,
            )
        with write_transaction(ctx.engine) as conn:
            diff = reconcile(
                conn,
                snapshot,
                source_name=source.name,
                source_kind=source.kind,
                source_url=source.url,
                guard=guard,
                write=True,
                now=ctx.clock(),
            )
            run_id = record_run(
                conn,
                source_name=source.name,
                actor=ctx.actor,
                now=ctx.clock(),
                started_at=started,
                outcome="ok",
                diff=diff.to_dict(),
            )
        return SyncReport(
            source.name,
            diff,
            False,
            run_id,
            len(snapshot.users),
            len(snapshot.groups),
            snapshot.warnings,
        )
    except SyncError as exc:
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
