"""Look-alike names: mixed scripts and UTS #39 skeletons, from the Unicode data."""

from __future__ import annotations

import pytest

from groupwarden.domain.lookalike import is_mixed_script, is_suspicious, lookalikes, skeleton


@pytest.mark.parametrize(
    "name",
    [
        "admins",
        "eng-oncall_2",
        "Data Science",
        "数据组",
        "データ基盤",
        "데이터팀",
        "ä-team",
        "Ωμέγα",
        "営業部 (Sales JP)",
    ],
)
def test_ordinary_names_are_not_mixed(name: str) -> None:
    assert not is_mixed_script(name)


@pytest.mark.parametrize("name", ["аdmins", "pаypal", "Ωmega-team", "eng\u0430"])
def test_names_mixing_scripts_are_flagged(name: str) -> None:
    assert is_mixed_script(name)


def test_a_cyrillic_a_reads_like_a_latin_a() -> None:
    assert skeleton("аdmins") == skeleton("admins")
    assert skeleton("admins") != skeleton("admin")


def test_digits_and_letters_that_look_alike_share_a_skeleton() -> None:
    assert skeleton("O0") == skeleton("00") == skeleton("OO")
    assert skeleton("modern") == skeleton("rnodern")
    assert skeleton("l1I") == skeleton("lll")


def test_lookalikes_names_every_member_of_a_colliding_pair_and_only_those() -> None:
    names = ["admins", "аdmins", "eng", "OPS", "0PS", "ops", "finance"]
    assert lookalikes(names) == {"admins", "аdmins", "OPS", "0PS"}
    assert lookalikes(["admins", "admins"]) == set()


def test_suspicious_is_either_rule() -> None:
    marked = lookalikes(["OPS", "0PS"])
    assert is_suspicious("0PS", marked)
    assert is_suspicious("аbc", set())
    assert not is_suspicious("eng", marked)
