"""Errors every layer can raise and every front end knows how to show."""


class GroupwardenError(Exception):
    """A failure to report to the user as one clear line; never a traceback."""

    exit_code = 1


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
    def __init__(self, action: str) -> None:
        super().__init__(f"refused: this session is read-only, so {action} is not allowed")


class StaleView(GroupwardenError):
    """Another admin changed the same grant since the caller looked at it."""


class NeedsConfirmation(GroupwardenError):
    """The change is allowed, but only with an explicit confirmation (last admin)."""


class SyncError(GroupwardenError):
    """A sync failed; nothing was written."""


class MassDeletionRefused(SyncError):
    pass
