"""A small Microsoft Graph (v1.0) and Entra token endpoint on 127.0.0.1, as Microsoft documents.

- POST /{tenant}/oauth2/v2.0/token (client credentials) -> {token_type, expires_in,
  access_token}; a bad secret -> 401 {"error": "invalid_client", "error_description"};
- GET /v1.0/users, /v1.0/groups, /v1.0/groups/{id}/members with $select and $top (at most
  999), paged by @odata.nextLink carrying an opaque $skiptoken; members carry @odata.type;
- a bearer token unknown or past its lifetime on the shared clock -> 401
  InvalidAuthenticationToken; errors as {"error": {"code", "message", "innerError"}};
- 429 and 503 at random (Faults.storm, seeded): 429 with Retry-After, 503 without;
- /v1.0/users/delta and /v1.0/groups/delta: `$deltatoken=latest`, pages ending in an
  @odata.deltaLink, changed objects with the changed properties, "@removed" entries, and
  members@delta with additions and removals; a link the server forgot -> 410 resyncRequired.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from idp_fakes import FakeClock, Faults, Person, Team, json_answer, slow_down
from scim_server import ServedApp

TENANT = "contoso-tenant-id"
CLIENT_ID = "groupwarden-test-client"
CLIENT_SECRET = "graph-test-secret-Zk8~q"
STATIC_TOKEN = "graph-test-static-token-Qw1"
USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"


@dataclass
class State:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # group id -> member (type, id) pairs, in order
    members: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def graph_user(person: Person) -> dict[str, Any]:
    return {
        "id": person.id,
        "userPrincipalName": person.login,
        "displayName": person.display_name,
        "mail": person.emails[0] if person.emails else None,
        "otherMails": person.emails[1:],
        "accountEnabled": person.active,
    }


def _token(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _untoken(value: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(value.encode())))


class GraphApp:
    def __init__(self, clock: FakeClock, faults: Faults) -> None:
        self.clock = clock
        self.faults = faults
        self.lock = threading.Lock()
        self.state = State()
        # Versions of the whole directory, for delta links to be computed against.
        self.history: list[State] = [copy.deepcopy(self.state)]
        self.tokens: dict[str, float] = {STATIC_TOKEN: float("inf")}
        self.issued = 0
        self.token_lifetime = 3599
        self.delta_page = 2
        self.base = ""
        self.forgotten = -1

    # --- changes, each one a new version ------------------------------------------------

    def commit(self) -> None:
        self.history.append(copy.deepcopy(self.state))

    def forget_deltas(self) -> None:
        """Refuse (410) every delta link given out so far, as after a long pause."""
        self.forgotten = len(self.history) - 1
        self.commit()

    def expire_tokens(self) -> None:
        self.tokens = {t: 0.0 for t in self.tokens}

    # --- the app ------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        faults = self.faults
        path = environ.get("PATH_INFO", "")
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        with self.lock:
            faults.requests += 1
            number = faults.requests
            faults.paths.append(path + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else ""))
            storm = faults.roll()
        slow_down(faults)
        if environ["REQUEST_METHOD"] == "POST" and path == f"/{TENANT}/oauth2/v2.0/token":
            return self.token(environ, start_response)
        expires = self.tokens.get(environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer "))
        if expires is None or self.clock.time() >= expires:
            return self.error(
                start_response,
                "401 Unauthorized",
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            )
        if storm:
            faults.throttled += 1
            if faults.throttled % 2:
                return self.error(
                    start_response,
                    "429 Too Many Requests",
                    "TooManyRequests",
                    "Too many requests",
                    [("Retry-After", "3")],
                )
            return self.error(
                start_response, "503 Service Unavailable", "serviceNotAvailable", "Service unavailable"
            )
        if faults.fail_path and faults.fail_path in path:
            return self.error(
                start_response, "500 Internal Server Error", "generalException", "General exception"
            )
        if number == faults.malformed:
            return json_answer(start_response, "200 OK", b'{"value": [{"id": "')
        try:
            body = self.route(path, query)
        except LookupError as missing:
            return self.error(start_response, "404 Not Found", "Request_ResourceNotFound", str(missing))
        except _Gone:
            return self.error(
                start_response,
                "410 Gone",
                "resyncRequired",
                "Resync required. Replace any local cached copies.",
            )
        return json_answer(start_response, "200 OK", body)

    def token(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = dict(parse_qsl(environ["wsgi.input"].read(size).decode()))
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
        ):
            body = {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
                "error_codes": [7000215],
            }
            return json_answer(start_response, "401 Unauthorized", body)
        with self.lock:
            self.issued += 1
            token = f"graph-access-{self.issued}"
            self.tokens[token] = self.clock.time() + self.token_lifetime
        body = {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": 3599,
            "access_token": token,
        }
        return json_answer(start_response, "200 OK", body)

    def route(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        if parts[0] != "v1.0":
            raise LookupError(f"Resource not found for the segment '{parts[0]}'.")
        state = self.state
        if parts[1:] == ["users"]:
            return self.page(path, query, [self.select(u, query) for u in state.users.values()])
        if parts[1:] == ["groups"]:
            return self.page(path, query, [self.select(g, query) for g in state.groups.values()])
        if len(parts) == 4 and parts[1] == "groups" and parts[3] == "members":
            if parts[2] not in state.groups:
                raise LookupError(f"Resource '{parts[2]}' does not exist.")
            items = [{"@odata.type": kind, "id": mid} for kind, mid in state.members[parts[2]]]
            return self.page(path, query, items)
        if len(parts) == 3 and parts[2] == "delta" and parts[1] in ("users", "groups"):
            return self.delta(path, parts[1], query)
        raise LookupError(f"Resource not found for the segment '{parts[-1]}'.")

    @staticmethod
    def select(item: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        fields = query.get("$select")
        if not fields:
            return dict(item)
        wanted = set(fields.split(","))
        return {k: v for k, v in item.items() if k in wanted or k == "id"}

    def page(self, path: str, query: dict[str, str], items: list[dict[str, Any]]) -> dict[str, Any]:
        if "$skiptoken" in query:
            cursor = _untoken(query["$skiptoken"])
            start, top, select = cursor["at"], cursor["top"], cursor["select"]
        else:
            start, top, select = 0, min(int(query.get("$top", 100)), 999), query.get("$select")
        body: dict[str, Any] = {
            "@odata.context": f"{self.base}/v1.0/$metadata#{path}",
            "value": items[start : start + top],
        }
        if start + top < len(items):
            token = _token({"at": start + top, "top": top, "select": select})
            body["@odata.nextLink"] = f"{self.base}{path}?{urlencode({'$skiptoken': token})}"
        return body

    # --- delta --------------------------------------------------------------------------

    def delta(self, path: str, resource: str, query: dict[str, str]) -> dict[str, Any]:
        now = len(self.history) - 1
        if query.get("$deltatoken") == "latest":
            return {"value": [], "@odata.deltaLink": self.delta_link(path, now)}
        if "$skiptoken" in query:
            cursor = _untoken(query["$skiptoken"])
            since, upto, at = cursor["since"], cursor["upto"], cursor["at"]
        elif "$deltatoken" in query:
            since, upto, at = int(_untoken(query["$deltatoken"])["v"]), now, 0
        else:
            since, upto, at = 0, now, 0  # a first round: everything, as additions
        if since <= self.forgotten or since > now:
            raise _Gone()
        old = self.history[since] if since else State()
        changes = (self.user_changes if resource == "users" else self.group_changes)(old, self.history[upto])
        body: dict[str, Any] = {"value": changes[at : at + self.delta_page]}
        if at + self.delta_page < len(changes):
            token = _token({"since": since, "upto": upto, "at": at + self.delta_page})
            body["@odata.nextLink"] = f"{self.base}{path}?{urlencode({'$skiptoken': token})}"
        else:
            body["@odata.deltaLink"] = self.delta_link(path, upto)
        return body

    def delta_link(self, path: str, version: int) -> str:
        return f"{self.base}{path}?{urlencode({'$deltatoken': _token({'v': version})})}"

    @staticmethod
    def user_changes(old: State, new: State) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        for uid, user in new.users.items():
            before = old.users.get(uid)
            if before is None:
                changes.append(dict(user))
            elif before != user:
                changes.append({"id": uid, **{k: v for k, v in user.items() if before.get(k) != v}})
        for uid in old.users:
            if uid not in new.users:
                changes.append({"id": uid, "@removed": {"reason": "changed"}})
        return changes

    @staticmethod
    def group_changes(old: State, new: State) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        for gid, group in new.groups.items():
            before = old.groups.get(gid)
            was = old.members.get(gid, [])
            now = new.members.get(gid, [])
            entry = (
                dict(group)
                if before is None
                else {"id": gid, **{k: v for k, v in group.items() if before.get(k) != v}}
            )
            delta = [{"@odata.type": kind, "id": mid} for kind, mid in now if (kind, mid) not in was]
            delta += [
                {"@odata.type": kind, "id": mid, "@removed": {"reason": "deleted"}}
                for kind, mid in was
                if (kind, mid) not in now
            ]
            if delta:
                entry["members@delta"] = delta
            if before is None or len(entry) > 1:
                changes.append(entry)
        for gid in old.groups:
            if gid not in new.groups:
                changes.append({"id": gid, "@removed": {"reason": "deleted"}})
        return changes

    @staticmethod
    def error(
        start_response: Callable[..., Any],
        status: str,
        code: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        body = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"request-id": "req-test", "date": "2026-11-02T09:30:00"},
            }
        }
        return json_answer(start_response, status, body, headers)


class _Gone(Exception):
    pass


class GraphServer(ServedApp):
    def __init__(self, clock: FakeClock, faults: Faults) -> None:
        self.app = GraphApp(clock, faults)
        super().__init__(self.app)
        self.app.base = self.url
        self.clock = clock
        self.faults = faults

    def __enter__(self) -> GraphServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def state(self) -> State:
        return self.app.state

    def load(self, people: list[Person], teams: list[Team]) -> None:
        for person in people:
            self.state.users[person.id] = graph_user(person)
        for team in teams:
            self.state.groups[team.id] = {
                "id": team.id,
                "displayName": team.name,
                "description": team.description,
            }
            self.state.members[team.id] = [(USER, u) for u in team.users] + [(GROUP, g) for g in team.groups]
        self.app.commit()

    def commit(self) -> None:
        self.app.commit()


def start_graph_server(clock: FakeClock | None = None, faults: Faults | None = None) -> GraphServer:
    return GraphServer(clock or FakeClock(), faults or Faults())
