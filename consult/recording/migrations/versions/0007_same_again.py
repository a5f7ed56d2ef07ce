"""same again: a consultation may start from an earlier one

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(sa.Column("based_on", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consultations") as batch:
        batch.drop_column("based_on")
