"""Hostile identity providers on 127.0.0.1: what a broken or malicious server can send.

Each is a small WSGI app, served from a thread by scim_server.ServedApp:

- DripApp: headers at once, then the body one byte at a time (a per-read timeout never trips);
- BombApp: a gzip body that inflates to far more than any page (a decompression bomb);
- CompressedApp: another app's answers gzip- or deflate-encoded, as a real server may send;
- RepeatingScimApp / ShrinkingScimApp: SCIM paging that never ends, or never reaches its total;
- OnwardOktaApp / OnwardGraphApp: next links that always point onward, with the same item;
- EchoTokenApp: a 401 whose error text repeats the credentials it was sent.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from scim_server import LIST_SCHEMA, WsgiApp

StartResponse = Callable[..., Any]


def answer(start_response: StartResponse, status: str, body: bytes, *headers: tuple[str, str]) -> list[bytes]:
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers]
    )
    return [body]


class DripApp:
    """Sends the headers, then one byte of a valid JSON body every interval seconds."""

    def __init__(self, interval: float = 0.2, size: int = 400) -> None:
        self.interval = interval
        self.body = json.dumps({"totalResults": 0, "Resources": [], "pad": "x" * size}).encode()
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        self.requests += 1
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(self.body)))]
        )
        return self.drip()

    def drip(self) -> Iterator[bytes]:
        for n in range(len(self.body)):
            yield self.body[n : n + 1]
            # Bounded: a client that gave up makes the next write fail and ends this thread.
            time.sleep(self.interval)


def gzip_bomb(inflated: int, level: int = 9, step: int = 1 << 20) -> bytes:
    """A gzip stream of inflated zero bytes: a thousandth of that on the wire at level 9
    (a few seconds to make 2 GiB), a two-hundredth at level 1 (four times faster)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(step)
    parts = [packer.compress(zeros) for _ in range(inflated // step)]
    parts.append(packer.flush())
    return b"".join(parts)


class BombApp:
    """Answers every request with the same gzip body (a bomb), in 64 KiB writes."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
                ("Content-Length", str(len(self.body))),
            ],
        )
        return (self.body[n : n + 65536] for n in range(0, len(self.body), 65536))


class CompressedApp:
    """The wrapped app's answers, compressed with coding ('gzip', 'deflate' or 'raw-deflate')."""

    def __init__(self, app: WsgiApp, coding: str) -> None:
        self.app = app
        self.coding = coding

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        caught: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            caught["status"], caught["headers"] = status, headers

        body = b"".join(self.app(environ, keep))
        wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw-deflate": -zlib.MAX_WBITS}
        packer = zlib.compressobj(6, zlib.DEFLATED, wbits[self.coding])
        packed = packer.compress(body) + packer.flush()
        headers = [(k, v) for k, v in caught["headers"] if k.lower() != "content-length"]
        coding = "deflate" if self.coding == "raw-deflate" else self.coding
        start_response(
            caught["status"], [*headers, ("Content-Encoding", coding), ("Content-Length", str(len(packed)))]
        )
        return [packed]


def scim_user(uid: str) -> dict[str, Any]:
    return {"id": uid, "userName": f"user-{uid}"}


class RepeatingScimApp:
    """Ignores startIndex: the same page every time, claiming a total of a billion.

    It echoes the startIndex asked for, so the client cannot tell by that alone.
    """

    def __init__(self) -> None:
        self.list_requests = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if not environ.get("PATH_INFO", "").endswith(("/Users", "/Groups")):
            return answer(start_response, "404 Not Found", b'{"status": "404"}')
        self.list_requests += 1
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        body = {
            "schemas": [LIST_SCHEMA],
            "totalResults": 10**9,
            "startIndex": int(query.get("startIndex", 1)),
            "Resources": [scim_user("1"), scim_user("2")],
        }
        return answer(start_response, "200 OK", json.dumps(body).encode())


class ShrinkingScimApp:
    """A first page as asked, then one new user a page, never reaching the total it claims."""

    def __init__(self, total: int = 1000) -> None:
        self.total = total
        self.list_requests = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if not environ.get("PATH_INFO", "").endswith(("/Users", "/Groups")):
            return answer(start_response, "404 Not Found", b'{"status": "404"}')
        self.list_requests += 1
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        start, count = int(query.get("startIndex", 1)), int(query.get("count", 100))
        size = count if start == 1 else 1
        resources = [scim_user(str(n)) for n in range(start, start + size)]
        body = {
            "schemas": [LIST_SCHEMA],
            "totalResults": self.total,
            "startIndex": start,
            "Resources": resources,
        }
        return answer(start_response, "200 OK", json.dumps(body).encode())


class OnwardOktaApp:
    """Okta listings whose rel="next" link always points onward, to a page with the same user."""

    def __init__(self) -> None:
        self.base = ""
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        self.requests += 1
        path = environ.get("PATH_INFO", "")
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        after = int(query.get("after", 0)) + 1
        user = {"id": "00u1", "status": "ACTIVE", "profile": {"login": "same@corp.test"}}
        link = f'<{self.base}{path}?after={after}&limit=200>; rel="next"'
        return answer(start_response, "200 OK", json.dumps([user]).encode(), ("Link", link))


class OnwardGraphApp:
    """Graph listings whose @odata.nextLink always points onward, to a page with the same user."""

    def __init__(self) -> None:
        self.base = ""
        self.requests = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        self.requests += 1
        path = environ.get("PATH_INFO", "")
        if path.endswith("/delta"):
            body: dict[str, Any] = {"value": [], "@odata.deltaLink": f"{self.base}{path}?$deltatoken=t"}
            return answer(start_response, "200 OK", json.dumps(body).encode())
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        skip = int(query.get("$skiptoken", 0)) + 1
        body = {
            "value": [{"id": "u1", "userPrincipalName": "same@corp.test"}],
            "@odata.nextLink": f"{self.base}{path}?$skiptoken={skip}",
        }
        return answer(start_response, "200 OK", json.dumps(body).encode())


class EchoTokenApp:
    """Refuses every request with a 401 whose text repeats the credentials it was sent.

    The scheme and the bare token both appear, so that what hides them is the registry of
    known secrets and not only the pattern for an authorization header.
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        sent = environ.get("HTTP_AUTHORIZATION", "")
        bare = sent.split(" ", 1)[-1]
        detail = f"invalid credentials {sent} (token {bare!r} is unknown)"
        body = json.dumps({"status": "401", "detail": detail, "message": detail}).encode()
        return answer(start_response, "401 Unauthorized", body)
