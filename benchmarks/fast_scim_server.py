"""A fast, read-only SCIM 2.0 list server for benchmarks, on 127.0.0.1.

It serves the pages benchmarks/generate.py wrote, from memory, as ready bytes: a request
for /Users or /Groups whose startIndex falls on a page boundary and whose count is the
page size gets the pre-rendered page with no work at all. Any other startIndex/count is
answered correctly too, by joining pre-rendered resources (built once, on first need).
/ServiceProviderConfig announces the page size as filter.maxResults, so a client that
honours it asks for exactly the pre-rendered pages.

It is a raw asyncio HTTP/1.1 server (keep-alive, Content-Length, no chunking), so the
server's own cost stays far below the client's; scim2-server is a real SCIM service and
far too slow to measure a client against.

    python benchmarks/fast_scim_server.py DATA_DIR [--port 0] [--latency-ms 50]

--latency-ms delays every response by that much, as a round trip to a real IdP costs
(50-300 ms); requests on other connections are served meanwhile, as a real server would.

prints "listening on http://127.0.0.1:PORT/v2" once ready, then serves until killed.
From Python, start_server_process(data_dir, latency_ms) runs it in a child process (so the server
does not share the client's interpreter lock) and returns the process and its base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import parse_qsl

PREFIX = "/v2"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
MAX_HEADER = 64 * 1024


class Pages:
    """The pages of one endpoint: ready bytes by startIndex, resources split on demand."""

    def __init__(self, files: list[Path], page_size: int) -> None:
        self.page_size = page_size
        self.by_start: dict[int, bytes] = {}
        self.total = 0
        for path in files:
            body = path.read_bytes()
            head = json.loads(body[: body.index(b',"Resources"')] + b"}")
            self.by_start[int(head["startIndex"])] = body
            self.total = int(head["totalResults"])
        self._resources: list[bytes] | None = None

    def resources(self) -> list[bytes]:
        if self._resources is None:
            out: list[bytes] = []
            for start in sorted(self.by_start):
                page = json.loads(self.by_start[start])
                out.extend(
                    json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode()
                    for r in page["Resources"]
                )
            self._resources = out
        return self._resources

    def page(self, start: int, count: int) -> bytes:
        if count == self.page_size and start in self.by_start:
            return self.by_start[start]
        chosen = self.resources()[start - 1 : start - 1 + count] if count > 0 else []
        head = json.dumps(
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": self.total,
                "startIndex": start,
                "itemsPerPage": len(chosen),
            },
            separators=(",", ":"),
        ).encode()
        return head[:-1] + b',"Resources":[' + b",".join(chosen) + b"]}"


class Catalogue:
    def __init__(self, data_dir: Path) -> None:
        manifest = json.loads((data_dir / "manifest.json").read_text())
        self.page_size = int(manifest["page_size"])
        self.endpoints = {
            "Users": Pages(sorted(data_dir.glob("users-*.json")), self.page_size),
            "Groups": Pages(sorted(data_dir.glob("groups-*.json")), self.page_size),
        }
        self.service_provider_config = json.dumps(
            {
                "schemas": [SPC_SCHEMA],
                "patch": {"supported": False},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": False, "maxResults": self.page_size},
                "changePassword": {"supported": False},
                "sort": {"supported": False},
                "etag": {"supported": False},
                "authenticationSchemes": [],
            }
        ).encode()

    def answer(self, method: str, target: str) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        if path.startswith(PREFIX):
            path = path[len(PREFIX) :]
        path = path.rstrip("/")
        if method != "GET":
            return 405, _error(405, "this benchmark server only lists")
        if path == "/ServiceProviderConfig":
            return 200, self.service_provider_config
        pages = self.endpoints.get(path.lstrip("/"))
        if pages is None:
            return 404, _error(404, "no such resource type")
        params = dict(parse_qsl(query))
        try:
            start = max(1, int(params.get("startIndex", "1")))
            count = max(0, int(params.get("count", str(self.page_size))))
        except ValueError:
            return 400, _error(400, "startIndex and count must be integers")
        return 200, pages.page(start, min(count, self.page_size))


def _error(status: int, detail: str) -> bytes:
    return json.dumps({"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}).encode()


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 GET with keep-alive; requests are read whole, bodies are not expected."""

    def __init__(self, catalogue: Catalogue, latency: float = 0.0) -> None:
        self.catalogue = catalogue
        self.latency = latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER:
                    self.transport.close()
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                self.transport.close()
                return
            method, target, version = parts
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
            }
            status, body = self.catalogue.answer(method, target)
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            head = (
                f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                "Content-Type: application/scim+json\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n".encode()
            )
            if self.latency:
                # Answered later, in order: a client sends the next request on this connection
                # only once it has this answer.
                asyncio.get_running_loop().call_later(self.latency, self.answer, head, body, close)
            else:
                self.answer(head, body, close)
            if close:
                return

    def answer(self, head: bytes, body: bytes, close: bool) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        self.transport.write(head)
        self.transport.write(body)
        if close:
            self.transport.close()


async def serve(data_dir: Path, port: int = 0, latency_ms: float = 0.0) -> None:
    catalogue = Catalogue(data_dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(catalogue, latency_ms / 1000), "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{bound}{PREFIX}", flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def start_server_process(data_dir: Path, latency_ms: float = 0.0) -> Iterator[str]:
    """Run the server in a child process for the duration; yield its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(data_dir), "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the fast SCIM server did not start (said {line!r})")
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve pre-rendered SCIM pages on 127.0.0.1.")
    parser.add_argument("data_dir", type=Path, help="a directory written by benchmarks/generate.py")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay each response this long")
    args = parser.parse_args(argv)
    with suppress(KeyboardInterrupt):
        asyncio.run(serve(args.data_dir, args.port, args.latency_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
