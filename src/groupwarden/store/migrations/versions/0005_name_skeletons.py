"""Look-alike names and removed users found through indexes; userNames in code-point order on PostgreSQL.

Every user and group row keeps the skeleton of its name (domain.lookalike.skeleton), and
lookalike_skeletons the skeletons that two live names share, so the names that look alike
are found by lookups rather than by computing the skeleton of every name at each listing.
On PostgreSQL, users.user_name takes the "C" collation: answers list users by userName in
code-point order, as SQLite and Python do, and the plain index on user_name serves that order.
On SQLite, windmill_acl and windmill_items become WITHOUT ROWID tables.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from groupwarden.domain.lookalike import skeleton

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NAMED = (("users", "user_name"), ("instance_groups", "name"))

# The Windmill tables a pull fills by the hundred thousand, as 0004 made them: on SQLite they
# become WITHOUT ROWID tables, each row written once, in its primary key's b-tree.
KEYED = {
    "windmill_acl": (
        "workspace_id VARCHAR(100) NOT NULL, folder TEXT NOT NULL, kind VARCHAR(40) NOT NULL,"
        " path TEXT NOT NULL, principal TEXT NOT NULL, role VARCHAR(10) NOT NULL,"
        " CONSTRAINT pk_windmill_acl PRIMARY KEY (workspace_id, folder, kind, path, principal),"
        " CONSTRAINT fk_windmill_acl_workspace_id_workspaces FOREIGN KEY(workspace_id)"
        " REFERENCES workspaces (id)"
    ),
    "windmill_items": (
        "workspace_id VARCHAR(100) NOT NULL, kind VARCHAR(40) NOT NULL, path TEXT NOT NULL,"
        " folder TEXT NOT NULL, CONSTRAINT pk_windmill_items PRIMARY KEY (workspace_id, kind, path),"
        " CONSTRAINT fk_windmill_items_workspace_id_workspaces FOREIGN KEY(workspace_id)"
        " REFERENCES workspaces (id)"
    ),
}


def _rebuild(table: str, *, rowid: bool) -> None:
    """Copy a SQLite table into a new one with or without rowids, under the same name."""
    op.execute(f"CREATE TABLE {table}_rebuilt ({KEYED[table]}){'' if rowid else ' WITHOUT ROWID'}")
    op.execute(f"INSERT INTO {table}_rebuilt SELECT * FROM {table}")
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "lookalike_skeletons",
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("skeleton", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "skeleton", name=op.f("pk_lookalike_skeletons")),
    )
    for table, column in NAMED:
        op.add_column(table, sa.Column("skeleton", sa.Text(), nullable=True))
        rows = bind.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
        if rows:
            bind.execute(
                sa.text(f"UPDATE {table} SET skeleton = :skeleton WHERE id = :id"),
                [{"id": row_id, "skeleton": skeleton(name)} for row_id, name in rows],
            )
        op.create_index(
            f"ix_{table}_live_skeleton",
            table,
            ["skeleton", column],
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        )
    # who-can drops the removed users from its answer: a few among many, found by index.
    op.create_index(
        "ix_users_removed",
        "users",
        ["id"],
        sqlite_where=sa.text("removed_at IS NOT NULL"),
        postgresql_where=sa.text("removed_at IS NOT NULL"),
    )
    if bind.dialect.name == "postgresql":
        op.execute('ALTER TABLE users ALTER COLUMN user_name TYPE VARCHAR(255) COLLATE "C"')
    else:
        for table in KEYED:
            _rebuild(table, rowid=False)
    for table, column in NAMED:
        kind = "u" if table == "users" else "g"
        # As store.sync.refresh_lookalikes does after every write of names.
        op.execute(
            f"INSERT INTO lookalike_skeletons (kind, skeleton) SELECT '{kind}', skeleton FROM {table}"
            f" WHERE removed_at IS NULL GROUP BY skeleton HAVING MIN({column}) <> MAX({column})"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute('ALTER TABLE users ALTER COLUMN user_name TYPE VARCHAR(255) COLLATE "default"')
    else:
        for table in KEYED:
            _rebuild(table, rowid=True)
    op.drop_index("ix_users_removed", "users")
    op.drop_table("lookalike_skeletons")
    for table, _column in NAMED:
        op.drop_index(f"ix_{table}_live_skeleton", table)
        if bind.dialect.name == "sqlite":
            # A plain DROP COLUMN: a batch rebuild would trip the foreign keys that point here.
            op.execute(f"ALTER TABLE {table} DROP COLUMN skeleton")
        else:
            op.drop_column(table, "skeleton")
