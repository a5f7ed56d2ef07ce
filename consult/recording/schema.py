"""Tables of the store (SQLAlchemy Core). Changes here need an alembic revision beside them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

__all__ = [
    "captures",
    "chat_reads",
    "consultations",
    "leases",
    "links",
    "messages",
    "metadata",
    "recordings",
    "salon",
    "stills",
    "swatch_events",
    "swatches",
]

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


consultations = sa.Table(
    "consultations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("customer_name", sa.String(200), nullable=False),
    sa.Column("customer_ref", sa.String(200), nullable=True, index=True),
    sa.Column("scheduled_at", UTCDateTime(), nullable=True),
    #: The stylist's private notes: never shown to the customer.
    sa.Column("notes", sa.Text(), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_activity_at", UTCDateTime(), nullable=False),
    #: The agreed design, shared with the customer.
    sa.Column("summary", sa.Text(), nullable=False, server_default=""),
    sa.Column("notes_updated_at", UTCDateTime(), nullable=True),
    sa.Column("summary_updated_at", UTCDateTime(), nullable=True),
    #: "Same again": the earlier consultation this one starts from.
    sa.Column("based_on", sa.String(32), nullable=True),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "consultation_id",
        sa.String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("token_sealed", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

captures = sa.Table(
    "captures",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        sa.String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("requested_by", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

stills = sa.Table(
    "stills",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        sa.String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
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
    sa.Column("created_at", UTCDateTime(), nullable=False),
    #: A derived image (white-balanced, try-on): the still it was made from, and how.
    sa.Column("parent_id", sa.String(32), nullable=True),
    sa.Column("derivation", sa.JSON(), nullable=True),
    #: The stylist's nail outlines on this still (polygons in image pixels), for try-ons.
    sa.Column("nails", sa.JSON(), nullable=True),
    #: The customer's video size when the still was taken (a photo may be larger).
    sa.Column("video_width", sa.Integer(), nullable=True),
    sa.Column("video_height", sa.Integer(), nullable=True),
    sa.UniqueConstraint("capture_id", "source", name="uq_stills_capture_source"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column(
        "consultation_id",
        sa.String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("sender", sa.String(16), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    #: A photo sent in the chat: the still holding it.
    sa.Column("still_id", sa.String(32), nullable=True),
    sa.UniqueConstraint("consultation_id", "sender", "client_id", name="uq_messages_client_id"),
)

chat_reads = sa.Table(
    "chat_reads",
    metadata,
    sa.Column(
        "consultation_id",
        sa.String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("role", sa.String(16), primary_key=True),
    sa.Column("seq", sa.Integer(), nullable=False),
)

#: One row (id 1): the salon's opening hours and away message.
salon = sa.Table(
    "salon",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("hours", sa.JSON(), nullable=False),
    sa.Column("away_message", sa.Text(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: The salon's palette.
swatches = sa.Table(
    "swatches",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("brand", sa.String(80), nullable=False, server_default=""),
    sa.Column("code", sa.String(40), nullable=False, server_default=""),
    sa.Column("hex", sa.String(7), nullable=False),
    sa.Column("finish", sa.String(16), nullable=False),
    sa.Column("family", sa.String(16), nullable=False),
    #: The palette's order (the import's, then creation order).
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("brand", "name", name="uq_swatches_brand_name"),
)

#: What the stylist did with swatches in a consultation: shown, cleared, chosen, unchosen.
#: ``swatch`` is a copy of the swatch at that moment: the record stays true if the palette
#: changes later.
swatch_events = sa.Table(
    "swatch_events",
    metadata,
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
    sa.Column("at", UTCDateTime(), nullable=False),
)

#: Work that one node at a time does for every node sharing the database (scheduled backups):
#: who holds it and until when, and when it was last done.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("done_at", UTCDateTime(), nullable=True),
)

#: Recordings of a call (issue 18): one file per participant per recording. ``status``
#: "recording" while written (``file`` is then the staged file, finished at the next start if
#: the service died), "complete" once placed with its byte count and SHA-256.
recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        sa.String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    #: Whose media the file holds.
    sa.Column("role", sa.String(16), nullable=False),
    #: The two participants' files of one recording share it (and their time line).
    sa.Column("session", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("duration_s", sa.Float(), nullable=True),
    sa.Column("media_type", sa.String(32), nullable=True),
    sa.Column("bytes", sa.BigInteger(), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("file", sa.String(255), nullable=False),
)
