"""inbox versions: each consultation's count of changes to its inbox summary

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(
            sa.Column("inbox_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.drop_column("inbox_version")
