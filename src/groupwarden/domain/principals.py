"""Principals (g/<group>, u/<user>) and targets (WORKSPACE/FOLDER, WORKSPACE/f/FOLDER/ITEM)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from groupwarden.domain.errors import BadInput

# Always used with fullmatch: `$` with match() also accepts a final newline.
FOLDER_NAME = re.compile(r"[A-Za-z0-9_]+")
WORKSPACE_ID = re.compile(r"[A-Za-z0-9_-]+")
ITEM_NAME = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")

PrincipalKind = Literal["g", "u"]


@dataclass(frozen=True, slots=True)
class PrincipalRef:
    """A principal as the user typed it; the name is resolved by the service layer."""

    kind: PrincipalKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> PrincipalRef:
        kind, sep, name = text.partition("/")
        if not sep or kind not in ("g", "u") or not name.strip():
            raise BadInput(f"bad principal {text!r}: write g/<group> for a group or u/<userName> for a user")
        return cls("g" if kind == "g" else "u", name)


def check_workspace_id(text: str) -> str:
    if not WORKSPACE_ID.fullmatch(text):
        raise BadInput(f"bad workspace id {text!r}: use letters, digits, '-' and '_' only")
    return text


def check_folder_name(text: str) -> str:
    if not FOLDER_NAME.fullmatch(text):
        raise BadInput(f"bad folder name {text!r}: use letters, digits and '_' only")
    return text


@dataclass(frozen=True, slots=True)
class Target:
    """A folder (item is None) or an item at f/<folder>/<item> in a workspace."""

    workspace: str
    folder: str
    item: str | None = None

    def __str__(self) -> str:
        if self.item is None:
            return f"{self.workspace}/{self.folder}"
        return f"{self.workspace}/f/{self.folder}/{self.item}"

    @property
    def folder_target(self) -> Target:
        return Target(self.workspace, self.folder)

    @property
    def item_path(self) -> str:
        """The item's path inside the workspace, or '' for the folder itself."""
        return "" if self.item is None else f"f/{self.folder}/{self.item}"

    @classmethod
    def parse(cls, text: str) -> Target:
        workspace, sep, rest = text.partition("/")
        if not sep or not rest:
            raise BadInput(
                f"bad target {text!r}: write WORKSPACE/FOLDER, or WORKSPACE/f/FOLDER/ITEM for an item"
            )
        check_workspace_id(workspace)
        if rest.startswith("f/"):
            folder, sep, item = rest[2:].partition("/")
            if not sep or not item:
                raise BadInput(f"bad item path {text!r}: write WORKSPACE/f/FOLDER/ITEM")
            check_folder_name(folder)
            if not ITEM_NAME.fullmatch(item):
                raise BadInput(f"bad item name {item!r} in {text!r}")
            if any(part in (".", "..") for part in item.split("/")):
                raise BadInput(f"bad item name {item!r} in {text!r}: '.' and '..' are not path segments")
            return cls(workspace, folder, item)
        return cls(workspace, check_folder_name(rest))
