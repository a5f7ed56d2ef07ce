"""stills say where they came from (camera, native, video, chat) and the video's size then

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stills") as batch:
        batch.add_column(sa.Column("video_width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("video_height", sa.Integer(), nullable=True))
    # The best frame of the stream is the "video" still now, beside "native" photos.
    op.execute("UPDATE stills SET source = 'video' WHERE source = 'stream'")
    op.execute(
        "UPDATE stills SET video_width = width, video_height = height WHERE source = 'video'"
    )


def downgrade() -> None:
    op.execute("UPDATE stills SET source = 'stream' WHERE source = 'video'")
    op.execute("DELETE FROM stills WHERE source = 'native'")
    with op.batch_alter_table("stills") as batch:
        batch.drop_column("video_height")
        batch.drop_column("video_width")
