"""A stand-in for a Windmill instance: in memory, served over a real socket on 127.0.0.1.

Not Windmill: it implements only the calls groupwarden makes, with the behaviour that
shared/windmill-api.md and Windmill's handlers describe (text/plain errors, 401 for a
missing permission, pages from 1, addowner/removeowner/acls semantics, update replacing
whole values, normalised instance-group names, grants left behind by deleted groups).
Tests drive it through hooks: injected failures, held (slow) answers, a server going down, a wrong shape,
a server that ignores paging, a request log, and direct changes to its state (what an
admin would do in Windmill's own UI).
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import random
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

from groupwarden.domain.windmill import ITEM_KINDS, ITEM_LISTS, item_folder, normalise_group_name

log = logging.getLogger(__name__)

DEFAULT_PER_PAGE = 1000
MAX_PER_PAGE = 10_000
# The ACL kinds Windmill's acls/* handlers accept; we hold objects for folders and items only.
ACL_KINDS = frozenset(
    {
        "script", "group_", "resource", "schedule", "variable", "flow", "folder", "app", "raw_app",
        "http_trigger", "websocket_trigger", "kafka_trigger", "nats_trigger", "postgres_trigger",
        "mqtt_trigger", "gcp_trigger", "azure_trigger", "sqs_trigger", "email_trigger", "volume",
    }
)  # fmt: skip
# The owner check of addowner/removeowner in release 1.743 (folders.rs validate_owner).
_OWNER_CHARS = re.compile(r"^[A-Za-z0-9_/-]+$")
_LIST_KINDS = {plural: kind for kind, plural in ITEM_LISTS.items()}
_ENCODE = msgspec.json.Encoder()


class _Reply(Exception):
    """An answer other than 200 JSON: status and Windmill's text/plain body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


class _Drop(Exception):
    """Close the connection without answering."""


@dataclass
class Caller:
    email: str
    superadmin: bool = False


@dataclass
class _Fault:
    method: str
    glob: str
    nth: int
    status: int
    text: str
    drop: bool
    seen: int = 0


@dataclass
class Hold:
    """Requests held before they are answered: a slow Windmill, without a sleep anywhere."""

    method: str
    glob: str
    #: The longest a request is held, so that a test that forgets to release cannot hang.
    timeout: float
    #: Set when a matching request has arrived and is waiting.
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """Answer every held request, and every later one, at once."""
        self.released.set()


@dataclass
class _Canned:
    method: str
    glob: str
    body: bytes
    status: int


@dataclass
class Workspace:
    id: str
    name: str
    owner: str
    deleted: bool = False
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in ITEM_KINDS})
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as Windmill behind any proxy would: a client reuses its connection.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each answer waits ~40 ms
    # for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, ctype, payload = self.server.standin.handle(
                method, self.path, self.headers.get("Authorization"), body
            )
        except _Drop:
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: WindmillStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("windmill stand-in: error while serving %s", client_address, exc_info=True)


