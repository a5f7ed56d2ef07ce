"""The outbox: email waiting to be sent, sent, or given up on, and who unsubscribed.

An email is queued with what caused it and sent later by one node (consult/mail/sender.py),
so a mail server that is down, or a restart, loses nothing. Each address has one unsubscribe
token; an address that used it is never queued again, and what was queued for it before is
cancelled rather than sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..mail.policy import Failed, Outcome, RetryAt, Sent
from .database import Database
from .schema import mail_recipients, outbox

__all__ = ["Mail", "MailStatus", "NewMail", "Outbox", "Queued"]

MailStatus = Literal["queued", "sent", "failed", "cancelled"]


@dataclass(frozen=True)
class Mail:
    """An email of the outbox, without its bytes: what the pages show."""

    id: int
    consultation_id: str | None
    kind: str
    recipient: str
    status: MailStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "recipient": self.recipient,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "queued_at": self.created_at.isoformat(),
            "sent_at": _iso(self.sent_at),
            "error": self.last_error,
        }


@dataclass(frozen=True)
class NewMail:
    """An email to queue: ``build(unsubscribe_token)`` makes the message."""

    recipient: str
    kind: str
    build: Callable[[str], bytes]
    due_at: datetime
    consultation_id: str | None = None
    #: At most one email per key, ever (a reminder per appointment).
    key: str | None = None
    #: Nothing is queued while an email of the same kind for the consultation still waits.
    unless_queued: bool = False


@dataclass(frozen=True)
class Queued:
    """An email due to be sent: what the outbox holds, and the message itself."""

    mail: Mail
    message: bytes


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


_MAIL_COLUMNS = [outbox.c[name] for name in Mail.__dataclass_fields__]


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def queue(
        self, new: NewMail, now: datetime, conn: AsyncConnection | None = None
    ) -> int | None:
        """Queue ``new``; its id, or None if nothing was queued: the address unsubscribed, an
        email with its ``key`` was queued before, or (``unless_queued``) an email of its kind
        for the consultation still waits. With ``conn``, inside the caller's transaction: the
        email and what caused it commit together, or neither does."""
        if conn is None:
            try:
                async with self._db.begin() as own:
                    return await self.queue(new, now, own)
            except sa.exc.IntegrityError:
                return None  # the same key, queued by another node a moment before
        c = outbox.c
        if new.key is not None and await conn.scalar(sa.select(c.id).where(c.key == new.key)):
            return None
        if new.unless_queued and await conn.scalar(
            sa.select(c.id).where(
                c.consultation_id == new.consultation_id,
                c.kind == new.kind,
                c.status == "queued",
            )
        ):
            return None
        token = await _token(conn, new.recipient, now)
        if token is None:
            return None
        result = await conn.execute(
            outbox.insert().values(
                consultation_id=new.consultation_id,
                kind=new.kind,
                key=new.key,
                recipient=new.recipient,
                message=new.build(token),
                status="queued",
                attempts=0,
                next_attempt_at=new.due_at,
                created_at=now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def existing(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` some email was queued under."""
        wanted = list(keys)
        if not wanted:
            return set()
        async with self._db.connect() as conn:
            rows = await conn.execute(sa.select(outbox.c.key).where(outbox.c.key.in_(wanted)))
            return {row.key for row in rows}

    async def due(self, now: datetime, limit: int = 20) -> list[Queued]:
        """Queued emails whose time has come, oldest first."""
        c = outbox.c
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(*_MAIL_COLUMNS, c.message)
                    .where(c.status == "queued", c.next_attempt_at <= now)
                    .order_by(c.next_attempt_at, c.id)
                    .limit(limit)
                )
            ).mappings()
            return [Queued(_mail(row), row["message"]) for row in rows]

    async def next_due(self) -> datetime | None:
        c = outbox.c
        # Ordered, not min(): the column's own type makes the value an aware datetime.
        async with self._db.connect() as conn:
            at: datetime | None = await conn.scalar(
                sa.select(c.next_attempt_at)
                .where(c.status == "queued")
                .order_by(c.next_attempt_at)
                .limit(1)
            )
        return at

    async def record(self, mail_id: int, attempts: int, outcome: Outcome, now: datetime) -> None:
        """The outcome of attempt number ``attempts``."""
        values: dict[str, Any] = {"attempts": attempts}
        match outcome:
            case Sent():
                values |= {"status": "sent", "sent_at": now, "next_attempt_at": None}
            case RetryAt(at=at, reason=reason):
                values |= {"next_attempt_at": at, "last_error": reason}
            case Failed(reason=reason):
                values |= {"status": "failed", "next_attempt_at": None, "last_error": reason}
        await self._set(mail_id, values)

    async def cancel(self, mail_id: int, reason: str) -> None:
        await self._set(
            mail_id, {"status": "cancelled", "next_attempt_at": None, "last_error": reason}
        )

    async def _set(self, mail_id: int, values: dict[str, Any]) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                outbox.update()
                .where(outbox.c.id == mail_id, outbox.c.status == "queued")
                .values(**values)
            )

    async def of_consultation(self, consultation_id: str) -> list[Mail]:
        """The consultation's emails, newest first."""
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(*_MAIL_COLUMNS)
                    .where(outbox.c.consultation_id == consultation_id)
                    .order_by(outbox.c.id.desc())
                )
            ).mappings()
            return [_mail(row) for row in rows]

    async def undelivered(self, consultation_ids: Iterable[str]) -> dict[str, Mail]:
        """For each consultation whose latest email failed: that email."""
        ids = list(consultation_ids)
        if not ids:
            return {}
        c = outbox.c
        latest = (
            sa.select(sa.func.max(c.id))
            .where(c.consultation_id.in_(ids), c.status != "cancelled")
            .group_by(c.consultation_id)
        )
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(*_MAIL_COLUMNS).where(c.id.in_(latest), c.status == "failed")
                )
            ).mappings()
            return {row["consultation_id"]: _mail(row) for row in rows}

    # unsubscribing

    async def unsubscribed(self, address: str) -> bool:
        async with self._db.connect() as conn:
            at = await conn.scalar(
                sa.select(mail_recipients.c.unsubscribed_at).where(
                    mail_recipients.c.address == address
                )
            )
        return at is not None

    async def recipient(self, token: str) -> tuple[str, bool] | None:
        """The address an unsubscribe token belongs to and whether it unsubscribed."""
        r = mail_recipients.c
        async with self._db.connect() as conn:
            row = (
                await conn.execute(sa.select(r.address, r.unsubscribed_at).where(r.token == token))
            ).first()
        return (row.address, row.unsubscribed_at is not None) if row is not None else None

    async def unsubscribe(self, token: str, now: datetime) -> str | None:
        """Unsubscribe the token's address (again: no change) and cancel its queued email;
        the address, or None for an unknown token."""
        r = mail_recipients.c
        async with self._db.begin() as conn:
            address = await conn.scalar(sa.select(r.address).where(r.token == token))
            if address is None:
                return None
            await conn.execute(
                mail_recipients.update()
                .where(r.token == token, r.unsubscribed_at.is_(None))
                .values(unsubscribed_at=now)
            )
            await conn.execute(
                outbox.update()
                .where(outbox.c.recipient == address, outbox.c.status == "queued")
                .values(status="cancelled", next_attempt_at=None, last_error="unsubscribed")
            )
        return str(address)


async def _token(conn: AsyncConnection, address: str, now: datetime) -> str | None:
    """The address's unsubscribe token, made at its first email; None if it unsubscribed."""
    r = mail_recipients.c
    row = (
        await conn.execute(sa.select(r.token, r.unsubscribed_at).where(r.address == address))
    ).first()
    if row is not None:
        return None if row.unsubscribed_at is not None else str(row.token)
    token = secrets.token_urlsafe(24)
    await conn.execute(
        mail_recipients.insert().values(address=address, token=token, created_at=now)
    )
    return token


def _mail(row: Any) -> Mail:
    return Mail(**{name: row[name] for name in Mail.__dataclass_fields__})
