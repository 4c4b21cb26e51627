"""Grants: the role-change statements and every read of the grants table."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from groupwarden.domain.access import Grant
from groupwarden.domain.principals import Target
from groupwarden.domain.refs import GroupRef, Principal, TargetRef, UserRef
from groupwarden.domain.roles import Role
from groupwarden.store import bulk

# The roles as the grants table stores them; anything else goes through Role.parse, which
# refuses it. A dictionary look-up: a user's access reads hundreds of grants.
_ROLES = {role.label: role for role in Role}


def _role(text: str) -> Role:
    return _ROLES.get(text) or Role.parse(text)


class CurrentGrant(NamedTuple):
    id: int
    role: Role
    version: int


def current_grant(conn: Connection, target: TargetRef, principal: Principal) -> CurrentGrant | None:
    row = conn.execute(
        text(
            "SELECT id, role, version FROM grants WHERE folder_id = :f AND item_path = :i"
            " AND principal_key = :k"
        ),
        {"f": target.folder_id, "i": target.item_path, "k": principal.key},
    ).first()
    return None if row is None else CurrentGrant(row.id, _role(row.role), row.version)


def other_live_admins(conn: Connection, folder_id: int, grant_id: int) -> int:
    """How many live admin grants the folder itself has besides grant_id."""
    return int(
        conn.execute(
            text(
                "SELECT COUNT(*) FROM grants g LEFT JOIN instance_groups ig ON ig.id = g.group_id"
                " LEFT JOIN users u ON u.id = g.user_id"
                " WHERE g.folder_id = :f AND g.item_path = '' AND g.role = 'admin' AND g.id != :id"
                " AND ig.removed_at IS NULL AND u.removed_at IS NULL"
            ),
            {"f": folder_id, "id": grant_id},
        ).scalar_one()
    )


def insert_grant(
    conn: Connection, target: TargetRef, principal: Principal, role: Role, by: str, at: datetime
) -> bool:
    """Add a grant; False when one for this target and principal exists already (a race lost)."""
    try:
        with conn.begin_nested():
            conn.execute(
                text(
                    "INSERT INTO grants (folder_id, item_path, principal_key, group_id, user_id,"
                    " role, granted_by, granted_at, version)"
                    " VALUES (:f, :i, :k, :g, :u, :r, :by, :at, 1)"
                ),
                {
                    "f": target.folder_id,
                    "i": target.item_path,
                    "k": principal.key,
                    "g": principal.id if isinstance(principal, GroupRef) else None,
                    "u": principal.id if isinstance(principal, UserRef) else None,
                    "r": role.label,
                    "by": by,
                    "at": at,
                },
            )
    except IntegrityError:
        return False
    return True


def update_grant(conn: Connection, grant: CurrentGrant, role: Role, by: str, at: datetime) -> bool:
    """Change a grant's role if it is still at grant.version; False when someone changed it first."""
    updated = conn.execute(
        text(
            "UPDATE grants SET role = :r, granted_by = :by, granted_at = :at,"
            " version = version + 1 WHERE id = :id AND version = :v"
        ),
        {"r": role.label, "by": by, "at": at, "id": grant.id, "v": grant.version},
    )
    return bool(updated.rowcount == 1)


def delete_grant(conn: Connection, grant: CurrentGrant) -> bool:
    """Remove a grant if it is still at grant.version; False when someone changed it first."""
    deleted = conn.execute(
        text("DELETE FROM grants WHERE id = :id AND version = :v"), {"id": grant.id, "v": grant.version}
    )
    return bool(deleted.rowcount == 1)


def live_grants_on(conn: Connection, target: TargetRef) -> list[Grant]:
    """The live grants on target and, for an item, on its folder; orphaned ones grant nothing."""
    rows = conn.execute(
        text(
            "SELECT gr.group_id, gr.user_id, gr.role, gr.item_path FROM grants gr"
            " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
            " LEFT JOIN users u ON u.id = gr.user_id"
            " WHERE gr.folder_id = :f AND gr.item_path IN ('', :i)"
            " AND ig.removed_at IS NULL AND u.removed_at IS NULL"
        ),
        {"f": target.folder_id, "i": target.item_path},
    )
    workspace, folder = target.target.workspace, target.folder_text
    return [
        Grant(r.group_id, r.user_id, _role(r.role), f"{workspace}/{r.item_path}" if r.item_path else folder)
        for r in rows
    ]


def live_folder_admin_grants(conn: Connection) -> list[Grant]:
    """Every live admin grant on a folder itself (items make no admins), across all workspaces."""
    rows = conn.execute(
        text(
            "SELECT f.workspace_id, f.name, gr.group_id, gr.user_id FROM grants gr"
            " JOIN folders f ON f.id = gr.folder_id"
            " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
            " LEFT JOIN users u ON u.id = gr.user_id"
            " WHERE gr.role = :admin AND gr.item_path = ''"
            " AND ig.removed_at IS NULL AND u.removed_at IS NULL"
        ),
        {"admin": str(Role.ADMIN)},
    )
    return [Grant(r.group_id, r.user_id, Role.ADMIN, f"{r.workspace_id}/{r.name}") for r in rows]


