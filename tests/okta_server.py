"""A small Okta management API on 127.0.0.1, following Okta's documented behaviour.

- GET /api/v1/users (limit up to 200; DEPROVISIONED users only through
  filter=status eq "DEPROVISIONED"), /api/v1/groups (limit up to 10000),
  /api/v1/groups/{id}/users (limit up to 1000);
- paging by `Link: <...>; rel="self"` and `<...?after=CURSOR&limit=N>; rel="next"` headers,
  the `after` cursor being opaque;
- `Authorization: SSWS <token>`, else 401 with error code E0000011;
- X-Rate-Limit-Limit / -Remaining / -Reset (epoch seconds) on every answer, a window of
  `rate_limit` requests per minute of the shared clock, 429 E0000047 when it runs out, and
  429s at random (Faults.storm, seeded);
- error bodies {errorCode, errorSummary, errorLink, errorId, errorCauses}.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from idp_fakes import FakeClock, Faults, Person, Team, json_answer, slow_down
from scim_server import ServedApp

TOKEN = "okta-test-token-00TkQ4"
LIMITS = {"users": 200, "groups": 10000, "members": 1000}
DEFAULTS = {"users": 200, "groups": 10000, "members": 1000}


def okta_user(person: Person, status: str | None = None) -> dict[str, Any]:
    first, _, last = person.display_name.partition(" ")
    profile: dict[str, Any] = {
        "login": person.login,
        "firstName": first,
        "lastName": last or None,
        "displayName": person.display_name,
        "email": person.emails[0] if person.emails else None,
        "secondEmail": person.emails[1] if len(person.emails) > 1 else None,
    }
    return {
        "id": person.id,
        "status": status or ("ACTIVE" if person.active else "SUSPENDED"),
        "created": "2024-01-01T00:00:00.000Z",
        "profile": profile,
        "_links": {"self": {"href": f"/api/v1/users/{person.id}"}},
    }


def okta_group(team: Team, kind: str = "OKTA_GROUP") -> dict[str, Any]:
    return {
        "id": team.id,
        "type": kind,
        "profile": {"name": team.name, "description": team.description},
        "_links": {},
    }


class OktaApp:
    def __init__(self, clock: FakeClock, faults: Faults, rate_limit: int) -> None:
        self.clock = clock
        self.faults = faults
        self.rate_limit = rate_limit
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[str]] = {}
        # Users the user listing leaves out (an inconsistent directory), members still.
        self.hidden: set[str] = set()
        self.token = TOKEN
        self.lock = threading.Lock()
        self.window_start = clock.time()
        self.used = 0
        self.base = ""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        faults = self.faults
        path = environ.get("PATH_INFO", "")
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        with self.lock:
            faults.requests += 1
            number = faults.requests
            faults.paths.append(path + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else ""))
            now = self.clock.time()
            if now >= self.window_start + 60:
                self.window_start, self.used = now, 0
            self.used += 1
            remaining = max(0, self.rate_limit - self.used)
            over = self.used > self.rate_limit
            rate = [
                ("X-Rate-Limit-Limit", str(self.rate_limit)),
                ("X-Rate-Limit-Remaining", str(remaining)),
                ("X-Rate-Limit-Reset", str(int(self.window_start + 60))),
            ]
        slow_down(faults)
        if environ.get("HTTP_AUTHORIZATION") != f"SSWS {self.token}":
            return self.error(start_response, "401 Unauthorized", "E0000011", "Invalid token provided", rate)
        if over or faults.roll():
            faults.throttled += 1
            return self.error(
                start_response,
                "429 Too Many Requests",
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
                rate,
            )
        if faults.fail_path and faults.fail_path in path:
            return self.error(
                start_response, "500 Internal Server Error", "E0000009", "Internal Server Error", rate
            )
        if number == faults.malformed:
            return json_answer(start_response, "200 OK", b'[{"id": "00u', rate)
        parts = path.strip("/").split("/")
        if parts[:2] != ["api", "v1"]:
            return self.error(
                start_response, "404 Not Found", "E0000022", "The endpoint does not exist.", rate
            )
        if parts[2:] == ["users"]:
            wanted = query.get("filter") == 'status eq "DEPROVISIONED"'
            items = [
                u
                for u in self.users.values()
                if (u["status"] == "DEPROVISIONED") == wanted and u["id"] not in self.hidden
            ]
            return self.page(start_response, path, query, items, "users", rate)
        if parts[2:] == ["groups"]:
            return self.page(start_response, path, query, list(self.groups.values()), "groups", rate)
        if len(parts) == 5 and parts[2] == "groups" and parts[4] == "users":
            if parts[3] not in self.groups:
                return self.error(
                    start_response,
                    "404 Not Found",
                    "E0000007",
                    f"Not found: Resource not found: {parts[3]} (UserGroup)",
                    rate,
                )
            items = [self.users[uid] for uid in self.members.get(parts[3], [])]
            return self.page(start_response, path, query, items, "members", rate)
        return self.error(start_response, "404 Not Found", "E0000022", "The endpoint does not exist.", rate)

    def page(
        self,
        start_response: Callable[..., Any],
        path: str,
        query: dict[str, str],
        items: list[dict[str, Any]],
        listing: str,
        rate: list[tuple[str, str]],
    ) -> list[bytes]:
        try:
            limit = int(query.get("limit", DEFAULTS[listing]))
        except ValueError:
            return self.error(
                start_response, "400 Bad Request", "E0000001", "Api validation failed: limit", rate
            )
        limit = max(1, min(limit, LIMITS[listing]))
        start = 0
        if "after" in query:
            start = int(base64.urlsafe_b64decode(query["after"].encode()).decode())
        chunk = items[start : start + limit]
        keep = {k: v for k, v in query.items() if k not in ("after", "limit")}
        links = [f'<{self.base}{path}?{urlencode({**keep, "limit": limit})}>; rel="self"']
        if start + limit < len(items):
            after = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            links.append(
                f'<{self.base}{path}?{urlencode({**keep, "after": after, "limit": limit})}>; rel="next"'
            )
        return json_answer(start_response, "200 OK", chunk, [*rate, *(("Link", link) for link in links)])

    @staticmethod
    def error(
        start_response: Callable[..., Any], status: str, code: str, summary: str, rate: list[tuple[str, str]]
    ) -> list[bytes]:
        body = {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae-test",
            "errorCauses": [],
        }
        return json_answer(start_response, status, body, rate)


class OktaServer(ServedApp):
    def __init__(self, clock: FakeClock, faults: Faults, rate_limit: int) -> None:
        self.app = OktaApp(clock, faults, rate_limit)
        super().__init__(self.app)
        self.app.base = self.url
        self.token = TOKEN
        self.faults = faults
        self.clock = clock

    def __enter__(self) -> OktaServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def load(self, people: list[Person], teams: list[Team], kinds: dict[str, str] | None = None) -> None:
        for person in people:
            self.app.users[person.id] = okta_user(person)
        for team in teams:
            assert not team.groups, "Okta groups cannot nest"
            self.app.groups[team.id] = okta_group(team, (kinds or {}).get(team.id, "OKTA_GROUP"))
            self.app.members[team.id] = list(team.users)

    def set_status(self, user_id: str, status: str) -> None:
        self.app.users[user_id]["status"] = status


def start_okta_server(
    clock: FakeClock | None = None, faults: Faults | None = None, rate_limit: int = 600
) -> OktaServer:
    return OktaServer(clock or FakeClock(), faults or Faults(), rate_limit)
