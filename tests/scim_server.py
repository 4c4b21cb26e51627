"""A real scim2-server on 127.0.0.1, served from a thread, with optional fault injection.

Seeding goes through the server's own HTTP API, so what a test lists is what a real
client would have created. Faults wrap the real app as WSGI middleware and touch only
list requests (GET /Users, GET /Groups), so seeding is never disturbed by them.

    with start_scim_server() as server:
        uid = server.add_user("bjensen", display_name="Barbara")
        server.add_group("eng", users=[uid])
        ScimSource(server.url, server.token).fetch()
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
from scim2_server.testserver.cli import ThreadingWSGIServer

# The same app the demo serves, so the tests sync from exactly what users see.
from groupwarden.demo.server import scim_app

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

TOKEN = "scim-test-token-6f1d2c"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Faults:
    """What to break in list requests; change the fields at any time, even mid-test."""

    #: Serve at most this many resources per page, whatever count the client asked.
    max_count: int | None = None
    #: Answer 500 to every list request after this many were served.
    fail_after: int | None = None
    #: Answer 429 with Retry-After to the first this-many list requests.
    throttle: int = 0
    retry_after: str = "2"
    #: The list request number (1-based) that gets a truncated, non-JSON body.
    malformed: int | None = None
    #: Seconds to wait before answering each list request.
    delay: float = 0.0
    #: Called with the list request number before it is served (to change data mid-sync).
    before_list: Callable[[int], None] | None = None
    #: The first request for this startIndex gets 429 with Retry-After (a throttle mid-way).
    throttle_start: int | None = None
    #: Every request for this startIndex gets 500 (a page failing for good).
    fail_start: int | None = None
    #: How many list requests arrived so far, and their query strings as the client sent them.
    list_requests: int = 0
    queries: list[str] = field(default_factory=list)
    #: List requests being served right now, and the most there ever were at once.
    in_flight: int = 0
    most_in_flight: int = 0


class FaultyApp:
    """WSGI middleware that applies Faults to the list requests of the wrapped app."""

    def __init__(self, app: WsgiApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "").rstrip("/")
        if environ["REQUEST_METHOD"] != "GET" or not path.endswith(("/Users", "/Groups")):
            return self.app(environ, start_response)
        faults = self.faults
        with self.lock:
            faults.list_requests += 1
            faults.queries.append(environ.get("QUERY_STRING", ""))
            number = faults.list_requests
            faults.in_flight += 1
            faults.most_in_flight = max(faults.most_in_flight, faults.in_flight)
        try:
            return self.serve(environ, start_response, number)
        finally:
            with self.lock:
                faults.in_flight -= 1

    def serve(self, environ: dict[str, Any], start_response: Callable[..., Any], number: int) -> Any:
        faults = self.faults
        if faults.delay:
            time.sleep(faults.delay)
        start = dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("startIndex")
        if faults.fail_start is not None and start == str(faults.fail_start):
            body = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "500"}'
            return _answer(start_response, "500 Internal Server Error", body)
        if faults.throttle_start is not None and start == str(faults.throttle_start):
            with self.lock:
                faults.throttle_start = None
            return _answer(start_response, "429 Too Many Requests", b"{}", faults.retry_after)
        if faults.before_list is not None:
            faults.before_list(number)
        if number <= faults.throttle:
            return _answer(start_response, "429 Too Many Requests", b"{}", faults.retry_after)
        if faults.fail_after is not None and number > faults.fail_after:
            body = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "500"}'
            return _answer(start_response, "500 Internal Server Error", body)
        if faults.max_count is not None:
            query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
            asked = int(query.get("count", faults.max_count))
            query["count"] = str(min(asked, faults.max_count))
            environ["QUERY_STRING"] = urlencode(query)
        if number == faults.malformed:
            return _answer(start_response, "200 OK", b'{"totalResults": 3, "Resources": [{"id')
        return self.app(environ, start_response)


def _answer(
    start_response: Callable[..., Any], status: str, body: bytes, retry_after: str | None = None
) -> list[bytes]:
    headers = [("Content-Type", "application/scim+json"), ("Content-Length", str(len(body)))]
    if retry_after is not None:
        headers.append(("Retry-After", retry_after))
    start_response(status, headers)
    return [body]


class ServedApp:
    """Any WSGI app served on 127.0.0.1 from a daemon thread; stop() shuts it down."""

    def __init__(self, app: WsgiApp, path: str = "") -> None:
        self.server: WSGIServer = make_server(
            "127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        # A short poll interval so that stop() returns at once instead of within 0.5 s.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class ScimServer(ServedApp):
    """scim2-server over in-memory storage, reachable at .url (ending in /v2)."""

    def __init__(self, token: str = TOKEN, faults: Faults | None = None) -> None:
        app = scim_app(token)
        self.token = token
        self.faults = faults or Faults()
        super().__init__(FaultyApp(app, self.faults), "/v2")
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def stop(self) -> None:
        self.client.close()
        super().stop()

    def __enter__(self) -> ScimServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.request(method, path, json=body)
        if response.status_code >= 300:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def add_user(
        self,
        user_name: str,
        *,
        display_name: str | None = None,
        emails: Iterable[str] = (),
        primary_email: str | None = None,
        active: bool = True,
        **extra: Any,
    ) -> str:
        """Create a user; emails are listed in order, primary_email marked primary."""
        body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": user_name, "active": active}
        if display_name is not None:
            body["displayName"] = display_name
        listed = [{"value": e, "primary": e == primary_email} for e in emails]
        if listed:
            body["emails"] = listed
        body.update(extra)
        return str(self._send("POST", "/Users", body)["id"])

    def add_group(self, name: str, *, users: Iterable[str] = (), groups: Iterable[str] = ()) -> str:
        body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": _members(users, groups)}
        return str(self._send("POST", "/Groups", body)["id"])

    def replace_group(
        self, group_id: str, name: str, *, users: Iterable[str] = (), groups: Iterable[str] = ()
    ) -> None:
        """Rename a group and set its members (PUT), keeping its id."""
        body = {
            "schemas": [GROUP_SCHEMA],
            "id": group_id,
            "displayName": name,
            "members": _members(users, groups),
        }
        self._send("PUT", f"/Groups/{group_id}", body)

    def replace_user(self, user_id: str, user_name: str, **fields: Any) -> None:
        body = {"schemas": [USER_SCHEMA], "id": user_id, "userName": user_name, **fields}
        self._send("PUT", f"/Users/{user_id}", body)

    def delete_user(self, user_id: str) -> None:
        self._send("DELETE", f"/Users/{user_id}")

    def delete_group(self, group_id: str) -> None:
        self._send("DELETE", f"/Groups/{group_id}")


def _members(users: Iterable[str], groups: Iterable[str]) -> list[dict[str, str]]:
    return [{"value": u, "type": "User"} for u in users] + [{"value": g, "type": "Group"} for g in groups]


def start_scim_server(token: str = TOKEN, faults: Faults | None = None) -> ScimServer:
    """Start a scim2-server on a free port; call .stop() (or use it as a context manager)."""
    return ScimServer(token, faults)


class RawScimApp:
    """A hand-written SCIM list endpoint serving resources exactly as given, unnormalised.

    For what scim2-server would clean up: string booleans, unknown attributes, odd ids.
    """

    def __init__(
        self,
        users: list[dict[str, Any]],
        groups: list[dict[str, Any]],
        claimed_total: int | None = None,
    ) -> None:
        self.resources = {"Users": users, "Groups": groups}
        # A totalResults to announce instead of the true one (a server that loses items).
        self.claimed_total = claimed_total

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        endpoint = environ.get("PATH_INFO", "").strip("/").rsplit("/", 1)[-1]
        if endpoint not in self.resources:
            return _answer(start_response, "404 Not Found", b'{"status": "404"}')
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        start = int(query.get("startIndex", 1))
        count = int(query.get("count", 100))
        everything = self.resources[endpoint]
        page = everything[start - 1 : start - 1 + count]
        body = {
            "schemas": [LIST_SCHEMA],
            "totalResults": len(everything) if self.claimed_total is None else self.claimed_total,
            "startIndex": start,
            "itemsPerPage": len(page),
            "Resources": page,
        }
        return _answer(start_response, "200 OK", json.dumps(body).encode())


def serve_raw(
    users: list[dict[str, Any]], groups: list[dict[str, Any]], claimed_total: int | None = None
) -> ServedApp:
    """Serve RawScimApp on 127.0.0.1 (no token needed); any path prefix works."""
    return ServedApp(RawScimApp(users, groups, claimed_total), "/v2")
