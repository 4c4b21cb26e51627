"""Pulling a Windmill instance into the store: all-or-nothing like an IdP sync, recorded as a run.

The whole instance is read, then stored in one transaction, and recorded as a run with its
diff. Windmill's principals are stored under their Windmill names; which IdP group or user
each one is gets decided when it is read (services.windmill.matching), so the answer
follows every later IdP sync.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import msgspec
from sqlalchemy import Connection

from groupwarden.domain.directory import Progress, ProgressCallback
from groupwarden.domain.errors import BadInput, SyncError
from groupwarden.domain.principals import FOLDER_NAME, WORKSPACE_ID
from groupwarden.domain.windmill import folder_role, item_role
from groupwarden.services.audit import record_run
from groupwarden.services.context import Context
from groupwarden.services.sync import read_token
from groupwarden.services.windmill.links import WindmillLink, check_instance_name, run_source
from groupwarden.sources.common import parsed_pages_frozen
from groupwarden.sources.windmill import InstanceSnapshot, WindmillClient, WorkspaceSnapshot, check_url
from groupwarden.store import windmill as store
from groupwarden.store.db import lock_name, write_transaction
from groupwarden.store.windmill import (
    AclValues,
    AutoAddRow,
    FolderRow,
    InstanceGroupRow,
    InstanceState,
    UserRow,
    WorkspaceGroupRow,
)

# Entries kept per list of a run's recorded diff: a first pull of a big instance adds every
# ACL entry it has, and the audit log has to stay readable.
RUN_DIFF_LIMIT = 1000

# --- the pull's diff ------------------------------------------------------------------------------


class AclChange(msgspec.Struct, frozen=True, gc=False):
    """One ACL entry a pull adds, changes or removes.

    A struct, not a dataclass: a first pull of a large instance makes one per entry it
    stores, and a frozen dataclass costs several times as much to build. Only strings
    inside, so the garbage collector need not track it.
    """

    principal: str
    #: WORKSPACE/FOLDER for a folder, WORKSPACE/f/FOLDER/NAME for an item.
    target: str
    #: 'folder', or Windmill's ACL kind of the item.
    kind: str
    before: str | None
    after: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "principal": self.principal,
            "target": self.target,
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
        }


@dataclass(slots=True)
class WindmillDiff:
    workspaces_linked: list[str] = field(default_factory=list)
    workspaces_unlinked: list[str] = field(default_factory=list)
    folders_added: list[str] = field(default_factory=list)
    folders_removed: list[str] = field(default_factory=list)
    acl_added: list[AclChange] = field(default_factory=list)
    acl_changed: list[AclChange] = field(default_factory=list)
    acl_removed: list[AclChange] = field(default_factory=list)
    #: Instance groups as g/NAME, workspace groups as WORKSPACE/g/NAME.
    groups_added: list[str] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)
    #: Instance groups' emails, by g/NAME, for groups there before and after.
    members_added: dict[str, list[str]] = field(default_factory=dict)
    members_removed: dict[str, list[str]] = field(default_factory=dict)
    #: Workspace users as WORKSPACE/u/USERNAME.
    users_added: list[str] = field(default_factory=list)
    users_removed: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__slots__)

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        """Plain data; with limit, each list keeps its first limit entries and 'truncated' gives
        the full length of every list that was cut."""
        data: dict[str, Any] = {}
        cut: dict[str, int] = {}
        for name in (f.name for f in fields(self)):
            value = getattr(self, name)
            if limit is not None and len(value) > limit:
                cut[name] = len(value)
                value = value[:limit] if isinstance(value, list) else dict(list(value.items())[:limit])
            if isinstance(value, dict):
                data[name] = {key: list(emails) for key, emails in value.items()}
            else:
                data[name] = [v.to_dict() if isinstance(v, AclChange) else v for v in value]
        if cut:
            data["truncated"] = cut
        return data


@dataclass(slots=True)
class PullReport:
    name: str
    url: str
    diff: WindmillDiff
    dry_run: bool
    run_id: int | None
    workspaces: int
    folders: int
    items: int
    acl_entries: int
    instance_groups: int
    #: Archived workspaces: listed by Windmill, not linked.
    archived: list[str]


AclKey = tuple[str, str, str, str]


def _acl_roles(rows: Iterable[AclValues]) -> dict[AclKey, str]:
    """(workspace, kind, folder name or item path, principal) -> role."""
    return {(w, kind, path or folder, principal): role for w, folder, kind, path, principal, role in rows}


def _acl_change(key: AclKey, before: str | None, after: str | None) -> AclChange:
    workspace, kind, where, principal = key
    return AclChange(principal, f"{workspace}/{where}", kind, before, after)


def _all_added(rows: Iterable[AclValues]) -> list[AclChange]:
    """Every entry of rows as an addition, in the order of the keys _acl_roles gives them."""
    keys = sorted(
        (w, kind, path or folder, principal, role) for w, folder, kind, path, principal, role in rows
    )
    return [
        AclChange(principal, f"{w}/{where}", kind, None, role) for w, kind, where, principal, role in keys
    ]


def diff_states(
    before: InstanceState, before_folders: Sequence[FolderRow], after: InstanceState
) -> WindmillDiff:
    """What a pull changes: before is the stored state, before_folders every folder of the
    workspaces it touches (an adopted local workspace's too)."""
    diff = WindmillDiff()
    diff.workspaces_linked = sorted(set(after.workspaces) - set(before.workspaces))
    diff.workspaces_unlinked = sorted(set(before.workspaces) - set(after.workspaces))
    # An unlinked workspace keeps its folders as a local workspace: they are not removed.
    kept = set(before.workspaces) - set(after.workspaces)
    old_folders = {f"{f.workspace_id}/{f.name}" for f in before_folders if f.workspace_id not in kept}
    new_folders = {f"{f.workspace_id}/{f.name}" for f in after.folders}
    diff.folders_added = sorted(new_folders - old_folders)
    diff.folders_removed = sorted(old_folders - new_folders)

    if not before.acl:
        # Nothing stored to compare with (a first pull): every entry is an addition.
        diff.acl_added = _all_added(after.acl)
    else:
        # Whole rows compared as sets, in C: a re-pull holds every ACL entry of the instance
        # twice, and only the few that differ are looked at one by one.
        old_rows, new_rows = set(before.acl), set(after.acl)
        gone, came = _acl_roles(old_rows - new_rows), _acl_roles(new_rows - old_rows)
        diff.acl_added = [_acl_change(k, None, came[k]) for k in sorted(came.keys() - gone.keys())]
        diff.acl_removed = [_acl_change(k, gone[k], None) for k in sorted(gone.keys() - came.keys())]
        diff.acl_changed = [_acl_change(k, gone[k], came[k]) for k in sorted(came.keys() & gone.keys())]

    def groups(state: InstanceState) -> set[str]:
        return {f"g/{g.name}" for g in state.instance_groups} | {
            f"{g.workspace_id}/g/{g.name}" for g in state.workspace_groups
        }

    old_groups, new_groups = groups(before), groups(after)
    diff.groups_added = sorted(new_groups - old_groups)
    diff.groups_removed = sorted(old_groups - new_groups)
    old_emails = {g.name: set(g.emails) for g in before.instance_groups}
    for group in after.instance_groups:
        if group.name in old_emails:
            added = sorted(set(group.emails) - old_emails[group.name])
            removed = sorted(old_emails[group.name] - set(group.emails))
            if added:
                diff.members_added[f"g/{group.name}"] = added
            if removed:
                diff.members_removed[f"g/{group.name}"] = removed

    def users(state: InstanceState) -> set[str]:
        return {f"{u.workspace_id}/u/{u.username}" for u in state.users}

    diff.users_added = sorted(users(after) - users(before))
    diff.users_removed = sorted(users(before) - users(after))
    return diff


# --- the pull -------------------------------------------------------------------------------------


def _surprise(name: str, detail: str) -> SyncError:
    return SyncError(f"unexpected answer from windmill {name}: {detail}; nothing was written")


# item_role's answer for each extra_perms value, looked up once: an instance has items by the
# hundred thousand.
_ITEM_ROLES = {write: str(item_role({"p": write}, "p")) for write in (True, False)}


# Changes whenever state_of stores a workspace differently, so old digests stop matching.
_DIGEST_FORMAT = b"groupwarden windmill workspace 1\n"


def workspace_digest(ws: WorkspaceSnapshot) -> str:
    """A fingerprint of everything a pull read of one workspace."""
    return hashlib.blake2b(_DIGEST_FORMAT + msgspec.json.encode(ws), digest_size=16).hexdigest()


def state_of(
    name: str,
    snapshot: InstanceSnapshot,
    only: Collection[str] | None = None,
    digests: Mapping[str, str] | None = None,
) -> InstanceState:
    """The rows to store for a complete snapshot (its workspaces in only, or all of them);
    a name the store cannot hold fails the pull. digests: workspace_digest of each workspace,
    when the caller has them already."""
    state = InstanceState()
    folders, acl, items = state.folders, state.acl, state.items
    # Windmill lists workspaces in no stable order; sorted, new rows get the same ids every time.
    for ws in sorted(snapshot.workspaces, key=lambda w: w.workspace.id):
        wid = ws.workspace.id
        if only is not None and wid not in only:
            continue
        if not WORKSPACE_ID.fullmatch(wid):
            raise _surprise(name, f"workspace id {wid!r} is not letters, digits, '-' and '_'")
        state.workspaces[wid] = ws.workspace.name
        state.digests[wid] = workspace_digest(ws) if digests is None else digests[wid]
        for folder in ws.folders:
            if not FOLDER_NAME.fullmatch(folder.name):
                raise _surprise(name, f"folder {folder.name!r} of {wid} is not letters, digits and '_'")
            folders.append(FolderRow(wid, folder.name, folder.summary or ""))
            for principal in sorted(set(folder.owners) | set(folder.extra_perms)):
                role = folder_role(folder.owners, folder.extra_perms, principal)
                assert role is not None
                acl.append((wid, folder.name, "folder", "", principal, role.label))
        # The hot loop of a pull, once per item and once per ACL entry: plain tuples.
        for item in ws.items:
            kind, path, folder_name = item.kind, item.path, item.folder
            assert folder_name is not None  # the client keeps items under f/<folder>/ only
            items.append((wid, kind, path, folder_name))
            for principal, write in item.extra_perms.items():
                acl.append((wid, folder_name, kind, path, principal, _ITEM_ROLES[write]))
        state.users.extend(
            UserRow(wid, u.username, u.email, u.is_admin, u.operator, u.disabled) for u in ws.users
        )
        state.workspace_groups.extend(
            WorkspaceGroupRow(wid, g.name, g.summary, tuple(g.members)) for g in ws.groups
        )
        for group in dict.fromkeys(ws.auto_add.instance_groups):
            state.auto_add.append(AutoAddRow(wid, group, ws.auto_add.role_of(group)))
    state.instance_groups = [
        InstanceGroupRow(g.name, g.summary, g.external_id, tuple(g.members))
        for g in sorted(snapshot.instance_groups, key=lambda g: g.name)
    ]
    return state


def _check_links(conn: Connection, name: str, instance_id: int | None, state: InstanceState) -> None:
    """Refuse to link a workspace that is someone else's: another instance's, or a local one with grants."""
    for wid, row in sorted(store.local_workspaces(conn, state.workspaces).items()):
        if row.instance_id is None and row.grants:
            raise SyncError(
                f"windmill {name}: workspace {wid!r} exists here as a local workspace with {row.grants}"
                " grants of its own; linking it to Windmill would replace them. Rename or empty the local"
                " workspace first; nothing was written"
            )
        if row.instance_id is not None and row.instance_id != instance_id:
            raise SyncError(
                f"windmill {name}: workspace {wid!r} is already linked to another Windmill instance;"
                " nothing was written"
            )


def _folders_before(conn: Connection, before: InstanceState, after: InstanceState) -> list[FolderRow]:
    """The folders a pull may change: the linked workspaces', and those of local ones it adopts."""
    adopted = sorted(set(after.workspaces) - set(before.workspaces))
    return [*before.folders, *store.folders_of(conn, adopted)]


@dataclass(slots=True)
class _Compared:
    before: InstanceState
    after: InstanceState
    diff: WindmillDiff


def _compare(conn: Connection, name: str, snapshot: InstanceSnapshot) -> _Compared:
    """The stored and the pulled state of the workspaces that changed, and the diff between them.

    A workspace whose digest matches the stored one is left out of both: a re-pull of a
    large instance where little changed reads and writes little.
    """
    found = store.find_instance(conn, name)
    instance_id = None if found is None else found.id
    stored = {} if instance_id is None else store.workspace_digests(conn, instance_id)
    pulled = {ws.workspace.id: workspace_digest(ws) for ws in snapshot.workspaces}
    changed = {wid for wid, digest in pulled.items() if stored.get(wid) != digest}
    after = state_of(name, snapshot, changed, pulled)
    _check_links(conn, name, instance_id, after)
    before = (
        InstanceState()
        if instance_id is None
        else store.read_state(conn, instance_id, changed | (stored.keys() - pulled.keys()))
    )
    return _Compared(before, after, diff_states(before, _folders_before(conn, before, after), after))


def pull(
    ctx: Context,
    link: WindmillLink,
    *,
    progress: ProgressCallback | None = None,
    dry_run: bool = False,
) -> PullReport:
    """Read the whole instance and make the store hold exactly that, in one transaction.

    The token is read again from the link's variable or file. Any failure (an HTTP call,
    a surprise in an answer, a workspace that may not be linked) leaves the store as it was
    and is recorded as a failed run; dry_run reports the diff and writes nothing.
    """
    check_instance_name(link.name)
    if not dry_run:
        ctx.require_writable("pulling from Windmill")
    try:
        url = check_url(link.url)
    except SyncError as exc:
        raise BadInput(str(exc)) from None
    token = read_token(link.token_env, link.token_file)
    if token is None:
        raise BadInput(
            f"windmill {link.name}: give the token's variable (--token-env) or file (--token-file)"
        )
    source = run_source(link.name)
    started = ctx.clock()
    try:
        # What a pull reads and builds lives until it ends: kept out of the garbage
        # collector's full passes, which would otherwise re-scan it over and over.
        with parsed_pages_frozen() as freeze:
            with WindmillClient(url, token, name=link.name, ca_bundle=link.ca_bundle) as client:
                snapshot = client.pull(progress)
            freeze()
            if progress:
                progress(Progress("reconcile", 0, 0, len(snapshot.workspaces)))
            if dry_run:
                with ctx.engine.connect() as conn:
                    diff = _compare(conn, link.name, snapshot).diff
                run_id = None
            else:
                with write_transaction(ctx.engine) as conn:
                    lock_name(conn, source)
                    compared = _compare(conn, link.name, snapshot)
                    diff = compared.diff
                    instance_id = store.save_instance(
                        conn,
                        name=link.name,
                        url=url,
                        token_env=link.token_env,
                        token_file=link.token_file,
                        ca_bundle=link.ca_bundle,
                        standin=link.standin,
                        pulled_at=ctx.clock(),
                    )
                    store.write_state(
                        conn, instance_id, compared.before, compared.after, diff.workspaces_unlinked
                    )
                    run_id = record_run(
                        conn,
                        source_name=source,
                        actor=ctx.actor,
                        now=ctx.clock(),
                        started_at=started,
                        outcome="ok",
                        diff=diff.to_dict(RUN_DIFF_LIMIT),
                    )
    except SyncError as exc:
        if not dry_run:
            with write_transaction(ctx.engine) as conn:
                record_run(
                    conn,
                    source_name=source,
                    actor=ctx.actor,
                    now=ctx.clock(),
                    started_at=started,
                    outcome="failed",
                    error=str(exc).replace(token, "***"),
                )
        raise
    return PullReport(
        name=link.name,
        url=url,
        diff=diff,
        dry_run=dry_run,
        run_id=run_id,
        workspaces=len(snapshot.workspaces),
        folders=sum(len(ws.folders) for ws in snapshot.workspaces),
        items=sum(len(ws.items) for ws in snapshot.workspaces),
        acl_entries=sum(
            len(set(f.owners) | set(f.extra_perms)) for ws in snapshot.workspaces for f in ws.folders
        )
        + sum(len(i.extra_perms) for ws in snapshot.workspaces for i in ws.items),
        instance_groups=len(snapshot.instance_groups),
        archived=sorted(w.id for w in snapshot.archived),
    )
