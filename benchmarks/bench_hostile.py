"""What a hostile server costs a fetch: peak memory under a gzip bomb, time to give up on a drip.

    python benchmarks/bench_hostile.py                  # a 2 GiB bomb, 2 MB on the wire
    python benchmarks/bench_hostile.py --inflated-mib 256   # a quick look

The bomb is served by a local HTTP server on 127.0.0.1 as the answer to every request, with
Content-Encoding: gzip; a fresh child process runs ScimSource.fetch against it, and reports
its peak resident memory (ru_maxrss) with and without the fetch, so the interpreter and its
imports are told apart from what the bomb cost. The drip server sends its headers, then a
byte every 0.2 s; the fetch runs with a 2 s request timeout. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
TARGET_MIB = 300


def bomb(inflated_mib: int) -> bytes:
    """inflated_mib MiB of zeros, gzipped at level 9; cached under data/, it takes a while."""
    path = DATA_DIR / f"bomb-{inflated_mib}m.gz"
    if path.exists():
        return path.read_bytes()
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    body = b"".join(packer.compress(zeros) for _ in range(inflated_mib)) + packer.flush()
    DATA_DIR.mkdir(exist_ok=True)
    path.write_bytes(body)
    return body


@contextmanager
def serving(body: bytes | None, drip: float = 0.0) -> Iterator[str]:
    """A server answering every GET with body gzipped (a bomb), or dripping a small JSON body."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if body is not None:
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            slow = json.dumps({"totalResults": 0, "Resources": [], "pad": "x" * 200}).encode()
            self.send_header("Content-Length", str(len(slow)))
            self.end_headers()
            try:
                for n in range(len(slow)):
                    self.wfile.write(slow[n : n + 1])
                    self.wfile.flush()
                    time.sleep(drip)
            except OSError:
                pass  # the client gave up, as it should

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v2"
    finally:
        server.shutdown()
        server.server_close()


def child(url: str, fetch: bool) -> int:
    """In a fresh process: import the client, fetch (or not), print the peak RSS in MiB."""
    from groupwarden.domain.errors import SyncError
    from groupwarden.sources.scim import ScimSource

    outcome = "not fetched"
    if fetch:
        try:
            ScimSource(url, None).fetch()
            outcome = "fetched?!"
        except SyncError as exc:
            outcome = str(exc)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mib": peak, "outcome": outcome}))
    return 0


def measure(url: str, fetch: bool) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, *(["--fetch"] if fetch else [])],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inflated-mib", type=int, default=2048, help="size of the bomb once inflated")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--fetch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.fetch)

    body = bomb(args.inflated_mib)
    with serving(body) as url:
        idle = measure(url, fetch=False)
        hit = measure(url, fetch=True)
    peak = float(str(hit["peak_mib"]))
    verdict = "met" if peak <= TARGET_MIB else "MISSED"
    print(f"gzip bomb: {len(body) / 1e6:.1f} MB on the wire, {args.inflated_mib} MiB inflated")
    print(f"  peak RSS, imports only            {float(str(idle['peak_mib'])):8.1f} MiB")
    print(f"  peak RSS, ScimSource.fetch        {peak:8.1f} MiB   <= {TARGET_MIB} MiB  {verdict}")
    print(f"  the fetch said: {hit['outcome']}")

    with serving(None, drip=0.2) as url:
        from groupwarden.domain.errors import SyncError
        from groupwarden.sources.scim import ScimSource

        started = time.perf_counter()
        try:
            ScimSource(url, None, request_timeout=2.0).fetch()
            said = "fetched?!"
        except SyncError as exc:
            said = str(exc)
        seconds = time.perf_counter() - started
    print("dripping server (a byte every 0.2 s), request timeout 2 s")
    print(f"  the fetch gave up after           {seconds:8.2f} s")
    print(f"  the fetch said: {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
