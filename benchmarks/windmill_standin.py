"""Serve a generated Windmill stand-in, or measure a pull of it against a bare httpx loop.

    python benchmarks/windmill_standin.py --workspaces 20 --folders 500 --items 20          # measure
    python benchmarks/windmill_standin.py --workspaces 20 --folders 500 --items 20 --serve  # serve
    python benchmarks/windmill_standin.py --runs 1 --profile   # then a cProfile of one whole pull

Prints figures; asserts nothing. The bare loop fetches the same pages as a pull, decodes
each with json.loads and does nothing else: the floor a pull is compared with. Two pulls are
measured against it: the client's alone (WindmillClient.pull, the snapshot in memory), and
the whole `groupwarden windmill pull` (services.windmill.pull into a new SQLite store: fetch,
checks, the diff, one transaction, the run recorded). Target: the whole pull <= 2x the loop.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from pathlib import Path

import httpx

from groupwarden.demo.windmill_server import WindmillStandIn, populate
from groupwarden.domain.windmill import ITEM_LISTS
from groupwarden.services.context import Context
from groupwarden.services.windmill import WindmillLink, pull
from groupwarden.sources.windmill import DEFAULT_PER_PAGE, MAX_PER_PAGE, WindmillClient

TOKEN_VAR = "GW_BENCH_WINDMILL_TOKEN"


def whole_pull(url: str, profiler: cProfile.Profile | None = None) -> float:
    """Seconds for services.windmill.pull of the stand-in into a new, empty SQLite store."""
    with tempfile.TemporaryDirectory() as folder:
        ctx = Context.open(str(Path(folder) / "bench.db"))
        try:
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            try:
                pull(ctx, WindmillLink("bench", url, token_env=TOKEN_VAR, standin=True))
            finally:
                if profiler:
                    profiler.disable()
            return time.perf_counter() - started
        finally:
            ctx.close()


def print_profile(url: str, lines: int = 30) -> None:
    """A cProfile of one whole pull (the calling thread only: the stand-in's threads are not in it)."""
    profiler = cProfile.Profile()
    seconds = whole_pull(url, profiler)
    print(f"\nprofile of one whole pull ({seconds:.2f} s with the profiler on):")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)


def bare_loop(url: str, token: str) -> int:
    """Every page a pull reads, fetched and parsed in the plainest way; returns the request count."""
    requests = 0
    with httpx.Client(base_url=f"{url}/api", headers={"Authorization": f"Bearer {token}"}) as http:

        def pages(path: str, per_page: int = DEFAULT_PER_PAGE) -> list[dict[str, object]]:
            nonlocal requests
            rows: list[dict[str, object]] = []
            page = 1
            while True:
                got = json.loads(http.get(path, params={"page": page, "per_page": per_page}).content)
                requests += 1
                rows.extend(got)
                if len(got) < per_page:
                    return rows
                page += 1

        def one(path: str) -> object:
            nonlocal requests
            requests += 1
            return json.loads(http.get(path).content)

        workspaces = pages("/workspaces/list_as_superadmin", MAX_PER_PAGE)
        one("/groups/list")
        for ws in workspaces:
            if ws["deleted"]:
                continue
            w = ws["id"]
            pages(f"/w/{w}/folders/list")
            for plural in ITEM_LISTS.values():
                pages(f"/w/{w}/{plural}/list")
            one(f"/w/{w}/users/list")
            for group in pages(f"/w/{w}/groups/list"):
                one(f"/w/{w}/groups/get/{group['name']}")
            one(f"/w/{w}/workspaces/get_settings")
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspaces", type=int, default=20)
    parser.add_argument("--folders", type=int, default=500)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help="serve until interrupted instead of measuring")
    parser.add_argument("--profile", action="store_true", help="then print a cProfile of one whole pull")
    args = parser.parse_args()

    standin = WindmillStandIn()
    started = time.perf_counter()
    populate(standin, workspaces=args.workspaces, folders=args.folders, items=args.items, users=args.users)
    built = time.perf_counter() - started
    size = f"{args.workspaces} workspaces x {args.folders} folders x {args.items} items"
    print(f"stand-in built: {size} in {built:.2f} s")
    if args.serve:
        print(f"serving the stand-in at {standin.url} (superadmin token: {standin.superadmin_token})")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            standin.stop()
        return

    os.environ[TOKEN_VAR] = standin.superadmin_token
    ratios: list[float] = []
    for run in range(args.runs):
        before = standin.request_count
        started = time.perf_counter()
        requests = bare_loop(standin.url, standin.superadmin_token)
        bare = time.perf_counter() - started
        assert standin.request_count - before == requests
        started = time.perf_counter()
        with WindmillClient(standin.url, standin.superadmin_token) as client:
            snapshot = client.pull()
        pulled = time.perf_counter() - started
        items = sum(len(w.items) for w in snapshot.workspaces)
        whole = whole_pull(standin.url)
        ratios.append(whole / bare)
        print(
            f"run {run + 1}: bare httpx loop {bare:.2f} s ({requests} requests);"
            f" WindmillClient.pull {pulled:.2f} s ({items} items kept), {pulled / bare:.2f}x;"
            f" windmill pull into a new store {whole:.2f} s, {whole / bare:.2f}x"
        )
    best = min(ratios)
    print(f"whole pull, best of {len(ratios)}: {best:.2f}x the bare loop (target <= 2x)")
    print("targets: all met" if best <= 2 else "targets missed: windmill pull into a new store <= 2x")
    if args.profile:
        print_profile(standin.url)
    standin.stop()


if __name__ == "__main__":
    main()
