"""Conversations: each consultation's messages, stored and delivered whether or not a call runs.

A message is stored first (with its sequence number), then delivered as an event to whoever
is subscribed: the call's participants, the customer's conversation page, the stylist's
console and the staff inbox. Subscribers read events from a queue of their own
(``Subscription``, an async iterator), so a slow reader delays nobody else and nothing here
knows what its readers are. One entry point posts a message: ``Conversations.post``.

Across nodes (consult/bus.py), a node tells the others what changed in a small hint, and each
reads from the store what its own subscribers have not had: every subscriber keeps the last
message number it was handed per conversation, so it gets each message once, in order, with
none skipped, whichever node stored it and whatever hints were lost. Who has a conversation
open is shared through the store (``consult/recording/presence.py``) while the node has peers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from .bus import (
    AwayNoticeHint,
    Bus,
    Hint,
    Linked,
    LinksRevokedHint,
    MessagesHint,
    ReadHint,
    Refreshed,
)
from .errors import StorageFailed
from .media.stills import still_json
from .recording.attachments import Attachment, attachment_json
from .recording.inbox import Snapshot
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

#: How long a node's presence rows hold without being renewed (renewed on each look-up of the
#: peers, every 2 s: a node that dies leaves its sides present this long at most).
PRESENCE_LEASE = timedelta(seconds=10)

#: How far the nodes' clocks may disagree (NTP keeps them far closer): a message another node
#: stored this long before a reader subscribed may still be one it has not seen.
CLOCK_SKEW = timedelta(seconds=2)

#: The conversations a subscriber to all of them (the inbox) keeps its place in; beyond, the
#: least recent is forgotten (its next message is handed over as if it were the first).
MAX_FOLLOWED = 10_000


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
    #: Posted through this node (not read after another node's hint): what follows from the
    #: message (the customer's email) is this node's to do, once.
    here: bool = True

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
        #: The last message handed over, per conversation: none twice, none after a gap.
        self._cursors: OrderedDict[str, int] = OrderedDict()
        self._opened_at = datetime.now(UTC)

    def follows(self, consultation_id: str) -> bool:
        return self.consultation_id in (None, consultation_id)

    def wants(self, event: Event) -> bool:
        if not self.follows(event.consultation_id):
            return False
        return not isinstance(event, AwayNoticed) or self.reader == "customer"

    def cursor(self, consultation_id: str) -> int | None:
        """The last message of the conversation handed over (None: none yet)."""
        return self._cursors.get(consultation_id)

    def start_after(self, seq: int) -> None:
        """The reader has had the conversation up to ``seq`` (its history)."""
        assert self.consultation_id is not None
        self._move(self.consultation_id, seq)

    def _move(self, consultation_id: str, seq: int) -> None:
        self._cursors[consultation_id] = max(seq, self._cursors.get(consultation_id, seq))
        self._cursors.move_to_end(consultation_id)
        if len(self._cursors) > MAX_FOLLOWED:
            self._cursors.popitem(last=False)

    def offer(self, event: Event) -> None:
        """Queue ``event`` if this reader wants it and, for a message, has not had it."""
        if not self.wants(event):
            return
        if isinstance(event, Posted):
            cursor = self.cursor(event.consultation_id)
            if cursor is not None and event.message.seq <= cursor:
                return
            if cursor is None and not event.here and self._before(event.message.created_at):
                return  # read again after a link was down, and stored before this reader came
            self._move(event.consultation_id, event.message.seq)
        self.put(event)

    def _before(self, at: datetime) -> bool:
        return at < self._opened_at - CLOCK_SKEW

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
        #: The other nodes, while this one follows them (``follow``).
        self._bus: Bus | None = None
        #: The sides open on this node, with how many of each: shared through the store
        #: (``_sharing``) while other nodes are live.
        self._here: Counter[tuple[str, Role]] = Counter()
        self._sharing = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: Messages being posted through this node (consultation, sender, client id): one of
        #: them read from the store before its own post delivers it is still this node's.
        self._posting: Counter[tuple[str, Role, str]] = Counter()

    async def close(self) -> None:
        """Shut down: every subscription ends (its reader closes its websocket), and this
        returns once all have; safe to call twice."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.end()
        if self._subscriptions:
            await self._drained.wait()
        if self._tasks:
            await asyncio.wait(self._tasks)

    @asynccontextmanager
    async def subscribe(
        self, consultation_id: str | None, reader: Reader
    ) -> AsyncIterator[Subscription]:
        """Events of one conversation (or of all, ``None``) while the block runs. A side
        subscribed to its conversation counts as present (no away notice while the stylist is;
        on every node)."""
        subscription = Subscription(consultation_id, reader)
        if self._closed:
            subscription.end()
        self._subscriptions.add(subscription)
        side = (consultation_id, reader) if consultation_id and reader != "staff" else None
        try:
            if side is not None:
                await self._opened(side)
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            if side is not None:
                self._closed_side(side)
            if self._closed and not self._subscriptions:
                self._drained.set()

    async def _opened(self, side: tuple[str, Role]) -> None:
        self._here[side] += 1
        if self._sharing and self._here[side] == 1:
            # Written before the page is welcomed: a message posted through another node
            # from then on finds this side present.
            try:
                await self._store.presence.put(self._store.node, [side], _lease_end())
            except StorageFailed:
                logger.warning("%s: presence not shared (database unavailable)", side[0])

    def _closed_side(self, side: tuple[str, Role]) -> None:
        self._here[side] -= 1
        if self._here[side]:
            return
        del self._here[side]
        if self._sharing:
            # In a task of its own: the reader's handler may be cancelled as it leaves.
            self._spawn(self._store.presence.remove(self._store.node, *side))

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except StorageFailed:
                logger.warning("presence not updated (database unavailable): it lapses")

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def present(self, consultation_id: str) -> frozenset[Role]:
        """The sides that have the conversation open: here, and on the other nodes."""
        roles: set[Role] = {
            role for (c, role), count in self._here.items() if c == consultation_id and count
        }
        if self._sharing and len(roles) < 2:
            try:
                roles |= await self._store.presence.elsewhere(
                    consultation_id, self._store.node, datetime.now(UTC)
                )
            except StorageFailed:
                logger.warning("%s: presence elsewhere unknown", consultation_id)
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
        key = (consultation_id, sender, client_id)
        self._posting[key] += 1
        try:
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
                await self._deliver(consultation_id, message.seq, posted)
        finally:
            self._posting[key] -= 1
            if not self._posting[key]:
                del self._posting[key]
        if new:
            self._hint(MessagesHint(consultation_id, message.seq))
            if sender == "customer" and "stylist" not in posted.present:
                await self._away_notice(consultation_id)
        return posted

    async def _posted(
        self,
        message: ChatMessage,
        new: bool,
        *,
        snapshot: Snapshot | None = None,
        present: frozenset[Role] | None = None,
        here: bool = True,
    ) -> Posted:
        still = await self._store.get_still(message.still_id) if message.still_id else None
        attachment = (
            await self._store.attachments.get(message.attachment_id)
            if message.attachment_id
            else None
        )
        if snapshot is None:
            snapshot = await self._store.inbox.snapshot(message.consultation_id)
        return Posted(
            message,
            still_json(still) if still is not None else None,
            new,
            snapshot.unread,
            present if present is not None else await self.present(message.consultation_id),
            attachment_json(attachment) if attachment is not None else None,
            snapshot.version,
            here,
        )

    async def _deliver(self, consultation_id: str, upto: int | None, posted: Posted | None) -> None:
        """Hand every subscriber of the conversation the messages it has not had, up to
        ``upto`` (None: all there are), each from its own place: ``posted`` (in hand) alone
        when nobody lacks an earlier one, else read from the store."""
        cursors = [
            s.cursor(consultation_id) for s in self._subscriptions if s.follows(consultation_id)
        ]
        known = [c for c in cursors if c is not None]
        if upto is None:
            if not known:
                return  # nobody here has had any of it yet: their history is still to come
            after = min(known)
        else:
            if all(c is not None and c >= upto for c in cursors):
                return  # nobody here follows it, or everyone has had it
            after = min([c for c in known if c < upto], default=upto - 1)
        if posted is not None and after >= posted.message.seq - 1:
            events = [posted]
        else:
            events = await self._read(consultation_id, after, upto, posted)
        for event in events:
            self._publish(event)

    async def _read(
        self, consultation_id: str, after: int, upto: int | None, posted: Posted | None
    ) -> list[Posted]:
        stored = await self._store.messages(consultation_id, after=after, upto=upto)
        if not stored:
            return []
        snapshot = await self._store.inbox.snapshot(consultation_id)
        present = await self.present(consultation_id)
        return [
            posted
            if posted is not None and m.seq == posted.message.seq
            else await self._posted(
                m,
                True,
                snapshot=snapshot,
                present=present,
                here=(m.consultation_id, m.sender, m.client_id) in self._posting,
            )
            for m in stored
        ]

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
        self._hint(ReadHint(consultation_id, reader))
        return moved

    def revoke(self, consultation_id: str) -> None:
        """The consultation's links were revoked: its pages are told to end."""
        self._publish(LinksRevoked(consultation_id))
        self._hint(LinksRevokedHint(consultation_id))

    async def history(
        self, consultation_id: str, subscription: Subscription | None = None
    ) -> History:
        """What a page opening the conversation has missed; ``subscription``: the page's
        own, which has had it from now on."""
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
        history = History(messages, await self._store.read_marks(consultation_id))
        if subscription is not None:
            subscription.start_after(history.last_seq)
        return history

    async def _away_notice(self, consultation_id: str) -> None:
        """Once per conversation in each closed period: the salon's away message."""
        salon = await self._store.get_salon()
        period = away_period(salon, datetime.now(UTC))
        if period is None or not await self._store.inbox.claim_away(consultation_id, period):
            return
        self._publish(_away_noticed(consultation_id, salon))
        self._hint(AwayNoticeHint(consultation_id))

    def _publish(self, event: Event) -> None:
        for subscription in list(self._subscriptions):
            subscription.offer(event)

    def _hint(self, hint: Hint) -> None:
        if self._bus is not None:
            self._bus.send(hint)

    def _followed(self, consultation_id: str) -> bool:
        return any(s.follows(consultation_id) for s in self._subscriptions)

    # Other nodes (consult/bus.py)

    async def follow(self, bus: Bus) -> None:
        """Tell the other nodes what changes here, and deliver what changed there, until the
        bus closes."""
        self._bus = bus
        try:
            async for item in bus:
                try:
                    await self._apply(item)
                except StorageFailed:
                    # The next hint, or the link's next reconnection, reads it again.
                    logger.warning("cross-node delivery: %r not read (database unavailable)", item)
                except Exception:
                    logger.exception("cross-node delivery: %r failed", item)
        finally:
            self._bus = None

    async def _apply(self, item: Hint | Linked | Refreshed) -> None:
        match item:
            case MessagesHint(consultation_id=c, seq=seq):
                await self._deliver(c, seq, None)
            case ReadHint(consultation_id=c, by=by) if self._followed(c):
                await self._marks(c, [by])
            case AwayNoticeHint(consultation_id=c) if self._followed(c):
                self._publish(_away_noticed(c, await self._store.get_salon()))
            case LinksRevokedHint(consultation_id=c):
                self._publish(LinksRevoked(c))
            case Linked(since=since):
                await self._catch_up(since)
            case Refreshed(peers=peers):
                await self._share_presence(peers > 0)

    async def _marks(self, consultation_id: str, roles: list[Role] | None = None) -> None:
        marks = await self._store.read_marks(consultation_id)
        snapshot = await self._store.inbox.snapshot(consultation_id)
        for by, seq in marks.items():
            if roles is None or by in roles:
                self._publish(
                    ReadMoved(consultation_id, by, seq, snapshot.unread, snapshot.version)
                )

    async def _catch_up(self, since: datetime) -> None:
        """A peer's link (re)connected: every conversation followed here is read again from
        where each subscriber is, and those changed since ``since`` for the inbox."""
        followed = {s.consultation_id for s in self._subscriptions if s.consultation_id}
        targets: dict[str, int | None] = dict.fromkeys(followed)
        if any(s.consultation_id is None for s in self._subscriptions):
            for consultation_id, last in await self._store.inbox.changed_since(since):
                targets[consultation_id] = last
        for consultation_id, upto in targets.items():
            await self._deliver(consultation_id, upto, None)
        for consultation_id in followed:
            await self._marks(consultation_id)

    async def _share_presence(self, peered: bool) -> None:
        """With peers, this node's sides are in the store (all of them again, so a race
        between a page closing and a renewal leaves nothing behind); alone, none are."""
        if not peered:
            if self._sharing:
                self._sharing = False
                await self._store.presence.put(self._store.node, [], _lease_end(), only=True)
            return
        self._sharing = True
        await self._store.presence.put(self._store.node, list(self._here), _lease_end(), only=True)


def _lease_end() -> datetime:
    return datetime.now(UTC) + PRESENCE_LEASE


def _away_noticed(consultation_id: str, salon: Salon) -> AwayNoticed:
    next_open = salon.status(datetime.now(UTC))["next_open"]
    return AwayNoticed(
        consultation_id, salon.away_message, next_open if isinstance(next_open, str) else None
    )
