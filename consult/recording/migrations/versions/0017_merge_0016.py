"""join 0016 (17A, accounts) and 0017 (17B, customers), both written on 0015 this session: the
lead re-chains the session's migrations at merge and then removes this file

Revision ID: 0017m
Revises: 0016, 0017
Create Date: 2026-11-29
"""

from __future__ import annotations

revision = "0017m"
down_revision = ("0016", "0017")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
