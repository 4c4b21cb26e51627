"""UI benchmarks on the 100k-user / 10k-group cache; prints every figure of one run.

    python benchmarks/bench_tui.py                      # uses data/cache-full/groupwarden.db
    python benchmarks/bench_tui.py --db other.db --runs 3
    python benchmarks/bench_tui.py --db small.db --users 2000 --groups 200   # builds a small cache

Measured, each in a fresh headless child process (so no terminal speed is in the figures), each
against a bare Textual app measured in the same run:
  - process start to the first frame that shows the main screen's first group rows, through
    the command line's own start-up path (argument parsing, settings, opening the store), as a
    ratio to a bare Textual DataTable showing the same first rows, read with plain sqlite3
    (target <= 2x);
  - filter latency per keystroke on the groups pane and on the members pane of the biggest
    group, worst key of every run, as a ratio to a bare Textual app (one Input, one DataTable)
    filtering the same group names and member names, read from the same cache with plain
    sqlite3 before the timing, with the same keys on the same pilot harness (target <= 1.3x);
  - peak memory (max RSS) of the UI process (target < 300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DB = HERE / "data" / "cache-full" / "groupwarden.db"
# Compiled modules for the children, outside the source tree: an installed package has them,
# and compiling groupwarden's modules anew in every child is not what an admin waits for.
PYCACHE = HERE / "data" / "pycache"
KEYS = "user1"
SIZE = (160, 48)
# Rows a pane (and the bare app) puts in its table at once.
PAGE = 100
STARTUP_TARGET = 2.0
FILTER_TARGET = 1.3
MEMORY_TARGET_MB = 300


def build_cache(db: Path, users: int | None, groups: int | None) -> None:
    """The foundation benchmark's cache: the generated directory, reconciled, with its layout."""
    sys.path.insert(0, str(HERE))
    from bench_sync import install_layout, reconcile_once
    from generate import Params, generate
    from groupwarden.services.context import Context

    db.parent.mkdir(parents=True, exist_ok=True)
    params = Params() if users is None and groups is None else Params.scaled(users or 2000, groups or 200)
    directory = generate(params)
    ctx = Context.open(str(db))
    reconcile_once(ctx, directory.snapshot())
    install_layout(ctx, directory)
    ctx.close()


async def wait_until(pilot: Any, test: Callable[[], bool], limit: float = 120.0) -> None:
    end = time.perf_counter() + limit
    while not test():
        if time.perf_counter() > end:
            raise TimeoutError("the UI did not get there in time")
        await pilot.pause(0.001)


async def type_filter(pilot: Any, pane: Any) -> list[float]:
    """ms per keystroke, from the key press to the table holding the filtered rows.

    The harness both apps go through: pane is a ListPane, or the bare app (which has a needle too).
    """
    await pilot.press("slash")
    await pilot.pause()
    # A pane may show a first page only; / loads the rest, and the figures are for all rows.
    await wait_until(pilot, lambda: getattr(pane, "complete", True))
    await pilot.pause()
    times = []
    for typed, key in enumerate(KEYS, 1):
        start = time.perf_counter()
        await pilot.press(key)
        # Exactly what was typed: a side whose filter holds anything else (a "/" typed into
        # the bare app's Input) would time another filter, and never gets here.
        await wait_until(pilot, lambda typed=typed: pane.needle == KEYS[:typed])
        await pilot.pause()
        times.append((time.perf_counter() - start) * 1000)
    await pilot.press("escape")
    return times


def when_painted(app: Any, shown: Callable[[], bool], out: dict[str, Any]) -> None:
    """Record in out["first_rows_s"] the time of the first frame drawn while shown() holds.

    Textual calls post_display_hook after each frame it draws (headless too: only the write to
    the terminal is skipped), so this is when the rows were on screen, whatever runs after.
    """

    def hook() -> None:
        if "first_rows_s" not in out and shown():
            out["first_rows_s"] = time.time()

    app.post_display_hook = hook


