"""checkins: aftercare check-ins, their photos, the salon's default days; repairs

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(sa.Column("repair_of", sa.String(32), nullable=True))
    op.create_table(
        "checkins",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("views", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("followup_id", sa.String(32), nullable=True),
    )
    op.create_index("ix_checkins_consultation_id", "checkins", ["consultation_id"])
    op.create_index("ix_checkins_due_at", "checkins", ["due_at"])
    op.create_table(
        "checkin_photos",
        sa.Column(
            "checkin_id",
            sa.String(32),
            sa.ForeignKey("checkins.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("view", sa.String(16), primary_key=True),
        sa.Column("still_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "checkin_settings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("days", sa.JSON(), nullable=False),
        sa.Column("overdue_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("checkin_settings")
    op.drop_table("checkin_photos")
    op.drop_index("ix_checkins_due_at", "checkins")
    op.drop_index("ix_checkins_consultation_id", "checkins")
    op.drop_table("checkins")
    with op.batch_alter_table("consultations") as batch:
        batch.drop_column("repair_of")
