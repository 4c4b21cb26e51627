"""An Okta client: users, groups and group members from the Okta management API (/api/v1).

Paging follows the `Link: <...>; rel="next"` header until there is none; the `after`
cursor inside it is opaque, so we never build it ourselves. Rate limits: a 429 waits until
X-Rate-Limit-Reset (epoch seconds); a success whose X-Rate-Limit-Remaining is low spreads
the requests left over the rest of the window instead of running into the 429.

Each group's members are listed by its own cursor, so the groups' listings run side by side,
page_concurrency at a time while the budget lasts, and one at a time when it runs low, so
requests already in flight cannot overdraw what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from groupwarden.domain.directory import (
    ProgressCallback,
    Snapshot,
    SourceGroup,
    SourceUser,
    check_snapshot,
)
from groupwarden.domain.errors import SyncError
from groupwarden.domain.secrets import register_secret
from groupwarden.domain.text import printable
from groupwarden.sources.ahead import in_order
from groupwarden.sources.base import PageCounter, SeenIds
from groupwarden.sources.common import identifier, parsed_pages_frozen
from groupwarden.sources.http import HttpClient, check_same_origin, decode_json, safe_url

# The largest pages the API serves for each listing.
USERS_LIMIT = 200
GROUPS_LIMIT = 10000
MEMBERS_LIMIT = 1000

# Statuses of an account that can be used (or is being recovered); the others are not
# (not yet activated, suspended, deprovisioned). An unknown status counts as active and
# is reported, so an access audit never hides someone by guessing.
ACTIVE_STATUSES = frozenset({"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY", "PROVISIONED"})
INACTIVE_STATUSES = frozenset({"STAGED", "SUSPENDED", "DEPROVISIONED"})

# Start pacing when fewer than this share of the window's requests are left.
PACE_BELOW = 0.1
# Member listings in flight at once.
PAGE_CONCURRENCY = 4


class OktaSource:
    """Lists the users, groups and memberships of an Okta org into a checked Snapshot."""

    kind = "okta"

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        name: str | None = None,
        ca_bundle: str | None = None,
        verify: bool = True,
        timeout: float = 30.0,
        request_timeout: float = 60.0,
        sync_timeout: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        max_total_wait: float = 900.0,
        page_concurrency: int = PAGE_CONCURRENCY,
    ) -> None:
        self.base = url.rstrip("/")
        self.url = safe_url(self.base)
        self.name = name or self.url
        self.page_concurrency = max(1, page_concurrency)
        register_secret(token)
        self._token = token
        self._ca_bundle = ca_bundle
        self._verify = verify
        self._timeout = timeout
        self._request_timeout = request_timeout
        self._sync_timeout = sync_timeout
        self._sleep = sleep
        self._clock = clock
        self._max_total_wait = max_total_wait

    def __repr__(self) -> str:
        return f"OktaSource(name={self.name!r}, url={self.url!r})"

    def fetch(self, progress: ProgressCallback | None = None) -> Snapshot:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"SSWS {self._token}"
        with HttpClient(
            headers,
            timeout=self._timeout,
            request_timeout=self._request_timeout,
            sync_timeout=self._sync_timeout,
            verify=self._verify,
            ca_bundle=self._ca_bundle,
            sleep=self._sleep,
            server_wait=self._until_reset,
            max_total_wait=self._max_total_wait,
            concurrency=self.page_concurrency,
        ) as http:
            return self._fetch(http, progress)

    def _fetch(self, http: HttpClient, progress: ProgressCallback | None) -> Snapshot:
        unknown_statuses: dict[str, None] = {}
        with parsed_pages_frozen() as after_page:
            users: list[SourceUser] = []
            counter = PageCounter("users", progress)
            parse_user = self._user_parser(unknown_statuses)
            # Okta gives no total to check against; an id given twice is what shows a
            # cursor that goes round in circles (the links themselves may all differ).
            seen = SeenIds(f"{self.name}: listing users", "user")
            # The plain listing leaves DEPROVISIONED users out; they are asked for apart,
            # so a deprovisioned member still shows, inactive, with its status.
            for query in (
                {"limit": USERS_LIMIT},
                {"limit": USERS_LIMIT, "filter": 'status eq "DEPROVISIONED"'},
            ):
                for page in self._pages(http, f"{self.base}/api/v1/users", query, "users"):
                    parsed = [parse_user(raw, len(users) + n) for n, raw in enumerate(page, 1)]
                    seen.add([user.upstream_id for user in parsed])
                    users.extend(parsed)
                    after_page()
                    counter.page(len(page))
            groups: list[SourceGroup] = []
            counter = PageCounter("groups", progress)
            seen = SeenIds(f"{self.name}: listing groups", "group")
            for page in self._pages(http, f"{self.base}/api/v1/groups", {"limit": GROUPS_LIMIT}, "groups"):
                parsed_groups = [self._group(raw, len(groups) + n) for n, raw in enumerate(page, 1)]
                seen.add([group.upstream_id for group in parsed_groups])
                groups.extend(parsed_groups)
                after_page()
                counter.page(len(page))
            counter = PageCounter("members", progress, total=len(groups))
            # Every group may run ahead of the one being read: a group of many pages must not
            # leave the others waiting, and the ids are kept for the snapshot anyway.
            listings = in_order(
                lambda n: self._members(http, groups[n]), len(groups), self.page_concurrency, len(groups)
            )
            for group, members in zip(groups, listings, strict=True):
                group.user_members.extend(members)
                counter.item()
                after_page()
        warnings = [
            f"{self.name}: user status {printable(status)} is not one we know; counted as active"
            for status in unknown_statuses
        ]
        snapshot = Snapshot(users=users, groups=groups, warnings=warnings)
        check_snapshot(snapshot, self.name)
        return snapshot

    def _members(self, http: HttpClient, group: SourceGroup) -> list[str]:
        """The ids of a group's members, every page of them (run on a paging thread)."""
        url = f"{self.base}/api/v1/groups/{group.upstream_id}/users"
        what = f"members of {group.name!r}"
        seen = SeenIds(f"{self.name}: listing {what}", "member")
        members: list[str] = []
        for page in self._pages(http, url, {"limit": MEMBERS_LIMIT}, what):
            ids: list[str] = []
            for raw in page:
                member = identifier(raw.get("id")) if isinstance(raw, dict) else None
                if member is None:
                    raise SyncError(
                        f"{self.name}: group {group.name!r} has a member without an id; sync aborted"
                    )
                ids.append(member)
            seen.add(ids)
            members.extend(ids)
        return members

    def _pages(
        self, http: HttpClient, url: str, params: dict[str, Any] | None, what: str
    ) -> Iterator[list[Any]]:
        """Each page (a list of objects) of a listing, following rel="next" links."""
        where = f"{self.name}: listing {what}"
        next_url: str | None = url
        seen: set[str] = set()
        while next_url is not None:
            response = http.get(next_url, params)
            assert response is not None
            self._pace(http, response, where)
            body = decode_json(response)
            if not isinstance(body, list):
                raise SyncError(f"{where}: the server did not return a list; sync aborted")
            yield body
            link = response.links.get("next", {}).get("url")
            params = None  # the next link carries every parameter
            if link is None:
                return
            if link in seen:
                raise SyncError(f"{where}: the next-page link repeats {safe_url(link)}; sync aborted")
            seen.add(link)
            next_url = check_same_origin(link, self.base, where)

    def _until_reset(self, response: httpx.Response) -> float | None:
        """A 429's wait: until X-Rate-Limit-Reset, plus a second for clock skew."""
        reset = _number(response.headers.get("X-Rate-Limit-Reset"))
        if reset is None:
            return None
        return max(0.0, reset - self._clock()) + 1.0

    def _pace(self, http: HttpClient, response: httpx.Response, where: str) -> None:
        limit = _number(response.headers.get("X-Rate-Limit-Limit"))
        remaining = _number(response.headers.get("X-Rate-Limit-Remaining"))
        reset = _number(response.headers.get("X-Rate-Limit-Reset"))
        if limit is None or remaining is None or reset is None or limit <= 0:
            return
        # The requests in flight each spend one more: with less left than twice as many, they
        # go one at a time, so none overdraws the budget; with enough again, side by side.
        if remaining < 2 * http.gate.limit:
            http.gate.cap(1)
        elif http.gate.capped is not None:
            http.gate.cap(None)
        if remaining >= limit * PACE_BELOW:
            return
        window_left = max(0.0, reset - self._clock())
        http.pace(
            window_left / (remaining + 1), where, f"{remaining:g} requests left in the rate-limit window"
        )

    def _user_parser(self, unknown_statuses: dict[str, None]) -> Callable[[Any, int], SourceUser]:
        def parse(raw: Any, position: int) -> SourceUser:
            if not isinstance(raw, dict):
                raise SyncError(f"{self.name}: user #{position} of the listing is not an object")
            upstream_id = identifier(raw.get("id"))
            profile = raw.get("profile")
            if not isinstance(profile, dict):
                profile = {}
            login = profile.get("login")
            if upstream_id is None:
                raise SyncError(f"{self.name}: user #{position} has no id; sync aborted")
            if not isinstance(login, str) or not login:
                raise SyncError(f"{self.name}: user {upstream_id!r} has no profile.login; sync aborted")
            status = raw.get("status")
            status = status if isinstance(status, str) and status else None
            if status is None or status in ACTIVE_STATUSES:
                active = True
            elif status in INACTIVE_STATUSES:
                active = False
            else:
                active = True
                unknown_statuses.setdefault(status, None)
            display = profile.get("displayName")
            if not isinstance(display, str) or not display:
                parts = [profile.get("firstName"), profile.get("lastName")]
                display = " ".join(p for p in parts if isinstance(p, str) and p) or None
            emails: list[str] = []
            for key in ("email", "secondEmail"):
                value = profile.get(key)
                if isinstance(value, str) and value and value not in emails:
                    emails.append(value)
            return SourceUser(
                upstream_id=upstream_id,
                user_name=login,
                display_name=display,
                emails=emails,
                active=active,
                raw_status=status,
            )

        return parse

    def _group(self, raw: Any, position: int) -> SourceGroup:
        if not isinstance(raw, dict):
            raise SyncError(f"{self.name}: group #{position} of the listing is not an object")
        upstream_id = identifier(raw.get("id"))
        profile = raw.get("profile")
        if not isinstance(profile, dict):
            profile = {}
        name = profile.get("name")
        if upstream_id is None:
            raise SyncError(f"{self.name}: group #{position} has no id; sync aborted")
        if not isinstance(name, str) or not name:
            raise SyncError(f"{self.name}: group {upstream_id!r} has no profile.name; sync aborted")
        description = profile.get("description")
        kind = raw.get("type")
        return SourceGroup(
            upstream_id=upstream_id,
            name=name,
            description=description if isinstance(description, str) and description else None,
            kind=kind if isinstance(kind, str) and kind else None,
        )


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None
