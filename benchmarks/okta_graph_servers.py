"""Okta-style and Graph-style page servers for the benchmark, over a generated directory.

Run as a child process (`start_pages_process`): it generates the directory from the same
Params and seed as the parent, renders each page when asked, and serves it on 127.0.0.1.
Rendering happens in the child, so it costs the bare httpx baseline and the source alike.

Okta: /api/v1/users (200 a page), /api/v1/groups, /api/v1/groups/{id}/users (1000 a page),
paged by Link rel="next". Graph: /v1.0/users, /v1.0/groups, /v1.0/groups/{id}/members
(999 a page, @odata.nextLink), and users/groups delta: `$deltatoken=latest` and a
`$deltatoken=v0` round holding 1% of changes (see changes()).
"""

from __future__ import annotations

import json
import subprocess
import sys
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
    def __init__(self, directory: Directory, base: str) -> None:
        self.d = directory
        self.base = base
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
            return self.okta(
                path,
                query,
                [self.okta_user(u) for u in range(start, min(start + OKTA_USERS, len(self.d.user_ids)))],
                len(self.d.user_ids),
                OKTA_USERS,
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
            return self.okta(path, query, items, len(items), len(items))
        if segments[:3] == ["api", "v1", "groups"] and segments[-1] == "users":
            members = self.d.members[self.group_index[segments[3]]]
            chunk = [self.okta_user(u) for u in members[start : start + OKTA_MEMBERS]]
            return self.okta(path, query, chunk, len(members), OKTA_MEMBERS, start)
        if path == "/v1.0/users":
            chunk = [self.graph_user(u) for u in range(start, min(start + GRAPH_TOP, len(self.d.user_ids)))]
            return self.graph(path, chunk, len(self.d.user_ids), start)
        if path == "/v1.0/groups":
            chunk = [
                {"id": self.d.group_ids[g], "displayName": self.d.group_names[g], "description": None}
                for g in range(start, min(start + GRAPH_TOP, len(self.d.group_ids)))
            ]
            return self.graph(path, chunk, len(self.d.group_ids), start)
        if segments[:2] == ["v1.0", "groups"] and segments[-1] == "members":
            g = self.group_index[segments[2]]
            members = self.graph_members(g)
            chunk = [
                {"@odata.type": "#microsoft.graph.user", "id": self.d.user_ids[u]}
                for u in members[start : start + GRAPH_TOP]
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
        if start + GRAPH_TOP < total:
            body["@odata.nextLink"] = f"{self.base}{path}?{urlencode({'at': start + GRAPH_TOP})}"
        return json.dumps(body).encode(), []


def serve(params: Params) -> None:
    directory = generate(params)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    pages = Pages(directory, f"http://127.0.0.1:{server.server_port}")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms each.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
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
def start_pages_process(params: Params) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), json.dumps(asdict(params))],
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


if __name__ == "__main__":
    serve(Params(**json.loads(sys.argv[1])))
