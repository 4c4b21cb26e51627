"""Sync and access benchmarks on a large generated directory; prints ratios measured in one run.

    python benchmarks/bench_sync.py             # the issue's sizes (takes a few minutes)
    python benchmarks/bench_sync.py --small     # 10k users, 1k groups: a quick look
    python benchmarks/bench_sync.py --users 2000 --groups 200 --runs 3   # the smoke test's size

Every timing is compared with a baseline measured in the same run on the same machine,
so the ratios hold on a noisy machine where the seconds do not. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from fast_scim_server import start_server_process
from generate import DATA_DIR, Directory, Params, ensure_scim_pages, generate
from groupwarden.cli.commands.access import print_who_can_json, print_who_can_table
from groupwarden.domain.directory import Snapshot
from groupwarden.domain.roles import Role
from groupwarden.services import resolve
from groupwarden.services.access import PREFETCH, TargetAccess, UserAccess, WhoCan, access_of, who_can
from groupwarden.services.context import Context
from groupwarden.services.layout import add_workspace
from groupwarden.services.reconcile import DeletionGuard, SyncDiff, reconcile
from groupwarden.services.sync import refresh_after
from groupwarden.store import access as access_store
from groupwarden.store.db import write_transaction
from groupwarden.store.models import Folder, Grant

SOURCE = "bench"
SOURCE_URL = "http://127.0.0.1/v2"
DIRECTORY_TABLES = ("sources", "users", "instance_groups", "user_memberships", "group_memberships")

TARGET_RECONCILE = 3.0
TARGET_RESYNC = 1.0
# The SCIM fetch: without latency, against httpx with json.loads and against the client
# fetching one page at a time; with latency, against a sequential bare httpx loop.
TARGET_FETCH_DECODE = 1.0
TARGET_FETCH_SEQUENTIAL = 1.0
TARGET_FETCH_LATENCY = 0.5
# Pages of the latency round: what Entra and Okta serve (100-200 items).
LATENCY_PAGE = 100
TARGET_QUERY_MS = 50.0
# The whole who-can answer, as the command line prints it (table or --json).
TARGET_PRINTED_MS = 100.0


@dataclass(slots=True)
class Row:
    label: str
    seconds: float
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def profiled(label: str, fn: Callable[[], Any], top: int) -> None:
    profile = cProfile.Profile()
    gc.collect()
    profile.enable()
    fn()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\n--- profile: {label} (sorted by own time) ---")
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    print("\n".join(line for line in lines[max(0, start - 3) :] if line.strip()))


# The baseline: plain sqlite3 ------------------------------------------------------------


def directory_schema(db: Path) -> list[str]:
    """The DDL of the directory tables and their indexes, as groupwarden's migrations make them."""
    ctx = Context.open(str(db))
    try:
        with ctx.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name IN ("
                    + ", ".join(f"'{t}'" for t in DIRECTORY_TABLES)
                    + ") ORDER BY type DESC, name"
                )
            ).all()
    finally:
        ctx.close()
    return [r[0] for r in rows]


@dataclass(slots=True)
class BaselineRows:
    users: list[tuple[Any, ...]]
    groups: list[tuple[Any, ...]]
    members: list[tuple[int, int]]
    nested: list[tuple[int, int]]


def baseline_rows(directory: Directory) -> BaselineRows:
    """The rows a reconcile into an empty cache writes, with ids already assigned."""
    users = [
        (
            i + 1,
            1,
            directory.user_ids[i],
            directory.user_names[i],
            directory.display_names[i],
            "\n".join(directory.emails[i]),
            directory.active[i],
            None,
        )
        for i in range(len(directory.user_ids))
    ]
    groups = [
        (g + 1, 1, directory.group_ids[g], directory.group_names[g], None, None)
        for g in range(len(directory.group_ids))
    ]
    members = [(g + 1, u + 1) for g, ms in enumerate(directory.members) for u in ms]
    nested = [(g + 1, c + 1) for g, cs in enumerate(directory.nested) for c in cs]
    return BaselineRows(users, groups, members, nested)


