"""SQLite and PostgreSQL side by side: sync, access queries and racing role changes, in one run.

    python benchmarks/bench_backends.py                         # SQLite only, the issue's sizes
    python benchmarks/bench_backends.py --pg postgresql+psycopg://postgres:PW@127.0.0.1:5432/postgres
    GROUPWARDEN_BENCH_PG=URL python benchmarks/bench_backends.py --small
    python benchmarks/bench_backends.py --users 2000 --groups 200 --runs 2 --changes 20   # seconds

The PostgreSQL URL names a server and a user that can create databases: the benchmark
creates its own scratch database there and drops it at the end. Nothing here asserts a
timing; the run fails only when a racing round loses an update. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench_sync import (
    TARGET_QUERY_MS,
    baseline_insert,
    baseline_rows,
    directory_schema,
    install_layout,
    machine,
    median_ms,
    reconcile_once,
    timed,
    who_can_first_page,
)
from generate import DATA_DIR, Directory, Params, generate
from groupwarden.config import load_settings
from groupwarden.domain.errors import StaleView
from groupwarden.domain.roles import Role
from groupwarden.services import resolve
from groupwarden.services.access import access_of, who_can
from groupwarden.services.context import Actor, Context
from groupwarden.services.grants import folder_grants, grant
from groupwarden.services.layout import add_folder, add_workspace
from groupwarden.store.db import safe_url

PG_ENV = "GROUPWARDEN_BENCH_PG"
RACE_WORKSPACE = "race"
ROLES = [Role.VIEWER, Role.WRITER, Role.ADMIN]
WORKER = "race-worker"


# The racing worker (a child process) ----------------------------------------------------


def race_worker(principal: str, target: str, changes: int, name: str) -> None:
    """Make `changes` role changes, each against the role just read; report done and refused.

    The database comes from GROUPWARDEN_DB (so a password never shows in the process list).
    Prints 'ready' once connected, waits for a line on stdin, then works.
    """
    ctx = Context.open(load_settings().db)
    ctx.actor = Actor(name, "bench", None)
    where = resolve.target(ctx, target)  # connect, and warm the pool and the statement caches
    who = resolve.principal(ctx, principal)
    print("ready", flush=True)
    sys.stdin.readline()
    done = stale = 0
    began = time.perf_counter()
    for i in range(changes):
        seen = {g.principal: g.role for g in folder_grants(ctx, where)}.get(principal)
        wanted = ROLES[(i + len(name)) % 3] if seen is None else ROLES[(ROLES.index(seen) + 1) % 3]
        try:
            grant(ctx, who, where, wanted, expected=seen, confirm_last_admin=True)
            done += 1
        except StaleView:
            stale += 1
    seconds = time.perf_counter() - began
    ctx.close()
    print(json.dumps({"done": done, "stale": stale, "seconds": seconds}), flush=True)


# Stores ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    backend: str
    detail: str = ""
    reconcile_s: float = 0.0
    resync_s: float = 0.0
    baseline_s: float | None = None
    baseline_runs: tuple[float, ...] = ()
    who_can_ms: float = 0.0
    who_can_all_ms: float = 0.0
    who_can_users: int = 0
    access_ms: float = 0.0
    access_targets: int = 0
    # workers -> (changes/s, done, refused, lost updates, seconds)
    race: dict[int, tuple[float, int, int, int, float]] = field(default_factory=dict)


@contextmanager
def sqlite_store(run_dir: Path) -> Iterator[str]:
    db = run_dir / "groupwarden.db"
    try:
        yield str(db)
    finally:
        for path in run_dir.glob("groupwarden.db*"):
            path.unlink()


@contextmanager
def pg_store(server: str) -> Iterator[str]:
    """A scratch database on the server, dropped (connections closed) on the way out."""
    name = f"gw_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


def pg_version(server: str) -> str:
    engine = create_engine(server)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
            fsync = conn.execute(text("SHOW fsync")).scalar()
            sync = conn.execute(text("SHOW synchronous_commit")).scalar()
    finally:
        engine.dispose()
    return f"PostgreSQL {version} (fsync {fsync}, synchronous_commit {sync}) at {safe_url(server)}"


# The phases -----------------------------------------------------------------------------


def sqlite_baseline(directory: Directory, run_dir: Path, schema: list[str], n: int) -> float:
    """bench_sync's plain sqlite3 executemany baseline, in a fresh file."""
    rows = baseline_rows(directory)
    db = run_dir / f"baseline-{n}.db"
    try:
        return baseline_insert(db, schema, rows)
    finally:
        del rows
        for path in run_dir.glob(f"baseline-{n}.db*"):
            path.unlink()


