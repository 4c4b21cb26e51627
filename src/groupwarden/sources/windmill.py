"""A strict client of Windmill's HTTP API: the reads a pull needs, and the single-principal writes.

Strict means a surprise fails loudly: every answer is decoded into typed structs, and a
missing key, a wrong type, an unknown role or a principal that is neither u/ nor g/ ends the
call with one line naming the call. Errors are Windmill's own text/plain, shown with the
status, never with the token. The token travels in the Authorization header only: Windmill
also takes ?token=, which would leak it into every proxy log on the way.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import msgspec

from groupwarden.domain.directory import ProgressCallback
from groupwarden.domain.errors import SyncError
from groupwarden.domain.text import printable
from groupwarden.domain.windmill import (
    AUTO_ADD_ROLES,
    DEFAULT_AUTO_ADD_ROLE,
    ITEM_KINDS,
    ITEM_LISTS,
    AclWrite,
    is_principal,
    item_folder,
)
from groupwarden.sources.base import PageCounter
from groupwarden.sources.common import parsed_pages_frozen
from groupwarden.sources.http import HttpClient

T = TypeVar("T")

#: Windmill's own page-size ceiling (utils::paginate).
MAX_PER_PAGE = 10_000
DEFAULT_PER_PAGE = 1000
# Statuses whose text/plain body we show as Windmill's answer; 429 and 5xx are retried first.
_REFUSALS = frozenset(range(300, 500)) - {429}
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class WindmillError(SyncError):
    """A Windmill call failed; status is None when no HTTP answer came (down, timeout)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --- typed answers ----------------------------------------------------------------------------
#
# Only the fields we read are declared; Windmill adds fields release after release, and those
# are ignored. Every declared field without a default must be present with its type.

Perms = dict[str, bool]


class Workspace(msgspec.Struct, frozen=True):
    id: str
    name: str
    #: Windmill's 'deleted': the workspace is archived.
    archived: bool = msgspec.field(default=False, name="deleted")


class Folder(msgspec.Struct, frozen=True):
    name: str
    owners: tuple[str, ...]
    extra_perms: Perms
    display_name: str | None = None
    summary: str | None = None
    edited_at: str | None = None


class _ItemRow(msgspec.Struct, frozen=True):
    path: str
    extra_perms: Perms


class Item(msgspec.Struct, frozen=True):
    """A script, flow, app, resource, variable or schedule; kind is Windmill's ACL kind."""

    kind: str
    path: str
    extra_perms: Perms
    #: The folder it inherits from (a path f/<folder>/<name>); None for any other path.
    folder: str | None = None


class WorkspaceUser(msgspec.Struct, frozen=True):
    username: str
    email: str
    is_admin: bool
    operator: bool
    disabled: bool


class InstanceGroup(msgspec.Struct, frozen=True):
    name: str
    #: The handler's type allows null (a group without members); read as no emails.
    emails: tuple[str, ...] | None
    summary: str | None = None
    instance_role: str | None = None
    #: Newer releases: the IdP's id of the group, and whether SCIM manages it.
    external_id: str | None = None
    scim_managed: bool | None = None

    @property
    def members(self) -> tuple[str, ...]:
        return self.emails or ()


class GroupWorkspace(msgspec.Struct, frozen=True):
    workspace_id: str
    workspace_name: str
    role: str


class InstanceGroupDetail(InstanceGroup, frozen=True):
    """One instance group as groups/get answers: the listing's fields and its workspaces."""

    workspaces: tuple[GroupWorkspace, ...] = ()


class WorkspaceGroupSummary(msgspec.Struct, frozen=True):
    name: str
    extra_perms: Perms
    summary: str | None = None


class WorkspaceGroup(msgspec.Struct, frozen=True):
    name: str
    members: tuple[str, ...]
    extra_perms: Perms
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class AutoAdd:
    """Which instance groups a workspace auto-adds, and with which workspace role."""

    instance_groups: tuple[str, ...]
    roles: dict[str, str]

    def role_of(self, group: str) -> str:
        return self.roles.get(group, DEFAULT_AUTO_ADD_ROLE)


@dataclass(frozen=True, slots=True)
class WorkspaceSnapshot:
    workspace: Workspace
    folders: tuple[Folder, ...]
    #: Items under f/<folder>/ only; personal (u/) and other items are left out.
    items: tuple[Item, ...]
    users: tuple[WorkspaceUser, ...]
    groups: tuple[WorkspaceGroup, ...]
    auto_add: AutoAdd


