"""The salon's quick replies: saved texts staff insert into a message with a click."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..errors import NotFound
from .database import Database
from .schema import quick_replies

__all__ = ["QuickReplies", "QuickReply"]


@dataclass(frozen=True)
class QuickReply:
    id: str
    text: str
    position: int
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text}


class QuickReplies:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self) -> list[QuickReply]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                quick_replies.select().order_by(quick_replies.c.position, quick_replies.c.id)
            )
            return [QuickReply(**row) for row in rows.mappings()]

    async def create(self, text: str, now: datetime) -> QuickReply:
        async with self._db.begin() as conn:
            last = await conn.scalar(sa.select(sa.func.max(quick_replies.c.position)))
            reply = QuickReply(secrets.token_hex(8), text, (last or 0) + 1, now, now)
            await conn.execute(quick_replies.insert().values(**reply.__dict__))
        return reply

    async def update(self, reply_id: str, text: str, now: datetime) -> QuickReply:
        async with self._db.begin() as conn:
            updated = await conn.execute(
                quick_replies.update()
                .where(quick_replies.c.id == reply_id)
                .values(text=text, updated_at=now)
            )
            if updated.rowcount == 0:
                raise NotFound("No such quick reply.")
            row = (
                (await conn.execute(quick_replies.select().where(quick_replies.c.id == reply_id)))
                .mappings()
                .one()
            )
        return QuickReply(**row)

    async def delete(self, reply_id: str) -> None:
        async with self._db.begin() as conn:
            deleted = await conn.execute(
                quick_replies.delete().where(quick_replies.c.id == reply_id)
            )
        if deleted.rowcount == 0:
            raise NotFound("No such quick reply.")