def sync_phase(ctx: Context, directory: Directory, out: Results) -> None:
    snapshot = directory.snapshot()
    out.reconcile_s, first = timed(partial(reconcile_once, ctx, snapshot))
    out.resync_s, again = timed(partial(reconcile_once, ctx, snapshot))
    del snapshot
    assert first.members_added_count == directory.membership_count, first.summary()
    assert again.is_empty(), f"re-sync of the same snapshot changed something: {again.summary()}"
    print(f"  reconcile {out.reconcile_s:.2f} s, no-change re-sync {out.resync_s:.2f} s", flush=True)


def query_phase(ctx: Context, directory: Directory, runs: int, out: Results) -> None:
    install_layout(ctx, directory)
    target, heavy = directory.who_can_target, directory.heavy_user_name
    out.who_can_ms, answer = median_ms(partial(who_can_first_page, ctx, target), runs)
    out.who_can_all_ms, everyone = median_ms(lambda: list(who_can(ctx, resolve.target(ctx, target))), runs)
    out.access_ms, (_name, reached) = median_ms(lambda: access_of(ctx, resolve.user(ctx, heavy)), runs)
    assert len(everyone) == len(answer), "the lazy answer and the full one disagree"
    out.who_can_users, out.access_targets = len(answer), len(reached)
    print(
        f"  who-can {out.who_can_ms:.1f} ms (all rows {out.who_can_all_ms:.1f} ms),"
        f" access {out.access_ms:.1f} ms",
        flush=True,
    )


def audit_violations(ctx: Context, target: str, done: int) -> int:
    """Breaks in the audit chain of target's one grant: each is an update lost or unrecorded.

    Each event's before must be the previous event's after (the first one's: nothing), the
    events must number the successful changes, and the grant must hold the last after.
    """
    with ctx.engine.connect() as conn:
        chain = conn.execute(
            text("SELECT before, after FROM audit_events WHERE target = :t ORDER BY id"), {"t": target}
        ).all()
        final = conn.execute(
            text(
                "SELECT g.role FROM grants g JOIN folders f ON f.id = g.folder_id"
                " WHERE f.workspace_id = :w AND f.name = :f AND g.item_path = ''"
            ),
            {"w": target.split("/")[0], "f": target.split("/")[1]},
        ).all()
    violations = abs(len(chain) - done)
    if chain:
        violations += chain[0][0] is not None
        violations += sum(current[0] != previous[1] for previous, current in pairwise(chain))
    last = chain[-1][1] if chain else None
    violations += [r[0] for r in final] != ([last] if last is not None else [])
    return violations


