"""Deterministic data for the UI tests: a small organisation with hostile names, fixed times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from groupwarden.config import Settings
from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.services import layout
from groupwarden.services.audit import record_run
from groupwarden.services.context import Actor, Context
from groupwarden.services.reconcile import DeletionGuard, reconcile
from groupwarden.services.windmill import WindmillLink, pull
from groupwarden.store.db import write_transaction
from support import grant

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
SYNCED = NOW - timedelta(hours=2)
LONG = "platform-reliability-engineering-emea-and-apac-primary-on-call-rotation-with-a-very-long-name"
INJECT = "[bold red]admins[/]"
ESCAPE = "\x1b[31mevil\x1b[0m"


def fixed_clock() -> datetime:
    return NOW


def open_context(db: Path, *, read_only: bool = False) -> Context:
    ctx = Context.open(str(db), read_only=read_only)
    ctx.actor = Actor("alice", "bastion", None)
    ctx.clock = fixed_clock
    return ctx


def users() -> list[SourceUser]:
    return [
        SourceUser("u1", "ana", "Ana Núñez", ["ana@example.org"]),
        SourceUser("u2", "bo", "Bo Ødegård", ["bo@example.org"]),
        SourceUser("u3", "chen", "陈伟 Chen Wei", ["chen@example.cn"]),
        SourceUser("u4", "dana", "Dana Inactive", ["dana@example.org"], active=False),
        SourceUser("u5", "eve", "[blink]Eve[/blink]", ["=HYPERLINK(1)@example.org"]),
        SourceUser("u6", "farid", "Farid Haddad", ["farid@example.org"]),
        SourceUser("u7", "gus", LONG, ["gus@" + "x" * 60 + ".org"]),
    ]


def snapshot(*, with_legacy: bool) -> Snapshot:
    groups = [
        SourceGroup("g1", "eng", "Engineering", ["u1", "u2"], ["g2"]),
        SourceGroup("g2", "eng-oncall", "On call", ["u3"]),
        SourceGroup("g3", INJECT, "markup in a name", ["u5"]),
        SourceGroup("g4", ESCAPE, "escape sequence in a name", ["u4"]),
        SourceGroup("g5", LONG, "a very long name", ["u7", "u6"]),
        SourceGroup("g6", "ops", "Operations", ["u6"]),
        SourceGroup("g7", "empty-group", "nobody yet"),
    ]
    if with_legacy:
        groups.append(SourceGroup("g8", "legacy", "removed upstream later", ["u1"]))
    return Snapshot(users(), groups)


def _sync(ctx: Context, snap: Snapshot, at: datetime) -> None:
    with write_transaction(ctx.engine) as conn:
        diff = reconcile(
            conn,
            snap,
            source_name="corp",
            source_kind="scim",
            source_url="http://127.0.0.1/scim/v2",
            guard=DeletionGuard(allow=True),
            write=True,
            now=at,
        )
        record_run(
            conn,
            source_name="corp",
            actor=ctx.actor,
            now=at,
            started_at=at - timedelta(seconds=3),
            outcome="ok",
            diff=diff.to_dict(),
        )


def fill(ctx: Context) -> None:
    """Two syncs (the second removes g/legacy, orphaning its grant), workspaces, folders, grants."""
    _sync(ctx, snapshot(with_legacy=True), SYNCED - timedelta(days=1))
    layout.add_workspace(ctx, "prod", "Production")
    layout.add_folder(ctx, "prod", "finance", "ledgers and payroll")
    layout.add_folder(ctx, "prod", "hr", "people data")
    layout.add_workspace(ctx, "dev")
    layout.add_folder(ctx, "dev", "sandbox", "anything goes")
    layout.add_folder(ctx, "dev", "empty")
    grant(ctx, "u/ana", "prod/finance", "admin")
    grant(ctx, "g/eng", "prod/finance", "writer")
    grant(ctx, "g/ops", "prod/finance", "viewer")
    grant(ctx, f"g/{INJECT}", "prod/hr", "admin")
    grant(ctx, "g/eng", "dev/sandbox", "admin")
    grant(ctx, f"g/{LONG}", "dev/sandbox", "viewer")
    grant(ctx, "g/legacy", "prod/hr", "writer")
    _sync(ctx, snapshot(with_legacy=False), SYNCED)
    with write_transaction(ctx.engine) as conn:
        record_run(
            conn,
            source_name="corp",
            actor=ctx.actor,
            now=SYNCED + timedelta(minutes=30),
            started_at=SYNCED + timedelta(minutes=29),
            outcome="failed",
            error="corp: GET /Groups answered 503 three times; sync aborted, nothing was changed",
        )


def settings_for(tmp: Path) -> Settings:
    return Settings(path=tmp / "config.toml")


WINDMILL_TOKEN_ENV = "GW_TUI_WINDMILL_TOKEN"
WINDMILL = "corp-wm"
# A deleted group's grant, named with markup: the drift tab must show it literally.
GONE = "[red]gone[/]"


def windmill_standin() -> WindmillStandIn:
    """A stand-in instance on 127.0.0.1, to be pulled as corp-wm, with one drift of each kind.

    Its groups and users follow the organisation above (hostile names too): g/eng lacks bo and
    holds an outsider, g/night_shift has no IdP group, g/GONE and u/ESCAPE name nobody, and
    auto-add brings g/eng's members into workspace wm. The caller sets WINDMILL_TOKEN_ENV to
    standin.superadmin_token before pulling (see pull_windmill) and stops the stand-in.
    """
    standin = WindmillStandIn()
    standin.add_instance_group("eng", ["ana@example.org", "chen@example.cn", "zed@example.org"])
    inject = standin.add_instance_group(INJECT, ["=HYPERLINK(1)@example.org"])
    standin.add_instance_group(ESCAPE, ["dana@example.org"])
    standin.add_instance_group("night shift", ["farid@example.org"])
    standin.add_workspace("wm", "Windmill ws")
    for name, email in (
        ("ana", "ana@example.org"),
        ("bo", "bo@example.org"),
        ("chen", "chen@example.cn"),
        ("farid", "farid@example.org"),
        ("eve", "=HYPERLINK(1)@example.org"),
    ):
        standin.add_user("wm", name, email, admin=name == "ana")
    standin.add_folder(
        "wm",
        "deploys",
        ["g/eng"],
        {"u/bo": True, f"g/{inject}": False, f"g/{GONE}": False, f"u/{ESCAPE}": True},
    )
    standin.add_folder("wm", "reports", ["u/ana"], {"g/night_shift": False})
    standin.add_item("wm", "script", "f/deploys/rollout", {f"g/{ESCAPE}": True})
    standin.set_settings(
        "wm", {"auto_invite": {"instance_groups": ["eng"], "instance_groups_roles": {"eng": "developer"}}}
    )
    return standin


def pull_windmill(ctx: Context, standin: WindmillStandIn) -> None:
    pull(ctx, WindmillLink(WINDMILL, standin.url, token_env=WINDMILL_TOKEN_ENV, standin=True))
