"""Generate organisation.json, the demo's directory: users, groups and nested memberships.

Deterministic: the same seed always writes the same file, so the demo and its tests see
the same organisation. No network. Run it from anywhere:

    python assets/demo/make_organisation.py
"""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path
from typing import Any

SEED = 20240611
INACTIVE_SHARE = 0.08
DOMAIN = "example.com"
ALIAS_DOMAIN = "example.org"

# (first names, last names) per region; the userName is the ASCII fold of "first.last".
WESTERN = {
    "fr": (
        [
            "Amélie",
            "Hélène",
            "Jérôme",
            "François",
            "Zoë",
            "Maëlle",
            "Loïc",
            "Benoît",
            "Céline",
            "Clément",
            "Léa",
            "Théo",
            "Noémie",
            "Gaëlle",
            "Aurélien",
            "Élodie",
            "Rémi",
            "Anaïs",
            "Cécile",
            "Inès",
        ],
        [
            "Dubois",
            "Lefèvre",
            "Girard",
            "Mercier",
            "Rousseau",
            "Boucher",
            "Lemaître",
            "Gauthier",
            "Béranger",
            "Fontaine",
            "Chevalier",
            "Moreau",
            "Faure",
            "Brunet",
            "Lécuyer",
            "Delacroix",
        ],
    ),
    "de": (
        [
            "Jürgen",
            "Jörg",
            "Günther",
            "Käthe",
            "Bärbel",
            "Lukas",
            "Anja",
            "Matthias",
            "Sören",
            "Ulrike",
            "Jonas",
            "Lena",
            "Björn",
            "Mareike",
            "Tobias",
            "Franziska",
        ],
        [
            "Müller",
            "Schäfer",
            "Weiß",
            "Größmann",
            "Köhler",
            "Bäcker",
            "Schröder",
            "Krämer",
            "Hoffmann",
            "Fuß",
            "Jäger",
            "Vogel",
            "Neumann",
            "Zimmermann",
        ],
    ),
    "nordic": (
        [
            "Åsa",
            "Søren",
            "Bjørn",
            "Øystein",
            "Lærke",
            "Märta",
            "Håkon",
            "Sigrún",
            "Eirik",
            "Ingrid",
            "Astrid",
            "Jónas",
            "Freja",
            "Mikael",
        ],
        [
            "Løvås",
            "Sjöberg",
            "Lindqvist",
            "Åkesson",
            "Jørgensen",
            "Ødegård",
            "Nyström",
            "Hægstad",
            "Dahl",
            "Sigurðsson",
            "Björklund",
            "Holm",
        ],
    ),
    "es": (
        [
            "José",
            "María",
            "Begoña",
            "Íñigo",
            "Lucía",
            "Álvaro",
            "Jesús",
            "Sofía",
            "Raúl",
            "Nuria",
            "Ramón",
            "Inés",
            "Martín",
            "Pilar",
        ],
        [
            "Núñez",
            "Peña",
            "Muñoz",
            "Ibáñez",
            "Álvarez",
            "García",
            "Hernández",
            "Martínez",
            "Gómez",
            "Sánchez",
            "Ortiz",
            "Castaño",
        ],
    ),
    "en": (
        [
            "Olivia",
            "James",
            "Amara",
            "Noah",
            "Priya",
            "Liam",
            "Grace",
            "Ethan",
            "Chloe",
            "Samuel",
            "Hannah",
            "Daniel",
            "Aisha",
            "Oscar",
            "Ruby",
            "Kwame",
        ],
        [
            "Smith",
            "Johnson",
            "Brown",
            "Taylor",
            "Wilson",
            "Davies",
            "Evans",
            "Walker",
            "Okafor",
            "Patel",
            "O'Brien",
            "Campbell",
            "Hughes",
            "Murphy",
        ],
    ),
}

# (romaji, kanji): a Japanese user is "given.family" by userName, "FAMILY GIVEN" in kanji.
JP_FAMILY = [
    ("tanaka", "田中"),
    ("suzuki", "鈴木"),
    ("sato", "佐藤"),
    ("takahashi", "高橋"),
    ("watanabe", "渡辺"),
    ("ito", "伊藤"),
    ("yamamoto", "山本"),
    ("nakamura", "中村"),
    ("kobayashi", "小林"),
    ("kato", "加藤"),
]
JP_GIVEN = [
    ("yuki", "由紀"),
    ("haruto", "陽翔"),
    ("aoi", "葵"),
    ("ren", "蓮"),
    ("sakura", "さくら"),
    ("takumi", "拓海"),
    ("hina", "陽菜"),
    ("kenji", "健二"),
    ("mei", "芽衣"),
    ("daiki", "大輝"),
]
# (pinyin, hanzi): a Chinese user is "given.family" by userName, "FAMILYGIVEN" in hanzi.
CN_FAMILY = [("zhang", "张"), ("wang", "王"), ("li", "李"), ("liu", "刘"), ("chen", "陈"), ("zhao", "赵")]
CN_GIVEN = [
    ("wei", "伟"),
    ("fang", "芳"),
    ("jing", "静"),
    ("lei", "磊"),
    ("yang", "洋"),
    ("xiuying", "秀英"),
    ("jun", "军"),
    ("min", "敏"),
]

