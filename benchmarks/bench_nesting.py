"""Deep nesting: a chain of N nested groups with a cycle at its end; prints three timings.

    python benchmarks/bench_nesting.py              # N = 10,000, the issue's size
    python benchmarks/bench_nesting.py --depth 2000

The chain g00000 ⊃ g00001 ⊃ ... ⊃ g(N-1), each group with one user of its own, and the
last group holding the middle one, so the bottom half is a cycle. It is reconciled into a
temporary SQLite store through the sync's own path. Measured:
  - `groupwarden groups`, the whole command in a child process (target < 2 s);
  - the terminal UI's groups pane: count_groups() and the first page of list_groups()
    (target < 2 s);
  - who-can on a folder granted to the chain's top, the first page (target < 1 s).
Nothing is asserted; the last line says whether the targets were met.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.services import directory, grants, layout, resolve
from groupwarden.services.access import PREFETCH, who_can
from groupwarden.services.context import Context
from groupwarden.services.reconcile import DeletionGuard, reconcile
from groupwarden.store.db import write_transaction

PANE_PAGE = 100


def chain_snapshot(depth: int) -> Snapshot:
    users = [SourceUser(f"u{i:05d}", f"user{i:05d}") for i in range(depth)]
    groups = [
        SourceGroup(
            f"g{i:05d}",
            f"chain{i:05d}",
            user_members=[f"u{i:05d}"],
            group_members=[f"g{i + 1:05d}"] if i + 1 < depth else [f"g{depth // 2:05d}"],
        )
        for i in range(depth)
    ]
    return Snapshot(users=users, groups=groups)


def build(db: Path, depth: int) -> Context:
    ctx = Context.open(str(db))
    with write_transaction(ctx.engine) as conn:
        reconcile(
            conn,
            chain_snapshot(depth),
            source_name="deep",
            source_kind="scim",
            source_url="http://127.0.0.1/scim",
            guard=DeletionGuard(),
            write=True,
            now=ctx.clock(),
        )
    layout.add_workspace(ctx, "bench")
    layout.add_folder(ctx, "bench", "chain")
    grants.grant(ctx, resolve.group(ctx, "chain00000"), resolve.target(ctx, "bench/chain"), "writer")
    return ctx


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: on a busy machine, next to the wall time."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def groups_command(db: Path) -> int:
    """`groupwarden groups` in a child process, its output thrown away; returns the exit code."""
    code = "from groupwarden.cli.main import main; raise SystemExit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, "--db", str(db), "groups"], stdout=subprocess.DEVNULL, check=False
    )
    return done.returncode


def groups_pane(ctx: Context) -> int:
    directory.count_groups(ctx)
    return len(directory.list_groups(ctx, limit=PANE_PAGE))


def who_can_top(ctx: Context) -> int:
    answer = who_can(ctx, resolve.target(ctx, "bench/chain"))
    return len(answer[:PREFETCH])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=10_000, help="groups in the chain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "deep.db"
        built_s, ctx = timed(lambda: build(db, args.depth))
        print(f"chain of {args.depth} nested groups (bottom half a cycle), built in {built_s:.1f} s")
        results = []
        for label, fn, target in (
            ("groupwarden groups (whole command)", lambda: groups_command(db), 2.0),
            ("groups pane (count + first page)", lambda: groups_pane(ctx), 2.0),
            ("who-can on the chain's top (first page)", lambda: who_can_top(ctx), 1.0),
        ):
            cpu = cpu_seconds()
            seconds, _result = timed(fn)
            cpu = cpu_seconds() - cpu
            met = seconds < target
            results.append((label, met))
            print(
                f"  {label:<42} {seconds:7.3f} s (cpu {cpu:.3f} s)  target < {target:.0f} s"
                f"  {'met' if met else 'MISSED'}"
            )
        ctx.engine.dispose()
    missed = [label for label, met in results if not met]
    print("targets: all met" if not missed else f"targets missed: {'; '.join(missed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
