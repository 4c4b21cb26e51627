"""The audit chain: each role-change event carries a hash of its own fields and of the event
before it, so an event edited, removed or moved afterwards breaks the chain where it happened.

The encoding is fixed for good: every stored hash depends on it, so it may never change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

# What the first event of a chain links to.
GENESIS = "0" * 64
# The fields of an audit event a hash covers, in the order they are encoded.
CHAINED_FIELDS = (
    "at",
    "actor",
    "actor_host",
    "actor_address",
    "actor_db_role",
    "action",
    "target",
    "principal",
    "before",
    "after",
)


def utc(value: datetime) -> datetime:
    """A stored time in UTC; a time without a zone (SQLite keeps none) is UTC already."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _canonical(value: object) -> object:
    if isinstance(value, datetime):
        return utc(value).isoformat(timespec="microseconds")
    return value


#: Chained only when set, after the others: events without it keep the hashes they were
#: written with.
OPTIONAL_FIELDS = ("applied_to",)


def link_hash(previous: str, fields: Mapping[str, object]) -> str:
    """sha256 over the previous hash and the event's chained fields, as canonical JSON."""
    values = [_canonical(fields[name]) for name in CHAINED_FIELDS]
    values += [[name, fields[name]] for name in OPTIONAL_FIELDS if fields.get(name) is not None]
    body = [previous, values]
    encoded = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    id: int
    prev_hash: str | None
    event_hash: str | None
    fields: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class BrokenLink:
    event_id: int
    problem: str

    def __str__(self) -> str:
        return f"audit event {self.event_id}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ChainCheck:
    events: int
    broken: BrokenLink | None


def check_chain(events: Iterable[ChainedEvent]) -> ChainCheck:
    """Walk the events in id order; return how many there are and the first broken link."""
    expected_prev = GENESIS
    count = 0
    for event in events:
        count += 1
        if event.prev_hash is None or event.event_hash is None:
            return ChainCheck(count, BrokenLink(event.id, "it carries no chain hash"))
        if event.prev_hash != expected_prev:
            problem = (
                "it does not start the chain (an event before it was removed or added)"
                if count == 1
                else "it does not follow the event before it (an event between them was removed,"
                " added or edited)"
            )
            return ChainCheck(count, BrokenLink(event.id, problem))
        if link_hash(event.prev_hash, event.fields) != event.event_hash:
            edited = BrokenLink(event.id, "its content does not match its hash (it was edited)")
            return ChainCheck(count, edited)
        expected_prev = event.event_hash
    return ChainCheck(count, None)
