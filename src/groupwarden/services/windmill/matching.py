"""Which IdP group a Windmill instance group comes from, and which IdP user an email is.

One rule each, applied when the rows are read, never stored: it must follow later IdP syncs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from groupwarden.domain.windmill import normalise_group_name
from groupwarden.store.windmill import IdpGroupRow, IdpUserRow, InstanceGroupRow


@dataclass(frozen=True, slots=True)
class GroupMatch:
    """The IdP group a Windmill instance group comes from, or why there is none."""

    windmill: str
    idp: IdpGroupRow | None
    #: 'external_id' or 'name' when matched.
    by: str | None
    #: Every candidate when more than one IdP group fits: reported, never guessed.
    candidates: tuple[IdpGroupRow, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def match_groups(
    windmill_groups: Iterable[InstanceGroupRow], idp_groups: Sequence[IdpGroupRow]
) -> dict[str, GroupMatch]:
    """The one rule: by external_id == upstream id when Windmill gives one, else by Windmill's
    normalisation of the IdP group's name. Two candidates are ambiguous, none unmatched."""
    by_upstream: dict[str, list[IdpGroupRow]] = defaultdict(list)
    by_name: dict[str, list[IdpGroupRow]] = defaultdict(list)
    for group in idp_groups:
        by_upstream[group.upstream_id].append(group)
        by_name[normalise_group_name(group.name)].append(group)
    out: dict[str, GroupMatch] = {}
    for wgroup in windmill_groups:
        how = "external_id" if wgroup.external_id else "name"
        found = (
            by_upstream.get(wgroup.external_id or "", [])
            if wgroup.external_id
            else by_name.get(wgroup.name, [])
        )
        if len(found) == 1:
            out[wgroup.name] = GroupMatch(wgroup.name, found[0], how, (found[0],))
        else:
            out[wgroup.name] = GroupMatch(wgroup.name, None, None, tuple(found))
    return out


def match_users(emails: Iterable[str], idp_users: Sequence[IdpUserRow]) -> dict[str, IdpUserRow | None]:
    """Each email (any case) -> the one IdP user holding it among their emails; None for none or several."""
    holders: dict[str, set[int]] = defaultdict(set)
    by_id = {u.id: u for u in idp_users}
    for user in idp_users:
        for email in user.emails.split("\n"):
            if email.strip():
                holders[email.strip().lower()].add(user.id)
    out: dict[str, IdpUserRow | None] = {}
    for email in emails:
        ids = holders.get(email.strip().lower(), set())
        out[email] = by_id[next(iter(ids))] if len(ids) == 1 else None
    return out
