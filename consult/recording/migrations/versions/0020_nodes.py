"""nodes: the nodes sharing the database, and who owns each call

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(128), primary_key=True),
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("media_address", sa.String(255), nullable=True),
        sa.Column("keys", sa.String(80), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alive_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "call_owners",
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("node_id", sa.String(128), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_call_owners_node_id", "call_owners", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_call_owners_node_id", "call_owners")
    op.drop_table("call_owners")
    op.drop_table("nodes")
