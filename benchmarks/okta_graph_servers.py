"""Okta-style and Graph-style page servers for the benchmark, over a generated directory.

Run as a child process (`start_pages_process`): it generates the directory from the same
Params and seed as the parent, renders each page when asked, and serves it on 127.0.0.1.
Rendering happens in the child, so it costs the bare httpx baseline and the source alike.

Okta: /api/v1/users (200 a page), /api/v1/groups, /api/v1/groups/{id}/users (1000 a page),
paged by Link rel="next". Graph: /v1.0/users, /v1.0/groups, /v1.0/groups/{id}/members
(999 a page, @odata.nextLink), and users/groups delta: `$deltatoken=latest` and a
`$deltatoken=v0` round holding 1% of changes (see changes()).

    python benchmarks/okta_graph_servers.py PARAMS_JSON [--latency-ms 50] [--page-size 100]

--latency-ms delays every response by that much (a real IdP's round trip: 50-300 ms);
--page-size serves every listing (the Okta groups too) in pages of that many items.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import Directory, Params, generate

OKTA_USERS, OKTA_MEMBERS, GRAPH_TOP = 200, 1000, 999


def changes(directory: Directory) -> tuple[set[int], dict[int, tuple[int, int]]]:
    """1% of the users renamed, and 1% of the groups losing one member and gaining another."""
    users = set(range(0, len(directory.user_ids), 100))
    moves: dict[int, tuple[int, int]] = {}
    for g in range(0, len(directory.group_ids), 100):
        members = directory.members[g]
        if members:
            gained = (members[0] + 1) % len(directory.user_ids)
            if gained not in members:
                moves[g] = (members[0], gained)
    return users, moves


class Pages:
    def __init__(self, directory: Directory, base: str, page_size: int | None = None) -> None:
        self.d = directory
        self.base = base
        # None: each API's own largest page.
        self.okta_users = page_size or OKTA_USERS
        self.okta_members = page_size or OKTA_MEMBERS
        self.okta_groups = page_size
        self.graph_top = page_size or GRAPH_TOP
        self.group_index = {gid: n for n, gid in enumerate(directory.group_ids)}
        self.renamed, self.moves = changes(directory)

    def display(self, u: int, after: bool) -> str:
        name = self.d.display_names[u]
        return name + " (renamed)" if after and u in self.renamed else name

    def okta_user(self, u: int) -> dict[str, Any]:
        emails = self.d.emails[u]
        return {
            "id": self.d.user_ids[u],
            "status": "ACTIVE" if self.d.active[u] else "SUSPENDED",
            "profile": {
                "login": self.d.user_names[u],
                "displayName": self.d.display_names[u],
                "email": emails[0] if emails else None,
                "secondEmail": emails[1] if len(emails) > 1 else None,
            },
        }

    def graph_user(self, u: int, after: bool = True) -> dict[str, Any]:
        emails = self.d.emails[u]
        return {
            "id": self.d.user_ids[u],
            "userPrincipalName": self.d.user_names[u],
            "displayName": self.display(u, after),
            "mail": emails[0] if emails else None,
            "otherMails": emails[1:],
            "accountEnabled": self.d.active[u],
        }

    def graph_members(self, g: int) -> list[int]:
        members = list(self.d.members[g])
        if g in self.moves:
            lost, gained = self.moves[g]
            members.remove(lost)
            members.append(gained)
        return members

    def answer(self, target: str) -> tuple[bytes, list[tuple[str, str]]]:
        parts = urlsplit(target)
        path, query = parts.path, dict(parse_qsl(parts.query))
        start = int(query.get("at", 0))
        segments = path.strip("/").split("/")
        if path == "/api/v1/users":
            if "filter" in query:
                return self.okta(path, query, [], 0, OKTA_USERS)
            size = self.okta_users
            return self.okta(
                path,
                query,
                [self.okta_user(u) for u in range(start, min(start + size, len(self.d.user_ids)))],
                len(self.d.user_ids),
                size,
                start,
            )
        if path == "/api/v1/groups":
            items = [
                {
                    "id": gid,
                    "type": "OKTA_GROUP",
                    "profile": {"name": self.d.group_names[g], "description": None},
                }
                for g, gid in enumerate(self.d.group_ids)
            ]
            size = self.okta_groups or max(1, len(items))
            return self.okta(path, query, items[start : start + size], len(items), size, start)
        if segments[:3] == ["api", "v1", "groups"] and segments[-1] == "users":
            members = self.d.members[self.group_index[segments[3]]]
            chunk = [self.okta_user(u) for u in members[start : start + self.okta_members]]
            return self.okta(path, query, chunk, len(members), self.okta_members, start)
        top = self.graph_top
        if path == "/v1.0/users":
            chunk = [self.graph_user(u) for u in range(start, min(start + top, len(self.d.user_ids)))]
            return self.graph(path, chunk, len(self.d.user_ids), start)
        if path == "/v1.0/groups":
            chunk = [
                {"id": self.d.group_ids[g], "displayName": self.d.group_names[g], "description": None}
                for g in range(start, min(start + top, len(self.d.group_ids)))
            ]
            return self.graph(path, chunk, len(self.d.group_ids), start)
        if segments[:2] == ["v1.0", "groups"] and segments[-1] == "members":
            g = self.group_index[segments[2]]
            members = self.graph_members(g)
            chunk = [
                {"@odata.type": "#microsoft.graph.user", "id": self.d.user_ids[u]}
                for u in members[start : start + top]
            ]
            chunk += [
                {"@odata.type": "#microsoft.graph.group", "id": self.d.group_ids[c]}
                for c in (self.d.nested[g] if start == 0 else [])
            ]
            return self.graph(path, chunk, len(members), start)
        if segments[-1] == "delta":
            link = f"{self.base}{path}?{urlencode({'$deltatoken': 'v1'})}"
            if query.get("$deltatoken") in ("latest", "v1"):
                body: dict[str, Any] = {"value": [], "@odata.deltaLink": link}
            elif segments[1] == "users":
                body = {
                    "value": [
                        {"id": self.d.user_ids[u], "displayName": self.display(u, True)}
                        for u in sorted(self.renamed)
                    ],
                    "@odata.deltaLink": link,
                }
            else:
                body = {
                    "value": [
                        {
                            "id": self.d.group_ids[g],
                            "members@delta": [
                                {"@odata.type": "#microsoft.graph.user", "id": self.d.user_ids[gained]},
                                {
                                    "@odata.type": "#microsoft.graph.user",
                                    "id": self.d.user_ids[lost],
                                    "@removed": {"reason": "deleted"},
                                },
                            ],
                        }
                        for g, (lost, gained) in sorted(self.moves.items())
                    ],
                    "@odata.deltaLink": link,
                }
            return json.dumps(body).encode(), []
        raise LookupError(path)

    def okta(
        self, path: str, query: dict[str, str], items: list[Any], total: int, size: int, start: int = 0
    ) -> tuple[bytes, list[tuple[str, str]]]:
        headers = [
            ("X-Rate-Limit-Limit", "100000"),
            ("X-Rate-Limit-Remaining", "99999"),
            ("X-Rate-Limit-Reset", "4102444800"),
        ]
        if start + size < total:
            keep = {k: v for k, v in query.items() if k != "at"}
            headers.append(
                ("Link", f'<{self.base}{path}?{urlencode({**keep, "at": start + size})}>; rel="next"')
            )
        return json.dumps(items).encode(), headers

    def graph(
        self, path: str, items: list[Any], total: int, start: int
    ) -> tuple[bytes, list[tuple[str, str]]]:
        body: dict[str, Any] = {"value": items}
        if start + self.graph_top < total:
            body["@odata.nextLink"] = f"{self.base}{path}?{urlencode({'at': start + self.graph_top})}"
        return json.dumps(body).encode(), []


def serve(params: Params, latency_ms: float = 0.0, page_size: int | None = None) -> None:
    directory = generate(params)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    pages = Pages(directory, f"http://127.0.0.1:{server.server_port}", page_size)
    latency = latency_ms / 1000

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms each.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if latency:
                time.sleep(latency)
            try:
                body, headers = pages.answer(self.path)
                status = 200
            except (LookupError, ValueError):
                body, headers, status = b'{"error": {"code": "NotFound", "message": "no such page"}}', [], 404
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers:
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    print(f"listening on {pages.base}", flush=True)
    server.serve_forever()


@contextmanager
def start_pages_process(
    params: Params, latency_ms: float = 0.0, page_size: int | None = None
) -> Iterator[str]:
    command = [sys.executable, str(Path(__file__).resolve()), json.dumps(asdict(params))]
    command += ["--latency-ms", str(latency_ms)]
    if page_size:
        command += ["--page-size", str(page_size)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"the page server did not start (said {line!r})")
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Okta- and Graph-style page servers on 127.0.0.1.")
    parser.add_argument("params", help="generate.Params as JSON")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay each response this long")
    parser.add_argument("--page-size", type=int, help="items a page (default: each API's largest)")
    args = parser.parse_args(argv)
    serve(Params(**json.loads(args.params)), args.latency_ms, args.page_size)


if __name__ == "__main__":
    main()
