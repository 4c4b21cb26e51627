"""A deterministic, seeded generator of a large directory for the benchmarks.

One call builds the whole organisation in memory (users, groups with their direct and
nested members, workspaces, folders and grants); from it come a groupwarden Snapshot
and the SCIM ListResponse pages a SCIM server would send for /Users and /Groups.

    python benchmarks/generate.py                 # the issue's sizes, pages to benchmarks/data/
    python benchmarks/generate.py --users 10000 --groups 1000

Shape (the defaults): 100k users, 10k groups, ~1M direct memberships of which a few
groups hold 50k members each, one user who is a direct member of 200 groups, a few
nested groups (a chain, a cycle, children inside a big group), 50 workspaces of 100
folders and 20k grants. The same seed always gives the same directory, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser

DATA_DIR = Path(__file__).resolve().parent / "data"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
# Bump when the generated shape changes, so cached pages under data/ are rebuilt.
FORMAT_VERSION = 1

GIVEN = [
    "Ada",
    "Alan",
    "Barbara",
    "Chen",
    "Dana",
    "Emeka",
    "Farah",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Xavier",
    "Yara",
    "Zoe",
]
FAMILY = [
    "Andersen",
    "Bauer",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lee",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Umarov",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
]
TEAMS = [
    "eng",
    "platform",
    "data",
    "finance",
    "legal",
    "sales",
    "support",
    "design",
    "security",
    "infra",
    "mobile",
    "web",
    "ops",
    "hr",
    "research",
    "marketing",
    "qa",
    "billing",
    "growth",
    "identity",
]
BIG_NAMES = ("all-staff", "all-employees", "all-contractors", "all-emea", "all-amer")


@dataclass(frozen=True, slots=True)
class Params:
    users: int = 100_000
    groups: int = 10_000
    memberships: int = 1_000_000
    big_groups: int = 4
    big_size: int = 50_000
    heavy_groups: int = 200
    workspaces: int = 50
    folders: int = 100
    grants: int = 20_000
    seed: int = 20261128

    @classmethod
    def scaled(cls, users: int, groups: int, **overrides: int | None) -> Params:
        """Sizes derived from users and groups (the issue's ratios), then any explicit override."""
        values: dict[str, int] = {
            "users": users,
            "groups": groups,
            "memberships": users * 10,
            "big_groups": max(1, min(4, groups // 50)),
            "big_size": max(1, min(50_000, users // 2)),
            "heavy_groups": max(1, min(200, groups // 4)),
            "workspaces": max(1, min(50, groups // 200)),
            "folders": max(1, min(100, groups // 100)),
            "grants": groups * 2,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def tag(self) -> str:
        return (
            f"v{FORMAT_VERSION}-u{self.users}-g{self.groups}-m{self.memberships}-b{self.big_groups}"
            f"x{self.big_size}-h{self.heavy_groups}-s{self.seed}"
        )


@dataclass(frozen=True, slots=True)
class GrantSpec:
    """A grant by names and upstream ids; the benchmark maps them to cache ids."""

    workspace: str
    folder: str
    item_path: str  # '' for the folder itself
    kind: str  # 'g' or 'u'
    upstream_id: str
    role: str  # 'viewer' | 'writer' | 'admin'


@dataclass(slots=True)
class Directory:
    params: Params
    user_ids: list[str]
    user_names: list[str]
    display_names: list[str]
    emails: list[list[str]]
    active: list[bool]
    group_ids: list[str]
    group_names: list[str]
    # Direct members, as indexes into the user and group lists.
    members: list[list[int]]
    nested: list[list[int]]
    heavy_user: int
    big: list[int]
    workspaces: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    grants: list[GrantSpec] = field(default_factory=list)
    # The folder whose who-can answer covers a big group (and a nested child).
    who_can_target: str = ""

    @property
    def membership_count(self) -> int:
        return sum(len(m) for m in self.members)

    @property
    def nested_count(self) -> int:
        return sum(len(n) for n in self.nested)

    @property
    def heavy_user_name(self) -> str:
        return self.user_names[self.heavy_user]

    def snapshot(self) -> Snapshot:
        """The directory as a groupwarden Snapshot: what a complete fetch would return."""
        users = [
            SourceUser(
                upstream_id=self.user_ids[i],
                user_name=self.user_names[i],
                display_name=self.display_names[i],
                emails=list(self.emails[i]),
                active=self.active[i],
            )
            for i in range(len(self.user_ids))
        ]
        uids, gids = self.user_ids, self.group_ids
        groups = [
            SourceGroup(
                upstream_id=gids[g],
                name=self.group_names[g],
                user_members=[uids[u] for u in self.members[g]],
                group_members=[gids[c] for c in self.nested[g]],
            )
            for g in range(len(gids))
        ]
        return Snapshot(users=users, groups=groups)

    # SCIM rendering ---------------------------------------------------------------------

    def scim_user(self, i: int) -> dict[str, Any]:
        given, family = self.display_names[i].split(" ", 1)
        return {
            "schemas": [USER_SCHEMA],
            "id": self.user_ids[i],
            "userName": self.user_names[i],
            "name": {"givenName": given, "familyName": family, "formatted": self.display_names[i]},
            "displayName": self.display_names[i],
            "emails": [
                {"value": address, "type": "work", "primary": n == 0}
                for n, address in enumerate(self.emails[i])
            ],
            "active": self.active[i],
            "meta": {"resourceType": "User", "location": f"/v2/Users/{self.user_ids[i]}"},
        }

    def scim_group(self, g: int) -> dict[str, Any]:
        members: list[dict[str, str]] = [{"value": self.user_ids[u], "type": "User"} for u in self.members[g]]
        members.extend({"value": self.group_ids[c], "type": "Group"} for c in self.nested[g])
        return {
            "schemas": [GROUP_SCHEMA],
            "id": self.group_ids[g],
            "displayName": self.group_names[g],
            "members": members,
            "meta": {"resourceType": "Group", "location": f"/v2/Groups/{self.group_ids[g]}"},
        }


def generate(params: Params) -> Directory:
    """Build the directory for params; the same params always give the same directory."""
    rng = random.Random(params.seed)
    n_users, n_groups = params.users, params.groups

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    user_ids = [new_id() for _ in range(n_users)]
    display_names: list[str] = []
    user_names: list[str] = []
    emails: list[list[str]] = []
    for i in range(n_users):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        display_names.append(f"{given} {family}")
        login = f"{given.lower()}.{family.lower()}.{i}"
        user_names.append(f"{login}@example.com")
        emails.append([f"{login}@example.com"] + ([f"{login}@corp.example.net"] if i % 7 == 0 else []))
    active = [rng.random() >= 0.02 for _ in range(n_users)]
    heavy = n_users // 3
    user_names[heavy] = "heavy.member@example.com"
    emails[heavy] = ["heavy.member@example.com"]
    active[heavy] = True

    group_ids = [new_id() for _ in range(n_groups)]
    n_big = min(params.big_groups, n_groups)
    big = list(range(n_big))
    group_names = [BIG_NAMES[g] if g < len(BIG_NAMES) else f"all-big-{g}" for g in big]
    group_names += [f"{TEAMS[g % len(TEAMS)]}-{g:05d}" for g in range(n_big, n_groups)]

    members: list[list[int]] = [[] for _ in range(n_groups)]
    big_size = min(params.big_size, n_users)
    for g in big:
        members[g] = sorted(rng.sample(range(n_users), big_size))

    regular = list(range(n_big, n_groups))
    heavy_groups = set(rng.sample(regular, min(params.heavy_groups, len(regular)))) if regular else set()
    remaining = max(0, params.memberships - n_big * big_size - len(heavy_groups))
    if regular:
        # Skewed sizes (a few large teams, many small ones), scaled to the remaining total.
        weights = [min(rng.paretovariate(1.2), 200.0) for _ in regular]
        scale = remaining / sum(weights)
        cap = max(1, min(n_users, big_size // 2 or 1))
        for g, weight in zip(regular, weights, strict=True):
            size = min(cap, max(1, round(weight * scale)))
            chosen = set(rng.sample(range(n_users), size))
            chosen.discard(heavy)
            if g in heavy_groups:
                chosen.add(heavy)
            members[g] = sorted(chosen)

    nested: list[list[int]] = [[] for _ in range(n_groups)]
    if len(regular) >= 12:
        # Small teams inside the first big group, a chain of three, a two-group cycle,
        # and some of the heavy user's groups nested in other teams.
        a, b, c, d, e, f, h, k = rng.sample(regular, 8)
        if big:
            nested[big[0]] += [a, b]
        nested[a].append(c)  # big0 ⊃ a ⊃ c ⊃ d: a chain three deep
        nested[c].append(d)
        nested[e].append(f)  # e ⊃ f ⊃ e: a cycle, which must be tolerated
        nested[f].append(e)
        for child in sorted(heavy_groups)[:5]:
            parent = rng.choice((h, k))
            if parent != child and child not in nested[parent]:
                nested[parent].append(child)
        for _ in range(max(0, min(40, len(regular) // 50))):
            parent, child = rng.sample(regular, 2)
            if child not in nested[parent]:
                nested[parent].append(child)

    directory = Directory(
        params=params,
        user_ids=user_ids,
        user_names=user_names,
        display_names=display_names,
        emails=emails,
        active=active,
        group_ids=group_ids,
        group_names=group_names,
        members=members,
        nested=nested,
        heavy_user=heavy,
        big=big,
    )
    _add_layout(directory, rng)
    return directory


def _add_layout(directory: Directory, rng: random.Random) -> None:
    params = directory.params
    directory.workspaces = [f"ws{w:02d}" for w in range(1, params.workspaces + 1)]
    directory.folders = [f"folder_{f:03d}" for f in range(1, params.folders + 1)]
    targets = [(w, f) for w in directory.workspaces for f in directory.folders]
    roles = ("viewer", "viewer", "viewer", "writer", "writer", "admin")
    seen: set[tuple[str, str, str, str]] = set()
    grants: list[GrantSpec] = []

    def add(spec: GrantSpec) -> None:
        key = (spec.workspace, spec.folder, spec.item_path, spec.kind + spec.upstream_id)
        if key not in seen:
            seen.add(key)
            grants.append(spec)

    # The who-can target: a big group (with nested teams inside it), a team and one user.
    ws, folder = targets[0]
    directory.who_can_target = f"{ws}/{folder}"
    if directory.big:
        add(GrantSpec(ws, folder, "", "g", directory.group_ids[directory.big[0]], "writer"))
    add(GrantSpec(ws, folder, "", "g", directory.group_ids[-1], "viewer"))
    add(GrantSpec(ws, folder, "", "u", directory.user_ids[0], "admin"))
    # The heavy user gets one grant of their own as well as their groups' grants.
    add(
        GrantSpec(targets[-1][0], targets[-1][1], "", "u", directory.user_ids[directory.heavy_user], "writer")
    )
    # The rest: random teams (big groups stay on the who-can target only), some users, some items.
    n_groups = len(directory.group_ids)
    first_regular = len(directory.big) if n_groups > len(directory.big) else 0
    attempts = 0
    while len(grants) < params.grants and attempts < params.grants * 20:
        attempts += 1
        ws, folder = rng.choice(targets)
        item = f"f/{folder}/script_{rng.randrange(20)}" if rng.random() < 0.1 else ""
        if rng.random() < 0.9:
            add(
                GrantSpec(
                    ws,
                    folder,
                    item,
                    "g",
                    directory.group_ids[rng.randrange(first_regular, n_groups)],
                    rng.choice(roles),
                )
            )
        else:
            add(GrantSpec(ws, folder, item, "u", rng.choice(directory.user_ids), rng.choice(roles)))
    directory.grants = grants


# SCIM pages on disk ---------------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def list_page(resources: list[bytes], total: int, start: int) -> bytes:
    """A ListResponse around already-rendered resources (RFC 7644 §3.4.2)."""
    head = _dumps(
        {"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": start, "itemsPerPage": len(resources)}
    )
    return head[:-1] + b',"Resources":[' + b",".join(resources) + b"]}"


def write_scim_pages(directory: Directory, out: Path, page_size: int = 1000) -> Path:
    """Write /Users and /Groups ListResponse pages of page_size to out; return out.

    Files: users-00001.json, ... (startIndex 1, 1+page_size, ...), groups-00001.json, ...,
    and manifest.json (sizes, page size, the heavy user, the who-can target).
    """
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        stale.unlink()
    kinds = (
        ("users", len(directory.user_ids), directory.scim_user),
        ("groups", len(directory.group_ids), directory.scim_group),
    )
    pages: dict[str, int] = {}
    for kind, total, render in kinds:
        count = 0
        for start0 in range(0, max(total, 1), page_size):
            rendered = [_dumps(render(i)) for i in range(start0, min(total, start0 + page_size))]
            (out / f"{kind}-{start0 + 1:08d}.json").write_bytes(list_page(rendered, total, start0 + 1))
            count += 1
        pages[kind] = count
    manifest = {
        "format": FORMAT_VERSION,
        "params": asdict(directory.params),
        "page_size": page_size,
        "users": len(directory.user_ids),
        "groups": len(directory.group_ids),
        "memberships": directory.membership_count,
        "nested": directory.nested_count,
        "pages": pages,
        "heavy_user": directory.heavy_user_name,
        "who_can_target": directory.who_can_target,
    }
    # Written last: its presence means the pages are complete.
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def scim_dir(params: Params, page_size: int) -> Path:
    return DATA_DIR / f"scim-{params.tag()}-p{page_size}"


def ensure_scim_pages(directory: Directory, page_size: int = 1000) -> Path:
    """The page directory for this directory, written unless a complete one is there."""
    out = scim_dir(directory.params, page_size)
    manifest = out / "manifest.json"
    if manifest.exists():
        try:
            if json.loads(manifest.read_text()).get("format") == FORMAT_VERSION:
                return out
        except ValueError:
            pass
    return write_scim_pages(directory, out, page_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=Params().users)
    parser.add_argument("--groups", type=int, default=Params().groups)
    parser.add_argument("--memberships", type=int)
    parser.add_argument("--big-size", type=int)
    parser.add_argument("--seed", type=int, default=Params().seed)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args(argv)
    params = Params.scaled(
        args.users, args.groups, memberships=args.memberships, big_size=args.big_size, seed=args.seed
    )
    began = time.perf_counter()
    directory = generate(params)
    made = time.perf_counter()
    out = write_scim_pages(directory, scim_dir(params, args.page_size), args.page_size)
    written = time.perf_counter()
    size = sum(p.stat().st_size for p in out.glob("*.json"))
    print(
        f"{len(directory.user_ids)} users, {len(directory.group_ids)} groups,"
        f" {directory.membership_count} memberships, {directory.nested_count} nested,"
        f" {len(directory.grants)} grants; generated in {made - began:.1f} s"
    )
    print(f"SCIM pages: {out} ({size / 1e6:.1f} MB, written in {written - made:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
