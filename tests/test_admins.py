"""Who has admin where: nested groups expanded, orphaned grants granting nothing."""

from __future__ import annotations

from dataclasses import replace

from groupwarden.services.admins import AdminRow, admins_everywhere
from groupwarden.services.context import Context
from support import grant, org_snapshot, sync_snapshot


def test_admins_everywhere_expands_nesting_and_skips_orphans(org: Context) -> None:
    grant(org, "g/eng", "prod/finance", "admin")
    grant(org, "u/chloé", "prod/infra", "admin")
    grant(org, "g/finance", "prod/infra", "admin")
    grant(org, "g/cycle-a", "prod/infra", "writer")
    # finance leaves upstream: its grant is orphaned and must make nobody an admin.
    snapshot = org_snapshot()
    sync_snapshot(org, replace(snapshot, groups=[g for g in snapshot.groups if g.upstream_id != "g-fin"]))

    assert admins_everywhere(org) == [
        AdminRow("prod/finance", "alice", True, "admin via g/eng, granted on prod/finance"),
        AdminRow("prod/finance", "bob", True, "admin via g/eng ⊃ g/eng-oncall, granted on prod/finance"),
        AdminRow("prod/finance", "dan", False, "admin via g/eng ⊃ g/eng-oncall, granted on prod/finance"),
        AdminRow("prod/infra", "chloé", True, "admin via u/chloé (direct grant), granted on prod/infra"),
    ]


def test_admins_everywhere_agrees_with_who_can(org: Context) -> None:
    from groupwarden.domain.roles import Role
    from support import who_can

    grant(org, "g/cycle-a", "prod/finance", "admin")
    grant(org, "u/yuki", "prod/finance", "admin")
    grant(org, "g/eng", "prod/infra", "admin")
    expected = [
        AdminRow(target, u.user_name, u.active, u.explanation)
        for target in ("prod/finance", "prod/infra")
        for u in who_can(org, target, minimum=Role.ADMIN)
    ]
    assert sorted(admins_everywhere(org), key=str) == sorted(expected, key=str)
