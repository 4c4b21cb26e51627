"""audit, backup, restore, export: the history, and the store as a file."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of, print_diff_details
from groupwarden.domain.errors import BadInput, GroupwardenError

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("audit", help="role changes and sync runs, newest first")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N events (0: all)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verify", action="store_true", help="check the audit chain; exit 1 if broken")
    p.set_defaults(run=cmd_audit)

    p = sub.add_parser("backup", help="dump the whole store, audit history included, to a portable JSON file")
    p.add_argument("file")
    p.set_defaults(run=cmd_backup)

    p = sub.add_parser("restore", help="load a backup into an empty store (SQLite or PostgreSQL)")
    p.add_argument("file")
    p.set_defaults(run=cmd_restore)

    p = sub.add_parser("export", help="export the whole cache")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(run=cmd_export)


def cmd_audit(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, say
    from groupwarden.services.audit import ChangeEvent, audit_log, verify_chain
    from groupwarden.services.reconcile import SyncDiff

    if args.verify:
        check = verify_chain(context_of(args))
        if check.broken is not None:
            raise GroupwardenError(f"audit chain broken at {check.broken}")
        say(f"audit chain intact: {check.events} events")
        return 0
    if not 0 <= args.limit <= 1_000_000_000:
        raise BadInput("--limit must be 0 (all) or a number of events up to 1,000,000,000")
    events = audit_log(context_of(args), args.limit or None)
    if args.json:
        emit_json(events)
        return 0
    if not events:
        print("no role changes or sync runs recorded yet")
        return 0
    for e in events:
        if isinstance(e, ChangeEvent):
            where = f"{e.actor}@{e.host}" + (f" from {e.address}" if e.address else "")
            where += f" (database role {e.db_role})" if e.db_role else ""
            say(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.action:<7} {e.describe()}  by {where}")
        else:
            head = f"{e.finished_at:%Y-%m-%d %H:%M:%S}  sync    {e.source}: {e.outcome}"
            if e.error:
                say(f"{head}: {e.error}")
            else:
                diff = SyncDiff.from_dict(e.diff)
                say(f"{head}: {diff.summary()}  by {e.actor}")
                print_diff_details(diff, indent="    ")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from groupwarden.services.backup import write_backup

    counts = write_backup(context_of(args), Path(args.file))
    print(f"backed up to {args.file}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from groupwarden.services.backup import restore

    counts = restore(context_of(args), Path(args.file))
    print(f"restored from {args.file}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from groupwarden.services.export import export_csv, export_json, save_export

    ctx = context_of(args)
    data = export_json(ctx) if args.format == "json" else export_csv(ctx)
    if args.output:
        from pathlib import Path

        save_export(Path(args.output), data)
        print(f"exported to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(data)
    return 0
