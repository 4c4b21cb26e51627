"""Windmill instances: linked workspaces and what a pull read (users, groups, ACLs, items, auto-add).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The Windmill instance a role change was written through to (nullable: older events have none).
    op.add_column("audit_events", sa.Column("applied_to", sa.String(200), nullable=True))
    op.create_table(
        "windmill_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("token_env", sa.Text(), nullable=True),
        sa.Column("token_file", sa.Text(), nullable=True),
        sa.Column("ca_bundle", sa.Text(), nullable=True),
        sa.Column("standin", sa.Boolean(), nullable=False),
        sa.Column("last_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_windmill_instances")),
        sa.UniqueConstraint("name", name=op.f("uq_windmill_instances_name")),
    )
    fk = "fk_workspaces_windmill_instance_id_windmill_instances"
    if op.get_bind().dialect.name == "sqlite":
        # SQLite takes an inline REFERENCES on ADD COLUMN when the default is NULL; a batch
        # rebuild of workspaces would trip the foreign keys of folders that point at it.
        op.execute(
            "ALTER TABLE workspaces ADD COLUMN windmill_instance_id INTEGER"
            f" CONSTRAINT {fk} REFERENCES windmill_instances (id)"
        )
    else:
        op.add_column("workspaces", sa.Column("windmill_instance_id", sa.Integer(), nullable=True))
        op.create_foreign_key(fk, "workspaces", "windmill_instances", ["windmill_instance_id"], ["id"])
    op.create_table(
        "windmill_users",
        sa.Column("workspace_id", sa.String(length=100), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("operator", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_windmill_users_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "username", name=op.f("pk_windmill_users")),
    )
    op.create_table(
        "windmill_instance_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["windmill_instances.id"],
            name=op.f("fk_windmill_instance_groups_instance_id_windmill_instances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_windmill_instance_groups")),
        sa.UniqueConstraint("instance_id", "name", name="uq_windmill_instance_groups_name"),
    )
    op.create_table(
        "windmill_instance_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["windmill_instance_groups.id"],
            name=op.f("fk_windmill_instance_group_members_group_id_windmill_instance_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "email", name=op.f("pk_windmill_instance_group_members")),
    )
    op.create_table(
        "windmill_workspace_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_windmill_workspace_groups_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_windmill_workspace_groups")),
        sa.UniqueConstraint("workspace_id", "name", name="uq_windmill_workspace_groups_name"),
    )
    op.create_table(
        "windmill_workspace_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["windmill_workspace_groups.id"],
            name=op.f("fk_windmill_workspace_group_members_group_id_windmill_workspace_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "username", name=op.f("pk_windmill_workspace_group_members")),
    )
    op.create_table(
        "windmill_acl",
        sa.Column("workspace_id", sa.String(length=100), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_windmill_acl_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "folder", "kind", "path", "principal", name=op.f("pk_windmill_acl")
        ),
    )
    op.create_table(
        "windmill_items",
        sa.Column("workspace_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_windmill_items_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "kind", "path", name=op.f("pk_windmill_items")),
    )
    op.create_table(
        "windmill_auto_add",
        sa.Column("workspace_id", sa.String(length=100), nullable=False),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_windmill_auto_add_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "group_name", name=op.f("pk_windmill_auto_add")),
    )
    op.create_table(
        "windmill_workspace_digests",
        sa.Column("workspace_id", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_windmill_workspace_digests_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_windmill_workspace_digests")),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of the table would lose its triggers.
    op.drop_column("audit_events", "applied_to")
    for table in (
        "windmill_workspace_digests",
        "windmill_auto_add",
        "windmill_items",
        "windmill_acl",
        "windmill_workspace_group_members",
        "windmill_workspace_groups",
        "windmill_instance_group_members",
        "windmill_instance_groups",
        "windmill_users",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "sqlite":
        # A plain DROP COLUMN (SQLite 3.35+): a batch rebuild would drop workspaces under the
        # folders that point at it, which the foreign keys refuse.
        op.execute("ALTER TABLE workspaces DROP COLUMN windmill_instance_id")
    else:
        op.drop_constraint(
            "fk_workspaces_windmill_instance_id_windmill_instances", "workspaces", type_="foreignkey"
        )
        op.drop_column("workspaces", "windmill_instance_id")
    op.drop_table("windmill_instances")
