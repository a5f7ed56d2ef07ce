"""the palette, swatches shown in consultations, and derived stills

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import csv
import secrets
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: The palette a new salon starts with (later edits to the file reach new installs only).
DEFAULT_PALETTE = Path(__file__).parents[3] / "data" / "default_palette.csv"


def upgrade() -> None:
    swatches = op.create_table(
        "swatches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("brand", sa.String(80), nullable=False, server_default=""),
        sa.Column("code", sa.String(40), nullable=False, server_default=""),
        sa.Column("hex", sa.String(7), nullable=False),
        sa.Column("finish", sa.String(16), nullable=False),
        sa.Column("family", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("brand", "name", name="uq_swatches_brand_name"),
    )
    op.create_table(
        "swatch_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("swatch_id", sa.String(32), nullable=True),
        sa.Column("swatch", sa.JSON(), nullable=True),
        sa.Column("by", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("stills") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("derivation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("nails", sa.JSON(), nullable=True))
    now = datetime.now(UTC)
    with DEFAULT_PALETTE.open(newline="", encoding="utf-8") as f:
        rows = [
            {
                "id": secrets.token_hex(8),
                **{k: row[k] for k in ("name", "brand", "code", "hex", "finish", "family")},
                "position": position,
                "created_at": now,
                "updated_at": now,
            }
            for position, row in enumerate(csv.DictReader(f))
        ]
    op.bulk_insert(swatches, rows)


def downgrade() -> None:
    with op.batch_alter_table("stills") as batch:
        batch.drop_column("nails")
        batch.drop_column("derivation")
        batch.drop_column("parent_id")
    op.drop_table("swatch_events")
    op.drop_table("swatches")
