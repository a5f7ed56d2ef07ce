"""The inbox: every consultation's conversation, unread customer messages first.

Reads the summaries the store keeps with each message and read mark (``schema.conversations``),
so a page of the inbox is one read of the consultations and their summaries, however many
messages the store holds (``scripts/bench_inbox.py``).

Each change to a summary moves its consultation's ``inbox_version`` on, in the change's
transaction (``changed``); the unread count is read with it (``snapshot``). The inbox's events
are computed after their transactions and may reach a page out of order (two nodes, two
requests at once): with the version, a page keeps the newest snapshot, whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..attachments import Kind
from ..roles import Role
from .accounts import reachable
from .database import Database
from .schema import consultations, conversations

__all__ = ["Inbox", "InboxItem", "LastKind", "LastMessage", "Snapshot", "changed"]

#: What a message is when it is not words: a photo (a still), or an attachment's kind.
LastKind = Literal["photo"] | Kind


@dataclass(frozen=True)
class LastMessage:
    seq: int
    sender: Role
    text: str
    #: What it is when it is not words (None: words only).
    kind: LastKind | None
    at: datetime


@dataclass(frozen=True)
class Snapshot:
    #: The customer's messages the salon has not read.
    unread: int
    #: The consultation's ``inbox_version`` when ``unread`` was read: higher is newer.
    version: int


@dataclass(frozen=True)
class InboxItem:
    consultation_id: str
    customer_name: str
    customer_ref: str | None
    scheduled_at: datetime | None
    status: str
    created_at: datetime
    #: The customer's messages the salon has not read.
    unread: int
    last: LastMessage | None
    #: The stylist account whose conversation this is (None: unassigned).
    assigned_to: str | None = None
    #: The summary's version (``Snapshot.version``).
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        last = self.last
        return {
            "id": self.consultation_id,
            "customer_name": self.customer_name,
            "customer_ref": self.customer_ref,
            "scheduled_at": self.scheduled_at.isoformat() if self.scheduled_at else None,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "unread": self.unread,
            "assigned_to": self.assigned_to,
            "version": self.version,
            "last_message": None
            if last is None
            else {
                "seq": last.seq,
                "from": last.sender,
                "text": last.text,
                "kind": last.kind,
                "at": last.at.isoformat(),
            },
        }


class Inbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        *,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
        reachable_by: str | None = None,
    ) -> list[InboxItem]:
        """Consultations with unread customer messages first, then by their last message (or
        their creation, with none); ``search`` matches the customer's name or reference;
        ``reachable_by``: only a stylist account's own and unassigned conversations."""
        c, v = consultations.c, conversations.c
        unread = sa.func.coalesce(v.unread, 0)
        columns = (c.id, c.customer_name, c.customer_ref, c.scheduled_at, c.status, c.created_at,
                   unread.label("unread"), v.last_seq, v.last_sender, v.last_text, v.last_kind,
                   v.last_at, c.assigned_to, c.inbox_version)  # fmt: skip
        query = (
            sa.select(*columns)
            .select_from(consultations.outerjoin(conversations, v.consultation_id == c.id))
            .order_by((unread > 0).desc(), sa.func.coalesce(v.last_at, c.created_at).desc(), c.id)
            .limit(limit)
            .offset(offset)
        )
        if reachable_by is not None:
            query = query.where(reachable(reachable_by))
        if search:
            needle = search.lower()
            query = query.where(
                sa.or_(
                    sa.func.lower(c.customer_name).contains(needle, autoescape=True),
                    sa.func.lower(c.customer_ref).contains(needle, autoescape=True),
                )
            )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_item(row) for row in rows]

    async def unread(
        self, consultation_id: str | None = None, *, reachable_by: str | None = None
    ) -> int:
        """The customer messages the salon has not read: in one conversation, or in all (all
        a stylist's account may reach, with ``reachable_by``)."""
        query = sa.select(sa.func.coalesce(sa.func.sum(conversations.c.unread), 0))
        if consultation_id is not None:
            query = query.where(conversations.c.consultation_id == consultation_id)
        if reachable_by is not None:
            query = query.join(
                consultations, consultations.c.id == conversations.c.consultation_id
            ).where(reachable(reachable_by))
        async with self._db.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def snapshot(self, consultation_id: str) -> Snapshot:
        """The conversation's unread count with its version, read together."""
        c, v = consultations.c, conversations.c
        query = (
            sa.select(sa.func.coalesce(v.unread, 0), c.inbox_version)
            .select_from(consultations.outerjoin(conversations, v.consultation_id == c.id))
            .where(c.id == consultation_id)
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
        return Snapshot(int(row[0]), int(row[1])) if row is not None else Snapshot(0, 0)

    async def claim_away(self, consultation_id: str, period: str) -> bool:
        """Whether the away notice for the closed ``period`` (named by its next opening) is
        still to give in this conversation; it counts as given from now on."""
        v = conversations.c
        async with self._db.begin() as conn:
            claimed = await conn.execute(
                conversations.update()
                .where(
                    v.consultation_id == consultation_id,
                    sa.or_(v.away_for.is_(None), v.away_for != period),
                )
                .values(away_for=period)
            )
        return bool(claimed.rowcount)

    async def changed_since(self, since: datetime) -> list[tuple[str, int]]:
        """Conversations with a message stored at ``since`` or later, and their last message's
        number: what a node whose link from another was down may have missed."""
        v = conversations.c
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(v.consultation_id, v.last_seq).where(v.last_at >= since)
                )
            ).all()
        return [(row.consultation_id, int(row.last_seq)) for row in rows]


def _item(row: Any) -> InboxItem:
    last = (
        LastMessage(row.last_seq, row.last_sender, row.last_text, row.last_kind, row.last_at)
        if row.last_seq is not None
        else None
    )
    return InboxItem(
        row.id, row.customer_name, row.customer_ref, row.scheduled_at, row.status,
        row.created_at, int(row.unread), last, row.assigned_to, int(row.inbox_version),
    )  # fmt: skip


async def changed(conn: AsyncConnection, consultation_id: str) -> None:
    """The conversation's summary changes in ``conn``'s transaction: its version moves on
    (under the consultation's row, so two changes never take the same one)."""
    await conn.execute(
        consultations.update()
        .where(consultations.c.id == consultation_id)
        .values(inbox_version=consultations.c.inbox_version + 1)
    )