class ReachingGrant(NamedTuple):
    """A live grant naming a user or one of the groups given, and where it is."""

    grant: Grant
    folder: str
    item: str | None


def live_grants_naming(conn: Connection, user_id: int, group_ids: Collection[int]) -> list[ReachingGrant]:
    """Every live grant to the user or to one of group_ids, on any folder or item."""
    group_list = ", ".join(str(int(g)) for g in sorted(group_ids)) or "NULL"
    rows = bulk.fetch_rows(
        conn,
        "SELECT gr.group_id, gr.user_id, gr.role, f.workspace_id, f.name, gr.item_path"
        " FROM grants gr JOIN folders f ON f.id = gr.folder_id"
        " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
        f" WHERE (gr.user_id = {bulk.mark(conn)} OR gr.group_id IN ({group_list}))"
        " AND ig.removed_at IS NULL",
        (user_id,),
    )
    out = []
    for group_id, granted_user, role, workspace, name, item_path in rows:
        folder = f"{workspace}/{name}"
        item = f"{workspace}/{item_path}" if item_path else None
        out.append(ReachingGrant(Grant(group_id, granted_user, _role(role), item or folder), folder, item))
    return out


class GrantListing(NamedTuple):
    """One grant as the listings show it, with the typed references a change needs."""

    id: int
    target: TargetRef
    principal: Principal
    role: Role
    granted_by: str
    granted_at: datetime
    version: int

    @property
    def orphaned(self) -> bool:
        return self.principal.removed


_GRANT_SELECT = (
    "SELECT gr.id, gr.folder_id, f.workspace_id, f.name AS folder, gr.item_path, gr.group_id, gr.user_id,"
    " ig.name AS group_name, ig.upstream_id AS group_upstream, gs.name AS group_source,"
    " ig.removed_at AS group_removed, u.user_name, u.upstream_id AS user_upstream,"
    " us.name AS user_source, u.removed_at AS user_removed,"
    " gr.role, gr.granted_by, gr.granted_at, gr.version"
    " FROM grants gr JOIN folders f ON f.id = gr.folder_id"
    " LEFT JOIN instance_groups ig ON ig.id = gr.group_id"
    " LEFT JOIN sources gs ON gs.id = ig.source_id"
    " LEFT JOIN users u ON u.id = gr.user_id"
    " LEFT JOIN sources us ON us.id = u.source_id"
)


def _listing(row: Any) -> GrantListing:
    item = row.item_path[len(f"f/{row.folder}/") :] if row.item_path else None
    principal: Principal
    if row.group_id is not None:
        principal = GroupRef(
            row.group_id, row.group_name, row.group_upstream, row.group_source, row.group_removed is not None
        )
    else:
        principal = UserRef(
            row.user_id, row.user_name, row.user_upstream, row.user_source, row.user_removed is not None
        )
    granted_at = row.granted_at
    if not isinstance(granted_at, datetime):
        granted_at = datetime.fromisoformat(str(granted_at))
    return GrantListing(
        id=row.id,
        target=TargetRef(row.folder_id, Target(row.workspace_id, row.folder, item)),
        principal=principal,
        role=_role(row.role),
        granted_by=row.granted_by,
        granted_at=granted_at,
        version=row.version,
    )


def _grants_where(conn: Connection, where: str, params: dict[str, object]) -> list[GrantListing]:
    rows = conn.execute(
        text(
            f"{_GRANT_SELECT} WHERE {where} ORDER BY f.workspace_id, f.name, gr.item_path, gr.principal_key"
        ),
        params,
    )
    return [_listing(r) for r in rows]


def grants_on(conn: Connection, target: TargetRef, *, include_items: bool) -> list[GrantListing]:
    """An item's grants and its folder's; or a folder's, with those of its items or not."""
    if target.item_path:
        return _grants_where(
            conn,
            "gr.folder_id = :f AND gr.item_path IN ('', :i)",
            {"f": target.folder_id, "i": target.item_path},
        )
    if include_items:
        return _grants_where(conn, "gr.folder_id = :f", {"f": target.folder_id})
    return _grants_where(conn, "gr.folder_id = :f AND gr.item_path = ''", {"f": target.folder_id})


def grants_of_group(conn: Connection, group_id: int) -> list[GrantListing]:
    return _grants_where(conn, "gr.group_id = :g", {"g": group_id})


def every_grant(conn: Connection) -> list[GrantListing]:
    return _grants_where(conn, "1 = 1", {})


def orphaned_grants(conn: Connection) -> list[GrantListing]:
    """Grants naming a group or user removed upstream."""
    return _grants_where(conn, "(ig.removed_at IS NOT NULL OR u.removed_at IS NOT NULL)", {})


def grants_naming(
    conn: Connection, *, group_ids: Collection[int], user_ids: Collection[int]
) -> list[GrantListing]:
    """Every grant naming one of these groups or users."""
    out: list[GrantListing] = []
    for column, ids in (("gr.group_id", group_ids), ("gr.user_id", user_ids)):
        for chunk in bulk.id_lists(ids):
            out += _grants_where(conn, f"{column} IN ({chunk})", {})
    return out
