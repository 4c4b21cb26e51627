"""UI benchmarks on the 100k-user / 10k-group cache; prints every figure of one run.

    python benchmarks/bench_tui.py                      # uses data/cache-full/groupwarden.db
    python benchmarks/bench_tui.py --db other.db

Measured, each in a fresh child process (headless, so no terminal speed is in the figures):
  - process start to the main screen showing its first group rows, as a ratio to a bare
    Textual app showing one static table (target <= 2x);
  - filter latency per keystroke on the groups pane and on the members pane of the
    biggest group (target < 100 ms);
  - peak memory (max RSS) of the UI process (target < 300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DB = HERE / "data" / "cache-full" / "groupwarden.db"
KEYS = "user1"


def build_cache(db: Path) -> None:
    """The foundation benchmark's cache: the generated directory, reconciled, with its layout."""
    sys.path.insert(0, str(HERE))
    from bench_sync import install_layout, reconcile_once
    from generate import Params, generate
    from groupwarden.services.context import Context

    db.parent.mkdir(parents=True, exist_ok=True)
    directory = generate(Params())
    ctx = Context.open(str(db))
    reconcile_once(ctx, directory.snapshot())
    install_layout(ctx, directory)
    ctx.close()


async def wait_until(pilot: Any, test: Any, limit: float = 120.0) -> None:
    end = time.perf_counter() + limit
    while not test():
        if time.perf_counter() > end:
            raise TimeoutError("the UI did not get there in time")
        await pilot.pause(0.001)


async def type_filter(pilot: Any, pane: Any) -> list[float]:
    """ms per keystroke, from the key press to the table holding the filtered rows."""
    await pilot.press("slash")
    await pilot.pause()
    # A pane may show a first page only; / loads the rest, and the figures are for all rows.
    await wait_until(pilot, lambda: getattr(pane, "complete", True))
    await pilot.pause()
    times = []
    for key in KEYS:
        start = time.perf_counter()
        await pilot.press(key)
        await wait_until(pilot, lambda key=key: pane.needle.endswith(key))
        await pilot.pause()
        times.append((time.perf_counter() - start) * 1000)
    await pilot.press("escape")
    return times


def child_ui(db: str, started: float) -> dict[str, Any]:
    from groupwarden.config import Settings
    from groupwarden.services.context import Context
    from groupwarden.tui.app import make_app

    ctx = Context.open(db, read_only=True)
    app = make_app(ctx, Settings(), None)
    out: dict[str, Any] = {}

    async def run() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            screen: Any = app.screen
            groups = screen.groups
            await wait_until(pilot, lambda: groups.table.row_count > 0)
            await pilot.pause()
            out["first_rows_s"] = time.time() - started
            out["groups_filter_ms"] = await type_filter(pilot, groups)
            out["groups"] = len(groups.rows)
            biggest = max(groups.rows, key=lambda g: g.effective_members)
            index = groups.rows.index(biggest)
            groups.focus_table()
            start = time.perf_counter()
            groups.table.move_cursor(row=index, animate=False)
            members = screen.members
            await wait_until(pilot, lambda: members.group == biggest and members.loaded)
            out["members_load_s"] = time.perf_counter() - start
            out["members_table_rows"] = members.table.row_count
            screen.action_pane("members")
            await pilot.pause()
            start = time.perf_counter()
            if hasattr(members, "when_complete"):
                members.when_complete(lambda: None)
            await wait_until(pilot, lambda: getattr(members, "complete", True))
            out["members_all_s"] = time.perf_counter() - start
            out["members"] = len(members.rows)
            out["members_filter_ms"] = await type_filter(pilot, members)

    asyncio.run(run())
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ctx.close()
    return out


def child_bare(started: float) -> dict[str, Any]:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("name", "count")
            table.add_row("static", "1")

    app = Bare()
    out: dict[str, Any] = {}

    async def run() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            out["first_rows_s"] = time.time() - started

    asyncio.run(run())
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def spawn(mode: str, db: Path) -> dict[str, Any]:
    started = time.time()
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--db", str(db), "--started", repr(started)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--runs", type=int, default=3, help="startup runs of each app; the median counts")
    parser.add_argument("--child", choices=["ui", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        started = args.started or time.time()
        out = child_ui(str(args.db), started) if args.child == "ui" else child_bare(started)
        print(json.dumps(out))
        return 0
    if not args.db.exists():
        print(f"building the benchmark cache at {args.db} (takes a few minutes)…", flush=True)
        build_cache(args.db)
    bare = [spawn("bare", args.db) for _ in range(args.runs)]
    ui = [spawn("ui", args.db) for _ in range(args.runs)]
    bare_s = statistics.median(r["first_rows_s"] for r in bare)
    ui_s = statistics.median(r["first_rows_s"] for r in ui)
    last = ui[-1]
    groups_ms = max(max(r["groups_filter_ms"]) for r in ui)
    members_ms = max(max(r["members_filter_ms"]) for r in ui)
    rss = max(r["max_rss_mb"] for r in ui)
    print(f"cache: {args.db} ({last['groups']:,} groups)")
    print(f"start to first rows: bare Textual table {bare_s * 1000:.0f} ms, groupwarden {ui_s * 1000:.0f} ms")
    print(f"  ratio {ui_s / bare_s:.2f}x (target <= 2x): {verdict(ui_s / bare_s <= 2)}")
    print(
        f"members of the biggest group: first rows in {last['members_load_s'] * 1000:.0f} ms,"
        f" all {last['members']:,} in {last['members_all_s'] * 1000:.0f} ms more,"
        f" {last['members_table_rows']:,} rows in the table at once"
    )
    print(
        f"filter per keystroke, worst of {args.runs} runs:"
        f" groups {groups_ms:.1f} ms, members {members_ms:.1f} ms"
        f" (target < 100 ms): {verdict(max(groups_ms, members_ms) < 100)}"
    )
    print(f"  groups per key (ms, last run): {', '.join(f'{t:.1f}' for t in last['groups_filter_ms'])}")
    print(f"  members per key (ms, last run): {', '.join(f'{t:.1f}' for t in last['members_filter_ms'])}")
    print(f"peak memory of the UI process: {rss:.0f} MB (target < 300 MB): {verdict(rss < 300)}")
    print(f"  (bare Textual app: {max(r['max_rss_mb'] for r in bare):.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
