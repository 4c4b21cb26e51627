"""The linked read side: who can reach a linked workspace's folders and items, as Windmill enforces it.

Windmill's ACLs and Windmill's group memberships decide. The IdP only names things: an
instance group matched to an IdP group (matching.match_groups, the one rule) is explained
through the IdP's nesting, and every user the two memberships disagree on gets a note.
The rule itself is domain.access's: the pulled state is put behind an AccessReads with
synthetic ids, so ties, order and explanations are those of a local workspace. Workspace
roles sit on top of the ACLs: a workspace admin is admin everywhere in the workspace, an
operator never edits.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import overload

from sqlalchemy import Connection

from groupwarden.domain.access import Effective, Grant, Nesting, Reason, effective_access_each, expand_down
from groupwarden.domain.principals import Target
from groupwarden.domain.refs import GroupRef, TargetRef, UserRef, WindmillPrincipal
from groupwarden.domain.roles import Role
from groupwarden.services.access import Impact, TargetAccess, UserAccess, WhoCan
from groupwarden.services.grants import GrantRow
from groupwarden.services.windmill.matching import match_groups, match_users
from groupwarden.store import access as access_store
from groupwarden.store import directory as directory_store
from groupwarden.store import windmill as store
from groupwarden.store.windmill import AclRow, IdpUserRow, UserRow, WorkspaceLinkRow

IN_WINDMILL_ONLY = "in Windmill, not in the IdP"
IN_IDP_ONLY = "in the IdP, not in Windmill"
# The pull stores role labels; a dict look-up is cheaper than Role.parse on every entry.
_ROLES = {role.label: role for role in Role}


@dataclass(frozen=True, slots=True)
class WorkspaceRoleReason(Reason):
    """A role a Windmill workspace role gives (admin) or caps (operator), whatever the ACLs say."""

    why: str = ""

    def explain(self) -> str:
        return self.why


@dataclass(slots=True)
class _Person:
    """A Windmill user of the workspace, and the IdP user their email is (None: no IdP identity)."""

    user: UserRow
    idp: IdpUserRow | None
    notes: list[str] = field(default_factory=list)


class _Model:
    """One linked workspace's Windmill state as domain.access.AccessReads sees it.

    Users get ids 1..N (by username); each granted Windmill group gets a root id, and a
    matched instance group gets one more id per IdP group nested inside its IdP group, so
    the rule's walk finds the IdP's chain. Only Windmill's members are members here.
    """

    def __init__(self, workspace: str, people: list[_Person]) -> None:
        self.workspace = workspace
        self.people = {uid: person for uid, person in enumerate(people, start=1)}
        self.uid_of = {p.user.username: uid for uid, p in self.people.items()}
        self.roots: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.children: dict[int, list[int]] = {}
        self.direct: dict[int, list[int]] = {}
        self.idp_refs: dict[str, GroupRef] = {}

    def new_group(self, name: str) -> int:
        gid = len(self.names) + 1
        self.names[gid] = name
        return gid

    # domain.access.AccessReads
    def group_names(self, ids: Collection[int]) -> Mapping[int, str]:
        return self.names

    def user_names(self, ids: Collection[int]) -> Mapping[int, str]:
        return {uid: self.people[uid].user.username for uid in ids}

    def members(self, group_ids: Collection[int]) -> Mapping[int, list[list[int]]]:
        return {gid: [self.direct.get(gid, [])] for gid in group_ids}

    def removed_users(self, ids: Collection[int]) -> list[int]:
        # Disabled users keep their access in the answer, listed as inactive.
        return []

    def grant(self, row: AclRow) -> Grant | None:
        """The rule's grant for an ACL entry; None for one that names no group or user here."""
        kind, _, name = row.principal.partition("/")
        on = f"{row.workspace_id}/{row.path or row.folder}"
        role = _ROLES.get(row.role) or Role.parse(row.role)
        if kind == "g" and name in self.roots:
            return Grant(self.roots[name], None, role, on)
        if kind == "u" and name in self.uid_of:
            return Grant(None, self.uid_of[name], role, on)
        return None


