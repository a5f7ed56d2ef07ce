"""The emails the service sends customers, and when: staff answered while the customer was
away, and the appointment's reminders (the day before, and shortly before: queued by due work,
consult/reminders.py). Each carries the customer's link and an
unsubscribe link, in the consultation's language or the salon's (``--mail-language``).

Nothing is queued without SMTP configured (``--smtp-url``), nor for a consultation without an
address or an address that unsubscribed. Staff messages while the customer is away coalesce:
the first queues one email, sent ``mail_coalesce`` later; the next ones find it waiting and
add nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from ..config import MAIL_LANGUAGES, Settings
from ..conversation import Conversations, Posted
from ..recording.bookings import Booking
from ..recording.outbox import NewMail
from ..recording.store import Consultation, Store, utcnow
from ..webroot import WEB_ROOT
from .compose import Attachment, Email, render
from .invitation import invitation
from .reminders import ReminderName

__all__ = ["Clock", "Notices", "date_words", "email_replies", "load_wording", "unsubscribe_path"]

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: The emails' words live beside the pages' own, in one catalogue per language.
CATALOGUES = WEB_ROOT / "i18n"


#: Messages the service posts in the salon's name from due work have these client ids (their
#: work's key): reminders carry their own email, so they are no staff answer to email about.
AUTOMATIC = ("reminder:",)


def unsubscribe_path(token: str) -> str:
    return f"/u/{token}"


def load_wording(language: str, prefix: str = "email.") -> dict[str, str]:
    """The catalogue's texts for ``language`` whose keys start with ``prefix`` (without it)."""
    catalogue = json.loads((CATALOGUES / f"{language}.json").read_text(encoding="utf-8"))
    return {k.removeprefix(prefix): v for k, v in catalogue.items() if k.startswith(prefix)}


def date_words(local: datetime, words: dict[str, str]) -> str:
    return words["date"].format(
        weekday=words[f"weekday.{local.weekday()}"],
        day=local.day,
        month=words[f"month.{local.month}"],
    )