def child_ui(db: str, config: str, started: float) -> dict[str, Any]:
    # The command line's start-up path, as `groupwarden --config FILE --db DB --read-only` takes
    # it: the app it would run, run here on the test harness.
    from groupwarden.cli.commands.app import tui_app
    from groupwarden.cli.main import build_parser

    app = tui_app(build_parser().parse_args(["--config", config, "--db", db, "--read-only"]))
    ctx = app.ctx
    out: dict[str, Any] = {}

    def first_rows() -> bool:
        groups = getattr(app.screen, "groups", None)
        return groups is not None and groups.table.row_count > 0

    when_painted(app, first_rows, out)

    async def run() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "first_rows_s" in out)
            out["first_rows_s"] -= started
            screen: Any = app.screen
            groups = screen.groups
            await pilot.pause()
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
            members.when_complete(lambda: None)
            await wait_until(pilot, lambda: members.complete)
            out["members_all_s"] = time.perf_counter() - start
            out["members"] = len(members.rows)
            out["members_filter_ms"] = await type_filter(pilot, members)

    asyncio.run(run())
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ctx.close()
    return out


# What the bare apps read, with plain sqlite3: the first rows of the groups pane, every live
# group name, and the members of the group with the most direct members.
FIRST_GROUPS = (
    "SELECT g.name, s.name FROM instance_groups g JOIN sources s ON s.id = g.source_id"
    " WHERE g.removed_at IS NULL ORDER BY lower(g.name), g.name, s.name, g.upstream_id LIMIT ?"
)
GROUP_NAMES = "SELECT name FROM instance_groups WHERE removed_at IS NULL ORDER BY lower(name), name"
BIGGEST_GROUP = "SELECT group_id FROM user_memberships GROUP BY group_id ORDER BY COUNT(*) DESC LIMIT 1"
MEMBERS = (
    "SELECT u.user_name, coalesce(u.display_name, ''), u.emails FROM users u"
    " JOIN user_memberships m ON m.user_id = u.id WHERE m.group_id = ? ORDER BY lower(u.user_name), u.id"
)