def baseline_insert(db: Path, schema: list[str], rows: BaselineRows) -> float:
    """Seconds for executemany inserts of rows into a fresh file: BEGIN to COMMIT."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        for ddl in schema:
            conn.execute(ddl)
        conn.execute(
            "INSERT INTO sources (id, name, kind, url) VALUES (1, ?, 'scim', ?)", (SOURCE, SOURCE_URL)
        )

        def run() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO users (id, source_id, upstream_id, user_name, display_name, emails, active,"
                " raw_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows.users,
            )
            conn.executemany(
                "INSERT INTO instance_groups (id, source_id, upstream_id, name, description, kind)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows.groups,
            )
            conn.executemany("INSERT INTO user_memberships (group_id, user_id) VALUES (?, ?)", rows.members)
            conn.executemany("INSERT INTO group_memberships (parent_id, child_id) VALUES (?, ?)", rows.nested)
            conn.execute("COMMIT")

        seconds, _ = timed(run)
        return seconds
    finally:
        conn.close()


# groupwarden ----------------------------------------------------------------------------


def reconcile_once(ctx: Context, snapshot: Snapshot) -> SyncDiff:
    """One reconcile in one write transaction, commit included, as a sync runs it."""
    with write_transaction(ctx.engine) as conn:
        diff = reconcile(
            conn,
            snapshot,
            source_name=SOURCE,
            source_kind="scim",
            source_url=SOURCE_URL,
            guard=DeletionGuard(),
            write=True,
        )
    refresh_after(ctx, diff)
    return diff


def install_layout(ctx: Context, directory: Directory) -> None:
    """Workspaces through the service; folders and grants with bulk inserts (grant() is per-row)."""
    for workspace in directory.workspaces:
        add_workspace(ctx, workspace)
    now = datetime.now(UTC)
    with write_transaction(ctx.engine) as conn:
        conn.execute(
            insert(Folder.__table__),
            [
                {"workspace_id": w, "name": f, "summary": ""}
                for w in directory.workspaces
                for f in directory.folders
            ],
        )
        folder_ids = {
            (w, n): i for i, w, n in conn.execute(text("SELECT id, workspace_id, name FROM folders"))
        }
        user_ids = dict(conn.execute(text("SELECT upstream_id, id FROM users")).all())
        group_ids = dict(conn.execute(text("SELECT upstream_id, id FROM instance_groups")).all())
        rows = []
        for spec in directory.grants:
            gid = group_ids[spec.upstream_id] if spec.kind == "g" else None
            uid = user_ids[spec.upstream_id] if spec.kind == "u" else None
            rows.append(
                {
                    "folder_id": folder_ids[(spec.workspace, spec.folder)],
                    "item_path": spec.item_path,
                    "principal_key": f"g:{gid}" if gid is not None else f"u:{uid}",
                    "group_id": gid,
                    "user_id": uid,
                    "role": spec.role,
                    "granted_by": "benchmark",
                    "granted_at": now,
                    "version": 1,
                }
            )
        conn.execute(insert(Grant.__table__), rows)


def median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = fn()  # warm-up: caches, first-query planning
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000, result


def who_can_first_page(ctx: Context, target: str) -> WhoCan:
    """who_can() and the UserAccess rows of its first page: what a screen waits for."""
    answer = who_can(ctx, resolve.target(ctx, target))
    page = answer[:PREFETCH]
    assert len(page) == min(PREFETCH, len(answer))
    return answer


def who_can_printed(ctx: Context, target: str, as_json: bool) -> int:
    """who_can() and every row printed, as `groupwarden who-can [--json]` prints them, to
    /dev/null; returns the bytes written."""
    # As cmd_who_can asks: no first page read apart, every row is printed.
    answer = who_can(ctx, resolve.target(ctx, target), prefetch=0)
    printer = print_who_can_json if as_json else print_who_can_table
    with open(os.devnull, "w", encoding="utf-8") as sink, redirect_stdout(sink):
        printer(answer, Role.VIEWER, target)
        return sink.tell()


def users_by_name(ctx: Context, user_ids: list[int]) -> int:
    """The one read of the printed table past the rule: the answer's users, column by column,
    in name order, as WhoCan.columns() reads them."""
    with ctx.engine.connect() as conn:
        return len(access_store.user_columns(conn, user_ids, display_names=False).ids)


def access_of_named(ctx: Context, user_name: str) -> tuple[str, list[TargetAccess]]:
    """access_of() with the user resolved first, as the command line does."""
    return access_of(ctx, resolve.user(ctx, user_name))


def who_can_all_rows(ctx: Context, target: str) -> list[UserAccess]:
    """who_can() and every row built and kept: the worst case, garbage collector included."""
    return list(who_can(ctx, resolve.target(ctx, target)))


def granted_member_ids(conn: sqlite3.Connection, target: str) -> int:
    """Plain sqlite3 reading the ids of the direct members of the groups granted on a folder:
    a floor for any who-can answer computed in Python, and a reference that moves with the
    machine's load as the who-can timings do."""
    workspace, folder = target.split("/", 1)
    rows = conn.execute(
        "SELECT m.user_id FROM user_memberships m WHERE m.group_id IN (SELECT gr.group_id FROM grants gr"
        " JOIN folders f ON f.id = gr.folder_id WHERE f.workspace_id = ? AND f.name = ?"
        " AND gr.item_path = '')",
        (workspace, folder),
    ).fetchall()
    return len(rows)