def _model(conn: Connection, link: WorkspaceLinkRow, principals: Iterable[str]) -> _Model:
    """The workspace's users and the groups among principals, matched to the IdP."""
    users = store.workspace_users(conn, link.workspace_id)
    idp_users = store.idp_users(conn)
    idp_of = match_users([u.email for u in users], idp_users)
    model = _Model(link.workspace_id, [_Person(u, idp_of[u.email]) for u in users])
    uids_of_email: dict[str, list[int]] = defaultdict(list)
    uids_of_idp: dict[int, list[int]] = defaultdict(list)
    for uid, person in model.people.items():
        uids_of_email[person.user.email.strip().lower()].append(uid)
        if person.idp is not None:
            uids_of_idp[person.idp.id].append(uid)
    names = sorted({p[2:] for p in principals if p.startswith("g/") and len(p) > 2})
    instance = {g.name: g for g in store.instance_groups_named(conn, link.instance_id, names)}
    local = {g.name: g for g in store.workspace_groups_named(conn, link.workspace_id, names)}
    matches = match_groups(instance.values(), store.idp_groups(conn)) if instance else {}
    nesting = directory_store.nested_children(conn) if any(m.idp for m in matches.values()) else {}
    # Every matched group's IdP subtree, its names and direct members read once for all.
    walks = {name: expand_down([m.idp.id], nesting) for name, m in matches.items() if m.idp is not None}
    reached = {g for walk in walks.values() for g in walk}
    idp_names = directory_store.group_names(conn, reached) if reached else {}
    idp_members = store.idp_direct_members(conn, reached) if reached else {}
    for name in names:
        if name not in instance and name not in local:
            continue  # dangling: Windmill keeps the entry, it reaches nobody
        # Instance and workspace groups share the g/ namespace: Windmill counts both.
        from_instance: set[int] = set()
        if name in instance:
            for email in instance[name].emails:
                from_instance.update(uids_of_email.get(email.strip().lower(), ()))
        members = set(from_instance)
        if name in local:
            members.update(model.uid_of[u] for u in local[name].members if u in model.uid_of)
        idp_group = matches[name].idp if name in walks else None
        if idp_group is None:
            root = model.roots[name] = model.new_group(name)
            model.direct[root] = sorted(members)
            continue
        model.idp_refs[name] = GroupRef(idp_group.id, idp_group.name, idp_group.upstream_id, idp_group.source)
        walk = walks[name]
        shown = idp_group.name if idp_group.name == name else f"{idp_group.name} (Windmill g/{name})"
        ids = {g: model.new_group(shown if g == idp_group.id else idp_names.get(g, str(g))) for g in walk}
        root = model.roots[name] = ids[idp_group.id]
        in_idp: set[int] = set()
        active_in_idp: set[int] = set()
        for g in walk:
            placed: set[int] = set()
            for idp_id in idp_members.get(g, ()):
                for uid in uids_of_idp.get(idp_id, ()):
                    in_idp.add(uid)
                    idp = model.people[uid].idp
                    if idp is not None and idp.active:
                        active_in_idp.add(uid)
                    if uid in members:
                        placed.add(uid)
            model.direct[ids[g]] = sorted(placed)
            model.children[ids[g]] = [ids[c] for c in nesting.get(g, ()) if c in ids]
        # What Windmill enforces decides: its members with no IdP route hang off the root.
        only_windmill = sorted(members - in_idp)
        model.direct[root] = sorted(set(model.direct[root]) | set(only_windmill))
        # Drift is the instance group's: a workspace group of the same name is Windmill's alone.
        for uid in sorted(from_instance - in_idp):
            model.people[uid].notes.append(f"{IN_WINDMILL_ONLY} (g/{name})")
        for uid in sorted(active_in_idp - members):
            model.people[uid].notes.append(f"{IN_IDP_ONLY} (g/{name})")
    return model


def _with_workspace_role(user: UserRow, reason: Reason | None, workspace: str) -> Reason | None:
    """The ACLs' answer for a user, with their workspace role on top."""
    if user.is_admin:
        return WorkspaceRoleReason(
            Role.ADMIN, workspace, f"u/{user.username}", (), f"admin as workspace admin of {workspace}"
        )
    if user.operator and reason is not None and reason.role > Role.VIEWER:
        return WorkspaceRoleReason(
            Role.VIEWER,
            reason.granted_on,
            reason.principal,
            reason.chain,
            f"viewer as operator of {workspace}: operators never edit (the ACLs give {reason.explain()})",
        )
    return reason


def _answers(
    model: _Model, grants_on: Mapping[str, Sequence[Grant]], only: Collection[int] | None = None
) -> dict[str, dict[int, Reason]]:
    """Each target's reason per user (every user, or those of only): the rule on the ACLs, then
    the workspace roles."""
    found: dict[str, Effective] = effective_access_each(grants_on, Nesting(model.children), model)
    people = model.people if only is None else {uid: model.people[uid] for uid in only}
    out: dict[str, dict[int, Reason]] = {}
    for on, answer in found.items():
        reasons: dict[int, Reason] = {}
        for uid, person in people.items():
            reason = _with_workspace_role(person.user, answer.reason_of(uid), model.workspace)
            if reason is not None:
                reasons[uid] = reason
        out[on] = reasons
    return out


