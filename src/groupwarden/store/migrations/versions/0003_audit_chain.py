"""Chain the audit events by hash, and record the database role of each change.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from groupwarden.domain.audit_chain import CHAINED_FIELDS, GENESIS, link_hash

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW_COLUMNS = ("actor_db_role", "prev_hash", "event_hash")


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("actor_db_role", sa.String(100), nullable=True))
    op.add_column("audit_events", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_events", sa.Column("event_hash", sa.String(64), nullable=True))
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer),
        sa.column("at", sa.DateTime(timezone=True)),
        *(sa.column(name, sa.String) for name in CHAINED_FIELDS if name != "at"),
        sa.column("prev_hash", sa.String),
        sa.column("event_hash", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(events).order_by(events.c.id)).all()
    if not rows:
        return
    # The events are append-only (0002's triggers); this one-time fill lifts that for itself,
    # inside the migration's transaction, and puts it back before commit.
    _allow_update(bind.dialect.name, True)
    previous = GENESIS
    for row in rows:
        fields = {name: getattr(row, name) for name in CHAINED_FIELDS}
        current = link_hash(previous, fields)
        bind.execute(
            events.update().where(events.c.id == row.id).values(prev_hash=previous, event_hash=current)
        )
        previous = current
    _allow_update(bind.dialect.name, False)


def _allow_update(dialect: str, allow: bool) -> None:
    if dialect == "postgresql":
        switch = "DISABLE" if allow else "ENABLE"
        op.execute(f"ALTER TABLE audit_events {switch} TRIGGER audit_events_append_only")
    elif allow:
        op.execute("DROP TRIGGER audit_events_no_update")
    else:
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events"
            " BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of the table would lose its triggers.
    for name in reversed(NEW_COLUMNS):
        op.drop_column("audit_events", name)