def access_rows(ctx: Context, directory: Directory, params: Params, runs: int) -> list[Row]:
    target, heavy = directory.who_can_target, directory.heavy_user_name
    plain = sqlite3.connect(str(ctx.engine.url.database))
    # The generated directory is millions of objects a CLI process does not hold: frozen,
    # the garbage collector's full passes skip them, as they would not be there.
    gc.collect()
    gc.freeze()
    try:
        floor_ms, floor_ids = median_ms(partial(granted_member_ids, plain, target), runs)
        page_ms, page = median_ms(partial(who_can_first_page, ctx, target), runs)
        table_ms, _size = median_ms(partial(who_can_printed, ctx, target, False), runs)
        json_ms, _size = median_ms(partial(who_can_printed, ctx, target, True), runs)
        all_ms, everyone = median_ms(partial(who_can_all_rows, ctx, target), runs)
        acc_ms, (_name, reached) = median_ms(partial(access_of_named, ctx, heavy), runs)
        user_ids = [a.user_id for a in everyone]
        read_ms, _count = median_ms(partial(users_by_name, ctx, user_ids), runs)
    finally:
        gc.unfreeze()
        plain.close()
    assert len(everyone) == len(page), "the lazy answer and the full one disagree"
    by_role = ", ".join(f"{n} {role}" for role, n in page.counts_by_role.items())
    rows = [
        Row(
            "  reference: sqlite3 reads the member ids",
            floor_ms,
            1.0,
            note=f"{floor_ids} ids of the granted groups' direct members, nothing else",
        ),
        Row(
            f"who-can {target} (first page)",
            page_ms,
            page_ms / floor_ms,
            f"< {TARGET_QUERY_MS:g} ms",
            page_ms < TARGET_QUERY_MS,
            f"{len(page)} users ({by_role}); rows 1-{min(PREFETCH, len(page))} built",
        ),
        Row(
            f"who-can {target} (all rows, printed)",
            table_ms,
            table_ms / floor_ms,
            f"< {TARGET_PRINTED_MS:g} ms",
            table_ms < TARGET_PRINTED_MS,
            "every row as `who-can` prints its table, to /dev/null",
        ),
        Row(
            f"who-can {target} (all rows, --json)",
            json_ms,
            json_ms / floor_ms,
            f"< {TARGET_PRINTED_MS:g} ms",
            json_ms < TARGET_PRINTED_MS,
            "every row as `who-can --json` prints it, to /dev/null",
        ),
        Row(
            "    of which: the answer's users read by name",
            read_ms,
            read_ms / floor_ms,
            note=f"store.user_columns alone: {len(user_ids)} users' names and activity, in name order;"
            " information, no target",
        ),
        Row(
            f"who-can {target} (all rows, kept)",
            all_ms,
            all_ms / floor_ms,
            note=f"list() of all {len(everyone)} UserAccess rows; information, no target",
        ),
        Row(
            f"access of {heavy}",
            acc_ms,
            None,
            f"< {TARGET_QUERY_MS:g} ms",
            acc_ms < TARGET_QUERY_MS,
            f"{len(reached)} targets, {params.heavy_groups} direct groups",
        ),
    ]
    print_table(f"Access queries (median of {runs} after a warm-up)", rows, unit="ms")
    return rows


def profile_queries(ctx: Context, directory: Directory) -> None:
    target, heavy = directory.who_can_target, directory.heavy_user_name
    profiled(f"who-can {target} (first page)", partial(who_can_first_page, ctx, target), 25)
    profiled(f"who-can {target} (printed)", partial(who_can_printed, ctx, target, False), 25)
    profiled(f"who-can {target} (--json)", partial(who_can_printed, ctx, target, True), 25)
    profiled(f"access of {heavy}", partial(access_of_named, ctx, heavy), 25)


