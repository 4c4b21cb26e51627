"""The cache schema. Every change to it ships with an Alembic migration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Source(Base):
    """An identity provider the cache is synced from."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(Text, default="")
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Opaque per-source cursor for incremental syncs (a Graph delta link, say).
    sync_state: Mapped[str | None] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("source_id", "upstream_id", name="uq_users_upstream"),
        Index("ix_users_upstream_id", "upstream_id"),
        Index(
            "ix_users_live_skeleton",
            "skeleton",
            "user_name",
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
        # The few removed users, found without a scan of every user.
        Index(
            "ix_users_removed",
            "id",
            sqlite_where=text("removed_at IS NOT NULL"),
            postgresql_where=text("removed_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    upstream_id: Mapped[str] = mapped_column(String(255))
    # Code-point order on PostgreSQL too, as SQLite and Python sort: the index serves who-can's order.
    user_name: Mapped[str] = mapped_column(
        String(255).with_variant(String(255, collation="C"), "postgresql"), index=True
    )
    display_name: Mapped[str | None] = mapped_column(Text)
    # Newline-separated, primary first: a list column would cost a join per user.
    emails: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    raw_status: Mapped[str | None] = mapped_column(String(40))
    # Set when the user disappears upstream; the row stays so grants can name it.
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # domain.lookalike.skeleton(user_name), kept beside the name: look-alikes are found by index.
    # Derived, so backups leave it out and a restore computes it again.
    skeleton: Mapped[str | None] = mapped_column(Text, info={"derived": True})


class Group(Base):
    """An instance group, identified by (source, upstream id), never by its name."""

    __tablename__ = "instance_groups"
    __table_args__ = (
        UniqueConstraint("source_id", "upstream_id", name="uq_groups_upstream"),
        Index("ix_instance_groups_upstream_id", "upstream_id"),
        Index(
            "ix_instance_groups_live_skeleton",
            "skeleton",
            "name",
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    upstream_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(40))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # domain.lookalike.skeleton(name); derived, as users.skeleton.
    skeleton: Mapped[str | None] = mapped_column(Text, info={"derived": True})


class LookalikeSkeleton(Base):
    """A skeleton that two or more distinct live names of one kind share ("u" users, "g"
    groups): derived from the names, rewritten whenever a sync, a restore or a migration
    writes them, so that reading the look-alikes costs a lookup per clash, not a scan."""

    __tablename__ = "lookalike_skeletons"

    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    skeleton: Mapped[str] = mapped_column(Text, primary_key=True)


class UserMembership(Base):
    """A user who is a direct member of a group."""

    __tablename__ = "user_memberships"
    __table_args__ = (Index("ix_user_memberships_user", "user_id"),)

    group_id: Mapped[int] = mapped_column(
        ForeignKey("instance_groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class GroupMembership(Base):
    """A group nested directly inside another: members of child are members of parent."""

    __tablename__ = "group_memberships"
    __table_args__ = (Index("ix_group_memberships_child", "child_id"),)

    parent_id: Mapped[int] = mapped_column(
        ForeignKey("instance_groups.id", ondelete="CASCADE"), primary_key=True
    )
    child_id: Mapped[int] = mapped_column(
        ForeignKey("instance_groups.id", ondelete="CASCADE"), primary_key=True
    )


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    # Set when the workspace is a Windmill workspace, pulled from that instance.
    windmill_instance_id: Mapped[int | None] = mapped_column(ForeignKey("windmill_instances.id"))


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_folders_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    name: Mapped[str] = mapped_column(String(255))
    summary: Mapped[str] = mapped_column(Text, default="")


class Grant(Base):
    """A role for one principal on a folder, or on one item inside it (item_path set).

    principal_key ('g:<group id>' or 'u:<user id>') makes one grant per (target, principal)
    a plain unique constraint. version rises on every change, so a change made against a
    stale view can be detected and refused.
    """

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("folder_id", "item_path", "principal_key", name="uq_grants_target"),
        Index("ix_grants_group", "group_id"),
        Index("ix_grants_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"))
    item_path: Mapped[str] = mapped_column(String(500), default="")
    principal_key: Mapped[str] = mapped_column(String(40))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("instance_groups.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    role: Mapped[str] = mapped_column(String(10))
    granted_by: Mapped[str] = mapped_column(String(255))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class AuditEvent(Base):
    """One role change. Written in the same transaction as the change; never updated.

    Each event is chained to the one before it by hash, so an edit afterwards shows.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    actor_host: Mapped[str] = mapped_column(String(255))
    actor_address: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(Text)
    principal: Mapped[str] = mapped_column(Text)
    before: Mapped[str | None] = mapped_column(String(10))
    after: Mapped[str | None] = mapped_column(String(10))
    # The database role the server enforced (PostgreSQL's session_user); SQLite has none.
    actor_db_role: Mapped[str | None] = mapped_column(String(100))
    # The hash chain (domain/audit_chain.py): the previous event's hash, and this event's.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    event_hash: Mapped[str | None] = mapped_column(String(64))
    # The Windmill instance a change was written through to; None for a change of the store only.
    applied_to: Mapped[str | None] = mapped_column(String(200))


class SyncRun(Base):
    """One sync attempt of one source, with what it changed."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_name: Mapped[str] = mapped_column(String(200), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    # JSON: groups added / renamed / removed, users added / removed, members per group.
    diff: Mapped[str] = mapped_column(Text, default="{}")


# --- Windmill instances: what the last pull read, kept with Windmill's own names -------------------
#
# Principals stay Windmill names ('g/x', 'u/y', emails): matching them to IdP groups and users
# happens when they are read, so it follows every later IdP sync.


class WindmillInstance(Base):
    """A linked Windmill instance: where it is and where its token comes from, never the token."""

    __tablename__ = "windmill_instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    token_env: Mapped[str | None] = mapped_column(Text)
    token_file: Mapped[str | None] = mapped_column(Text)
    ca_bundle: Mapped[str | None] = mapped_column(Text)
    # The demo's in-process stand-in, labelled as such wherever instances are listed.
    standin: Mapped[bool] = mapped_column(Boolean, default=False)
    last_pull_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WindmillUser(Base):
    """A user of one linked workspace, by its workspace username."""

    __tablename__ = "windmill_users"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    username: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean)
    operator: Mapped[bool] = mapped_column(Boolean)
    disabled: Mapped[bool] = mapped_column(Boolean)


class WindmillInstanceGroup(Base):
    __tablename__ = "windmill_instance_groups"
    __table_args__ = (UniqueConstraint("instance_id", "name", name="uq_windmill_instance_groups_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("windmill_instances.id"))
    name: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(Text)


class WindmillInstanceGroupMember(Base):
    """An instance group's member, by email as Windmill holds it."""

    __tablename__ = "windmill_instance_group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("windmill_instance_groups.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(Text, primary_key=True)


class WindmillWorkspaceGroup(Base):
    __tablename__ = "windmill_workspace_groups"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_windmill_workspace_groups_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    name: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)


class WindmillWorkspaceGroupMember(Base):
    """A workspace group's member, by workspace username."""

    __tablename__ = "windmill_workspace_group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("windmill_workspace_groups.id", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(Text, primary_key=True)


class WindmillAcl(Base):
    """One principal's role on a folder (kind 'folder', path '') or on an item (its ACL kind and path)."""

    __tablename__ = "windmill_acl"
    # Keyed by its primary key alone on SQLite: a pull inserts hundreds of thousands of these,
    # and a rowid table would write each into the table and again into the key's index.
    __table_args__ = {"sqlite_with_rowid": False}

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    folder: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    principal: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(String(10))


class WindmillItem(Base):
    """An item under f/<folder>/, so a later write knows its ACL kind."""

    __tablename__ = "windmill_items"
    __table_args__ = {"sqlite_with_rowid": False}  # as windmill_acl

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    folder: Mapped[str] = mapped_column(Text)


class WindmillAutoAdd(Base):
    """An instance group a workspace auto-adds, with the workspace role it gives."""

    __tablename__ = "windmill_auto_add"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    group_name: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(String(20))


class WindmillWorkspaceDigest(Base):
    """A fingerprint of what the last pull read of one linked workspace, so a re-pull can skip
    a workspace that did not change."""

    __tablename__ = "windmill_workspace_digests"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
