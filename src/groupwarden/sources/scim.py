"""A SCIM 2.0 client (RFC 7643/7644) that lists every user and group of a service provider.

Parsing: we read the few fields we need straight from the decoded JSON instead of building a
scim2-models object per resource. Measured on this machine, User.model_validate costs about
175 µs per user (17 s for 100k users, far more than downloading them), while the raw reader
costs under 2 µs; and scim2-models rejects things real IdPs send that do not matter to us
(unknown attributes, emails without a dot in the domain). So the raw reader is the only
parser: tolerant where it does not matter (string booleans, missing optional fields,
unknown attributes), strict where it does (ids, userName, displayName, member values).
scim2-models stays the reference for which attribute names are standard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from scim2_models import Group, User

from groupwarden.domain.directory import (
    Progress,
    ProgressCallback,
    Snapshot,
    SourceGroup,
    SourceUser,
    check_snapshot,
)
from groupwarden.domain.errors import SyncError
from groupwarden.domain.text import printable
from groupwarden.sources.common import identifier as _identifier
from groupwarden.sources.common import parsed_pages_frozen as _parsed_pages_frozen
from groupwarden.sources.http import HttpClient, safe_url


def _attribute_names(model: type[User[Any]] | type[Group]) -> frozenset[str]:
    # SCIM attribute names are case-insensitive (RFC 7643 §2.1).
    names = [field.serialization_alias or field.alias or name for name, field in model.model_fields.items()]
    # Both spellings, so the usual camelCase key is found without lowering it.
    return frozenset(names + [name.lower() for name in names])


USER_ATTRIBUTES = _attribute_names(User)
GROUP_ATTRIBUTES = _attribute_names(Group)
T = TypeVar("T")
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})


class ScimSource:
    """Lists /Users and /Groups of a SCIM 2.0 endpoint into a checked Snapshot."""

    kind = "scim"

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        name: str | None = None,
        ca_bundle: str | None = None,
        verify: bool = True,
        page_size: int = 500,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        client: HttpClient | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.url = safe_url(self.base)
        self.name = name or self.url
        self.page_size = max(1, page_size)
        self._token = token
        self._ca_bundle = ca_bundle
        self._verify = verify
        self._timeout = timeout
        self._sleep = sleep
        self._client = client

    def __repr__(self) -> str:
        # Never show the token, even in a debugger or a log of objects.
        return f"ScimSource(name={self.name!r}, url={self.url!r})"

    def fetch(self, progress: ProgressCallback | None = None) -> Snapshot:
        if self._client is not None:
            return self._fetch(self._client, progress)
        headers = {"Accept": "application/scim+json, application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        with HttpClient(
            headers,
            timeout=self._timeout,
            verify=self._verify,
            ca_bundle=self._ca_bundle,
            sleep=self._sleep,
        ) as http:
            return self._fetch(http, progress)

    def _fetch(self, http: HttpClient, progress: ProgressCallback | None) -> Snapshot:
        page_size = min(self.page_size, self._max_results(http) or self.page_size)
        unknown: dict[str, None] = {}
        untyped: list[tuple[SourceGroup, str]] = []

        with _parsed_pages_frozen() as after_page:
            users = self._list(
                http,
                "Users",
                "users",
                page_size,
                progress,
                lambda raw, n: self._user(raw, n, unknown),
                after_page,
            )
            groups = self._list(
                http,
                "Groups",
                "groups",
                page_size,
                progress,
                lambda raw, n: self._group(raw, n, unknown, untyped),
                after_page,
            )
        self._resolve_untyped(users, groups, untyped)

        warnings = [
            f"{self.name}: ignored the non-standard SCIM attribute {printable(attribute)}"
            for attribute in unknown
        ]
        snapshot = Snapshot(users=users, groups=groups, warnings=warnings)
        check_snapshot(snapshot, self.name)
        return snapshot

    def _resolve_untyped(
        self, users: list[SourceUser], groups: list[SourceGroup], untyped: list[tuple[SourceGroup, str]]
    ) -> None:
        """Sort members sent without a type into users and groups, by the ids we listed."""
        if not untyped:
            return
        user_ids = {user.upstream_id for user in users}
        group_ids = {group.upstream_id for group in groups}
        for group, value in untyped:
            if value in user_ids:
                group.user_members.append(value)
            elif value in group_ids:
                group.group_members.append(value)
            else:
                raise SyncError(
                    f"{self.name}: group {group.name!r} names member {value!r}, which is neither a"
                    " listed user nor a listed group; the listing is incomplete, sync aborted"
                )

    def _max_results(self, http: HttpClient) -> int | None:
        """The server's filter.maxResults, when its ServiceProviderConfig announces one."""
        body, _ = http.get_json(f"{self.base}/ServiceProviderConfig", missing_ok=True)
        if not isinstance(body, dict):
            return None
        filter_config = body.get("filter")
        if not isinstance(filter_config, dict):
            return None
        value = filter_config.get("maxResults")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        return None

    def _list(
        self,
        http: HttpClient,
        endpoint: str,
        phase: str,
        page_size: int,
        progress: ProgressCallback | None,
        parse: Callable[[Any, int], T],
        after_page: Callable[[], None],
    ) -> list[T]:
        """Every resource of an endpoint, paged by startIndex/count (RFC 7644 §3.4.2.4).

        Each page is parsed as soon as it arrives, so the decoded JSON of 100k users is
        never alive at once: keeping it made the garbage collector's full passes cost as
        much as the whole download (measured: 2.6 s instead of 1.9 s for 100k users).
        """
        url = f"{self.base}/{endpoint}"
        where = f"{self.name}: listing {endpoint}"
        items: list[T] = []
        start = 1
        total: int | None = None
        pages = 0
        while True:
            body, _ = http.get_json(url, {"startIndex": start, "count": page_size})
            if not isinstance(body, dict):
                raise SyncError(f"{where}: the server did not return a SCIM list response")
            page_total = body.get("totalResults")
            if not isinstance(page_total, int) or isinstance(page_total, bool) or page_total < 0:
                raise SyncError(f"{where}: the list response has no valid totalResults")
            if total is None:
                total = page_total
            elif page_total != total:
                raise SyncError(
                    f"{where}: totalResults went from {total} to {page_total} between pages;"
                    " the directory changed during the sync, try again"
                )
            echoed = body.get("startIndex")
            if isinstance(echoed, int) and not isinstance(echoed, bool) and echoed != start:
                raise SyncError(
                    f"{where}: asked for startIndex {start} but got {echoed}; the server"
                    " does not page as RFC 7644 says, so the listing cannot be trusted"
                )
            resources = body.get("Resources") or []
            if not isinstance(resources, list):
                raise SyncError(f"{where}: Resources is not a list")
            received = len(resources)
            position = len(items)
            items.extend(parse(raw, position + n) for n, raw in enumerate(resources, 1))
            after_page()
            pages += 1
            if progress is not None:
                progress(Progress(phase=phase, pages=pages, items=len(items), total=total))
            if start - 1 + received >= total:
                return items
            if received == 0:
                raise SyncError(
                    f"{where}: an empty page at startIndex {start} before totalResults"
                    f" ({total}) was reached; the listing is incomplete, sync aborted"
                )
            start += received

    def _user(self, raw: Any, position: int, unknown: dict[str, None]) -> SourceUser:
        if not isinstance(raw, dict):
            raise SyncError(f"{self.name}: user #{position} of the listing is not an object")
        upstream_id = _identifier(raw.get("id"))
        user_name = raw.get("userName")
        if upstream_id is None:
            raise SyncError(f"{self.name}: user #{position} ({_label(user_name)}) has no id; sync aborted")
        if not isinstance(user_name, str) or not user_name:
            raise SyncError(f"{self.name}: user {upstream_id!r} has no userName; sync aborted")
        _note_unknown(raw, USER_ATTRIBUTES, "User", unknown)

        display_name = raw.get("displayName")
        if not isinstance(display_name, str) or not display_name:
            name = raw.get("name")
            formatted = name.get("formatted") if isinstance(name, dict) else None
            display_name = formatted if isinstance(formatted, str) and formatted else None

        active = _boolean(raw.get("active"), default=True)
        if active is None:
            raise SyncError(
                f"{self.name}: user {upstream_id!r} has active={raw.get('active')!r},"
                " which is not a boolean; sync aborted"
            )
        return SourceUser(
            upstream_id=upstream_id,
            user_name=user_name,
            display_name=display_name,
            emails=_emails(raw.get("emails")),
            active=active,
        )

    def _group(
        self,
        raw: Any,
        position: int,
        unknown: dict[str, None],
        untyped: list[tuple[SourceGroup, str]],
    ) -> SourceGroup:
        if not isinstance(raw, dict):
            raise SyncError(f"{self.name}: group #{position} of the listing is not an object")
        upstream_id = _identifier(raw.get("id"))
        name = raw.get("displayName")
        if upstream_id is None:
            raise SyncError(f"{self.name}: group #{position} ({_label(name)}) has no id; sync aborted")
        if not isinstance(name, str) or not name:
            raise SyncError(f"{self.name}: group {upstream_id!r} has no displayName; sync aborted")
        _note_unknown(raw, GROUP_ATTRIBUTES, "Group", unknown)

        members = raw.get("members") or []
        if not isinstance(members, list):
            raise SyncError(f"{self.name}: group {name!r} has members that are not a list")
        group = SourceGroup(upstream_id=upstream_id, name=name)
        for member in members:
            value = _identifier(member.get("value")) if isinstance(member, dict) else None
            if value is None:
                raise SyncError(f"{self.name}: group {name!r} has a member without a value; sync aborted")
            kind = member.get("type")
            kind = kind.lower() if isinstance(kind, str) else None
            if kind == "user":
                group.user_members.append(value)
            elif kind == "group":
                group.group_members.append(value)
            else:
                # No (or an unusual) type: decided once every user and group id is known.
                untyped.append((group, value))
        return group


def _label(value: Any) -> str:
    return repr(value) if isinstance(value, str) and value else "unnamed"


def _boolean(value: Any, *, default: bool) -> bool | None:
    """A SCIM boolean, accepting the strings some IdPs send; None when it is not one."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def _emails(value: Any) -> list[str]:
    """Email addresses, the primary one first, the others in the server's order."""
    if not isinstance(value, list):
        return []
    primary: list[str] = []
    others: list[str] = []
    for entry in value:
        if not isinstance(entry, dict):
            continue
        address = entry.get("value")
        if not isinstance(address, str) or not address:
            continue
        if _boolean(entry.get("primary"), default=False) and not primary:
            primary.append(address)
        else:
            others.append(address)
    return primary + others


def _note_unknown(
    raw: dict[str, Any], known: frozenset[str], resource: str, unknown: dict[str, None]
) -> None:
    for key in raw:
        # Schema extensions are keyed by their URN; they are standard, just not ours.
        if key not in known and key.lower() not in known and not key.startswith("urn:"):
            unknown.setdefault(f"{resource}.{key}", None)
