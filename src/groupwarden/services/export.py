"""Export of the whole cache. The JSON form is documented in the README and kept stable.

It holds no timestamps and no secrets, and every list is sorted, so two exports of the
same state are byte-identical.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any

from sqlalchemy import text

from groupwarden.services.context import Context
from groupwarden.services.grants import all_grants

EXPORT_VERSION = 1


def export_data(ctx: Context) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        users = conn.execute(
            text(
                "SELECT u.id, u.upstream_id, u.user_name, u.display_name, u.emails, u.active,"
                " u.raw_status, s.name FROM users u JOIN sources s ON s.id = u.source_id"
                " WHERE u.removed_at IS NULL"
            )
        ).all()
        groups = conn.execute(
            text(
                "SELECT g.id, g.upstream_id, g.name, s.name, g.description, g.kind"
                " FROM instance_groups g JOIN sources s ON s.id = g.source_id"
                " WHERE g.removed_at IS NULL"
            )
        ).all()
        user_members: dict[int, list[str]] = defaultdict(list)
        for gid, user_name in conn.execute(
            text("SELECT m.group_id, u.user_name FROM user_memberships m JOIN users u ON u.id = m.user_id")
        ):
            user_members[gid].append(user_name)
        group_members: dict[int, list[str]] = defaultdict(list)
        for parent, child_upstream in conn.execute(
            text(
                "SELECT m.parent_id, g.upstream_id FROM group_memberships m"
                " JOIN instance_groups g ON g.id = m.child_id"
            )
        ):
            group_members[parent].append(child_upstream)
        spaces = conn.execute(text("SELECT id, name FROM workspaces ORDER BY id")).all()
        folders = conn.execute(
            text("SELECT workspace_id, name, summary FROM folders ORDER BY workspace_id, name")
        ).all()
        grants = all_grants(conn)

    out_users = sorted(
        (
            {
                "id": r[1],
                "user_name": r[2],
                "display_name": r[3],
                "emails": r[4].split("\n") if r[4] else [],
                "active": bool(r[5]),
                "status": r[6],
                "source": r[7],
            }
            for r in users
        ),
        key=lambda u: (u["user_name"], u["source"], u["id"]),
    )
    out_groups = sorted(
        (
            {
                "id": r[1],
                "name": r[2],
                "source": r[3],
                "description": r[4],
                "kind": r[5],
                "members": sorted(user_members.get(r[0], [])),
                "groups": sorted(group_members.get(r[0], [])),
            }
            for r in groups
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
    by_space: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for workspace, name, summary in folders:
        key = (workspace, name)
        folder: dict[str, Any] = {
            "name": name,
            "summary": summary,
            "grants": sorted(live.get(key, []), key=lambda e: e["principal"]),
        }
        if key in items:
            folder["items"] = [
                {"path": path, "grants": sorted(entries, key=lambda e: e["principal"])}
                for path, entries in sorted(items[key].items())
            ]
        by_space[workspace].append(folder)
    return {
        "format": "groupwarden-export",
        "version": EXPORT_VERSION,
        "groups": out_groups,
        "users": out_users,
        "workspaces": [{"id": i, "name": n, "folders": by_space.get(i, [])} for i, n in spaces],
        "orphaned_grants": sorted(orphaned, key=lambda e: (e["target"], e["principal"])),
    }


def export_json(ctx: Context) -> str:
    return json.dumps(export_data(ctx), ensure_ascii=False, indent=2, sort_keys=False) + "\n"


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
    """One flat table: a row per user, per direct membership, per nested group, per grant."""
    data = export_data(ctx)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for u in data["users"]:
        writer.writerow(
            {
                "record": "user",
                "source": u["source"],
                "user_id": u["id"],
                "user_name": u["user_name"],
                "active": str(u["active"]).lower(),
            }
        )
    for g in data["groups"]:
        writer.writerow({"record": "group", "source": g["source"], "group_id": g["id"], "group": g["name"]})
        for member in g["members"]:
            writer.writerow(
                {
                    "record": "member",
                    "source": g["source"],
                    "group_id": g["id"],
                    "group": g["name"],
                    "user_name": member,
                }
            )
        for child in g["groups"]:
            writer.writerow(
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
                writer.writerow({"record": "grant", "target": target, "orphaned": "false", **grant})
            for item in folder.get("items", []):
                for grant in item["grants"]:
                    writer.writerow(
                        {
                            "record": "grant",
                            "target": f"{space['id']}/{item['path']}",
                            "orphaned": "false",
                            **grant,
                        }
                    )
    for grant in data["orphaned_grants"]:
        writer.writerow(
            {
                "record": "grant",
                "target": grant["target"],
                "principal": grant["principal"],
                "role": grant["role"],
                "orphaned": "true",
            }
        )
    return buf.getvalue()
