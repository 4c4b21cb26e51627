"""What several commands share: settings and the store from the global options, progress.

Light to import: the heavy modules are imported inside the functions, so that
`groupwarden --help` starts in a blink.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from groupwarden.config import Settings
    from groupwarden.services.context import Context
    from groupwarden.services.grants import Expected
    from groupwarden.services.reconcile import SyncDiff

    #: The root parser's subcommands, as each area module receives them to add its own.
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"groupwarden: error: {message}\n")
        raise SystemExit(2)


# The settings a flag may give; a flag left out gives nothing, so the next layer decides.
SETTING_FLAGS = (
    "db",
    "read_only",
    "trust_db_permissions",
    "page_size",
    "page_concurrency",
    "request_timeout",
    "sync_timeout",
    "insecure",
    "ca_bundle",
)


def settings_of(args: argparse.Namespace) -> Settings:
    from groupwarden.config import load_settings

    given = {name: getattr(args, name, None) for name in SETTING_FLAGS}
    # A switch that is off was not given: it must not hide the variable or the config file.
    flags = {name: value for name, value in given.items() if value is not None and value is not False}
    return load_settings(args.config, flags)


def context_of(args: argparse.Namespace, settings: Settings | None = None) -> Context:
    from groupwarden.services.context import Context

    settings = settings or settings_of(args)
    return Context.open(
        settings.db, read_only=settings.read_only, trust_db_permissions=settings.trust_db_permissions
    )


def expected_of(args: argparse.Namespace) -> Expected:
    from groupwarden.domain.roles import Role
    from groupwarden.services.grants import ANY

    if args.expect is None:
        return ANY
    if args.expect.strip().lower() == "none":
        return None
    return Role.parse(args.expect)


def progress_printer() -> Callable[..., None] | None:
    """Progress on stderr, one line rewritten in place; nothing when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(progress: object) -> None:
        from groupwarden.domain.directory import Progress

        assert isinstance(progress, Progress)
        total = f"/{progress.total}" if progress.total is not None else ""
        sys.stderr.write(f"\r{progress.phase}: {progress.items}{total} ({progress.pages} pages)\x1b[K")
        if progress.phase == "reconcile":
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def print_diff_details(diff: SyncDiff, indent: str = "  ") -> None:
    from groupwarden.cli.output import say

    shown = 0

    def line(text: str) -> None:
        nonlocal shown
        if shown < 40:
            say(indent + text)
        shown += 1

    for old, new in diff.groups_renamed:
        line(f"renamed group {old} -> {new}")
    for name in diff.groups_added:
        line(f"added group {name}")
    for name in diff.groups_removed:
        line(f"removed group {name}")
    for group, names in diff.members_added.items():
        line(f"{group}: +{', '.join(names[:10])}{' …' if len(names) > 10 else ''}")
    for group, names in diff.members_removed.items():
        line(f"{group}: -{', '.join(names[:10])}{' …' if len(names) > 10 else ''}")
    for grant_text in diff.orphaned_grants:
        line(f"orphaned grant: {grant_text}")
    if shown > 40:
        say(f"{indent}… and {shown - 40} more lines (see --json)")
