"""Every SQL statement on the Windmill state: linked instances and what their last pull read.

Rows come and go as named tuples with Windmill's own names in them; nothing here matches a
Windmill principal to an IdP group or user (that happens when the rows are read).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, text

from groupwarden.store import bulk


class InstanceRow(NamedTuple):
    id: int
    name: str
    url: str
    token_env: str | None
    token_file: str | None
    ca_bundle: str | None
    standin: bool
    last_pull_at: datetime | None


class InstanceListRow(NamedTuple):
    name: str
    url: str
    standin: bool
    last_pull_at: datetime | None
    workspaces: int


class LinkedWorkspaceRow(NamedTuple):
    id: str
    name: str
    instance: str
    standin: bool


class LocalWorkspaceRow(NamedTuple):
    """A workspace as a pull must know it before linking: its link, and its own grants."""

    id: str
    instance_id: int | None
    grants: int


class FolderRow(NamedTuple):
    workspace_id: str
    name: str
    summary: str


class UserRow(NamedTuple):
    workspace_id: str
    username: str
    email: str
    is_admin: bool
    operator: bool
    disabled: bool


class InstanceGroupRow(NamedTuple):
    name: str
    summary: str | None
    external_id: str | None
    emails: tuple[str, ...]


class WorkspaceGroupRow(NamedTuple):
    workspace_id: str
    name: str
    summary: str | None
    members: tuple[str, ...]


class AclRow(NamedTuple):
    """A role on a folder (kind 'folder', path '') or on an item (its ACL kind and path)."""

    workspace_id: str
    folder: str
    kind: str
    path: str
    principal: str
    role: str


class ItemRow(NamedTuple):
    workspace_id: str
    kind: str
    path: str
    folder: str


#: The columns of an AclRow and of an ItemRow as plain tuples: what a pull builds, by the
#: hundred thousand. A plain tuple costs a fraction of a named one to make, and the garbage
#: collector stops tracking it (it never does for a named tuple).
AclValues = tuple[str, str, str, str, str, str]
ItemValues = tuple[str, str, str, str]


class AutoAddRow(NamedTuple):
    workspace_id: str
    group_name: str
    role: str


class IdpGroupRow(NamedTuple):
    id: int
    name: str
    upstream_id: str
    source: str


class IdpUserRow(NamedTuple):
    id: int
    user_name: str
    #: Newline-separated, primary first.
    emails: str
    active: bool


@dataclass(slots=True)
class InstanceState:
    """Everything stored for one instance; workspaces maps each linked workspace to its name."""

    workspaces: dict[str, str] = field(default_factory=dict)
    folders: list[FolderRow] = field(default_factory=list)
    users: list[UserRow] = field(default_factory=list)
    instance_groups: list[InstanceGroupRow] = field(default_factory=list)
    workspace_groups: list[WorkspaceGroupRow] = field(default_factory=list)
    #: read_state gives AclRow and ItemRow here; a pull builds plain tuples of the same columns.
    acl: list[AclValues] = field(default_factory=list)
    items: list[ItemValues] = field(default_factory=list)
    auto_add: list[AutoAddRow] = field(default_factory=list)
    #: A fingerprint of what the pull read, per linked workspace: a re-pull skips an unchanged one.
    digests: dict[str, str] = field(default_factory=dict)


_INSTANCE_COLUMNS = "id, name, url, token_env, token_file, ca_bundle, standin, last_pull_at"


def _instance(row: Iterable[object]) -> InstanceRow:
    r = tuple(row)
    return InstanceRow(
        int(r[0]),  # type: ignore[call-overload]
        str(r[1]),
        str(r[2]),
        r[3] if r[3] is None else str(r[3]),
        r[4] if r[4] is None else str(r[4]),
        r[5] if r[5] is None else str(r[5]),
        bool(r[6]),
        _as_datetime(r[7]),
    )


def _as_datetime(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def find_instance(conn: Connection, name: str) -> InstanceRow | None:
    row = conn.execute(
        text(f"SELECT {_INSTANCE_COLUMNS} FROM windmill_instances WHERE name = :n"), {"n": name}
    ).first()
    return None if row is None else _instance(row)


def save_instance(
    conn: Connection,
    *,
    name: str,
    url: str,
    token_env: str | None,
    token_file: str | None,
    ca_bundle: str | None,
    standin: bool,
    pulled_at: datetime | None,
) -> int:
    """Create or update an instance's link; its id."""
    values = {
        "n": name,
        "u": url,
        "te": token_env,
        "tf": token_file,
        "ca": ca_bundle,
        "s": standin,
        "at": pulled_at,
    }
    found = find_instance(conn, name)
    if found is None:
        conn.execute(
            text(
                "INSERT INTO windmill_instances (name, url, token_env, token_file, ca_bundle, standin,"
                " last_pull_at) VALUES (:n, :u, :te, :tf, :ca, :s, :at)"
            ),
            values,
        )
        found = find_instance(conn, name)
        assert found is not None
        return found.id
    conn.execute(
        text(
            "UPDATE windmill_instances SET url = :u, token_env = :te, token_file = :tf, ca_bundle = :ca,"
            " standin = :s, last_pull_at = :at WHERE id = :id"
        ),
        {**values, "id": found.id},
    )
    return found.id