def queries_only(args: argparse.Namespace, directory: Directory) -> int:
    """The access queries alone, on a cache an earlier --keep-db run left (same sizes and seed)."""
    db = Path(args.reuse_db)
    if not db.is_file():
        print(f"no database at {db}; make one with --keep-db")
        return 2
    ctx = Context.open(str(db))
    try:
        rows = access_rows(ctx, directory, args.params, args.runs)
        if args.profile:
            profile_queries(ctx, directory)
    finally:
        ctx.close()
    missed = [r.label.strip() for r in rows if r.met is False]
    print()
    print("targets: all met" if not missed else f"targets missed: {'; '.join(missed)}")
    return 0


# Fetch and parse ------------------------------------------------------------------------


def page_urls(url: str, manifest: dict[str, Any]) -> list[tuple[str, dict[str, int]]]:
    size = int(manifest["page_size"])
    out: list[tuple[str, dict[str, int]]] = [(f"{url}/ServiceProviderConfig", {})]
    for endpoint, total in (("Users", manifest["users"]), ("Groups", manifest["groups"])):
        out += [
            (f"{url}/{endpoint}", {"startIndex": s, "count": size}) for s in range(1, max(total, 1) + 1, size)
        ]
    return out


def download_only(pages: list[tuple[str, dict[str, int]]]) -> int:
    received = 0
    with httpx.Client() as client:
        for url, params in pages:
            response = client.get(url, params=params)
            response.raise_for_status()
            received += len(response.content)
    return received


def download_and_decode(pages: list[tuple[str, dict[str, int]]]) -> int:
    """The floor of a client built on the json module: decode every page, keep nothing."""
    resources = 0
    with httpx.Client() as client:
        for url, params in pages:
            resources += len(json.loads(client.get(url, params=params).content).get("Resources") or ())
    return resources


def scim_fetch(url: str, page_size: int, concurrency: int | None = None) -> Snapshot:
    from groupwarden.sources.scim import ScimSource

    options = {} if concurrency is None else {"page_concurrency": concurrency}
    return ScimSource(url, None, name=SOURCE, page_size=page_size, **options).fetch()  # type: ignore[arg-type]


def fetch_comparison(args: argparse.Namespace, directory: Directory) -> list[Row]:
    """ScimSource.fetch against the fast server, beside bare httpx loops over the same pages."""
    params: Params = args.params
    pages_dir = ensure_scim_pages(directory, args.page_size)
    manifest = json.loads((pages_dir / "manifest.json").read_text())
    with start_server_process(pages_dir) as url:
        pages = page_urls(url, manifest)
        size = download_only(pages)  # warm-up of both sides
        scim_fetch(url, args.page_size)
        bare, decoded, sequential, client = [], [], [], []
        for _ in range(args.fetch_runs):
            bare.append(timed(lambda: download_only(pages))[0])
            decoded.append(timed(lambda: download_and_decode(pages))[0])
            sequential.append(timed(lambda: scim_fetch(url, args.page_size, 1))[0])
            seconds, fetched = timed(lambda: scim_fetch(url, args.page_size))
            client.append(seconds)
            assert len(fetched.users) == params.users and len(fetched.groups) == params.groups
            del fetched
        bare_s, decoded_s, sequential_s, client_s = map(
            statistics.median, (bare, decoded, sequential, client)
        )
        rows = [
            Row(
                "bare httpx loop (download only)",
                bare_s,
                1.0,
                note=f"{len(pages)} requests, {size / 1e6:.1f} MB",
            ),
            Row("  reference: httpx loop + json.loads only", decoded_s, decoded_s / bare_s),
            Row("  reference: ScimSource, one page at a time", sequential_s, sequential_s / bare_s),
            Row(
                "ScimSource.fetch (fetch and parse)",
                client_s,
                client_s / bare_s,
                note=f"runs: {', '.join(f'{s:.3f}' for s in client)} s",
            ),
            Row(
                "  ScimSource.fetch / httpx + json.loads",
                client_s,
                client_s / decoded_s,
                f"<= {TARGET_FETCH_DECODE:g}x",
                client_s / decoded_s <= TARGET_FETCH_DECODE,
            ),
            Row(
                "  ScimSource.fetch / one page at a time",
                client_s,
                client_s / sequential_s,
                f"<= {TARGET_FETCH_SEQUENTIAL:g}x",
                client_s / sequential_s <= TARGET_FETCH_SEQUENTIAL,
            ),
        ]
        print_table(
            f"SCIM fetch and parse, no latency (median of {args.fetch_runs} alternating rounds)", rows
        )
        if args.profile:
            profiled("ScimSource.fetch", lambda: scim_fetch(url, args.page_size), 25)
    if args.latency_ms > 0:
        rows += latency_comparison(args, directory)
    return rows


