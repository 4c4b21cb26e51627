"""What Windmill gets wrong, from the last pull and the IdP cache (no HTTP): grants naming
deleted groups, SCIM push drift, unmatched groups, unknown users, and what auto-add does."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from groupwarden.domain.errors import NotFound
from groupwarden.domain.windmill import normalise_group_name
from groupwarden.services.context import Context
from groupwarden.services.directory import effective_member_ids
from groupwarden.services.windmill.links import DEFAULT_NAME, acl_target
from groupwarden.services.windmill.matching import match_groups
from groupwarden.store import windmill as store
from groupwarden.store.windmill import AclRow, IdpGroupRow, IdpUserRow, InstanceGroupRow, UserRow


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
    return AclEntry(row.workspace_id, acl_target(row), row.kind, row.principal, row.role)


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
                expected[match.windmill] = store.idp_users(conn, effective_member_ids(conn, match.idp.id))
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
    for row in sorted(map(AclRow._make, state.acl)):
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
