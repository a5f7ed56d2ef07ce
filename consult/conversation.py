"""Conversations: each consultation's messages, stored and delivered whether or not a call runs.

A message is stored first (with its sequence number), then delivered as an event to whoever
is subscribed: the call's participants, the customer's conversation page, the stylist's
console and the staff inbox. Subscribers read events from a queue of their own
(``Subscription``, an async iterator), so a slow reader delays nobody else and nothing here
knows what its readers are. One entry point posts a message: ``Conversations.post``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from .media.stills import still_json
from .recording.attachments import Attachment, attachment_json
from .recording.store import ChatMessage, Still, Store
from .roles import Role
from .salon import Salon

__all__ = [
    "AwayNoticed",
    "Conversations",
    "Event",
    "History",
    "LinksRevoked",
    "Posted",
    "ReadMoved",
    "Reader",
    "Subscription",
    "away_period",
]

logger = logging.getLogger(__name__)

#: Who reads a conversation: its two sides, or the salon's staff (the inbox, every one).
Reader = Literal["customer", "stylist", "staff"]


@dataclass(frozen=True)
class Posted:
    """A message was stored (``new``) or sent again by its sender (not ``new``)."""

    message: ChatMessage
    #: A photo sent in the chat, as ``consult.media.stills.still_json`` gives it.
    still: dict[str, Any] | None
    new: bool
    #: The customer's messages the salon has not read in this conversation, after this one.
    unread: int
    #: The sides who had the conversation open when it was posted: a staff message posted
    #: with no "customer" here reached a customer who is away.
    present: frozenset[Role]
    #: A voice message, video clip or file, as ``attachment_json`` gives it.
    attachment: dict[str, Any] | None = None
    #: The version ``unread`` was read at (consult/recording/inbox.py, ``Snapshot``).
    version: int = 0

    @property
    def consultation_id(self) -> str:
        return self.message.consultation_id


@dataclass(frozen=True)
class ReadMoved:
    consultation_id: str
    by: Role
    seq: int
    unread: int
    #: The version ``unread`` was read at (consult/recording/inbox.py, ``Snapshot``).
    version: int = 0


@dataclass(frozen=True)
class AwayNoticed:
    """To the customer: the salon is closed and nobody is there to answer."""

    consultation_id: str
    message: str
    next_open: str | None


@dataclass(frozen=True)
class LinksRevoked:
    """Staff revoked the consultation's links: pages opened with them end."""

    consultation_id: str


Event = Posted | ReadMoved | AwayNoticed | LinksRevoked


@dataclass(frozen=True)
class History:
    """What a page that (re)opens a conversation has missed."""

    #: Each message with its photo and its attachment (as JSON), if any.
    messages: list[tuple[ChatMessage, dict[str, Any] | None, dict[str, Any] | None]]
    marks: dict[Role, int]

    @property
    def last_seq(self) -> int:
        return self.messages[-1][0].seq if self.messages else 0


def away_period(salon: Salon, now: datetime) -> str | None:
    """The closed period ``now`` falls in, named by its next opening (``"closed"`` if the salon
    never opens again); None while the salon is open."""
    status = salon.status(now)
    if status["open"]:
        return None
    return str(status["next_open"] or "closed")


