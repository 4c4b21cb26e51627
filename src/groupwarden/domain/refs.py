"""Typed references: a group, a user or a target already resolved to its row in the store.

What a user types (g/name, u/name, WS/FOLDER) is resolved once, at the edge, into one of
these; every service below takes them and never parses or looks up a name again.
"""

from __future__ import annotations

from dataclasses import dataclass

from groupwarden.domain.principals import Target


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: int
    name: str
    upstream_id: str
    source: str
    removed: bool = False

    @property
    def principal(self) -> str:
        return f"g/{self.name}"

    @property
    def key(self) -> str:
        """The grants table's principal_key: one grant per (target, principal)."""
        return f"g:{self.id}"


@dataclass(frozen=True, slots=True)
class UserRef:
    id: int
    user_name: str
    upstream_id: str
    source: str
    removed: bool = False

    @property
    def principal(self) -> str:
        return f"u/{self.user_name}"

    @property
    def key(self) -> str:
        return f"u:{self.id}"


Principal = GroupRef | UserRef


@dataclass(frozen=True, slots=True)
class TargetRef:
    """A target and the id of the folder it is (or inherits from)."""

    folder_id: int
    target: Target

    def __str__(self) -> str:
        return str(self.target)

    @property
    def item_path(self) -> str:
        return self.target.item_path

    @property
    def folder_text(self) -> str:
        """The folder the target is, or inherits from, as WORKSPACE/FOLDER."""
        return str(self.target.folder_target)


@dataclass(frozen=True, slots=True)
class WindmillPrincipal:
    """A principal as a linked workspace's Windmill instance knows it.

    owner is what Windmill's ACLs hold: `g/<Windmill group name>` (an instance group or a
    group of the workspace) or `u/<the workspace's username>`. idp is the identity-provider
    group or user it is matched to, when there is one: it supplies names and the nesting
    behind an explanation, never the access itself.
    """

    instance: str
    workspace: str
    owner: str
    idp: GroupRef | UserRef | None = None

    @property
    def principal(self) -> str:
        return self.owner

    @property
    def is_group(self) -> bool:
        return self.owner.startswith("g/")
