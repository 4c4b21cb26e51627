"""Windmill instances: pulling one into the store, matching its principals to the IdP, and drift.

A pull is all-or-nothing like an IdP sync: the whole instance is read, then stored in one
transaction, and recorded as a run with its diff. Windmill's principals are stored under
their Windmill names; which IdP group or user each one is gets decided when it is read, by
match_groups and match_users, so the answer follows every later IdP sync.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import Connection

from groupwarden.domain.directory import Progress, ProgressCallback
from groupwarden.domain.errors import BadInput, NotFound, SyncError
from groupwarden.domain.principals import FOLDER_NAME, WORKSPACE_ID
from groupwarden.domain.windmill import folder_role, item_folder, item_role, normalise_group_name
from groupwarden.services.audit import record_run
from groupwarden.services.context import Context
from groupwarden.services.directory import effective_members
from groupwarden.services.sync import read_token
from groupwarden.sources.windmill import InstanceSnapshot, WindmillClient, check_url
from groupwarden.store import windmill as store
from groupwarden.store.db import lock_name, write_transaction
from groupwarden.store.windmill import (
    AclRow,
    AutoAddRow,
    FolderRow,
    IdpGroupRow,
    IdpUserRow,
    InstanceGroupRow,
    InstanceListRow,
    InstanceState,
    ItemRow,
    LinkedWorkspaceRow,
    UserRow,
    WorkspaceGroupRow,
)

DEFAULT_NAME = "default"
# Entries kept per list of a run's recorded diff: a first pull of a big instance adds every
# ACL entry it has, and the audit log has to stay readable.
RUN_DIFF_LIMIT = 1000
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_instance_name(name: str) -> str:
    if not _INSTANCE_NAME.match(name):
        raise BadInput(f"bad Windmill instance name {name!r}: use letters, digits, '-' and '_' only")
    return name


@dataclass(frozen=True, slots=True)
class WindmillLink:
    """Where an instance is and where its token comes from (a variable's name or a file's path)."""

    name: str
    url: str
    token_env: str | None = None
    token_file: str | None = None
    ca_bundle: str | None = None
    #: The demo's stand-in, labelled as such in listings.
    standin: bool = False


def run_source(name: str) -> str:
    """The source name a pull's runs are recorded under."""
    return f"windmill:{name}"


# --- the pull's diff ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AclChange:
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


def _target(row: AclRow) -> str:
    return f"{row.workspace_id}/{row.path or row.folder}"


AclKey = tuple[str, str, str, str]


def _acl_roles(rows: Iterable[AclRow]) -> dict[AclKey, str]:
    """(workspace, kind, folder name or item path, principal) -> role."""
    return {(r.workspace_id, r.kind, r.path or r.folder, r.principal): r.role for r in rows}


def _acl_change(key: AclKey, before: str | None, after: str | None) -> AclChange:
    workspace, kind, where, principal = key
    return AclChange(principal, f"{workspace}/{where}", kind, before, after)


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

    # Whole rows compared as sets, in C: a re-pull holds every ACL entry of the instance twice,
    # and only the few that differ are looked at one by one.
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


def state_of(name: str, snapshot: InstanceSnapshot) -> InstanceState:
    """The rows to store for a complete snapshot; a name the store cannot hold fails the pull."""
    state = InstanceState()
    # Windmill lists workspaces in no stable order; sorted, new rows get the same ids every time.
    for ws in sorted(snapshot.workspaces, key=lambda w: w.workspace.id):
        wid = ws.workspace.id
        if not WORKSPACE_ID.match(wid):
            raise _surprise(name, f"workspace id {wid!r} is not letters, digits, '-' and '_'")
        state.workspaces[wid] = ws.workspace.name
        for folder in ws.folders:
            if not FOLDER_NAME.match(folder.name):
                raise _surprise(name, f"folder {folder.name!r} of {wid} is not letters, digits and '_'")
            state.folders.append(FolderRow(wid, folder.name, folder.summary or ""))
            for principal in sorted(set(folder.owners) | set(folder.extra_perms)):
                role = folder_role(folder.owners, folder.extra_perms, principal)
                assert role is not None
                state.acl.append(AclRow(wid, folder.name, "folder", "", principal, role.label))
        for item in ws.items:
            folder_name = item_folder(item.path)
            assert folder_name is not None  # the client keeps items under f/<folder>/ only
            state.items.append(ItemRow(wid, item.kind, item.path, folder_name))
            for principal, write in item.extra_perms.items():
                state.acl.append(
                    AclRow(wid, folder_name, item.kind, item.path, principal, _ITEM_ROLES[write])
                )
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
        with WindmillClient(url, token, name=link.name, ca_bundle=link.ca_bundle) as client:
            snapshot = client.pull(progress)
        after = state_of(link.name, snapshot)
        if progress:
            progress(Progress("reconcile", 0, 0, len(after.acl) + len(after.folders)))
        if dry_run:
            with ctx.engine.connect() as conn:
                found = store.find_instance(conn, link.name)
                instance_id = None if found is None else found.id
                _check_links(conn, link.name, instance_id, after)
                before = InstanceState() if instance_id is None else store.read_state(conn, instance_id)
                diff = diff_states(before, _folders_before(conn, before, after), after)
            run_id = None
        else:
            with write_transaction(ctx.engine) as conn:
                lock_name(conn, source)
                found = store.find_instance(conn, link.name)
                instance_id = None if found is None else found.id
                _check_links(conn, link.name, instance_id, after)
                before = InstanceState() if instance_id is None else store.read_state(conn, instance_id)
                diff = diff_states(before, _folders_before(conn, before, after), after)
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
                gone = diff.workspaces_unlinked
                store.write_state(conn, instance_id, before, after, gone)
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
        workspaces=len(after.workspaces),
        folders=len(after.folders),
        items=len(after.items),
        acl_entries=len(after.acl),
        instance_groups=len(after.instance_groups),
        archived=sorted(w.id for w in snapshot.archived),
    )


