"""plan, apply: a layout file as the desired grants of the folders and items it names."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers
    from groupwarden.domain.roles import Role
    from groupwarden.services.plan import PlannedChange


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "plan",
        help="the grants to add, change or remove so that what a layout file names holds what it says",
    )
    p.add_argument("file", help="a layout file (TOML, or JSON by its suffix), the import-layout format")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_plan)

    p = sub.add_parser("apply", help="make the changes plan lists (written through to Windmill when linked)")
    p.add_argument("file")
    p.add_argument("--yes", action="store_true", help="apply without asking (scripts)")
    p.add_argument(
        "--confirm-last-admin",
        action="store_true",
        help="allow the file to remove or lower the last admin of a folder",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_apply)


def _label(role: Role | None) -> str:
    return "none" if role is None else role.label


def _print_changes(changes: list[PlannedChange]) -> None:
    from groupwarden.cli.output import table

    table(
        ["PRINCIPAL", "TARGET", "BEFORE", "AFTER"],
        [
            [
                c.principal,
                c.target,
                c.before.label if c.before else "none",
                c.after.label if c.after else "none",
            ]
            for c in changes
        ],
    )


def cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from groupwarden.cli.output import emit_json, say
    from groupwarden.services.plan import plan_layout

    plan = plan_layout(context_of(args), Path(args.file))
    if args.json:
        emit_json(plan)
    elif not plan.changes:
        say("no changes: every target the file names already holds what it says")
    else:
        _print_changes(plan.changes)
        say(f"{len(plan.changes)} change(s); `groupwarden apply {args.file}` makes them")
    # A plan that finds changes is not a failure: scripts read the output, not the code.
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from pathlib import Path

    from groupwarden.cli.output import emit_json, say, warn
    from groupwarden.domain.errors import BadInput
    from groupwarden.services.plan import apply_layout, plan_layout

    ctx = context_of(args)
    path = Path(args.file)
    if not args.yes:
        if not sys.stdin.isatty():
            raise BadInput("apply changes grants: pass --yes to apply without a question")
        plan = plan_layout(ctx, path)
        if not plan.changes:
            say("no changes: every target the file names already holds what it says")
            return 0
        _print_changes(plan.changes)
        if input(f"apply these {len(plan.changes)} change(s)? [y/N] ").strip().lower() not in ("y", "yes"):
            say("nothing was changed")
            return 1
    report = apply_layout(ctx, path, confirm_last_admin=args.confirm_last_admin)
    if args.json:
        emit_json(report)
    else:
        for change in report.applied:
            say(f"applied: {change.describe()}")
        if report.refused is not None:
            warn(f"refused: {report.refused.change.describe()}: {report.refused.reason}")
            for change in report.not_attempted:
                warn(f"not attempted: {change.describe()}")
        if not report.applied and report.refused is None:
            say("no changes: every target the file names already holds what it says")
    return 0 if report.complete else 1
