"""Linked Windmill instances: how a link is named and described, and the listings of links."""

from __future__ import annotations

import re
from dataclasses import dataclass

from groupwarden.domain.errors import BadInput
from groupwarden.services.context import Context
from groupwarden.store import windmill as store
from groupwarden.store.windmill import AclRow, InstanceListRow, LinkedWorkspaceRow

DEFAULT_NAME = "default"
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_instance_name(name: str) -> str:
    if not _INSTANCE_NAME.match(name):
        raise BadInput(f"bad Windmill instance name {name!r}: use letters, digits, '-' and '_' only")
    return name


@dataclass(frozen=True, slots=True)
class WindmillLink:
    """Where an instance is and where its token comes from (a variable's name or a file's path)."""

    name: str
    url: str
    token_env: str | None = None
    token_file: str | None = None
    ca_bundle: str | None = None
    #: The demo's stand-in, labelled as such in listings.
    standin: bool = False


def run_source(name: str) -> str:
    """The source name a pull's runs are recorded under."""
    return f"windmill:{name}"


def acl_target(row: AclRow) -> str:
    """Where an ACL entry is: WORKSPACE/FOLDER for a folder, WORKSPACE/f/FOLDER/NAME for an item."""
    return f"{row.workspace_id}/{row.path or row.folder}"


def list_instances(ctx: Context) -> list[InstanceListRow]:
    """Every linked instance: name, url, stand-in or not, last pull, linked workspace count."""
    with ctx.engine.connect() as conn:
        return store.list_instances(conn)


def workspace_links(ctx: Context) -> dict[str, LinkedWorkspaceRow]:
    """Each linked workspace's instance, by workspace id; a workspace not here is local."""
    with ctx.engine.connect() as conn:
        return {row.id: row for row in store.linked_workspaces(conn)}