# How many users each region gets; the long names below come on top.
REGION_COUNTS = {"fr": 55, "de": 45, "nordic": 35, "es": 40, "en": 70, "jp": 26, "cn": 25}

# Names long enough to break a careless layout, each (userName, displayName).
LONG_NAMES = [
    ("maria.fernandez-villaverde", "María de los Ángeles Fernández-Villaverde y Rodríguez de la Fuente"),
    (
        "wolfgang.von-hohenzollern-sigmaringen",
        "Wolfgang Maximilian Freiherr von Hohenzollern-Sigmaringen-Württemberg-Großherzogtum",
    ),
    ("kristoffer.haraldsen-bjornstjerne", "Kristoffer Æbelø Haraldsen-Bjørnstjerne Ødegård-Lindqvist"),
    ("saburozaemon.teshigawara", "勅使河原 三郎左衛門右衛門之助"),
]

# Characters NFKD does not split into a base letter and an accent.
FOLD = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ð": "d", "Ð": "D", "'": ""})

# key -> displayName. Keys are local references only; the SCIM server assigns the ids.
GROUPS = {
    "all-staff": "all-staff",
    "engineering": "engineering",
    "eng-platform": "eng-platform",
    "eng-oncall": "eng-oncall",
    "eng-backend": "eng-backend",
    "eng-frontend": "eng-frontend",
    "eng-mobile": "eng-mobile",
    "eng-munich": "Entwicklung München",
    "sre": "sre",
    "incident-response": "incident-response",
    "release-managers": "release-managers",
    "dba": "dba",
    "security": "security",
    "finance": "finance",
    "finance-ap": "finance-ap",
    "finance-ar": "finance-ar",
    "payroll": "payroll",
    "sales": "sales",
    "sales-emea": "sales-emea",
    "sales-amer": "sales-amer",
    "sales-apac": "sales-apac",
    "sales-jp": "営業部 (Sales JP)",
    "support": "support",
    "support-tier1": "support-tier1",
    "support-tier2": "support-tier2",
    "support-se": "Kundtjänst Sverige",
    "data-science": "data-science",
    "data-engineering": "data-engineering",
    "data-platform-cn": "数据平台组",
    "quality": "Équipe Qualité",
    "people-ops": "people-ops",
    "legal": "legal",
    "marketing": "marketing",
    "executives": "executives",
    "contractors": "contractors",
    "admins-markup": "[bold red]admins[/]",
    "legacy-vpn": "legacy-vpn-users",
}

# parent -> nested child groups.
NESTED = {
    "all-staff": [
        "engineering",
        "finance",
        "sales",
        "support",
        "security",
        "data-science",
        "people-ops",
        "legal",
        "marketing",
        "quality",
    ],
    "engineering": ["eng-platform", "eng-backend", "eng-frontend", "eng-mobile", "eng-munich"],
    "eng-platform": ["eng-oncall", "sre", "dba"],
    "finance": ["finance-ap", "finance-ar", "payroll"],
    "sales": ["sales-emea", "sales-amer", "sales-apac"],
    "sales-apac": ["sales-jp"],
    "support": ["support-tier1", "support-tier2"],
    "support-tier1": ["support-se"],
    "data-science": ["data-engineering"],
    "data-engineering": ["data-platform-cn"],
    # The deliberate cycle: each of these two groups contains the other.
    "sre": ["incident-response"],
    "incident-response": ["sre"],
}

# Home department of each user: (group, head count), filled region by region where a
# group belongs to one (the Munich team is German), then from everyone left.
REGIONAL_TEAMS = {"eng-munich": ("de", 12), "sales-jp": ("jp", 14), "support-se": ("nordic", 10)}
REGIONAL_TEAMS |= {"data-platform-cn": ("cn", 12), "quality": ("fr", 12)}
HOME_TEAMS = {
    "eng-platform": 18,
    "eng-backend": 30,
    "eng-frontend": 22,
    "eng-mobile": 12,
    "security": 8,
    "finance-ap": 8,
    "finance-ar": 7,
    "payroll": 5,
    "sales-emea": 18,
    "sales-amer": 16,
    "sales-apac": 6,
    "support-tier1": 20,
    "support-tier2": 12,
    "data-science": 10,
    "data-engineering": 10,
    "people-ops": 8,
    "legal": 5,
    "marketing": 12,
}


