"""sync: users, groups and memberships from an identity provider."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of, print_diff_details, progress_printer, settings_of
from groupwarden.domain.errors import BadInput

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers
    from groupwarden.config import Settings, SourceConfig


def register(sub: Subparsers) -> None:
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
        "--page-concurrency",
        type=int,
        metavar="N",
        help="pages and member listings fetched at once (default 4; 1 fetches one at a time)",
    )
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
        "page_concurrency": settings.page_concurrency,
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

    settings = settings_of(args)
    config = _source_config(args, settings)
    source = build_source(config)
    ctx = context_of(args, settings)
    guard = DeletionGuard(
        allow=args.allow_mass_delete,
        max_fraction=settings.max_delete_fraction,
        floor=settings.max_delete_floor,
    )
    report = run_sync(
        ctx, source, dry_run=args.dry_run, guard=guard, progress=progress_printer(), full=args.full
    )
    for warning in report.warnings:
        warn(f"warning: {warning}")
    for note in report.notes:
        warn(f"note: {note}")
    if args.json:
        emit_json(report)
        return 0
    prefix = "dry run, nothing written: " if report.dry_run else ""
    mode = " (incremental)" if report.mode == "delta" else ""
    say(
        f"{prefix}{report.source}{mode}: {report.users} users, {report.groups} groups;"
        f" {report.diff.summary()}"
    )
    print_diff_details(report.diff)
    return 0
