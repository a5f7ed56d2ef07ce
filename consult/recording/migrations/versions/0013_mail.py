"""mail: the customer's email address and language, the outbox, unsubscribes

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(sa.Column("customer_email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("customer_language", sa.String(8), nullable=True))
    # The reminders look for appointments in the next two days, every poll.
    op.create_index("ix_consultations_scheduled_at", "consultations", ["scheduled_at"])
    op.create_table(
        "mail_recipients",
        sa.Column("address", sa.String(254), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", ondelete="CASCADE"),
            nullable=True,
            index=True,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=True, unique=True),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    leases = sa.table("leases", sa.column("name", sa.String))
    # One node at a time sends the outbox: the lease row exists before anyone competes for it.
    op.bulk_insert(leases, [{"name": "mail"}])


def downgrade() -> None:
    op.execute("DELETE FROM leases WHERE name = 'mail'")
    op.drop_index("ix_outbox_due", "outbox")
    op.drop_table("outbox")
    op.drop_table("mail_recipients")
    op.drop_index("ix_consultations_scheduled_at", "consultations")
    with op.batch_alter_table("consultations") as batch:
        batch.drop_column("customer_language")
        batch.drop_column("customer_email")
