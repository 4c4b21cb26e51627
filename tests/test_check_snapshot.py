"""check_snapshot: set checks for speed, and still the first offender named when one fails."""

from __future__ import annotations

import pytest

from groupwarden.domain.directory import Snapshot, SourceGroup, SourceUser, check_snapshot
from groupwarden.domain.errors import SyncError


def users(*ids: str) -> list[SourceUser]:
    return [SourceUser(uid, f"name-{n}") for n, uid in enumerate(ids)]


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (Snapshot(users("u1", "", "u2"), []), "a user without an id ('name-1')"),
        (Snapshot(users("u1", "u2", "u1", "u2"), []), "user id 'u1' listed twice"),
        (Snapshot([], [SourceGroup("g1", "a"), SourceGroup("", "b")]), "a group without an id ('b')"),
        (Snapshot([], [SourceGroup("g1", "a"), SourceGroup("g1", "b")]), "group id 'g1' listed twice"),
        (
            Snapshot(users("u1"), [SourceGroup("g1", "a", user_members=["u1", "x", "y"])]),
            "group 'a' names user 'x', which the user listing does not contain",
        ),
        (
            Snapshot(
                users("u1"),
                [SourceGroup("g1", "a", group_members=["z"]), SourceGroup("g2", "b", user_members=["x"])],
            ),
            "group 'a' names group 'z', which the group listing does not contain",
        ),
    ],
)
def test_first_offender_is_named(snapshot: Snapshot, expected: str) -> None:
    with pytest.raises(SyncError) as caught:
        check_snapshot(snapshot, "src")
    assert str(caught.value).startswith(f"src: {expected}")
    assert str(caught.value).endswith("sync aborted")


def test_consistent_snapshot_passes() -> None:
    groups = [SourceGroup("g1", "a", user_members=["u1", "u2"], group_members=["g2"]), SourceGroup("g2", "b")]
    check_snapshot(Snapshot(users("u1", "u2"), groups), "src")
