"""The store: every consultation and what later features add to it, behind one interface.

Built on SQLAlchemy Core with an async engine, so the embedded SQLite default (WAL, synchronous
FULL: an acknowledged write survives a crash) and a salon group's PostgreSQL run the same code.
"""

from __future__ import annotations

import dataclasses
import secrets
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import AlreadyUploaded, InvalidToken, NotFound, UnknownCapture
from ..ownership import OWNER_LEASE
from ..roles import ROLES, Role
from ..salon import Salon, parse_hours
from .accounts import Accounts, reachable
from .attachments import AttachmentLog
from .audit import Audit
from .bookings import Bookings
from .call_owners import CallOwners
from .checkins import CheckinLog
from .consents import Consents
from .customers import Customers
from .database import Database
from .deletion import Deletion
from .failures import FailureLog
from .inbox import Inbox, LastKind
from .inbox import changed as inbox_changed
from .leases import Leases
from .nodes import Nodes
from .outbox import Outbox
from .palette import Palette, SwatchLog
from .presence import Presence
from .quick_replies import QuickReplies
from .recordings import Recordings
from .schema import (
    attachments,
    captures,
    chat_reads,
    checkins,
    consultations,
    conversations,
    links,
    messages,
    salon,
    stills,
)
from .tokens import TokenSealer, hash_token, new_token

__all__ = [
    "LIVE_LEASE",
    "LIVE_RENEW",
    "Capture",
    "ChatMessage",
    "Consultation",
    "Grant",
    "Links",
    "Source",
    "Status",
    "Still",
    "Store",
    "schema_revisions",
    "upgrade_schema",
]


Status = Literal["open", "live"]

#: How long a live status holds without renewal: a node that dies leaves its calls live for
#: at most this long. Nodes renew every ``LIVE_RENEW``.
LIVE_LEASE = timedelta(seconds=30)
LIVE_RENEW = timedelta(seconds=10)

MIGRATIONS = Path(__file__).with_name("migrations")
#: PostgreSQL advisory lock held while the schema is upgraded (any constant of our own).
MIGRATION_LOCK = 0x636F6E73756C74


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Consultation:
    id: str
    customer_name: str
    customer_ref: str | None
    scheduled_at: datetime | None
    notes: str
    status: Status
    created_at: datetime
    last_activity_at: datetime
    summary: str = ""
    notes_updated_at: datetime | None = None
    summary_updated_at: datetime | None = None
    based_on: str | None = None
    customer_email: str | None = None
    #: The customer's emails' language ("en", "zh-CN"); None: the salon's.
    customer_language: str | None = None
    #: The stylist account whose consultation this is; None: unassigned.
    assigned_to: str | None = None
    #: Who it is for (consult/recording/customers.py); name, email, language and reference
    #: above are the customer's, copied.
    customer_id: str | None = None
    #: A repair booked from an aftercare check-in: the consultation it repairs.
    repair_of: str | None = None