def fold(text: str) -> str:
    """ASCII lowercase form of a name, for userNames and email addresses."""
    plain = unicodedata.normalize("NFKD", text.translate(FOLD))
    return "".join(ch for ch in plain if ch.isascii() and not unicodedata.combining(ch)).lower()


def make_people(rng: random.Random) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = []
    taken: set[str] = set()

    def add(user_name: str, display_name: str, region: str) -> None:
        base = user_name.replace(" ", "-")
        user_name, n = base, 2
        while user_name in taken:
            user_name, n = f"{base}{n}", n + 1
        taken.add(user_name)
        people.append({"userName": user_name, "displayName": display_name, "region": region})

    for region, count in REGION_COUNTS.items():
        for _ in range(count):
            if region == "jp":
                (fr, fk), (gr, gk) = rng.choice(JP_FAMILY), rng.choice(JP_GIVEN)
                add(f"{gr}.{fr}", f"{fk} {gk}", region)
            elif region == "cn":
                (fr, fk), (gr, gk) = rng.choice(CN_FAMILY), rng.choice(CN_GIVEN)
                add(f"{gr}.{fr}", f"{fk}{gk}", region)
            else:
                firsts, lasts = WESTERN[region]
                first, last = rng.choice(firsts), rng.choice(lasts)
                add(f"{fold(first)}.{fold(last)}", f"{first} {last}", region)
    for user_name, display_name in LONG_NAMES:
        add(user_name, display_name, "long")
    return people


def make_users(rng: random.Random, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    inactive = set(rng.sample(range(len(people)), round(len(people) * INACTIVE_SHARE)))
    users = []
    for n, person in enumerate(people):
        name = person["userName"]
        emails = [f"{name}@{DOMAIN}"]
        if rng.random() < 0.3:
            first, _, last = name.partition(".")
            emails.append(f"{first[:1]}.{last}@{ALIAS_DOMAIN}")
        users.append(
            {
                "key": name,
                "userName": name,
                "displayName": person["displayName"],
                "emails": emails,
                "active": n not in inactive,
            }
        )
    return users


def make_groups(rng: random.Random, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    members: dict[str, list[str]] = {key: [] for key in GROUPS}
    unplaced = [p["userName"] for p in people]
    rng.shuffle(unplaced)

    for team, (region, count) in REGIONAL_TEAMS.items():
        local = [p["userName"] for p in people if p["region"] == region and p["userName"] in unplaced]
        chosen = rng.sample(local, count)
        members[team] = sorted(chosen)
        unplaced = [u for u in unplaced if u not in chosen]
    for team, count in HOME_TEAMS.items():
        chosen, unplaced = unplaced[:count], unplaced[count:]
        members[team] = sorted(chosen)
    # Whoever is left has no team yet: the contractors.
    members["contractors"] = sorted(unplaced)

    # Second hats: groups drawn from people who already sit in a department.
    def pick(groups: list[str], count: int) -> list[str]:
        pool = sorted({u for g in groups for u in members[g]})
        return sorted(rng.sample(pool, count))

    members["eng-oncall"] = pick(["eng-platform", "eng-backend"], 8)
    members["sre"] = pick(["eng-platform"], 5)
    members["incident-response"] = pick(["security", "support-tier2"], 4)
    members["release-managers"] = pick(["eng-backend", "eng-frontend", "eng-mobile"], 4)
    members["dba"] = pick(["eng-backend", "data-engineering"], 3)
    members["executives"] = [
        rng.choice(members[g]) for g in ("eng-backend", "finance-ap", "sales-emea", "legal")
    ]
    # The long-named CEO and CTO sit at the top, outside any team.
    members["executives"].append(LONG_NAMES[0][0])
    members["all-staff"] = [LONG_NAMES[0][0]]
    members["engineering"] = [LONG_NAMES[1][0]]
    members["admins-markup"] = pick(["security"], 3)
    members["sales-jp"].append(LONG_NAMES[3][0])
    members["support-se"].append(LONG_NAMES[2][0])
    # legacy-vpn-users stays empty: a group nobody is in, still synced and grantable.

    groups = []
    for key, display_name in GROUPS.items():
        listed: list[dict[str, str]] = [{"user": u} for u in sorted(set(members[key]))]
        listed += [{"group": g} for g in NESTED.get(key, [])]
        groups.append({"key": key, "displayName": display_name, "members": listed})
    return groups


def make_organisation(seed: int = SEED) -> dict[str, Any]:
    rng = random.Random(seed)
    people = make_people(rng)
    return {"users": make_users(rng, people), "groups": make_groups(rng, people)}


def main() -> None:
    org = make_organisation()
    out = Path(__file__).with_name("organisation.json")
    out.write_text(json.dumps(org, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(org['users'])} users, {len(org['groups'])} groups")


if __name__ == "__main__":
    main()
