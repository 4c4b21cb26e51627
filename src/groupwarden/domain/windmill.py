"""Windmill's permission model as pure rules: roles on folders and items, and the calls that change them.

The facts come from Windmill's handlers (folders.rs, granular_acls.rs, groups.rs):
- a folder owner is admin whatever extra_perms says; otherwise extra_perms[p] true is writer,
  false is viewer, absent is none;
- addowner appends to owners and sets extra_perms[p] = true;
- removeowner with write removes from owners and sets extra_perms[p] = write, even for a
  principal that was absent; without write it removes from owners only and leaves
  extra_perms as it was (a former admin keeps extra_perms[p] = true, so stays a writer);
- acls/remove deletes the extra_perms key (200 when absent); on a folder it leaves owners.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from groupwarden.domain.errors import BadInput
from groupwarden.domain.roles import Role

#: Windmill's ACL kind of each item list we read, by the list's path segment.
ITEM_LISTS: dict[str, str] = {
    "script": "scripts",
    "flow": "flows",
    "app": "apps",
    "resource": "resources",
    "variable": "variables",
    "schedule": "schedules",
}
ITEM_KINDS = tuple(ITEM_LISTS)

#: Workspace roles that auto-add gives an instance group's members.
AUTO_ADD_ROLES = ("admin", "developer", "operator")
#: What Windmill assumes when a group is auto-added without a role.
DEFAULT_AUTO_ADD_ROLE = "developer"

# Windmill's owner check on addowner/removeowner (release 1.743): the whole owner string may
# hold ASCII letters and digits, '_', '-' and '/' only. Newer releases also let '.' and '@'
# through, and acls/add checks nothing; we hold every write to the strict rule, which all
# releases accept, so an email can never be written where a username belongs.
_OWNER_CHARS = re.compile(r"^[A-Za-z0-9_/-]+$")

WriteOp = Literal["addowner", "removeowner", "acl_add", "acl_remove"]


@dataclass(frozen=True, slots=True)
class AclWrite:
    """One single-principal write call: op on owner, with write for removeowner and acl_add."""

    op: WriteOp
    owner: str
    write: bool | None = None

    def __str__(self) -> str:
        flag = "" if self.write is None else f" write={str(self.write).lower()}"
        return f"{self.op} {self.owner}{flag}"


def normalise_group_name(name: str) -> str:
    """An instance-group name as Windmill stores it: ' ' becomes '_', then lowercase.

    Exactly what groups.rs convert_name does: only the ASCII space is replaced (not tabs
    or other blanks), nothing is trimmed or dropped, and lowercasing is Unicode-wide.
    """
    return name.replace(" ", "_").lower()


def owner_string(kind: Literal["u", "g"], name: str) -> str:
    """The principal as Windmill's write calls take it: u/<workspace username> or g/<group>."""
    owner = f"{kind}/{name}"
    check_owner(owner)
    return owner


def check_owner(owner: str) -> str:
    """Refuse an owner string Windmill's write calls would refuse (or, for a user, misread)."""
    kind, sep, name = owner.partition("/")
    if not sep or kind not in ("u", "g") or not name:
        raise BadInput(f"bad Windmill principal {owner!r}: write u/<username> or g/<group>")
    if kind == "u" and ("@" in name or "." in name):
        raise BadInput(
            f"bad Windmill principal {owner!r}: Windmill names users by their workspace username,"
            " not their email; use the username from the workspace's user list"
        )
    if not _OWNER_CHARS.match(owner):
        raise BadInput(
            f"bad Windmill principal {owner!r}: Windmill accepts only letters, digits, '_', '-' and '/'"
        )
    return owner


def is_principal(key: str) -> bool:
    """True for a u/<name> or g/<name> key, the only kinds Windmill's ACLs hold."""
    return (key.startswith("u/") or key.startswith("g/")) and len(key) > 2


def folder_role(owners: Collection[str], extra_perms: Mapping[str, bool], principal: str) -> Role | None:
    """A principal's own role on a folder (not counting groups or workspace roles)."""
    if principal in owners:
        return Role.ADMIN
    write = extra_perms.get(principal)
    if write is None:
        return None
    return Role.WRITER if write else Role.VIEWER


def item_role(extra_perms: Mapping[str, bool], principal: str) -> Role | None:
    """A principal's own grant on an item; items have no owners list, so no admin."""
    write = extra_perms.get(principal)
    if write is None:
        return None
    return Role.WRITER if write else Role.VIEWER


def folder_writes(before: Role | None, after: Role | None, owner: str) -> list[AclWrite]:
    """The calls that move owner from before to after on a folder, in order.

    Each call sets its end state whatever the start, so a principal changed by someone
    else meanwhile still ends where asked. Revoking takes two calls: removeowner alone
    leaves extra_perms, acls/remove alone would leave an owner without extra_perms.
    """
    check_owner(owner)
    if before == after:
        return []
    if after is Role.ADMIN:
        return [AclWrite("addowner", owner)]
    if after is Role.WRITER:
        return [AclWrite("removeowner", owner, True)]
    if after is Role.VIEWER:
        return [AclWrite("removeowner", owner, False)]
    return [AclWrite("removeowner", owner), AclWrite("acl_remove", owner)]


def item_writes(before: Role | None, after: Role | None, owner: str) -> list[AclWrite]:
    """The calls that move owner from before to after on an item; admin is refused."""
    check_owner(owner)
    if after is Role.ADMIN or before is Role.ADMIN:
        raise BadInput("Windmill items have no admin role: grant admin on the folder, or writer on the item")
    if before == after:
        return []
    if after is None:
        return [AclWrite("acl_remove", owner)]
    return [AclWrite("acl_add", owner, after is Role.WRITER)]


def item_folder(path: str) -> str | None:
    """The folder an item at f/<folder>/<name> inherits from; None for any other path."""
    if not path.startswith("f/"):
        return None
    folder, sep, rest = path[2:].partition("/")
    if not folder or not sep or not rest:
        return None
    return folder


def is_personal(path: str) -> bool:
    """True for an item under u/<user>/, which belongs to that user, not to a folder."""
    user, sep, rest = path[2:].partition("/") if path.startswith("u/") else ("", "", "")
    return bool(user and sep and rest)
