"""Code run in separate processes by the concurrency and crash tests.

Run as `python tests/workers.py KIND DB_URL [ARGS]`; prints one JSON line of results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser
from groupwarden.domain.errors import StaleView
from groupwarden.domain.roles import Role
from groupwarden.services.context import Actor, Context
from support import folder_grants, grant

ROLES = [Role.VIEWER, Role.WRITER, Role.ADMIN]


def big_snapshot(users: int, generation: int) -> Snapshot:
    """A directory big enough for a reconcile to take a while; generation 2 moves things."""
    people = [SourceUser(f"u{i}", f"user{i:06}", f"User {i}", [f"user{i}@corp.test"]) for i in range(users)]
    groups = []
    for g in range(200):
        # Each user is in ten groups; generation 2 moves a quarter of the groups' members.
        shift = 1 if generation == 2 and g % 4 == 0 else 0
        members = [f"u{i}" for i in range((g + shift) % 20, users, 20)]
        name = f"team{g:03}" if generation == 1 or g % 3 else f"team{g:03}-renamed"
        groups.append(SourceGroup(f"g{g}", name, user_members=members))
    groups.append(SourceGroup("g-eng", "eng", user_members=[f"u{i}" for i in range(0, users, 7)]))
    return Snapshot(users=people, groups=groups)


class StaticSource:
    kind = "scim"
    url = "http://idp.test/scim"

    def __init__(self, snapshot: Snapshot, name: str = "corp") -> None:
        self.snapshot = snapshot
        self.name = name

    def fetch(self, progress: object = None) -> Snapshot:
        return self.snapshot


def race_grants(db: str, worker: str, changes: int, target: str = "prod/finance") -> dict[str, int]:
    """Change g/eng's role on target again and again, each time from what it just saw."""
    ctx = Context.open(db)
    ctx.actor = Actor(worker, "race", None)
    done = stale = 0
    for i in range(changes):
        seen = {g.principal: g.role for g in folder_grants(ctx, target)}.get("g/eng")
        wanted = ROLES[(i + len(worker)) % 3] if seen is None else ROLES[(ROLES.index(seen) + 1) % 3]
        try:
            grant(ctx, "g/eng", target, wanted, expected=seen, confirm_last_admin=True)
            done += 1
        except StaleView:
            stale += 1
    return {"done": done, "stale": stale}


def sync(db: str, users: int, generation: int) -> dict[str, object]:
    from groupwarden.services.reconcile import DeletionGuard
    from groupwarden.services.sync import run_sync

    ctx = Context.open(db)
    print(json.dumps({"ready": True}), flush=True)
    report = run_sync(ctx, StaticSource(big_snapshot(users, generation)), guard=DeletionGuard(allow=True))
    return {"empty": report.diff.is_empty(), "summary": report.diff.summary()}


def grant_forever(db: str) -> None:
    ctx = Context.open(db)
    print(json.dumps({"ready": True}), flush=True)
    i = 0
    while True:
        grant(ctx, f"g/team{i % 50:03}", "prod/finance", ROLES[i % 3], confirm_last_admin=True)
        i += 1


def main() -> None:
    kind, db, *args = sys.argv[1:]
    if kind == "race":
        result: object = race_grants(db, args[0], int(args[1]), *args[2:])
    elif kind == "sync":
        result = sync(db, int(args[0]), int(args[1]))
    elif kind == "grant-forever":
        grant_forever(db)
        return
    else:
        raise SystemExit(f"unknown worker {kind}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
