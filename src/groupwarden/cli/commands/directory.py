"""groups, members: the directory as the last sync left it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("groups", help="list instance groups")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_groups)

    p = sub.add_parser("members", help="list a group's members, nested ones included")
    p.add_argument("group", help="group name or upstream id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_members)


def cmd_groups(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, marked, table
    from groupwarden.services.directory import list_groups

    groups = list_groups(context_of(args))
    if args.json:
        emit_json(groups)
        return 0
    if not groups:
        print("no groups yet: run `groupwarden sync` first")
        return 0
    table(
        ["NAME", "SOURCE", "UPSTREAM ID", "DIRECT", "EFFECTIVE", "GRANTS"],
        [
            (
                marked(g.name, g.lookalike),
                g.source,
                g.upstream_id,
                g.direct_members,
                g.effective_members,
                g.grants,
            )
            for g in groups
        ],
    )
    return 0


def cmd_members(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, marked, table
    from groupwarden.services import resolve
    from groupwarden.services.directory import GroupMembers, group_lookalike, list_members

    ctx = context_of(args)
    group = resolve.group(ctx, args.group)
    members = list_members(ctx, group)
    if args.json:
        emit_json(GroupMembers(group, members, group_lookalike(ctx, group)))
        return 0
    table(
        ["USERNAME", "DISPLAY NAME", "EMAIL", "ACTIVE", "MEMBERSHIP"],
        [
            (
                marked(m.user_name, m.lookalike),
                m.display_name or "",
                m.email or "",
                "yes" if m.active else "no",
                m.via_text,
            )
            for m in members
        ],
    )
    return 0
