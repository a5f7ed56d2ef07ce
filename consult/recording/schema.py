"""Tables of the store (SQLAlchemy Core). Changes here need an alembic revision beside them."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from ..errors import InvalidRequest

__all__ = [
    "accounts",
    "api_keys",
    "attachments",
    "audit_log",
    "auth_failures",
    "availability",
    "bookings",
    "call_owners",
    "captures",
    "chat_reads",
    "checkin_photos",
    "checkin_settings",
    "checkins",
    "consents",
    "consultations",
    "conversations",
    "customers",
    "due_work",
    "file_removals",
    "leases",
    "links",
    "mail_recipients",
    "messages",
    "metadata",
    "nodes",
    "outbox",
    "password_resets",
    "quick_replies",
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


class String(sa.TypeDecorator[str]):
    """Text with the same rule on every backend: PostgreSQL cannot store NUL, so it is refused
    everywhere (InvalidRequest, 400) rather than accepted on SQLite only."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is not None and "\x00" in value:
            raise InvalidRequest("Text may not contain NUL characters.")
        return value


class Text(String):
    impl = sa.Text
    cache_ok = True


consultations = sa.Table(
    "consultations",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column("customer_name", String(200), nullable=False),
    sa.Column("customer_ref", String(200), nullable=True, index=True),
    sa.Column("scheduled_at", UTCDateTime(), nullable=True, index=True),
    #: The stylist's private notes: never shown to the customer.
    sa.Column("notes", Text(), nullable=False, server_default=""),
    sa.Column("status", String(16), nullable=False, server_default="open"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_activity_at", UTCDateTime(), nullable=False),
    #: The agreed design, shared with the customer.
    sa.Column("summary", Text(), nullable=False, server_default=""),
    sa.Column("notes_updated_at", UTCDateTime(), nullable=True),
    sa.Column("summary_updated_at", UTCDateTime(), nullable=True),
    #: "Same again": the earlier consultation this one starts from.
    sa.Column("based_on", String(32), nullable=True),
    #: A live call's holder (the node it runs on) and until when: live only while renewed.
    sa.Column("live_node", String(128), nullable=True),
    sa.Column("live_until", UTCDateTime(), nullable=True),
    #: Where the customer's emails go (docs/operations.md, Email), and in which language
    #: (None: the salon's, ``--mail-language``).
    sa.Column("customer_email", String(254), nullable=True),
    sa.Column("customer_language", String(8), nullable=True),
    #: The stylist account whose consultation this is (None: unassigned, any stylist's).
    sa.Column(
        "assigned_to",
        String(32),
        sa.ForeignKey("accounts.id", name="fk_consultations_assigned_to", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    #: Who the consultation is for (issue 17). The customer's name, email, language and
    #: ``customer_ref`` (their ``external_ref``) are copied here as well, as v1 clients read them.
    sa.Column("customer_id", String(32), sa.ForeignKey("customers.id"), nullable=True, index=True),
    #: A repair booked from an aftercare check-in (issue 16B): the consultation it repairs.
    sa.Column("repair_of", String(32), nullable=True),
    #: Changes to its inbox summary (its unread count, its last message) so far: the inbox's
    #: events carry it, so a page drops a snapshot older than one it has
    #: (consult/recording/inbox.py).
    sa.Column("inbox_version", sa.Integer(), nullable=False, server_default="0"),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("role", String(16), nullable=False),
    sa.Column("token_hash", String(64), nullable=False, unique=True),
    sa.Column("token_sealed", Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

captures = sa.Table(
    "captures",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("requested_by", String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

stills = sa.Table(
    "stills",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "capture_id",
        String(32),
        sa.ForeignKey("captures.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("source", String(16), nullable=False),
    sa.Column("media_type", String(32), nullable=False),
    sa.Column("width", sa.Integer(), nullable=False),
    sa.Column("height", sa.Integer(), nullable=False),
    sa.Column("bytes", sa.Integer(), nullable=False),
    sa.Column("sha256", String(64), nullable=False),
    sa.Column("sharpness", sa.Float(), nullable=False),
    sa.Column("exposure", sa.Float(), nullable=False),
    sa.Column("quality", sa.JSON(), nullable=False),
    sa.Column("file", String(255), nullable=False),
    sa.Column("thumb", String(255), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    #: A derived image (white-balanced, try-on): the still it was made from, and how.
    sa.Column("parent_id", String(32), nullable=True),
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
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("client_id", String(64), nullable=False),
    sa.Column("sender", String(16), nullable=False),
    sa.Column("text", Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    #: A photo sent in the chat: the still holding it.
    sa.Column("still_id", String(32), nullable=True),
    #: A voice message, video clip or file sent in the chat (``attachments``).
    sa.Column("attachment_id", String(32), nullable=True),
    sa.UniqueConstraint("consultation_id", "sender", "client_id", name="uq_messages_client_id"),
)

chat_reads = sa.Table(
    "chat_reads",
    metadata,
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("role", String(16), primary_key=True),
    sa.Column("seq", sa.Integer(), nullable=False),
)

#: One row (id 1): the salon's opening hours and away message.
salon = sa.Table(
    "salon",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("timezone", String(64), nullable=False),
    sa.Column("hours", sa.JSON(), nullable=False),
    sa.Column("away_message", Text(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: The salon's palette.
swatches = sa.Table(
    "swatches",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column("name", String(80), nullable=False),
    sa.Column("brand", String(80), nullable=False, server_default=""),
    sa.Column("code", String(40), nullable=False, server_default=""),
    sa.Column("hex", String(7), nullable=False),
    sa.Column("finish", String(16), nullable=False),
    sa.Column("family", String(16), nullable=False),
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
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("action", String(16), nullable=False),
    sa.Column("swatch_id", String(32), nullable=True),
    sa.Column("swatch", sa.JSON(), nullable=True),
    sa.Column("by", String(16), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)

#: Work that one node at a time does for every node sharing the database (scheduled backups):
#: who holds it and until when, and when it was last done.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", String(32), primary_key=True),
    sa.Column("holder", String(128), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("done_at", UTCDateTime(), nullable=True),
)

#: Each consultation's conversation as the inbox lists it (issue 15): its last message and the
#: customer's messages staff have not read, kept with every message and read mark so the
#: inbox's page is one indexed read, not an aggregate over every message.
conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("last_seq", sa.Integer(), nullable=False),
    sa.Column("last_sender", String(16), nullable=False),
    sa.Column("last_text", Text(), nullable=False),
    #: What the last message is when it is not words: photo, voice, video or file (NULL: words).
    sa.Column("last_kind", String(8), nullable=True),
    sa.Column("last_at", UTCDateTime(), nullable=False),
    #: The customer's messages after the salon's read mark.
    sa.Column("unread", sa.Integer(), nullable=False, server_default="0"),
    #: The closed period (its next opening) whose away notice this conversation was given.
    sa.Column("away_for", String(40), nullable=True),
    sa.Index("ix_conversations_inbox", "unread", "last_at"),
)

#: The salon's saved replies, inserted in the inbox and the console with a click.
quick_replies = sa.Table(
    "quick_replies",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column("text", Text(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: Failed authentications by client address, shared by the nodes on one database (the
#: per-address limit of consult/ratelimit.py); only the limit's window is kept.
auth_failures = sa.Table(
    "auth_failures",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("client", String(64), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False, index=True),
    sa.Index("ix_auth_failures_client_at", "client", "at"),
)

#: Voice messages, video clips and files sent in the chat, stored byte for byte beside the
#: stills (consult/recording/attachments.py).
attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("sender", String(16), nullable=False),
    #: voice, video or file.
    sa.Column("kind", String(8), nullable=False),
    #: From the bytes, never from the client.
    sa.Column("media_type", String(32), nullable=False),
    #: The name offered for download (safe: no path, the extension its bytes call for).
    sa.Column("name", String(100), nullable=False),
    sa.Column("bytes", sa.Integer(), nullable=False),
    sa.Column("sha256", String(64), nullable=False),
    #: Seconds, measured from the packets (voice and video).
    sa.Column("duration", sa.Float(), nullable=True),
    sa.Column("width", sa.Integer(), nullable=True),
    sa.Column("height", sa.Integer(), nullable=True),
    #: Path inside the stills folder.
    sa.Column("file", String(255), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

#: Every address the service has mailed: its unsubscribe token, and whether it used it.
mail_recipients = sa.Table(
    "mail_recipients",
    metadata,
    sa.Column("address", String(254), primary_key=True),
    sa.Column("token", String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("unsubscribed_at", UTCDateTime(), nullable=True),
)

#: Outgoing email, queued with what caused it and sent by one node (consult/mail/sender.py).
#: ``message`` is the whole RFC 5322 message, made when queued: a retry sends the same bytes,
#: Message-ID included. ``key``: at most one email per key, ever (a reminder per appointment).
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column("kind", String(16), nullable=False),
    sa.Column("key", String(128), nullable=True, unique=True),
    sa.Column("recipient", String(254), nullable=False),
    sa.Column("message", sa.LargeBinary(), nullable=False),
    #: queued, sent, failed (refused for good, or given up), cancelled (unsubscribed since)
    sa.Column("status", String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", Text(), nullable=True),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
)

#: Recordings of a call (issue 18): one file per participant per recording. ``status``
#: "recording" while written (``file`` is then the staged file, finished at the next start if
#: the service died), "complete" once placed with its byte count and SHA-256.
recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    #: Whose media the file holds.
    sa.Column("role", String(16), nullable=False),
    #: The two participants' files of one recording share it (and their time line).
    sa.Column("session", String(32), nullable=False),
    sa.Column("status", String(16), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("duration_s", sa.Float(), nullable=True),
    sa.Column("media_type", String(32), nullable=True),
    sa.Column("bytes", sa.BigInteger(), nullable=True),
    sa.Column("sha256", String(64), nullable=True),
    sa.Column("file", String(255), nullable=False),
)

#: Staff accounts (issue 17): the owner and each stylist sign in with their own. ``email`` is
#: kept lower-cased (one account per address, whatever the case typed); ``password_hash`` is
#: argon2id's encoded hash.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column("email", String(254), nullable=False, unique=True),
    sa.Column("name", String(200), nullable=False),
    #: owner or stylist
    sa.Column("role", String(16), nullable=False),
    sa.Column("password_hash", String(255), nullable=False),
    sa.Column("disabled_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("password_changed_at", UTCDateTime(), nullable=False),
)

#: Single-use, expiring password reset tokens sent by email; only their SHA-256 is kept.
password_resets = sa.Table(
    "password_resets",
    metadata,
    sa.Column("token_hash", String(64), primary_key=True),
    sa.Column(
        "account_id",
        String(32),
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
)

#: API keys of accounts, for automation (``Authorization: Bearer ck_...``); only their SHA-256
#: is kept. A key acts as its account, with its role.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column(
        "account_id",
        String(32),
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", String(80), nullable=False),
    sa.Column("key_hash", String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

#: Who did what to what, and when (consult/recording/audit.py): kept ``--audit-keep-days``.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False, index=True),
    sa.Column("actor", String(128), nullable=False, index=True),
    sa.Column("action", String(32), nullable=False),
    sa.Column("subject", String(128), nullable=False, index=True),
    sa.Column("detail", sa.JSON(), nullable=True),
)

#: Work due at a time (issue 16): reminders, check-ins, anything computed from the store rather
#: than held in timers (consult/recording/due.py, run by consult/due.py). ``key`` names the
#: work once, ever: its handler's effect is deduplicated by it, so a repeat does nothing.
#: ``claimed_by``/``claimed_until``: the node running it, and until when its claim holds.
due_work = sa.Table(
    "due_work",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("kind", String(32), nullable=False),
    sa.Column("key", String(200), nullable=False, unique=True),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("claimed_by", String(128), nullable=True),
    sa.Column("claimed_until", UTCDateTime(), nullable=True),
    sa.Column("done_at", UTCDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_due_work_pending", "done_at", "due_at"),
)

#: What customers may book (issue 16), per resource: "salon", or a member of staff's account
#: id (consult/slots.py's ``Availability`` as JSON, in the salon's time zone).
availability = sa.Table(
    "availability",
    metadata,
    sa.Column("resource", String(64), primary_key=True),
    sa.Column("settings", sa.JSON(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: Booked slots (issue 16): each a consultation at ``start_at``. ``slot`` (resource and
#: start) is unique while the booking stands, so two nodes cannot book one slot; a
#: cancelled or moved-from booking lets go of it (NULL: any number of them).
bookings = sa.Table(
    "bookings",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("resource", String(64), nullable=False),
    sa.Column("start_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("end_at", UTCDateTime(), nullable=False),
    sa.Column("slot", String(120), nullable=True, unique=True),
    #: booked, cancelled
    sa.Column("status", String(16), nullable=False),
    sa.Column("customer_zone", String(64), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("cancelled_at", UTCDateTime(), nullable=True),
)


# issue 17B: customers, consent, deletion


#: A salon's customer (issue 17): their consultations point here (``consultations.customer_id``).
#: ``email_key`` and ``phone_key`` are the normalised forms matched by ``find_or_create``.
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column("name", String(200), nullable=False, index=True),
    sa.Column("email", String(254), nullable=True),
    sa.Column("email_key", String(254), nullable=True, index=True),
    sa.Column("phone", String(40), nullable=True),
    sa.Column("phone_key", String(40), nullable=True, index=True),
    #: The customer's language ("en", "zh-CN"); None: the salon's.
    sa.Column("language", String(8), nullable=True),
    #: Staff's notes on the customer: never shown to them.
    sa.Column("notes", Text(), nullable=False, server_default=""),
    #: The salon's own reference (what ``customer_ref`` was before customers existed).
    sa.Column("external_ref", String(200), nullable=True, index=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    #: A duplicate merged into another customer: kept only to send its id on.
    sa.Column("merged_into", String(32), nullable=True),
    #: The customer asked, from their link, for their data to be deleted (the owner confirms).
    sa.Column("deletion_requested_at", UTCDateTime(), nullable=True),
)

#: What a customer agreed to be kept before joining a call: the wording's version, when, and
#: what it covered (stills, messages, recordings).
consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "customer_id",
        String(32),
        sa.ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("version", String(16), nullable=False),
    sa.Column("kept", sa.JSON(), nullable=False),
    sa.Column("given_at", UTCDateTime(), nullable=False),
)

#: Files whose rows a deletion removed, written in the deletion's transaction and removed
#: after it: what a crash left is removed at the next start (consult/recording/deletion.py).
file_removals = sa.Table(
    "file_removals",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    #: stills (the stills folder, attachments included) or recordings.
    sa.Column("folder", String(16), nullable=False),
    sa.Column("file", String(255), nullable=False),
    sa.Column("queued_at", UTCDateTime(), nullable=False),
)


# issue 16B: aftercare check-ins

#: A check-in after a consultation: at ``due_at`` the customer's conversation gets a guided
#: photo request (``state`` scheduled -> sent), and their answer (photos in ``checkin_photos``,
#: the form in ``answers``) makes it answered. ``followup_id``: the consultation made from an
#: answered one ("same again" or a repair).
checkins = sa.Table(
    "checkins",
    metadata,
    sa.Column("id", String(32), primary_key=True),
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    #: When its photo request is posted (due work ``checkin:<id>``, consult/due.py).
    sa.Column("due_at", UTCDateTime(), nullable=False, index=True),
    #: The views asked for: top, side, cuticles.
    sa.Column("views", sa.JSON(), nullable=False),
    #: scheduled, sent, answered
    sa.Column("state", String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("answered_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=True),
    #: The form: lifting, chipping (booleans), comfort (1 to 5), text.
    sa.Column("answers", sa.JSON(), nullable=True),
    sa.Column("followup_id", String(32), nullable=True),
)

#: A check-in's photo of one view: a still (source "checkin"); answered again, the view's
#: still is replaced, never added to.
checkin_photos = sa.Table(
    "checkin_photos",
    metadata,
    sa.Column(
        "checkin_id",
        String(32),
        sa.ForeignKey("checkins.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("view", String(16), primary_key=True),
    sa.Column("still_id", String(32), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)

#: One row (id 1): the days after a consultation its check-ins fall due by default, and how
#: long an unanswered one waits before it is overdue.
checkin_settings = sa.Table(
    "checkin_settings",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("days", sa.JSON(), nullable=False),
    sa.Column("overdue_days", sa.Integer(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)


# issue 13A: nodes and who owns a call

#: The nodes serving one database (consult/recording/nodes.py): where the others reach each
#: (``url``), the address its media offers, a fingerprint of its keys (never the keys), and
#: its heartbeat (``alive_until``). A draining node takes no new call.
nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("node_id", String(128), primary_key=True),
    sa.Column("url", String(512), nullable=False),
    sa.Column("media_address", String(255), nullable=True),
    sa.Column("keys", String(80), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("alive_until", UTCDateTime(), nullable=False),
    sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()),
)

#: Which node owns a consultation's call (consult/recording/call_owners.py): a lease
#: (``until``) renewed while the call lives, with an epoch that grows with every new owner, so
#: a node that lost the call learns it at its next renewal. ``node_id`` NULL: released (the
#: row stays, and with it the epoch).
call_owners = sa.Table(
    "call_owners",
    metadata,
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("node_id", String(128), nullable=True, index=True),
    sa.Column("epoch", sa.Integer(), nullable=False),
    sa.Column("until", UTCDateTime(), nullable=True),
)

# Cross-node delivery (issue 13C)

#: Who has a conversation open on which node, while the node has peers (consult/conversation.py):
#: a row per side and node, held ``until`` the node's next renewal, so a node that dies
#: leaves nobody present for long.
presence = sa.Table(
    "presence",
    metadata,
    sa.Column(
        "consultation_id",
        String(32),
        sa.ForeignKey("consultations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("role", String(16), primary_key=True),
    sa.Column("node_id", String(128), primary_key=True),
    sa.Column("until", UTCDateTime(), nullable=False),
    sa.Index("ix_presence_node_id", "node_id"),
)
