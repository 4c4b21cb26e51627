"""demo, and the terminal UI that opens without a command."""

from __future__ import annotations

import argparse
import gc
import sys
from typing import TYPE_CHECKING

from groupwarden.cli.common import context_of, settings_of

if TYPE_CHECKING:
    from groupwarden.cli.common import Subparsers
    from groupwarden.tui.app import GroupwardenApp


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


def tui_app(args: argparse.Namespace) -> GroupwardenApp:
    """The terminal UI on the store and the source that the options and settings name."""
    # No garbage collection until the UI shows its first group rows (the main screen turns it
    # back on): the start makes some 90,000 objects that all live on, and collecting them on the
    # way took a tenth of the start.
    gc.disable()
    try:
        settings = settings_of(args)
        ctx = context_of(args, settings)
        from groupwarden.tui.app import make_app
    except BaseException:
        gc.enable()
        raise
    source = next(iter(settings.sources.values())) if len(settings.sources) == 1 else None
    return make_app(ctx, settings, source)


def cmd_tui(args: argparse.Namespace) -> int:
    tui_app(args).run()
    return 0
