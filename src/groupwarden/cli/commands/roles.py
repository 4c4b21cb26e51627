"""grant, revoke, grants: the roles principals hold on folders and items."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of, expected_of
from groupwarden.domain.errors import BadInput

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("grant", help="grant a role on a folder or item, or change it")
    p.add_argument("principal", help="g/<group> or u/<userName>")
    p.add_argument("target", help="WORKSPACE/FOLDER or WORKSPACE/f/FOLDER/ITEM")
    p.add_argument("role", help="viewer, writer or admin")
    _change_options(p)
    p.set_defaults(run=cmd_change)

    p = sub.add_parser("revoke", help="remove a principal's grant on a folder or item")
    p.add_argument("principal")
    p.add_argument("target")
    _change_options(p)
    p.set_defaults(run=cmd_change)

    p = sub.add_parser("grants", help="list the grants on a folder, or of a group")
    p.add_argument("target", nargs="?", help="WORKSPACE/FOLDER")
    p.add_argument("--group", metavar="GROUP", help="list this group's grants across all workspaces")
    p.add_argument("--orphaned", action="store_true", help="list grants naming removed groups or users")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_grants)


def _change_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--expect",
        metavar="ROLE",
        help="refuse unless the current role is ROLE (viewer, writer, admin or none):"
        " protects against changing a grant someone else changed meanwhile",
    )
    p.add_argument(
        "--confirm-last-admin",
        action="store_true",
        help="allow removing or lowering the last admin grant of a folder",
    )


def cmd_change(args: argparse.Namespace) -> int:
    """grant and revoke: the same options, one service function each."""
    from groupwarden.cli.output import say
    from groupwarden.domain.refs import WindmillPrincipal
    from groupwarden.domain.roles import Role
    from groupwarden.services import resolve
    from groupwarden.services.grants import grant, revoke

    ctx = context_of(args)
    expected = expected_of(args)
    # The target first: on a workspace linked to Windmill, the principal is named as
    # Windmill's ACLs hold it (resolve.principal_on).
    target = resolve.target(ctx, args.target)
    include_removed = args.command == "revoke"
    who = resolve.principal_on_target(ctx, args.principal, target, include_removed=include_removed)
    if args.command == "grant":
        role = Role.parse(args.role)
        change = grant(
            ctx,
            who,
            target,
            role,
            expected=expected,
            confirm_last_admin=args.confirm_last_admin,
        )
    else:
        change = revoke(
            ctx,
            who,
            target,
            expected=expected,
            confirm_last_admin=args.confirm_last_admin,
        )
    where = f" (applied to windmill {who.instance})" if isinstance(who, WindmillPrincipal) else ""
    say(change.describe() + (where if change.changed else ""))
    return 0


def cmd_grants(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, marked, table
    from groupwarden.services import grants, resolve

    chosen = sum(bool(x) for x in (args.target, args.group, args.orphaned))
    if chosen != 1:
        raise BadInput("name exactly one of: a TARGET, --group GROUP, --orphaned")
    ctx = context_of(args)
    if args.orphaned:
        rows = grants.orphaned_grants(ctx)
    elif args.group:
        rows = grants.group_grants(ctx, resolve.group(ctx, args.group, include_removed=True))
    else:
        rows = grants.folder_grants(ctx, resolve.target(ctx, args.target))
    if args.json:
        emit_json(rows)
        return 0
    if not rows:
        print("no orphaned grants" if args.orphaned else "no grants")
        return 0
    table(
        ["TARGET", "PRINCIPAL", "ROLE", "GRANTED BY", "GRANTED AT", "STATE"],
        [
            (
                g.target,
                marked(g.principal, g.lookalike),
                g.role,
                g.granted_by,
                f"{g.granted_at:%Y-%m-%d %H:%M}",
                "orphaned" if g.orphaned else "",
            )
            for g in rows
        ],
    )
    return 0
