"""Presence: which sides have a conversation open, on every node sharing the database.

A node with peers keeps a row per (conversation, side) it has open, held for a lease its
refresh renews (its rows replaced in one transaction); another node asks for the rows of everyone
else. A node that dies stops renewing: its sides are gone within the lease. A node alone on
its database writes none: what it has open is all there is (consult/conversation.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from ..roles import Role
from .database import Database
from .schema import consultations, presence

__all__ = ["Presence"]


class Presence:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(
        self, node: str, sides: Iterable[tuple[str, Role]], until: datetime, *, only: bool = False
    ) -> None:
        """``node`` has these (conversation, side) open, until ``until`` unless renewed;
        ``only``: and nothing else (its rows are replaced: what a race left behind goes)."""
        rows = [
            {"consultation_id": c, "role": role, "node_id": node, "until": until}
            for c, role in sides
        ]
        p = presence.c
        async with self._db.begin() as conn:
            # Each node writes only its own rows: replacing them needs no upsert (the same
            # statements on SQLite and PostgreSQL).
            if only:
                await conn.execute(presence.delete().where(p.node_id == node))
            else:
                for row in rows:
                    await conn.execute(
                        presence.delete().where(
                            p.consultation_id == row["consultation_id"],
                            p.role == row["role"],
                            p.node_id == node,
                        )
                    )
            if not rows:
                return
            # A conversation deleted meanwhile has nobody to be present in.
            alive = set(
                await conn.scalars(
                    sa.select(consultations.c.id).where(
                        consultations.c.id.in_({r["consultation_id"] for r in rows})
                    )
                )
            )
            rows = [r for r in rows if r["consultation_id"] in alive]
            if rows:
                await conn.execute(presence.insert(), rows)

    async def remove(self, node: str, consultation_id: str, role: Role) -> None:
        p = presence.c
        async with self._db.begin() as conn:
            await conn.execute(
                presence.delete().where(
                    p.consultation_id == consultation_id, p.role == role, p.node_id == node
                )
            )

    async def clear(self, node: str) -> None:
        """``node`` has nothing open (it starts, or it stops)."""
        async with self._db.begin() as conn:
            await conn.execute(presence.delete().where(presence.c.node_id == node))

    async def elsewhere(self, consultation_id: str, node: str, now: datetime) -> set[Role]:
        """The sides other nodes have this conversation open for, as of ``now``."""
        p = presence.c
        async with self._db.connect() as conn:
            roles = await conn.scalars(
                sa.select(p.role)
                .where(p.consultation_id == consultation_id, p.node_id != node, p.until > now)
                .distinct()
            )
            return set(roles)