class WindmillStandIn:
    """The stand-in instance; .url is its base URL (calls go under .url + '/api')."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.workspaces: dict[str, Workspace] = {}
        self.instance_groups: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, Caller] = {}
        self.superadmin_token = self.add_token("admin@windmill.test", superadmin=True)
        #: A valid token whose user belongs to no workspace and is no superadmin.
        self.nobody_token = self.add_token("nobody@windmill.test")
        #: Every request as 'METHOD /path?query', in order.
        self.requests: list[str] = []
        #: Answer page 1 whatever page is asked for, as a broken server would.
        self.ignore_paging = False
        self._faults: list[_Fault] = []
        self._canned: list[_Canned] = []
        self._holds: list[Hold] = []
        self._down_after: int | None = None
        self._down = False
        self._stopper: threading.Thread | None = None
        self._rng = random.Random()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="windmill-standin", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"WindmillStandIn(url={self.url!r})"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> WindmillStandIn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- test hooks -----------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def fail(
        self,
        method: str,
        path_glob: str,
        *,
        nth: int = 1,
        status: int = 500,
        text: str = "Internal: injected failure",
        drop: bool = False,
    ) -> None:
        """Fail the nth request (from now) whose method and path (no query) match the glob."""
        with self.lock:
            self._faults.append(_Fault(method, path_glob, nth, status, text, drop))

    def answer(self, method: str, path_glob: str, body: bytes, status: int = 200) -> None:
        """Answer every matching request with this body (a wrong shape, say)."""
        with self.lock:
            self._canned.append(_Canned(method, path_glob, body, status))

    def hold(self, method: str, path_glob: str, *, timeout: float = 60.0) -> Hold:
        """Hold every matching request until .release() (or timeout seconds, so no test hangs)."""
        held = Hold(method, path_glob, timeout)
        with self.lock:
            self._holds.append(held)
        return held

    def down_after(self, requests: int) -> None:
        """After this many more requests, drop connections and stop listening."""
        with self.lock:
            self._down_after = self.request_count + requests

    # --- state, as an admin would change it in Windmill's UI ------------------------------------

    def add_token(self, email: str, *, superadmin: bool = False) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = Caller(email, superadmin)
        return token

    def add_workspace(self, ws_id: str, name: str | None = None, *, archived: bool = False) -> Workspace:
        with self.lock:
            ws = Workspace(ws_id, name or ws_id, "admin@windmill.test", archived)
            ws.settings = {"auto_invite": {"instance_groups": [], "instance_groups_roles": {}}}
            self.workspaces[ws_id] = ws
            return ws

    def add_user(
        self, ws_id: str, username: str, email: str, *, admin: bool = False, operator: bool = False
    ) -> None:
        with self.lock:
            self.workspaces[ws_id].users[username] = {
                "workspace_id": ws_id,
                "email": email,
                "username": username,
                "is_admin": admin,
                "operator": operator,
                "disabled": False,
                "role": "Admin" if admin else "Operator" if operator else "Developer",
            }

    def remove_user(self, ws_id: str, username: str) -> None:
        """Windmill drops a deleted user's u/ entries everywhere (unlike a group's g/ ones)."""
        with self.lock:
            ws = self.workspaces[ws_id]
            ws.users.pop(username, None)
            key = f"u/{username}"
            for obj in self._acl_objects(ws):
                obj["extra_perms"].pop(key, None)
                if "owners" in obj and key in obj["owners"]:
                    obj["owners"].remove(key)

    def add_folder(
        self,
        ws_id: str,
        name: str,
        owners: list[str] | None = None,
        extra_perms: dict[str, bool] | None = None,
    ) -> None:
        with self.lock:
            perms = dict(extra_perms or {})
            for owner in owners or []:
                perms[owner] = True
            self.workspaces[ws_id].folders[name] = {
                "workspace_id": ws_id,
                "name": name,
                "display_name": name,
                "owners": list(owners or []),
                "extra_perms": perms,
                "summary": None,
                "created_by": "admin",
                "edited_at": "2025-01-01T00:00:00Z",
                "default_permissioned_as": [],
            }

    def set_folder(self, ws_id: str, name: str, owners: list[str], extra_perms: dict[str, bool]) -> None:
        with self.lock:
            folder = self.workspaces[ws_id].folders[name]
            folder["owners"], folder["extra_perms"] = list(owners), dict(extra_perms)

    def add_item(self, ws_id: str, kind: str, path: str, extra_perms: dict[str, bool] | None = None) -> None:
        with self.lock:
            self.workspaces[ws_id].items[kind][path] = {
                "workspace_id": ws_id,
                "path": path,
                "summary": "",
                "extra_perms": dict(extra_perms or {}),
            }

    def add_instance_group(self, name: str, emails: list[str], **extra: Any) -> str:
        """Create an instance group; its name is normalised as Windmill does. Returns the name."""
        with self.lock:
            stored = normalise_group_name(name)
            self.instance_groups[stored] = {
                "name": stored,
                "summary": None,
                "emails": list(emails),
                "instance_role": None,
                **extra,
            }
            return stored

    def delete_instance_group(self, name: str) -> None:
        """Delete an instance group: its g/ grants stay on folders and items, as in Windmill.

        Like the handler, it is also dropped from every workspace's auto-add list.
        """
        with self.lock:
            self.instance_groups.pop(name, None)
            for ws in self.workspaces.values():
                invite = ws.settings.get("auto_invite")
                if isinstance(invite, dict):
                    invite["instance_groups"] = [g for g in invite.get("instance_groups") or [] if g != name]
                    (invite.get("instance_groups_roles") or {}).pop(name, None)

    def add_workspace_group(self, ws_id: str, name: str, members: list[str]) -> None:
        with self.lock:
            self.workspaces[ws_id].groups[name] = {
                "workspace_id": ws_id,
                "name": name,
                "summary": None,
                "members": list(members),
                "extra_perms": {},
            }

    def delete_workspace_group(self, ws_id: str, name: str) -> None:
        """Delete a workspace group; its g/ grants stay behind, as in Windmill."""
        with self.lock:
            self.workspaces[ws_id].groups.pop(name, None)

    def set_settings(self, ws_id: str, settings: dict[str, Any]) -> None:
        """Replace what get_settings returns (the auto_invite shape, or the older flat keys)."""
        with self.lock:
            self.workspaces[ws_id].settings = settings

    # --- serving --------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, authorization: str | None, body: bytes
    ) -> tuple[int, str, bytes]:
        parts = urlsplit(raw_path)
        path = parts.path
        with self.lock:
            holds = [h for h in self._holds if h.method == method and fnmatch.fnmatchcase(path, h.glob)]
        # Waited on outside the lock: other requests (a re-read, a listing) go on meanwhile.
        for held in holds:
            held.arrived.set()
            held.released.wait(held.timeout)
        with self.lock:
            self.requests.append(f"{method} {raw_path}")
            if self._down or (self._down_after is not None and self.request_count > self._down_after):
                self._go_down()
                raise _Drop
            for canned in self._canned:
                if canned.method == method and fnmatch.fnmatchcase(path, canned.glob):
                    return canned.status, "application/json", canned.body
            for fault in self._faults:
                if fault.method == method and fnmatch.fnmatchcase(path, fault.glob):
                    fault.seen += 1
                    if fault.seen == fault.nth:
                        if fault.drop:
                            raise _Drop
                        return fault.status, "text/plain", fault.text.encode()
            try:
                result = self._route(method, path, parse_qs(parts.query), authorization, body)
            except _Reply as reply:
                return reply.status, "text/plain", reply.text.encode()
        if isinstance(result, str):
            return 200, "text/plain", result.encode()
        return 200, "application/json", result

    def _go_down(self) -> None:
        if not self._down:
            self._down = True
            # Stop listening from another thread: shutdown() waits for serve_forever.
            self._stopper = threading.Thread(target=self.stop, daemon=True)
            self._stopper.start()

    def wait_until_down(self, timeout: float = 5.0) -> None:
        """Return once a server that went down has stopped listening (new connections refused)."""
        if self._stopper is not None:
            self._stopper.join(timeout)

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], authorization: str | None, body: bytes
    ) -> bytes | str:
        caller = self._caller(authorization)
        if not path.startswith("/api/"):
            raise _Reply(404, "Not Found")
        rest = path[len("/api/") :]
        if method == "GET" and rest == "workspaces/list_as_superadmin":
            if not caller.superadmin:
                raise _Reply(401, "This endpoint requires the caller to be a super admin")
            return self._workspace_list(query)
        if method == "GET" and rest == "workspaces/list":
            mine = [w for w in self.workspaces.values() if not w.deleted and self._user(caller, w)]
            return _ENCODE.encode([_ws_json(w) for w in mine])
        if method == "GET" and rest == "groups/list":
            return _ENCODE.encode(list(self.instance_groups.values()))
        if method == "GET" and rest.startswith("groups/get/"):
            return self._instance_group(unquote(rest[len("groups/get/") :]))
        if not rest.startswith("w/"):
            raise _Reply(404, "Not Found")
        ws_id, _, call = rest[2:].partition("/")
        ws = self.workspaces.get(unquote(ws_id))
        if ws is None or ws.deleted:
            raise _Reply(404, f"Not found: workspace not found at name {unquote(ws_id)}")
        user = self._user(caller, ws)
        if user is None and not caller.superadmin:
            raise _Reply(401, f"You are not a member of workspace {ws.id}")
        me = _Me(caller, ws, user, self.instance_groups)
        return self._workspace_call(method, call, query, me, body)

    def _workspace_call(
        self, method: str, call: str, query: dict[str, list[str]], me: _Me, body: bytes
    ) -> bytes | str:
        ws = me.ws
        head, _, name = call.partition("/")
        if method == "GET" and call == "folders/list":
            rows = [f for _, f in sorted(ws.folders.items()) if me.sees_folder(f)]
            return self._page(rows, query)
        if method == "GET" and call.startswith("folders/get/"):
            return _ENCODE.encode(self._visible_folder(me, unquote(call[len("folders/get/") :])))
        if method == "POST" and call.startswith("folders/"):
            action, _, folder_name = call[len("folders/") :].partition("/")
            return self._folder_write(me, action, unquote(folder_name), _json(body))
        if method == "GET" and head in _LIST_KINDS and name == "list":
            kind = _LIST_KINDS[head]
            rows = [i for _, i in sorted(ws.items[kind].items()) if me.sees_item(i)]
            return self._page(rows, query)
        if call.startswith("acls/"):
            action, _, target = call[len("acls/") :].partition("/")
            kind, sep, obj_path = unquote(target).partition("/")
            if not sep or not obj_path:
                raise _Reply(400, "Invalid path or kind")
            if kind not in ACL_KINDS:
                raise _Reply(400, "Invalid kind")
            if method == "GET" and action == "get":
                return _ENCODE.encode(self._acl_object(me, kind, obj_path)["extra_perms"])
            if method == "POST" and action in ("add", "remove"):
                return self._acl_write(me, action, kind, obj_path, _json(body))
        if method == "GET" and call == "users/list":
            return _ENCODE.encode(list(ws.users.values()))
        if method == "GET" and call == "groups/list":
            rows = [{k: v for k, v in g.items() if k != "members"} for _, g in sorted(ws.groups.items())]
            return self._page(rows, query)
        if method == "GET" and call.startswith("groups/get/"):
            group = ws.groups.get(unquote(call[len("groups/get/") :]))
            if group is None:
                raise _Reply(404, f"Not found: Group not found at name {unquote(call[len('groups/get/') :])}")
            return _ENCODE.encode(group)
        if method == "GET" and call == "workspaces/get_settings":
            if not me.admin:
                raise _Reply(403, "Require Admin privileges")
            return _ENCODE.encode({"workspace_id": ws.id, **ws.settings})
        raise _Reply(404, "Not Found")

    def _caller(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        caller = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if caller is None:
            raise _Reply(401, "Unauthorized")
        return caller

    def _user(self, caller: Caller, ws: Workspace) -> dict[str, Any] | None:
        for user in ws.users.values():
            if user["email"] == caller.email and not user["disabled"]:
                return user
        return None

    def _page(self, rows: list[Any], query: dict[str, list[str]]) -> bytes:
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("per_page", [str(DEFAULT_PER_PAGE)])[0])
        except ValueError:
            raise _Reply(400, "Failed to deserialize query string: invalid digit found in string") from None
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        page = 1 if self.ignore_paging else max(1, page)
        start = (page - 1) * per_page
        return _ENCODE.encode(rows[start : start + per_page])

    def _workspace_list(self, query: dict[str, list[str]]) -> bytes:
        rows = [_ws_json(w) for w in self.workspaces.values()]
        # Windmill gives no order here; neither do we, so no client can come to rely on one.
        self._rng.shuffle(rows)
        return self._page(rows, query)

    def _instance_group(self, name: str) -> bytes:
        group = self.instance_groups.get(name)
        if group is None:
            raise _Reply(404, f"Not found: IGroup not found at name {name}")
        workspaces = []
        for ws in self.workspaces.values():
            invite = ws.settings.get("auto_invite")
            if not ws.deleted and isinstance(invite, dict) and name in (invite.get("instance_groups") or []):
                role = (invite.get("instance_groups_roles") or {}).get(name, "developer")
                workspaces.append({"workspace_id": ws.id, "workspace_name": ws.name, "role": role})
        return _ENCODE.encode({**group, "workspaces": workspaces})

    def _visible_folder(self, me: _Me, name: str) -> dict[str, Any]:
        folder = me.ws.folders.get(name)
        if folder is None or not me.sees_folder(folder):
            raise _Reply(404, f"Not found: Folder not found at name {name}")
        return folder

    def _folder_write(self, me: _Me, action: str, name: str, body: dict[str, Any]) -> str:
        folder = self._visible_folder(me, name)
        if action == "update":
            return self._folder_update(me, folder, body)
        if action not in ("addowner", "removeowner"):
            raise _Reply(404, "Not Found")
        owner = body.get("owner")
        if not isinstance(owner, str):
            raise _Reply(400, "Failed to deserialize the JSON body: missing field `owner`")
        if not me.owns_folder(folder):
            raise _Reply(401, f"You are not owner of the folder {name}")
        if not _OWNER_CHARS.match(owner):
            raise _Reply(
                400,
                "Bad request: Invalid owner: must contain only alphanumeric characters, underscores,"
                " hyphens, or slashes",
            )
        owners, perms = folder["owners"], folder["extra_perms"]
        if action == "addowner":
            if owner not in owners:
                owners.append(owner)
            perms[owner] = True
            return f"Added {owner} to folder {name}"
        write = body.get("write")
        if write is not None and not isinstance(write, bool):
            raise _Reply(400, "Failed to deserialize the JSON body: write: invalid type")
        was_owner = owner in owners
        if was_owner:
            owners.remove(owner)
        if write is None:
            # Without write, only owners changes: a former owner keeps extra_perms[owner].
            if not was_owner:
                return f"Owner {owner} is already not a member of folder {name}"
        else:
            perms[owner] = write
        return f"Removed {owner} to folder {name}"

    def _folder_update(self, me: _Me, folder: dict[str, Any], body: dict[str, Any]) -> str:
        name = folder["name"]
        if not me.owns_folder(folder):
            raise _Reply(401, f"You are not an owner of {name} and hence cannot modify it")
        owners = body.get("owners", folder["owners"])
        perms = body.get("extra_perms", folder["extra_perms"])
        if not isinstance(perms, dict):
            raise _Reply(400, f"Bad request: extra_perms must be an object, received {perms}")
        if not isinstance(owners, list):
            raise _Reply(400, "Failed to deserialize the JSON body: owners: invalid type")
        for owner in owners:
            if perms.get(owner) is not True:
                raise _Reply(
                    400,
                    f"Bad request: Owner {owner} would not have permission to write to folder and"
                    " that is an invalid state",
                )
        # Both replace the stored value whole: whatever the caller did not send is gone.
        folder["owners"], folder["extra_perms"] = list(owners), dict(perms)
        if "summary" in body:
            folder["summary"] = body["summary"]
        return f"Updated folder {name}"

    def _acl_objects(self, ws: Workspace) -> list[dict[str, Any]]:
        objects = list(ws.folders.values()) + list(ws.groups.values())
        for kind in ITEM_KINDS:
            objects.extend(ws.items[kind].values())
        return objects

    def _acl_object(self, me: _Me, kind: str, path: str) -> dict[str, Any]:
        ws = me.ws
        obj: dict[str, Any] | None
        if kind == "folder":
            obj = ws.folders.get(path)
        elif kind == "group_":
            obj = ws.groups.get(path)
        elif kind in ITEM_LISTS:
            obj = ws.items[kind].get(path)
        else:
            obj = None
        if obj is None:
            raise _Reply(404, f"Not found: {kind} not found at name {path}")
        return obj

    def _acl_write(self, me: _Me, action: str, kind: str, path: str, body: dict[str, Any]) -> str:
        owner = body.get("owner")
        if not isinstance(owner, str):
            raise _Reply(400, "Failed to deserialize the JSON body: missing field `owner`")
        write = body.get("write")
        if write is not None and not isinstance(write, bool):
            raise _Reply(400, "Failed to deserialize the JSON body: write: invalid type")
        ws = me.ws
        if not me.admin:
            if kind == "folder":
                folder = ws.folders.get(path)
                if folder is None or not me.owns_folder(folder):
                    raise _Reply(401, f"You are not owner of the folder {path}")
            elif not me.owns_path(path):
                raise _Reply(401, f"You are not owner of the path {path}")
        if action == "remove":
            # 200 whether or not the key (or even the object) was there.
            with contextlib.suppress(_Reply):
                self._acl_object(me, kind, path)["extra_perms"].pop(owner, None)
            return "Successfully removed granular acl"
        if kind == "folder":
            folder = ws.folders.get(path)
            if folder is not None and owner in folder["owners"] and write is not True:
                raise _Reply(400, "Bad request: Cannot remove write permission for folder owner")
        self._acl_object(me, kind, path)["extra_perms"][owner] = bool(write)
        return "Successfully modified granular acl"


class _Me:
    """The caller as one workspace sees it: admin or not, and the principals it holds."""

    def __init__(
        self,
        caller: Caller,
        ws: Workspace,
        user: dict[str, Any] | None,
        instance_groups: dict[str, dict[str, Any]],
    ) -> None:
        self.ws = ws
        self.username = user["username"] if user else None
        self.admin = caller.superadmin or bool(user and user["is_admin"])
        principals = set()
        if self.username:
            principals.add(f"u/{self.username}")
            principals.update(f"g/{g['name']}" for g in ws.groups.values() if self.username in g["members"])
        principals.update(f"g/{g['name']}" for g in instance_groups.values() if caller.email in g["emails"])
        self.principals = principals

    def sees_folder(self, folder: dict[str, Any]) -> bool:
        return self.admin or bool(self.principals & (set(folder["owners"]) | set(folder["extra_perms"])))

    def owns_folder(self, folder: dict[str, Any]) -> bool:
        return self.admin or bool(self.principals & set(folder["owners"]))

    def sees_item(self, item: dict[str, Any]) -> bool:
        if self.admin or self.owns_path(item["path"]) or self.principals & set(item["extra_perms"]):
            return True
        folder = self.ws.folders.get(item_folder(item["path"]) or "")
        return folder is not None and self.sees_folder(folder)

    def owns_path(self, path: str) -> bool:
        if self.admin or (self.username and path.startswith(f"u/{self.username}/")):
            return True
        folder = self.ws.folders.get(item_folder(path) or "")
        return folder is not None and self.owns_folder(folder)


def _ws_json(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.id, "name": ws.name, "owner": ws.owner, "deleted": ws.deleted, "premium": False}


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body or b"null")
    except msgspec.DecodeError:
        raise _Reply(400, "Failed to parse the request body as JSON") from None
    if not isinstance(value, dict):
        raise _Reply(400, "Failed to deserialize the JSON body: expected a map")
    return value


def populate(
    standin: WindmillStandIn,
    *,
    workspaces: int = 2,
    folders: int = 5,
    items: int = 4,
    users: int = 8,
    instance_groups: int = 4,
    workspace_groups: int = 2,
    archived: int = 1,
    seed: int = 0,
) -> None:
    """Fill the stand-in with a generated instance of the given size.

    Each workspace gets `users` users (user_0 is a workspace admin), `folders` folders each
    owned by an instance group and shared with a user and a group, `items` items per folder
    spread over the six item kinds with ACLs of their own, a personal script per user, and
    auto-add for the first instance group; `archived` archived workspaces come on top.
    """
    rng = random.Random(seed)
    group_names = [
        standin.add_instance_group(
            f"Team {g}", [f"user_{u}@example.test" for u in range(users) if u % instance_groups == g]
        )
        for g in range(instance_groups)
    ]
    with standin.lock:
        for w in range(workspaces):
            ws_id = f"ws{w:02d}"
            ws = standin.add_workspace(ws_id, f"Workspace {w}")
            for u in range(users):
                standin.add_user(ws_id, f"user_{u}", f"user_{u}@example.test", admin=u == 0, operator=u == 1)
            local = [f"local_{g}" for g in range(workspace_groups)]
            for g, name in enumerate(local):
                standin.add_workspace_group(
                    ws_id, name, [f"user_{u}" for u in range(users) if u % 3 == g % 3]
                )
            principals = [f"g/{g}" for g in group_names + local] + [f"u/user_{u}" for u in range(users)]
            for f in range(folders):
                name = f"folder_{f:04d}"
                owner = f"g/{group_names[f % len(group_names)]}" if group_names else "u/user_0"
                standin.add_folder(ws_id, name, [owner], {rng.choice(principals): rng.random() < 0.5})
                for i in range(items):
                    kind = ITEM_KINDS[i % len(ITEM_KINDS)]
                    standin.add_item(
                        ws_id, kind, f"f/{name}/item_{i:03d}", {rng.choice(principals): rng.random() < 0.5}
                    )
            for u in range(users):
                standin.add_item(ws_id, "script", f"u/user_{u}/scratch", {})
            if group_names:
                ws.settings = {
                    "auto_invite": {
                        "instance_groups": [group_names[0]],
                        "instance_groups_roles": {group_names[0]: "developer"},
                    }
                }
        for a in range(archived):
            standin.add_workspace(f"old{a:02d}", f"Archived {a}", archived=True)


def start_windmill_standin() -> WindmillStandIn:
    """Start an empty stand-in on a free port of 127.0.0.1."""
    return WindmillStandIn()