def _target_rows(rows: Iterable[AclRow], target: TargetRef) -> list[AclRow]:
    """The entries that decide access to target: the folder's, and an item's own."""
    path = target.item_path
    return [r for r in rows if r.kind == "folder" or (path and r.path == path)]


def _grants(model: _Model, rows: Iterable[AclRow]) -> list[Grant]:
    return [g for g in map(model.grant, rows) if g is not None]


class _Names:
    """How users are shown: the IdP userName and display name when matched, else the Windmill username."""

    def __init__(self, conn: Connection, model: _Model) -> None:
        ids = [p.idp.id for p in model.people.values() if p.idp is not None]
        self.display = {row[0]: row[2] for row in access_store.user_rows(conn, ids)} if ids else {}

    def of(self, uid: int, person: _Person) -> tuple[int, str, str | None, str]:
        """(user id, name, display name, where the name comes from); a user with no IdP identity
        gets a negative id of its own."""
        if person.idp is None:
            return -uid, person.user.username, None, "windmill"
        return person.idp.id, person.idp.user_name, self.display.get(person.idp.id), "idp"


class LinkedWhoCan(WhoCan):
    """A who-can answer on a linked workspace: computed whole, every row built already."""

    plain = False

    def __init__(self, rows: list[UserAccess]) -> None:
        self._all = rows
        counts = Counter(row.role for row in rows)
        self.counts_by_role = dict(sorted(counts.items(), reverse=True))

    def __len__(self) -> int:
        return len(self._all)

    @overload
    def __getitem__(self, index: int) -> UserAccess: ...

    @overload
    def __getitem__(self, index: slice) -> list[UserAccess]: ...

    def __getitem__(self, index: int | slice) -> UserAccess | list[UserAccess]:
        return self._all[index]

    def __iter__(self) -> Iterator[UserAccess]:
        return iter(self._all)

    @property
    def loaded(self) -> int:
        return len(self._all)

    def load_all(self) -> WhoCan:
        return self


def who_can(conn: Connection, link: WorkspaceLinkRow, target: TargetRef, minimum: Role) -> LinkedWhoCan:
    """Every user of the linked workspace with at least minimum on target, as Windmill enforces it."""
    rows = _target_rows(store.acl_in_folder(conn, link.workspace_id, target.target.folder), target)
    model = _model(conn, link, {r.principal for r in rows})
    on = str(target)
    reasons = _answers(model, {on: _grants(model, rows)})[on]
    names = _Names(conn, model)
    found: list[UserAccess] = []
    for uid, reason in reasons.items():
        if reason.role < minimum:
            continue
        person = model.people[uid]
        user_id, name, display, source = names.of(uid, person)
        found.append(
            UserAccess(
                user_id,
                name,
                display,
                not person.user.disabled,
                reason.role,
                reason,
                note="; ".join(person.notes) or None,
                name_source=source,
                windmill_user=person.user.username,
            )
        )
    found.sort(key=lambda a: (-int(a.role), a.user_name, a.user_id))
    return LinkedWhoCan(found)


