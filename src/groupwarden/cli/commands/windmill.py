"""windmill pull, drift, list: a linked Windmill instance read into the store, and what it gets wrong."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from groupwarden.cli.common import Parser, context_of, progress_printer, settings_of
from groupwarden.domain.errors import BadInput, Hint, Remedy

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers
    from groupwarden.config import Settings
    from groupwarden.services.windmill import DriftReport, WindmillDiff, WindmillLink


def register(sub: Subparsers) -> None:
    p = sub.add_parser("windmill", help="pull a Windmill instance's workspaces and ACLs; find its drift")
    wsub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)

    w = wsub.add_parser("pull", help="read a Windmill instance into the store (all or nothing)")
    w.add_argument("instance", nargs="?", metavar="NAME", help="a [windmill.NAME] of the config file")
    w.add_argument("--url", metavar="URL", help="the instance's base URL (ad-hoc link)")
    w.add_argument("--token-env", metavar="VAR", help="environment variable holding the token")
    w.add_argument("--token-file", metavar="FILE", help="file holding the token (must be owner-only)")
    w.add_argument("--ca-bundle", metavar="FILE", help="CA certificates to verify the server with")
    w.add_argument("--name", help="the instance's name in the store (default: default)")
    w.add_argument("--dry-run", action="store_true", help="print the diff and change nothing")
    w.add_argument("--json", action="store_true", help="print the diff as JSON")
    w.set_defaults(run=cmd_pull)

    w = wsub.add_parser("drift", help="what Windmill gets wrong: dangling principals, drift, auto-add")
    w.add_argument("instance", nargs="?", metavar="NAME", help="a linked instance (default: default)")
    w.add_argument("--json", action="store_true")
    w.set_defaults(run=cmd_drift)

    w = wsub.add_parser("list", help="linked Windmill instances")
    w.set_defaults(run=cmd_list)


def _link(args: argparse.Namespace, settings: Settings) -> WindmillLink:
    """The instance to pull: a config file's section, or the ad-hoc flags; flags beat the file."""
    from groupwarden.config import checked_url
    from groupwarden.services.windmill import DEFAULT_NAME, WindmillLink, check_instance_name

    if args.instance and args.name and args.instance != args.name:
        raise BadInput(f"the instance is named twice, {args.instance!r} and --name {args.name!r}; name one")
    name = check_instance_name(args.instance or args.name or DEFAULT_NAME)
    if args.token_env and args.token_file:
        raise BadInput("give --token-env or --token-file, not both", hint=Hint(Remedy.GIVE_TOKEN))
    if args.url:
        url = checked_url("--url", args.url, insecure=settings.insecure)
        token_env, token_file, ca_bundle = args.token_env, args.token_file, settings.ca_bundle
    else:
        config = settings.windmill.get(name)
        if config is None:
            raise BadInput(
                f"no [windmill.{name}] section in the config file; give --url URL with --token-env VAR"
                " (or --token-file FILE)"
            )
        url = config.url
        given = args.token_env or args.token_file
        token_env = args.token_env if given else config.token_env
        token_file = args.token_file if given else config.token_file
        ca_bundle = args.ca_bundle or config.ca_bundle
    if not (token_env or token_file):
        raise BadInput(f"windmill {name}: no token given", hint=Hint(Remedy.GIVE_TOKEN))
    return WindmillLink(name, url, token_env=token_env, token_file=token_file, ca_bundle=ca_bundle)


def cmd_pull(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, say, warn
    from groupwarden.services.windmill import pull

    settings = settings_of(args)
    link = _link(args, settings)
    ctx = context_of(args, settings)
    report = pull(ctx, link, progress=progress_printer(), dry_run=args.dry_run)
    if report.archived:
        warn(f"note: archived, not linked: {', '.join(report.archived)}")
    if args.json:
        emit_json(report.diff)
        return 0
    prefix = "dry run, nothing written: " if report.dry_run else ""
    say(
        f"{prefix}windmill {report.name} ({report.url}): {report.workspaces} workspaces,"
        f" {report.folders} folders, {report.items} items, {report.acl_entries} ACL entries,"
        f" {report.instance_groups} instance groups; {diff_summary(report.diff)}"
    )
    return 0


def diff_summary(diff: WindmillDiff) -> str:
    """The counts of what a pull changed, as one line; 'no changes' when nothing did."""
    counts = {name: len(value) for name, value in diff.to_dict().items() if value}
    if not counts:
        return "no changes"
    return ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in counts.items())


def cmd_drift(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json
    from groupwarden.services.windmill import DEFAULT_NAME, check_instance_name, drift, list_instances

    ctx = context_of(args)
    name = args.instance
    if name is None:
        # With one instance linked, that is the one meant; otherwise the default name.
        linked = list_instances(ctx)
        name = linked[0].name if len(linked) == 1 else DEFAULT_NAME
    report = drift(ctx, check_instance_name(name))
    if args.json:
        emit_json(report)
        return 0
    print_drift(report)
    return 0


def print_drift(report: DriftReport) -> None:
    from groupwarden.cli.output import say

    say(f"windmill {report.instance}: drift")
    say(f"dangling principals ({len(report.dangling)}): in ACLs, matching no instance or workspace group")
    for e in report.dangling:
        say(f"  {e.principal} {e.role} on {e.target}")
    say(f"membership drift ({len(report.membership_drift)}): Windmill's emails against the IdP group's")
    for d in report.membership_drift:
        say(f"  g/{d.group} (IdP g/{d.idp_group}, {d.idp_source})")
        if d.missing:
            say(f"    missing in Windmill: {', '.join(d.missing)}")
        if d.extra:
            say(f"    extra in Windmill: {', '.join(d.extra)}")
    say(f"unmatched groups ({len(report.unmatched)})")
    for u in report.unmatched:
        side = "in Windmill, no IdP group" if u.side == "windmill" else "in the IdP, not in Windmill"
        candidates = f" (candidates: {', '.join(u.candidates)})" if u.candidates else ""
        say(f"  g/{u.group}: {side}; {u.detail}{candidates}")
    say(f"unknown users ({len(report.unknown_users)}): u/ principals that are not users of the workspace")
    for e in report.unknown_users:
        say(f"  {e.principal} {e.role} on {e.target}")
    say(f"auto-add ({len(report.auto_add)})")
    for a in report.auto_add:
        exists = "" if a.group_exists else " (no such instance group)"
        say(f"  {a.workspace}: g/{a.group} adds its members as {a.role}{exists}")
        for m in a.members:
            now = f"; now {m.username} ({m.current_role})" if m.username else "; not a user yet"
            say(f"    {m.email}: {m.role}{now}")


def cmd_list(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import table
    from groupwarden.services.windmill import list_instances

    rows = list_instances(context_of(args))
    if not rows:
        print("no Windmill instance linked yet: run `groupwarden windmill pull`")
        return 0
    table(
        ["NAME", "URL", "STAND-IN", "LAST PULL", "WORKSPACES"],
        [
            (
                r.name,
                r.url,
                "yes" if r.standin else "",
                f"{r.last_pull_at:%Y-%m-%d %H:%M}" if r.last_pull_at else "never",
                r.workspaces,
            )
            for r in rows
        ],
    )
    return 0
