"""Desired state as a file: plan and apply a layout file.

The layout (domain.layout) is the whole set of grants of each folder and item it names:
what it lists is added or changed, what it does not list on those targets is removed, and
folders it does not name are left alone. On a workspace linked to Windmill the named
targets are read live first (and the store brought up to date with them), so a grant made
in Windmill's own UI a minute ago is part of the comparison; changes are written through.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from groupwarden.domain.errors import BadInput, GroupwardenError, NotFound
from groupwarden.domain.layout import Layout, LayoutGrant
from groupwarden.domain.principals import Target
from groupwarden.domain.refs import Principal, TargetRef, WindmillPrincipal
from groupwarden.domain.roles import Role
from groupwarden.services import grants, resolve
from groupwarden.services.context import Context
from groupwarden.services.layout import add_folder, add_workspace, read_layout
from groupwarden.services.windmill import write as windmill_write
from groupwarden.services.windmill.write import LiveAcl, WindmillTarget
from groupwarden.sources.windmill import WindmillClient
from groupwarden.store import grants as grants_store
from groupwarden.store import layout as layout_store
from groupwarden.store import windmill as windmill_store
from groupwarden.store.db import write_transaction


def _label(role: Role | None) -> str | None:
    return None if role is None else role.label


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """One grant to add (before None), change, or remove (after None)."""

    principal: str
    target: str
    before: Role | None
    after: Role | None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "principal": self.principal,
            "target": self.target,
            "before": _label(self.before),
            "after": _label(self.after),
        }

    def describe(self) -> str:
        before, after = _label(self.before) or "none", _label(self.after) or "none"
        return f"{self.principal} on {self.target}: {before} -> {after}"


@dataclass(frozen=True, slots=True)
class _Step:
    change: PlannedChange
    target: Target
    #: The principal as the change takes it.
    ref: Principal | WindmillPrincipal


@dataclass(slots=True)
class Plan:
    changes: list[PlannedChange] = field(default_factory=list)
    _steps: list[_Step] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict[str, list[dict[str, str | None]]]:
        return {"changes": [c.to_dict() for c in self.changes]}

    def add(self, step: _Step) -> None:
        self.changes.append(step.change)
        self._steps.append(step)


@dataclass(frozen=True, slots=True)
class RefusedChange:
    change: PlannedChange
    reason: str


@dataclass(slots=True)
class ApplyReport:
    applied: list[PlannedChange] = field(default_factory=list)
    refused: RefusedChange | None = None
    not_attempted: list[PlannedChange] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.refused is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": [c.to_dict() for c in self.applied],
            "refused": None
            if self.refused is None
            else {**self.refused.change.to_dict(), "reason": self.refused.reason},
            "not_attempted": [c.to_dict() for c in self.not_attempted],
        }


class _Clients:
    """One Windmill client per instance for a whole plan or apply run."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.open: dict[str, WindmillClient] = {}

    def for_target(self, where: WindmillTarget) -> WindmillClient:
        name = where.instance.name
        if name not in self.open:
            self.open[name] = self.stack.enter_context(windmill_write.open_client(where.instance))
        return self.open[name]


def plan_layout(ctx: Context, path: Path) -> Plan:
    """Every grant to add, change or remove so that the targets the file names hold what it says."""
    layout = read_layout(path)
    with ExitStack() as stack:
        return _plan(ctx, layout, _Clients(stack))


def _plan(ctx: Context, layout: Layout, clients: _Clients) -> Plan:
    plan = Plan()
    live: list[tuple[TargetRef, WindmillTarget, LiveAcl]] = []
    local: list[tuple[Target, tuple[LayoutGrant, ...]]] = []
    with ctx.engine.connect() as conn:
        for where, wanted in layout.targets():
            if not _linked(conn, where.workspace):
                local.append((where, wanted))
                continue
            ref = _existing(conn, where)
            linked = windmill_write.windmill_target(conn, ref)
            assert linked is not None
            if not linked.is_folder and any(g.role is Role.ADMIN for g in wanted):
                raise BadInput(
                    f"{where}: Windmill items have no admin role; grant admin on the folder,"
                    " or writer on the item"
                )
            live.append((ref, linked, windmill_write.read_live(clients.for_target(linked), linked)))
    if live and not ctx.read_only:
        # The live reads become the store's view of these targets: what apply compares with.
        with write_transaction(ctx.engine) as conn:
            for _ref, target, acl in live:
                windmill_write.mirror(conn, target, acl.roles())
    with ctx.engine.connect() as conn:
        wanted_of = dict(layout.targets())
        for ref, _where, acl in live:
            _plan_linked(conn, plan, ref, acl, wanted_of[ref.target])
        for where, wanted in local:
            _plan_local(conn, plan, where, wanted)
    return plan


def _linked(conn: Connection, workspace: str) -> bool:
    return windmill_store.workspace_instance(conn, workspace) is not None