# --- listings -------------------------------------------------------------------------------------


def list_instances(ctx: Context) -> list[InstanceListRow]:
    """Every linked instance: name, url, stand-in or not, last pull, linked workspace count."""
    with ctx.engine.connect() as conn:
        return store.list_instances(conn)


def workspace_links(ctx: Context) -> dict[str, LinkedWorkspaceRow]:
    """Each linked workspace's instance, by workspace id; a workspace not here is local."""
    with ctx.engine.connect() as conn:
        return {row.id: row for row in store.linked_workspaces(conn)}


# --- matching Windmill principals to the IdP ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupMatch:
    """The IdP group a Windmill instance group comes from, or why there is none."""

    windmill: str
    idp: IdpGroupRow | None
    #: 'external_id' or 'name' when matched.
    by: str | None
    #: Every candidate when more than one IdP group fits: reported, never guessed.
    candidates: tuple[IdpGroupRow, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def match_groups(
    windmill_groups: Iterable[InstanceGroupRow], idp_groups: Sequence[IdpGroupRow]
) -> dict[str, GroupMatch]:
    """The one rule: by external_id == upstream id when Windmill gives one, else by Windmill's
    normalisation of the IdP group's name. Two candidates are ambiguous, none unmatched."""
    by_upstream: dict[str, list[IdpGroupRow]] = defaultdict(list)
    by_name: dict[str, list[IdpGroupRow]] = defaultdict(list)
    for group in idp_groups:
        by_upstream[group.upstream_id].append(group)
        by_name[normalise_group_name(group.name)].append(group)
    out: dict[str, GroupMatch] = {}
    for wgroup in windmill_groups:
        how = "external_id" if wgroup.external_id else "name"
        found = (
            by_upstream.get(wgroup.external_id or "", [])
            if wgroup.external_id
            else by_name.get(wgroup.name, [])
        )
        if len(found) == 1:
            out[wgroup.name] = GroupMatch(wgroup.name, found[0], how, (found[0],))
        else:
            out[wgroup.name] = GroupMatch(wgroup.name, None, None, tuple(found))
    return out


def match_users(emails: Iterable[str], idp_users: Sequence[IdpUserRow]) -> dict[str, IdpUserRow | None]:
    """Each email (any case) -> the one IdP user holding it among their emails; None for none or several."""
    holders: dict[str, set[int]] = defaultdict(set)
    by_id = {u.id: u for u in idp_users}
    for user in idp_users:
        for email in user.emails.split("\n"):
            if email.strip():
                holders[email.strip().lower()].add(user.id)
    out: dict[str, IdpUserRow | None] = {}
    for email in emails:
        ids = holders.get(email.strip().lower(), set())
        out[email] = by_id[next(iter(ids))] if len(ids) == 1 else None
    return out


# --- drift ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AclEntry:
    """An ACL entry found somewhere in a linked workspace."""

    workspace: str
    target: str
    kind: str
    principal: str
    role: str


@dataclass(frozen=True, slots=True)
class MembershipDrift:
    group: str
    idp_group: str
    idp_source: str
    #: In the IdP group (nested groups expanded), not in Windmill's.
    missing: list[str]
    #: In Windmill's group, not in the IdP's.
    extra: list[str]


@dataclass(frozen=True, slots=True)
class UnmatchedGroup:
    #: 'windmill': a Windmill instance group with no IdP group; 'idp': a granted IdP group
    #: that no Windmill instance group matches.
    side: str
    group: str
    detail: str
    candidates: list[str]


@dataclass(frozen=True, slots=True)
class AutoAddMember:
    email: str
    #: The workspace role auto-add gives.
    role: str
    #: The member's workspace username, when they are a user already; and their role then.
    username: str | None
    current_role: str | None


@dataclass(frozen=True, slots=True)
class AutoAddGroup:
    workspace: str
    group: str
    role: str
    group_exists: bool
    members: list[AutoAddMember]


@dataclass(slots=True)
class DriftReport:
    instance: str
    dangling: list[AclEntry] = field(default_factory=list)
    membership_drift: list[MembershipDrift] = field(default_factory=list)
    unmatched: list[UnmatchedGroup] = field(default_factory=list)
    unknown_users: list[AclEntry] = field(default_factory=list)
    auto_add: list[AutoAddGroup] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "dangling": [asdict(r) for r in self.dangling],
            "membership_drift": [asdict(r) for r in self.membership_drift],
            "unmatched": [asdict(r) for r in self.unmatched],
            "unknown_users": [asdict(r) for r in self.unknown_users],
            "auto_add": [asdict(r) for r in self.auto_add],
        }


