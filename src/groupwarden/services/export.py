"""Export of the whole cache. The JSON form is documented in the README and kept stable.

It holds no timestamps and no secrets, and every list is sorted, so two exports of the
same state are byte-identical.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

from groupwarden.domain.errors import BadInput
from groupwarden.domain.text import csv_cell, safe_json
from groupwarden.services.context import Context
from groupwarden.services.files import write_private
from groupwarden.services.grants import all_grants
from groupwarden.services.windmill import access as linked
from groupwarden.store import export as store

EXPORT_VERSION = 1


def export_data(ctx: Context) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        users = store.live_users(conn)
        groups = store.live_groups(conn)
        user_members: dict[int, list[str]] = defaultdict(list)
        for m in store.user_members(conn):
            user_members[m.group_id].append(m.user_name)
        group_members: dict[int, list[str]] = defaultdict(list)
        for n in store.group_members(conn):
            group_members[n.parent_id].append(n.child_upstream_id)
        spaces = store.workspaces(conn)
        folders = store.folders(conn)
        grants = all_grants(conn)
        links, acl = linked.export_entries(conn)

    out_users = sorted(
        (
            {
                "id": u.upstream_id,
                "user_name": u.user_name,
                "display_name": u.display_name,
                "emails": u.emails.split("\n") if u.emails else [],
                "active": bool(u.active),
                "status": u.raw_status,
                "source": u.source,
            }
            for u in users
        ),
        key=lambda u: (u["user_name"], u["source"], u["id"]),
    )
    out_groups = sorted(
        (
            {
                "id": g.upstream_id,
                "name": g.name,
                "source": g.source,
                "description": g.description,
                "kind": g.kind,
                "members": sorted(user_members.get(g.id, [])),
                "groups": sorted(group_members.get(g.id, [])),
            }
            for g in groups
        ),
        key=lambda g: (g["name"], g["source"], g["id"]),
    )
    live: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    items: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    orphaned: list[dict[str, Any]] = []
    for g in grants:
        entry = {"principal": g.principal, "role": g.role.label}
        if g.orphaned:
            orphaned.append({"target": g.target, **entry, "upstream_id": g.upstream_id})
        elif g.item_path:
            items[(g.workspace, g.folder)].setdefault(g.item_path, []).append(entry)
        else:
            live[(g.workspace, g.folder)].append(entry)
    # A linked workspace's folders carry Windmill's ACLs, principals as Windmill names them.
    for key, rows in acl.items():
        for r in rows:
            entry = {"principal": r.principal, "role": r.role}
            if r.path:
                items[key].setdefault(r.path, []).append(entry)
            else:
                live[key].append(entry)
    by_space: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in folders:
        key = (f.workspace_id, f.name)
        folder: dict[str, Any] = {
            "name": f.name,
            "summary": f.summary,
            "grants": sorted(live.get(key, []), key=lambda e: e["principal"]),
        }
        if key in items:
            folder["items"] = [
                {"path": path, "grants": sorted(entries, key=lambda e: e["principal"])}
                for path, entries in sorted(items[key].items())
            ]
        by_space[f.workspace_id].append(folder)
    return {
        "format": "groupwarden-export",
        "version": EXPORT_VERSION,
        "groups": out_groups,
        "users": out_users,
        "workspaces": [_workspace(w.id, w.name, by_space.get(w.id, []), links.get(w.id)) for w in spaces],
        "orphaned_grants": sorted(orphaned, key=lambda e: (e["target"], e["principal"])),
    }


def _workspace(wid: str, name: str, folders: list[dict[str, Any]], linked_to: str | None) -> dict[str, Any]:
    """A workspace of the export; a linked one says which Windmill instance (a local one is as before)."""
    if linked_to is None:
        return {"id": wid, "name": name, "folders": folders}
    return {"id": wid, "name": name, "windmill": linked_to, "folders": folders}


def save_export(path: Path, text: str) -> None:
    """Write an export to path: owner-only, put in place atomically, never through a symlink."""
    write_private(path, "export", lambda out: out.write(text))


def save_records(path_text: str, records: list[dict[str, str]], columns: list[str]) -> Path:
    """Write a list as a screen shows it (.json or .csv, by suffix), owner-only and atomically;
    return the absolute path."""
    path = Path(path_text).expanduser().resolve()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise BadInput(f"cannot export to {path.name}: the file name must end in .csv or .json")

    def write(out: TextIO) -> None:
        if suffix == ".json":
            out.write(safe_json(records) + "\n")
            return
        writer = csv.writer(out)
        writer.writerow(columns)
        for record in records:
            writer.writerow(csv_cell(record.get(c, "")) for c in columns)

    write_private(path, "export", write)
    return path


def export_json(ctx: Context) -> str:
    """The export as JSON, with every control, C1 and bidi character escaped."""
    return safe_json(export_data(ctx)) + "\n"


CSV_COLUMNS = [
    "record",
    "source",
    "group_id",
    "group",
    "user_id",
    "user_name",
    "active",
    "target",
    "principal",
    "role",
    "orphaned",
]


def export_csv(ctx: Context) -> str:
    """One flat table: a row per user, per direct membership, per nested group, per grant.

    Every cell is safe to print and to open in a spreadsheet (domain.text.csv_cell).
    """
    data = export_data(ctx)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()

    def row(fields: dict[str, str]) -> None:
        writer.writerow({column: csv_cell(value) for column, value in fields.items()})

    for u in data["users"]:
        row(
            {
                "record": "user",
                "source": u["source"],
                "user_id": u["id"],
                "user_name": u["user_name"],
                "active": str(u["active"]).lower(),
            }
        )
    for g in data["groups"]:
        row({"record": "group", "source": g["source"], "group_id": g["id"], "group": g["name"]})
        for member in g["members"]:
            row(
                {
                    "record": "member",
                    "source": g["source"],
                    "group_id": g["id"],
                    "group": g["name"],
                    "user_name": member,
                }
            )
        for child in g["groups"]:
            row(
                {
                    "record": "nested",
                    "source": g["source"],
                    "group_id": g["id"],
                    "group": g["name"],
                    "user_id": "",
                    "principal": f"group:{child}",
                }
            )
    for space in data["workspaces"]:
        for folder in space["folders"]:
            target = f"{space['id']}/{folder['name']}"
            for grant in folder["grants"]:
                row({"record": "grant", "target": target, "orphaned": "false", **grant})
            for item in folder.get("items", []):
                for grant in item["grants"]:
                    row(
                        {
                            "record": "grant",
                            "target": f"{space['id']}/{item['path']}",
                            "orphaned": "false",
                            **grant,
                        }
                    )
    for grant in data["orphaned_grants"]:
        row(
            {
                "record": "grant",
                "target": grant["target"],
                "principal": grant["principal"],
                "role": grant["role"],
                "orphaned": "true",
            }
        )
    return buf.getvalue()