def read_only(db: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def child_bare(db: str, started: float) -> dict[str, Any]:
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.widgets import DataTable, Input

    with read_only(db) as conn:
        first = conn.execute(FIRST_GROUPS, (PAGE,)).fetchall()

    class BareTable(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("group", "source")
            table.add_rows(first)

    class BareFilter(App[None]):
        """One Input and one DataTable: the rows whose lowercase text holds what is typed."""

        # With priority, / reaches the app even while the Input has the focus, as groupwarden's
        # / opens its filter: the key is not typed into the filter.
        BINDINGS = [Binding("slash", "focus_input", priority=True), Binding("escape", "clear")]

        def __init__(self, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
            super().__init__()
            self.columns = columns
            self.rows = rows
            self.keys = [" ".join(row).lower() for row in rows]
            self.needle = ""

        def compose(self) -> ComposeResult:
            yield Input()
            yield DataTable()

        def on_mount(self) -> None:
            self.query_one(DataTable).add_columns(*self.columns)
            self.show("")

        def show(self, needle: str) -> None:
            found = [row for row, key in zip(self.rows, self.keys, strict=True) if needle in key]
            table = self.query_one(DataTable)
            table.clear()
            # The first rows only, as a pane shows them: adding 50,000 rows at once takes seconds.
            table.add_rows(found[:PAGE])
            self.needle = needle

        def on_input_changed(self, event: Input.Changed) -> None:
            self.show(event.value.strip().lower())

        def action_focus_input(self) -> None:
            self.query_one(Input).focus()

        def action_clear(self) -> None:
            self.query_one(Input).value = ""

    out: dict[str, Any] = {}
    table_app = BareTable()
    when_painted(table_app, lambda: table_app.query_one(DataTable).row_count > 0, out)

    async def start() -> None:
        async with table_app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "first_rows_s" in out)
            out["first_rows_s"] -= started

    asyncio.run(start())

    with read_only(db) as conn:
        names = [(str(name),) for (name,) in conn.execute(GROUP_NAMES)]
        (biggest,) = conn.execute(BIGGEST_GROUP).fetchone()
        members = [
            (str(user), str(display), str(emails).split("\n", 1)[0])
            for user, display, emails in conn.execute(MEMBERS, (biggest,))
        ]

    async def filtering(app: BareFilter) -> list[float]:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            return await type_filter(pilot, app)

    out["groups"], out["members"] = len(names), len(members)
    out["groups_filter_ms"] = asyncio.run(filtering(BareFilter(("group",), names)))
    out["members_filter_ms"] = asyncio.run(
        filtering(BareFilter(("userName", "display name", "email"), members))
    )
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def spawn(mode: str, db: Path, config: Path) -> dict[str, Any]:
    started = time.time()
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--db",
            str(db),
            "--config",
            str(config),
            "--started",
            repr(started),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
    )
    if result.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def worst(runs: list[dict[str, Any]], key: str) -> float:
    return max(max(r[key]) for r in runs)


def per_key(times: list[float]) -> str:
    return ", ".join(f"{t:.1f}" for t in times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--runs", type=int, default=3, help="runs of each app; medians and worst keys count")
    parser.add_argument("--users", type=int, help="users of a cache built at --db when it is missing")
    parser.add_argument("--groups", type=int, help="groups of a cache built at --db when it is missing")
    parser.add_argument("--child", choices=["ui", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        started = args.started or time.time()
        db = str(args.db)
        out = child_ui(db, args.config, started) if args.child == "ui" else child_bare(db, started)
        print(json.dumps(out))
        return 0
    if not args.db.exists():
        print(f"building the benchmark cache at {args.db} (full size takes a few minutes)…", flush=True)
        build_cache(args.db, args.users, args.groups)
    with tempfile.TemporaryDirectory() as tmp:
        # An empty config file, named: neither the user's config file nor its sources apply.
        config = Path(tmp) / "config.toml"
        config.write_text("", encoding="utf-8")
        # Untimed: the first child of each kind writes the compiled modules to PYCACHE.
        for mode in ("bare", "ui"):
            spawn(mode, args.db, config)
        bare, ui = [], []
        for _ in range(args.runs):
            bare.append(spawn("bare", args.db, config))
            ui.append(spawn("ui", args.db, config))
    return report(args, bare, ui)


def report(args: argparse.Namespace, bare: list[dict[str, Any]], ui: list[dict[str, Any]]) -> int:
    missed = []
    last, bare_last = ui[-1], bare[-1]
    print(f"cache: {args.db} ({last['groups']:,} groups); {args.runs} runs of each app, alternating")
    print(f"compiled modules cached in {PYCACHE}, as an installed package has them")

    bare_s = statistics.median(r["first_rows_s"] for r in bare)
    ui_s = statistics.median(r["first_rows_s"] for r in ui)
    ratio = ui_s / bare_s
    print(
        f"start to first rows painted, median: bare Textual table {bare_s * 1000:.0f} ms,"
        f" groupwarden {ui_s * 1000:.0f} ms"
    )
    print(f"  ratio {ratio:.2f}x (target <= {STARTUP_TARGET:g}x): {verdict(ratio <= STARTUP_TARGET)}")
    print(
        f"  each run (ms): bare {per_key([r['first_rows_s'] * 1000 for r in bare])},"
        f" groupwarden {per_key([r['first_rows_s'] * 1000 for r in ui])}"
    )
    if ratio > STARTUP_TARGET:
        missed.append(f"start-up <= {STARTUP_TARGET:g}x")

    print(
        f"members of the biggest group: first rows in {last['members_load_s'] * 1000:.0f} ms,"
        f" all {last['members']:,} in {last['members_all_s'] * 1000:.0f} ms more,"
        f" {last['members_table_rows']:,} rows in the table at once"
    )
    print(f"filter per keystroke ({KEYS!r} typed), worst key of {args.runs} runs:")
    for pane, label in (("groups", "groups pane"), ("members", "members pane")):
        bare_ms, ui_ms = worst(bare, f"{pane}_filter_ms"), worst(ui, f"{pane}_filter_ms")
        ratio = ui_ms / bare_ms
        print(
            f"  {label} ({last[pane]:,} rows; bare app {bare_last[pane]:,}):"
            f" bare Input + DataTable {bare_ms:.1f} ms, groupwarden {ui_ms:.1f} ms,"
            f" ratio {ratio:.2f}x (target <= {FILTER_TARGET:g}x): {verdict(ratio <= FILTER_TARGET)}"
        )
        print(
            f"    per key, last run (ms): bare {per_key(bare_last[f'{pane}_filter_ms'])};"
            f" groupwarden {per_key(last[f'{pane}_filter_ms'])}"
        )
        if ratio > FILTER_TARGET:
            missed.append(f"{label} filter <= {FILTER_TARGET:g}x")

    rss = max(r["max_rss_mb"] for r in ui)
    print(
        f"peak memory of the UI process: {rss:.0f} MB (target < {MEMORY_TARGET_MB} MB):"
        f" {verdict(rss < MEMORY_TARGET_MB)}"
    )
    print(f"  (bare Textual apps: {max(r['max_rss_mb'] for r in bare):.0f} MB)")
    if rss >= MEMORY_TARGET_MB:
        missed.append(f"peak memory < {MEMORY_TARGET_MB} MB")
    print()
    print("targets: all met" if not missed else f"targets missed: {'; '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
