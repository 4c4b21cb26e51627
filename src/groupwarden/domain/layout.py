"""Layout files: workspaces, folders, items and their grants, as a TOML or JSON document.

The whole file is checked before anything is written. A key the format does not know (a
`grant =` typed for `grants =`) is refused, naming the key and its line, since ignoring it
would silently drop grants; so is a principal listed twice on one target, since the file
would then say two things about one grant.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from groupwarden.domain.errors import BadInput
from groupwarden.domain.principals import Target, check_folder_name, check_workspace_id
from groupwarden.domain.roles import Role

_TOP_KEYS = frozenset({"workspaces"})
_WORKSPACE_KEYS = frozenset({"id", "name", "folders"})
_FOLDER_KEYS = frozenset({"name", "summary", "grants", "items"})
_ITEM_KEYS = frozenset({"path", "grants"})
_GRANT_KEYS = frozenset({"principal", "role"})


@dataclass(frozen=True, slots=True)
class LayoutGrant:
    principal: str
    role: Role
    at: str


@dataclass(frozen=True, slots=True)
class LayoutItem:
    target: Target
    grants: tuple[LayoutGrant, ...]


@dataclass(frozen=True, slots=True)
class LayoutFolder:
    target: Target
    summary: str | None
    grants: tuple[LayoutGrant, ...]
    items: tuple[LayoutItem, ...]


@dataclass(frozen=True, slots=True)
class LayoutWorkspace:
    id: str
    name: str | None
    folders: tuple[LayoutFolder, ...]


@dataclass(frozen=True, slots=True)
class Layout:
    workspaces: tuple[LayoutWorkspace, ...]

    def targets(self) -> list[tuple[Target, tuple[LayoutGrant, ...]]]:
        """Every folder and item the file names, each with the grants it lists."""
        out: list[tuple[Target, tuple[LayoutGrant, ...]]] = []
        for space in self.workspaces:
            for folder in space.folders:
                out.append((folder.target, folder.grants))
                out += [(item.target, item.grants) for item in folder.items]
        return out


def parse_layout(raw: str, *, json_format: bool, where: str) -> Layout:
    """The layout in raw (TOML, or JSON when json_format), checked whole; where names the file."""
    try:
        data = json.loads(raw) if json_format else tomllib.loads(raw)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{where} is not valid {'JSON' if json_format else 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{where}: the top level must be a table / object")
    return _Reader(raw, where).layout(data)


class _Reader:
    def __init__(self, raw: str, where: str) -> None:
        self.raw = raw
        self.where = where

    def fail(self, at: str, problem: str) -> BadInput:
        return BadInput(f"{self.where}: {at}: {problem}" if at else f"{self.where}: {problem}")

    def known(self, table: dict[str, Any], allowed: frozenset[str], at: str) -> None:
        for key in table:
            if key not in allowed:
                line = _line_of(self.raw, key)
                place = f" (line {line})" if line else ""
                expected = ", ".join(sorted(allowed))
                raise self.fail(at, f"unknown key {key!r}{place}; expected one of: {expected}")

    def layout(self, data: dict[str, Any]) -> Layout:
        self.known(data, _TOP_KEYS, "")
        spaces = data.get("workspaces")
        if not isinstance(spaces, list):
            raise self.fail("", "expected a list named 'workspaces'")
        return Layout(tuple(self.workspace(space, f"workspaces[{i}]") for i, space in enumerate(spaces)))

    def workspace(self, space: Any, at: str) -> LayoutWorkspace:
        if not isinstance(space, dict) or not isinstance(space.get("id"), str):
            raise self.fail(at, "each workspace needs an 'id'")
        self.known(space, _WORKSPACE_KEYS, at)
        space_id = check_workspace_id(space["id"])
        folders = tuple(
            self.folder(space_id, folder, f"{at}.folders[{j}]")
            for j, folder in enumerate(self.list_of(space, "folders", at))
        )
        seen: set[str] = set()
        for folder in folders:
            if folder.target.folder in seen:
                raise self.fail(at, f"folder {folder.target.folder!r} is listed twice")
            seen.add(folder.target.folder)
        return LayoutWorkspace(space_id, self.text(space, "name", at), folders)

    def folder(self, space_id: str, folder: Any, at: str) -> LayoutFolder:
        if not isinstance(folder, dict) or not isinstance(folder.get("name"), str):
            raise self.fail(at, "each folder needs a 'name'")
        self.known(folder, _FOLDER_KEYS, at)
        target = Target(space_id, check_folder_name(folder["name"]))
        items = []
        seen: set[Target] = set()
        for k, item in enumerate(self.list_of(folder, "items", at)):
            parsed = self.item(target, item, f"{at}.items[{k}]")
            if parsed.target in seen:
                raise self.fail(at, f"item {parsed.target.item_path!r} is listed twice")
            seen.add(parsed.target)
            items.append(parsed)
        return LayoutFolder(target, self.text(folder, "summary", at), self.grants(folder, at), tuple(items))

    def item(self, folder: Target, item: Any, at: str) -> LayoutItem:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise self.fail(at, "each item needs a 'path' (f/FOLDER/NAME)")
        self.known(item, _ITEM_KEYS, at)
        target = Target.parse(f"{folder.workspace}/{item['path']}")
        if target.item is None or target.folder != folder.folder:
            raise self.fail(at, f"item path {item['path']!r} is not under f/{folder.folder}/")
        return LayoutItem(target, self.grants(item, at))

    def grants(self, table: dict[str, Any], at: str) -> tuple[LayoutGrant, ...]:
        out: list[LayoutGrant] = []
        seen: dict[str, str] = {}
        for k, grant in enumerate(self.list_of(table, "grants", at)):
            gat = f"{at}.grants[{k}]"
            if (
                not isinstance(grant, dict)
                or not isinstance(grant.get("principal"), str)
                or not isinstance(grant.get("role"), str)
            ):
                raise self.fail(gat, "each grant needs a 'principal' and a 'role'")
            self.known(grant, _GRANT_KEYS, gat)
            principal = grant["principal"]
            if principal in seen:
                raise self.fail(
                    gat, f"{principal} is granted twice here (also at {seen[principal]}); keep one role"
                )
            seen[principal] = gat
            try:
                role = Role.parse(grant["role"])
            except BadInput as exc:
                raise self.fail(gat, str(exc)) from None
            out.append(LayoutGrant(principal, role, gat))
        return tuple(out)

    def list_of(self, table: dict[str, Any], key: str, at: str) -> list[Any]:
        value = table.get(key, [])
        if not isinstance(value, list):
            raise self.fail(at, f"'{key}' must be a list")
        return value

    def text(self, table: dict[str, Any], key: str, at: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(at, f"'{key}' must be text")
        return value


def _line_of(raw: str, key: str) -> int | None:
    """The first line where key stands as a key (TOML `key =`, `[... .key]`, or JSON `"key":`)."""
    quoted = re.escape(key)
    pattern = re.compile(
        rf'^\s*(?:"{quoted}"\s*:|{quoted}\s*=|\[\[?[^\]]*\b{quoted}\]\]?)|[{{,]\s*(?:"{quoted}"\s*:|{quoted}\s*=)'
    )
    for number, line in enumerate(raw.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None
