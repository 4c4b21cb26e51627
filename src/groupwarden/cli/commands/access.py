"""who-can, access: effective access, with the route that gives it."""

from __future__ import annotations

import argparse
from itertools import compress
from operator import add
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers
    from groupwarden.domain.roles import Role
    from groupwarden.services.access import AnswerColumns, WhoCan


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
    answer = who_can(ctx, resolve.target(ctx, args.target), minimum=minimum, prefetch=0)
    if answer.plain:
        # The whole answer goes from the database's columns to the writer, with no row object.
        (print_who_can_json if args.json else print_who_can_table)(answer, minimum, args.target)
        return 0
    if args.json:
        emit_json(answer)
        return 0
    if not answer:
        print(f"nobody has {minimum} or more on {args.target}")
        return 0
    table(
        ["USERNAME", "ROLE", "ACTIVE", "WHY"],
        [
            (marked(a.user_name, a.lookalike), a.role, "yes" if a.active else "no", a.explanation)
            for a in answer
        ],
    )
    return 0


def print_who_can_table(answer: WhoCan, minimum: Role, target: str) -> None:
    """who-can's table, as cmd_who_can prints it from UserAccess rows."""
    from groupwarden.cli.output import marked, table_by_key

    found = answer.columns(display_names=False)
    if not found.ranks:
        print(f"nobody has {minimum} or more on {target}")
        return
    names = found.user_names
    if notes := found.lookalikes:
        names = list(names)
        for i in compress(range(len(names)), map(notes.__contains__, names)):
            names[i] = marked(names[i], notes[names[i]])
    rest: dict[int, tuple[str, str, str]] = {}
    for rank in set(found.ranks):
        role, _reason, why = answer.why(rank)
        rest[rank * 2] = (str(role), "no", why)
        rest[rank * 2 + 1] = (str(role), "yes", why)
    table_by_key(["USERNAME", "ROLE", "ACTIVE", "WHY"], names, _row_keys(found), rest)


def _row_keys(found: AnswerColumns) -> list[int]:
    """Each row's rank * 2 + active: all a row's cells but its user's own follow from it."""
    return list(map(add, map((2).__mul__, found.ranks), found.active))


def print_who_can_json(answer: WhoCan, minimum: Role, target: str) -> None:
    """who-can's --json, as emit_json prints the UserAccess rows: one template per rank and
    activity, made from a UserAccess's own to_dict(), filled with each user's fields."""
    from groupwarden.cli.output import emit_json_filled, json_holes, json_template, json_values
    from groupwarden.services.access import UserAccess

    found = answer.columns(display_names=True)
    assert found.display_names is not None
    holes = json_holes(3)
    # Keyed as _row_keys() keys the rows.
    templates: dict[int, list[str]] = {}
    for rank in set(found.ranks):
        role, reason, explanation = answer.why(rank)
        for active in (True, False):
            sample = UserAccess(0, holes[0], holes[1], active, role, reason, explanation, holes[2])
            templates[rank * 2 + active] = json_template(sample, holes)
    notes = found.lookalikes
    fields = [
        json_values(found.user_names),
        json_values(found.display_names),
        json_values(list(map(notes.get, found.user_names))) if notes else ["null"] * len(found.ranks),
    ]
    emit_json_filled(templates, _row_keys(found), fields)


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