def _existing(conn: Connection, where: Target) -> TargetRef:
    """The target's folder on a linked workspace: groupwarden does not create Windmill folders."""
    try:
        return resolve.target_in(conn, where)
    except NotFound:
        raise NotFound(
            f"no folder {where.folder!r} in linked workspace {where.workspace!r}: create it in Windmill,"
            " then pull; groupwarden does not create Windmill folders"
        ) from None


def _plan_linked(
    conn: Connection, plan: Plan, ref: TargetRef, acl: LiveAcl, wanted: tuple[LayoutGrant, ...]
) -> None:
    current = acl.roles()
    shown = str(ref)
    desired: dict[str, tuple[Role, WindmillPrincipal, str]] = {}
    for grant in wanted:
        who = resolve.principal_on(conn, grant.principal, ref)
        assert isinstance(who, WindmillPrincipal)
        if who.owner in desired:
            raise BadInput(
                f"{grant.at}: {grant.principal} is {who.owner} in Windmill, which"
                f" {desired[who.owner][2]} names too; keep one"
            )
        desired[who.owner] = (grant.role, who, grant.principal)
    for owner, (role, who, _text) in desired.items():
        if current.get(owner) != role:
            plan.add(_Step(PlannedChange(owner, shown, current.get(owner), role), ref.target, who))
    for owner in sorted(current.keys() - desired.keys()):
        who = WindmillPrincipal(_instance_of(conn, ref), ref.target.workspace, owner)
        plan.add(_Step(PlannedChange(owner, shown, current[owner], None), ref.target, who))


def _instance_of(conn: Connection, ref: TargetRef) -> str:
    found = windmill_store.workspace_instance(conn, ref.target.workspace)
    assert found is not None
    return found.name


def _plan_local(conn: Connection, plan: Plan, where: Target, wanted: tuple[LayoutGrant, ...]) -> None:
    folder = layout_store.folder_id(conn, where.workspace, where.folder)
    ref = None if folder is None else TargetRef(folder, where)
    current: dict[str, tuple[Role, Principal]] = {}
    if ref is not None:
        for listing in grants_store.grants_on(conn, ref, include_items=True):
            if listing.target.item_path == where.item_path:
                current[listing.principal.key] = (listing.role, listing.principal)
    desired: dict[str, tuple[Role, Principal, str]] = {}
    for grant in wanted:
        who = resolve.principal_in(conn, grant.principal)
        if who.key in desired:
            raise BadInput(f"{grant.at}: {grant.principal} is the same principal as {desired[who.key][2]}")
        desired[who.key] = (grant.role, who, grant.principal)
    shown = str(where)
    for key, (role, who, _text) in desired.items():
        before = current[key][0] if key in current else None
        if before != role:
            plan.add(_Step(PlannedChange(who.principal, shown, before, role), where, who))
    for key in sorted(current.keys() - desired.keys(), key=lambda k: current[k][1].principal):
        role, who = current[key]
        plan.add(_Step(PlannedChange(who.principal, shown, role, None), where, who))


def apply_layout(ctx: Context, path: Path, *, confirm_last_admin: bool = False) -> ApplyReport:
    """Make the changes plan_layout lists, each with the stale check, stopping at the first refusal.

    Local workspaces and folders the file names are created first, as import-layout does.
    """
    layout = read_layout(path)
    ctx.require_writable("applying a layout")
    report = ApplyReport()
    with ExitStack() as stack:
        clients = _Clients(stack)
        plan = _plan(ctx, layout, clients)
        _create_local(ctx, layout)
        for index, step in enumerate(plan._steps):
            try:
                _apply_step(ctx, step, clients, confirm_last_admin)
            except GroupwardenError as exc:
                report.refused = RefusedChange(step.change, str(exc))
                report.not_attempted = [s.change for s in plan._steps[index + 1 :]]
                break
            report.applied.append(step.change)
    return report


def _create_local(ctx: Context, layout: Layout) -> None:
    with ctx.engine.connect() as conn:
        linked = {space.id for space in layout.workspaces if _linked(conn, space.id)}
    for space in layout.workspaces:
        if space.id in linked:
            continue
        add_workspace(ctx, space.id, space.name)
        for folder in space.folders:
            add_folder(ctx, space.id, folder.target.folder, folder.summary)


def _apply_step(ctx: Context, step: _Step, clients: _Clients, confirm_last_admin: bool) -> None:
    change = step.change
    ref = resolve.target(ctx, str(step.target))
    who = step.ref
    if isinstance(who, WindmillPrincipal):
        with ctx.engine.connect() as conn:
            where = windmill_write.windmill_target(conn, ref)
        assert where is not None
        windmill_write.write_through(
            ctx,
            who,
            ref,
            change.after,
            expected=change.before,
            any_role=grants.ANY,
            confirm_last_admin=confirm_last_admin,
            client=clients.for_target(where),
        )
        return
    if change.after is None:
        grants.revoke(ctx, who, ref, expected=change.before, confirm_last_admin=confirm_last_admin)
    else:
        grants.grant(
            ctx, who, ref, change.after, expected=change.before, confirm_last_admin=confirm_last_admin
        )
