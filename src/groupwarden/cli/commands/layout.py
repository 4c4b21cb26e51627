"""workspace, folder, import-layout: the workspaces and folders grants are made on."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from groupwarden.cli.common import Parser, context_of

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers


def register(sub: Subparsers) -> None:
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
    p.add_argument(
        "--confirm-last-admin",
        action="store_true",
        help="allow the file to remove or lower the last admin grant of a folder",
    )
    p.set_defaults(run=cmd_import_layout)


def cmd_workspace_add(args: argparse.Namespace) -> int:
    from groupwarden.services.layout import add_workspace

    created = add_workspace(context_of(args), args.id, args.name)
    print(f"workspace {args.id} {'added' if created else 'already exists; updated'}")
    return 0


def cmd_workspace_list(args: argparse.Namespace) -> int:
    from groupwarden.cli.output import emit_json, table
    from groupwarden.services.layout import list_workspaces

    spaces = list_workspaces(context_of(args))
    if args.json:
        emit_json(spaces)
        return 0
    rows = [(f.target, f.grants, f.summary) for w in spaces for f in w.folders]
    if any(w.linked for w in spaces):
        linked = {w.id: f"windmill {w.linked}" for w in spaces if w.linked}
        table(
            ["TARGET", "GRANTS", "LINKED", "SUMMARY"],
            [(f.target, f.grants, linked.get(w.id, "local"), f.summary) for w in spaces for f in w.folders],
        )
    else:
        table(["TARGET", "GRANTS", "SUMMARY"], rows)
    return 0


def cmd_folder_add(args: argparse.Namespace) -> int:
    from groupwarden.services.layout import add_folder

    created = add_folder(context_of(args), args.workspace, args.folder, args.summary)
    print(f"folder {args.workspace}/{args.folder} {'added' if created else 'already exists; updated'}")
    return 0


def cmd_import_layout(args: argparse.Namespace) -> int:
    from pathlib import Path

    from groupwarden.services.layout import import_layout

    result = import_layout(context_of(args), Path(args.file), confirm_last_admin=args.confirm_last_admin)
    print(result.summary())
    return 0
