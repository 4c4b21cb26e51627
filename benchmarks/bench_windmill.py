"""who-can on a linked workspace's folder, read from a pull of the Windmill stand-in; prints figures.

    python benchmarks/bench_windmill.py                                   # 20 x 500 x 20, the issue's size
    python benchmarks/bench_windmill.py --workspaces 2 --folders 50 --items 5
    python benchmarks/bench_windmill.py --db postgresql+psycopg://USER@127.0.0.1:5432/DB

The stand-in is filled by benchmarks/windmill_standin.py's generator (populate) and pulled
into a temporary SQLite store (or the empty database --db names). The IdP side is synced
too: one group per Windmill instance group, matched by name, each with a nested group
holding part of its members, so every answer walks the IdP's nesting for its explanations.
Measured: who-can on folders spread over the instance, each call whole (its own connection,
every read, the rule, the rows), the same on an item, and one user's access across every
linked workspace (no target). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from groupwarden.demo.windmill_server import WindmillStandIn, populate
from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.services import resolve
from groupwarden.services.access import access_of, who_can
from groupwarden.services.context import Context
from groupwarden.services.reconcile import DeletionGuard, reconcile
from groupwarden.services.windmill import WindmillLink, pull
from groupwarden.store.db import write_transaction

TOKEN_VAR = "GW_BENCH_WINDMILL_TOKEN"
TARGET_MS = 50.0


def idp_snapshot(users: int, groups: int) -> Snapshot:
    """The IdP behind the generated instance: populate's users by email, its groups by name, each
    group holding half its members itself and the other half through a nested group."""
    people = [SourceUser(f"u{u}", f"person{u}", None, [f"user_{u}@example.test"]) for u in range(users)]
    out: list[SourceGroup] = []
    for g in range(groups):
        members = [f"u{u}" for u in range(users) if u % groups == g]
        half = len(members) // 2
        out.append(SourceGroup(f"g{g}", f"Team {g}", user_members=members[:half], group_members=[f"n{g}"]))
        out.append(SourceGroup(f"n{g}", f"Team {g} nested", user_members=members[half:]))
    return Snapshot(users=people, groups=out)


def timed(call: object, runs: int) -> list[float]:
    assert callable(call)
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--folders", type=int, default=500)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5, help="calls per target")
    parser.add_argument("--db", help="an empty database's SQLAlchemy URL (default: a temporary SQLite file)")
    args = parser.parse_args()

    standin = WindmillStandIn()
    started = time.perf_counter()
    populate(
        standin,
        workspaces=args.workspaces,
        folders=args.folders,
        items=args.items,
        users=args.users,
        instance_groups=args.groups,
    )
    size = f"{args.workspaces} workspaces x {args.folders} folders x {args.items} items"
    print(f"stand-in built: {size} in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(args.db or str(Path(tmp) / "bench.db"))
        try:
            with write_transaction(ctx.engine) as conn:
                reconcile(
                    conn,
                    idp_snapshot(args.users, args.groups),
                    source_name="idp",
                    source_kind="scim",
                    source_url="http://127.0.0.1/scim",
                    guard=DeletionGuard(),
                    write=True,
                    now=ctx.clock(),
                )
            os.environ[TOKEN_VAR] = standin.superadmin_token
            started = time.perf_counter()
            report = pull(ctx, WindmillLink("bench", standin.url, token_env=TOKEN_VAR))
            print(
                f"pulled {report.folders} folders, {report.items} items, {report.acl_entries} ACL entries"
                f" in {time.perf_counter() - started:.1f} s"
            )
            spaces = [f"ws{w:02d}" for w in range(0, args.workspaces, max(1, args.workspaces // 4))]
            folders = [f"folder_{f:04d}" for f in range(0, args.folders, max(1, args.folders // 4))]
            folder_times: list[float] = []
            item_times: list[float] = []
            rows = 0
            for ws in spaces:
                for folder in folders:
                    target = resolve.target(ctx, f"{ws}/{folder}")
                    rows = max(rows, len(who_can(ctx, target)))
                    folder_times += timed(lambda t=target: who_can(ctx, t), args.runs)
                    item = resolve.target(ctx, f"{ws}/f/{folder}/item_000")
                    item_times += timed(lambda t=item: who_can(ctx, t), args.runs)
            median = statistics.median(folder_times)
            print(
                f"who-can on a linked folder: {median:.1f} ms (target < {TARGET_MS:.0f} ms);"
                f" worst {max(folder_times):.1f} ms over {len(folder_times)} calls; up to {rows} rows"
            )
            print(
                f"who-can on a linked item: {statistics.median(item_times):.1f} ms;"
                f" worst {max(item_times):.1f} ms"
            )
            user = resolve.user(ctx, "person2")
            spent = timed(lambda: access_of(ctx, user), 1)[0]
            reached = len(access_of(ctx, user)[1])
            print(f"access of a user in every workspace: {spent:.0f} ms ({reached} folders and items)")
            print("target met" if median < TARGET_MS else "target NOT met")
        finally:
            ctx.close()
            standin.stop()


if __name__ == "__main__":
    main()