@dataclass(frozen=True)
class Links:
    """A consultation's current link tokens (None where a token can no longer be unsealed)."""

    customer: str | None
    stylist: str | None
    expires_at: datetime | None

    def urls(self, base_url: str) -> dict[str, str | None]:
        """The links as handed out: ``/c/<token>`` for the customer, ``/s/<token>`` for staff."""
        return {
            "customer_link": f"{base_url}/c/{self.customer}" if self.customer else None,
            "stylist_link": f"{base_url}/s/{self.stylist}" if self.stylist else None,
            "links_expire_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass(frozen=True)
class Capture:
    id: str
    consultation_id: str
    requested_by: Role
    created_at: datetime


#: camera: the customer's camera photo of a capture (``takePhoto``); native: a photo of the
#: device's own camera app, where the browser cannot take one; video: the best frame of the
#: video; chat: a photo either side sent in the chat; white-balance and try-on: images derived from
#: another still (``parent_id``); checkin: a photo answering an aftercare check-in.
Source = Literal["camera", "native", "video", "chat", "white-balance", "try-on", "checkin"]


@dataclass(frozen=True)
class Still:
    id: str
    consultation_id: str
    capture_id: str
    source: Source
    media_type: str
    width: int
    height: int
    bytes: int
    sha256: str
    sharpness: float
    exposure: float
    #: The quality gate's measures and flags (consult.media.quality.Assessment as a dict).
    quality: dict[str, Any]
    #: Paths inside the stills folder.
    file: str
    thumb: str
    created_at: datetime
    #: A derived image: the still it was made from, and how (kind and parameters).
    parent_id: str | None = None
    derivation: dict[str, Any] | None = None
    #: The stylist's nail outlines on this still: polygons of [x, y] image pixels.
    nails: list[list[list[float]]] | None = None
    #: The customer's video size when the still was taken: a photo may be larger than it.
    video_width: int | None = None
    video_height: int | None = None


@dataclass(frozen=True)
class ChatMessage:
    consultation_id: str
    #: 1, 2, 3, ... per consultation: the order everyone sees.
    seq: int
    #: The sender's own id for the message: sending it again changes nothing.
    client_id: str
    sender: Role
    text: str
    created_at: datetime
    still_id: str | None = None
    #: A voice message, video clip or file sent in the chat.
    attachment_id: str | None = None


@dataclass(frozen=True)
class Grant:
    """What a valid link token opens."""

    consultation_id: str
    role: Role


class Store:
    def __init__(
        self, db: Database, sealer: TokenSealer, node: str, link_idle: timedelta | None = None
    ) -> None:
        self._db = db
        #: Lasting links (issue 16): a customer's link opens while their consultation had
        #: activity this recently, whenever it would have expired; None: until it expires.
        self.link_idle = link_idle
        self._sealer = sealer
        self._closed = False
        #: The node this store's calls run on: the owner recorded with their live status.
        self.node = node
        self.palette = Palette(db)
        self.swatch_log = SwatchLog(db)
        self.leases = Leases(db)
        self.auth_failures = FailureLog(db)
        self.inbox = Inbox(db)
        self.quick_replies = QuickReplies(db)
        self.attachments = AttachmentLog(db)
        self.outbox = Outbox(db)
        self.recordings = Recordings(db)
        self.audit = Audit(db)
        self.accounts = Accounts(db)
        self.customers = Customers(db)
        self.deletion = Deletion(db, self.audit)
        self.consents = Consents(db)
        self.bookings = Bookings(db)
        self.checkins = CheckinLog(db)
        # issue 13A: nodes and who owns a call
        self.nodes = Nodes(db)
        self.call_owners = CallOwners(db)
        # Cross-node delivery (issue 13C)
        self.presence = Presence(db)

    @classmethod
    async def open(
        cls,
        url: str,
        sealer: TokenSealer,
        node: str | None = None,
        link_idle: timedelta | None = None,
    ) -> Store:
        """Open the database at ``url``, creating or upgrading its schema to the latest version.

        ``node``: who this process is among the nodes sharing the database (default: this
        machine's name)."""
        db = Database.open(url)
        try:
            async with db.migrating() as conn:
                await conn.run_sync(upgrade_schema)
        except BaseException:
            await db.dispose()
            raise
        return cls(db, sealer, node or socket.gethostname(), link_idle)

    @property
    def database(self) -> Database:
        """The database, for a service with tables and a runner of its own (consult/due.py)."""
        return self._db

    @property
    def dialect(self) -> str:
        return self._db.dialect

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._db.dispose()

    # consultations

    async def create_consultation(
        self,
        *,
        customer_name: str = "",
        customer_ref: str | None = None,
        scheduled_at: datetime | None = None,
        notes: str = "",
        link_ttl: timedelta,
        summary: str = "",
        based_on: str | None = None,
        customer_email: str | None = None,
        customer_language: str | None = None,
        assigned_to: str | None = None,
        customer_id: str | None = None,
        conn: AsyncConnection | None = None,
        repair_of: str | None = None,
    ) -> tuple[Consultation, Links]:
        """A consultation for the customer ``customer_id``; without one, for the customer with
        the reference ``customer_ref``, else for a new customer made from the details given.
        With ``conn``, in the caller's transaction (a booking: consult/booking.py)."""
        now = utcnow()
        async with self._db.within(conn) as conn:
            if customer_id is not None:
                customer = await self.customers.get(customer_id, conn)
            else:
                found = (
                    await self.customers.find_by_ref(customer_ref, conn) if customer_ref else None
                )
                customer = found or await self.customers.create(
                    name=customer_name,
                    email=customer_email,
                    language=customer_language,
                    external_ref=customer_ref,
                    conn=conn,
                )
            return await self._insert_consultation(
                conn,
                now,
                link_ttl,
                customer_id=customer.id,
                customer_name=customer_name or customer.name,
                customer_ref=customer_ref or customer.external_ref,
                scheduled_at=scheduled_at,
                notes=notes,
                summary=summary,
                based_on=based_on,
                customer_email=customer_email or customer.email,
                customer_language=customer_language or customer.language,
                assigned_to=assigned_to,
                repair_of=repair_of,
            )

    async def _insert_consultation(
        self,
        conn: Any,
        now: datetime,
        link_ttl: timedelta,
        *,
        customer_id: str,
        customer_name: str,
        customer_ref: str | None,
        scheduled_at: datetime | None,
        notes: str,
        summary: str,
        based_on: str | None,
        customer_email: str | None,
        customer_language: str | None,
        assigned_to: str | None,
        repair_of: str | None,
    ) -> tuple[Consultation, Links]:
        consultation = Consultation(
            id=secrets.token_hex(8),
            customer_name=customer_name,
            customer_ref=customer_ref,
            scheduled_at=scheduled_at.astimezone(UTC) if scheduled_at else None,
            notes=notes,
            status="open",
            created_at=now,
            last_activity_at=now,
            summary=summary,
            summary_updated_at=now if summary else None,
            based_on=based_on,
            customer_email=customer_email,
            customer_language=customer_language,
            assigned_to=assigned_to,
            customer_id=customer_id,
            repair_of=repair_of,
        )
        await conn.execute(consultations.insert().values(**dataclasses.asdict(consultation)))
        new_links = await self._issue_links(conn, consultation.id, now, link_ttl)
        return consultation, new_links

    async def follow_up(
        self,
        earlier_id: str,
        link_ttl: timedelta,
        *,
        repair: bool = False,
        assigned_to: str | None = None,
    ) -> tuple[Consultation, Links]:
        """ "Same again": a new consultation for the same customer that starts from an earlier
        one (its summary, its key photos on display); ``repair``: marked as a repair of it."""
        earlier = await self.get_consultation(earlier_id)
        return await self.create_consultation(
            customer_id=earlier.customer_id,
            customer_name=earlier.customer_name,
            customer_ref=earlier.customer_ref,
            assigned_to=assigned_to,
            summary=earlier.summary,
            based_on=earlier.id,
            link_ttl=link_ttl,
            customer_email=earlier.customer_email,
            customer_language=earlier.customer_language,
            repair_of=earlier.id if repair else None,
        )

    async def get_consultation(self, consultation_id: str) -> Consultation:
        async with self._db.connect() as conn:
            result = await conn.execute(
                consultations.select().where(consultations.c.id == consultation_id)
            )
            row = result.mappings().first()
        if row is None:
            raise NotFound("No such consultation.")
        return _consultation(row)

    async def list_consultations(
        self,
        customer_ref: str | None = None,
        *,
        customer_id: str | None = None,
        reachable_by: str | None = None,
    ) -> list[Consultation]:
        """``reachable_by``: only a stylist's own and unassigned consultations (their account)."""
        query = consultations.select().order_by(consultations.c.created_at.desc())
        if customer_ref is not None:
            query = query.where(consultations.c.customer_ref == customer_ref)
        if customer_id is not None:
            query = query.where(consultations.c.customer_id == customer_id)
        if reachable_by is not None:
            query = query.where(reachable(reachable_by))
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_consultation(row) for row in rows]

    async def update_notes(
        self, consultation_id: str, *, notes: str | None = None, summary: str | None = None
    ) -> Consultation:
        """Save the private notes and/or the shared summary (whole texts, last save wins)."""
        now = utcnow()
        values: dict[str, Any] = {"last_activity_at": now}
        if notes is not None:
            values |= {"notes": notes, "notes_updated_at": now}
        if summary is not None:
            values |= {"summary": summary, "summary_updated_at": now}
        return await self.update_consultation(consultation_id, values)

    async def update_consultation(
        self,
        consultation_id: str,
        values: dict[str, Any],
        *,
        conn: AsyncConnection | None = None,
    ) -> Consultation:
        """Change the customer's details (``customer_email``, ``customer_language``,
        ``scheduled_at``, ...): the columns named in ``values``. With ``conn``, in the
        caller's transaction (read back through it)."""
        async with self._db.within(conn) as conn:
            result = await conn.execute(
                consultations.update().where(consultations.c.id == consultation_id).values(**values)
            )
            if result.rowcount == 0:
                raise NotFound("No such consultation.")
            row = (
                (
                    await conn.execute(
                        consultations.select().where(consultations.c.id == consultation_id)
                    )
                )
                .mappings()
                .one()
            )
        return _consultation(row)

    async def scheduled_between(self, start: datetime, end: datetime) -> list[Consultation]:
        """Consultations whose appointment is in [start, end) (the reminders' look-up at
        start: ix_consultations_scheduled_at keeps it short)."""
        c = consultations.c
        query = consultations.select().where(c.scheduled_at >= start, c.scheduled_at < end)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_consultation(row) for row in rows]

    async def stale_consultations(self, before: datetime, limit: int) -> list[str]:
        """Up to ``limit`` consultations with no activity since ``before`` and no live call
        (for the retention policy). An appointment (``scheduled_at``, a booking's) or a
        check-in due after ``before`` counts as activity: a customer's visit or check-in to
        come is not deleted before it."""
        c = consultations.c
        coming = sa.exists().where(checkins.c.consultation_id == c.id, checkins.c.due_at >= before)
        query = (
            sa.select(c.id)
            .where(
                c.last_activity_at < before,
                sa.or_(c.status != "live", c.live_until.is_(None), c.live_until <= utcnow()),
                sa.or_(c.scheduled_at.is_(None), c.scheduled_at < before),
                ~coming,
            )
            .order_by(c.last_activity_at, c.id)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            return list((await conn.scalars(query)).all())

    async def set_status(self, consultation_id: str, status: Status) -> None:
        """Record the consultation's live status; any change counts as activity.

        ``live`` is held by this node for ``LIVE_LEASE`` (renewed by ``hold_live`` while the
        call lives); ``open`` clears it only where this node or nobody holds it, so a node
        ending its call never wipes a live call another node has taken over."""
        now = utcnow()
        c = consultations.c
        async with self._db.begin() as conn:
            if status == "live":
                await conn.execute(
                    consultations.update()
                    .where(c.id == consultation_id)
                    .values(
                        status="live",
                        live_node=self.node,
                        live_until=now + LIVE_LEASE,
                        last_activity_at=now,
                    )
                )
            else:
                await conn.execute(
                    consultations.update()
                    .where(c.id == consultation_id, self._ours_or_lapsed(now))
                    .values(status="open", live_node=None, live_until=None, last_activity_at=now)
                )

    async def hold_live(
        self, consultation_ids: Collection[str], conn: AsyncConnection | None = None
    ) -> None:
        """Renew this node's hold on its live calls (and record them live again if a write
        was lost to a database outage)."""
        if not consultation_ids:
            return
        now = utcnow()
        c = consultations.c
        async with self._db.within(conn) as conn:
            await conn.execute(
                consultations.update()
                .where(c.id.in_(list(consultation_ids)), self._ours_or_lapsed(now))
                .values(status="live", live_node=self.node, live_until=now + LIVE_LEASE)
            )

    async def hold_calls(self, epochs: Mapping[str, int], live: Collection[str]) -> set[str]:
        """This node's one renewal of its calls, in one transaction: their ownership
        (consultation id -> epoch; consult/recording/call_owners.py) and the live status of
        those ``live``. The calls lost to another node are returned, and not held live here."""
        if not epochs:
            return set()  # no call: no write (the embedded default's disk stays quiet)
        async with self._db.begin() as conn:
            lost = await self.call_owners.renew(self.node, epochs, utcnow(), OWNER_LEASE, conn)
            await self.hold_live([c for c in live if c not in lost], conn)
        return lost

    async def reset_live(self) -> None:
        """At start-up this node holds no call: what it held before a crash is ``open`` and
        nobody's (its ownership released: another node need not wait for its lease), and so
        is anything whose holder stopped renewing; other nodes' live calls stay live."""
        now = utcnow()
        async with self._db.begin() as conn:
            await conn.execute(
                consultations.update()
                .where(consultations.c.status == "live", self._ours_or_lapsed(now))
                .values(status="open", live_node=None, live_until=None)
            )
            await self.call_owners.release_node(self.node, conn)

    def _ours_or_lapsed(self, now: datetime) -> sa.ColumnElement[bool]:
        c = consultations.c
        return sa.or_(c.live_node.is_(None), c.live_node == self.node, c.live_until <= now)

    async def ping(self) -> None:
        async with self._db.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # captures and stills

    async def create_capture(self, consultation_id: str, requested_by: Role) -> Capture:
        capture = Capture(secrets.token_hex(12), consultation_id, requested_by, utcnow())
        try:
            async with self._db.begin() as conn:
                await conn.execute(captures.insert().values(**dataclasses.asdict(capture)))
        except sa.exc.IntegrityError:
            # Staff may name any id: one that is no consultation is not found, not a 500.
            raise NotFound("No such consultation.") from None
        return capture

    async def get_capture(self, consultation_id: str, capture_id: str) -> Capture:
        """The capture, if it belongs to ``consultation_id``: UnknownCapture otherwise."""
        async with self._db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        captures.select().where(
                            captures.c.id == capture_id,
                            captures.c.consultation_id == consultation_id,
                        )
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise UnknownCapture()
        return Capture(**row)

    async def has_still(self, capture_id: str, source: str) -> bool:
        async with self._db.connect() as conn:
            found = await conn.scalar(
                sa.select(stills.c.id).where(
                    stills.c.capture_id == capture_id, stills.c.source == source
                )
            )
        return found is not None

    async def add_still(self, still: Still) -> None:
        """Record a still whose files are already in place; AlreadyUploaded on a second one."""
        try:
            async with self._db.begin() as conn:
                await conn.execute(stills.insert().values(**dataclasses.asdict(still)))
                await conn.execute(
                    consultations.update()
                    .where(consultations.c.id == still.consultation_id)
                    .values(last_activity_at=still.created_at)
                )
        except sa.exc.IntegrityError:
            raise AlreadyUploaded() from None

    async def get_still(self, still_id: str) -> Still:
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(stills.select().where(stills.c.id == still_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("No such still.")
        return Still(**row)

    async def list_stills(self, consultation_id: str) -> list[Still]:
        """The consultation's stills, newest first."""
        async with self._db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        stills.select()
                        .where(stills.c.consultation_id == consultation_id)
                        .order_by(stills.c.created_at.desc(), stills.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return [Still(**row) for row in rows]

    async def delete_still(self, still_id: str) -> Still | None:
        """Remove a still's row (a check-in's photo taken again); returns it, if it was there."""
        async with self._db.begin() as conn:
            row = (
                (await conn.execute(stills.select().where(stills.c.id == still_id)))
                .mappings()
                .first()
            )
            if row is None:
                return None
            await conn.execute(stills.delete().where(stills.c.id == still_id))
        return Still(**row)

    async def set_nails(self, still_id: str, polygons: list[list[list[float]]]) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                stills.update().where(stills.c.id == still_id).values(nails=polygons)
            )

    async def still_files(self) -> set[str]:
        """Every file a still row points to (its original and its thumbnail), and every
        attachment's file (kept in the same folder)."""
        async with self._db.connect() as conn:
            rows = (await conn.execute(sa.select(stills.c.file, stills.c.thumb))).all()
        return {name for row in rows for name in row} | await self.attachments.files()

    # chat

    async def add_message(
        self,
        consultation_id: str,
        sender: Role,
        client_id: str,
        text: str,
        still_id: str | None = None,
        attachment_id: str | None = None,
        *,
        conn: AsyncConnection | None = None,
    ) -> tuple[ChatMessage, bool]:
        """Store a chat message under the next sequence number, before anyone sees it.

        Returns the message and whether it is new: the same ``client_id`` from the same sender
        returns the message stored the first time (a resend after a reconnect). With
        ``conn``, in the caller's transaction (due work's handler: consult/due.py).
        """
        async with self._db.within(conn) as conn:
            # The consultation's row is the lock: one writer at a time hands out its next
            # number, whichever node or process it runs in (on SQLite, BEGIN IMMEDIATE is).
            await _lock_consultation(conn, consultation_id)
            existing = await _message_by_client_id(conn, consultation_id, sender, client_id)
            if existing is not None:
                return existing, False
            last = await _last_seq(conn, consultation_id)
            message = ChatMessage(
                consultation_id, last + 1, client_id, sender, text, utcnow(), still_id,
                attachment_id,
            )  # fmt: skip
            await conn.execute(messages.insert().values(**dataclasses.asdict(message)))
            await conn.execute(
                consultations.update()
                .where(consultations.c.id == consultation_id)
                .values(last_activity_at=message.created_at)
            )
            await _summarise(conn, message)
        return message, True

    async def find_message(
        self, consultation_id: str, sender: Role, client_id: str
    ) -> ChatMessage | None:
        async with self._db.connect() as conn:
            return await _message_by_client_id(conn, consultation_id, sender, client_id)

    async def messages(
        self, consultation_id: str, *, after: int = 0, upto: int | None = None
    ) -> list[ChatMessage]:
        """The conversation's messages in order; those numbered after ``after`` and up to
        ``upto`` (a node catching up with what another node stored: consult/conversation.py)."""
        query = (
            messages.select()
            .where(messages.c.consultation_id == consultation_id, messages.c.seq > after)
            .order_by(messages.c.seq)
        )
        if upto is not None:
            query = query.where(messages.c.seq <= upto)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [ChatMessage(**row) for row in rows]

    async def mark_read(self, consultation_id: str, role: Role, seq: int) -> int:
        """``role`` has read up to ``seq``; marks only move forward, never past the last
        message. Returns the mark."""
        async with self._db.begin() as conn:
            # Locked as add_message: two readers' marks never go backwards.
            await _lock_consultation(conn, consultation_id)
            seq = max(0, min(seq, await _last_seq(conn, consultation_id)))
            where = (chat_reads.c.consultation_id == consultation_id) & (chat_reads.c.role == role)
            current = await conn.scalar(sa.select(chat_reads.c.seq).where(where))
            if current is None:
                await conn.execute(
                    chat_reads.insert().values(consultation_id=consultation_id, role=role, seq=seq)
                )
                if role == "stylist":
                    await _count_unread(conn, consultation_id, seq)
                return seq
            if seq > current:
                await conn.execute(chat_reads.update().where(where).values(seq=seq))
                if role == "stylist":
                    await _count_unread(conn, consultation_id, seq)
                return seq
            return int(current)

    async def read_marks(self, consultation_id: str) -> dict[Role, int]:
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(chat_reads.c.role, chat_reads.c.seq).where(
                        chat_reads.c.consultation_id == consultation_id
                    )
                )
            ).all()
        return {row.role: row.seq for row in rows}

    # the salon

    async def get_salon(self) -> Salon:
        async with self._db.connect() as conn:
            row = (await conn.execute(salon.select().where(salon.c.id == 1))).mappings().first()
        if row is None:
            return Salon()
        return Salon(parse_hours(row["timezone"], row["hours"]), row["away_message"])

    async def set_salon(self, value: Salon) -> None:
        data = value.to_json()
        values = {
            "timezone": data["timezone"],
            "hours": data["hours"],
            "away_message": value.away_message,
            "updated_at": utcnow(),
        }
        try:
            async with self._db.begin() as conn:
                updated = await conn.execute(salon.update().where(salon.c.id == 1).values(**values))
                if updated.rowcount == 0:
                    await conn.execute(salon.insert().values(id=1, **values))
        except sa.exc.IntegrityError:
            # Another node saved the first hours at the same moment: the last save wins.
            async with self._db.begin() as conn:
                await conn.execute(salon.update().where(salon.c.id == 1).values(**values))

    # links

    async def links(self, consultation_id: str) -> Links:
        now = utcnow()
        query = (
            sa.select(links, consultations.c.last_activity_at)
            .join(consultations, consultations.c.id == links.c.consultation_id)
            .where(links.c.consultation_id == consultation_id, links.c.revoked_at.is_(None))
        )
        async with self._db.connect() as conn:
            found = (await conn.execute(query)).mappings().all()
        rows = [row for row in found if self._lasts(row, now)]
        tokens: dict[str, str | None] = {}
        expires: datetime | None = None
        for row in rows:
            tokens[row["role"]] = self._sealer.unseal(row["token_sealed"])
            expires = row["expires_at"] if expires is None else min(expires, row["expires_at"])
        return Links(tokens.get("customer"), tokens.get("stylist"), expires)

    def _lasts(self, row: Any, now: datetime) -> bool:
        """Whether a link (a row of ``links`` with its consultation's ``last_activity_at``)
        still opens at ``now``: until it expires, and a customer's while they are active."""
        if row["expires_at"] > now:
            return True
        return (
            row["role"] == "customer"
            and self.link_idle is not None
            and row["last_activity_at"] + self.link_idle > now
        )

    async def revoke_links(self, consultation_id: str, link_ttl: timedelta) -> Links:
        """Revoke every link of the consultation and issue new ones, in one transaction."""
        now = utcnow()
        async with self._db.begin() as conn:
            exists = await conn.scalar(
                sa.select(consultations.c.id).where(consultations.c.id == consultation_id)
            )
            if exists is None:
                raise NotFound("No such consultation.")
            await conn.execute(
                links.update()
                .where(links.c.consultation_id == consultation_id, links.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return await self._issue_links(conn, consultation_id, now, link_ttl)

    async def customer_link(
        self,
        consultation_id: str,
        link_ttl: timedelta,
        *,
        conn: AsyncConnection | None = None,
    ) -> str:
        """The customer's link token; a new one if theirs has expired (the stylist's link is
        left as it is): what an email to the customer hands them must open. With ``conn``,
        a new one is issued in the caller's transaction."""
        current = (await self.links(consultation_id)).customer
        if current is not None:
            return current
        now = utcnow()
        token = new_token()
        async with self._db.within(conn) as conn:
            await conn.execute(
                links.update()
                .where(
                    links.c.consultation_id == consultation_id,
                    links.c.role == "customer",
                    links.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            await conn.execute(
                links.insert().values(
                    consultation_id=consultation_id,
                    role="customer",
                    token_hash=hash_token(token),
                    token_sealed=self._sealer.seal(token),
                    created_at=now,
                    expires_at=now + link_ttl,
                )
            )
        return token

    async def resolve_token(self, token: str) -> Grant:
        """What ``token`` opens; InvalidToken if it is unknown, expired or revoked. A
        customer's link lasts while the customer is active (``link_idle``)."""
        if not token or len(token) > 256:
            raise InvalidToken()
        query = (
            sa.select(links, consultations.c.last_activity_at)
            .join(consultations, consultations.c.id == links.c.consultation_id)
            .where(links.c.token_hash == hash_token(token))
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None or row["revoked_at"] is not None or not self._lasts(row, utcnow()):
            raise InvalidToken()
        return Grant(row["consultation_id"], row["role"])

    async def _issue_links(
        self, conn: Any, consultation_id: str, now: datetime, ttl: timedelta
    ) -> Links:
        tokens = {role: new_token() for role in ROLES}
        await conn.execute(
            links.insert(),
            [
                {
                    "consultation_id": consultation_id,
                    "role": role,
                    "token_hash": hash_token(token),
                    "token_sealed": self._sealer.seal(token),
                    "created_at": now,
                    "expires_at": now + ttl,
                }
                for role, token in tokens.items()
            ],
        )
        return Links(tokens["customer"], tokens["stylist"], now + ttl)


async def _message_by_client_id(
    conn: Any, consultation_id: str, sender: str, client_id: str
) -> ChatMessage | None:
    row = (
        (
            await conn.execute(
                messages.select().where(
                    messages.c.consultation_id == consultation_id,
                    messages.c.sender == sender,
                    messages.c.client_id == client_id,
                )
            )
        )
        .mappings()
        .first()
    )
    return ChatMessage(**row) if row is not None else None


async def _summarise(conn: Any, message: ChatMessage) -> None:
    """The inbox's summary of the conversation follows each new message (schema.conversations)."""
    kind: LastKind | None = "photo" if message.still_id is not None else None
    if message.attachment_id is not None:
        kind = await conn.scalar(
            sa.select(attachments.c.kind).where(attachments.c.id == message.attachment_id)
        )
    last = {
        "last_seq": message.seq,
        "last_sender": message.sender,
        "last_text": message.text,
        "last_kind": kind,
        "last_at": message.created_at,
    }
    await inbox_changed(conn, message.consultation_id)
    mine = conversations.c.consultation_id == message.consultation_id
    added = 1 if message.sender == "customer" else 0
    updated = await conn.execute(
        conversations.update().where(mine).values(**last, unread=conversations.c.unread + added)
    )
    if updated.rowcount == 0:
        await conn.execute(
            conversations.insert().values(
                consultation_id=message.consultation_id, unread=added, **last
            )
        )


async def _count_unread(conn: Any, consultation_id: str, mark: int) -> None:
    """The customer's messages after the salon's read mark ``mark``."""
    await inbox_changed(conn, consultation_id)
    unread = (
        sa.select(sa.func.count())
        .where(
            messages.c.consultation_id == consultation_id,
            messages.c.sender == "customer",
            messages.c.seq > mark,
        )
        .scalar_subquery()
    )
    await conn.execute(
        conversations.update()
        .where(conversations.c.consultation_id == consultation_id)
        .values(unread=unread)
    )


async def _lock_consultation(conn: Any, consultation_id: str) -> None:
    """Hold the consultation's row until the transaction ends (FOR UPDATE on PostgreSQL;
    SQLite has no row locks and needs none: its writing transactions hold the database)."""
    found = await conn.scalar(
        sa.select(consultations.c.id).where(consultations.c.id == consultation_id).with_for_update()
    )
    if found is None:
        raise NotFound("No such consultation.")


async def _last_seq(conn: Any, consultation_id: str) -> int:
    last = await conn.scalar(
        sa.select(sa.func.max(messages.c.seq)).where(messages.c.consultation_id == consultation_id)
    )
    return int(last or 0)


def _consultation(row: Any) -> Consultation:
    values = {name: row[name] for name in Consultation.__dataclass_fields__}
    # Live only while its holder renews it: a node that died leaves nothing live for long.
    if row["status"] == "live" and (row["live_until"] is None or row["live_until"] <= utcnow()):
        values["status"] = "open"
    return Consultation(**values)


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade_schema(connection: Connection) -> None:
    """Migrate the database on ``connection`` to the latest schema."""
    if connection.dialect.name == "postgresql":
        # Nodes starting together: one migrates, the others wait and find it done. The lock
        # ends with the transaction.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    cfg = _alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def schema_revisions() -> list[str]:
    """The schema revisions this code knows, oldest first (the last is the latest)."""
    scripts = ScriptDirectory.from_config(_alembic_config())
    return [s.revision for s in reversed(list(scripts.walk_revisions()))]
