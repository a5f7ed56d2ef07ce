"""Tables of the store (SQLAlchemy Core). Changes here need an alembic revision beside them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

__all__ = ["consultations", "links", "metadata"]

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
    sa.Column("notes", sa.Text(), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_activity_at", UTCDateTime(), nullable=False),
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
