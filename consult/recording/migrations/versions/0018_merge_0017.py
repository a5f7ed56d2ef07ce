"""join 0017 (17B's customers) and 0018 (due work) until the lead re-chains them

Revision ID: 0018m
Revises: 0017, 0018
Create Date: 2026-11-29
"""

from __future__ import annotations

revision = "0018m"
down_revision = ("0017", "0018")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