def workspace_role(user: UserRow) -> str:
    """A workspace user's role as Windmill names it."""
    return "admin" if user.is_admin else "operator" if user.operator else "developer"


def _entry(row: AclRow) -> AclEntry:
    return AclEntry(row.workspace_id, _target(row), row.kind, row.principal, row.role)


def drift(ctx: Context, name: str = DEFAULT_NAME) -> DriftReport:
    """What Windmill gets wrong, from the last pull and the IdP cache; no HTTP."""
    with ctx.engine.connect() as conn:
        found = store.find_instance(conn, name)
        if found is None:
            raise NotFound(
                f"no Windmill instance named {name!r}; pull it first with `groupwarden windmill pull`"
            )
        state = store.read_state(conn, found.id)
        idp = store.idp_groups(conn)
        matches = match_groups(state.instance_groups, idp)
        expected: dict[str, list[IdpUserRow]] = {}
        for match in matches.values():
            if match.idp is not None:
                expected[match.windmill] = store.idp_users(conn, effective_members(conn, match.idp.id))
        granted = store.granted_group_ids(conn)
    report = DriftReport(name)

    instance_names = {g.name for g in state.instance_groups}
    local_names: dict[str, set[str]] = defaultdict(set)
    for local in state.workspace_groups:
        local_names[local.workspace_id].add(local.name)
    usernames: dict[str, set[str]] = defaultdict(set)
    for ws_user in state.users:
        usernames[ws_user.workspace_id].add(ws_user.username)
    # Sorted here, not by the database: PostgreSQL's collation may order text otherwise.
    for row in sorted(state.acl):
        kind, _, who = row.principal.partition("/")
        if kind == "g" and who not in instance_names and who not in local_names[row.workspace_id]:
            report.dangling.append(_entry(row))
        elif kind == "u" and who not in usernames[row.workspace_id]:
            report.unknown_users.append(_entry(row))

    for wgroup in sorted(state.instance_groups):
        match = matches[wgroup.name]
        if match.idp is not None:
            report_drift = _membership_drift(wgroup, match.idp, expected[wgroup.name])
            if report_drift is not None:
                report.membership_drift.append(report_drift)
            continue
        if match.ambiguous:
            detail = (
                f"{len(match.candidates)} IdP groups fit by {'external_id' if wgroup.external_id else 'name'}"
            )
        elif wgroup.external_id:
            detail = f"external_id {wgroup.external_id!r} is no IdP group's upstream id"
        else:
            detail = "no IdP group's name normalises to it"
        report.unmatched.append(
            UnmatchedGroup("windmill", wgroup.name, detail, [_describe(g) for g in match.candidates])
        )
    matched = {m.idp.id for m in matches.values() if m.idp is not None}
    for idp_group in idp:
        if idp_group.id in granted and idp_group.id not in matched:
            expected_name = normalise_group_name(idp_group.name)
            report.unmatched.append(
                UnmatchedGroup(
                    "idp",
                    idp_group.name,
                    f"granted in groupwarden; Windmill has no instance group g/{expected_name}"
                    f" or with external_id {idp_group.upstream_id!r}",
                    [],
                )
            )

    groups = {g.name: g for g in state.instance_groups}
    users_by_email: dict[tuple[str, str], UserRow] = {
        (u.workspace_id, u.email.lower()): u for u in state.users
    }
    for auto in sorted(state.auto_add):
        auto_group = groups.get(auto.group_name)
        members = []
        for email in sorted(auto_group.emails if auto_group else ()):
            user = users_by_email.get((auto.workspace_id, email.lower()))
            members.append(
                AutoAddMember(
                    email, auto.role, user.username if user else None, workspace_role(user) if user else None
                )
            )
        report.auto_add.append(
            AutoAddGroup(auto.workspace_id, auto.group_name, auto.role, auto_group is not None, members)
        )
    return report


def _describe(group: IdpGroupRow) -> str:
    return f"{group.name} (source {group.source}, upstream id {group.upstream_id})"


def _membership_drift(
    wgroup: InstanceGroupRow, idp_group: IdpGroupRow, members: list[IdpUserRow]
) -> MembershipDrift | None:
    """How Windmill's emails of a group differ from its IdP group's active effective members."""
    in_windmill = {e.strip().lower() for e in wgroup.emails}
    held: set[str] = set()
    missing: set[str] = set()
    for user in members:
        emails = [e.strip().lower() for e in user.emails.split("\n") if e.strip()]
        held.update(emails)
        # Inactive users are not pushed to Windmill; users without an email cannot be.
        if user.active and emails and not in_windmill.intersection(emails):
            missing.add(emails[0])
    extra = in_windmill - held
    if not missing and not extra:
        return None
    return MembershipDrift(wgroup.name, idp_group.name, idp_group.source, sorted(missing), sorted(extra))