def list_instances(conn: Connection) -> list[InstanceListRow]:
    rows = conn.execute(
        text(
            "SELECT i.name, i.url, i.standin, i.last_pull_at, COUNT(w.id) FROM windmill_instances i"
            " LEFT JOIN workspaces w ON w.windmill_instance_id = i.id"
            " GROUP BY i.id, i.name, i.url, i.standin, i.last_pull_at ORDER BY i.name"
        )
    ).all()
    return [InstanceListRow(str(r[0]), str(r[1]), bool(r[2]), _as_datetime(r[3]), int(r[4])) for r in rows]


def linked_workspaces(conn: Connection) -> list[LinkedWorkspaceRow]:
    rows = conn.execute(
        text(
            "SELECT w.id, w.name, i.name, i.standin FROM workspaces w"
            " JOIN windmill_instances i ON i.id = w.windmill_instance_id ORDER BY w.id"
        )
    ).all()
    return [LinkedWorkspaceRow(str(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]


def local_workspaces(conn: Connection, ids: Collection[str]) -> dict[str, LocalWorkspaceRow]:
    """The workspaces among ids that exist already, with their link and local grant count."""
    out: dict[str, LocalWorkspaceRow] = {}
    for r in bulk.select_in(
        conn,
        "SELECT w.id, w.windmill_instance_id, (SELECT COUNT(*) FROM grants g JOIN folders f"
        " ON f.id = g.folder_id WHERE f.workspace_id = w.id) FROM workspaces w WHERE w.id IN :values",
        ids,
    ):
        out[str(r[0])] = LocalWorkspaceRow(str(r[0]), None if r[1] is None else int(r[1]), int(r[2]))
    return out


def workspace_digests(conn: Connection, instance_id: int) -> dict[str, str | None]:
    """Each workspace linked to the instance, with the digest of its last pull (None: none)."""
    rows = conn.execute(
        text(
            "SELECT w.id, d.digest FROM workspaces w LEFT JOIN windmill_workspace_digests d"
            " ON d.workspace_id = w.id WHERE w.windmill_instance_id = :i"
        ),
        {"i": instance_id},
    ).all()
    return {str(r[0]): None if r[1] is None else str(r[1]) for r in rows}


def folders_of(conn: Connection, workspaces: Collection[str]) -> list[FolderRow]:
    rows = bulk.select_in(
        conn, "SELECT workspace_id, name, summary FROM folders WHERE workspace_id IN :values", workspaces
    )
    return sorted(FolderRow(str(r[0]), str(r[1]), str(r[2] or "")) for r in rows)


def read_state(
    conn: Connection, instance_id: int, workspaces: Collection[str] | None = None
) -> InstanceState:
    """What is stored for the instance: its instance groups, and its linked workspaces (all, or
    those of workspaces that are linked) with everything pulled for them."""
    params = {"i": instance_id}
    linked = {
        str(wid): str(wname)
        for wid, wname in conn.execute(
            text("SELECT id, name FROM workspaces WHERE windmill_instance_id = :i ORDER BY id"), params
        )
    }
    scope = sorted(linked if workspaces is None else set(workspaces) & set(linked))
    state = InstanceState(workspaces={w: linked[w] for w in scope})
    state.digests = {
        str(r[0]): str(r[1])
        for r in bulk.select_in(
            conn,
            "SELECT workspace_id, digest FROM windmill_workspace_digests WHERE workspace_id IN :values",
            scope,
        )
    }
    state.folders = [
        FolderRow(str(r[0]), str(r[1]), str(r[2] or ""))
        for r in bulk.select_in(
            conn,
            "SELECT workspace_id, name, summary FROM folders WHERE workspace_id IN :values"
            " ORDER BY workspace_id, name",
            scope,
        )
    ]
    state.users = [
        UserRow(str(r[0]), str(r[1]), str(r[2]), bool(r[3]), bool(r[4]), bool(r[5]))
        for r in bulk.select_in(
            conn,
            "SELECT workspace_id, username, email, is_admin, operator, disabled FROM windmill_users"
            " WHERE workspace_id IN :values ORDER BY workspace_id, username",
            scope,
        )
    ]
    emails: dict[int, list[str]] = defaultdict(list)
    for gid, email in conn.execute(
        text(
            "SELECT m.group_id, m.email FROM windmill_instance_group_members m"
            " JOIN windmill_instance_groups g ON g.id = m.group_id WHERE g.instance_id = :i"
            " ORDER BY m.group_id, m.email"
        ),
        params,
    ):
        emails[int(gid)].append(str(email))
    state.instance_groups = [
        InstanceGroupRow(str(r[1]), r[2], r[3], tuple(emails.get(int(r[0]), ())))
        for r in conn.execute(
            text(
                "SELECT id, name, summary, external_id FROM windmill_instance_groups"
                " WHERE instance_id = :i ORDER BY name"
            ),
            params,
        )
    ]
    members: dict[int, list[str]] = defaultdict(list)
    for gid, username in bulk.select_in(
        conn,
        "SELECT m.group_id, m.username FROM windmill_workspace_group_members m"
        " JOIN windmill_workspace_groups g ON g.id = m.group_id"
        " WHERE g.workspace_id IN :values ORDER BY m.group_id, m.username",
        scope,
    ):
        members[int(gid)].append(str(username))
    state.workspace_groups = [
        WorkspaceGroupRow(str(r[1]), str(r[2]), r[3], tuple(members.get(int(r[0]), ())))
        for r in bulk.select_in(
            conn,
            "SELECT id, workspace_id, name, summary FROM windmill_workspace_groups"
            " WHERE workspace_id IN :values ORDER BY workspace_id, name",
            scope,
        )
    ]
    # The two big tables go through the driver's cursor, a workspace at a time: a large
    # instance holds a few hundred thousand ACL entries, and SQLAlchemy's rows cost several
    # times the query itself.
    for workspace in scope:
        state.acl.extend(
            map(
                AclRow._make,
                _raw_rows(
                    conn,
                    "SELECT workspace_id, folder, kind, path, principal, role FROM windmill_acl"
                    " WHERE workspace_id = {} ORDER BY folder, kind, path, principal",
                    workspace,
                ),
            )
        )
        state.items.extend(
            map(
                ItemRow._make,
                _raw_rows(
                    conn,
                    "SELECT workspace_id, kind, path, folder FROM windmill_items WHERE workspace_id = {}"
                    " ORDER BY kind, path",
                    workspace,
                ),
            )
        )
    state.auto_add = [
        AutoAddRow._make(r)
        for r in bulk.select_in(
            conn,
            "SELECT workspace_id, group_name, role FROM windmill_auto_add WHERE workspace_id IN :values"
            " ORDER BY workspace_id, group_name",
            scope,
        )
    ]
    return state


Row = TypeVar("Row", bound=tuple[Any, ...])

# Each table's key columns, then the others, in the order of its row type. Rows are compared
# whole: a row whose other columns changed is deleted and inserted again.
_KEYED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "windmill_users": (("workspace_id", "username"), ("email", "is_admin", "operator", "disabled")),
    "windmill_acl": (("workspace_id", "folder", "kind", "path", "principal"), ("role",)),
    "windmill_items": (("workspace_id", "kind", "path"), ("folder",)),
    "windmill_auto_add": (("workspace_id", "group_name"), ("role",)),
    "windmill_workspace_digests": (("workspace_id",), ("digest",)),
}


def _raw_rows(conn: Connection, sql: str, workspace: str) -> list[tuple[Any, ...]]:
    """The rows of sql, whose one {} is the workspace id's placeholder, straight from the driver."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        cursor.execute(sql.format(mark), (workspace,))
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows
    finally:
        cursor.close()


def write_state(
    conn: Connection, instance_id: int, before: InstanceState, after: InstanceState, unlink: Collection[str]
) -> None:
    """Make the store hold after for the instance, in the caller's transaction.

    before is what read_state gave in this same transaction for the workspaces of after and
    unlink (a workspace in neither is left as it is). Only the rows that differ from it are
    written, so a re-pull of a large instance that barely changed costs little. The
    workspaces of after become linked (created when new); those in unlink lose their link
    and their pulled rows, and stay as local workspaces with their folders. Folders and
    groups that stay keep their ids.
    """
    gone = set(unlink)
    for table in _KEYED:
        bulk.execute_in(conn, f"DELETE FROM {table} WHERE workspace_id IN :values", gone)
    # Members go with their groups (ON DELETE CASCADE).
    bulk.execute_in(conn, "DELETE FROM windmill_workspace_groups WHERE workspace_id IN :values", gone)
    bulk.execute_in(conn, "UPDATE workspaces SET windmill_instance_id = NULL WHERE id IN :values", gone)

    existing = local_workspaces(conn, after.workspaces)
    for wid, name in after.workspaces.items():
        if wid not in existing:
            conn.execute(
                text("INSERT INTO workspaces (id, name, windmill_instance_id) VALUES (:w, :n, :i)"),
                {"w": wid, "n": name, "i": instance_id},
            )
        elif existing[wid].instance_id != instance_id or before.workspaces.get(wid) != name:
            conn.execute(
                text("UPDATE workspaces SET name = :n, windmill_instance_id = :i WHERE id = :w"),
                {"n": name, "i": instance_id, "w": wid},
            )
    _mirror_folders(conn, list(after.workspaces), after.folders)

    _write_rows(conn, "windmill_users", _outside(before.users, gone), after.users)
    with bulk.roomy_cache(conn):
        _write_rows(conn, "windmill_acl", _outside(before.acl, gone), after.acl)
        _write_rows(conn, "windmill_items", _outside(before.items, gone), after.items)
    _write_rows(conn, "windmill_auto_add", _outside(before.auto_add, gone), after.auto_add)
    _write_rows(
        conn,
        "windmill_workspace_digests",
        _outside(list(before.digests.items()), gone),
        list(after.digests.items()),
    )
    _write_instance_groups(conn, instance_id, before.instance_groups, after.instance_groups)
    _write_workspace_groups(conn, _outside(before.workspace_groups, gone), after.workspace_groups)


def _outside(rows: Sequence[Row], workspaces: Collection[str]) -> list[Row]:
    """The rows (workspace id first) of workspaces other than these."""
    return [r for r in rows if r[0] not in workspaces]


def _write_rows(
    conn: Connection, table: str, old: Sequence[tuple[Any, ...]], new: Sequence[tuple[Any, ...]]
) -> None:
    keys, others = _KEYED[table]
    # Rows go in sorted, which is key order (key columns first): SQLite inserts a few hundred
    # thousand rows in key order about twice as fast as in a set's order.
    if not old:
        # A first pull: nothing to compare, every row is new (and unique, by its key).
        bulk.insert_rows(conn, table, keys + others, sorted(new))
        return
    old_rows, new_rows = set(old), set(new)
    bulk.delete_keys(conn, table, keys, sorted(r[: len(keys)] for r in old_rows - new_rows))
    bulk.insert_rows(conn, table, keys + others, sorted(new_rows - old_rows))


def _write_instance_groups(
    conn: Connection, instance_id: int, old: list[InstanceGroupRow], new: list[InstanceGroupRow]
) -> None:
    ids = {
        str(name): int(gid)
        for gid, name in conn.execute(
            text("SELECT id, name FROM windmill_instance_groups WHERE instance_id = :i"), {"i": instance_id}
        )
    }
    old_by, new_by = {g.name: g for g in old}, {g.name: g for g in new}
    # Members go with their groups (ON DELETE CASCADE).
    for marks in bulk.id_lists([ids[name] for name in old_by if name not in new_by]):
        conn.execute(text(f"DELETE FROM windmill_instance_groups WHERE id IN ({marks})"))
    for name, group in new_by.items():
        was = old_by.get(name)
        if was is not None and (was.summary, was.external_id) != (group.summary, group.external_id):
            conn.execute(
                text("UPDATE windmill_instance_groups SET summary = :s, external_id = :e WHERE id = :id"),
                {"s": group.summary, "e": group.external_id, "id": ids[name]},
            )
    added = [g for name, g in new_by.items() if name not in old_by]
    new_ids = bulk.allocate_ids(conn, "windmill_instance_groups", len(added))
    bulk.insert_rows(
        conn,
        "windmill_instance_groups",
        ("id", "instance_id", "name", "summary", "external_id"),
        [(gid, instance_id, g.name, g.summary, g.external_id) for gid, g in zip(new_ids, added, strict=True)],
    )
    ids.update((g.name, gid) for gid, g in zip(new_ids, added, strict=True))
    old_pairs = {(g.name, e) for g in old if g.name in new_by for e in g.emails}
    new_pairs = {(g.name, e) for g in new for e in g.emails}
    bulk.delete_keys(
        conn,
        "windmill_instance_group_members",
        ("group_id", "email"),
        sorted((ids[name], e) for name, e in old_pairs - new_pairs),
    )
    bulk.insert_rows(
        conn,
        "windmill_instance_group_members",
        ("group_id", "email"),
        sorted((ids[name], e) for name, e in new_pairs - old_pairs),
    )


def _write_workspace_groups(
    conn: Connection, old: list[WorkspaceGroupRow], new: list[WorkspaceGroupRow]
) -> None:
    old_by = {(g.workspace_id, g.name): g for g in old}
    new_by = {(g.workspace_id, g.name): g for g in new}
    ids = {
        (str(r[1]), str(r[2])): int(r[0])
        for r in bulk.select_in(
            conn,
            "SELECT id, workspace_id, name FROM windmill_workspace_groups WHERE workspace_id IN :values",
            {g.workspace_id for g in [*old, *new]},
        )
    }
    for marks in bulk.id_lists([ids[key] for key in old_by if key not in new_by]):
        conn.execute(text(f"DELETE FROM windmill_workspace_groups WHERE id IN ({marks})"))
    for key, group in new_by.items():
        was = old_by.get(key)
        if was is not None and was.summary != group.summary:
            conn.execute(
                text("UPDATE windmill_workspace_groups SET summary = :s WHERE id = :id"),
                {"s": group.summary, "id": ids[key]},
            )
    added = [g for key, g in new_by.items() if key not in old_by]
    new_ids = bulk.allocate_ids(conn, "windmill_workspace_groups", len(added))
    bulk.insert_rows(
        conn,
        "windmill_workspace_groups",
        ("id", "workspace_id", "name", "summary"),
        [(gid, g.workspace_id, g.name, g.summary) for gid, g in zip(new_ids, added, strict=True)],
    )
    ids.update(((g.workspace_id, g.name), gid) for gid, g in zip(new_ids, added, strict=True))
    old_pairs = {
        (g.workspace_id, g.name, m) for g in old if (g.workspace_id, g.name) in new_by for m in g.members
    }
    new_pairs = {(g.workspace_id, g.name, m) for g in new for m in g.members}
    bulk.delete_keys(
        conn,
        "windmill_workspace_group_members",
        ("group_id", "username"),
        sorted((ids[w, n], m) for w, n, m in old_pairs - new_pairs),
    )
    bulk.insert_rows(
        conn,
        "windmill_workspace_group_members",
        ("group_id", "username"),
        sorted((ids[w, n], m) for w, n, m in new_pairs - old_pairs),
    )


def _mirror_folders(conn: Connection, workspaces: list[str], folders: list[FolderRow]) -> None:
    """Make the folders of the linked workspaces exactly the given ones, keeping ids by name.

    A folder Windmill no longer has takes its store grants with it: on a linked workspace
    those only ever mirrored Windmill.
    """
    wanted = {(f.workspace_id, f.name): f.summary for f in folders}
    have: dict[tuple[str, str], tuple[int, str]] = {}
    for r in bulk.select_in(
        conn, "SELECT id, workspace_id, name, summary FROM folders WHERE workspace_id IN :values", workspaces
    ):
        have[(str(r[1]), str(r[2]))] = (int(r[0]), str(r[3] or ""))
    gone = sorted(folder_id for key, (folder_id, _s) in have.items() if key not in wanted)
    for marks in bulk.id_lists(gone):
        conn.execute(text(f"DELETE FROM grants WHERE folder_id IN ({marks})"))
        conn.execute(text(f"DELETE FROM folders WHERE id IN ({marks})"))
    for key, summary in wanted.items():
        if key in have and have[key][1] != summary:
            conn.execute(
                text("UPDATE folders SET summary = :s WHERE id = :id"), {"s": summary, "id": have[key][0]}
            )
    new = [(wid, name, summary) for (wid, name), summary in wanted.items() if (wid, name) not in have]
    bulk.insert_rows(conn, "folders", ("workspace_id", "name", "summary"), new)


# --- reads for matching and drift -------------------------------------------------------------


def idp_groups(conn: Connection) -> list[IdpGroupRow]:
    """Every live IdP group, of every source."""
    rows = conn.execute(
        text(
            "SELECT g.id, g.name, g.upstream_id, s.name FROM instance_groups g"
            " JOIN sources s ON s.id = g.source_id WHERE g.removed_at IS NULL ORDER BY g.id"
        )
    ).all()
    return [IdpGroupRow(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def idp_users(conn: Connection, ids: Collection[int] | None = None) -> list[IdpUserRow]:
    """Live IdP users with their emails: every one, or those of ids."""
    sql = "SELECT id, user_name, emails, active FROM users WHERE removed_at IS NULL"
    if ids is None:
        rows: Iterable[tuple[object, ...]] = conn.execute(text(sql + " ORDER BY id")).all()
    else:
        rows = [tuple(r) for r in bulk.select_in(conn, sql + " AND id IN :values", ids)]
    return [IdpUserRow(int(r[0]), str(r[1]), str(r[2] or ""), bool(r[3])) for r in rows]  # type: ignore[call-overload]


def granted_group_ids(conn: Connection) -> set[int]:
    """The IdP groups that hold a grant in the store's own grants table."""
    rows = conn.execute(text("SELECT DISTINCT group_id FROM grants WHERE group_id IS NOT NULL")).all()
    return {int(r[0]) for r in rows}


# --- reads for the linked read side (who-can, access, grants, export) -----------------------------


class WorkspaceLinkRow(NamedTuple):
    """A linked workspace's instance: its id, name, stand-in flag and when it was last pulled."""

    workspace_id: str
    instance_id: int
    instance: str
    standin: bool
    last_pull_at: datetime | None


def workspace_link(conn: Connection, workspace_id: str) -> WorkspaceLinkRow | None:
    """The instance a workspace is linked to; None for a local (or unknown) workspace."""
    row = conn.execute(
        text(
            "SELECT w.id, i.id, i.name, i.standin, i.last_pull_at FROM workspaces w"
            " JOIN windmill_instances i ON i.id = w.windmill_instance_id WHERE w.id = :w"
        ),
        {"w": workspace_id},
    ).first()
    if row is None:
        return None
    return WorkspaceLinkRow(str(row[0]), int(row[1]), str(row[2]), bool(row[3]), _as_datetime(row[4]))


def workspace_links(conn: Connection) -> dict[str, WorkspaceLinkRow]:
    """Every linked workspace's instance, by workspace id."""
    rows = conn.execute(
        text(
            "SELECT w.id, i.id, i.name, i.standin, i.last_pull_at FROM workspaces w"
            " JOIN windmill_instances i ON i.id = w.windmill_instance_id"
        )
    ).all()
    return {
        str(r[0]): WorkspaceLinkRow(str(r[0]), int(r[1]), str(r[2]), bool(r[3]), _as_datetime(r[4]))
        for r in rows
    }


def acl_in_folder(conn: Connection, workspace_id: str, folder: str) -> list[AclRow]:
    """The ACL entries of a folder and of the items inside it."""
    mark = bulk.mark(conn)
    return [
        AclRow._make(r)
        for r in bulk.fetch_rows(
            conn,
            "SELECT workspace_id, folder, kind, path, principal, role FROM windmill_acl"
            f" WHERE workspace_id = {mark} AND folder = {mark}",
            (workspace_id, folder),
        )
    ]


def acl_of_workspace(conn: Connection, workspace_id: str) -> list[AclRow]:
    """Every ACL entry of a linked workspace, folders and items."""
    return [
        AclRow._make(r)
        for r in _raw_rows(
            conn,
            "SELECT workspace_id, folder, kind, path, principal, role FROM windmill_acl"
            " WHERE workspace_id = {}",
            workspace_id,
        )
    ]


def acl_naming(conn: Connection, principals: Collection[str]) -> list[AclRow]:
    """Every ACL entry, in any linked workspace, that names one of principals (g/x or u/x)."""
    return [
        AclRow._make(tuple(r))
        for r in bulk.select_in(
            conn,
            "SELECT workspace_id, folder, kind, path, principal, role FROM windmill_acl"
            " WHERE principal IN :values",
            principals,
        )
    ]


def instance_groups_named(
    conn: Connection, instance_id: int, names: Collection[str]
) -> list[InstanceGroupRow]:
    """The instance groups among names, with their emails (one query per chunk of names)."""
    found: dict[str, tuple[str | None, str | None]] = {}
    emails: dict[str, list[str]] = defaultdict(list)
    for r in bulk.select_in(
        conn,
        "SELECT g.name, g.summary, g.external_id, m.email FROM windmill_instance_groups g"
        " LEFT JOIN windmill_instance_group_members m ON m.group_id = g.id"
        " WHERE g.instance_id = :i AND g.name IN :values",
        names,
        {"i": instance_id},
    ):
        found[str(r[0])] = (r[1], r[2])
        if r[3] is not None:
            emails[str(r[0])].append(str(r[3]))
    return sorted(
        InstanceGroupRow(name, summary, external_id, tuple(sorted(emails.get(name, ()))))
        for name, (summary, external_id) in found.items()
    )


def workspace_groups_named(
    conn: Connection, workspace_id: str, names: Collection[str]
) -> list[WorkspaceGroupRow]:
    """The workspace's own groups among names, with their members' usernames."""
    found: dict[str, str | None] = {}
    members: dict[str, list[str]] = defaultdict(list)
    for r in bulk.select_in(
        conn,
        "SELECT g.name, g.summary, m.username FROM windmill_workspace_groups g"
        " LEFT JOIN windmill_workspace_group_members m ON m.group_id = g.id"
        " WHERE g.workspace_id = :w AND g.name IN :values",
        names,
        {"w": workspace_id},
    ):
        found[str(r[0])] = r[1]
        if r[2] is not None:
            members[str(r[0])].append(str(r[2]))
    return sorted(
        WorkspaceGroupRow(workspace_id, name, summary, tuple(sorted(members.get(name, ()))))
        for name, summary in found.items()
    )


def idp_direct_members(conn: Connection, group_ids: Collection[int]) -> dict[int, list[int]]:
    """IdP group id -> the ids of its direct user members (removed users too), one query per chunk."""
    out: dict[int, list[int]] = defaultdict(list)
    for listed in bulk.id_lists(group_ids):
        for group_id, user_id in bulk.fetch_rows(
            conn, f"SELECT group_id, user_id FROM user_memberships WHERE group_id IN ({listed})"
        ):
            out[int(group_id)].append(int(user_id))
    return out


def group_names_of(conn: Connection, instance_id: int, workspace_id: str) -> set[str]:
    """Every g/ name that means a group in the workspace: the instance's groups and its own."""
    mark = bulk.mark(conn)
    names = {
        str(r[0])
        for r in bulk.fetch_rows(
            conn, f"SELECT name FROM windmill_instance_groups WHERE instance_id = {mark}", (instance_id,)
        )
    }
    names.update(
        str(r[0])
        for r in bulk.fetch_rows(
            conn, f"SELECT name FROM windmill_workspace_groups WHERE workspace_id = {mark}", (workspace_id,)
        )
    )
    return names


def acl_counts(conn: Connection) -> dict[tuple[str, str], int]:
    """How many ACL entries each linked folder and its items hold, by (workspace, folder)."""
    rows = conn.execute(
        text("SELECT workspace_id, folder, COUNT(*) FROM windmill_acl GROUP BY workspace_id, folder")
    ).all()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def folder_ids(conn: Connection, workspaces: Collection[str]) -> dict[tuple[str, str], int]:
    """The store id of every folder of the workspaces, by (workspace, folder)."""
    return {
        (str(r[1]), str(r[2])): int(r[0])
        for r in bulk.select_in(
            conn, "SELECT id, workspace_id, name FROM folders WHERE workspace_id IN :values", workspaces
        )
    }


def acl_principals(conn: Connection, workspace_id: str) -> set[str]:
    """Every principal named in a linked workspace's ACLs."""
    return {
        str(r[0])
        for r in _raw_rows(
            conn, "SELECT DISTINCT principal FROM windmill_acl WHERE workspace_id = {}", workspace_id
        )
    }


def acl_of_workspace_naming(conn: Connection, workspace_id: str, principals: Collection[str]) -> list[AclRow]:
    """A linked workspace's ACL entries that name one of principals."""
    return [
        AclRow._make(tuple(r))
        for r in bulk.select_in(
            conn,
            "SELECT workspace_id, folder, kind, path, principal, role FROM windmill_acl"
            " WHERE workspace_id = :w AND principal IN :values",
            principals,
            {"w": workspace_id},
        )
    ]


# --- reads and writes of one target, for a write-through -------------------------------------


def workspace_instance(conn: Connection, workspace: str) -> InstanceRow | None:
    """The instance a workspace is linked to; None for a local workspace."""
    row = conn.execute(
        text(
            "SELECT i.id, i.name, i.url, i.token_env, i.token_file, i.ca_bundle, i.standin, i.last_pull_at"
            " FROM windmill_instances i JOIN workspaces w ON w.windmill_instance_id = i.id WHERE w.id = :w"
        ),
        {"w": workspace},
    ).first()
    return None if row is None else _instance(row)


def item_kind(conn: Connection, workspace: str, path: str) -> list[str]:
    """Windmill's ACL kinds of the pulled items at path (one, unless two kinds share a path)."""
    rows = conn.execute(
        text("SELECT kind FROM windmill_items WHERE workspace_id = :w AND path = :p ORDER BY kind"),
        {"w": workspace, "p": path},
    ).all()
    return [str(r[0]) for r in rows]


def workspace_users(conn: Connection, workspace: str) -> list[UserRow]:
    rows = conn.execute(
        text(
            "SELECT workspace_id, username, email, is_admin, operator, disabled FROM windmill_users"
            " WHERE workspace_id = :w ORDER BY username"
        ),
        {"w": workspace},
    ).all()
    return [UserRow(str(r[0]), str(r[1]), str(r[2]), bool(r[3]), bool(r[4]), bool(r[5])) for r in rows]


def instance_groups_of(conn: Connection, instance_id: int) -> list[InstanceGroupRow]:
    """The instance's groups, without their emails (matching needs names and external ids only)."""
    rows = conn.execute(
        text(
            "SELECT name, summary, external_id FROM windmill_instance_groups WHERE instance_id = :i"
            " ORDER BY name"
        ),
        {"i": instance_id},
    ).all()
    return [InstanceGroupRow(str(r[0]), r[1], r[2], ()) for r in rows]


def workspace_group_names(conn: Connection, workspace: str) -> list[str]:
    rows = conn.execute(
        text("SELECT name FROM windmill_workspace_groups WHERE workspace_id = :w ORDER BY name"),
        {"w": workspace},
    ).all()
    return [str(r[0]) for r in rows]


def target_acl(conn: Connection, workspace: str, folder: str, kind: str, path: str) -> dict[str, str]:
    """principal -> role on one folder (kind 'folder', path '') or item, as last stored."""
    rows = conn.execute(
        text(
            "SELECT principal, role FROM windmill_acl WHERE workspace_id = :w AND folder = :f AND kind = :k"
            " AND path = :p"
        ),
        {"w": workspace, "f": folder, "k": kind, "p": path},
    )
    return {str(r[0]): str(r[1]) for r in rows}


def replace_target_acl(
    conn: Connection, workspace: str, folder: str, kind: str, path: str, roles: dict[str, str]
) -> None:
    """Make the stored ACL of one folder (kind 'folder', path '') or item exactly roles."""
    conn.execute(
        text("DELETE FROM windmill_acl WHERE workspace_id = :w AND folder = :f AND kind = :k AND path = :p"),
        {"w": workspace, "f": folder, "k": kind, "p": path},
    )
    bulk.insert_rows(
        conn,
        "windmill_acl",
        ("workspace_id", "folder", "kind", "path", "principal", "role"),
        [(workspace, folder, kind, path, principal, role) for principal, role in sorted(roles.items())],
    )


def idp_users_with_email(conn: Connection, email: str) -> list[IdpUserRow]:
    """Live IdP users whose emails may hold email (any case); the caller checks the exact match."""
    rows = conn.execute(
        text(
            "SELECT id, user_name, emails, active FROM users WHERE removed_at IS NULL"
            " AND LOWER(emails) LIKE :p ORDER BY id"
        ),
        # Wildcards in an email only widen the search; a backslash (LIKE's escape) matches any one
        # character instead. The caller compares the emails exactly.
        {"p": "%" + email.lower().replace("\\", "_") + "%"},
    ).all()
    return [IdpUserRow(int(r[0]), str(r[1]), str(r[2] or ""), bool(r[3])) for r in rows]


def acl_names(conn: Connection, workspace: str, principal: str) -> bool:
    """Whether any stored ACL entry of the workspace names principal (a deleted group's, say)."""
    row = conn.execute(
        text("SELECT 1 FROM windmill_acl WHERE workspace_id = :w AND principal = :p LIMIT 1"),
        {"w": workspace, "p": principal},
    ).first()
    return row is not None