def latency_comparison(args: argparse.Namespace, directory: Directory) -> list[Row]:
    """ScimSource.fetch against a sequential bare httpx loop, each response args.latency_ms late."""
    params: Params = args.params
    pages_dir = ensure_scim_pages(directory, LATENCY_PAGE)
    manifest = json.loads((pages_dir / "manifest.json").read_text())
    with start_server_process(pages_dir, args.latency_ms) as url:
        pages = page_urls(url, manifest)
        bare, client = [], []
        for _ in range(args.fetch_runs):
            bare.append(timed(lambda: download_only(pages))[0])
            seconds, fetched = timed(lambda: scim_fetch(url, LATENCY_PAGE))
            client.append(seconds)
            assert len(fetched.users) == params.users and len(fetched.groups) == params.groups
            del fetched
    bare_s, client_s = map(statistics.median, (bare, client))
    rows = [
        Row("sequential bare httpx loop (download only)", bare_s, 1.0, note=f"{len(pages)} requests"),
        Row(
            "ScimSource.fetch (fetch and parse)",
            client_s,
            client_s / bare_s,
            f"<= {TARGET_FETCH_LATENCY:g}x",
            client_s / bare_s <= TARGET_FETCH_LATENCY,
            f"runs: {', '.join(f'{s:.3f}' for s in client)} s",
        ),
    ]
    print_table(
        f"SCIM fetch, {args.latency_ms:g} ms a response, pages of {LATENCY_PAGE}"
        f" (median of {args.fetch_runs} alternating rounds)",
        rows,
    )
    return rows


def fetch_only(args: argparse.Namespace, directory: Directory) -> int:
    """The SCIM fetch comparison alone: no database, no sync, no queries."""
    rows = fetch_comparison(args, directory)
    missed = [r.label.strip() for r in rows if r.met is False]
    print()
    print("targets: all met" if not missed else f"targets missed: {'; '.join(missed)}")
    return 0


# The run --------------------------------------------------------------------------------


def machine() -> str:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, nproc {usable},"
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {platform.machine()}"
    )


def verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def print_table(title: str, rows: list[Row], unit: str = "s") -> None:
    print(f"\n{title}")
    print(f"  {'':44s} {unit:>9s} {'ratio':>7s}  {'target':<9s} {'':6s}")
    for row in rows:
        value = f"{row.seconds:9.3f}" if unit == "s" else f"{row.seconds:9.1f}"
        ratio = f"{row.ratio:6.2f}x" if row.ratio is not None else ""
        print(f"  {row.label:44s} {value} {ratio:>7s}  {row.target:<9s} {verdict(row.met):6s} {row.note}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="groupwarden sync and access benchmarks")
    parser.add_argument("--small", action="store_true", help="10k users, 1k groups: a quick run")
    parser.add_argument("--users", type=int)
    parser.add_argument("--groups", type=int)
    parser.add_argument("--memberships", type=int, help="direct memberships in all (default users x 10)")
    parser.add_argument("--big-groups", type=int, help="how many groups of --big-size members")
    parser.add_argument("--big-size", type=int, help="members of each big group (default 50k)")
    parser.add_argument("--heavy-groups", type=int, help="groups of the one heavy user (default 200)")
    parser.add_argument("--workspaces", type=int)
    parser.add_argument("--folders", type=int, help="folders per workspace")
    parser.add_argument("--grants", type=int)
    parser.add_argument("--seed", type=int, default=Params().seed)
    parser.add_argument("--page-size", type=int, default=1000, help="SCIM page size")
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each query (after a warm-up)")
    parser.add_argument(
        "--fetch-runs", type=int, default=3, help="alternating rounds of the fetch comparison"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=50.0,
        help="the SCIM fetch's latency round: each response this late, pages of 100 (0: no such round)",
    )
    parser.add_argument("--skip-fetch", action="store_true", help="leave out the SCIM client comparison")
    parser.add_argument(
        "--only", choices=["fetch"], help="fetch: only the SCIM client comparison (no database, no queries)"
    )
    parser.add_argument("--profile", action="store_true", help="then profile each phase once (cProfile)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark databases in data/")
    parser.add_argument(
        "--reuse-db",
        metavar="PATH",
        help="only the access queries, on the groupwarden.db a --keep-db run of the same sizes left",
    )
    args = parser.parse_args(argv)
    users = args.users or (10_000 if args.small else Params().users)
    groups = args.groups or (1_000 if args.small else Params().groups)
    args.params = Params.scaled(
        users,
        groups,
        memberships=args.memberships,
        big_groups=args.big_groups,
        big_size=args.big_size,
        heavy_groups=args.heavy_groups,
        workspaces=args.workspaces,
        folders=args.folders,
        grants=args.grants,
        seed=args.seed,
    )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params: Params = args.params
    print(f"groupwarden benchmarks — {machine()}")
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")

    seconds, directory = timed(lambda: generate(params))
    print(
        f"directory: {params.users} users, {params.groups} groups, {directory.membership_count} memberships"
        f" (largest group {max(map(len, directory.members), default=0)}, {len(directory.big)} of"
        f" {min(params.big_size, params.users)}), {directory.nested_count} nested, {params.workspaces}"
        f" workspaces x {params.folders} folders, {len(directory.grants)} grants;"
        f" generated in {seconds:.1f} s"
    )
    if args.only == "fetch":
        return fetch_only(args, directory)
    if args.reuse_db:
        return queries_only(args, directory)
    run_dir = DATA_DIR / f"run-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    base_db, gw_db = run_dir / "baseline.db", run_dir / "groupwarden.db"
    try:
        # 1. Sync into SQLite: the plain executemany baseline, then groupwarden's reconcile.
        # Each side runs with only its own input alive: the baseline's million row tuples
        # would otherwise slow groupwarden's garbage collections, and the snapshot the baseline's.
        schema = directory_schema(run_dir / "schema.db")
        rows = baseline_rows(directory)
        member_rows = len(rows.members)
        baseline = baseline_insert(base_db, schema, rows)
        del rows
        snapshot = directory.snapshot()
        ctx = Context.open(str(gw_db))
        first_s, first = timed(partial(reconcile_once, ctx, snapshot))
        again_s, again = timed(partial(reconcile_once, ctx, snapshot))
        del snapshot
        # The baseline once more, in a second fresh file: drift shows as a difference between the two.
        rows = baseline_rows(directory)
        baseline_2 = baseline_insert(run_dir / "baseline-2.db", schema, rows)
        del rows
        base = min(baseline, baseline_2)
        assert first.members_added_count == directory.membership_count, first.summary()
        assert again.is_empty(), f"re-sync of the same snapshot changed something: {again.summary()}"
        sync_rows = [
            Row(
                "sqlite3 executemany baseline (min of 2)",
                base,
                1.0,
                note=f"runs: {baseline:.3f} s, {baseline_2:.3f} s; {member_rows} memberships",
            ),
            Row(
                "reconcile into an empty cache",
                first_s,
                first_s / base,
                f"<= {TARGET_RECONCILE:g}x",
                first_s / base <= TARGET_RECONCILE,
            ),
            Row(
                "no-change re-sync (reconcile again)",
                again_s,
                again_s / base,
                f"<= {TARGET_RESYNC:g}x",
                again_s / base <= TARGET_RESYNC,
            ),
        ]
        print_table("Sync into SQLite (seconds; ratio to the baseline)", sync_rows)

        # 2. Access queries on the synced cache, with workspaces, folders and grants.
        install_layout(ctx, directory)
        query_rows = access_rows(ctx, directory, params, args.runs)

        # 3. The SCIM client against the fast server, and a bare httpx loop over the same pages.
        fetch_rows = [] if args.skip_fetch else fetch_comparison(args, directory)

        if args.profile:
            ctx.close()
            profile_ctx = Context.open(str(run_dir / "profile.db"))
            again_snapshot = directory.snapshot()
            profiled("reconcile into an empty cache", lambda: reconcile_once(profile_ctx, again_snapshot), 25)
            profiled("no-change re-sync", lambda: reconcile_once(profile_ctx, again_snapshot), 25)
            del again_snapshot
            install_layout(profile_ctx, directory)
            profile_queries(profile_ctx, directory)
            profile_ctx.close()
        else:
            ctx.close()

        missed = [r.label.strip() for r in sync_rows + query_rows + fetch_rows if r.met is False]
        print()
        print("targets: all met" if not missed else f"targets missed: {'; '.join(missed)}")
        return 0
    finally:
        if not args.keep_db:
            for path in sorted(run_dir.glob("*"), reverse=True):
                path.unlink()
            run_dir.rmdir()
        else:
            print(f"databases kept in {run_dir}")


if __name__ == "__main__":
    sys.exit(main())
