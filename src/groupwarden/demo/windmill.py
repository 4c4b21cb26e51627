"""The demo's Windmill stand-in: filled from the demo organisation and windmill.toml, then linked.

The stand-in is filled through its own methods (what an admin would do in Windmill), then
pulled with services.windmill.pull like any instance: the token is read from an environment
variable the demo sets for itself, and the link is marked as a stand-in.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.domain.windmill import normalise_group_name
from groupwarden.services.context import Context
from groupwarden.services.windmill import DriftReport, PullReport, WindmillLink, drift, pull

TOKEN_ENV = "GROUPWARDEN_DEMO_WINDMILL_TOKEN"
INSTANCE_NAME = "demo"
# Windmill stores a folder owner as True in extra_perms too; an item has no owners.
_PERM = {"writer": True, "viewer": False}


def username(email: str) -> str:
    """The demo's Windmill username for an email: its local part, '.' as '_'."""
    return email.split("@", 1)[0].replace(".", "_")


def active_emails(org: dict[str, Any]) -> dict[str, list[str]]:
    """Each group's active effective members' first emails, by group displayName (nesting expanded,
    cycles tolerated): what a SCIM push leaves in Windmill's copy of the group."""
    users = {u["key"]: u for u in org["users"]}
    groups = {g["key"]: g for g in org["groups"]}

    def members(key: str, seen: set[str]) -> set[str]:
        seen.add(key)
        found: set[str] = set()
        for member in groups[key]["members"]:
            if "user" in member:
                found.add(member["user"])
            elif member["group"] not in seen:
                found |= members(member["group"], seen)
        return found

    return {
        g["displayName"]: sorted(
            users[k]["emails"][0] for k in members(key, set()) if users[k]["active"] and users[k]["emails"]
        )
        for key, g in groups.items()
    }


def _principal(entry: dict[str, Any]) -> str:
    return str(entry["principal"])


def fill_standin(standin: WindmillStandIn, org: dict[str, Any], description: dict[str, Any]) -> None:
    """Make the stand-in hold the instance windmill.toml describes (see its header)."""
    drifted = description.get("drift", {})
    deleted = {normalise_group_name(name) for name in drifted.get("deleted_groups", [])}
    emails = {normalise_group_name(name): list(found) for name, found in active_emails(org).items()}
    for change in drifted.get("missing_members", []):
        emails[normalise_group_name(change["group"])].remove(change["email"])
    for change in drifted.get("extra_members", []):
        emails[normalise_group_name(change["group"])].append(change["email"])
    with standin.lock:
        for name, found in sorted(emails.items()):
            if name not in deleted:
                standin.add_instance_group(name, found)
        for group in drifted.get("windmill_groups", []):
            standin.add_instance_group(group["name"], list(group["emails"]))
        people = sorted(u["emails"][0] for u in org["users"] if u["active"] and u["emails"])
        for space in description["workspaces"]:
            ws_id = space["id"]
            standin.add_workspace(ws_id, space["name"])
            admins, operators = set(space.get("admins", [])), set(space.get("operators", []))
            for email in people:
                name = username(email)
                standin.add_user(ws_id, name, email, admin=name in admins, operator=name in operators)
            for folder in space["folders"]:
                grants = folder["grants"]
                owners = [_principal(g) for g in grants if g["role"] == "admin"]
                perms = {_principal(g): _PERM[g["role"]] for g in grants if g["role"] != "admin"}
                standin.add_folder(ws_id, folder["name"], owners, perms)
                for item in folder.get("items", []):
                    item_perms = {_principal(g): _PERM[g["role"]] for g in item["grants"]}
                    standin.add_item(ws_id, item["kind"], item["path"], item_perms)
            auto = space.get("auto_add", [])
            standin.set_settings(
                ws_id,
                {
                    "auto_invite": {
                        "instance_groups": [normalise_group_name(a["group"]) for a in auto],
                        "instance_groups_roles": {normalise_group_name(a["group"]): a["role"] for a in auto},
                    }
                },
            )


def load_description(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


@dataclass(slots=True)
class LinkedStandIn:
    """The demo's linked stand-in: the server, the pull's report and the drift found after it."""

    standin: WindmillStandIn
    report: PullReport
    drift: DriftReport
    token: str = field(repr=False)

    def summary(self) -> str:
        d = self.drift
        found = (
            f"dangling {len(d.dangling)}, membership {len(d.membership_drift)}, unmatched {len(d.unmatched)},"
            f" unknown users {len(d.unknown_users)}, auto-add {len(d.auto_add)}"
        )
        return (
            f"windmill stand-in: {self.report.workspaces} workspaces linked,"
            f" {self.report.acl_entries} ACL entries; drift: {found}"
            f" (instance {self.report.name!r} at {self.standin.url})"
        )

    def close(self) -> None:
        self.standin.stop()
        # Only our own token: a later demo in this process may have set its own meanwhile.
        if os.environ.get(TOKEN_ENV) == self.token:
            del os.environ[TOKEN_ENV]


def link_standin(ctx: Context, org: dict[str, Any], description: dict[str, Any]) -> LinkedStandIn:
    """Start a stand-in on 127.0.0.1, fill it, and pull it into ctx's store as a linked instance."""
    standin = WindmillStandIn()
    try:
        fill_standin(standin, org, description)
        token = standin.superadmin_token
        os.environ[TOKEN_ENV] = token
        link = WindmillLink(INSTANCE_NAME, standin.url, token_env=TOKEN_ENV, standin=True)
        report = pull(ctx, link)
        found = drift(ctx, INSTANCE_NAME)
    except BaseException:
        standin.stop()
        if os.environ.get(TOKEN_ENV) == standin.superadmin_token:
            del os.environ[TOKEN_ENV]
        raise
    return LinkedStandIn(standin, report, found, token)
