"""groupwarden's command line: the root parser, the global options, and how errors end a run.

The commands live in cli/commands, one module per area; each parses its input and calls
one service function. Imports of SQLAlchemy, httpx, the SCIM models and Textual happen
inside the commands, so `groupwarden --help` starts in a blink.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from groupwarden import __version__
from groupwarden.cli.commands import access, app, audit, directory, layout, plan, roles, sync, windmill
from groupwarden.cli.common import Parser
from groupwarden.domain.errors import GroupwardenError

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
    for area in (app, sync, directory, layout, plan, roles, access, audit, windmill):
        area.register(sub)
    return parser


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
        Remedy.NEW_DATABASE: "restore into a new database, given with --db",
    }[exc.hint.remedy]
    return f" ({text})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    run: Callable[[argparse.Namespace], int] = getattr(args, "run", app.cmd_tui)
    try:
        return run(args)
    except GroupwardenError as exc:
        from groupwarden.domain.text import printable, shorten

        message = "\n".join(printable(shorten(line)) for line in str(exc).split("\n"))
        sys.stderr.write(f"groupwarden: error: {message}{_cli_hint(exc)}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("groupwarden: interrupted; nothing half-written was kept\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
