"""What the Okta and Graph test servers share: a fake clock, fault knobs, the organisation.

The clock is the "short clock" of the throttling tests: the client sleeps on it, which only
moves its time forward, and the servers read their rate-limit windows from the same clock,
so a 429 storm runs in milliseconds while every wait is still honoured and counted.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

START = 1_800_000_000.0


class FakeClock:
    """Time that moves only when someone sleeps on it."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.waits: list[float] = []
        self.lock = threading.Lock()

    def time(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.waits.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds

    @property
    def slept(self) -> float:
        return sum(self.waits)


@dataclass
class Faults:
    """What to break; every request counts, 1-based, in the order the server got them."""

    #: Requests whose path contains this text fail with 500, every time (a permanent failure).
    fail_path: str | None = None
    #: The request number that gets a truncated, non-JSON body.
    malformed: int | None = None
    #: Seconds to wait before answering each request (real time: a slow server).
    delay: float = 0.0
    #: Chance of a 429 on any request, from a generator seeded with storm_seed.
    storm: float = 0.0
    storm_seed: int = 7
    requests: int = 0
    throttled: int = 0
    paths: list[str] = field(default_factory=list)
    _rng: random.Random | None = None

    def roll(self) -> bool:
        if self._rng is None:
            self._rng = random.Random(self.storm_seed)
        return self.storm > 0 and self._rng.random() < self.storm


def json_answer(
    start_response: Callable[..., Any],
    status: str,
    body: Any,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *(headers or [])],
    )
    return [data]


def slow_down(faults: Faults) -> None:
    if faults.delay:
        time.sleep(faults.delay)


# --- one organisation, as every provider would describe it -----------------------------


@dataclass
class Person:
    id: str
    login: str
    display_name: str
    emails: list[str]
    active: bool = True


@dataclass
class Team:
    id: str
    name: str
    description: str | None
    users: list[str]
    groups: list[str] = field(default_factory=list)


def organisation(people: int = 7) -> tuple[list[Person], list[Team]]:
    """A small organisation with accents, CJK, an inactive user, an empty group; no nesting.

    No nesting because Okta groups cannot nest; the Graph tests add a nested group apart.
    people above 7 adds plain users to 'everyone', enough to need several pages.
    """
    persons = [
        Person("u01", "alice@corp.test", "Alice Martin", ["alice@corp.test", "alice@home.test"]),
        Person("u02", "bob@corp.test", "Bob Stone", ["bob@corp.test"], active=False),
        Person("u03", "chloe@corp.test", "Chloé Durand", ["chloe@corp.test"]),
        Person("u04", "yuki@corp.test", "田中 由紀", ["yuki@corp.test"]),
        Person("u05", "dan@corp.test", "Dan Ng", ["dan@corp.test"]),
        Person("u06", "erin@corp.test", "Erin O'Neil", ["erin@corp.test"]),
        Person("u07", "farid@corp.test", "Farid Haddad", ["farid@corp.test"]),
    ]
    for n in range(8, people + 1):
        persons.append(Person(f"u{n:02d}", f"user{n}@corp.test", f"User {n}", [f"user{n}@corp.test"]))
    teams = [
        Team("g01", "eng", "Engineering", ["u01", "u05", "u06"]),
        Team("g02", "eng-oncall", None, ["u02", "u06"]),
        Team("g03", "finance", "Money flows", ["u03", "u04"]),
        Team("g04", "empty", None, []),
        Team("g05", "everyone", "All staff", [p.id for p in persons]),
    ]
    return persons, teams
