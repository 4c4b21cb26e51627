"""Look-alike names: a name that mixes scripts, or that reads like another name.

`g/аdmins` (a Cyrillic а) lists exactly like `g/admins`. Names come from identity providers
and are untrusted, so the screens mark such names and the resolver refuses them unless the
principal is given by upstream id. The Unicode data (UTS #39's confusables and scripts)
comes from confusable-homoglyphs; only the way it is read is ours.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import cache

# Scripts that one writing system uses together (UTS #39's highly restrictive sets for
# Japanese, Korean and Chinese, each with Latin): a name mixing these is ordinary, not
# suspicious ("営業部 (Sales JP)").
_WRITING_SYSTEMS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
)
# Characters every script uses: digits, punctuation, marks.
_NEUTRAL = frozenset({"COMMON", "INHERITED"})


@cache
def _tables() -> tuple[dict[str, list[dict[str, str]]], Callable[[str], str]]:
    # Imported on first use: the data is a megabyte of JSON that `--help` never needs.
    from confusable_homoglyphs import categories, confusables

    return confusables.confusables_data, categories.alias


def _script(ch: str) -> str:
    _data, alias = _tables()
    return str(alias(ch))


def scripts_of(name: str) -> frozenset[str]:
    return frozenset(_script(ch) for ch in name) - _NEUTRAL


def is_mixed_script(name: str) -> bool:
    """True when the name's letters come from more than one writing system."""
    scripts = scripts_of(name)
    if len(scripts) <= 1:
        return False
    return not any(scripts <= system for system in _WRITING_SYSTEMS)


@cache
def _prototype(ch: str) -> str:
    """The character (or characters) that ch is confusable with, as one representative.

    The table maps a confusable character to its one prototype, and a prototype to every
    character confusable with it. A pair that maps each to the other is ambiguous in that
    direction, so the pair's smaller member represents both.
    """
    data, _alias = _tables()
    seen = data.get(ch)
    if not seen or len(seen) > 1:
        return ch
    other = seen[0]["c"]
    if len(data.get(other, ())) > 1:
        return other
    return min(ch, other)


class _Prototypes(dict[int, str]):
    """A str.translate table filled on first use: a directory's 50,000 userNames are compared
    at each listing, and translate runs the loop in C."""

    def __missing__(self, code: int) -> str:
        self[code] = found = _prototype(chr(code))
        return found


_PROTOTYPES = _Prototypes()


def skeleton(name: str) -> str:
    """UTS #39's skeleton, in spirit: two names with the same skeleton look alike."""
    decomposed = unicodedata.normalize("NFD", name)
    return unicodedata.normalize("NFD", decomposed.translate(_PROTOTYPES))


def lookalikes(names: Iterable[str]) -> set[str]:
    """The names among names that look like another, different name among them."""
    by_skeleton: dict[str, set[str]] = defaultdict(set)
    for name in names:
        by_skeleton[skeleton(name)].add(name)
    return {name for same in by_skeleton.values() if len(same) > 1 for name in same}


def is_suspicious(name: str, lookalike_names: set[str]) -> bool:
    return name in lookalike_names or is_mixed_script(name)
