"""Roles are ordered: viewer < writer < admin."""

from __future__ import annotations

import enum

from groupwarden.domain.errors import BadInput


class Role(enum.IntEnum):
    VIEWER = 1
    WRITER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise BadInput(f"unknown role {text!r}: use viewer, writer or admin") from None

    def windmill_perms(self) -> tuple[bool, bool]:
        """Return (is_owner, extra_perms value) as Windmill stores this role on a folder."""
        return (self is Role.ADMIN, self is not Role.VIEWER)


def role_label(role: Role | None) -> str:
    return "none" if role is None else role.label
