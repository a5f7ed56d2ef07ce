"""Booking: free slots, a booking made, moved or cancelled, and what goes with each.

A booking is one transaction: the customer (found by email or phone, or new), the
consultation at the slot's time with its links, the booking's row (whose UNIQUE slot makes a
second booking of the slot fail: ``slot-taken``), its reminders (due work) and its email with
the invitation (the outbox). All or nothing: a refused booking leaves no trace.

What may be booked is the salon's published availability (consult/slots.py) for a resource
("salon", or a member of staff's account id: a booking of theirs is assigned to them), in the
salon's time zone. A customer
may cancel or move their booking until the availability's cut-off; staff at any time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from .errors import BookingCancelled, BookingLocked, InvalidPhone, NotFound, SlotTaken
from .mail.notices import Clock, Notices
from .recording.bookings import Booking
from .recording.store import Consultation, Links, Store, utcnow
from .reminders import Reminders
from .slots import SALON, Availability, can_change, is_bookable, slots

__all__ = ["Booked", "BookingService", "phone_number"]

#: A phone number as written: digits, spaces, dots, dashes, brackets, a leading +.
_PHONE = re.compile(r"^\+?[0-9 ().\-]{6,30}$")
#: The customer's link lasts at least this long after the appointment.
LINK_AFTER = timedelta(days=30)


def phone_number(text: str | None) -> str | None:
    """The number as given (trimmed), None for none; InvalidPhone if it cannot be one."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    digits = sum(ch.isdigit() for ch in text)
    if not _PHONE.match(text) or not 6 <= digits <= 15:
        raise InvalidPhone("customer_phone: a phone number, e.g. +44 20 7946 0958.")
    return text


@dataclass(frozen=True)
class Booked:
    booking: Booking
    consultation: Consultation
    links: Links


class BookingService:
    def __init__(
        self,
        store: Store,
        reminders: Reminders,
        notices: Notices,
        link_ttl: timedelta,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._bookings = store.bookings
        self._reminders = reminders
        self._notices = notices
        self._link_ttl = link_ttl
        self._clock = clock

    async def _availability(self, resource: str) -> Availability:
        av = await self._bookings.availability(resource)
        if av is None:
            raise NotFound(f"Nothing can be booked with {resource!r}.")
        return av

    async def free(
        self, start: datetime, end: datetime, resource: str = SALON
    ) -> tuple[Availability, list[datetime]]:
        """The slots of [start, end) that can be booked now and are not taken."""
        av = await self._availability(resource)
        zone = (await self._store.get_salon()).hours.zone
        offered = slots(av, zone, start, end, self._clock())
        if not offered:
            return av, []
        taken = await self._bookings.taken(resource, offered[0], offered[-1] + av.slot)
        return av, [at for at in offered if at not in taken]

    async def _bookable(self, resource: str, start: datetime) -> Availability:
        av = await self._availability(resource)
        zone = (await self._store.get_salon()).hours.zone
        if not is_bookable(av, zone, start, self._clock()):
            raise SlotTaken(
                "This time cannot be booked: it is past, too soon, or not a slot on offer."
            )
        return av

    async def book(
        self,
        start: datetime,
        *,
        name: str,
        email: str | None,
        phone: str | None,
        language: str | None = None,
        customer_zone: str | None = None,
        resource: str = SALON,
    ) -> Booked:
        av = await self._bookable(resource, start)
        now = self._clock()
        # The link must outlast the appointment, whatever the salon's usual link life.
        ttl = max(self._link_ttl, start - now + LINK_AFTER)
        async with self._store.database.begin() as conn:
            customer = await self._store.customers.find_or_create(
                name=name, email=email, phone=phone, conn=conn
            )
            consultation, links = await self._store.create_consultation(
                customer_id=customer.id,
                customer_name=name,
                customer_email=email,
                customer_language=language,
                scheduled_at=start,
                link_ttl=ttl,
                # A stylist's availability (its resource is their account's id): theirs.
                assigned_to=None if resource == SALON else resource,
                conn=conn,
            )
            booking = await self._bookings.take(
                conn,
                consultation_id=consultation.id,
                resource=resource,
                start=start,
                end=start + av.slot,
                customer_zone=customer_zone,
                now=now,
            )
            await self._reminders.schedule(consultation, booked_at=now, conn=conn)
            await self._notices.booking(
                consultation, booking, "booked", now, conn, token=links.customer
            )
        return Booked(booking, consultation, links)

    async def _changeable(self, booking_id: str, by_staff: bool) -> tuple[Booking, Availability]:
        booking = await self._bookings.get(booking_id)
        if booking.status == "cancelled":
            raise BookingCancelled("This booking was cancelled.")
        av = await self._availability(booking.resource)
        if not by_staff and not can_change(av, booking.start_at, self._clock()):
            raise BookingLocked(
                "It is too close to the appointment to change it here: write to the salon."
            )
        return booking, av

    async def cancel(self, booking_id: str, *, by_staff: bool = False, actor: str) -> Booking:
        booking, _ = await self._changeable(booking_id, by_staff)
        now = self._clock()
        async with self._store.database.begin() as conn:
            await self._bookings.cancel(conn, booking.id, now)
            await self._audit(actor, "cancelled", booking, booking.start_at, conn)
            consultation = await self._store.update_consultation(
                booking.consultation_id, {"scheduled_at": None}, conn=conn
            )
            await self._reminders.schedule(consultation, conn=conn)
            await self._notices.booking(consultation, booking, "cancelled", now, conn)
        return await self._bookings.get(booking.id)

    async def move(
        self, booking_id: str, start: datetime, *, by_staff: bool = False, actor: str
    ) -> Booking:
        booking, _ = await self._changeable(booking_id, by_staff)
        av = await self._bookable(booking.resource, start)
        now = self._clock()
        async with self._store.database.begin() as conn:
            moved = await self._bookings.move(conn, booking, start, start + av.slot)
            await self._audit(actor, "moved", booking, start, conn)
            consultation = await self._store.update_consultation(
                booking.consultation_id, {"scheduled_at": start}, conn=conn
            )
            await self._reminders.schedule(consultation, booked_at=now, conn=conn)
            await self._notices.booking(consultation, moved, "moved", now, conn)
        return moved

    async def _audit(
        self, actor: str, action: str, booking: Booking, start: datetime, conn: AsyncConnection
    ) -> None:
        """A change of a booking in the audit log, in its transaction (by staff or by the
        customer from their link: ``customer:<consultation>``)."""
        detail = {"consultation": booking.consultation_id, "start": start.isoformat()}
        await self._store.audit.record(
            actor, action, f"booking:{booking.id}", detail=detail, conn=conn
        )
