"""What every service call needs: the store, who is acting, and whether changes are allowed."""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from groupwarden.domain.errors import ReadOnly
from groupwarden.domain.text import printable

# The width of the audit events' address column.
ADDRESS_WIDTH = 100


@dataclass(frozen=True, slots=True)
class Actor:
    user: str
    host: str
    address: str | None = None

    @classmethod
    def current(cls) -> Actor:
        return cls(user=os_user(), host=socket.gethostname(), address=ssh_client_address())

    def __str__(self) -> str:
        where = f"{self.user}@{self.host}"
        return f"{where} from {self.address}" if self.address else where


def os_user() -> str:
    """The account of the process's real uid: LOGNAME and USER are the caller's to set, so
    they cannot name who acted."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def ssh_client_address() -> str | None:
    """The SSH client's address (SSH_CLIENT is "address port localport"), shown literally."""
    ssh = os.environ.get("SSH_CLIENT") or os.environ.get("SSH_CONNECTION") or ""
    words = ssh.split()
    # Escaped, then cut to the audit column's width: the variable is the client's to set.
    return printable(words[0])[:ADDRESS_WIDTH] if words else None


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Context:
    engine: Engine
    read_only: bool = False
    actor: Actor = field(default_factory=Actor.current)
    # Every timestamp the services write comes from here, so tests can fix the time.
    clock: Callable[[], datetime] = utcnow

    def require_writable(self, action: str) -> None:
        """The one place read-only mode is enforced; every change calls it first."""
        if self.read_only:
            raise ReadOnly(action)

    @classmethod
    def open(cls, db: str, *, read_only: bool = False, trust_db_permissions: bool = False) -> Context:
        """Open the store at db (a URL or a SQLite path), as the settings resolved it.

        A read-only session opens SQLite read-only and never creates or migrates anything.
        """
        from groupwarden.store.db import open_engine, resolve_url

        engine = open_engine(resolve_url(db), read_only=read_only, trust_permissions=trust_db_permissions)
        return cls(engine=engine, read_only=read_only)

    def close(self) -> None:
        self.engine.dispose()
