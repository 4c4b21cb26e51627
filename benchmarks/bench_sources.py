"""Okta and Graph fetches against bare httpx loops, and a Graph delta sync against a full one.

    python benchmarks/bench_sources.py --users 20000 --groups 2000 --latency-ms 50   # minutes
    python benchmarks/bench_sources.py --users 10000 --groups 1000 --latency-ms 0    # a quick look

The directory is generate.py's, served by okta_graph_servers.py in child processes. Every
figure is a ratio to a baseline measured in the same run:

- with --latency-ms (each response delayed that long, pages of 100 items): each full fetch
  against a sequential bare httpx loop over the very same pages (GET, read the body,
  nothing else). Target <= 0.4x: the groups' member listings run side by side.
- without latency (each API's own page sizes): each full fetch against the same source
  fetching one page at a time (page_concurrency=1, the client before concurrent paging).
  Target <= 1x: concurrency costs nothing where round trips are free. The bare loop is
  printed beside it as information.
- the delta sync of 1% changes (1% of users renamed, 1% of groups losing one member and
  gaining another) against a full sync of the same source from the same cached state.

The script ends with `targets: all met` or `targets missed: ...`; it asserts no timing.
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

TARGET_LATENCY = 0.4
TARGET_NO_LATENCY = 1.0
TARGET_DELTA = 0.1
LATENCY_PAGE = 100


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


def okta(base: str, concurrency: int | None = None) -> OktaSource:
    options = {} if concurrency is None else {"page_concurrency": concurrency}
    return OktaSource(base, "bench-token", name="bench", **options)  # type: ignore[arg-type]


def graph(base: str, concurrency: int | None = None) -> GraphSource:
    options = {} if concurrency is None else {"page_concurrency": concurrency}
    return GraphSource("t", token="bench-token", name="bench", graph_url=base, **options)  # type: ignore[arg-type]


Row = tuple[str, float, float | None, float | None]


def best(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    return min((timed(fn) for _ in range(runs)), key=lambda pair: pair[0])


def no_latency_rows(base: str, directory: Any, runs: int) -> list[Row]:
    rows: list[Row] = []
    for label, urls, make in (
        ("Okta", okta_urls(base, directory.group_ids), okta),
        ("Graph", graph_urls(base, directory.group_ids), graph),
    ):
        # Alternating in each round, so a drift of the machine's load weighs on the three alike.
        bare, today, now = float("inf"), float("inf"), float("inf")
        for _ in range(runs):
            bare = min(bare, timed(lambda urls=urls: bare_loop(urls))[0])
            today = min(today, timed(lambda make=make: make(base, 1).fetch())[0])
            seconds, snapshot = timed(lambda make=make: make(base).fetch())
            now = min(now, seconds)
        assert len(snapshot.users) == len(directory.user_ids)
        rows.append((f"no latency: bare httpx loop, {label} pages ({len(urls)} requests)", bare, None, None))
        rows.append((f"no latency: {label}Source.fetch, one page at a time", today, today / bare, None))
        rows.append((f"no latency: {label}Source.fetch", now, now / today, TARGET_NO_LATENCY))
    return rows


def latency_rows(params: Params, directory: Any, latency_ms: float, runs: int) -> list[Row]:
    rows: list[Row] = []
    # The pages are found on a server without latency (same data, same page size), then
    # fetched from the one with it.
    with (
        start_pages_process(params, 0, LATENCY_PAGE) as plain,
        start_pages_process(params, latency_ms, LATENCY_PAGE) as slow,
    ):
        for label, urls, make in (
            ("Okta", okta_urls(plain, directory.group_ids), okta),
            ("Graph", graph_urls(plain, directory.group_ids), graph),
        ):
            urls = [slow + url.removeprefix(plain) for url in urls]
            bare, _ = best(runs, lambda urls=urls: bare_loop(urls))
            now, snapshot = best(runs, lambda make=make: make(slow).fetch())
            assert len(snapshot.users) == len(directory.user_ids)
            where = f"{latency_ms:g} ms"
            rows.append(
                (f"{where}: sequential bare httpx loop, {label} ({len(urls)} requests)", bare, None, None)
            )
            rows.append((f"{where}: {label}Source.fetch", now, now / bare, TARGET_LATENCY))
    return rows


def delta_rows(base: str, directory: Any, runs: int, tmp: str) -> list[Row]:
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

    full_times, delta_times = [], []
    for _ in range(runs):
        reset()
        seconds, full = timed(lambda: run_sync(ctx, graph(base), full=True, guard=DeletionGuard(allow=True)))
        full_times.append(seconds)
        reset()
        seconds, delta = timed(lambda: run_sync(ctx, graph(base), guard=DeletionGuard(allow=True)))
        delta_times.append(seconds)
        assert delta.mode == "delta" and full.mode == "full"
        assert delta.diff.to_dict() == full.diff.to_dict(), "the delta and the full sync disagree"
    ctx.close()
    return [
        (
            f"Graph full sync from a cache 1% behind ({full.diff.members_added_count} members added)",
            min(full_times),
            None,
            None,
        ),
        (
            "Graph delta sync of the same 1%",
            min(delta_times),
            min(delta_times) / min(full_times),
            TARGET_DELTA,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument(
        "--runs", type=int, default=3, help="rounds of each comparison, alternating (best kept)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="each response's delay in the latency round (0: none)"
    )
    args = parser.parse_args(argv)
    params = (
        Params() if (args.users, args.groups) == (100_000, 10_000) else Params.scaled(args.users, args.groups)
    )
    directory = generate(params)
    print(
        f"directory: {len(directory.user_ids)} users, {len(directory.group_ids)} groups,"
        f" {directory.membership_count} memberships; default page_concurrency"
        f" {OktaSource('http://127.0.0.1', 't').page_concurrency}"
    )
    rows: list[Row] = []
    with start_pages_process(params) as base, tempfile.TemporaryDirectory() as tmp:
        rows += no_latency_rows(base, directory, args.runs)
        rows += delta_rows(base, directory, args.runs, tmp)
    if args.latency_ms > 0:
        rows += latency_rows(params, directory, args.latency_ms, args.runs)
    width = max(len(r[0]) for r in rows)
    missed: list[str] = []
    for label, seconds, ratio, target in rows:
        shown = f"{ratio:6.2f}x" if ratio is not None else " " * 7
        goal = f"<= {target:g}x" if target is not None else ""
        met = ""
        if target is not None and ratio is not None:
            met = "  met" if ratio <= target else "  NOT met"
            if ratio > target:
                missed.append(label)
        print(f"{label:<{width}}  {seconds:8.2f} s  {shown}  {goal}{met}")
    print()
    print("targets: all met" if not missed else f"targets missed: {'; '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
