"""The store: every consultation and what later features add to it, behind one interface.

Built on SQLAlchemy Core with an async engine, so the embedded SQLite default (WAL, synchronous
FULL: an acknowledged write survives a crash) and a salon group's PostgreSQL run the same code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import AlreadyUploaded, InvalidToken, NotFound, UnknownCapture
from ..roles import ROLES, Role
from ..salon import Salon, parse_hours
from .leases import Leases
from .palette import Palette, SwatchLog
from .recordings import Recordings
from .schema import captures, chat_reads, consultations, links, messages, salon, stills
from .tokens import TokenSealer, hash_token, new_token

__all__ = [
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

MIGRATIONS = Path(__file__).with_name("migrations")


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
#: another still (``parent_id``).
Source = Literal["camera", "native", "video", "chat", "white-balance", "try-on"]


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


@dataclass(frozen=True)
class Grant:
    """What a valid link token opens."""

    consultation_id: str
    role: Role


class Store:
    def __init__(self, engine: AsyncEngine, sealer: TokenSealer) -> None:
        self._engine = engine
        self._sealer = sealer
        self._closed = False
        self.palette = Palette(engine)
        self.swatch_log = SwatchLog(engine)
        self.leases = Leases(engine)
        self.recordings = Recordings(engine)
        # Sequence numbers are handed out one message at a time per consultation.
        self._chat_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @classmethod
    async def open(cls, url: str, sealer: TokenSealer) -> Store:
        """Open the database at ``url``, creating or upgrading its schema to the latest version."""
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        async with engine.begin() as conn:
            await conn.run_sync(upgrade_schema)
        return cls(engine, sealer)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._engine.dispose()

    # consultations

    async def create_consultation(
        self,
        *,
        customer_name: str,
        customer_ref: str | None = None,
        scheduled_at: datetime | None = None,
        notes: str = "",
        link_ttl: timedelta,
        summary: str = "",
        based_on: str | None = None,
    ) -> tuple[Consultation, Links]:
        now = utcnow()
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
        )
        async with self._engine.begin() as conn:
            await conn.execute(consultations.insert().values(**dataclasses.asdict(consultation)))
            new_links = await self._issue_links(conn, consultation.id, now, link_ttl)
        return consultation, new_links

    async def get_consultation(self, consultation_id: str) -> Consultation:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                consultations.select().where(consultations.c.id == consultation_id)
            )
            row = result.mappings().first()
        if row is None:
            raise NotFound("No such consultation.")
        return _consultation(row)

    async def list_consultations(self, customer_ref: str | None = None) -> list[Consultation]:
        query = consultations.select().order_by(consultations.c.created_at.desc())
        if customer_ref is not None:
            query = query.where(consultations.c.customer_ref == customer_ref)
        async with self._engine.connect() as conn:
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
        async with self._engine.begin() as conn:
            result = await conn.execute(
                consultations.update().where(consultations.c.id == consultation_id).values(**values)
            )
            if result.rowcount == 0:
                raise NotFound("No such consultation.")
        return await self.get_consultation(consultation_id)

    async def set_status(self, consultation_id: str, status: Status) -> None:
        """Record the consultation's live status; any change counts as activity."""
        async with self._engine.begin() as conn:
            await conn.execute(
                consultations.update()
                .where(consultations.c.id == consultation_id)
                .values(status=status, last_activity_at=utcnow())
            )

    async def reset_live(self) -> None:
        """At start-up nobody is connected: a status left ``live`` by a crash is ``open``."""
        async with self._engine.begin() as conn:
            await conn.execute(
                consultations.update().where(consultations.c.status == "live").values(status="open")
            )

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # captures and stills

    async def create_capture(self, consultation_id: str, requested_by: Role) -> Capture:
        capture = Capture(secrets.token_hex(12), consultation_id, requested_by, utcnow())
        try:
            async with self._engine.begin() as conn:
                await conn.execute(captures.insert().values(**dataclasses.asdict(capture)))
        except sa.exc.IntegrityError:
            # Staff may name any id: one that is no consultation is not found, not a 500.
            raise NotFound("No such consultation.") from None
        return capture

    async def get_capture(self, consultation_id: str, capture_id: str) -> Capture:
        """The capture, if it belongs to ``consultation_id``: UnknownCapture otherwise."""
        async with self._engine.connect() as conn:
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
        async with self._engine.connect() as conn:
            found = await conn.scalar(
                sa.select(stills.c.id).where(
                    stills.c.capture_id == capture_id, stills.c.source == source
                )
            )
        return found is not None

    async def add_still(self, still: Still) -> None:
        """Record a still whose files are already in place; AlreadyUploaded on a second one."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(stills.insert().values(**dataclasses.asdict(still)))
                await conn.execute(
                    consultations.update()
                    .where(consultations.c.id == still.consultation_id)
                    .values(last_activity_at=still.created_at)
                )
        except sa.exc.IntegrityError:
            raise AlreadyUploaded() from None

    async def get_still(self, still_id: str) -> Still:
        async with self._engine.connect() as conn:
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
        async with self._engine.connect() as conn:
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

    async def set_nails(self, still_id: str, polygons: list[list[list[float]]]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                stills.update().where(stills.c.id == still_id).values(nails=polygons)
            )

    async def still_files(self) -> set[str]:
        """Every file a still row points to (its original and its thumbnail)."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sa.select(stills.c.file, stills.c.thumb))).all()
        return {name for row in rows for name in row}

    # chat

    async def add_message(
        self,
        consultation_id: str,
        sender: Role,
        client_id: str,
        text: str,
        still_id: str | None = None,
    ) -> tuple[ChatMessage, bool]:
        """Store a chat message under the next sequence number, before anyone sees it.

        Returns the message and whether it is new: the same ``client_id`` from the same sender
        returns the message stored the first time (a resend after a reconnect).
        """
        lock = self._chat_locks.setdefault(consultation_id, asyncio.Lock())
        async with lock, self._engine.begin() as conn:
            existing = await _message_by_client_id(conn, consultation_id, sender, client_id)
            if existing is not None:
                return existing, False
            last = await _last_seq(conn, consultation_id)
            message = ChatMessage(
                consultation_id, last + 1, client_id, sender, text, utcnow(), still_id
            )
            await conn.execute(messages.insert().values(**dataclasses.asdict(message)))
            await conn.execute(
                consultations.update()
                .where(consultations.c.id == consultation_id)
                .values(last_activity_at=message.created_at)
            )
        return message, True

    async def find_message(
        self, consultation_id: str, sender: Role, client_id: str
    ) -> ChatMessage | None:
        async with self._engine.connect() as conn:
            return await _message_by_client_id(conn, consultation_id, sender, client_id)

    async def messages(self, consultation_id: str) -> list[ChatMessage]:
        async with self._engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        messages.select()
                        .where(messages.c.consultation_id == consultation_id)
                        .order_by(messages.c.seq)
                    )
                )
                .mappings()
                .all()
            )
        return [ChatMessage(**row) for row in rows]

    async def mark_read(self, consultation_id: str, role: Role, seq: int) -> int:
        """``role`` has read up to ``seq``; marks only move forward, never past the last
        message. Returns the mark."""
        async with self._engine.begin() as conn:
            seq = max(0, min(seq, await _last_seq(conn, consultation_id)))
            where = (chat_reads.c.consultation_id == consultation_id) & (chat_reads.c.role == role)
            current = await conn.scalar(sa.select(chat_reads.c.seq).where(where))
            if current is None:
                await conn.execute(
                    chat_reads.insert().values(consultation_id=consultation_id, role=role, seq=seq)
                )
                return seq
            if seq > current:
                await conn.execute(chat_reads.update().where(where).values(seq=seq))
                return seq
            return int(current)

    async def read_marks(self, consultation_id: str) -> dict[Role, int]:
        async with self._engine.connect() as conn:
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
        async with self._engine.connect() as conn:
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
        async with self._engine.begin() as conn:
            updated = await conn.execute(salon.update().where(salon.c.id == 1).values(**values))
            if updated.rowcount == 0:
                await conn.execute(salon.insert().values(id=1, **values))

    # links

    async def links(self, consultation_id: str) -> Links:
        now = utcnow()
        async with self._engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        links.select().where(
                            links.c.consultation_id == consultation_id,
                            links.c.revoked_at.is_(None),
                            links.c.expires_at > now,
                        )
                    )
                )
                .mappings()
                .all()
            )
        tokens: dict[str, str | None] = {}
        expires: datetime | None = None
        for row in rows:
            tokens[row["role"]] = self._sealer.unseal(row["token_sealed"])
            expires = row["expires_at"] if expires is None else min(expires, row["expires_at"])
        return Links(tokens.get("customer"), tokens.get("stylist"), expires)

    async def revoke_links(self, consultation_id: str, link_ttl: timedelta) -> Links:
        """Revoke every link of the consultation and issue new ones, in one transaction."""
        now = utcnow()
        async with self._engine.begin() as conn:
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

    async def resolve_token(self, token: str) -> Grant:
        """What ``token`` opens; InvalidToken if it is unknown, expired or revoked."""
        if not token or len(token) > 256:
            raise InvalidToken()
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(links.select().where(links.c.token_hash == hash_token(token))))
                .mappings()
                .first()
            )
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= utcnow():
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


async def _last_seq(conn: Any, consultation_id: str) -> int:
    last = await conn.scalar(
        sa.select(sa.func.max(messages.c.seq)).where(messages.c.consultation_id == consultation_id)
    )
    return int(last or 0)


def _consultation(row: Any) -> Consultation:
    return Consultation(**{name: row[name] for name in Consultation.__dataclass_fields__})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL, not WAL's usual NORMAL: a write acknowledged to a client must survive power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade_schema(connection: Connection) -> None:
    """Migrate the database on ``connection`` to the latest schema."""
    cfg = _alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def schema_revisions() -> list[str]:
    """The schema revisions this code knows, oldest first (the last is the latest)."""
    scripts = ScriptDirectory.from_config(_alembic_config())
    return [s.revision for s in reversed(list(scripts.walk_revisions()))]
