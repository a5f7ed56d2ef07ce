"""Aftercare check-ins, the service: staff schedule them, the photo request goes into the
customer's conversation when one falls due, the customer answers (photos through the quality
gate, stored as stills; the form), and staff follow up ("same again" or a repair).

What is due is kept in the store: each check-in (state ``scheduled`` until its request is
posted) with its due work (kind ``checkin``, key ``checkin:<id>``, consult/due.py), put, moved
and cancelled in the same transaction. The runner calls ``run_due`` in its own transaction,
which also marks the work done; the request is a conversation message whose client id is the
same key, kept once by the chat, so a run repeated after a crash, or on two nodes at once,
posts one message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

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
from .due import Clock
from .errors import CheckinNotSent, InvalidRequest, UnknownCheckin
from .media.stills import Stills
from .recording.checkins import Checkin, Listed
from .recording.due import DueItem, DueWork
from .recording.store import Consultation, Links, Store, utcnow

__all__ = ["KIND", "Aftercare", "Board", "listed_json"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Board:
    """The dashboard's check-ins: due (sent, waiting), overdue, answered."""

    due: list[Listed]
    overdue: list[Listed]
    answered: list[Listed]


#: How far back the dashboard looks.
BOARD_DAYS = 60


#: The due work's kind: a check-in's photo request (key ``checkin:<id>``).
KIND = "checkin"


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

    # staff: scheduling, each check-in and its due work in one transaction (``due``: the
    # runner's, so a put wakes it; the runner starts after this service, whose handler it runs)

    # Staff's changes are audited (``actor``) in their transaction: a check-in reaches out to
    # the customer with their record's link.

    async def schedule(
        self, due: DueWork, consultation_id: str, days: Sequence[int] | None, *, actor: str
    ) -> list[Checkin]:
        """Check-ins ``days`` after now (the consultation is done): the salon's default days
        unless given."""
        if days is None:
            days = (await self._store.checkins.defaults()).days
        return await self._add(due, consultation_id, due_times(self._clock(), days), actor)

    async def add(
        self, due: DueWork, consultation_id: str, due_at: datetime, *, actor: str
    ) -> Checkin:
        (made,) = await self._add(due, consultation_id, [due_at], actor)
        return made

    async def _add(
        self, due: DueWork, consultation_id: str, due_at: list[datetime], actor: str
    ) -> list[Checkin]:
        await self._store.get_consultation(consultation_id)
        now = self._clock()
        async with self._store.database.begin() as conn:
            made = await self._store.checkins.add(consultation_id, due_at, now, conn=conn)
            for checkin in made:
                await self._put(due, checkin.id, checkin.due_at, conn)
                await self._audit(actor, "scheduled", checkin, conn)
        return made

    async def move(self, due: DueWork, checkin_id: str, due_at: datetime, *, actor: str) -> Checkin:
        checkin = await self._store.checkins.get(checkin_id)
        async with self._store.database.begin() as conn:
            await self._store.checkins.move(checkin_id, due_at, conn=conn)
            await self._put(due, checkin_id, due_at, conn)
            await self._audit(actor, "moved", replace(checkin, due_at=due_at), conn)
        return await self._store.checkins.get(checkin_id)

    async def remove(self, due: DueWork, checkin_id: str, *, actor: str) -> Checkin:
        checkin = await self._store.checkins.get(checkin_id)
        async with self._store.database.begin() as conn:
            await self._store.checkins.remove(checkin_id, conn=conn)
            await due.cancel(message_key(checkin_id, "request"), conn=conn)
            await self._audit(actor, "deleted", checkin, conn)
        return checkin

    async def _audit(
        self, actor: str, action: str, checkin: Checkin, conn: AsyncConnection
    ) -> None:
        detail = {"consultation": checkin.consultation_id, "due_at": checkin.due_at.isoformat()}
        await self._store.audit.record(
            actor, action, f"checkin:{checkin.id}", detail=detail, conn=conn
        )

    async def _put(
        self, due: DueWork, checkin_id: str, due_at: datetime, conn: AsyncConnection
    ) -> None:
        await due.put(
            KIND,
            message_key(checkin_id, "request"),
            due_at,
            {"checkin_id": checkin_id},
            now=self._clock(),
            conn=conn,
        )

    # due time: the photo request

    async def run_due(self, item: DueItem, conn: AsyncConnection) -> None:
        """The due work's handler (consult/due.py): everything through the runner's ``conn``."""
        await self.deliver(str(item.payload["checkin_id"]), conn=conn)

    async def deliver(self, checkin_id: str, *, conn: AsyncConnection | None = None) -> bool:
        """Post the check-in's photo request into the customer's conversation (once, however
        often called: the message's client id is the due work's key); False if it was sent
        already or is no longer there."""
        try:
            checkin = await self._store.checkins.get(checkin_id)
        except UnknownCheckin:
            return False  # removed since: nothing to send
        if checkin.state != "scheduled":
            return False
        consultation = await self._store.get_consultation(checkin.consultation_id)
        ttl = self._settings.link_ttl
        token = await self._store.customer_link(consultation.id, ttl, conn=conn)
        url = f"{self._settings.base_url}/c/{token}/checkin/{checkin.id}"
        posted = await self._conversations.post(
            consultation.id,
            "stylist",
            message_key(checkin.id, "request"),
            request_text(self._language(consultation), url),
            conn=conn,
        )
        sent = await self._store.checkins.mark_sent(checkin.id, self._clock(), conn=conn)
        return sent and posted.new

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

    async def board(self, *, reachable_by: str | None = None) -> Board:
        """``reachable_by``: a stylist account's (their own and unassigned consultations')."""
        now = self._clock()
        overdue_days = (await self._store.checkins.defaults()).overdue_days
        listed = await self._store.checkins.listing(
            now - timedelta(days=BOARD_DAYS), now, reachable_by=reachable_by
        )
        by: dict[str, list[Listed]] = {"due": [], "overdue": [], "answered": [], "scheduled": []}
        for item in listed:
            c = item.checkin
            by[standing(c.state, c.due_at, now, overdue_days)].append(item)
        # "scheduled" stays empty: only check-ins whose time has come are listed.
        return Board(by["due"], by["overdue"], by["answered"])

    async def follow_up(
        self,
        checkin_id: str,
        kind: Literal["same-again", "repair"],
        *,
        assigned_to: str | None = None,
    ) -> tuple[Consultation, Links]:
        """From an answered check-in, one click: "same again" or a repair (a new consultation
        marked as a repair of the original, for ``assigned_to``), its links ready to send."""
        checkin = await self._store.checkins.get(checkin_id)
        consultation, links = await self._store.follow_up(
            checkin.consultation_id,
            self._settings.link_ttl,
            repair=kind == "repair",
            assigned_to=assigned_to,
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
