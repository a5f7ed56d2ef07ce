"""An appointment's reminders as due work: by email and as a message in its conversation.

When a consultation's appointment is set, moved or cancelled, ``schedule`` replaces its
pending reminders (keys ``reminder:<consultation>:<time>:<reminder>:<channel>``): a moved
appointment's reminders are new work, a cancelled one's are gone, and one already sent stays
sent. At start, ``reconcile`` schedules every future appointment's (those made while the
service was not running, with ``consult create``, or before this version), which changes
nothing for the ones already scheduled.

The handlers run in the due-work runner's transaction (consult/due.py): the email is an
outbox row keyed by the work's key, the message a conversation message whose ``client_id``
is that key; a repeated run adds neither again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy.ext.asyncio import AsyncConnection

from .config import MAIL_LANGUAGES, Settings
from .conversation import Conversations
from .due import Clock
from .errors import NotFound
from .mail.notices import Notices, date_words, load_wording
from .mail.reminders import (
    ReminderName,
    ReminderPlan,
    reminder_prefix,
    reminder_times,
    still_useful,
)
from .recording.due import DueItem, DueWork
from .recording.store import Consultation, Store, utcnow

__all__ = ["CHAT", "EMAIL", "Reminders", "reminder_prefix"]

logger = logging.getLogger(__name__)

EMAIL = "reminder-email"
CHAT = "reminder-chat"
#: How far ahead ``reconcile`` looks for appointments.
AHEAD = timedelta(days=400)


class Reminders:
    def __init__(
        self,
        store: Store,
        work: DueWork,
        notices: Notices,
        conversations: Conversations,
        settings: Settings,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._work = work
        self._notices = notices
        self._conversations = conversations
        self._plan = ReminderPlan(settings.reminder_day_before, settings.reminder_before)
        self._language = settings.mail_language
        self._clock = clock
        self._chat = {
            language: load_wording(language, "reminder.chat.") for language in MAIL_LANGUAGES
        }
        self._dates = {language: load_wording(language) for language in MAIL_LANGUAGES}

    async def _work_items(
        self, c: Consultation, booked_at: datetime
    ) -> list[tuple[str, str, datetime, dict[str, str]]]:
        """The appointment's reminders as due work: (kind, key, due time, payload)."""
        if c.scheduled_at is None:
            return []
        zone = (await self._store.get_salon()).hours.zone
        when = c.scheduled_at.isoformat()
        return [
            (kind, f"{reminder_prefix(c.id)}{when}:{name}:{channel}", at,
             {"reminder": name, "scheduled_at": when})
            for name, at in reminder_times(c.scheduled_at, booked_at, zone, self._plan).items()
            for kind, channel in ((EMAIL, "email"), (CHAT, "chat"))
        ]  # fmt: skip

    async def schedule(
        self,
        c: Consultation,
        *,
        booked_at: datetime | None = None,
        conn: AsyncConnection | None = None,
    ) -> int:
        """Replace the consultation's pending reminders with its appointment's (none if it
        has none); how many were put. ``booked_at``: when the appointment was made (default:
        now): a reminder due before then is not sent."""
        await self._work.cancel_prefix(reminder_prefix(c.id), conn=conn)
        items = await self._work_items(c, booked_at or self._clock())
        for kind, key, at, payload in items:
            await self._work.put(kind, key, at, payload, conn=conn)
        return len(items)

    async def reconcile(self) -> int:
        """Schedule the future appointments' reminders that are not yet (made while the
        service was not running, or before due work); how many."""
        now = self._clock()
        put = 0
        for c in await self._store.scheduled_between(now, now + AHEAD):
            # Booked when it was created: a reminder past by then was never to be sent.
            for kind, key, at, payload in await self._work_items(c, c.created_at):
                if await self._work.get(key) is None:
                    await self._work.put(kind, key, at, payload)
                    put += 1
        return put

    async def _current(self, item: DueItem) -> tuple[Consultation, ReminderName] | None:
        """The consultation, if the reminder is still for its appointment and still useful."""
        consultation_id = item.key.removeprefix("reminder:").split(":", 1)[0]
        try:
            c = await self._store.get_consultation(consultation_id)
        except NotFound:
            return None  # deleted since (its due work goes with it; one already claimed ends here)
        name = cast(ReminderName, item.payload["reminder"])
        if c.scheduled_at is None or c.scheduled_at.isoformat() != item.payload["scheduled_at"]:
            return None  # moved or cancelled since
        if not still_useful(name, c.scheduled_at, self._clock()):
            logger.info("%s: reminder %s too late to send", c.id, item.key)
            return None
        return c, name

    async def send_email(self, item: DueItem, conn: AsyncConnection) -> None:
        current = await self._current(item)
        if current is not None:
            c, name = current
            await self._notices.reminder(c, name, item.key, self._clock(), conn)

    async def post_message(self, item: DueItem, conn: AsyncConnection) -> None:
        current = await self._current(item)
        if current is None:
            return
        c, name = current
        assert c.scheduled_at is not None
        language = c.customer_language or self._language
        zone = (await self._store.get_salon()).hours.zone
        local = c.scheduled_at.astimezone(zone)
        text = self._chat[language][name].format(
            name=c.customer_name,
            time=f"{local:%H:%M}",
            date=date_words(local, self._dates[language]),
        )
        await self._conversations.post(c.id, "stylist", item.key, text, conn=conn)
