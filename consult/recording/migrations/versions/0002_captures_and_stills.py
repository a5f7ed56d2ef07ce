"""captures and stills

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "captures",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("requested_by", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_captures_consultation_id", "captures", ["consultation_id"])
    op.create_table(
        "stills",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "capture_id",
            sa.String(32),
            sa.ForeignKey("captures.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sharpness", sa.Float(), nullable=False),
        sa.Column("exposure", sa.Float(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("thumb", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("capture_id", "source", name="uq_stills_capture_source"),
    )
    op.create_index("ix_stills_consultation_id", "stills", ["consultation_id"])


def downgrade() -> None:
    op.drop_index("ix_stills_consultation_id", "stills")
    op.drop_table("stills")
    op.drop_index("ix_captures_consultation_id", "captures")
    op.drop_table("captures")
