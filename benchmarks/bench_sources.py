"""Okta and Graph fetches against a bare httpx loop, and a Graph delta sync against a full one.

    python benchmarks/bench_sources.py                          # 100k users, 10k groups
    python benchmarks/bench_sources.py --users 10000 --groups 1000   # a quick look

The directory is generate.py's, served by okta_graph_servers.py in a child process. Each
fetch is compared with a bare httpx loop over the very same pages (GET, read the body,
nothing else), measured in the same run; the delta sync of 1% changes (1% of users
renamed, 1% of groups losing one member and gaining another) is compared with a full sync
of the same source from the same cached state. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import Params, generate
from groupwarden.services.context import Context
from groupwarden.services.reconcile import DeletionGuard, reconcile
from groupwarden.services.sync import run_sync
from groupwarden.sources.graph import GraphSource
from groupwarden.sources.okta import OktaSource
from groupwarden.store.db import write_transaction
from groupwarden.store.sources import store_sync_state
from okta_graph_servers import start_pages_process

TARGET_FETCH = 1.5
TARGET_DELTA = 0.1


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def crawl(base: str, starts: list[str], graph: bool) -> list[str]:
    """Every page URL reachable from starts, by the protocol's next links (untimed)."""
    urls: list[str] = []
    with httpx.Client() as client:
        for url in starts:
            next_url: str | None = url
            while next_url:
                urls.append(next_url)
                response = client.get(next_url)
                response.raise_for_status()
                if graph:
                    next_url = json.loads(response.content).get("@odata.nextLink")
                else:
                    next_url = response.links.get("next", {}).get("url")
    return urls


def bare_loop(urls: list[str]) -> int:
    received = 0
    with httpx.Client() as client:
        for url in urls:
            received += len(client.get(url).content)
    return received


def okta_urls(base: str, group_ids: list[str]) -> list[str]:
    starts = [
        f"{base}/api/v1/users?limit=200",
        f"{base}/api/v1/users?limit=200&filter=x",
        f"{base}/api/v1/groups?limit=10000",
    ]
    starts += [f"{base}/api/v1/groups/{gid}/users?limit=1000" for gid in group_ids]
    return crawl(base, starts, graph=False)


def graph_urls(base: str, group_ids: list[str]) -> list[str]:
    starts = [f"{base}/v1.0/users/delta?$deltatoken=latest", f"{base}/v1.0/groups/delta?$deltatoken=latest"]
    starts += [f"{base}/v1.0/users", f"{base}/v1.0/groups"]
    starts += [f"{base}/v1.0/groups/{gid}/members" for gid in group_ids]
    return crawl(base, starts, graph=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1, help="rounds of each comparison (best kept)")
    args = parser.parse_args(argv)
    params = (
        Params() if (args.users, args.groups) == (100_000, 10_000) else Params.scaled(args.users, args.groups)
    )
    directory = generate(params)
    print(
        f"directory: {len(directory.user_ids)} users, {len(directory.group_ids)} groups,"
        f" {directory.membership_count} memberships"
    )
    rows: list[tuple[str, float, float | None, str]] = []
    with start_pages_process(params) as base, tempfile.TemporaryDirectory() as tmp:
        for label, urls, fetch in (
            (
                "Okta",
                okta_urls(base, directory.group_ids),
                lambda: OktaSource(base, "bench-token", name="bench").fetch(),
            ),
            (
                "Graph",
                graph_urls(base, directory.group_ids),
                lambda: GraphSource("t", token="bench-token", name="bench", graph_url=base).fetch(),
            ),
        ):
            bare = min(timed(lambda urls=urls: bare_loop(urls))[0] for _ in range(args.runs))
            best, snapshot = min((timed(fetch) for _ in range(args.runs)), key=lambda pair: pair[0])
            assert len(snapshot.users) == len(directory.user_ids)
            rows.append((f"bare httpx loop, {label} pages ({len(urls)} requests)", bare, None, ""))
            rows.append((f"{label}Source.fetch", best, best / bare, f"<= {TARGET_FETCH}x"))

        ctx = Context.open(str(Path(tmp) / "bench.db"))
        links = json.dumps(
            {
                "users": f"{base}/v1.0/users/delta?$deltatoken=v0",
                "groups": f"{base}/v1.0/groups/delta?$deltatoken=v0",
            },
            sort_keys=True,
        )
        before = directory.snapshot()

        def reset() -> None:
            with write_transaction(ctx.engine) as conn:
                reconcile(
                    conn,
                    before,
                    source_name="bench",
                    source_kind="graph",
                    source_url=base,
                    guard=DeletionGuard(allow=True),
                    write=True,
                )
                store_sync_state(conn, "bench", links)

        def graph() -> GraphSource:
            return GraphSource("t", token="bench-token", name="bench", graph_url=base)

        full_times, delta_times = [], []
        for _ in range(args.runs):
            reset()
            seconds, full = timed(lambda: run_sync(ctx, graph(), full=True, guard=DeletionGuard(allow=True)))
            full_times.append(seconds)
            reset()
            seconds, delta = timed(lambda: run_sync(ctx, graph(), guard=DeletionGuard(allow=True)))
            delta_times.append(seconds)
            assert delta.mode == "delta" and full.mode == "full"
            assert delta.diff.to_dict() == full.diff.to_dict(), "the delta and the full sync disagree"
        ctx.close()
        rows.append(
            (
                f"Graph full sync from a cache 1% behind ({full.diff.members_added_count} members added)",
                min(full_times),
                None,
                "",
            )
        )
        rows.append(
            (
                "Graph delta sync of the same 1%",
                min(delta_times),
                min(delta_times) / min(full_times),
                f"<= {TARGET_DELTA}x",
            )
        )
    width = max(len(r[0]) for r in rows)
    for label, seconds, ratio, target in rows:
        shown = f"{ratio:6.2f}x" if ratio is not None else " " * 7
        met = (
            ""
            if ratio is None
            else ("  met" if ratio <= float(target.split()[1].rstrip("x")) else "  NOT met")
        )
        print(f"{label:<{width}}  {seconds:8.2f} s  {shown}  {target}{met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