@dataclass(frozen=True, slots=True)
class InstanceSnapshot:
    """Everything a pull read, complete: the workspaces that are not archived, in full."""

    #: The instance's base URL, without credentials.
    url: str
    workspaces: tuple[WorkspaceSnapshot, ...]
    #: Archived workspaces: listed, not read.
    archived: tuple[Workspace, ...]
    instance_groups: tuple[InstanceGroup, ...]


def _list_decoder(kind: type[T]) -> msgspec.json.Decoder[list[T]]:
    return msgspec.json.Decoder(list[kind])  # type: ignore[valid-type]


_WORKSPACES = _list_decoder(Workspace)
_FOLDERS = _list_decoder(Folder)
_FOLDER = msgspec.json.Decoder(Folder)
_ITEMS = _list_decoder(_ItemRow)
_USERS = _list_decoder(WorkspaceUser)
_IGROUPS = _list_decoder(InstanceGroup)
_IGROUP = msgspec.json.Decoder(InstanceGroupDetail)
_WGROUPS = _list_decoder(WorkspaceGroupSummary)
_WGROUP = msgspec.json.Decoder(WorkspaceGroup)
_ACL = msgspec.json.Decoder(Perms)
_OBJECT = msgspec.json.Decoder(dict[str, Any])


def check_url(url: str) -> str:
    """The base URL, refused unless https (or http on loopback) without credentials or query."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SyncError(f"bad Windmill URL {url!r}: write https://HOST[:PORT]")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise SyncError("bad Windmill URL: it may not hold credentials, a query or a fragment")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise SyncError(
            f"refusing plain http to {parts.hostname}: the token would cross the network in clear; use https"
        )
    base = url.strip().rstrip("/")
    return base[: -len("/api")] if base.endswith("/api") else base


class WindmillClient:
    """One Windmill instance, one token; use as a context manager, or close() it."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        name: str = "default",
        ca_bundle: str | None = None,
        verify: bool = True,
        timeout: float = 30.0,
        per_page: int = DEFAULT_PER_PAGE,
        max_pages: int = 10_000,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise SyncError(f"windmill {name}: no token given")
        self.name = name
        self.base = check_url(url)
        self.url = self.base
        self.per_page = max(1, min(per_page, MAX_PER_PAGE))
        self.max_pages = max(1, max_pages)
        self._token = token
        self._http = HttpClient(
            {"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            verify=verify,
            ca_bundle=ca_bundle,
            max_attempts=max_attempts,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        # Never the token, even in a debugger.
        return f"WindmillClient(name={self.name!r}, url={self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WindmillClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- reads --------------------------------------------------------------------------------

    def workspaces(self, progress: ProgressCallback | None = None) -> list[Workspace]:
        """Every workspace of the instance, archived ones marked; needs a superadmin token.

        The order is not stable between pages, so we ask for Windmill's largest page:
        offset paging over an unstable order could skip one, duplicates are refused.
        """
        return self._workspaces(PageCounter("workspaces", progress))

    def my_workspaces(self) -> list[Workspace]:
        """The workspaces the token's user belongs to."""
        return self._get("/workspaces/list", _WORKSPACES)

    def folders(self, workspace: str, progress: ProgressCallback | None = None) -> list[Folder]:
        return self._folders(workspace, PageCounter("folders", progress))

    def folder(self, workspace: str, name: str) -> Folder:
        path = f"/w/{_seg(workspace)}/folders/get/{_seg(name)}"
        folder = self._get(path, _FOLDER)
        _check_acl(self._surprise, path, f"folder {folder.name}", folder.extra_perms, folder.owners)
        return folder

    def items(self, workspace: str, kind: str, progress: ProgressCallback | None = None) -> list[Item]:
        """Every item of one kind (script, flow, app, resource, variable, schedule), with its ACL."""
        return self._items(workspace, kind, PageCounter("items", progress))

    def acl(self, workspace: str, kind: str, path: str) -> dict[str, bool]:
        """One object's extra_perms (for a folder: by its name; for an item: by its path)."""
        call = f"/w/{_seg(workspace)}/acls/get/{_seg(kind)}/{_path(path)}"
        perms = self._get(call, _ACL)
        _check_acl(self._surprise, call, f"{kind} {path}", perms)
        return perms

    def users(self, workspace: str) -> list[WorkspaceUser]:
        path = f"/w/{_seg(workspace)}/users/list"
        return _unique(self._surprise, self._get(path, _USERS), lambda u: u.username, path, "user")

    def instance_groups(self) -> list[InstanceGroup]:
        return _unique(
            self._surprise, self._get("/groups/list", _IGROUPS), lambda g: g.name, "/groups/list", "group"
        )

    def instance_group(self, name: str) -> InstanceGroupDetail:
        return self._get(f"/groups/get/{_seg(name)}", _IGROUP)

    def workspace_groups(
        self, workspace: str, progress: ProgressCallback | None = None
    ) -> list[WorkspaceGroupSummary]:
        path = f"/w/{_seg(workspace)}/groups/list"
        rows = self._pages(path, _WGROUPS, PageCounter("groups", progress))
        for group in rows:
            _check_acl(self._surprise, path, f"group {group.name}", group.extra_perms)
        return _unique(self._surprise, rows, lambda g: g.name, path, "group")

    def workspace_group(self, workspace: str, name: str) -> WorkspaceGroup:
        path = f"/w/{_seg(workspace)}/groups/get/{_seg(name)}"
        group = self._get(path, _WGROUP)
        _check_acl(self._surprise, path, f"group {group.name}", group.extra_perms)
        return group

    def auto_add(self, workspace: str) -> AutoAdd:
        """Auto-add settings: the auto_invite object, or the older flat keys."""
        path = f"/w/{_seg(workspace)}/workspaces/get_settings"
        return _auto_add(self._surprise, path, self._get(path, _OBJECT))

    # --- writes -------------------------------------------------------------------------------

    def add_owner(self, workspace: str, folder: str, owner: str) -> None:
        self._post(f"/w/{_seg(workspace)}/folders/addowner/{_seg(folder)}", {"owner": owner})

    def remove_owner(self, workspace: str, folder: str, owner: str, write: bool | None = None) -> None:
        body: dict[str, Any] = {"owner": owner}
        if write is not None:
            body["write"] = write
        self._post(f"/w/{_seg(workspace)}/folders/removeowner/{_seg(folder)}", body)

    def acl_add(self, workspace: str, kind: str, path: str, owner: str, write: bool) -> None:
        self._post(
            f"/w/{_seg(workspace)}/acls/add/{_seg(kind)}/{_path(path)}", {"owner": owner, "write": write}
        )

    def acl_remove(self, workspace: str, kind: str, path: str, owner: str) -> None:
        self._post(f"/w/{_seg(workspace)}/acls/remove/{_seg(kind)}/{_path(path)}", {"owner": owner})

    def apply(self, workspace: str, kind: str, path: str, call: AclWrite) -> None:
        """One planned call on a folder (kind 'folder', path its name) or an item."""
        if call.op in ("addowner", "removeowner") and kind != "folder":
            raise ValueError(f"{call.op} applies to folders only, not to a {kind}")
        if call.op == "addowner":
            self.add_owner(workspace, path, call.owner)
        elif call.op == "removeowner":
            self.remove_owner(workspace, path, call.owner, call.write)
        elif call.op == "acl_add":
            self.acl_add(workspace, kind, path, call.owner, bool(call.write))
        else:
            self.acl_remove(workspace, kind, path, call.owner)

    # --- the pull -----------------------------------------------------------------------------

    def pull(self, progress: ProgressCallback | None = None) -> InstanceSnapshot:
        """Read the whole instance; any failure raises and nothing partial is returned."""
        counters = {
            phase: PageCounter(phase, progress)
            for phase in ("workspaces", "instance groups", "folders", "items", "users", "groups", "settings")
        }
        read: list[WorkspaceSnapshot] = []
        with parsed_pages_frozen() as freeze:
            listed = self._workspaces(counters["workspaces"])
            instance_groups = self.instance_groups()
            counters["instance groups"].page(len(instance_groups))
            for workspace in listed:
                if not workspace.archived:
                    read.append(self._pull_workspace(workspace, counters))
                    freeze()
        return InstanceSnapshot(
            url=self.url,
            workspaces=tuple(read),
            archived=tuple(w for w in listed if w.archived),
            instance_groups=tuple(instance_groups),
        )

    def _pull_workspace(self, workspace: Workspace, counters: dict[str, PageCounter]) -> WorkspaceSnapshot:
        ws = workspace.id
        folders = self._folders(ws, counters["folders"])
        # Only items under a folder inherit from it; the others are not ours to show.
        items = [
            Item(kind, row.path, row.extra_perms, folder)
            for kind in ITEM_KINDS
            for row in self._item_rows(ws, kind, counters["items"])
            if (folder := item_folder(row.path)) is not None
        ]
        users = self.users(ws)
        counters["users"].page(len(users))
        groups = []
        for summary in self.workspace_groups(ws):
            groups.append(self.workspace_group(ws, summary.name))
            counters["groups"].item()
        auto_add = self.auto_add(ws)
        counters["settings"].item()
        return WorkspaceSnapshot(
            workspace, tuple(folders), tuple(items), tuple(users), tuple(groups), auto_add
        )

    # --- plumbing -----------------------------------------------------------------------------

    def _workspaces(self, counter: PageCounter) -> list[Workspace]:
        path = "/workspaces/list_as_superadmin"
        rows = self._pages(path, _WORKSPACES, counter, per_page=MAX_PER_PAGE)
        return _unique(self._surprise, rows, lambda w: w.id, path, "workspace")

    def _folders(self, workspace: str, counter: PageCounter) -> list[Folder]:
        path = f"/w/{_seg(workspace)}/folders/list"
        rows = self._pages(path, _FOLDERS, counter)
        for folder in rows:
            _check_acl(self._surprise, path, f"folder {folder.name}", folder.extra_perms, folder.owners)
        return _unique(self._surprise, rows, lambda f: f.name, path, "folder")

    def _items(self, workspace: str, kind: str, counter: PageCounter) -> list[Item]:
        return [
            Item(kind, row.path, row.extra_perms, item_folder(row.path))
            for row in self._item_rows(workspace, kind, counter)
        ]

    def _item_rows(self, workspace: str, kind: str, counter: PageCounter) -> list[_ItemRow]:
        """Every item of one kind as listed, checked: its ACL and its path unique."""
        if kind not in ITEM_LISTS:
            raise ValueError(f"unknown item kind {kind!r}")
        path = f"/w/{_seg(workspace)}/{ITEM_LISTS[kind]}/list"
        rows = self._pages(path, _ITEMS, counter)
        # An instance holds items by the hundred thousand and names few principals: each
        # distinct key is checked once, and the rows are walked again only to name a bad one.
        if not all(map(is_principal, {key for row in rows for key in row.extra_perms})):
            for row in rows:
                _check_acl(self._surprise, path, f"{kind} {row.path}", row.extra_perms)
        paths = [row.path for row in rows]
        if len(set(paths)) != len(paths):
            _unique(self._surprise, rows, lambda r: r.path, path, kind)
        return rows

    def _pages(
        self,
        path: str,
        decoder: msgspec.json.Decoder[list[T]],
        counter: PageCounter,
        per_page: int | None = None,
    ) -> list[T]:
        """Every row of a paged list: pages from 1, a short page is the last.

        A full page that repeats an earlier one means the server ignores `page`: stopped,
        or it would be read forever. max_pages bounds the rest.
        """
        size = per_page or self.per_page
        rows: list[T] = []
        seen: set[bytes] = set()
        for page in range(1, self.max_pages + 1):
            response = self._send("GET", path, {"page": page, "per_page": size})
            got = self._decode(response, path, decoder)
            if len(got) > size:
                raise self._surprise(path, f"page {page} holds {len(got)} rows for per_page={size}")
            if len(got) == size:
                digest = hashlib.blake2b(response.content, digest_size=16).digest()
                if digest in seen:
                    raise self._surprise(
                        path, f"page {page} repeats an earlier page; the server ignores paging"
                    )
                seen.add(digest)
            rows.extend(got)
            counter.page(len(got))
            if len(got) < size:
                return rows
        raise self._surprise(path, f"more than {self.max_pages} pages of {size}; stopped")

    def _get(self, path: str, decoder: msgspec.json.Decoder[T]) -> T:
        return self._decode(self._send("GET", path), path, decoder)

    def _post(self, path: str, body: dict[str, Any]) -> None:
        # The answer is a line of text ("Added g/x to folder y"): nothing to read in it.
        self._send("POST", path, json_body=body)

    def _send(
        self, method: str, path: str, params: dict[str, Any] | None = None, json_body: Any = None
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method, f"{self.base}/api{path}", params, json_body=json_body, passthrough=_REFUSALS
            )
        except WindmillError:
            raise
        except SyncError as exc:
            raise WindmillError(self._scrub(f"windmill {self.name}: {exc}")) from None
        assert response is not None
        if response.status_code >= 300:
            raise self._refused(method, path, response)
        return response

    def _refused(self, method: str, path: str, response: httpx.Response) -> WindmillError:
        status = response.status_code
        text = _one_line(response.text) or response.reason_phrase
        advice = ""
        if status == 401 and path == "/workspaces/list_as_superadmin":
            advice = "; reading every workspace needs a superadmin token"
        elif 300 <= status < 400:
            advice = "; check the URL (a proxy or login page answered)"
        return WindmillError(
            self._scrub(f"windmill {self.name} refused {method} /api{path}: HTTP {status}: {text}{advice}"),
            status,
        )

    def _decode(self, response: httpx.Response, path: str, decoder: msgspec.json.Decoder[T]) -> T:
        try:
            return decoder.decode(response.content)
        except msgspec.ValidationError as exc:
            raise self._surprise(path, str(exc)) from None
        except msgspec.DecodeError:
            raise self._surprise(path, f"not JSON ({len(response.content)} bytes)") from None

    def _surprise(self, path: str, detail: str) -> WindmillError:
        return WindmillError(self._scrub(f"unexpected answer from windmill: GET /api{path}: {detail}"), 200)

    def _scrub(self, message: str) -> str:
        # A server or proxy echoing the request could put the token in its text.
        return message.replace(self._token, "***")


def _seg(name: str) -> str:
    return quote(name, safe="")


def _path(path: str) -> str:
    # Item paths keep their slashes: Windmill routes them as one {*path} segment.
    return quote(path, safe="/")


def _one_line(text: str, limit: int = 300) -> str:
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


Surprise = Callable[[str, str], WindmillError]


def _check_acl(
    surprise: Surprise, where: str, what: str, perms: dict[str, bool], owners: Iterable[str] = ()
) -> None:
    for key in (*perms, *owners):
        if not is_principal(key):
            raise surprise(
                where, f"{what} names {_one_line(key, 80)!r}, which is neither u/<user> nor g/<group>"
            )


def _unique(surprise: Surprise, rows: list[T], key: Callable[[T], str], where: str, what: str) -> list[T]:
    seen: set[str] = set()
    for row in rows:
        name = key(row)
        if name in seen:
            raise surprise(
                where,
                f"{what} {_one_line(name, 80)!r} is listed twice; the listing changed while it was read,"
                " try again",
            )
        seen.add(name)
    return rows


def _auto_add(surprise: Surprise, where: str, settings: dict[str, Any]) -> AutoAdd:
    def bad(detail: str) -> WindmillError:
        return surprise(where, detail)

    if "auto_invite" in settings:
        invite = settings["auto_invite"]
        if invite is None:
            return AutoAdd((), {})
        if not isinstance(invite, dict):
            raise bad("auto_invite is not an object")
        groups, roles = invite.get("instance_groups"), invite.get("instance_groups_roles")
        source = "auto_invite."
    elif "auto_add_instance_groups" in settings or "auto_add_instance_groups_roles" in settings:
        groups = settings.get("auto_add_instance_groups")
        roles = settings.get("auto_add_instance_groups_roles")
        source = ""
    else:
        raise bad("no auto_invite and no auto_add_instance_groups: an unknown settings shape")
    # Both columns are nullable in Windmill's schema: null is an empty setting.
    groups = [] if groups is None else groups
    roles = {} if roles is None else roles
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise bad(f"{source}instance_groups is not a list of names")
    if not isinstance(roles, dict):
        raise bad(f"{source}instance_groups_roles is not an object")
    for group, role in roles.items():
        if role not in AUTO_ADD_ROLES:
            raise bad(
                f"{source}instance_groups_roles gives {_one_line(str(group), 80)!r} the unknown role"
                f" {_one_line(str(role), 40)!r}"
            )
    return AutoAdd(tuple(groups), dict(roles))
