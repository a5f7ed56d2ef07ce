"""Leases: work that one node at a time does for every node sharing the database.

A lease is a row (made by the migration that introduces its work): taking it is one
conditional UPDATE, so two nodes racing for it cannot both win, on SQLite or PostgreSQL. A
holder that dies loses it when it expires; a live one renews it while it works. ``done_at``
is shared too: work done by any node is not due again on another until its interval has passed.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta

import sqlalchemy as sa

from .database import Database
from .schema import leases

__all__ = ["Leases", "holder_name"]


def holder_name(node: str | None = None) -> str:
    """A name for one holder: this machine, this process, and a part of its own; after
    ``node/`` where the node is named (``Leases.release_earlier``)."""
    own = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    return f"{node}/{own}" if node is not None else own


class Leases:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def take(
        self, name: str, holder: str, now: datetime, ttl: timedelta, every: timedelta
    ) -> bool:
        """Take the lease if nobody holds it and its work was last done ``every`` ago or more."""
        c = leases.c
        async with self._db.begin() as conn:
            result = await conn.execute(
                leases.update()
                .where(
                    c.name == name,
                    sa.or_(c.holder.is_(None), c.expires_at <= now),
                    sa.or_(c.done_at.is_(None), c.done_at <= now - every),
                )
                .values(holder=holder, expires_at=now + ttl)
            )
        return bool(result.rowcount == 1)

    async def renew(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        async with self._db.begin() as conn:
            result = await conn.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=now + ttl)
            )
        return bool(result.rowcount == 1)

    async def release_earlier(self, name: str, node: str) -> bool:
        """Free the lease if an earlier process of ``node`` holds it (``holder_name(node)``):
        the node was killed and started again, so nobody waits for that holder's expiry."""
        c = leases.c
        async with self._db.begin() as conn:
            result = await conn.execute(
                leases.update()
                .where(c.name == name, c.holder.startswith(f"{node}/", autoescape=True))
                .values(holder=None, expires_at=None)
            )
        return bool(result.rowcount == 1)

    async def release(self, name: str, holder: str, done_at: datetime | None) -> None:
        """Give the lease up; ``done_at``: the work was done (None: it failed, try again)."""
        values: dict[str, object] = {"holder": None, "expires_at": None}
        if done_at is not None:
            values["done_at"] = done_at
        async with self._db.begin() as conn:
            await conn.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(**values)
            )