def access_of(conn: Connection, user: UserRef) -> list[TargetAccess]:
    """Every folder and item of the linked workspaces the IdP user reaches (by email), with why."""
    out: list[TargetAccess] = []
    links = store.workspace_links(conn)
    if not links:
        return out
    own = store.idp_users(conn, [user.id])
    own_emails = {e.strip().lower() for u in own for e in u.emails.split("\n") if e.strip()}
    # Every IdP user is read (to find emails held by two of them) only when a Windmill user
    # of some linked workspace has one of this user's emails.
    idp_users: list[IdpUserRow] | None = None
    for workspace, link in sorted(links.items()):
        users = store.workspace_users(conn, workspace)
        if not any(u.email.strip().lower() in own_emails for u in users):
            continue
        if idp_users is None:
            idp_users = store.idp_users(conn)
        idp_of = match_users([u.email for u in users], idp_users)
        mine = {u.username for u in users if (found := idp_of[u.email]) is not None and found.id == user.id}
        if not mine:
            continue
        model = _model(conn, link, store.acl_principals(conn, workspace))
        uids = {model.uid_of[username] for username in mine}
        # Only the user's own memberships and the entries that lead to them: a route that
        # reaches nobody else is dropped before it is ranked, as services.access.access_of
        # does on a local workspace (the user's best route stays the same).
        model.direct = {gid: [u for u in members if u in uids] for gid, members in model.direct.items()}
        leading = {f"u/{name}" for name in mine} | {
            f"g/{name}"
            for name, root in model.roots.items()
            if any(model.direct.get(g) for g in expand_down([root], model.children))
        }
        on_folder: dict[str, list[Grant]] = defaultdict(list)
        on_item: dict[str, list[Grant]] = defaultdict(list)
        folder_of: dict[str, str] = {}
        for r in store.acl_of_workspace_naming(conn, workspace, leading):
            if (found_grant := model.grant(r)) is not None:
                if r.path:
                    on_item[r.path].append(found_grant)
                    folder_of[r.path] = r.folder
                else:
                    on_folder[r.folder].append(found_grant)
        # Every folder the user reaches, and each item whose own entries reach them; a
        # workspace admin reaches every folder.
        admin = any(model.people[uid].user.is_admin for uid in uids)
        folders = [f.name for f in store.folders_of(conn, [workspace])] if admin else list(on_folder)
        targets = {f"{workspace}/{name}": on_folder.get(name, []) for name in folders}
        for path, grants in on_item.items():
            targets[f"{workspace}/{path}"] = grants + on_folder.get(folder_of[path], [])
        answers = _answers(model, targets, uids)
        for username in sorted(mine):
            uid = model.uid_of[username]
            for on, reasons in answers.items():
                reason = reasons.get(uid)
                if reason is not None:
                    out.append(TargetAccess(on, reason.role, reason))
    return out


def preview_change(
    conn: Connection,
    link: WorkspaceLinkRow,
    principal: WindmillPrincipal,
    target: TargetRef,
    new_role: Role | None,
) -> Impact:
    """Effective access on a linked target now, and with principal at new_role (None: removed)."""
    rows = _target_rows(store.acl_in_folder(conn, link.workspace_id, target.target.folder), target)
    path = target.item_path
    mine = [r for r in rows if r.principal == principal.owner and r.path == path]
    before = Role.parse(mine[0].role) if mine else None
    changed = [r for r in rows if r not in mine]
    if new_role is not None:
        kind = mine[0].kind if mine else "folder" if not path else "item"
        changed.append(
            AclRow(link.workspace_id, target.target.folder, kind, path, principal.owner, new_role.label)
        )
    model = _model(conn, link, {r.principal for r in rows} | {principal.owner})
    on = str(target)
    was = {uid: r.role for uid, r in _answers(model, {on: _grants(model, rows)})[on].items()}
    now = {uid: r.role for uid, r in _answers(model, {on: _grants(model, changed)})[on].items()}
    names = _Names(conn, model)
    gained: list[tuple[str, Role | None, Role]] = []
    lost: list[tuple[str, Role, Role | None]] = []
    for uid in was.keys() | now.keys():
        a, b = was.get(uid), now.get(uid)
        if a == b:
            continue
        name = names.of(uid, model.people[uid])[1]
        if b is not None and (a is None or b > a):
            gained.append((name, a, b))
        elif a is not None:
            lost.append((name, a, b))
    gained.sort()
    lost.sort(key=lambda change: change[0])
    return Impact(principal.owner, on, before, new_role, gained, lost)


def windmill_principal(
    conn: Connection, link: WorkspaceLinkRow, owner: str, model: _Model | None = None
) -> WindmillPrincipal:
    """An ACL entry's principal as Windmill names it, with the IdP group or user it is matched to."""
    kind, _, name = owner.partition("/")
    idp: GroupRef | UserRef | None = None
    if model is not None:
        if kind == "g":
            idp = model.idp_refs.get(name)
        elif name in model.uid_of:
            found = model.people[model.uid_of[name]].idp
            if found is not None:
                idp = UserRef(found.id, found.user_name, "", "")
    return WindmillPrincipal(link.instance, link.workspace_id, owner, idp)


# --- the ACL entries themselves: grant listings and the export ------------------------------------


def _principals(
    conn: Connection, link: WorkspaceLinkRow, owners: Collection[str]
) -> dict[str, WindmillPrincipal]:
    """Each owner as a WindmillPrincipal of the workspace, with the IdP group or user it is matched to."""
    model = _model(conn, link, owners)
    out: dict[str, WindmillPrincipal] = {}
    for owner in owners:
        kind, _, name = owner.partition("/")
        idp: GroupRef | UserRef | None = model.idp_refs.get(name) if kind == "g" else None
        if kind == "u" and name in model.uid_of:
            found = model.people[model.uid_of[name]].idp
            if found is not None:
                idp = next(
                    (
                        u
                        for u in directory_store.find_users(conn, found.user_name, include_removed=False)
                        if u.id == found.id
                    ),
                    None,
                )
        out[owner] = WindmillPrincipal(link.instance, link.workspace_id, owner, idp)
    return out


