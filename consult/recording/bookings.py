"""Bookings and the availability they are made in (issue 16).

A booking is a row beside its consultation, made in the same transaction as the consultation
and its customer (and whatever the caller adds: its reminders). Its ``slot`` column (resource
and start) is UNIQUE while the booking stands: of two bookings of one slot, through one node
or two, on SQLite or PostgreSQL, the database lets the first commit and refuses the other,
which is reported as ``SlotTaken`` with nothing of it kept. Cancelling or moving lets go of
the old slot (``slot`` NULL).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import NotFound, SlotTaken
from ..slots import Availability, parse_availability
from .accounts import reachable
from .database import Database
from .schema import availability, bookings, consultations

__all__ = ["Booking", "BookingStatus", "Bookings", "slot_name"]

BookingStatus = Literal["booked", "cancelled"]


def slot_name(resource: str, start: datetime) -> str:
    return f"{resource}@{start.astimezone(UTC).isoformat()}"


@dataclass(frozen=True)
class Booking:
    id: str
    consultation_id: str
    resource: str
    start_at: datetime
    end_at: datetime
    status: BookingStatus
    customer_zone: str | None
    created_at: datetime
    cancelled_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consultation_id": self.consultation_id,
            "resource": self.resource,
            "start": self.start_at.isoformat(),
            "end": self.end_at.isoformat(),
            "status": self.status,
            "customer_zone": self.customer_zone,
            "created_at": self.created_at.isoformat(),
            "cancelled_at": self.cancelled_at.isoformat() if self.cancelled_at else None,
        }


_COLUMNS = [bookings.c[name] for name in Booking.__dataclass_fields__]


def _booking(row: Any) -> Booking:
    return Booking(**{name: row[name] for name in Booking.__dataclass_fields__})


class Bookings:
    def __init__(self, db: Database) -> None:
        self._db = db

    # availability

    async def availability(self, resource: str) -> Availability | None:
        async with self._db.connect() as conn:
            settings = await conn.scalar(
                sa.select(availability.c.settings).where(availability.c.resource == resource)
            )
        return parse_availability(**settings) if settings is not None else None

    async def resources(self) -> list[str]:
        async with self._db.connect() as conn:
            found = await conn.scalars(
                sa.select(availability.c.resource).order_by(availability.c.resource)
            )
            return list(found.all())

    async def set_availability(self, resource: str, value: Availability, now: datetime) -> None:
        settings = value.to_json()
        async with self._db.begin() as conn:
            updated = await conn.execute(
                availability.update()
                .where(availability.c.resource == resource)
                .values(settings=settings, updated_at=now)
            )
            if updated.rowcount == 0:
                await conn.execute(
                    availability.insert().values(
                        resource=resource, settings=settings, updated_at=now
                    )
                )

    # bookings

    async def take(
        self,
        conn: AsyncConnection,
        *,
        consultation_id: str,
        resource: str,
        start: datetime,
        end: datetime,
        customer_zone: str | None,
        now: datetime,
    ) -> Booking:
        """Take the slot in the caller's transaction: SlotTaken if it is taken (the caller's
        transaction must then end: on PostgreSQL it can do nothing more)."""
        booking = Booking(
            id=secrets.token_hex(8),
            consultation_id=consultation_id,
            resource=resource,
            start_at=start.astimezone(UTC),
            end_at=end.astimezone(UTC),
            status="booked",
            customer_zone=customer_zone,
            created_at=now,
            cancelled_at=None,
        )
        try:
            await conn.execute(
                bookings.insert().values(
                    **booking.__dict__, slot=slot_name(resource, booking.start_at)
                )
            )
        except sa.exc.IntegrityError:
            raise SlotTaken("Somebody has just booked this slot: choose another.") from None
        return booking

    async def is_taken(self, resource: str, start: datetime) -> bool:
        async with self._db.connect() as conn:
            found = await conn.scalar(
                sa.select(bookings.c.id).where(bookings.c.slot == slot_name(resource, start))
            )
        return found is not None

    async def taken(self, resource: str, start: datetime, end: datetime) -> set[datetime]:
        """The starts of the standing bookings of ``resource`` in [start, end)."""
        c = bookings.c
        async with self._db.connect() as conn:
            found = await conn.scalars(
                sa.select(c.start_at).where(
                    c.resource == resource,
                    c.status == "booked",
                    c.start_at >= start,
                    c.start_at < end,
                )
            )
            return set(found.all())

    async def get(self, booking_id: str) -> Booking:
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(sa.select(*_COLUMNS).where(bookings.c.id == booking_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("No such booking.")
        return _booking(row)

    async def of_consultation(self, consultation_id: str) -> Booking | None:
        """The consultation's booking (the standing one, else the last cancelled)."""
        c = bookings.c
        async with self._db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(*_COLUMNS)
                        .where(c.consultation_id == consultation_id)
                        .order_by(sa.case((c.status == "booked", 0), else_=1), c.created_at.desc())
                        .limit(1)
                    )
                )
                .mappings()
                .first()
            )
        return _booking(row) if row is not None else None

    async def between(
        self, start: datetime, end: datetime, *, reachable_by: str | None = None
    ) -> list[Booking]:
        """Bookings starting in [start, end), cancelled ones too, by start: for staff.
        ``reachable_by``: only a stylist account's own and unassigned consultations'."""
        c = bookings.c
        query = (
            sa.select(*_COLUMNS)
            .where(c.start_at >= start, c.start_at < end)
            .order_by(c.start_at, c.created_at)
        )
        if reachable_by is not None:
            query = query.join(consultations, consultations.c.id == c.consultation_id).where(
                reachable(reachable_by)
            )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_booking(row) for row in rows]

    async def cancel(self, conn: AsyncConnection, booking_id: str, now: datetime) -> None:
        """Cancel in the caller's transaction, letting go of the slot."""
        await conn.execute(
            bookings.update()
            .where(bookings.c.id == booking_id, bookings.c.status == "booked")
            .values(status="cancelled", slot=None, cancelled_at=now)
        )

    async def move(
        self, conn: AsyncConnection, booking: Booking, start: datetime, end: datetime
    ) -> Booking:
        """Move to another slot in the caller's transaction: SlotTaken if it is taken."""
        try:
            await conn.execute(
                bookings.update()
                .where(bookings.c.id == booking.id, bookings.c.status == "booked")
                .values(
                    start_at=start.astimezone(UTC),
                    end_at=end.astimezone(UTC),
                    slot=slot_name(booking.resource, start),
                )
            )
        except sa.exc.IntegrityError:
            raise SlotTaken("Somebody has just booked this slot: choose another.") from None
        return Booking(
            **(
                booking.__dict__
                | {"start_at": start.astimezone(UTC), "end_at": end.astimezone(UTC)}
            )
        )
