"""Windmill instances: linking and pulling one, matching its principals to the IdP, and drift."""

from groupwarden.services.windmill.drift import (
    AclEntry,
    AutoAddGroup,
    AutoAddMember,
    DriftReport,
    MembershipDrift,
    UnmatchedGroup,
    drift,
    workspace_role,
)
from groupwarden.services.windmill.links import (
    DEFAULT_NAME,
    WindmillLink,
    acl_target,
    check_instance_name,
    list_instances,
    run_source,
    workspace_links,
)
from groupwarden.services.windmill.matching import GroupMatch, match_groups, match_users
from groupwarden.services.windmill.pull import (
    RUN_DIFF_LIMIT,
    AclChange,
    PullReport,
    WindmillDiff,
    diff_states,
    pull,
    state_of,
)

__all__ = [
    "DEFAULT_NAME",
    "RUN_DIFF_LIMIT",
    "AclChange",
    "AclEntry",
    "AutoAddGroup",
    "AutoAddMember",
    "DriftReport",
    "GroupMatch",
    "MembershipDrift",
    "PullReport",
    "UnmatchedGroup",
    "WindmillDiff",
    "WindmillLink",
    "acl_target",
    "check_instance_name",
    "diff_states",
    "drift",
    "list_instances",
    "match_groups",
    "match_users",
    "pull",
    "run_source",
    "state_of",
    "workspace_links",
    "workspace_role",
]
