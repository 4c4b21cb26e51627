"""who-can, access: effective access, with the route that gives it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("who-can", help="every user with access to a folder or item, with role and why")
    p.add_argument("target")
    p.add_argument("--min", default="viewer", metavar="ROLE", help="only users with at least this role")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_who_can)

    p = sub.add_parser("access", help="every folder a user reaches, with role and why")
    p.add_argument("user", help="userName (or upstream id)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_access)


def cmd_who_can(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, marked, table
    from groupwarden.domain.roles import Role
    from groupwarden.services import resolve
    from groupwarden.services.access import who_can

    minimum = Role.parse(args.min)
    ctx = context_of(args)
    rows = who_can(ctx, resolve.target(ctx, args.target), minimum=minimum)
    if args.json:
        emit_json(rows)
        return 0
    if not rows:
        print(f"nobody has {minimum} or more on {args.target}")
        return 0
    table(
        ["USERNAME", "ROLE", "ACTIVE", "WHY"],
        [
            (marked(a.user_name, a.lookalike), a.role, "yes" if a.active else "no", a.explanation)
            for a in rows
        ],
    )
    return 0


def cmd_access(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, marked, say, table
    from groupwarden.services import resolve
    from groupwarden.services.access import UserReach, access_of
    from groupwarden.services.directory import user_lookalike

    ctx = context_of(args)
    user, rows = access_of(ctx, resolve.user(ctx, args.user))
    lookalike = user_lookalike(ctx, user)
    if args.json:
        emit_json(UserReach(user, rows, lookalike))
        return 0
    if not rows:
        say(f"{marked(user, lookalike)} reaches no folder")
        return 0
    if lookalike is not None:
        say(f"user {marked(user, lookalike)}")
    table(["TARGET", "ROLE", "WHY"], [(a.target, a.role, a.explanation) for a in rows])
    return 0
