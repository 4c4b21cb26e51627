"""Create the demo organisation on a SCIM server through its own HTTP API.

Going through the API (not the server's storage) means the demo's sync reads exactly
what a real client would have created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from groupwarden.domain.errors import GroupwardenError

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def seed_organisation(
    url: str,
    token: str,
    org: dict[str, Any],
    progress: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """POST every user, then every group, of org; return each local key's SCIM id.

    A group is created after the groups nested in it. For a nesting cycle, one group of
    the cycle is created without its members still to come, and completed with a PUT at
    the end.
    """
    users: list[dict[str, Any]] = org["users"]
    groups: list[dict[str, Any]] = org["groups"]
    children = _check(users, groups)
    ids: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30) as http:
        if progress:
            progress(f"creating {len(users)} users on the demo SCIM server")
        for user in users:
            created = _send(http, "POST", "/Users", _user_body(user), f"user {user['key']!r}")
            ids[user["key"]] = created

        if progress:
            progress(f"creating {len(groups)} groups")
        pending = [group["key"] for group in groups]
        by_key = {group["key"]: group for group in groups}
        completed_later: list[str] = []
        while pending:
            ready = [key for key in pending if all(child in ids for child in children[key])]
            if not ready:
                # Everything left waits on a cycle: create one group of it without the
                # members that do not exist yet.
                key = _on_cycle(pending[0], children, ids)
                ready = [key]
                completed_later.append(key)
            for key in ready:
                body = _group_body(by_key[key], ids)
                ids[key] = _send(http, "POST", "/Groups", body, f"group {key!r}")
            pending = [key for key in pending if key not in ready]
        for key in completed_later:
            body = _group_body(by_key[key], ids)
            body["id"] = ids[key]
            _send(http, "PUT", f"/Groups/{ids[key]}", body, f"group {key!r}")
    return ids


def _check(users: list[dict[str, Any]], groups: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Refuse duplicate or dangling keys; return each group's nested group keys."""
    user_keys = {user["key"] for user in users}
    group_keys = {group["key"] for group in groups}
    if len(user_keys) != len(users) or len(group_keys) != len(groups) or user_keys & group_keys:
        raise ValueError("demo organisation: every user and group key must be unique")
    children: dict[str, list[str]] = {}
    for group in groups:
        children[group["key"]] = []
        for member in group["members"]:
            if member.get("user") in user_keys:
                continue
            if member.get("group") in group_keys:
                children[group["key"]].append(member["group"])
                continue
            raise ValueError(f"demo organisation: group {group['key']!r} has an unknown member {member!r}")
    return children


def _on_cycle(start: str, children: dict[str, list[str]], ids: dict[str, str]) -> str:
    """Follow not-yet-created nested groups from start until one repeats: it is on a cycle."""
    seen: set[str] = set()
    key = start
    while key not in seen:
        seen.add(key)
        key = next(child for child in children[key] if child not in ids)
    return key


def _user_body(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": user["userName"],
        "displayName": user["displayName"],
        "active": user["active"],
        "emails": [
            {"value": address, "type": "work", "primary": n == 0} for n, address in enumerate(user["emails"])
        ],
    }


def _group_body(group: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    members = []
    for member in group["members"]:
        if "user" in member:
            members.append({"value": ids[member["user"]], "type": "User"})
        elif member["group"] in ids:
            members.append({"value": ids[member["group"]], "type": "Group"})
    return {"schemas": [GROUP_SCHEMA], "displayName": group["displayName"], "members": members}


def _send(http: httpx.Client, method: str, path: str, body: dict[str, Any], what: str) -> str:
    """Send one request; return the id of the resource it created or replaced."""
    try:
        response = http.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise GroupwardenError(f"demo: cannot reach the demo SCIM server for {what}: {exc}") from None
    if response.status_code >= 300:
        try:
            detail = response.json().get("detail") or response.reason_phrase
        except ValueError:
            detail = response.reason_phrase
        raise GroupwardenError(
            f"demo: the SCIM server refused {method} {path} for {what}: {response.status_code} {detail}"
        )
    return str(response.json()["id"])
