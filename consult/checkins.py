"""Aftercare check-ins, the service: staff schedule them, the photo request goes into the
customer's conversation when one falls due, the customer answers (photos through the quality
gate, stored as stills; the form), and staff follow up ("same again" or a repair).

What is due is kept in the store (``checkins``: state ``scheduled`` until its request is
posted); ``deliver`` is idempotent by the check-in's id (the request is a conversation message
whose client id is ``checkin:<id>``, kept once by the chat), so a delivery repeated after a
crash, or by two nodes at once, posts one message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .aftercare import (
    QUALITY_REFUSED,
    VIEWS,
    Answers,
    answered_text,
    due_times,
    message_key,
    request_text,
    standing,
)
from .config import Settings
from .conversation import Conversations
from .errors import CheckinNotSent, InvalidRequest, UnknownCheckin
from .media.stills import Stills
from .recording.checkins import Checkin, Listed
from .recording.store import Consultation, Links, Store

__all__ = ["Aftercare", "Board", "Clock", "listed_json"]

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Board:
    """The dashboard's check-ins: due (sent, waiting), overdue, answered."""

    due: list[Listed]
    overdue: list[Listed]
    answered: list[Listed]
    scheduled: list[Listed]


#: How far back the dashboard looks.
BOARD_DAYS = 60


class Aftercare:
    def __init__(
        self,
        store: Store,
        stills: Stills,
        conversations: Conversations,
        settings: Settings,
        clock: Clock = utcnow,
    ) -> None:
        self._store = store
        self._stills = stills
        self._conversations = conversations
        self._settings = settings
        self._clock = clock

    # staff: scheduling

    async def schedule(
        self, consultation_id: str, days: Sequence[int] | None = None
    ) -> list[Checkin]:
        """Check-ins ``days`` after now (the consultation is done): the salon's default days
        unless given."""
        await self._store.get_consultation(consultation_id)
        if days is None:
            days = (await self._store.checkins.defaults()).days
        now = self._clock()
        return await self._store.checkins.add(consultation_id, due_times(now, days), now)

    async def add(self, consultation_id: str, due_at: datetime) -> Checkin:
        await self._store.get_consultation(consultation_id)
        (made,) = await self._store.checkins.add(consultation_id, [due_at], self._clock())
        return made

    async def move(self, checkin_id: str, due_at: datetime) -> Checkin:
        return await self._store.checkins.move(checkin_id, due_at)

    async def remove(self, checkin_id: str) -> Checkin:
        return await self._store.checkins.remove(checkin_id)

    # due time: the photo request

    async def deliver(self, checkin_id: str) -> bool:
        """Post the check-in's photo request into the customer's conversation (once, however
        often called); False if it was sent already or is no longer scheduled."""
        checkin = await self._store.checkins.get(checkin_id)
        if checkin.state != "scheduled":
            return False
        consultation = await self._store.get_consultation(checkin.consultation_id)
        token = await self._store.customer_link(consultation.id, self._settings.link_ttl)
        url = f"{self._settings.base_url}/c/{token}/checkin/{checkin.id}"
        text = request_text(self._language(consultation), url)
        posted = await self._conversations.post(
            consultation.id, "stylist", message_key(checkin.id, "request"), text
        )
        # After the message: a crash in between posts nothing twice (the chat keeps the first
        # by its client id) and the next delivery marks it sent.
        sent = await self._store.checkins.mark_sent(checkin.id, self._clock())
        return sent and posted.new

    async def deliver_due(self) -> int:
        """Deliver every scheduled check-in whose time has come; how many were posted."""
        count = 0
        for checkin in await self._store.checkins.due(self._clock()):
            count += await self.deliver(checkin.id)
        return count

    # the customer: answers

    async def open_checkin(self, consultation_id: str, checkin_id: str) -> Checkin:
        """The consultation's check-in, if its request was sent (UnknownCheckin otherwise:
        a link opens only its own consultation's)."""
        checkin = await self._store.checkins.get(checkin_id)
        if checkin.consultation_id != consultation_id:
            raise UnknownCheckin()
        if checkin.state == "scheduled":
            raise CheckinNotSent()
        return checkin

    async def photo(
        self,
        checkin: Checkin,
        view: str,
        chunks: AsyncIterator[bytes],
        content_length: int | None,
    ) -> Checkin:
        """A view's photo, through the quality gate (PhotoRefused: blurry, dark or washed
        out), stored at full resolution as a still; a view answered again replaces its photo."""
        if view not in VIEWS:
            raise InvalidRequest(f"view is one of {', '.join(VIEWS)}.")
        capture = await self._store.create_capture(checkin.consultation_id, "customer")
        still = await self._stills.receive_upload(
            checkin.consultation_id,
            capture.id,
            chunks,
            content_length,
            source="checkin",
            refuse=QUALITY_REFUSED,
        )
        replaced = await self._store.checkins.set_photo(checkin.id, view, still.id, self._clock())
        if replaced is not None and replaced != still.id:
            await self._stills.remove(replaced)
        return await self._store.checkins.get(checkin.id)

    async def answer(self, checkin: Checkin, answers: Answers) -> Checkin:
        """Store the form; the first answer tells the salon in the conversation (the inbox
        shows it as the customer's unread message). Answered again: the form is replaced."""
        updated, first = await self._store.checkins.answer(checkin.id, answers, self._clock())
        consultation = await self._store.get_consultation(checkin.consultation_id)
        # Also on a repeat: a crash after the answer but before the notice posts it then.
        await self._conversations.post(
            consultation.id,
            "customer",
            message_key(checkin.id, "answered"),
            answered_text(self._language(consultation), answers),
        )
        if first:
            logger.info("check-in %s answered", checkin.id)
        return updated

    # staff: the dashboard and follow-ups

    async def board(self) -> Board:
        now = self._clock()
        overdue_days = (await self._store.checkins.defaults()).overdue_days
        listed = await self._store.checkins.listing(now - timedelta(days=BOARD_DAYS))
        by: dict[str, list[Listed]] = {"due": [], "overdue": [], "answered": [], "scheduled": []}
        for item in listed:
            c = item.checkin
            by[standing(c.state, c.due_at, now, overdue_days)].append(item)
        return Board(by["due"], by["overdue"], by["answered"], by["scheduled"])

    async def follow_up(
        self, checkin_id: str, kind: Literal["same-again", "repair"]
    ) -> tuple[Consultation, Links]:
        """From an answered check-in, one click: "same again" or a repair (a new consultation
        marked as a repair of the original), its links ready to send."""
        checkin = await self._store.checkins.get(checkin_id)
        consultation, links = await self._store.follow_up(
            checkin.consultation_id, self._settings.link_ttl, repair=kind == "repair"
        )
        await self._store.checkins.set_followup(checkin.id, consultation.id)
        return consultation, links

    def _language(self, consultation: Consultation) -> str:
        return consultation.customer_language or self._settings.mail_language


def listed_json(item: Listed) -> dict[str, Any]:
    """A check-in on the dashboard: with its customer's name and reference."""
    return item.checkin.to_json() | {
        "customer_name": item.customer_name,
        "customer_ref": item.customer_ref,
    }
