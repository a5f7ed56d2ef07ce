"""conversations apart from calls: the inbox's summary of each conversation, quick replies

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_sender", sa.String(16), nullable=False),
        sa.Column("last_text", sa.Text(), nullable=False),
        sa.Column("last_kind", sa.String(8), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unread", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("away_for", sa.String(40), nullable=True),
    )
    op.create_index("ix_conversations_inbox", "conversations", ["unread", "last_at"])
    # Conversations that exist already: their last message, and the customer's messages after
    # the salon's (the stylist's) read mark. Before this revision a message is words or a photo
    # (voice, video and file messages come with 0012).
    op.execute(
        """
        INSERT INTO conversations
            (consultation_id, last_seq, last_sender, last_text, last_kind, last_at, unread)
        SELECT m.consultation_id, m.seq, m.sender, m.text,
               CASE WHEN m.still_id IS NOT NULL THEN 'photo' END, m.created_at,
               (SELECT COUNT(*) FROM messages AS u
                 WHERE u.consultation_id = m.consultation_id AND u.sender = 'customer'
                   AND u.seq > COALESCE((SELECT r.seq FROM chat_reads AS r
                                          WHERE r.consultation_id = m.consultation_id
                                            AND r.role = 'stylist'), 0))
          FROM messages AS m
         WHERE m.seq = (SELECT MAX(x.seq) FROM messages AS x
                         WHERE x.consultation_id = m.consultation_id)
        """
    )
    op.create_table(
        "quick_replies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quick_replies")
    op.drop_index("ix_conversations_inbox", "conversations")
    op.drop_table("conversations")