class Subscription:
    """One reader's events, in order; iterate it (``async for event in subscription``)."""

    def __init__(self, consultation_id: str | None, reader: Reader) -> None:
        #: None: every conversation (the staff inbox).
        self.consultation_id = consultation_id
        self.reader = reader
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def wants(self, event: Event) -> bool:
        if self.consultation_id not in (None, event.consultation_id):
            return False
        return not isinstance(event, AwayNoticed) or self.reader == "customer"

    def put(self, event: Event) -> None:
        self._queue.put_nowait(event)

    def end(self) -> None:
        """No more events: iterating ends once those queued are read."""
        self._queue.put_nowait(None)

    @asynccontextmanager
    async def forwarding(
        self,
        send: Callable[[Event], Awaitable[None]],
        ended: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[None]:
        """Hand every event to ``send``, in order, while the block runs (a websocket's
        adapter: its reader keeps reading the client meanwhile); ``ended`` when the service
        closes (the adapter closes its websocket)."""

        async def forward() -> None:
            async for event in self:
                try:
                    await send(event)
                except (ConnectionError, RuntimeError) as exc:
                    logger.debug("%s: delivery stopped: %s", self.reader, exc)
                    return
                except Exception:
                    logger.exception("%s: delivering %r failed", self.reader, event)
            if ended is not None:
                await ended()

        task = asyncio.ensure_future(forward())
        try:
            yield
        finally:
            task.cancel()
            # Waited for, not awaited: a cancellation of the block itself still propagates.
            await asyncio.wait([task])

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event


class Conversations:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._subscriptions: set[Subscription] = set()
        self._closed = False
        self._drained = asyncio.Event()

    async def close(self) -> None:
        """Shut down: every subscription ends (its reader closes its websocket), and this
        returns once all have; safe to call twice."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.end()
        if self._subscriptions:
            await self._drained.wait()

    @contextmanager
    def subscribe(self, consultation_id: str | None, reader: Reader) -> Iterator[Subscription]:
        """Events of one conversation (or of all, ``None``) while the block runs. A side
        subscribed to its conversation counts as present (no away notice while the stylist is)."""
        subscription = Subscription(consultation_id, reader)
        if self._closed:
            subscription.end()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            if self._closed and not self._subscriptions:
                self._drained.set()

    def present(self, consultation_id: str) -> frozenset[Role]:
        roles: set[Role] = set()
        for subscription in self._subscriptions:
            reader = subscription.reader
            if subscription.consultation_id == consultation_id and reader != "staff":
                roles.add(reader)
        return frozenset(roles)

    async def post(
        self,
        consultation_id: str,
        sender: Role,
        client_id: str,
        text: str = "",
        *,
        still: Still | None = None,
        attachment: Attachment | None = None,
        conn: AsyncConnection | None = None,
    ) -> Posted:
        """Store a message, then deliver it to every subscriber (the sender's own copy is its
        acknowledgement). The same ``client_id`` from the same sender again is the message
        stored the first time: returned (``new`` False), not delivered again.

        Text, a photo (``still``, already saved by ``consult.media.stills``), or a voice
        message, clip or file (``attachment``, saved by ``consult.recording.attachments``).

        ``conn``: stored in the caller's transaction (due work's handler, consult/due.py, whose
        ``client_id`` is the work's key); delivered at once, before that transaction commits:
        should it roll back, the run is repeated and the same message stored then."""
        message, new = await self._store.add_message(
            consultation_id,
            sender,
            client_id,
            text,
            still_id=still.id if still else None,
            attachment_id=attachment.id if attachment else None,
            conn=conn,
        )
        posted = await self._posted(message, new)
        if new:
            self._publish(posted)
            if sender == "customer" and "stylist" not in posted.present:
                await self._away_notice(consultation_id)
        return posted

    async def _posted(self, message: ChatMessage, new: bool) -> Posted:
        still = await self._store.get_still(message.still_id) if message.still_id else None
        attachment = (
            await self._store.attachments.get(message.attachment_id)
            if message.attachment_id
            else None
        )
        snapshot = await self._store.inbox.snapshot(message.consultation_id)
        return Posted(
            message,
            still_json(still) if still is not None else None,
            new,
            snapshot.unread,
            self.present(message.consultation_id),
            attachment_json(attachment) if attachment is not None else None,
            snapshot.version,
        )

    async def find(self, consultation_id: str, sender: Role, client_id: str) -> Posted | None:
        """The message ``sender`` stored under ``client_id``, if any (a photo sent again)."""
        message = await self._store.find_message(consultation_id, sender, client_id)
        return await self._posted(message, False) if message is not None else None

    async def read(self, consultation_id: str, reader: Role, seq: int) -> ReadMoved:
        """``reader`` has read up to ``seq`` (marks only move forward); told to everyone."""
        mark = await self._store.mark_read(consultation_id, reader, seq)
        snapshot = await self._store.inbox.snapshot(consultation_id)
        moved = ReadMoved(consultation_id, reader, mark, snapshot.unread, snapshot.version)
        self._publish(moved)
        return moved

    def revoke(self, consultation_id: str) -> None:
        """The consultation's links were revoked: its pages are told to end."""
        self._publish(LinksRevoked(consultation_id))

    async def history(self, consultation_id: str) -> History:
        stills = {s.id: s for s in await self._store.list_stills(consultation_id)}
        attachments = await self._store.attachments.of(consultation_id)
        messages = [
            (
                m,
                still_json(stills[m.still_id]) if m.still_id in stills else None,
                attachment_json(attachments[m.attachment_id])
                if m.attachment_id in attachments
                else None,
            )
            for m in await self._store.messages(consultation_id)
        ]
        return History(messages, await self._store.read_marks(consultation_id))

    async def _away_notice(self, consultation_id: str) -> None:
        """Once per conversation in each closed period: the salon's away message."""
        salon = await self._store.get_salon()
        period = away_period(salon, datetime.now(UTC))
        if period is None or not await self._store.inbox.claim_away(consultation_id, period):
            return
        status = salon.status(datetime.now(UTC))
        next_open = status["next_open"]
        self._publish(
            AwayNoticed(
                consultation_id,
                salon.away_message,
                next_open if isinstance(next_open, str) else None,
            )
        )

    def _publish(self, event: Event) -> None:
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.put(event)