def _granting_nothing(conn: Connection, link: WorkspaceLinkRow) -> Callable[[str], bool]:
    """Whether an owner names no group and no user of the workspace: a dangling entry."""
    groups = store.group_names_of(conn, link.instance_id, link.workspace_id)
    users = {u.username for u in store.workspace_users(conn, link.workspace_id)}

    def dangling(owner: str) -> bool:
        kind, _, name = owner.partition("/")
        return name not in (groups if kind == "g" else users)

    return dangling


def _listing(conn: Connection, link: WorkspaceLinkRow, rows: Sequence[AclRow]) -> list[GrantRow]:
    principals = _principals(conn, link, {r.principal for r in rows})
    dangling = _granting_nothing(conn, link)
    folder_ids = store.folder_ids(conn, [link.workspace_id])
    when = link.last_pull_at or datetime.fromtimestamp(0, UTC)
    out = []
    for r in rows:
        item = r.path[len(f"f/{r.folder}/") :] if r.path else None
        target = TargetRef(
            folder_ids.get((r.workspace_id, r.folder), 0), Target(r.workspace_id, r.folder, item)
        )
        out.append(
            GrantRow(
                id=0,
                target=str(target),
                workspace=r.workspace_id,
                folder=r.folder,
                item_path=r.path,
                principal=r.principal,
                role=Role.parse(r.role),
                granted_by=f"windmill {link.instance}",
                granted_at=when,
                orphaned=dangling(r.principal),
                version=0,
                principal_ref=principals[r.principal],
                target_ref=target,
                linked=link.instance,
                kind=r.kind,
            )
        )
    out.sort(key=lambda g: (g.target, g.principal))
    return out


def grants_on(
    conn: Connection, link: WorkspaceLinkRow, target: TargetRef, include_items: bool
) -> list[GrantRow]:
    """ACL entries on a linked folder (and its items, by default); for an item, its own and its folder's."""
    rows = store.acl_in_folder(conn, link.workspace_id, target.target.folder)
    if target.item_path:
        rows = _target_rows(rows, target)
    elif not include_items:
        rows = [r for r in rows if not r.path]
    return _listing(conn, link, rows)


def grants_naming(conn: Connection, principal: GroupRef | WindmillPrincipal) -> list[GrantRow]:
    """The ACL entries of the linked workspaces naming principal: a WindmillPrincipal as it is, in
    every workspace of its instance; an IdP group through each instance group matched to it."""
    links = store.workspace_links(conn)
    if isinstance(principal, WindmillPrincipal):
        wanted = {w: {principal.owner} for w, link in links.items() if link.instance == principal.instance}
    else:
        wanted = defaultdict(set)
        idp = store.idp_groups(conn)
        by_instance: dict[int, list[str]] = defaultdict(list)
        for w, link in links.items():
            by_instance[link.instance_id].append(w)
        for instance_id, workspaces in by_instance.items():
            for match in match_groups(store.instance_groups_of(conn, instance_id), idp).values():
                if match.idp is not None and match.idp.id == principal.id:
                    for w in workspaces:
                        wanted[w].add(f"g/{match.windmill}")
    out: list[GrantRow] = []
    rows = store.acl_naming(conn, {owner for owners in wanted.values() for owner in owners})
    for workspace in sorted(wanted):
        mine = [r for r in rows if r.workspace_id == workspace and r.principal in wanted[workspace]]
        if mine:
            out += _listing(conn, links[workspace], mine)
    return out


def export_entries(conn: Connection) -> tuple[dict[str, str], dict[tuple[str, str], list[AclRow]]]:
    """The linked workspaces (id -> instance name) and their ACL entries, by (workspace, folder)."""
    links = store.workspace_links(conn)
    entries: dict[tuple[str, str], list[AclRow]] = defaultdict(list)
    for workspace in sorted(links):
        for r in store.acl_of_workspace(conn, workspace):
            entries[(workspace, r.folder)].append(r)
    return {w: link.instance for w, link in links.items()}, entries


def link_labels(conn: Connection) -> dict[str, str]:
    """Each linked workspace's instance as listings show it: NAME, or NAME (stand-in)."""
    return {
        w: f"{link.instance} (stand-in)" if link.standin else link.instance
        for w, link in store.workspace_links(conn).items()
    }


def acl_counts(conn: Connection) -> dict[tuple[str, str], int]:
    """How many ACL entries each linked folder and its items hold, by (workspace, folder)."""
    return store.acl_counts(conn)