def race_round(ctx: Context, url: str, principal: str, workers: int, changes: int) -> tuple[float, ...]:
    """workers processes racing on one fresh folder; (changes/s, done, refused, lost, seconds)."""
    folder = f"n{workers}_{uuid.uuid4().hex[:6]}"
    add_folder(ctx, RACE_WORKSPACE, folder)
    target = f"{RACE_WORKSPACE}/{folder}"
    env = {**os.environ, "GROUPWARDEN_DB": url}
    command = [sys.executable, str(Path(__file__).resolve()), WORKER, principal, target, str(changes)]
    procs = [
        subprocess.Popen(
            [*command, f"admin{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(
                    f"race worker failed to start: {line} {proc.stderr.read() if proc.stderr else ''}"
                )
        began = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"race worker failed (exit {proc.returncode}): {err.strip()[-2000:]}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        wall = time.perf_counter() - began
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    done = sum(int(r["done"]) for r in reports)
    stale = sum(int(r["stale"]) for r in reports)
    lost = audit_violations(ctx, target, done)
    return done / wall, done, stale, lost, wall


def race_phase(ctx: Context, url: str, directory: Directory, args: argparse.Namespace, out: Results) -> None:
    add_workspace(ctx, RACE_WORKSPACE)
    # A regular team (not a big group): the principal whose role the workers fight over.
    principal = f"g/{directory.group_names[-1]}"
    for workers in args.workers:
        rate, done, stale, lost, wall = race_round(ctx, url, principal, workers, args.changes)
        out.race[workers] = (rate, int(done), int(stale), int(lost), wall)
        print(
            f"  {workers} worker(s): {done} changes in {wall:.2f} s ({rate:.0f}/s),"
            f" {stale} refused as stale, {lost} lost",
            flush=True,
        )


def run_backend(
    backend: str, url: str, directory: Directory, args: argparse.Namespace, detail: str
) -> Results:
    out = Results(backend, detail)
    print(f"\n{backend}: {detail}", flush=True)
    ctx = Context.open(url)
    try:
        sync_phase(ctx, directory, out)
        query_phase(ctx, directory, args.runs, out)
        race_phase(ctx, url, directory, args, out)
    finally:
        ctx.close()
    return out


# The report -----------------------------------------------------------------------------


def print_report(results: list[Results], directory: Directory, args: argparse.Namespace) -> None:
    width = 20
    label_w = 52
    heavy, target = directory.heavy_user_name, directory.who_can_target

    def line(label: str, cells: list[str]) -> None:
        print(f"  {label:<{label_w}s}" + "".join(f"{c:>{width}s}" for c in cells))

    print("\nResults (one run; compare within a column, and ratios rather than seconds)")
    line("", [r.backend for r in results])
    sqlite = next((r for r in results if r.baseline_s is not None), None)
    if sqlite is not None:
        runs = ", ".join(f"{s:.2f}" for s in sqlite.baseline_runs)
        line(
            f"sqlite3 executemany baseline, s (min of {runs})",
            [f"{r.baseline_s:.2f}" if r.baseline_s is not None else "-" for r in results],
        )

    def with_ratio(r: Results, seconds: float) -> str:
        if r.baseline_s is None:
            return f"{seconds:.2f}"
        return f"{seconds:.2f} ({seconds / r.baseline_s:.2f}x)"

    line("reconcile into an empty store, s", [with_ratio(r, r.reconcile_s) for r in results])
    line("no-change re-sync, s", [with_ratio(r, r.resync_s) for r in results])
    line(
        f"who-can {target}, first page, ms (median of {args.runs}; target < {TARGET_QUERY_MS:g})",
        [f"{r.who_can_ms:.1f} {'met' if r.who_can_ms < TARGET_QUERY_MS else 'MISSED'}" for r in results],
    )
    line("  who-can, every row built and kept, ms", [f"{r.who_can_all_ms:.1f}" for r in results])
    line(f"access of {heavy}, ms", [f"{r.access_ms:.1f}" for r in results])
    for workers in args.workers:
        line(
            f"{workers} process(es) x {args.changes} changes: changes/s",
            [f"{r.race[workers][0]:.0f}" for r in results],
        )
        line("  refused stale changes", [str(r.race[workers][2]) for r in results])
        line("  lost updates (audit chain breaks)", [str(r.race[workers][3]) for r in results])
    print()
    for r in results:
        print(
            f"  {r.backend}: who-can answers {r.who_can_users} users; access reaches"
            f" {r.access_targets} targets; {r.detail}"
        )


# The run --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="groupwarden on SQLite and PostgreSQL, side by side")
    parser.add_argument("--small", action="store_true", help="10k users, 1k groups: a quick run")
    parser.add_argument("--users", type=int)
    parser.add_argument("--groups", type=int)
    parser.add_argument("--memberships", type=int, help="direct memberships in all (default users x 10)")
    parser.add_argument("--big-size", type=int, help="members of each big group (default 50k)")
    parser.add_argument("--heavy-groups", type=int, help="groups of the one heavy user (default 200)")
    parser.add_argument("--grants", type=int)
    parser.add_argument("--seed", type=int, default=Params().seed)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each query (after a warm-up)")
    parser.add_argument("--changes", type=int, default=200, help="role changes per racing process")
    parser.add_argument(
        "--workers",
        default="1,2,4",
        type=lambda s: [int(n) for n in s.split(",") if n.strip()],
        help="racing process counts, comma-separated (default 1,2,4)",
    )
    parser.add_argument(
        "--pg",
        metavar="URL",
        default=os.environ.get(PG_ENV),
        help=f"a PostgreSQL server (SQLAlchemy URL, a user that can create databases); default ${PG_ENV}",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--no-baseline", action="store_true", help="skip the sqlite3 executemany baseline")
    args = parser.parse_args(argv)
    users = args.users or (10_000 if args.small else Params().users)
    groups = args.groups or (1_000 if args.small else Params().groups)
    args.params = Params.scaled(
        users,
        groups,
        memberships=args.memberships,
        big_size=args.big_size,
        heavy_groups=args.heavy_groups,
        grants=args.grants,
        seed=args.seed,
    )
    if args.no_sqlite and not args.pg:
        parser.error(f"--no-sqlite needs --pg URL (or ${PG_ENV})")
    return args


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == [WORKER]:
        race_worker(raw[1], raw[2], int(raw[3]), raw[4])
        return 0
    args = parse_args(argv)
    params: Params = args.params
    print(f"groupwarden backends benchmark — {machine()}")
    shown = [safe_url(a) if "://" in a else a for a in raw]
    print(f"command: {' '.join([Path(sys.argv[0]).name, *shown])}")
    if args.pg:
        print(pg_version(args.pg))
    seconds, directory = timed(lambda: generate(params))
    print(
        f"directory: {params.users} users, {params.groups} groups, {directory.membership_count} memberships"
        f" (largest group {max(map(len, directory.members), default=0)}), {directory.nested_count} nested,"
        f" {params.workspaces} workspaces x {params.folders} folders, {len(directory.grants)} grants;"
        f" generated in {seconds:.1f} s",
        flush=True,
    )
    run_dir = DATA_DIR / f"backends-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    results: list[Results] = []
    try:
        if not args.no_sqlite:
            baselines: list[float] = []
            schema: list[str] = []
            if not args.no_baseline:
                schema = directory_schema(run_dir / "schema.db")
                baselines.append(sqlite_baseline(directory, run_dir, schema, 1))
            with sqlite_store(run_dir) as url:
                sqlite = run_backend("SQLite", url, directory, args, "a file in WAL mode")
            if not args.no_baseline:
                # Once more after: drift over the run shows as a difference between the two.
                baselines.append(sqlite_baseline(directory, run_dir, schema, 2))
                sqlite.baseline_s, sqlite.baseline_runs = min(baselines), tuple(baselines)
            results.append(sqlite)
        if args.pg:
            with pg_store(args.pg) as url:
                results.append(
                    run_backend(
                        "PostgreSQL", url, directory, args, f"scratch database {make_url(url).database}"
                    )
                )
    finally:
        for path in sorted(run_dir.glob("*"), reverse=True):
            path.unlink()
        run_dir.rmdir()
    print_report(results, directory, args)
    lost = sum(r.race[n][3] for r in results for n in r.race)
    print()
    print("lost updates: none" if lost == 0 else f"LOST UPDATES: {lost} audit chain breaks")
    missed = [
        f"{r.backend} who-can first page < {TARGET_QUERY_MS:g} ms"
        for r in results
        if r.who_can_ms >= TARGET_QUERY_MS
    ]
    if lost:
        missed.append("no lost update")
    print("targets: all met" if not missed else f"targets missed: {'; '.join(missed)}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
