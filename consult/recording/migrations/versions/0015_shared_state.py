"""state several nodes share: which node holds a live call and until when; failed
authentications by address

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(sa.Column("live_node", sa.String(128), nullable=True))
        batch.add_column(sa.Column("live_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_auth_failures_at", "auth_failures", ["at"])
    op.create_index("ix_auth_failures_client_at", "auth_failures", ["client", "at"])


def downgrade() -> None:
    op.drop_index("ix_auth_failures_client_at", "auth_failures")
    op.drop_index("ix_auth_failures_at", "auth_failures")
    op.drop_table("auth_failures")
    with op.batch_alter_table("consultations") as batch:
        batch.drop_column("live_until")
        batch.drop_column("live_node")
