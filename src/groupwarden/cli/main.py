"""groupwarden's command line. Each command parses its input and calls one service function.

Imports of SQLAlchemy, httpx, the SCIM models and Textual happen inside the commands,
so `groupwarden --help` starts in a blink.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from groupwarden import __version__
from groupwarden.domain.errors import BadInput, GroupwardenError

if TYPE_CHECKING:
    from groupwarden.config import Settings, SourceConfig
    from groupwarden.domain.access import Reason
    from groupwarden.services.context import Context
    from groupwarden.services.grants import Expected

EPILOG = """\
principals: g/<group> (a group, by name or upstream id), u/<userName> (a user)
targets:    WORKSPACE/FOLDER, or WORKSPACE/f/FOLDER/ITEM for one item
roles:      viewer < writer < admin

Without a command, groupwarden opens the terminal UI on the configured database.

Every setting has one precedence: flag > environment > config file > default.
Environment: GROUPWARDEN_CONFIG (config file), GROUPWARDEN_DB (database URL or path),
GROUPWARDEN_READ_ONLY=1 (refuse every change), GROUPWARDEN_TRUST_DB_PERMISSIONS=1,
GROUPWARDEN_REQUEST_TIMEOUT and GROUPWARDEN_SYNC_TIMEOUT (seconds), GROUPWARDEN_PAGE_SIZE,
GROUPWARDEN_CA_BUNDLE, GROUPWARDEN_INSECURE=1; each is also a key of the config file.
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"groupwarden: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="groupwarden",
        description="See and steer identity-provider instance groups and the roles they hold on"
        " workspace folders.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"groupwarden {__version__}")
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database URL or SQLite path (default: GROUPWARDEN_DB,"
        " then db in the config file, then a file in the user data directory)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: GROUPWARDEN_CONFIG, then config.toml in the user config directory)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="refuse every change, and open a SQLite database read-only (creating and migrating nothing)",
    )
    parser.add_argument(
        "--trust-db-permissions",
        action="store_true",
        help="use a SQLite database that other users could write or own (refused by default)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser(
        "demo", help="start a local SCIM server with a demo organisation, sync it, open the UI"
    )
    p.add_argument("--no-tui", action="store_true", help="print a summary and exit instead of opening the UI")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("sync", help="sync users, groups and memberships from an identity provider")
    p.add_argument("source", nargs="?", metavar="NAME", help="a source named in the config file")
    p.add_argument("--scim", metavar="URL", help="a SCIM 2.0 base URL (ad-hoc source)")
    p.add_argument("--okta", metavar="URL", help="an Okta org URL, like https://ORG.okta.com (ad-hoc source)")
    p.add_argument(
        "--graph", metavar="TENANT_ID", help="a Microsoft Entra tenant, read through Graph (ad-hoc)"
    )
    p.add_argument("--client-id", metavar="ID", help="Graph: the app registration's client id")
    p.add_argument(
        "--client-secret-env", metavar="VAR", help="Graph: environment variable holding the client secret"
    )
    p.add_argument(
        "--graph-url", metavar="URL", help="Graph: API base URL (default https://graph.microsoft.com)"
    )
    p.add_argument(
        "--login-url",
        metavar="URL",
        help="Graph: token endpoint base (default https://login.microsoftonline.com)",
    )
    p.add_argument(
        "--full", action="store_true", help="a full sync, even where an incremental one is possible"
    )
    p.add_argument("--token-env", metavar="VAR", help="environment variable holding the token")
    p.add_argument("--token-file", metavar="FILE", help="file holding the token (must be owner-only)")
    p.add_argument("--ca-bundle", metavar="FILE", help="CA certificates to verify the server with")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates, and allow plain http to any host (never in production)",
    )
    p.add_argument("--name", help="record an ad-hoc source under this name (default: its URL)")
    p.add_argument("--page-size", type=int, metavar="N", help="resources per page (default 500)")
    p.add_argument(
        "--request-timeout",
        type=float,
        metavar="SECONDS",
        help="deadline of each HTTP request, start to last byte (default 60)",
    )
    p.add_argument(
        "--sync-timeout", type=float, metavar="SECONDS", help="deadline of the whole sync (default 1800)"
    )
    p.add_argument("--dry-run", action="store_true", help="print the diff and change nothing")
    p.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow a sync that removes more than the configured share of groups, users or memberships",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=cmd_sync)

    p = sub.add_parser("groups", help="list instance groups")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_groups)

    p = sub.add_parser("members", help="list a group's members, nested ones included")
    p.add_argument("group", help="group name or upstream id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_members)

    p = sub.add_parser("workspace", help="manage workspaces")
    wsub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    w = wsub.add_parser("add", help="add a workspace (or rename it)")
    w.add_argument("id")
    w.add_argument("--name", metavar="TEXT")
    w.set_defaults(run=cmd_workspace_add)
    w = wsub.add_parser("list", help="list workspaces and their folders")
    w.add_argument("--json", action="store_true")
    w.set_defaults(run=cmd_workspace_list)

    p = sub.add_parser("folder", help="manage folders")
    fsub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    f = fsub.add_parser("add", help="add a folder to a workspace")
    f.add_argument("workspace")
    f.add_argument("folder")
    f.add_argument("--summary", metavar="TEXT")
    f.set_defaults(run=cmd_folder_add)

    p = sub.add_parser("import-layout", help="create workspaces, folders and grants from a TOML or JSON file")
    p.add_argument("file")
    p.set_defaults(run=cmd_import_layout)

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

    p = sub.add_parser("who-can", help="every user with access to a folder or item, with role and why")
    p.add_argument("target")
    p.add_argument("--min", default="viewer", metavar="ROLE", help="only users with at least this role")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_who_can)

    p = sub.add_parser("access", help="every folder a user reaches, with role and why")
    p.add_argument("user", help="userName (or upstream id)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_access)

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
    return parser


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


# The settings a flag may give; a flag left out gives nothing, so the next layer decides.
SETTING_FLAGS = (
    "db",
    "read_only",
    "trust_db_permissions",
    "page_size",
    "request_timeout",
    "sync_timeout",
    "insecure",
    "ca_bundle",
)


def _settings(args: argparse.Namespace) -> Settings:
    from groupwarden.config import load_settings

    given = {name: getattr(args, name, None) for name in SETTING_FLAGS}
    # A switch that is off was not given: it must not hide the variable or the config file.
    flags = {name: value for name, value in given.items() if value is not None and value is not False}
    return load_settings(args.config, flags)


def _context(args: argparse.Namespace, settings: Settings | None = None) -> Context:
    from groupwarden.services.context import Context

    settings = settings or _settings(args)
    return Context.open(
        settings.db, read_only=settings.read_only, trust_db_permissions=settings.trust_db_permissions
    )


def _expected(args: argparse.Namespace) -> Expected:
    from groupwarden.domain.roles import Role
    from groupwarden.services.grants import ANY

    if args.expect is None:
        return ANY
    if args.expect.strip().lower() == "none":
        return None
    return Role.parse(args.expect)


def cmd_groups(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, table
    from groupwarden.services.directory import list_groups

    groups = list_groups(_context(args))
    if args.json:
        emit_json(
            [
                {
                    "id": g.upstream_id,
                    "name": g.name,
                    "source": g.source,
                    "description": g.description,
                    "kind": g.kind,
                    "direct_members": g.direct_members,
                    "effective_members": g.effective_members,
                    "nested_groups": g.nested_groups,
                    "grants": g.grants,
                    "last_synced": g.last_synced.isoformat() if g.last_synced else None,
                }
                for g in groups
            ]
        )
        return 0
    if not groups:
        print("no groups yet: run `groupwarden sync` first")
        return 0
    table(
        ["NAME", "SOURCE", "UPSTREAM ID", "DIRECT", "EFFECTIVE", "GRANTS"],
        [(g.name, g.source, g.upstream_id, g.direct_members, g.effective_members, g.grants) for g in groups],
    )
    return 0


def cmd_members(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, table
    from groupwarden.services import resolve
    from groupwarden.services.directory import list_members

    ctx = _context(args)
    group = resolve.group(ctx, args.group)
    members = list_members(ctx, group)
    if args.json:
        emit_json(
            {
                "group": {"id": group.upstream_id, "name": group.name, "source": group.source},
                "members": [
                    {
                        "user_name": m.user_name,
                        "display_name": m.display_name,
                        "email": m.email,
                        "active": m.active,
                        "via": list(m.via) if m.via else None,
                    }
                    for m in members
                ],
            }
        )
        return 0
    table(
        ["USERNAME", "DISPLAY NAME", "EMAIL", "ACTIVE", "MEMBERSHIP"],
        [
            (m.user_name, m.display_name or "", m.email or "", "yes" if m.active else "no", m.via_text)
            for m in members
        ],
    )
    return 0


def cmd_workspace_add(args: argparse.Namespace) -> int:
    from groupwarden.services.layout import add_workspace

    created = add_workspace(_context(args), args.id, args.name)
    print(f"workspace {args.id} {'added' if created else 'already exists; updated'}")
    return 0


def cmd_workspace_list(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, table
    from groupwarden.services.layout import list_workspaces

    spaces = list_workspaces(_context(args))
    if args.json:
        emit_json(
            [
                {
                    "id": w.id,
                    "name": w.name,
                    "folders": [
                        {"name": f.name, "summary": f.summary, "grants": f.grants} for f in w.folders
                    ],
                }
                for w in spaces
            ]
        )
        return 0
    table(
        ["TARGET", "GRANTS", "SUMMARY"], [(f.target, f.grants, f.summary) for w in spaces for f in w.folders]
    )
    return 0


def cmd_folder_add(args: argparse.Namespace) -> int:
    from groupwarden.services.layout import add_folder

    created = add_folder(_context(args), args.workspace, args.folder, args.summary)
    print(f"folder {args.workspace}/{args.folder} {'added' if created else 'already exists; updated'}")
    return 0


def cmd_import_layout(args: argparse.Namespace) -> int:
    from pathlib import Path

    from groupwarden.services.layout import import_layout

    result = import_layout(_context(args), Path(args.file))
    print(result.summary())
    return 0


def cmd_change(args: argparse.Namespace) -> int:
    """grant and revoke: the same options, one service function each."""
    from groupwarden.cli.output import say
    from groupwarden.domain.roles import Role
    from groupwarden.services import resolve
    from groupwarden.services.grants import grant, revoke

    ctx = _context(args)
    expected = _expected(args)
    if args.command == "grant":
        role = Role.parse(args.role)
        change = grant(
            ctx,
            resolve.principal(ctx, args.principal),
            resolve.target(ctx, args.target),
            role,
            expected=expected,
            confirm_last_admin=args.confirm_last_admin,
        )
    else:
        change = revoke(
            ctx,
            resolve.principal(ctx, args.principal, include_removed=True),
            resolve.target(ctx, args.target),
            expected=expected,
            confirm_last_admin=args.confirm_last_admin,
        )
    say(change.describe())
    return 0


def cmd_grants(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, table
    from groupwarden.services import grants, resolve

    chosen = sum(bool(x) for x in (args.target, args.group, args.orphaned))
    if chosen != 1:
        raise BadInput("name exactly one of: a TARGET, --group GROUP, --orphaned")
    ctx = _context(args)
    if args.orphaned:
        rows = grants.orphaned_grants(ctx)
    elif args.group:
        rows = grants.group_grants(ctx, resolve.group(ctx, args.group, include_removed=True))
    else:
        rows = grants.folder_grants(ctx, resolve.target(ctx, args.target))
    if args.json:
        emit_json(
            [
                {
                    "target": g.target,
                    "principal": g.principal,
                    "role": g.role.label,
                    "granted_by": g.granted_by,
                    "granted_at": g.granted_at.isoformat(),
                    "orphaned": g.orphaned,
                }
                for g in rows
            ]
        )
        return 0
    if not rows:
        print("no orphaned grants" if args.orphaned else "no grants")
        return 0
    table(
        ["TARGET", "PRINCIPAL", "ROLE", "GRANTED BY", "GRANTED AT", "STATE"],
        [
            (
                g.target,
                g.principal,
                g.role,
                g.granted_by,
                f"{g.granted_at:%Y-%m-%d %H:%M}",
                "orphaned" if g.orphaned else "",
            )
            for g in rows
        ],
    )
    return 0


def cmd_who_can(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, table
    from groupwarden.domain.roles import Role
    from groupwarden.services import resolve
    from groupwarden.services.access import who_can

    minimum = Role.parse(args.min)
    ctx = _context(args)
    rows = who_can(ctx, resolve.target(ctx, args.target), minimum=minimum)
    if args.json:
        emit_json(
            [
                {
                    "user_name": a.user_name,
                    "display_name": a.display_name,
                    "active": a.active,
                    **_reason_json(a.reason),
                }
                for a in rows
            ]
        )
        return 0
    if not rows:
        print(f"nobody has {minimum} or more on {args.target}")
        return 0
    table(
        ["USERNAME", "ROLE", "ACTIVE", "WHY"],
        [(a.user_name, a.role, "yes" if a.active else "no", a.explanation) for a in rows],
    )
    return 0


def _reason_json(reason: Reason) -> dict[str, object]:
    """A role and the route that gave it, as who-can --json and access --json print it."""
    return {
        "role": reason.role.label,
        "explanation": reason.explain(),
        "via": reason.principal,
        "chain": [f"g/{n}" for n in reason.chain],
        "granted_on": reason.granted_on,
    }


def cmd_access(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, say, table
    from groupwarden.services import resolve
    from groupwarden.services.access import access_of

    ctx = _context(args)
    user, rows = access_of(ctx, resolve.user(ctx, args.user))
    if args.json:
        emit_json(
            {
                "user_name": user,
                "access": [{"target": a.target, **_reason_json(a.reason)} for a in rows],
            }
        )
        return 0
    if not rows:
        say(f"{user} reaches no folder")
        return 0
    table(["TARGET", "ROLE", "WHY"], [(a.target, a.role, a.explanation) for a in rows])
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, say
    from groupwarden.services.audit import ChangeEvent, audit_log, verify_chain
    from groupwarden.services.reconcile import SyncDiff

    if args.verify:
        check = verify_chain(_context(args))
        if check.broken is not None:
            raise GroupwardenError(f"audit chain broken at {check.broken}")
        say(f"audit chain intact: {check.events} events")
        return 0
    if not 0 <= args.limit <= 1_000_000_000:
        raise BadInput("--limit must be 0 (all) or a number of events up to 1,000,000,000")
    events = audit_log(_context(args), args.limit or None)
    if args.json:
        emit_json([e.to_dict() for e in events])
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
                _print_diff_details(diff, indent="    ")
    return 0


def _print_diff_details(diff: object, indent: str = "  ") -> None:
    from groupwarden.cli.output import say
    from groupwarden.services.reconcile import SyncDiff

    assert isinstance(diff, SyncDiff)
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


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from groupwarden.services.backup import write_backup

    counts = write_backup(_context(args), Path(args.file))
    print(f"backed up to {args.file}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from groupwarden.services.backup import restore

    counts = restore(_context(args), Path(args.file))
    print(f"restored from {args.file}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from groupwarden.services.export import export_csv, export_json, save_export

    ctx = _context(args)
    data = export_json(ctx) if args.format == "json" else export_csv(ctx)
    if args.output:
        from pathlib import Path

        save_export(Path(args.output), data)
        print(f"exported to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(data)
    return 0


def _http_url(option: str, value: str, settings: Settings) -> str:
    from groupwarden.config import checked_url

    return checked_url(option, value, insecure=settings.insecure)


def _source_config(args: argparse.Namespace, settings: Settings) -> SourceConfig:
    from groupwarden.config import SourceConfig
    from groupwarden.services.sync import named_source

    adhoc = [
        option
        for option, value in (("--scim", args.scim), ("--okta", args.okta), ("--graph", args.graph))
        if value
    ]
    if len(adhoc) > 1:
        raise BadInput(f"give one of --scim, --okta and --graph, not {' and '.join(adhoc)}")
    if args.source and adhoc:
        raise BadInput(f"name a configured source or give {adhoc[0]}, not both")
    if args.source:
        config = named_source(settings, args.source)
        if args.token_env or args.token_file:
            config.token_env, config.token_file = args.token_env, args.token_file
        if args.client_secret_env:
            config.client_secret_env, config.client_secret_file = args.client_secret_env, None
        return config
    if not adhoc:
        if len(settings.sources) == 1:
            return next(iter(settings.sources.values()))
        raise BadInput(
            "name a source from the config file, or give --scim URL, --okta URL or --graph TENANT"
            " with --token-env VAR"
        )
    # The source settings as flags, variables and the file's top level resolved them.
    common = {
        "token_env": args.token_env,
        "token_file": args.token_file,
        "ca_bundle": settings.ca_bundle,
        "verify_tls": not settings.insecure,
        "page_size": settings.page_size,
        "request_timeout": settings.request_timeout,
        "sync_timeout": settings.sync_timeout,
    }
    if args.graph:
        if not (args.token_env or args.token_file) and not (args.client_id and args.client_secret_env):
            raise BadInput(
                "--graph needs --client-id ID with --client-secret-env VAR,"
                " or --token-env VAR for a ready bearer token"
            )
        graph_url = _http_url("--graph-url", args.graph_url or "https://graph.microsoft.com", settings)
        return SourceConfig(
            name=args.name or f"graph:{args.graph}",
            kind="graph",
            url=graph_url,
            tenant=args.graph,
            client_id=args.client_id,
            client_secret_env=args.client_secret_env,
            login_url=_http_url("--login-url", args.login_url, settings) if args.login_url else None,
            **common,
        )
    kind, option, value = ("okta", "--okta", args.okta) if args.okta else ("scim", "--scim", args.scim)
    url = _http_url(option, value, settings)
    return SourceConfig(name=args.name or url, kind=kind, url=url, **common)


def cmd_sync(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, say, warn
    from groupwarden.services.reconcile import DeletionGuard
    from groupwarden.services.sync import build_source, run_sync

    settings = _settings(args)
    config = _source_config(args, settings)
    source = build_source(config)
    ctx = _context(args, settings)
    guard = DeletionGuard(
        allow=args.allow_mass_delete,
        max_fraction=settings.max_delete_fraction,
        floor=settings.max_delete_floor,
    )
    report = run_sync(
        ctx, source, dry_run=args.dry_run, guard=guard, progress=_progress_printer(), full=args.full
    )
    for warning in report.warnings:
        warn(f"warning: {warning}")
    for note in report.notes:
        warn(f"note: {note}")
    if args.json:
        emit_json(
            {
                "source": report.source,
                "dry_run": report.dry_run,
                "mode": report.mode,
                "notes": report.notes,
                "run_id": report.run_id,
                "users": report.users,
                "groups": report.groups,
                "diff": report.diff.to_dict(),
            }
        )
        return 0
    prefix = "dry run, nothing written: " if report.dry_run else ""
    mode = " (incremental)" if report.mode == "delta" else ""
    say(
        f"{prefix}{report.source}{mode}: {report.users} users, {report.groups} groups;"
        f" {report.diff.summary()}"
    )
    _print_diff_details(report.diff)
    return 0


def _progress_printer() -> Callable[..., None] | None:
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


def cmd_demo(args: argparse.Namespace) -> int:
    from groupwarden.demo import prepare_demo

    def step(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    demo = prepare_demo(args.db, progress=step)
    try:
        if args.read_only:
            demo.ctx.read_only = True
        if args.no_tui:
            print(demo.summary())
            return 0
        from groupwarden.tui.app import run_tui

        run_tui(demo.ctx, demo.settings, demo.source_config)
    finally:
        demo.close()
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    settings = _settings(args)
    ctx = _context(args, settings)
    source = next(iter(settings.sources.values())) if len(settings.sources) == 1 else None
    from groupwarden.tui.app import run_tui

    run_tui(ctx, settings, source)
    return 0


def _cli_hint(exc: GroupwardenError) -> str:
    """What gets past an error, as a command or flag; the services name the remedy, never a flag."""
    import shlex

    from groupwarden.domain.errors import Remedy

    if exc.hint is None:
        return ""
    subject = exc.hint.subject
    source = shlex.quote(subject) if subject else "NAME"
    text = {
        Remedy.FULL_SYNC: f"run `groupwarden sync {source} --full`",
        Remedy.CONFIRM_LAST_ADMIN: "confirm with --confirm-last-admin",
        Remedy.ALLOW_MASS_DELETE: "allow it with --allow-mass-delete",
        Remedy.LIST_GROUPS: "see `groupwarden groups`",
        Remedy.SYNC_FIRST: "run `groupwarden sync` first",
        Remedy.OPEN_WRITABLE: "run without --read-only, and without GROUPWARDEN_READ_ONLY=1"
        " or read_only = true in the config",
        Remedy.MIGRATE: "run one groupwarden command on it without --read-only to upgrade it",
        Remedy.TRUST_DB_PERMISSIONS: "or pass --trust-db-permissions to use it as it is",
        Remedy.GIVE_TOKEN: "give it with --token-env VAR or --token-file FILE",
        Remedy.GIVE_CLIENT_SECRET: "give --client-id ID with --client-secret-env VAR,"
        " or --token-env VAR for a ready bearer token",
        Remedy.ADD_WORKSPACE: "add it with `groupwarden workspace add`",
        Remedy.ADD_FOLDER: "add it with `groupwarden folder add`",
    }[exc.hint.remedy]
    return f" ({text})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    run: Callable[[argparse.Namespace], int] = getattr(args, "run", cmd_tui)
    try:
        return run(args)
    except GroupwardenError as exc:
        from groupwarden.domain.text import printable

        message = "\n".join(printable(line) for line in str(exc).split("\n"))
        sys.stderr.write(f"groupwarden: error: {message}{_cli_hint(exc)}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("groupwarden: interrupted; nothing half-written was kept\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
