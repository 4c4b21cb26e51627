"""demo, and the terminal UI that opens without a command."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of, settings_of

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo", help="start a local SCIM server with a demo organisation, sync it, open the UI"
    )
    p.add_argument("--no-tui", action="store_true", help="print a summary and exit instead of opening the UI")
    p.set_defaults(run=cmd_demo)


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
    settings = settings_of(args)
    ctx = context_of(args, settings)
    source = next(iter(settings.sources.values())) if len(settings.sources) == 1 else None
    from groupwarden.tui.app import run_tui

    run_tui(ctx, settings, source)
    return 0
