"""Errors every layer can raise and every front end knows how to show.

An error may carry a Hint: what would get the user past it, in domain terms. The services
and sources never name a command or a flag; each front end renders the hint its own way
(the CLI as a command line, the TUI as the key or screen that does the job).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class Remedy(Enum):
    """What would get the user past a refusal."""

    FULL_SYNC = "a full sync of the source"
    CONFIRM_LAST_ADMIN = "an explicit confirmation to remove the last admin"
    ALLOW_MASS_DELETE = "an explicit permission for a mass deletion"
    LIST_GROUPS = "the list of groups"
    SYNC_FIRST = "a sync"
    OPEN_WRITABLE = "a session that is not read-only"
    MIGRATE = "one writable session to upgrade the schema"
    TRUST_DB_PERMISSIONS = "fixing the database's permissions, or trusting them explicitly"
    GIVE_TOKEN = "the name of the environment variable or file holding the token"
    GIVE_CLIENT_SECRET = "the name of the environment variable or file holding the client secret"
    ADD_WORKSPACE = "adding the workspace"
    ADD_FOLDER = "adding the folder"
    NEW_DATABASE = "a new, empty database"


# A NamedTuple, not a dataclass: the CLI imports this module on its --help path.
class Hint(NamedTuple):
    remedy: Remedy
    #: What the remedy applies to, when the front end needs it: a source's name, a path.
    subject: str | None = None


class GroupwardenError(Exception):
    """A failure to report to the user as one clear line; never a traceback."""

    exit_code = 1
    #: The remedy every error of this kind has; an instance may carry its own.
    default_remedy: Remedy | None = None

    def __init__(self, message: str = "", *, hint: Hint | None = None) -> None:
        super().__init__(message)
        if hint is None and self.default_remedy is not None:
            hint = Hint(self.default_remedy)
        self.hint = hint


class BadInput(GroupwardenError):
    """The request itself is wrong: a malformed name, an unknown role, a missing object."""

    exit_code = 2


class NotFound(BadInput):
    pass


class Ambiguous(BadInput):
    """A name matches several objects; the message lists every candidate."""

    def __init__(self, what: str, name: str, candidates: list[str]) -> None:
        self.candidates = candidates
        lines = "\n".join(f"  {c}" for c in candidates)
        super().__init__(
            f"{what} {name!r} is ambiguous: it matches {len(candidates)} {what}s;"
            f" name one by its upstream id:\n{lines}"
        )


class ReadOnly(GroupwardenError):
    default_remedy = Remedy.OPEN_WRITABLE

    def __init__(self, action: str) -> None:
        super().__init__(f"refused: this session is read-only, so {action} is not allowed")


class StaleView(GroupwardenError):
    """Another admin changed the same grant since the caller looked at it."""


class NeedsConfirmation(GroupwardenError):
    """The change is allowed, but only with an explicit confirmation (last admin)."""

    default_remedy = Remedy.CONFIRM_LAST_ADMIN


class SyncError(GroupwardenError):
    """A sync failed; nothing was written."""


class MassDeletionRefused(SyncError):
    default_remedy = Remedy.ALLOW_MASS_DELETE
