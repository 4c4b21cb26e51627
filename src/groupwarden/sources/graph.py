"""A Microsoft Graph (Entra ID) client: users, groups and members, in full or by delta query.

A full listing reads /v1.0/users, /v1.0/groups and each group's /members (users and nested
groups), following @odata.nextLink until it is absent; the groups' member listings run side
by side, page_concurrency at a time (concurrent requests rather than JSON batching: a $batch
answers when its slowest request does, and each member listing's next pages need a batch of
their own). Before that listing it asks both
delta functions for a `$deltatoken=latest` link: changes made while we list are then
replayed by the next delta round instead of lost (applying a change twice is harmless).

A delta round follows the stored delta links and returns a Delta: the users and groups
that changed, completed from the cached rows of those alone (Graph sends only the
properties that moved), and each group's members added and removed. The reconcile applies
it row by row, so a round costs in proportion to the change. A refused link (410, or an
expired sync state) falls back to a full listing, and the report says so.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from functools import partial
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx
import msgspec

from groupwarden.domain.directory import (
    Delta,
    GroupChange,
    Progress,
    ProgressCallback,
    Snapshot,
    SourceGroup,
    SourceUser,
    check_snapshot,
)
from groupwarden.domain.errors import Hint, Remedy, SyncError
from groupwarden.domain.secrets import register_secret
from groupwarden.sources.ahead import in_order
from groupwarden.sources.base import Fetched, PageCounter, Previous, SeenIds
from groupwarden.sources.common import identifier, parsed_pages_frozen
from groupwarden.sources.http import (
    HttpClient,
    check_same_origin,
    decode_json,
    error_detail,
    safe_url,
    server_text,
)

GRAPH_URL = "https://graph.microsoft.com"
LOGIN_URL = "https://login.microsoftonline.com"
# The largest page Graph serves for users, groups and members.
TOP = 999
USER_FIELDS = "id,userPrincipalName,displayName,mail,otherMails,accountEnabled"
GROUP_FIELDS = "id,displayName,description"
USER_TYPE = "#microsoft.graph.user"
GROUP_TYPE = "#microsoft.graph.group"
# Error codes Graph gives a delta link it can no longer serve.
DELTA_REFUSED_CODES = frozenset(
    {"syncstatenotfound", "resyncrequired", "syncstateinvalid", "badrequest_invaliddeltatoken"}
)
# Refresh a client-credentials token this long before it says it expires.
TOKEN_MARGIN = 120.0
# Member listings in flight at once.
PAGE_CONCURRENCY = 4
T = TypeVar("T")
R = TypeVar("R")


# --- typed pages --------------------------------------------------------------------------
#
# List pages are decoded by msgspec straight into these structs, which hold only what we
# read: json.loads and the reading of its dicts were a third of what a fetch adds to the
# download. The structs accept only the usual shapes; anything else (a number as an id, a
# non-string in otherMails, invalid JSON...) sends the page to the raw-dict reader, which
# stays the one judge of unusual input and the author of every error message. Delta pages
# keep the raw reader: what a change leaves out matters there, and they are small.

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _User(msgspec.Struct, gc=False):
    id: NonEmpty
    userPrincipalName: NonEmpty
    displayName: str | None = None
    mail: str | None = None
    otherMails: list[str] | None = None
    accountEnabled: bool | None = None


class _Group(msgspec.Struct, gc=False):
    id: NonEmpty
    displayName: NonEmpty
    description: str | None = None


class _Member(msgspec.Struct, gc=False):
    id: NonEmpty
    type: str | None = msgspec.field(default=None, name="@odata.type")


class _Page(msgspec.Struct, Generic[R], gc=False):
    value: list[R]
    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")


USER_PAGE = msgspec.json.Decoder(_Page[_User])
GROUP_PAGE = msgspec.json.Decoder(_Page[_Group])
MEMBER_PAGE = msgspec.json.Decoder(_Page[_Member])


class DeltaRefused(Exception):
    """The provider will not serve this delta link any more; a full sync is needed."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class Tokens:
    """The bearer token: a fixed one, or a client-credentials one refreshed before it expires."""

    def __init__(
        self,
        *,
        token: str | None = None,
        tenant: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        login_url: str = LOGIN_URL,
        scope: str = f"{GRAPH_URL}/.default",
        http: HttpClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        register_secret(token)
        register_secret(client_secret)
        self._token = token
        self._expires = float("inf") if token else 0.0
        self._tenant = tenant
        self._client_id = client_id
        self._secret = client_secret
        self._endpoint = f"{login_url.rstrip('/')}/{tenant}/oauth2/v2.0/token"
        self._scope = scope
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self.fetched = 0

    def __repr__(self) -> str:
        return f"Tokens(tenant={self._tenant!r}, client_id={self._client_id!r})"

    @property
    def can_refresh(self) -> bool:
        return self._secret is not None

    def current(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires - TOKEN_MARGIN:
                self._request()
            assert self._token is not None
            return self._token

    def refresh(self) -> str:
        with self._lock:
            self._request()
            assert self._token is not None
            return self._token

    def _request(self) -> None:
        if self._secret is None or self._http is None:
            raise SyncError("the Graph token expired and there is no client secret to get a new one")
        response = self._http.request(
            "POST",
            self._endpoint,
            data={
                "client_id": self._client_id or "",
                "client_secret": self._secret,
                "scope": self._scope,
                "grant_type": "client_credentials",
            },
            passthrough=frozenset({400, 401}),
        )
        assert response is not None
        where = safe_url(self._endpoint)
        if response.status_code != 200:
            detail = error_detail(response)
            raise SyncError(
                f"POST {where} refused the client credentials (HTTP {response.status_code}"
                + (f": {detail}" if detail else "")
                + "); check the tenant, the client id and the client secret",
                hint=Hint(Remedy.GIVE_CLIENT_SECRET),
            )
        body = decode_json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        lifetime = body.get("expires_in") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise SyncError(f"POST {where} answered without an access_token; check the login URL")
        try:
            seconds = float(lifetime) if lifetime is not None else 3599.0
        except (TypeError, ValueError):
            seconds = 3599.0
        register_secret(token)
        self._token = token
        self._expires = self._clock() + seconds
        self.fetched += 1


class _BearerAuth(httpx.Auth):
    """Adds the token; on a 401 with a refreshable token, refreshes it once and retries."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sent = self.tokens.current()
        request.headers["Authorization"] = f"Bearer {sent}"
        response = yield request
        if response.status_code == 401 and self.tokens.can_refresh:
            fresh = self.tokens.current()
            # Another request may have refreshed it meanwhile; only ask again if not.
            if fresh == sent:
                fresh = self.tokens.refresh()
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request


class GraphSource:
    """Lists an Entra ID tenant through Microsoft Graph into a checked Snapshot."""

    kind = "graph"

    def __init__(
        self,
        tenant: str,
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        name: str | None = None,
        graph_url: str = GRAPH_URL,
        login_url: str = LOGIN_URL,
        ca_bundle: str | None = None,
        verify: bool = True,
        timeout: float = 30.0,
        request_timeout: float = 60.0,
        sync_timeout: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_total_wait: float = 900.0,
        page_size: int = TOP,
        page_concurrency: int = PAGE_CONCURRENCY,
    ) -> None:
        if not token and not (client_id and client_secret):
            raise SyncError("a Graph source needs a bearer token, or a client id and a client secret")
        self.tenant = tenant
        self.base = graph_url.rstrip("/")
        self.url = safe_url(self.base)
        self.name = name or f"graph:{tenant}"
        self.page_size = max(1, min(page_size, TOP))
        self.page_concurrency = max(1, page_concurrency)
        self._login_url = login_url.rstrip("/")
        self._token = token
        self._client_id = client_id
        self._secret = client_secret
        self._ca_bundle = ca_bundle
        self._verify = verify
        self._timeout = timeout
        self._request_timeout = request_timeout
        self._sync_timeout = sync_timeout
        self._sleep = sleep
        self._clock = clock
        self._max_total_wait = max_total_wait
        #: Client-credentials tokens fetched by the last sync (tests check the refresh).
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"GraphSource(name={self.name!r}, url={self.url!r})"

    def fetch(self, progress: ProgressCallback | None = None) -> Snapshot:
        snapshot = self.fetch_changes(None, progress).snapshot
        assert snapshot is not None  # without a previous sync there is only the full listing
        return snapshot

    def fetch_changes(self, previous: Previous | None, progress: ProgressCallback | None = None) -> Fetched:
        options: dict[str, Any] = {
            "timeout": self._timeout,
            "request_timeout": self._request_timeout,
            "sync_timeout": self._sync_timeout,
            "verify": self._verify,
            "ca_bundle": self._ca_bundle,
            "sleep": self._sleep,
            "max_total_wait": self._max_total_wait,
        }
        with ExitStack() as stack:
            # Only a client secret ever asks the login endpoint for a token.
            login = (
                stack.enter_context(HttpClient({"Accept": "application/json"}, **options))
                if self._secret
                else None
            )
            tokens = Tokens(
                token=self._token,
                tenant=self.tenant,
                client_id=self._client_id,
                client_secret=self._secret,
                login_url=self._login_url,
                scope=f"{self.base}/.default",
                http=login,
                clock=self._clock,
            )
            with HttpClient(
                {"Accept": "application/json", "ConsistencyLevel": "eventual"},
                auth=_BearerAuth(tokens),
                concurrency=self.page_concurrency,
                **options,
            ) as http:
                try:
                    return self._fetch(http, previous, progress)
                finally:
                    self.tokens_fetched = tokens.fetched

    def _fetch(
        self, http: HttpClient, previous: Previous | None, progress: ProgressCallback | None
    ) -> Fetched:
        notes: list[str] = []
        links = _delta_links(previous.state) if previous is not None else None
        if previous is not None and links is not None:
            try:
                delta, state = self._delta(http, previous, links, progress)
            except DeltaRefused as refused:
                notes.append(
                    f"{self.name}: the delta link was refused ({refused.why}); did a full sync instead"
                )
            else:
                return Fetched(None, state, "delta", notes, delta)
        elif previous is not None:
            notes.append(f"{self.name}: no usable delta link stored; did a full sync")
        return Fetched(*self._full(http, progress), "full", notes)

    # --- full listing ---------------------------------------------------------------------

    def _full(self, http: HttpClient, progress: ProgressCallback | None) -> tuple[Snapshot, str]:
        links = {
            "users": self._latest(http, "users", USER_FIELDS),
            "groups": self._latest(http, "groups", f"{GROUP_FIELDS},members"),
        }
        ignored: dict[str, int] = {}
        with parsed_pages_frozen() as after_page:
            users: list[SourceUser] = []
            counter = PageCounter("users", progress)
            # Graph gives no total; an id given twice is what shows a nextLink going round
            # in circles (the links themselves may all differ).
            seen = SeenIds(f"{self.name}: listing users", "user")
            params = {"$select": USER_FIELDS, "$top": self.page_size}
            for user_page in self._pages(
                http,
                f"{self.base}/v1.0/users",
                params,
                "users",
                USER_PAGE,
                _typed_users,
                lambda values: [self._user(raw, len(users) + n) for n, raw in enumerate(values, 1)],
            ):
                seen.add([user.upstream_id for user in user_page])
                users.extend(user_page)
                after_page()
                counter.page(len(user_page))
            groups: list[SourceGroup] = []
            counter = PageCounter("groups", progress)
            seen = SeenIds(f"{self.name}: listing groups", "group")
            params = {"$select": GROUP_FIELDS, "$top": self.page_size}
            for group_page in self._pages(
                http,
                f"{self.base}/v1.0/groups",
                params,
                "groups",
                GROUP_PAGE,
                _typed_groups,
                lambda values: [self._group(raw, len(groups) + n) for n, raw in enumerate(values, 1)],
            ):
                seen.add([group.upstream_id for group in group_page])
                groups.extend(group_page)
                after_page()
                counter.page(len(group_page))
            counter = PageCounter("members", progress, total=len(groups))
            # The query encoded once, not by httpx on each of the (many) members requests:
            # merging params into a URL costs it a parse and an encoding per request.
            query = urlencode({"$select": "id", "$top": self.page_size})
            # Every group may run ahead of the one being read: a group of many pages must not
            # leave the others waiting, and the ids are kept for the snapshot anyway.
            listings = in_order(
                lambda n: self._group_members(http, groups[n], query),
                len(groups),
                self.page_concurrency,
                len(groups),
            )
            for group, (user_ids, group_ids, skipped) in zip(groups, listings, strict=True):
                group.user_members.extend(user_ids)
                group.group_members.extend(group_ids)
                for kind, count in skipped.items():
                    ignored[kind] = ignored.get(kind, 0) + count
                counter.item()
                after_page()
        snapshot = Snapshot(users, groups, _ignored_warnings(self.name, ignored))
        check_snapshot(snapshot, self.name)
        return snapshot, json.dumps(links, sort_keys=True)

    def _group_members(
        self, http: HttpClient, group: SourceGroup, query: str
    ) -> tuple[list[str], list[str], dict[str, int]]:
        """A group's user ids, nested group ids and ignored members by type (run on a paging thread)."""
        url = f"{self.base}/v1.0/groups/{group.upstream_id}/members?{query}"
        what = f"members of {group.name!r}"
        seen = SeenIds(f"{self.name}: listing {what}", "member")
        # Its own count of ignored members: the listings run side by side.
        ignored: dict[str, int] = {}
        users: list[str] = []
        groups: list[str] = []
        for user_ids, group_ids in self._pages(
            http,
            url,
            None,
            what,
            MEMBER_PAGE,
            lambda members: _typed_members(members, ignored),
            partial(self._members, group.name, ignored=ignored),
        ):
            seen.add(user_ids + group_ids if group_ids else user_ids)
            users.extend(user_ids)
            groups.extend(group_ids)
        return users, groups, ignored

    def _latest(self, http: HttpClient, resource: str, fields: str) -> str:
        """A delta link for 'from now on', without reading the current state through delta."""
        url = f"{self.base}/v1.0/{resource}/delta"
        body, _ = http.get_json(url, {"$select": fields, "$deltatoken": "latest"})
        link = body.get("@odata.deltaLink") if isinstance(body, dict) else None
        if not isinstance(link, str) or not link:
            raise SyncError(f"{self.name}: {safe_url(url)} gave no @odata.deltaLink; sync aborted")
        return check_same_origin(link, self.base, f"{self.name}: {resource} delta")

    def _pages(
        self,
        http: HttpClient,
        url: str,
        params: dict[str, Any] | None,
        what: str,
        decoder: msgspec.json.Decoder[_Page[Any]],
        typed: Callable[[list[Any]], T],
        raw: Callable[[list[Any]], T],
    ) -> Iterator[T]:
        """Each page's items, read by typed from the decoded structs, or by raw from the JSON."""
        where = f"{self.name}: listing {what}"
        next_url: str | None = url
        seen: set[str] = set()
        while next_url is not None:
            response = http.get(next_url, params)
            assert response is not None
            link: Any
            try:
                page = decoder.decode(response.content)
            except (msgspec.ValidationError, msgspec.DecodeError):
                body = decode_json(response)
                values = body.get("value") if isinstance(body, dict) else None
                if not isinstance(values, list):
                    raise SyncError(f"{where}: the answer has no 'value' list; sync aborted") from None
                yield raw(values)
                link = body.get("@odata.nextLink")
            else:
                yield typed(page.value)
                link = page.next_link
            params = None  # the next link carries every parameter
            if link is None:
                return
            if not isinstance(link, str) or link in seen:
                raise SyncError(f"{where}: a bad or repeated @odata.nextLink; sync aborted")
            seen.add(link)
            next_url = check_same_origin(link, self.base, where)

    # --- delta round ----------------------------------------------------------------------

    def _delta(
        self,
        http: HttpClient,
        previous: Previous,
        links: dict[str, str],
        progress: ProgressCallback | None,
    ) -> tuple[Delta, str]:
        user_changes, users_link = self._delta_pages(http, links["users"], "users", progress)
        group_changes, groups_link = self._delta_pages(http, links["groups"], "groups", progress)
        cached = previous.lookup(_changed_ids(user_changes), _changed_ids(group_changes))
        users = {u.upstream_id: u for u in cached.users}
        changed_users: dict[str, SourceUser] = {}
        removed_users: dict[str, None] = {}
        for raw in user_changes:
            upstream_id, user = self._user_change(users, raw)
            if user is None:
                users.pop(upstream_id, None)
                changed_users.pop(upstream_id, None)
                removed_users[upstream_id] = None
            else:
                users[upstream_id] = changed_users[upstream_id] = user
                removed_users.pop(upstream_id, None)
        groups = {g.upstream_id: g for g in cached.groups}
        edits: dict[str, _GroupEdit] = {}
        removed_groups: dict[str, None] = {}
        ignored: dict[str, int] = {}
        for raw in group_changes:
            upstream_id, edit = self._group_change(groups, edits, raw, ignored)
            if edit is None:
                groups.pop(upstream_id, None)
                edits.pop(upstream_id, None)
                removed_groups[upstream_id] = None
            else:
                edits[upstream_id] = edit
                removed_groups.pop(upstream_id, None)
        delta = Delta(
            users=list(changed_users.values()),
            users_removed=list(removed_users),
            groups=[edit.change() for edit in edits.values()],
            groups_removed=list(removed_groups),
            warnings=_ignored_warnings(self.name, ignored),
        )
        return delta, json.dumps({"users": users_link, "groups": groups_link}, sort_keys=True)

    def _delta_pages(
        self, http: HttpClient, link: str, what: str, progress: ProgressCallback | None
    ) -> tuple[list[Any], str]:
        where = f"{self.name}: {what} delta"
        check_same_origin(link, self.base, where)
        changes: list[Any] = []
        next_url = link
        pages = 0
        seen: set[str] = set()
        while True:
            body, response = http.get_json(next_url, passthrough=frozenset({400, 410}))
            assert response is not None
            if response.status_code in (400, 410):
                code = _error_code(body)
                if response.status_code == 410 or code.lower() in DELTA_REFUSED_CODES:
                    raise DeltaRefused(f"HTTP {response.status_code} {code}".strip())
                raise SyncError(
                    f"{where}: GET {safe_url(next_url)} failed with HTTP {response.status_code}"
                    f" ({error_detail(response) or code})",
                    hint=Hint(Remedy.FULL_SYNC, self.name),
                )
            values = body.get("value") if isinstance(body, dict) else None
            if not isinstance(values, list):
                raise SyncError(f"{where}: the answer has no 'value' list; sync aborted")
            changes.extend(values)
            pages += 1
            if progress is not None:
                progress(Progress(what, pages, len(changes)))
            following = body.get("@odata.nextLink")
            if isinstance(following, str) and following:
                if following in seen:
                    raise SyncError(f"{where}: a repeated @odata.nextLink; sync aborted")
                seen.add(following)
                next_url = check_same_origin(following, self.base, where)
                continue
            delta = body.get("@odata.deltaLink")
            if not isinstance(delta, str) or not delta:
                raise SyncError(f"{where}: the last page has neither nextLink nor deltaLink; sync aborted")
            return changes, check_same_origin(delta, self.base, where)

    def _user_change(self, users: dict[str, SourceUser], raw: Any) -> tuple[str, SourceUser | None]:
        """The user as this change leaves it, None when removed; users holds it as known so far."""
        if not isinstance(raw, dict):
            raise SyncError(f"{self.name}: a user change that is not an object; sync aborted")
        upstream_id = identifier(raw.get("id"))
        if upstream_id is None:
            raise SyncError(f"{self.name}: a user change without an id; sync aborted")
        if "@removed" in raw:
            return upstream_id, None
        old = users.get(upstream_id)
        if old is None:
            return upstream_id, self._user(raw, 0)
        # Graph sends the changed properties at least; the others stay as cached.
        if isinstance(raw.get("userPrincipalName"), str) and raw["userPrincipalName"]:
            old.user_name = raw["userPrincipalName"]
        if "displayName" in raw:
            old.display_name = _text(raw.get("displayName"))
        if "mail" in raw or "otherMails" in raw:
            fresh = _emails(raw)
            if "mail" not in raw and old.emails:
                fresh = [old.emails[0], *(e for e in fresh if e != old.emails[0])]
            old.emails = fresh
        if "accountEnabled" in raw:
            old.active = raw.get("accountEnabled") is not False
        return upstream_id, old

    def _group_change(
        self,
        groups: dict[str, SourceGroup],
        edits: dict[str, _GroupEdit],
        raw: Any,
        ignored: dict[str, int],
    ) -> tuple[str, _GroupEdit | None]:
        """The group's edit with this change folded in, None when removed.

        groups holds the cached groups the changes name; edits the changes seen so far.
        """
        if not isinstance(raw, dict):
            raise SyncError(f"{self.name}: a group change that is not an object; sync aborted")
        upstream_id = identifier(raw.get("id"))
        if upstream_id is None:
            raise SyncError(f"{self.name}: a group change without an id; sync aborted")
        if "@removed" in raw:
            return upstream_id, None
        edit = edits.get(upstream_id)
        if edit is None:
            cached = groups.get(upstream_id)
            if cached is None:
                # New to the cache (or back after a removal, which cost it its members): every
                # member comes as an addition, so the additions are all of them.
                edit = _GroupEdit(self._group(raw, 0), whole=True)
            else:
                edit = _GroupEdit(cached, whole=False)
        group = edit.group
        if isinstance(raw.get("displayName"), str) and raw["displayName"]:
            group.name = raw["displayName"]
        if "description" in raw:
            group.description = _text(raw.get("description"))
        changes = raw.get("members@delta") or []
        if not isinstance(changes, list):
            raise SyncError(f"{self.name}: group {group.name!r} has members@delta that is not a list")
        for change in changes:
            if isinstance(change, dict) and "@removed" in change:
                member = identifier(change.get("id"))
                kind = change.get("@odata.type")
                if member is not None and kind in (USER_TYPE, None):
                    edit.move(edit.users_removed, edit.users_added, member)
                if member is not None and kind in (GROUP_TYPE, None):
                    edit.move(edit.groups_removed, edit.groups_added, member)
                continue
            added = self._member(group.name, change, ignored)
            if added is not None and added[0]:
                edit.move(edit.users_added, edit.users_removed, added[1])
            elif added is not None:
                edit.move(edit.groups_added, edit.groups_removed, added[1])
        return upstream_id, edit

    # --- parsing --------------------------------------------------------------------------

    def _user(self, raw: Any, position: int) -> SourceUser:
        if not isinstance(raw, dict):
            raise SyncError(f"{self.name}: user #{position} of the listing is not an object")
        upstream_id = identifier(raw.get("id"))
        login = raw.get("userPrincipalName")
        if upstream_id is None:
            raise SyncError(f"{self.name}: user #{position} has no id; sync aborted")
        if not isinstance(login, str) or not login:
            raise SyncError(f"{self.name}: user {upstream_id!r} has no userPrincipalName; sync aborted")
        return SourceUser(
            upstream_id=upstream_id,
            user_name=login,
            display_name=_text(raw.get("displayName")),
            emails=_emails(raw),
            active=raw.get("accountEnabled") is not False,
        )

    def _group(self, raw: Any, position: int) -> SourceGroup:
        if not isinstance(raw, dict):
            raise SyncError(f"{self.name}: group #{position} of the listing is not an object")
        upstream_id = identifier(raw.get("id"))
        name = raw.get("displayName")
        if upstream_id is None:
            raise SyncError(f"{self.name}: group #{position} has no id; sync aborted")
        if not isinstance(name, str) or not name:
            raise SyncError(f"{self.name}: group {upstream_id!r} has no displayName; sync aborted")
        return SourceGroup(upstream_id=upstream_id, name=name, description=_text(raw.get("description")))

    def _members(
        self, group_name: str, values: list[Any], ignored: dict[str, int]
    ) -> tuple[list[str], list[str]]:
        """A page of members: the users' ids and the nested groups' ids."""
        user_ids: list[str] = []
        group_ids: list[str] = []
        for raw in values:
            member = self._member(group_name, raw, ignored)
            if member is not None:
                (user_ids if member[0] else group_ids).append(member[1])
        return user_ids, group_ids

    def _member(self, group_name: str, raw: Any, ignored: dict[str, int]) -> tuple[bool, str] | None:
        """(True, id) for a user member, (False, id) for a nested group, None for anything else."""
        member = identifier(raw.get("id")) if isinstance(raw, dict) else None
        if member is None:
            raise SyncError(f"{self.name}: group {group_name!r} has a member without an id; sync aborted")
        kind = raw.get("@odata.type")
        if kind == USER_TYPE:
            return True, member
        if kind == GROUP_TYPE:
            return False, member
        # Devices, service principals and contacts can be members; they are not people.
        label = kind if isinstance(kind, str) else "untyped"
        ignored[label] = ignored.get(label, 0) + 1
        return None


class _GroupEdit:
    """One group's changes over a delta round: members as ordered sets, the last word winning."""

    def __init__(self, group: SourceGroup, *, whole: bool) -> None:
        self.group = group
        self.whole = whole
        self.users_added: dict[str, None] = {}
        self.users_removed: dict[str, None] = {}
        self.groups_added: dict[str, None] = {}
        self.groups_removed: dict[str, None] = {}

    @staticmethod
    def move(into: dict[str, None], out_of: dict[str, None], member: str) -> None:
        out_of.pop(member, None)
        into[member] = None

    def change(self) -> GroupChange:
        self.group.user_members = list(self.users_added)
        self.group.group_members = list(self.groups_added)
        return GroupChange(
            self.group,
            whole=self.whole,
            users_removed=[] if self.whole else list(self.users_removed),
            groups_removed=[] if self.whole else list(self.groups_removed),
        )


def _delta_links(state: str | None) -> dict[str, str] | None:
    if not state:
        return None
    try:
        links = json.loads(state)
    except ValueError:
        return None
    if isinstance(links, dict) and all(isinstance(links.get(k), str) for k in ("users", "groups")):
        return {"users": links["users"], "groups": links["groups"]}
    return None


def _changed_ids(changes: list[Any]) -> set[str]:
    """Upstream ids of the objects changes update (not remove): those whose cached rows complete them."""
    ids: set[str] = set()
    for raw in changes:
        if isinstance(raw, dict) and "@removed" not in raw:
            upstream_id = identifier(raw.get("id"))
            if upstream_id is not None:
                ids.add(upstream_id)
    return ids


def _error_code(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return server_text(code, 80) if isinstance(code, str) else ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _emails(raw: dict[str, Any]) -> list[str]:
    emails: list[str] = []
    mail = raw.get("mail")
    if isinstance(mail, str) and mail:
        emails.append(mail)
    others = raw.get("otherMails")
    if isinstance(others, list):
        emails.extend(e for e in others if isinstance(e, str) and e and e not in emails)
    return emails


def _typed_users(users: list[_User]) -> list[SourceUser]:
    # One comprehension for the page: a call per user would cost a third of the conversion.
    return [
        SourceUser(
            user.id,
            user.userPrincipalName,
            user.displayName or None,
            _typed_emails(user.mail, user.otherMails)
            if user.otherMails
            else [user.mail]
            if user.mail
            else [],
            user.accountEnabled is not False,
        )
        for user in users
    ]


def _typed_emails(mail: str | None, others: list[str]) -> list[str]:
    """As _emails, for a decoded user."""
    emails = [mail] if mail else []
    emails.extend(e for e in others if e and e not in emails)
    return emails


def _typed_groups(groups: list[_Group]) -> list[SourceGroup]:
    return [SourceGroup(group.id, group.displayName, group.description or None) for group in groups]


def _typed_members(members: list[_Member], ignored: dict[str, int]) -> tuple[list[str], list[str]]:
    """As GraphSource._members, for a decoded page: a page of users alone takes one pass."""
    user_ids = [member.id for member in members if member.type == USER_TYPE]
    if len(user_ids) == len(members):
        return user_ids, []
    group_ids = [member.id for member in members if member.type == GROUP_TYPE]
    if len(user_ids) + len(group_ids) < len(members):
        for member in members:
            if member.type != USER_TYPE and member.type != GROUP_TYPE:
                label = member.type if member.type is not None else "untyped"
                ignored[label] = ignored.get(label, 0) + 1
    return user_ids, group_ids


def _ignored_warnings(name: str, ignored: dict[str, int]) -> list[str]:
    return [
        f"{name}: ignored {count} group members of type {kind}" for kind, count in sorted(ignored.items())
    ]