class Notices:
    def __init__(self, store: Store, settings: Settings, clock: Clock = utcnow) -> None:
        self._store = store
        self._base_url = settings.base_url
        self._sender = settings.sender_address
        self._language = settings.mail_language
        self._coalesce = settings.mail_coalesce
        self._link_ttl = settings.link_ttl
        self._clock = clock
        self._wording = {language: load_wording(language) for language in MAIL_LANGUAGES}
        #: Set whenever an email is queued: the sender looks at once.
        self.queued = asyncio.Event()

    @property
    def configured(self) -> bool:
        return self._sender is not None

    async def staff_answered(self, consultation_id: str) -> None:
        """Staff wrote while the customer was away: an email with their link (one for a
        burst)."""
        if not self.configured:
            return
        consultation = await self._store.get_consultation(consultation_id)
        now = self._clock()
        await self._queue(consultation, "reply", now, now + self._coalesce, unless_queued=True)

    async def reminder(
        self,
        c: Consultation,
        name: ReminderName,
        key: str,
        now: datetime,
        conn: AsyncConnection,
    ) -> bool:
        """Queue the appointment's reminder ``name`` in ``conn`` (due work's transaction,
        consult/reminders.py), once ever for ``key``; whether it was queued."""
        if not self.configured or c.scheduled_at is None:
            return False
        zone = (await self._store.get_salon()).hours.zone
        kind = "reminder" if name == "day-before" else "reminder-soon"
        local = c.scheduled_at.astimezone(zone)
        return await self._queue(c, kind, now, now, key=key, appointment=local, conn=conn)

    async def booking(
        self,
        c: Consultation,
        booking: Booking,
        change: Literal["booked", "moved", "cancelled"],
        now: datetime,
        conn: AsyncConnection,
        token: str | None = None,
    ) -> bool:
        """Queue the booking's email, with its calendar invitation (or its cancellation), in
        the booking's transaction; ``token``: the customer's link when it was made in that
        transaction (not yet seen by the store's other connections)."""
        if not self.configured:
            return False
        zone = (await self._store.get_salon()).hours.zone
        language = c.customer_language or self._language
        words = self._wording[language]
        if token is None:
            token = await self._store.customer_link(c.id, self._link_ttl, conn=conn)
        link = f"{self._base_url}/c/{token}"
        ics = invitation(
            uid=f"{booking.id}@consult",
            start=booking.start_at,
            end=booking.end_at,
            summary=words["booking.event"],
            description=words["booking.event-text"].format(link=link),
            url=link,
            now=now,
            # Each change outranks the last in the customer's calendar.
            sequence=int(now.timestamp()) - int(booking.created_at.timestamp()),
            method="CANCEL" if change == "cancelled" else "PUBLISH",
        )
        kind = {"booked": "booked", "moved": "booking-moved", "cancelled": "booking-cancel"}
        return await self._queue(
            c,
            kind[change],
            now,
            now,
            key=f"booking:{booking.id}:{change}:{booking.start_at.isoformat()}",
            appointment=booking.start_at.astimezone(zone),
            conn=conn,
            token=token,
            attachments=(Attachment("invitation.ics", "text/calendar", ics),),
        )

    async def _queue(
        self,
        c: Consultation,
        kind: str,
        now: datetime,
        due_at: datetime,
        *,
        key: str | None = None,
        unless_queued: bool = False,
        appointment: datetime | None = None,
        conn: AsyncConnection | None = None,
        token: str | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> bool:
        """Queue ``kind``'s email to the consultation's customer; ``appointment``: its time
        in the salon's zone, for the words that name it; ``token``: the customer's link, if
        the caller has it (else theirs, or a new one if it expired)."""
        if c.customer_email is None or self._sender is None:
            return False
        sender = self._sender
        language = c.customer_language or self._language
        words = self._wording[language]
        if token is None:
            token = await self._store.customer_link(c.id, self._link_ttl, conn=conn)
        link = f"{self._base_url}/c/{token}"
        fields = (
            {"time": f"{appointment:%H:%M}", "date": date_words(appointment, words)}
            if appointment is not None
            else {}
        )
        email = Email(
            to=c.customer_email,
            subject=words[f"{kind}.subject"].format(**fields),
            text=words[f"{kind}.text"].format(name=c.customer_name, link=link, **fields),
            footer=words["footer"],
            attachments=attachments,
        )

        def build(token: str) -> bytes:
            url = f"{self._base_url}{unsubscribe_path(token)}"
            return render(email, sender=sender, unsubscribe_url=url, now=now)

        mail_id = await self._store.outbox.queue(
            NewMail(c.customer_email, kind, build, due_at, c.id, key, unless_queued), now, conn
        )
        if mail_id is None:
            return False
        logger.info("%s: %s email to %s queued (#%d)", c.id, kind, c.customer_email, mail_id)
        self.queued.set()
        return True

    async def status(self, c: Consultation) -> dict[str, Any]:
        """The customer's email as the salon's pages show it: configured or not, the address,
        unsubscribed or not, and its emails (newest first; ``failed`` ones are shown as not
        delivered, with the reason)."""
        return {
            "configured": self.configured,
            "address": c.customer_email,
            "language": c.customer_language or self._language,
            "unsubscribed": c.customer_email is not None
            and await self._store.outbox.unsubscribed(c.customer_email),
            "emails": [m.to_json() for m in await self._store.outbox.of_consultation(c.id)],
        }


async def email_replies(conversations: Conversations, notices: Notices) -> None:
    """Staff answering a customer who is away emails them: every conversation's messages are
    followed (as the inbox follows them) until the conversation service closes."""
    async with conversations.subscribe(None, "staff") as events:
        async for event in events:
            if not isinstance(event, Posted) or event.message.sender != "stylist":
                continue
            if not event.here:
                continue  # posted through another node: that node emails
            if "customer" in event.present or event.message.client_id.startswith(AUTOMATIC):
                continue
            try:
                await notices.staff_answered(event.consultation_id)
            except Exception:
                # The message is stored and delivered: a missing email is not the chat's error.
                logger.exception("%s: the customer's email was not queued", event.consultation_id)
